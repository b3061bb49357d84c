"""Evaluation of a head on a split, twin accuracy, frame-order probes and the synthetic frame-event map,
on small random tensors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tvrlib.datasets.base import RetrievalData, Video
from tvrlib.evaluation import evaluate, evaluation_rows, summary_frame
from tvrlib.frame_order import frame_order_test
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.twins import FACTORS, TIE_TOLERANCE, twin_difference, twin_outcomes, twin_pair_scores, twin_table

D, F_ = 8, 4
pytestmark = pytest.mark.usefixtures("one_thread")


def toy_split(nv: int = 12, seed: int = 0):
    """``nv`` videos with 2 captions each (the first is the t2v query) and twins (0, 1), (2, 3), ..."""
    g = torch.Generator().manual_seed(seed)
    t2v = np.repeat(np.arange(nv), 2)
    frames = torch.randn(nv, F_, D, generator=g)
    texts = TextInput(frames.mean(1)[t2v] + 0.8 * torch.randn(len(t2v), D, generator=g))
    mask = torch.ones(nv, F_, dtype=torch.bool)
    mask[1::3, 3:] = False
    twin = -np.ones(nv, dtype=np.int64)
    twin[0::2], twin[1::2] = np.arange(1, nv, 2), np.arange(0, nv, 2)
    data = RetrievalData(
        "toy",
        "test",
        [Video(f"v{i}", "x") for i in range(nv)],
        [f"t{i}" for i in range(len(t2v))],
        t2v,
        np.arange(0, len(t2v), 2),
        {"twin_of_query": twin, "factor_of_query": list(FACTORS) * (nv // 3)},
    )
    return texts, VideoInput(frames, mask), data


def small_head(name: str):
    torch.manual_seed(0)
    return HEADS.build(name) if name == "meanP" else HEADS.build(name, dim=D, layers=1, heads=2)


@pytest.mark.parametrize("name", ["meanP", "tightTransf"])
def test_twin_pair_scores_are_the_gold_and_twin_entries_of_the_full_grid(name):
    texts, videos, data = toy_split()
    head = small_head(name)
    q = torch.as_tensor(data.query_index)
    gold = data.text_to_video[data.query_index]
    twin = data.meta["twin_of_query"]
    pair = twin_pair_scores(head, texts.index(q), videos, gold, twin, chunk=5)  # chunks of 5 of 12 queries
    grid = score_all(head, texts.index(q), videos).double().numpy()
    rows = np.arange(len(gold))
    np.testing.assert_allclose(pair, np.stack([grid[rows, gold], grid[rows, twin]], 1), atol=1e-5)


def test_twin_outcomes_count_near_ties_as_half():
    pair = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5 + TIE_TOLERANCE / 2], [0.5, 0.5 + 10 * TIE_TOLERANCE]])
    np.testing.assert_array_equal(twin_outcomes(pair), [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(twin_outcomes(pair, tie_tolerance=0.0), [1.0, 0.0, 0.0, 0.0])


def test_twin_table_per_factor_then_all():
    pair = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [2.0, 1.0]])
    table = twin_table(pair, ["order", "direction", "order", "detail"], n_boot=50)
    assert list(table["factor"]) == ["order", "direction", "detail", "all"]  # FACTORS order, then all
    assert list(table["accuracy"]) == [75.0, 0.0, 100.0, 62.5]
    assert list(table["ties"]) == [1, 0, 0, 1] and list(table["n"]) == [2, 1, 1, 4]
    assert (table["ci_lo"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_hi"]).all()


def test_evaluate_rows_summary_and_twin_difference():
    texts, videos, data = toy_split()
    ev = evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=50)
    assert ev.sim.shape == (len(texts), len(videos)) and ev.num_queries == len(data.query_index)
    assert list(ev.twins["factor"]) == [*FACTORS, "all"]
    rows = evaluation_rows("exp", ev, seed=3)
    assert [(r["direction"], r["metric"]) for r in rows] == (
        [("t2v", m) for m in ("R1", "R5", "R10", "MdR", "MnR")]
        + [("v2t", m) for m in ("R1", "R5", "R10", "MdR", "MnR")]
        + [("twin", f"twin_{f}") for f in (*FACTORS, "all")]
    )
    assert all(r["seed"] == 3 and r["num_videos"] == len(videos) for r in rows)
    table = summary_frame([ev])
    assert list(table.columns) == [
        "t2v R1",
        "t2v R5",
        "t2v R10",
        "t2v MnR",
        "v2t R1",
        "twin order",
        "twin direction",
        "twin detail",
        "twin all",
        "videos",
    ]
    assert table.loc["meanP", "t2v R1"].startswith(f"{ev.t2v['R1']:.1f} [")
    other = evaluate(small_head("tightTransf"), texts, videos, data, method="tight", n_boot=50)
    d = twin_difference(ev, other, "all", n_boot=50)
    assert d["delta"] == pytest.approx(d["a"] - d["b"]) and d["n"] == len(data.query_index)
    assert d["ci"][0] <= d["delta"] <= d["ci"][1]


def test_frame_order_test_finds_no_change_for_an_order_blind_head():
    texts, videos, data = toy_split()
    table = frame_order_test(small_head("meanP"), texts, videos, data, method="meanP", n_boot=50)
    assert list(table["frames"]) == ["original", "reverse", "shuffle"]
    assert (table["R1"] == table["R1"].iloc[0]).all() and (table["dR1"] == 0).all()
    assert {"twin_order", "twin_direction", "twin_detail", "twin_all"} <= set(table.columns)


def test_sampled_frame_events_marks_boundary_frames():
    from tvrlib.synthetic.events import sampled_frame_events
    from tvrlib.synthetic.world import Event, Obj, VideoSpec

    red = Obj("red", "circle")
    spec = VideoSpec(
        "white",
        (),
        (
            Event("appear", red, cell=(0, 0), intervals=4),
            Event("move", red, direction="left", intervals=3),
            Event("shrink", red, cell=(0, 1), intervals=4),
        ),
    )  # 45 frames, bounds 0-16-28-44
    data = RetrievalData(
        "synthetic", "test", [Video("v0", "x")], ["a"], [0], [0], {"video_fields": [{"spec": spec.to_json()}]}
    )
    # uniform sampling takes frames 0, 4, ..., 44; a frame on a boundary belongs to no single event (-1)
    np.testing.assert_array_equal(sampled_frame_events(data, 12), [[-1, 0, 0, 0, -1, 1, 1, -1, 2, 2, 2, -1]])
    with pytest.raises(ValueError, match="no synthetic video specs"):
        sampled_frame_events(RetrievalData("toy", "test", [Video("v0", "x")], ["a"], [0], [0]), 12)


def test_gold_frame_weights_of_each_kind_of_head():
    from tvrlib.partial_relevance import event_attention_mass, gold_frame_weights

    texts, videos, data = toy_split()
    q = torch.as_tensor(data.query_index)
    tq, vg = texts.index(q), videos.index(torch.as_tensor(data.text_to_video[data.query_index]))
    uniform = gold_frame_weights(HEADS.build("meanP"), tq, vg)
    expected = vg.mask.float() / vg.mask.sum(1, keepdim=True)
    assert torch.equal(uniform, expected)  # mean pooling: the same weight on every valid frame
    torch.manual_seed(0)
    self_att = HEADS.build("self_attention_aggregation", dim=D)
    torch.nn.init.normal_(self_att.query)
    assert torch.allclose(gold_frame_weights(self_att, tq, vg, chunk=5), self_att.video_frame_weights(vg))
    torch.manual_seed(0)
    xpool = HEADS.build("xpool", dim=D, dropout=0.0)
    w = gold_frame_weights(xpool, tq, vg, chunk=5)  # chunks of 5 of 12 pairs: the diagonal of each block
    full = xpool.frame_weights(tq, vg)
    assert torch.allclose(w, torch.diagonal(full, dim1=0, dim2=1).T, atol=1e-6)
    assert torch.allclose(w.sum(1), torch.ones(len(w)), atol=1e-5) and not (w[~vg.mask] > 0).any()
    mass = event_attention_mass(expected, np.zeros((len(w), F_), dtype=np.int64), np.zeros(len(w), dtype=np.int64))
    np.testing.assert_allclose(mass, 1.0)  # all of the weight on event 0 when every frame shows it


def test_twins_use_the_metrics_tie_tolerance(monkeypatch):
    from tvrlib import metrics as M
    from tvrlib import twins

    assert TIE_TOLERANCE is M.TIE_TOLERANCE  # one constant for ranks and twins, defined in tvrlib.metrics
    pair = np.array([[0.5, 0.5 + 5e-4], [0.5, 0.5 - 5e-4], [0.5, 0.5]])
    np.testing.assert_array_equal(twin_outcomes(pair), [0.0, 1.0, 0.5])
    monkeypatch.setattr(M, "TIE_TOLERANCE", 1e-3)  # read at call time, by twins and ranks alike
    np.testing.assert_array_equal(twins.twin_outcomes(pair), [0.5, 0.5, 0.5])
    assert list(twin_table(pair, ["order"] * 3, n_boot=20)["ties"]) == [3, 3]
    np.testing.assert_array_equal(M.rank_of_gold(pair, [0, 0, 0]), [1.5, 1.5, 1.5])


def test_evaluate_on_a_single_query_split_is_the_query_bootstrap_bit_for_bit():
    from tvrlib import metrics as M

    texts, videos, data = toy_split()  # one query caption per video
    ev = evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=200, seed=4)
    q = data.query_index
    assert ev.t2v == M.with_ci(
        ev.sim[torch.as_tensor(q)], data.text_to_video[q], "t2v", n_boot=200, seed=4, clusters=None
    )
    assert ev.v2t == M.with_ci(ev.sim, data.text_to_video, "v2t", n_boot=200, seed=4, clusters=None)
    per = twin_outcomes(ev.twin_scores)
    row = ev.twins.set_index("factor").loc["all"]
    lo, hi = M.bootstrap_mean_ci(per, n_boot=200, seed=4)
    assert (row["ci_lo"], row["ci_hi"]) == (100 * lo, 100 * hi)


def test_evaluate_on_a_multi_query_split_resamples_videos():
    from tvrlib import metrics as M

    texts, videos, data = toy_split()
    nq = len(data.texts)  # every caption is a query now: two per video
    data.query_index = np.arange(nq)
    data.meta = {
        "twin_of_query": np.repeat(data.meta["twin_of_query"], 2),
        "factor_of_query": list(np.repeat(data.meta["factor_of_query"], 2)),
    }
    ev = evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=200, seed=4)
    gold = data.text_to_video
    assert ev.t2v == M.with_ci(ev.sim, gold, "t2v", n_boot=200, seed=4, clusters=gold)
    assert ev.t2v != M.with_ci(ev.sim, gold, "t2v", n_boot=200, seed=4, clusters=None)
    np.testing.assert_array_equal(ev.twin_videos, gold)
    per = twin_outcomes(ev.twin_scores)
    row = ev.twins.set_index("factor").loc["all"]
    lo, hi = M.bootstrap_mean_ci(per, n_boot=200, seed=4, clusters=gold)
    assert (row["ci_lo"], row["ci_hi"]) == (100 * lo, 100 * hi)
    other = evaluate(small_head("tightTransf"), texts, videos, data, method="tight", n_boot=200, seed=4)
    d = twin_difference(ev, other, "all", n_boot=200, seed=4)
    diff = per - twin_outcomes(other.twin_scores)
    lo, hi = M.bootstrap_mean_ci(diff, n_boot=200, seed=4, clusters=gold)
    assert d["ci"] == (100 * lo, 100 * hi) and d["n"] == nq


def _msrvtt_like(n_videos: int, captions_per_video: int, dim: int = 8, seed: int = 0):
    """An MSR-VTT-shaped test split in memory: several captions per video, one query sentence per video (1k-A)."""
    from pathlib import Path

    g = torch.Generator().manual_seed(seed)
    t2v = np.repeat(np.arange(n_videos), captions_per_video)
    texts = [f"caption {i}" for i in range(len(t2v))]
    queries = np.arange(n_videos) * captions_per_video + 1  # the second caption of each video is its query
    videos = [Video(f"video{j}", Path(f"video{j}.mp4")) for j in range(n_videos)]
    data = RetrievalData("msrvtt", "test", videos, texts, t2v, queries, {"v2t_texts": "queries"})
    feats = torch.randn(n_videos, 4, dim, generator=g)
    sentence = feats.mean(1)[t2v] + 0.8 * torch.randn(len(t2v), dim, generator=g)
    return TextInput(sentence), VideoInput(feats, torch.ones(n_videos, 4, dtype=torch.bool)), data


def test_msrvtt_1k_a_v2t_ranks_exactly_the_1000_query_sentences(monkeypatch):
    from tvrlib import evaluation as E
    from tvrlib import metrics as M

    texts, videos, data = _msrvtt_like(1000, 3)
    seen = {}
    real = M.with_ci

    def spy(sim, text_to_video, direction, **kw):
        seen[direction] = (tuple(sim.shape), np.asarray(text_to_video).copy())
        return real(sim, text_to_video, direction, **kw)

    monkeypatch.setattr(E.M, "with_ci", spy)
    ev = evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=50)
    shape, gold = seen["v2t"]
    assert shape == (1000, 1000) and ev.v2t["n"] == 1000  # the 1,000 query sentences x the 1,000 videos
    assert np.array_equal(gold, np.arange(1000))  # each video's one query sentence
    q = torch.as_tensor(data.query_index)
    assert ev.v2t == real(ev.sim[q], data.text_to_video[data.query_index], "v2t", n_boot=50)
    # "all": every caption of the split; a different matrix, so (here) different numbers
    every = evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=50, v2t_texts="all")
    assert seen["v2t"][0] == (3000, 1000) and every.v2t != ev.v2t
    with pytest.raises(ValueError, match="v2t_texts"):
        evaluate(small_head("meanP"), texts, videos, data, method="meanP", n_boot=50, v2t_texts="captions")


def test_the_msrvtt_loader_sets_1k_a_and_the_synthetic_one_keeps_all_captions(tiny_benchmark):
    from pathlib import Path

    from tvrlib.datasets import load_dataset

    fixture = Path(__file__).parent / "fixtures" / "real" / "msrvtt"
    test = load_dataset("msrvtt", "test", root=fixture)
    assert test.meta["v2t_texts"] == "queries" and len(test.query_index) == test.num_videos < len(test.texts)
    assert load_dataset("msrvtt", "test", root=fixture, v2t_texts="all").meta["v2t_texts"] == "all"
    with pytest.raises(ValueError, match="v2t_texts"):
        load_dataset("msrvtt", "test", root=fixture, v2t_texts="1k-A")
    synthetic = load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny")
    assert synthetic.meta["v2t_texts"] == "all"


@pytest.mark.parametrize("v2t", [True, False])
def test_evaluate_twins_scores_only_the_pairs_and_matches_evaluate(v2t):
    """Twin accuracy without the grid: the same gold/twin scores, table and videos as evaluate's (with and without
    v2t, whose grids index the twin queries differently), and no t2v / v2t."""
    from tvrlib.evaluation import evaluate_twins

    texts, videos, data = toy_split()
    head = small_head("tightTransf")
    full = evaluate(head, texts, videos, data, method="h", n_boot=50, v2t=v2t)
    only = evaluate_twins(head, texts, videos, data, method="h", n_boot=50)
    np.testing.assert_allclose(only.twin_scores, full.twin_scores, atol=1e-5)
    np.testing.assert_array_equal(only.twin_factors, full.twin_factors)
    np.testing.assert_array_equal(only.twin_videos, full.twin_videos)
    pd.testing.assert_frame_equal(only.twins, full.twins, atol=1e-3)
    assert only.t2v == {} and only.v2t == {} and only.sim is None
    no_twins = RetrievalData("toy", "test", data.videos, data.texts, data.text_to_video, data.query_index, {})
    assert evaluate_twins(head, texts, videos, no_twins, method="h").twins is None
