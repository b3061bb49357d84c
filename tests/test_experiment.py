"""The shared training protocol (tvrlib.experiment): built from a profile, changes recorded with their reason, the
same seed gives the same results, summaries over seeds, paired differences over seeds and test queries."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tvrlib import experiment as X
from tvrlib import metrics as M
from tvrlib.experiment import HeadRuns, Protocol, SeedRun, compare, paired_difference, run, run_heads, summarise_seeds
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.profiles import training_settings
from tvrlib.training import FeatureSource

pytestmark = pytest.mark.usefixtures("one_thread")

D, F_ = 8, 4
CLIP_TAU = math.log(1 / 0.07)


def source(seed: int, n_videos: int, captions: int = 2) -> FeatureSource:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_videos, F_, D, generator=g)
    mask = torch.ones(n_videos, F_, dtype=torch.bool)
    mask[::3, 3:] = False
    t2v = np.repeat(np.arange(n_videos), captions)
    sentence = frames.mean(1)[t2v] + 0.8 * torch.randn(len(t2v), D, generator=g)
    return FeatureSource(TextInput(sentence), VideoInput(frames, mask), t2v)


@pytest.fixture(scope="module")
def data():
    return source(0, 32), source(1, 12), source(2, 16)


def protocol(**kw) -> Protocol:
    base = dict(max_epochs=3, patience=2, temporal_layers=1, batch_size=8, lr=1e-2)
    base.update(kw)
    return Protocol.from_profile("tiny", logit_scale=CLIP_TAU, **base)


# --------------------------------------------------------------------------- the protocol
def test_the_protocol_comes_from_the_profile():
    T = training_settings("quick")
    P = Protocol.from_profile("quick", logit_scale=4.2, seed=7)
    assert P.max_epochs == T["max_epochs"] and P.patience == T["patience"]
    assert P.seeds == tuple(range(7, 7 + T["seeds"])) and len(P.seeds) >= 3
    assert (P.batch_size, P.lr, P.lr_encoder, P.temporal_layers) == (
        T["batch_size"],
        T["lr"],
        T["lr_encoder"],
        T["temporal_layers"],
    )
    assert P.logit_scale == 4.2 and P.loss == "infonce" and P.select_metric == "R1" and P.changes == ()
    cfg = P.fit_config(8)
    assert cfg.epochs == P.max_epochs and cfg.patience == P.patience and cfg.seed == 8 and cfg.lr == P.lr
    assert "at most" in P.describe() and P.differences() == ""
    with pytest.raises(TypeError):
        Protocol.from_profile("quick")  # the temperature's starting value is stated, never implied
    with pytest.raises(TypeError, match="unknown protocol fields"):
        Protocol.from_profile("quick", logit_scale=4.2, epochs=3)
    assert Protocol.from_profile("quick", logit_scale=4.2, lr=None).lr == T["lr"]  # None: the profile's value


def test_from_session_starts_the_temperature_from_clip_and_the_seeds_from_the_session():
    from types import SimpleNamespace

    clip = SimpleNamespace(logit_scale=torch.tensor(3.25))
    S = SimpleNamespace(profile="full", seed=2, encoder=SimpleNamespace(model=clip))
    P = Protocol.from_session(S, patience=0)  # 0: no early stopping
    assert P.logit_scale == 3.25 and P.profile == "full" and P.seeds == (2, 3, 4, 5, 6) and P.patience is None
    assert P.as_dict()["seeds"] == (2, 3, 4, 5, 6) and "every epoch" in P.describe()
    Q = P.replace(logit_scale=CLIP_TAU, reason="this paper starts from ln(1/0.07)")
    assert "logit_scale 3.25 -> 2.65926 (this paper starts from ln(1/0.07))" in Q.differences()


def test_setup_gives_a_notebook_its_session_settings_protocol_and_splits(monkeypatch):
    from types import SimpleNamespace

    import tvrlib.session
    from tvrlib.experiment import setup
    from tvrlib.training import FeatureSource

    clip = SimpleNamespace(logit_scale=torch.tensor(2.5))
    seen = {}

    def fake_session(profile, **kw):
        seen.update(kw)
        return SimpleNamespace(profile=profile, seed=kw["seed"], encoder=SimpleNamespace(model=clip))

    monkeypatch.setattr(tvrlib.session, "setup", fake_session)
    monkeypatch.setattr(
        FeatureSource,
        "from_session",
        classmethod(lambda cls, S, split, words=False, patches=False: f"{split} features" + " +words" * words),
    )
    B = setup("quick", seed=3, threads=1, max_epochs=4, patience=None)
    assert seen["seed"] == 3 and seen["threads"] == 1 and seen["device"] == "auto"
    assert B.settings["max_epochs"] == 4 and B.settings["patience"] == training_settings("quick")["patience"]
    assert B.protocol.max_epochs == 4 and B.protocol.logit_scale == 2.5 and B.protocol.seeds[0] == 3
    assert (B.train, B.val, B.test) == ("train features", "val features", "test features")
    assert setup("quick", words=True).test == "test features +words"  # the token-level heads' sources
    with pytest.raises(TypeError, match="unknown training settings"):
        setup("quick", num_epochs=4)


def test_a_head_differs_only_with_a_recorded_reason():
    P = protocol()
    with pytest.raises(ValueError, match="reason"):
        P.replace(batch_size=4, reason=" ")
    with pytest.raises(TypeError, match="unknown protocol fields"):
        P.replace(epochs=4, reason="typo")
    Q = P.replace(head_options={"dropout": 0.3}, reason="X-Pool: dropout 0.3")
    Q = Q.replace(batch_size=4, lr=P.lr, reason="cross-encoder cost")  # lr unchanged: not recorded
    assert [c.field for c in Q.changes] == ["head_options", "batch_size"]
    assert Q.batch_size == 4 and dict(Q.head_options) == {"dropout": 0.3} and P.changes == ()
    line = Q.differences()
    assert "\n" not in line and "X-Pool: dropout 0.3" in line and "batch_size 8 -> 4 (cross-encoder cost)" in line
    assert Q.head_kwargs("xpool", D)["dropout"] == 0.3
    with pytest.raises(TypeError, match="does not take"):
        Q.head_kwargs("seqTransf", D)  # a head option the head does not take is an error, not silently dropped
    assert P.head_kwargs("seqTransf", D) == {"dim": D, "layers": 1}
    assert P.head_kwargs("meanP", D) == {"dim": D}
    with pytest.raises(ValueError):
        protocol(seeds=(1, 1))
    with pytest.raises(ValueError):
        protocol(loss="mse")


# --------------------------------------------------------------------------- running heads
def test_the_same_seed_gives_identical_results(data):
    train, val, test = data
    P = protocol()
    first = run(P, "seqTransf", train, val, test)
    torch.manual_seed(1234)  # the global RNG state must not matter
    second = run(P, "seqTransf", train, val, test)
    assert first.seeds == second.seeds == P.seeds
    for a, b in zip(first, second):
        assert a.metrics == b.metrics and np.array_equal(a.ranks, b.ranks)
        assert (a.epochs_run, a.best_epoch, a.stopped_early, a.best_val) == (
            b.epochs_run,
            b.best_epoch,
            b.stopped_early,
            b.best_val,
        )
        assert a.history.drop(columns=["train_seconds", "eval_seconds"]).equals(
            b.history.drop(columns=["train_seconds", "eval_seconds"])
        )
        for (k, x), y in zip(a.trained.state_dict().items(), b.trained.state_dict().values()):
            assert torch.equal(x, y), k
    # and another seed is another run
    w0, w1 = (r.trained.state_dict()["transformer.resblocks.0.mlp.c_fc.weight"] for r in first)
    assert not torch.equal(w0, w1)


def test_a_run_records_epochs_and_ranks_the_test_queries(data):
    train, val, test = data
    P = protocol(max_epochs=4, patience=1)
    r = run(P, "seqLSTM", train, val, test, label="LSTM", test_eval_fn=lambda head, seed: ("evaluated", seed))
    assert r.label == "LSTM" and r.trained and len(r) == len(P.seeds)
    for s in r:
        assert 1 <= s.best_epoch <= s.epochs_run <= 4 and s.epochs_run == len(s.history)
        assert s.stopped_early == (s.epochs_run < 4)
        assert s.ranks.shape == (len(test.query_index),) and np.array_equal(s.gold, test.text_to_video)
        assert s.metrics == M.summarize(s.ranks) and s.evaluation == ("evaluated", s.seed)
    table = r.table()
    assert list(table.index) == list(P.seeds) and {"R1", "MnR", "epochs_run", "best_epoch"} <= set(table.columns)


def test_a_head_without_parameters_is_not_trained(data):
    train, val, test = data
    r = run(protocol(), "meanP", train, val, test)
    assert not r.trained and all(s.epochs_run == 0 and s.best_epoch == 0 and s.history is None for s in r)
    sim = score_all(HEADS.build("meanP"), test.texts, test.videos)  # zero-shot, as before training
    zero_shot = M.ranks_t2v(sim, test.text_to_video)
    assert np.array_equal(r.runs[0].ranks, zero_shot)


def test_compare_trains_baseline_and_candidate_under_the_same_protocol(data):
    train, val, test = data
    P = protocol(max_epochs=2)
    c = compare(P, train, val, test, baseline="meanP", candidate="seqLSTM", n_boot=100)
    assert c.baseline.head == "meanP" and c.candidate.head == "seqLSTM"
    assert c.baseline.protocol is P and c.candidate.protocol is P
    assert c.diff["a_label"] == "seqLSTM" and c.diff["b_label"] == "meanP" and c.diff["seeds"] == len(P.seeds)
    again = compare(P, train, val, test, baseline=c.baseline, candidate=c.candidate, n_boot=100)  # no retraining
    assert again.diff["delta"] == c.diff["delta"]
    with pytest.raises(ValueError, match="seeds"):
        compare(
            P,
            train,
            val,
            test,
            baseline=c.baseline,
            candidate="seqLSTM",
            candidate_protocol=P.replace(seeds=(5, 6), reason="x"),
        )
    heads = run_heads(
        P,
        ["meanP", "xpool"],
        train,
        val,
        test,
        protocols={"xpool": P.replace(head_options={"dropout": 0.0}, reason="no dropout")},
        labels={"xpool": "X-Pool"},
    )
    assert list(heads) == ["meanP", "X-Pool"] and "no dropout" in heads["X-Pool"].note()
    assert heads["meanP"].note() == ""


# --------------------------------------------------------------------------- summaries and paired differences
def fake_runs(label: str, ranks_by_seed: dict[int, np.ndarray], gold=None, epochs=0) -> HeadRuns:
    P = protocol(seeds=tuple(ranks_by_seed))
    out = HeadRuns(label, label, P)
    for s, r in ranks_by_seed.items():
        r = np.asarray(r, dtype=float)
        g = np.arange(len(r)) if gold is None else np.asarray(gold)
        out.runs.append(SeedRun(label, label, s, M.summarize(r), r, g, epochs, epochs, False, float("nan"), 0.0))
    return out


def test_summarise_seeds_gives_mean_and_spread():
    a = fake_runs("A", {0: [1, 1, 2, 3], 1: [1, 2, 2, 3], 2: [2, 2, 2, 3]}, epochs=3)
    t = summarise_seeds({"A": a}).set_index("metric")
    r1 = np.array([50.0, 25.0, 0.0])
    assert t.loc["R1", "mean"] == pytest.approx(r1.mean()) and t.loc["R1", "std"] == pytest.approx(r1.std(ddof=1))
    assert (t.loc["R1", "min"], t.loc["R1", "max"], t.loc["R1", "seeds"]) == (0.0, 50.0, 3)
    assert t.loc["R1", "cell"] == "25.0 ± 25.0 [0.0, 50.0]" and t.loc["epochs_run", "mean"] == 3
    one = summarise_seeds(fake_runs("B", {0: [1, 2]})).set_index("metric")
    assert np.isnan(one.loc["R1", "std"])


@pytest.mark.parametrize("metric", ["R1", "R5", "R10", "MdR", "MnR"])
@pytest.mark.parametrize("clustered", [False, True])
def test_weighted_bootstrap_statistics_equal_the_resampled_ones(metric, clustered):
    rng = np.random.default_rng(0)
    ranks = rng.integers(1, 20, size=30).astype(float) + 0.5 * (rng.random(30) < 0.2)
    unit_of = rng.integers(0, 9, size=30) if clustered else None
    n_units = 9 if clustered else 30
    w = X._weights(np.random.default_rng(1), 50, n_units, unit_of)
    got = X._weighted_stat(metric, ranks, w)
    want = [M.summarize(np.repeat(ranks, row))[metric] for row in w]
    assert np.allclose(got, want)


def test_paired_difference_over_seeds():
    rng = np.random.default_rng(0)
    base = rng.integers(1, 6, size=200).astype(float)
    better = {s: np.where(rng.random(200) < 0.3 + 0.05 * s, 1.0, base) for s in range(3)}  # more R@1 hits
    a, b = fake_runs("A", better), fake_runs("B", {s: base for s in range(3)})
    d = paired_difference(a, b, "R1", n_boot=300)
    per = [M.summarize(better[s])["R1"] - M.summarize(base)["R1"] for s in range(3)]
    assert d["per_seed_delta"] == pytest.approx(per) and d["delta"] == pytest.approx(np.mean(per))
    assert d["seeds"] == 3 and d["seeds_positive"] == 3 and d["seeds_same_sign"] == 3
    assert d["ci"][0] > 0 and d["ci"][0] <= d["delta"] <= d["ci"][1]
    assert d["ci"][1] - d["ci"][0] >= d["ci_queries"][1] - d["ci_queries"][0] - 1e-9  # seeds add variance
    assert list(d["per_seed"]["seed"]) == [0, 1, 2] and d["resampled"] == "queries"
    for s, row in d["per_seed"].iterrows():
        p = M.paired_bootstrap(better[s], base, "R1", n_boot=300)
        assert (row["ci_lo"], row["ci_hi"]) == p["ci"]
    same = paired_difference(b, b, "MnR", n_boot=50)
    assert same["delta"] == 0 and same["ci"] == (0.0, 0.0) and same["seeds_zero"] == 3 and same["lower_is_better"]
    with pytest.raises(ValueError, match="same"):
        paired_difference(a, fake_runs("C", {0: base, 1: base, 5: base}))
    with pytest.raises(ValueError, match="same test queries"):
        paired_difference(a, fake_runs("C", {s: base[:100] for s in range(3)}))


def test_with_one_seed_the_pooled_ci_is_the_query_ci():
    rng = np.random.default_rng(1)
    a = fake_runs("A", {0: rng.integers(1, 4, 80).astype(float)})
    b = fake_runs("B", {0: rng.integers(1, 4, 80).astype(float)})
    d = paired_difference(a, b, "R5", n_boot=200)
    assert d["ci"] == d["ci_queries"] and d["seeds"] == 1


def test_captions_of_one_video_are_resampled_together():
    """Duplicating every query 4 times (4 captions per video, identical ranks) must not narrow the CI: resampling
    videos gives exactly the CI of the single-caption split; resampling captions would shrink it by about half."""
    rng = np.random.default_rng(2)
    q = 60
    ra = {s: rng.integers(1, 5, q).astype(float) for s in range(2)}
    rb = {s: rng.integers(1, 5, q).astype(float) for s in range(2)}
    single = paired_difference(
        fake_runs("A", ra), fake_runs("B", rb), "R1", n_boot=400, clusters=np.arange(q)
    )  # q clusters of one query: the same draws as the duplicated split's q videos
    gold = np.repeat(np.arange(q), 4)
    A4 = fake_runs("A", {s: np.repeat(r, 4) for s, r in ra.items()}, gold=gold)
    B4 = fake_runs("B", {s: np.repeat(r, 4) for s, r in rb.items()}, gold=gold)
    clustered = paired_difference(A4, B4, "R1", n_boot=400)  # "auto": the gold videos repeat, so videos are resampled
    assert clustered["resampled"].startswith(f"{q} clusters")
    assert clustered["ci"] == pytest.approx(single["ci"]) and clustered["delta"] == pytest.approx(single["delta"])
    naive = paired_difference(A4, B4, "R1", n_boot=400, clusters=None)
    width = lambda d: d["ci"][1] - d["ci"][0]  # noqa: E731
    assert width(naive) < 0.7 * width(clustered)


def test_seed_rows_are_tidy():
    rows = pd.DataFrame(X.seed_rows([fake_runs("A", {0: [1, 2], 1: [2, 2]})]))
    assert list(rows["seed"]) == [0, 1] and {"head", "R1", "epochs_run", "best_epoch", "stopped_early"} <= set(rows)


# --------------------------------------------------------------------------- notebooks 03-04 (nb-b): rank_on
def test_rank_on_reranks_the_kept_heads_on_another_test_source(data):
    train, val, test = data
    P = protocol(seeds=(0, 1))
    seq = run(P, "seqTransf", train, val, test)
    small = test.subset(6)
    again = X.rank_on(seq, small, label="seqTransf, 6 videos")
    assert again.seeds == seq.seeds and again.label == "seqTransf, 6 videos"
    for old, new in zip(seq.runs, again.runs):
        assert new.epochs_run == old.epochs_run and new.best_epoch == old.best_epoch and new.trained is old.trained
        sim = score_all(old.trained, small.texts.index(torch.as_tensor(small.query_index)), small.videos)
        assert np.array_equal(new.ranks, M.ranks_t2v(sim, small.text_to_video[small.query_index]))
        assert new.ranks.shape == (len(small.query_index),) and new.metrics == M.summarize(new.ranks)
    mean = X.rank_on(run(P, "meanP", train, val, test), small)
    assert paired_difference(again, mean, "R1")["n"] == len(small.query_index)  # paired on the same queries
    with pytest.raises(ValueError, match="not kept"):
        X.rank_on(run(P, "meanP", train, val, test, keep_heads=False), small)


def test_twin_runs_turn_twin_accuracy_into_a_two_video_mean_rank():
    from types import SimpleNamespace

    from tvrlib.twins import twin_outcomes

    pair = {
        0: np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3]]),  # win, tie, loss, win
        1: np.array([[0.9, 0.1], [0.6, 0.5], [0.2, 0.8], [0.3, 0.7]]),  # win, win, loss, loss
    }
    factors, videos = np.array(["order", "order", "direction", "order"]), np.array([3, 5, 8, 9])
    hr = fake_runs("h", {s: np.ones(2) for s in pair})
    for r in hr.runs:
        r.evaluation = SimpleNamespace(twin_scores=pair[r.seed], twin_factors=factors, twin_videos=videos)
    order = X.twin_runs(hr, "order")
    assert order.label == "h (order twins)" and order.seeds == hr.seeds
    for r in order.runs:
        acc = 100 * twin_outcomes(pair[r.seed])[factors == "order"].mean()
        assert r.metrics["MnR"] == pytest.approx(2 - acc / 100) and np.array_equal(r.gold, [3, 5, 9])
    assert np.array_equal(order.runs[0].ranks, [1.0, 1.5, 1.0])
    d = paired_difference(X.twin_runs(hr, "all"), X.twin_runs(hr, "all"), "MnR")
    assert d["delta"] == 0 and d["n"] == 4
    with pytest.raises(ValueError, match="no twin queries"):
        X.twin_runs(hr, "detail")
    with pytest.raises(ValueError, match="no twin scores"):
        X.twin_runs(fake_runs("g", {0: np.ones(2)}), "order")


def test_judge_records_a_paper_claim_or_our_hypothesis_never_both():
    from tvrlib.experiment import judge

    rng = np.random.default_rng(0)
    base = {s: rng.integers(2, 20, 300).astype(float) for s in (0, 1, 2)}
    better = fake_runs("A", {s: np.maximum(1.0, r - 3) for s, r in base.items()})  # every query ranks higher
    worse = fake_runs("B", base)
    row, view = judge(
        better, worse, notebook="06_x", paper="P", table="Table 3", claim="A beats B", paper_difference=2.4, n_boot=200
    )
    assert row["kind"] == "claims" and row["verdict"] == "reproduces" and row["notebook"] == "06_x"
    assert view["verdict"] == "reproduces" and view["seeds agreeing"] == "3/3" and view["A"] == "A"
    assert view["ours ΔR1"] == pytest.approx(row["our_difference"]) and view["ours ΔR1"] > 0
    assert "ours ΔMnR (shown)" in view and view["ours ΔMnR (shown)"] < 0
    row, view = judge(worse, better, notebook="06_x", hypothesis="H1: B beats A", metric="R10", n_boot=200)
    assert row["kind"] == "hypotheses" and row["verdict"] == "contradicted" and view["metric"] == "R10"
    with pytest.raises(ValueError, match="one statement"):
        judge(better, worse, notebook="06_x", paper="P", claim="c", hypothesis="h")
    with pytest.raises(ValueError, match="names its paper"):
        judge(better, worse, notebook="06_x", claim="c")


def test_training_summary_counts_early_stops_and_runs_cut_off_at_the_last_epoch():
    from tvrlib.experiment import training_summary

    trained = fake_runs("T", {0: [1, 2], 1: [2, 1]}, epochs=1)  # protocol() allows max_epochs (> 1) epochs
    limit = trained.protocol.max_epochs
    trained.runs[0] = dataclasses.replace(trained.runs[0], epochs_run=limit, best_epoch=limit)
    trained.runs[1] = dataclasses.replace(trained.runs[1], stopped_early=True)
    table, text = training_summary({"T": trained, "free": fake_runs("free", {0: [1, 2], 1: [2, 1]})})
    assert list(table.index) == ["T"]  # a head without parameters has no training row
    assert limit > 1 and table.loc["T", "epochs_run"] == f"{limit}/1" and table.loc["T", "stopped_early"] == 1
    assert "1 of 2 trained runs stopped early" in text and "1 of 2 had their best" in text and "(T)" in text
    assert "1 of 2 were ended by the epoch limit with patience left (T)" in text
    assert training_summary(fake_runs("free", {0: [1]}))[1] == "No head here has parameters to train."


def test_twin_accuracy_over_seeds_is_the_mean_of_each_seeds_twin_accuracy():
    from types import SimpleNamespace

    from tvrlib.experiment import twin_accuracy_over_seeds

    hr = fake_runs("A", {0: [1, 2, 1], 1: [1, 1, 1]})
    factors = np.array(["order", "detail", "detail"])
    wins = {0: [[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], 1: [[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]}  # seed 1: a tie
    for r in hr.runs:
        r.evaluation = SimpleNamespace(
            twin_scores=np.array(wins[r.seed]), twin_factors=factors, twin_videos=np.arange(3)
        )
    t = twin_accuracy_over_seeds({"A": hr})
    assert list(t.columns) == ["order", "detail", "all"]
    assert t.loc["A", "order"] == pytest.approx(100.0)
    assert t.loc["A", "detail"] == pytest.approx((50.0 + 75.0) / 2)  # seed 0: 1 of 2; seed 1: 1 and a tie
    from tvrlib.experiment import twin_seed_rows

    rows = pd.DataFrame(twin_seed_rows("exp", {"A": hr}))
    assert len(rows) == 2 * 3 and set(rows["factor"]) == {"order", "detail", "all"}  # 2 seeds x (2 factors + all)
    detail = rows[rows["factor"] == "detail"].set_index("seed")
    assert detail.loc[0, "twin_accuracy"] == pytest.approx(50.0) and detail.loc[1, "twin_accuracy"] == pytest.approx(
        75.0
    )
    assert (detail["n"] == 2).all() and (rows["method"] == "A").all()
