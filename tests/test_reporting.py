"""Results tables: metrics dicts to display tables and tidy rows, the atomic CSV writer, a paper's rows
beside ours and claim verdicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tvrlib import metrics as M
from tvrlib.paper_tables import claim_verdict, reported_vs_reproduced
from tvrlib.reporting import ci_cell, metrics_frame, results_rows, save_results

WITH_CI = {"R1": 42.04, "R1_lo": 39.55, "R1_hi": 44.61, "MnR": 7.25, "MnR_lo": 6.0, "MnR_hi": 8.75, "n": 100}


def test_ci_cell_rounds_value_and_bounds():
    assert ci_cell(42.04, 39.55, 44.649) == "42.0 [39.5, 44.6]"  # round half to even on the binary value
    assert ci_cell(1 / 3, 0.25, 0.5, digits=2) == "0.33 [0.25, 0.50]"


def test_metrics_frame_one_row_per_method_in_metric_order():
    plain = {"R1": 10.04, "R5": 20.0, "MdR": 3.0, "n": 5}
    df = metrics_frame({"ours": WITH_CI, "plain": plain})
    assert list(df.index) == ["ours", "plain"]
    assert list(df.columns) == ["R1", "MnR", "R5", "MdR"]  # first seen order; never "n" or the CI keys
    assert df.loc["ours", "R1"] == "42.0 [39.5, 44.6]" and df.loc["plain", "R1"] == 10.0
    assert metrics_frame({"ours": WITH_CI}, ci=False).loc["ours", "MnR"] == 7.2
    assert list(metrics_frame({"ours": WITH_CI}, metrics=("MnR",)).columns) == ["MnR"]


def test_results_rows_follow_the_metric_order():
    rows = results_rows("exp", "meanP", "t2v", {"MnR": 7.0, "R1": 40.0, "n": 3}, seed=1)
    assert [r["metric"] for r in rows] == ["R1", "MnR"]
    assert rows[0] == {
        "experiment": "exp",
        "method": "meanP",
        "direction": "t2v",
        "metric": "R1",
        "value": 40.0,
        "ci_lo": rows[0]["ci_lo"],
        "ci_hi": rows[0]["ci_hi"],
        "n": 3,
        "seed": 1,
    }
    assert math.isnan(rows[0]["ci_lo"])


def test_save_results_writes_the_csv_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("TVR_RESULTS_DIR", str(tmp_path))
    rows = results_rows("exp", "meanP", "t2v", WITH_CI)
    path = save_results("tiny", "exp", rows)
    assert path == tmp_path / "tiny" / "exp.csv"
    assert path.read_text() == pd.DataFrame(rows).to_csv(index=False)
    assert sorted(p.name for p in path.parent.iterdir()) == ["exp.csv"]  # no temp file left behind
    save_results("tiny", "exp", rows[:1])  # rewritten, not appended
    assert len(pd.read_csv(path)) == 1


def test_reported_vs_reproduced_puts_ours_beside_the_paper_row():
    reported = pd.DataFrame({"method": ["A", "B"], **{m: [1.0, 2.0] for m in M.METRICS}})
    ours = {
        "a": {
            **{m: 5.0 for m in M.METRICS},
            **{f"{m}_lo": 4.0 for m in M.METRICS},
            **{f"{m}_hi": 6.0 for m in M.METRICS},
        }
    }
    df = reported_vs_reproduced(reported, ours, {"A": "a"})
    assert list(df.columns) == [
        "paper row",
        "ours",
        *[f"{m} (paper)" for m in M.METRICS],
        *[f"{m} (ours)" for m in M.METRICS],
    ]
    assert df.loc[0, "R1 (paper)"] == 1.0 and df.loc[0, "MnR (ours)"] == "5.0 [4.0, 6.0]"
    with pytest.raises(KeyError, match="no row 'C'"):
        reported_vs_reproduced(reported, ours, {"C": "a"})


@pytest.mark.parametrize(
    "ci,lower,expected",
    [
        ((1.0, 3.0), False, "reproduces"),
        ((-3.0, -1.0), False, "opposite"),
        ((-1.0, 1.0), False, "inconclusive"),
        ((-3.0, -1.0), True, "reproduces"),
        ((1.0, 3.0), True, "opposite"),
        ((1.5e-17, 3.0), False, "inconclusive"),  # 0 up to rounding does not exclude 0
        ((-3.0, -1e-12), True, "inconclusive"),
    ],
)
def test_claim_verdict(ci, lower, expected):
    assert claim_verdict({"ci": ci}, metric_lower_is_better=lower) == expected
    flipped = {"reproduces": "opposite", "opposite": "reproduces", "inconclusive": "inconclusive"}[expected]
    assert claim_verdict({"ci": ci}, claimed_sign=-1, metric_lower_is_better=lower) == flipped
