"""Verdicts a reviewer can trust (tvrlib.paper_tables): the four outcomes on constructed cases, seeds that disagree,
hypotheses that can never "reproduce", and claims.csv upserted by several notebooks, each claim judged once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tvrlib import metrics as M
from tvrlib.paper_tables import (
    CLAIM_COLUMNS,
    CLAIM_VERDICTS,
    HYPOTHESIS_VERDICTS,
    claim_verdict,
    direction_of,
    hypothesis_verdict,
    load_claims,
    record_claim,
    record_hypothesis,
    save_claims,
    verdict,
)


def diff(lo, hi, seeds, metric="R1"):
    """A paired difference A - B as tvrlib.experiment.paired_difference returns it (the fields a verdict reads)."""
    seeds = list(map(float, seeds))
    return {
        "metric": metric,
        "lower_is_better": metric in M.LOWER_IS_BETTER,
        "delta": float(np.mean(seeds)),
        "ci": (lo, hi),
        "per_seed_delta": seeds,
    }


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("TVR_RESULTS_DIR", str(tmp_path))
    return tmp_path


CASES = [
    # (diff, direction, paper verdict, hypothesis verdict)
    (diff(1.0, 3.0, [1.5, 2.0, 2.5]), 1, "reproduces", "supported"),
    (diff(-3.0, -1.0, [-1.5, -2.0, -2.5]), 1, "opposite", "contradicted"),
    (diff(-3.0, -1.0, [-1.5, -2.0, -2.5]), -1, "reproduces", "supported"),  # the paper says A is worse
    (diff(-1.0, 2.0, [0.5, 1.0, 0.2]), 1, "not significant", "not significant"),  # CI contains 0
    (diff(0.2, 3.0, [1.5, 2.0, -0.5]), 1, "not significant", "not significant"),  # a seed disagrees
    (diff(-3.0, -0.2, [-1.5, -2.0, 0.4]), 1, "not significant", "not significant"),  # the other way, one disagrees
    (diff(0.1, 3.0, [1.5, 0.0, 2.0]), 1, "not significant", "not significant"),  # a seed with no difference
    (diff(0.0, 3.0, [1.0, 2.0]), 1, "not significant", "not significant"),  # a CI that touches 0 contains it
    # ranks: lower is better, so "A better" is a negative A - B
    (diff(-5.0, -1.0, [-2.0, -3.0], "MnR"), 1, "reproduces", "supported"),
    (diff(1.0, 5.0, [2.0, 3.0], "MnR"), 1, "opposite", "contradicted"),
    (diff(1.0, 5.0, [2.0, -3.0], "MnR"), 1, "not significant", "not significant"),
    # 0 up to float rounding is 0: a bootstrap bound of 1.5e-17 (as CrossTVR Table 1 had) does not exclude 0,
    # and a seed whose difference is 1e-12 takes no side
    (diff(1.5e-17, 3.0, [1.0, 2.0]), 1, "not significant", "not significant"),
    (diff(-3.0, -1.5e-17, [-1.0, -2.0]), 1, "not significant", "not significant"),
    (diff(0.5, 3.0, [1.0, 2.0, 1e-12]), 1, "not significant", "not significant"),
]


@pytest.mark.parametrize("d,direction,paper,hypothesis", CASES)
def test_verdict_rules_on_constructed_cases(d, direction, paper, hypothesis):
    assert verdict(d, direction) == paper
    assert verdict(d, direction, kind="hypothesis") == hypothesis_verdict(d, direction) == hypothesis


def test_all_four_outcomes_occur_and_nothing_else():
    seen = {verdict(d, s) for d, s, _, _ in CASES} | {verdict(None, not_comparable="MSVD has no twins")}
    assert seen == set(CLAIM_VERDICTS)


def test_a_hypothesis_is_never_called_reproduces(results):
    rng = np.random.default_rng(0)
    for _ in range(300):
        lo = rng.normal(0, 2)
        d = diff(lo, lo + abs(rng.normal(0, 2)), rng.normal(lo, 1, size=rng.integers(1, 6)), rng.choice(M.METRICS))
        for direction in (1, -1):
            assert hypothesis_verdict(d, direction) in HYPOTHESIS_VERDICTS
            assert verdict(d, direction, kind="hypothesis") != "reproduces"
    with pytest.raises(ValueError):
        verdict(None, kind="hypothesis", not_comparable="cannot test")
    with pytest.raises(ValueError):
        verdict(CASES[0][0], kind="ours")
    row = record_hypothesis("Cross-modal ranks event captions higher", CASES[0][0], notebook="05_x", metric="R1")
    assert row["verdict"] == "supported" and "paper" not in row
    forged = {**row, "verdict": "reproduces"}
    with pytest.raises(ValueError, match="never 'reproduces'"):
        save_claims([forged], "unused-profile")


def test_not_comparable_needs_a_reason_and_a_difference_needs_a_direction():
    assert verdict(None, not_comparable="our synthetic videos have no audio") == "not comparable"
    with pytest.raises(ValueError, match="reason"):
        verdict(None, not_comparable="  ")
    with pytest.raises(ValueError, match="no difference"):
        verdict(None)
    with pytest.raises(ValueError, match="direction"):
        verdict(CASES[0][0], direction=0)
    assert direction_of(2.1, "R1") == 1 and direction_of(-2.1, "R1") == -1
    assert direction_of(-3.0, "MnR") == 1 and direction_of(3.0, "MdR") == -1
    with pytest.raises(ValueError, match="no direction"):
        direction_of(float("nan"), "R1")


def test_a_single_comparison_counts_as_one_seed():
    rng = np.random.default_rng(0)
    gold = np.arange(50)
    good = np.eye(50) + 0.01 * rng.random((50, 50))
    bad = rng.random((50, 50))
    c = M.compare(good, bad, gold, "t2v", metric="R1", n_boot=200)
    assert verdict(c) == "reproduces" and verdict(c, -1) == "opposite"
    assert claim_verdict(c) == "reproduces"  # the older vocabulary is unchanged
    assert claim_verdict({"ci": (-1.0, 1.0)}) == "inconclusive"


def test_one_primary_metric_per_claim():
    with pytest.raises(ValueError, match="one primary metric"):
        record_claim("TopKTemporal", "Table 5", "x", CASES[0][0], notebook="04", paper_difference=1.0, metric="MnR")
    with pytest.raises(ValueError, match="names its paper"):
        record_claim("", "Table 5", "x", CASES[0][0], notebook="04", paper_difference=1.0)


# --------------------------------------------------------------------------- claims.csv
def claim(claim, d, notebook, paper="TopKTemporal", table="Table 5", paper_difference=2.0, **kw):
    return record_claim(paper, table, claim, d, notebook=notebook, paper_difference=paper_difference, **kw)


def test_claims_csv_is_upserted_by_several_notebooks(results):
    up, down = CASES[0][0], CASES[1][0]
    paths = save_claims(
        [
            claim("temporal encoding helps", up, "04_temporal_modelling.ipynb"),
            claim("K=4 beats K=1", down, "04_temporal_modelling", table="Table 4"),
        ],
        "quick",
    )
    assert paths["claims"] == results / "quick" / "claims.csv" and "hypotheses" not in paths
    save_claims(
        [
            claim("cross-modal beats mean", up, "05_text_conditioned_pooling", paper="CrossAttnGL", table="Table 2"),
            claim("not testable here", None, "05_text_conditioned_pooling", not_comparable="needs audio"),
        ],
        "quick",
    )
    t = load_claims("quick")
    assert list(t.columns) == CLAIM_COLUMNS and len(t) == 4
    assert list(zip(t["paper"], t["table"], t["claim"])) == sorted(zip(t["paper"], t["table"], t["claim"]))
    row = t.set_index("claim").loc["temporal encoding helps"]
    assert (row["verdict"], row["seeds"], row["seeds_agreeing"], row["notebook"]) == (
        "reproduces",
        3,
        3,
        "04_temporal_modelling",
    )
    assert row["our_difference"] == pytest.approx(2.0) and (row["ci_low"], row["ci_high"]) == (1.0, 3.0)
    nc = t.set_index("claim").loc["not testable here"]
    assert nc["verdict"] == "not comparable" and nc["reason"] == "needs audio" and np.isnan(nc["our_difference"])
    assert t.set_index("claim").loc["K=4 beats K=1", "seeds_agreeing"] == 0  # all three seeds went the other way
    # a notebook re-run replaces all its rows (no duplicate; a claim it no longer judges, here "K=4 beats K=1", or
    # judges under a new name does not survive) and leaves the other notebook's rows alone
    save_claims([claim("temporal encoding helps", CASES[3][0], "04_temporal_modelling")], "quick")
    t2 = load_claims("quick")
    assert len(t2) == 3 and t2.set_index("claim").loc["temporal encoding helps", "verdict"] == "not significant"
    assert "K=4 beats K=1" not in set(t2["claim"])
    assert t2.set_index("claim").loc["cross-modal beats mean", "notebook"] == "05_text_conditioned_pooling"


def test_a_claim_judged_in_two_notebooks_is_an_error(results):
    save_claims([claim("temporal encoding helps", CASES[0][0], "04_temporal_modelling")], "quick")
    before = (results / "quick" / "claims.csv").read_bytes()
    with pytest.raises(ValueError, match="04_temporal_modelling.*05_text_conditioned_pooling"):
        save_claims([claim("temporal encoding helps", CASES[3][0], "05_text_conditioned_pooling")], "quick")
    assert (results / "quick" / "claims.csv").read_bytes() == before  # nothing written
    with pytest.raises(ValueError, match="judged twice"):
        save_claims([claim("x", CASES[0][0], "04"), claim("x", CASES[1][0], "05")], "quick")


def test_hypotheses_go_to_their_own_table(results):
    h = record_hypothesis("X-Pool ranks event captions higher than meanP", CASES[9][0], notebook="05", metric="MnR")
    paths = save_claims([h, claim("temporal encoding helps", CASES[0][0], "04")], "quick")
    assert set(paths) == {"claims", "hypotheses"}
    hyp, claims = load_claims("quick", "hypotheses"), load_claims("quick")
    assert list(hyp["verdict"]) == ["contradicted"] and list(claims["claim"]) == ["temporal encoding helps"]
    assert "hypothesis" not in claims.columns and "paper" not in hyp.columns
    assert isinstance(load_claims("other"), pd.DataFrame) and load_claims("other").empty
