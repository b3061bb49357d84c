"""tvrlib.diagnostics: the measurements notebooks 00-02 show."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tvrlib import diagnostics as D
from tvrlib import metrics as M
from tvrlib.heads import HEADS
from tvrlib.heads.base import TextInput, VideoInput


def _twins(seed=0, pairs=20, frames=12, dim=64):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(2 * pairs, frames, dim, generator=g)
    for v in range(1, 2 * pairs, 2):
        f[v] = f[v - 1][torch.randperm(frames, generator=g)]
    mask = torch.ones(2 * pairs, frames, dtype=torch.bool)
    text = f.mean(dim=1) + 0.5 * torch.randn(2 * pairs, dim, generator=g)
    return text, f, mask


def test_sorted_float64_ties_twins_exactly_and_float32_shuffled_differs_by_rounding_only():
    text, f, mask = _twins()
    c64 = D.mean_pool_cosines(text, f, mask, torch.float64, "sorted")
    c32 = D.mean_pool_cosines(text, f, mask, torch.float32, "shuffled", seed=1)
    assert c64.dtype == np.float64 and c32.dtype == np.float32
    gold = np.arange(len(text))
    assert np.all(c64[gold, gold] == c64[gold, gold ^ 1])  # twins tie bit for bit
    assert 0 < np.abs(c64 - c32).max() < M.TIE_TOLERANCE / 10
    ref = HEADS.build("meanP").score(TextInput(text), VideoInput(f, mask)).numpy()
    np.testing.assert_allclose(c64, ref, atol=1e-6)  # the same cosines as the meanP head
    assert M.t2v(c64, gold) == M.t2v(c32, gold)


def test_order_pairs_sharing_frames_reads_the_swapped_kinds():
    videos = [
        {"video_id": "a", "spec": {"events": [{"kind": "move"}, {"kind": "move"}, {"kind": "grow"}]}},
        {"video_id": "b", "spec": {"events": [{"kind": "appear"}, {"kind": "grow"}, {"kind": "move"}]}},
    ]
    twins = [
        {"video_id": "a", "twin_id": "a2", "factor": "order", "event_index": 0},
        {"video_id": "b", "twin_id": "b2", "factor": "order", "event_index": 1},
        {"video_id": "b", "twin_id": "b3", "factor": "detail"},
    ]
    t = D.order_pairs_sharing_frames(videos, twins, lambda v, w: v == "a")
    assert t["swapped"].tolist() == ["move + move", "grow + move"]
    assert t["same multiset of frames"].tolist() == [True, False]


def test_single_frame_table_rows_match_masked_scoring():
    text, f, mask = _twins(seed=3)
    head = HEADS.build("meanP")
    gold = np.arange(len(text))
    kinds = ["video", "event"] * (len(text) // 2)
    t = D.single_frame_table(head, TextInput(text), gold, VideoInput(f, mask), kinds, spans=[(3, 8)])
    assert list(t.index) == ["all"] + [str(i) for i in range(12)] + ["3-8"]
    assert t.loc["all", "R1 all"] == M.t2v(head.score(TextInput(text), VideoInput(f, mask)), gold)["R1"]
    keep = torch.zeros_like(mask)
    keep[:, 5] = True
    assert t.loc["5", "MnR all"] == M.t2v(head.score(TextInput(text), VideoInput(f, keep)), gold)["MnR"]


def _move_split(n: int, seed: int, sees_direction: bool):
    """A constructed synthetic split: real specs of the tiny config, and frame features that either encode where a
    moving object is along its move (``sees_direction``: a direction-specific vector times its progress) or only
    which object moves (the same vector for every direction: where-blind)."""
    from types import SimpleNamespace

    from tvrlib.synthetic.benchmark import load_config, sample_spec
    from tvrlib.video import sample_indices

    cfg = load_config("tiny")
    specs = [sample_spec(np.random.default_rng([seed, i]), cfg) for i in range(n)]
    g = torch.Generator().manual_seed(seed)
    frames = 0.05 * torch.randn(n, 12, 8, generator=g)
    axis = {"left": 0, "right": 1, "up": 2, "down": 3}
    for j, spec in enumerate(specs):
        idx = sample_indices(spec.num_frames, 12, "uniform")[:12]
        for e, (s, t) in zip(spec.events, spec.bounds(), strict=True):
            for k, f in enumerate(idx):
                if e.kind == "move" and s < f < t:
                    where = (f - s) / (t - s) if sees_direction else 1.0
                    frames[j, k, axis[e.direction] if sees_direction else 4] += where
                    frames[j, k, 5] += 1.0
    meta = {"video_fields": [{"spec": sp.to_json()} for sp in specs]}
    return SimpleNamespace(dataset="constructed", split=str(seed), meta=meta), frames


def test_direction_probe_reads_direction_only_when_the_features_carry_it():
    a, fa = _move_split(60, 0, True)
    b, fb = _move_split(40, 1, True)
    seen = D.direction_probe(a, fa, b, fb)
    assert seen["n_train"] > 20 and seen["n_test"] > 10
    assert seen["test_accuracy"] > 0.9
    a, fa = _move_split(60, 0, False)
    b, fb = _move_split(40, 1, False)
    blind = D.direction_probe(a, fa, b, fb)
    assert blind["test_accuracy"] < 0.6  # the same moves, features blind to where: near chance (25 %)


def _moving_split(n: int, seed: int):
    """Real tiny-config specs and frame features that say where a moving object is along its axis: a move to the
    right (down) runs from -1 to +1 on feature 0 (1) over its span, a move to the left (up) from +1 to -1. A move
    and its reverse hold the same values in the opposite order, so only a head that sees frame order can tell them
    apart."""
    from types import SimpleNamespace

    from tvrlib.synthetic.benchmark import load_config, sample_spec
    from tvrlib.video import sample_indices

    cfg = load_config("tiny")
    specs = [sample_spec(np.random.default_rng([seed, i]), cfg) for i in range(n)]
    g = torch.Generator().manual_seed(seed)
    frames = 0.05 * torch.randn(n, 12, 8, generator=g)
    frames[:, :, 7] += 1.0  # what every frame shows (a CLIP feature never has a norm near zero)
    axis = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}
    for j, spec in enumerate(specs):
        idx = sample_indices(spec.num_frames, 12, "uniform")[:12]
        for e, (s, t) in zip(spec.events, spec.bounds(), strict=True):
            for k, f in enumerate(idx):
                if e.kind == "move" and s < f < t:
                    a, sign = axis[e.direction]
                    frames[j, k, a] += 2.0 * sign * ((f - s) / (t - s) - 0.5)
                    frames[j, k, 5] += 1.0
    meta = {"video_fields": [{"spec": sp.to_json()} for sp in specs]}
    return SimpleNamespace(dataset="constructed", split=str(seed), meta=meta), frames


def test_direction_readout_learns_direction_only_with_frame_order():
    a, fa = _moving_split(480, 0)
    b, fb = _moving_split(120, 1)
    opts = {"layers": 1, "heads": 2}
    seen = D.direction_readout("seqTransf", a, fa, b, fb, head_options=opts, epochs=60, lr=3e-3)
    assert seen["n_train"] > 40 and seen["n_test"] > 20
    assert seen["test_accuracy"] > 0.85, seen
    again = D.direction_readout("seqTransf", a, fa, b, fb, head_options=opts, epochs=60, lr=3e-3)
    assert again == {**seen, "seconds": again["seconds"]}  # seeded: the same accuracies
    blind = D.direction_readout("seqTransf-noPE", a, fa, b, fb, head_options=opts, epochs=60, lr=3e-3)
    assert blind["test_accuracy"] < 0.7, blind  # the axis is readable, the sign along it is not: about 50 %
    threads = torch.get_num_threads()
    few = D.direction_readout("seqTransf", a, fa, b, fb, n_train=10, head_options=opts, epochs=1)
    assert few["n_train"] == 10 and torch.get_num_threads() == threads  # it trains on one thread, then restores
    with pytest.raises(ValueError, match="single-move videos"):
        D.direction_readout("seqTransf", a, fa, b, fb, n_train=10_000)
