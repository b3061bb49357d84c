"""tvrlib.experiment.subset_runs (notebook 05's section): runs restricted to some test queries."""

from __future__ import annotations

import numpy as np
import pytest

from tvrlib import metrics as M
from tvrlib.experiment import HeadRuns, Protocol, SeedRun, paired_difference, subset_runs, summarise_seeds

P = Protocol(max_epochs=2, patience=None, seeds=(0, 1), batch_size=4, lr=1e-3, logit_scale=2.0)


def fake(label: str, ranks_by_seed: dict[int, np.ndarray], gold: np.ndarray) -> HeadRuns:
    out = HeadRuns(label, label, P)
    for s, r in ranks_by_seed.items():
        out.runs.append(SeedRun(label, label, s, M.summarize(r), r, gold, 3, 2, True, 0.5, 1.0))
    return out


def test_subset_keeps_training_facts_and_recomputes_metrics():
    gold = np.array([0, 1, 2, 3, 3, 4])
    a = fake("A", {0: np.array([1.0, 5, 2, 1, 9, 3]), 1: np.array([2.0, 1, 1, 4, 8, 1])}, gold)
    b = fake("B", {0: np.array([3.0, 1, 1, 2, 2, 6]), 1: np.array([1.0, 7, 3, 1, 2, 2])}, gold)
    sel = np.array([True, False, True, False, True, True])
    sa, sb = subset_runs(a, sel), subset_runs(b, np.flatnonzero(sel), label="B on some")
    assert sa.label == "A" and sb.label == "B on some" and sa.seeds == (0, 1)
    for r_full, r_sub in zip(a.runs, sa.runs):
        np.testing.assert_array_equal(r_sub.ranks, r_full.ranks[sel])
        np.testing.assert_array_equal(r_sub.gold, gold[sel])
        assert r_sub.metrics == M.summarize(r_full.ranks[sel])
        assert (r_sub.epochs_run, r_sub.best_epoch, r_sub.stopped_early) == (3, 2, True)
    assert a.runs[0].ranks.shape == (6,)  # the original is untouched
    d = paired_difference(sa, sb, "R1", n_boot=200)
    expected = np.mean([M.summarize(ra.ranks)["R1"] - M.summarize(rb.ranks)["R1"] for ra, rb in zip(sa.runs, sb.runs)])
    assert d["delta"] == pytest.approx(expected) and d["n"] == 4
    assert set(summarise_seeds([sa, sb])["head"]) == {"A", "B on some"}


def test_subset_rejects_bad_selections():
    a = fake("A", {0: np.array([1.0, 2.0]), 1: np.array([2.0, 1.0])}, np.array([0, 1]))
    with pytest.raises(ValueError, match="one entry per test query"):
        subset_runs(a, np.array([True, False, True]))
    with pytest.raises(ValueError, match="no test query"):
        subset_runs(a, np.array([False, False]))
