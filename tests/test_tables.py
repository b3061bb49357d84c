"""tvrlib.tables: the row map, per-seed summaries beside reported rows, claims, twins and impossible rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tvrlib.paper_tables import load_paper_table
from tvrlib.tables import (
    ROW_MAP_COLUMNS,
    beside_reported,
    check_row_map,
    claims_view,
    hypotheses_view,
    load_inconsistencies,
    load_row_map,
    load_seed_results,
    load_twins,
    notebook_of,
    order_agreement,
    rank_problems,
    seed_stats,
    spread_cell,
    table_number,
    twin_matrix,
    unmapped_methods,
    verdict_counts,
)

NAN = float("nan")


def _reported(rows):
    """A small reported table in load_paper_table's layout (metric columns float, NaN where empty)."""
    df = pd.DataFrame(rows)
    for c in ["table", "dataset", "split", "direction", "method", "backbone", "extra", "note"]:
        if c not in df:
            df[c] = ""
    for m in ["R1", "R5", "R10", "MdR", "MnR"]:
        df[m] = pd.to_numeric(df[m], errors="coerce") if m in df else NAN
    return df


REPORTED = _reported(
    [
        {"table": "Table 2 (ablation)", "dataset": "MSR-VTT", "direction": "t2v", "method": "mean", "R1": 41.8},
        {"table": "Table 2 (ablation)", "dataset": "MSR-VTT", "direction": "v2t", "method": "mean", "R1": 40.0},
        {"table": "Table 2 (ablation)", "dataset": "MSR-VTT", "direction": "t2v", "method": "cross", "R1": 47.6},
        {"table": "Table 2 (ablation)", "dataset": "MSR-VTT", "direction": "t2v", "method": "big", "R1": 50.0},
    ]
)

MAP_ROWS = [
    ["000", "P", "Table 2 (ablation)", "MSR-VTT", "", "mean", "ablation", "ours", "a_seeds.csv", "Mean", ""],
    ["000", "P", "Table 2 (ablation)", "MSR-VTT", "", "cross", "ablation", "ours", "a_seeds.csv", "Cross", ""],
    ["000", "P", "Table 2 (ablation)", "MSR-VTT", "", "cross", "ablation", "stand-in", "b_seeds.csv", "X", "other"],
    ["000", "P", "Table 2 (ablation)", "MSR-VTT", "", "big", "ablation", "not implemented", "", "", "too big"],
]


def _write_map(tmp_path, rows=MAP_ROWS):
    path = tmp_path / "row_map.csv"
    pd.DataFrame(rows, columns=ROW_MAP_COLUMNS).to_csv(path, index=False)
    return path


def _seed_file(path, rows):
    pd.DataFrame(rows, columns=["head", "registered", "seed", "R1", "R5", "R10", "MdR", "MnR", "n"]).to_csv(
        path, index=False
    )


# --------------------------------------------------------------------------- the row map
def test_row_map_loads_and_normalises_seed_ids(tmp_path):
    rows = [list(r) for r in MAP_ROWS]
    rows[0][0] = "0"  # an unpadded id
    rm = load_row_map(_write_map(tmp_path, rows))
    assert list(rm.columns) == ROW_MAP_COLUMNS
    assert set(rm["seed_id"]) == {"000"}
    assert len(rm) == 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({7: "maybe"}, "status 'maybe'"),
        ({6: "appendix"}, "kind 'appendix'"),
        ({8: ""}, "needs results_file and head"),
    ],
)
def test_row_map_rejects_bad_rows(tmp_path, change, message):
    rows = [list(r) for r in MAP_ROWS]
    for col, value in change.items():
        rows[0][col] = value
    with pytest.raises(ValueError, match=message):
        load_row_map(_write_map(tmp_path, rows))


def test_row_map_needs_a_reason_without_a_counterpart_and_no_duplicates(tmp_path):
    rows = [list(r) for r in MAP_ROWS]
    rows[3][10] = ""
    with pytest.raises(ValueError, match="needs a note"):
        load_row_map(_write_map(tmp_path, rows))
    with pytest.raises(ValueError, match="mapped twice"):
        load_row_map(_write_map(tmp_path, [*MAP_ROWS, MAP_ROWS[0]]))


def test_check_row_map_finds_missing_and_uncovered_rows(tmp_path):
    rm = load_row_map(_write_map(tmp_path))
    assert check_row_map(rm, lambda seed: REPORTED) == []
    typo = rm.copy()
    typo.loc[0, "method"] = "Mean"  # matches no reported row, and leaves "mean" uncovered
    problems = check_row_map(typo, lambda seed: REPORTED)
    assert any("no t2v row 'Mean'" in p for p in problems)
    assert any("row 'mean' is not in the map" in p for p in problems)


def test_the_committed_row_map_matches_the_committed_paper_tables():
    rm = load_row_map()
    assert check_row_map(rm, load_paper_table) == []
    assert {"ablation", "main"} == set(rm["kind"])
    assert set(rm["seed_id"]) == {"000", "001", "002", "003"}


def test_the_committed_inconsistencies_load():
    inc = load_inconsistencies()
    assert set(inc["seed_id"]) == {"000", "001", "002", "003"}
    assert (inc["description"].str.len() > 20).all()


def test_table_number_and_notebook_of():
    assert table_number("Table 11 (appendix, DSL)") == "Table 11"
    assert table_number("Table 2") == "Table 2"
    assert table_number("Figure 4") == "Figure 4"
    assert notebook_of("etva_seeds.csv") == "08_etva_experts_and_shared_centres"
    assert notebook_of("text_conditioned_pooling_k_sweep.csv") == "05_text_conditioned_pooling"
    assert notebook_of("nothing.csv") == ""


# --------------------------------------------------------------------------- per-seed results
def test_load_seed_results_reads_both_layouts(tmp_path):
    assert load_seed_results(tmp_path / "missing.csv") is None
    wide = tmp_path / "x_seeds.csv"
    _seed_file(wide, [["A", "a", 0, 10.0, 20, 30, 5, 9.0, 100], ["A", "a", 1, 12.0, 22, 32, 4, 8.0, 100]])
    df = load_seed_results(wide)
    assert list(df.columns) == ["head", "seed", "R1", "R5", "R10", "MdR", "MnR"]
    assert df["R1"].tolist() == [10.0, 12.0]
    tidy = tmp_path / "x_k_sweep.csv"
    rows = []
    for seed, r1 in [(0, 5.0), (1, 7.0)]:
        rows += [
            {"method": "top-1", "direction": "t2v", "metric": "R1", "value": r1, "seed": seed},
            {"method": "top-1", "direction": "t2v", "metric": "MnR", "value": 100.0, "seed": seed},
            {"method": "top-1", "direction": "v2t", "metric": "R1", "value": 99.0, "seed": seed},
        ]
    pd.DataFrame(rows).to_csv(tidy, index=False)
    df = load_seed_results(tidy)
    assert df["head"].tolist() == ["top-1", "top-1"]
    assert df["R1"].tolist() == [5.0, 7.0]  # the v2t rows are left out
    assert df["R10"].isna().all()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"x": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="not a per-seed results file"):
        load_seed_results(bad)


def test_seed_stats_and_spread_cell():
    df = pd.DataFrame({"head": ["A", "A", "A", "B"], "R1": [10.0, 12.0, 14.0, 3.0]})
    s = seed_stats(df, "A")
    assert s == {"mean": 12.0, "std": 2.0, "min": 10.0, "max": 14.0, "seeds": 3}
    assert spread_cell(s) == "12.0 ± 2.0 [10.0, 14.0]"
    one = seed_stats(df, "B")
    assert one["seeds"] == 1 and math.isnan(one["std"])
    assert spread_cell(one) == "3.0 [one seed]"
    assert seed_stats(df, "C") is None and spread_cell(None) == ""


def test_beside_reported_fills_ours_and_says_what_is_missing(tmp_path):
    rm = load_row_map(_write_map(tmp_path))
    _seed_file(
        tmp_path / "a_seeds.csv",
        [["Mean", "meanP", s, 5.8, 0, 0, 0, 0, 10] for s in range(3)]
        + [["Cross", "c", s, r1, 0, 0, 0, 0, 10] for s, r1 in enumerate([9.0, 10.0, 11.0])],
    )
    out = beside_reported(REPORTED, rm, tmp_path)
    assert out["method"].tolist() == ["mean", "cross", "cross", "big"]  # t2v rows only, paper order
    assert out["R1"].tolist() == [41.8, 47.6, 47.6, 50.0]
    assert out["ours R1"].tolist()[:2] == ["5.8 ± 0.0 [5.8, 5.8]", "10.0 ± 1.0 [9.0, 11.0]"]
    assert out["seeds"].tolist() == [3, 3, 0, 0]
    assert out["status"].tolist() == ["ours", "ours", "not yet run (b_seeds.csv)", "not implemented"]
    assert out["map_status"].tolist() == ["ours", "ours", "stand-in", "not implemented"]
    assert out.loc[1, ["mean", "min", "max"]].tolist() == [10.0, 9.0, 11.0]
    assert out["seed_id"].eq("000").all() and out["paper"].eq("P").all()
    # a head the file lacks is reported, not raised
    _seed_file(tmp_path / "b_seeds.csv", [["Y", "y", 0, 1.0, 0, 0, 0, 0, 10]])
    out = beside_reported(REPORTED, rm, tmp_path)
    assert out.loc[2, "status"] == "no such head in b_seeds.csv"


def test_beside_reported_without_results_and_unmapped_rows(tmp_path):
    rm = load_row_map(_write_map(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = beside_reported(REPORTED, rm.iloc[:1], empty)
    assert out["status"].tolist() == ["not yet run (a_seeds.csv)", "not in the map", "not in the map"]
    assert out["mean"].isna().all()
    only = beside_reported(REPORTED, rm.iloc[:1], empty, only_mapped=True)
    assert only["method"].tolist() == ["mean"]
    assert unmapped_methods(REPORTED, rm.iloc[:1]) == ["cross", "big"]
    assert unmapped_methods(REPORTED, rm) == []


def test_beside_reported_without_a_folder_shows_the_map_only(tmp_path):
    rm = load_row_map(_write_map(tmp_path))
    _seed_file(tmp_path / "a_seeds.csv", [["Mean", "meanP", 0, 5.8, 0, 0, 0, 0, 10]])
    out = beside_reported(REPORTED, rm, None)
    assert out["status"].tolist() == ["ours", "ours", "stand-in", "not implemented"]
    assert out["ours"].tolist() == ["Mean", "Cross", "X", ""]
    assert out["from"].eq("").all() and out["mean"].isna().all()


def test_order_agreement_counts_pairs_of_distinct_heads():
    t = pd.DataFrame(
        {
            "R1": [40.0, 45.0, 50.0, 50.0, 47.0],
            "mean": [5.0, 7.0, 6.0, 9.0, NAN],
            "ours": ["a", "b", "c", "c", "d"],
            "from": ["05", "05", "06", "07", "05"],
        }
    )
    # pairs (paper order vs ours): a<b yes, a<c yes, a<c' yes, b<c no, b<c' yes; c/c' tie in the paper: left out
    assert order_agreement(t) == (4, 5)
    same_head = t.assign(ours="a", **{"from": "05"})
    assert order_agreement(same_head) == (0, 0)


# --------------------------------------------------------------------------- claims and hypotheses
CLAIMS = pd.DataFrame(
    [
        ["P", "Table 2", "a beats b", "R1", 5.8, 4.3, 2.4, 6.3, 3, 3, "reproduces", "", "05_x"],
        ["P", "Table 2", "a beats c", "R1", 2.3, -1.4, -3.1, 0.3, 3, 0, "not significant", "", "05_x"],
        ["Q", "Table 11", "dsl", "R1", 3.2, -6.2, -8.1, -4.2, 3, 0, "opposite", "", "09_y"],
        ["Q", "Table 10", "enc", "R1", 0.0, NAN, NAN, NAN, 0, 0, "not comparable", "why", "09_y"],
    ],
    columns=[
        "paper",
        "table",
        "claim",
        "metric",
        "paper_difference",
        "our_difference",
        "ci_low",
        "ci_high",
        "seeds",
        "seeds_agreeing",
        "verdict",
        "reason",
        "notebook",
    ],
)


def test_claims_view_matches_tables_by_number():
    v = claims_view(CLAIMS, "Q", "Table 11 (appendix, DSL)")
    assert v["claim"].tolist() == ["dsl"]
    assert v.loc[0, "ours Δ [95% CI]"] == "-6.2 [-8.1, -4.2]"
    assert v.loc[0, "paper Δ"] == "+3.2" and v.loc[0, "seeds agreeing"] == "0/3"
    assert len(claims_view(CLAIMS, "P", "Table 2 (ablation)")) == 2
    assert claims_view(CLAIMS, "Q", "Table 10").loc[0, "ours Δ [95% CI]"] == ""
    assert claims_view(CLAIMS.iloc[:0]).empty


def test_verdict_counts():
    t = verdict_counts(CLAIMS)
    assert list(t.columns) == ["reproduces", "opposite", "not significant", "not comparable", "total"]
    assert t.loc["P"].tolist() == [1, 0, 1, 0, 2]
    assert t.loc["Q"].tolist() == [0, 1, 0, 1, 2]
    empty = verdict_counts(CLAIMS.iloc[:0])
    assert empty.empty and list(empty.columns) == ["reproduces", "opposite", "not significant", "total"]


def test_hypotheses_view():
    h = pd.DataFrame(
        {
            "hypothesis": ["H2", "H1"],
            "metric": ["R1", "MnR"],
            "our_difference": [1.0, -0.25],
            "ci_low": [0.5, -0.5],
            "ci_high": [1.5, -0.1],
            "seeds": [3, 3],
            "seeds_agreeing": [3, 2],
            "verdict": ["supported", "not significant"],
            "reason": ["", ""],
            "notebook": ["07_a", "04_b"],
        }
    )
    v = hypotheses_view(h)
    assert v["hypothesis"].tolist() == ["H1", "H2"]  # by notebook
    assert v.loc[0, "ours Δ [95% CI]"] == "-0.25 [-0.50, -0.10]"
    assert v.loc[1, "seeds agreeing"] == "3/3"


# --------------------------------------------------------------------------- twins
def test_twins_from_both_layouts_and_deduplicated(tmp_path):
    assert load_twins(tmp_path).empty and twin_matrix(load_twins(tmp_path)).empty
    rows = []
    for method, acc in [("Mean", 54.0), ("Full", 60.0)]:
        for factor in ["colour", "order", "all"]:
            for seed in (0, 1):
                rows.append(
                    {"experiment": "x", "method": method, "factor": factor, "seed": seed, "twin_accuracy": acc + seed}
                )
    pd.DataFrame(rows).to_csv(tmp_path / "global_local_twins.csv", index=False)
    mean_only = [r for r in rows if r["method"] == "Mean"]
    pd.DataFrame(mean_only).to_csv(tmp_path / "token_level_twins.csv", index=False)
    # notebook 09's layout: stage-1 rows (method, twin_accuracy) and re-ranker rows (head, accuracy) in one file
    mixed = [{**r, "method": "TS2-Net"} for r in mean_only] + [
        {"experiment": "x", "head": "RR (matching score)", "factor": "order", "seed": 0, "accuracy": 70.0}
    ]
    pd.DataFrame(mixed).to_csv(tmp_path / "crosstvr_twins.csv", index=False)
    # tidy per-seed twin rows (notebook 04) count; a first-seed-only tidy file (no seed column) does not
    tidy = [
        {"method": "seqTransf", "direction": d, "metric": m, "value": v, "seed": s}
        for s in (0, 1)
        for d, m, v in [("twin", "twin_order", 60.0 + s), ("t2v", "R1", 10.0), ("twin", "twin_all", 55.0)]
    ]
    pd.DataFrame(tidy).to_csv(tmp_path / "temporal_modelling.csv", index=False)
    pd.DataFrame(tidy).drop(columns="seed").to_csv(tmp_path / "text_conditioned_pooling.csv", index=False)
    tw = load_twins(tmp_path)
    assert set(tw["method"]) == {"Mean", "Full", "TS2-Net", "RR (matching score)", "seqTransf"}
    m = twin_matrix(tw)
    assert list(m.columns) == ["order", "all", "colour"]  # the known factors first, then the others
    assert list(m.index) == [
        "seqTransf (04)",
        "Mean (06, 07)",
        "Full (06)",
        "TS2-Net (09)",
        "RR (matching score) (09)",
    ]
    assert m.loc["seqTransf (04)", "order"] == 60.5
    assert m.loc["Mean (06, 07)", "order"] == 54.5
    assert m.loc["RR (matching score) (09)", "order"] == 70.0
    assert np.isnan(m.loc["RR (matching score) (09)", "all"])


# --------------------------------------------------------------------------- impossible rows
def test_rank_problems():
    rep = _reported(
        [
            {"table": "T", "direction": "t2v", "method": "ok", "R1": 44.5, "R5": 71.4, "R10": 81.6, "MdR": 2.0},
            {"table": "T", "direction": "v2t", "method": "md1", "R1": 48.8, "R5": 80.3, "R10": 86.4, "MdR": 1.0},
            {"table": "T", "direction": "v2t", "method": "order", "R1": 43.5, "R5": 72.4, "R10": 67.7, "MdR": 4.0},
            {"table": "T", "direction": "t2v", "method": "md4", "R1": 50.6, "R5": 75.2, "R10": 79.4, "MdR": 4.0},
            {"table": "T", "direction": "t2v", "method": "nomdr", "R1": 10.0, "R5": 9.0},
            {"table": "T", "direction": "t2v", "method": "half", "R1": 50.0, "R5": 70.0, "MdR": 1.5},
        ]
    )
    p = rank_problems(rep)
    assert p["method"].tolist() == ["md1", "order", "md4", "nomdr"]
    assert p.loc[0, "problem"] == "MdR 1 with R1 48.8 < 50 (needs MdR > 1)"
    assert p.loc[1, "problem"] == "R10 67.7 < R5 72.4"
    assert "needs MdR <= 1" in p.loc[2, "problem"]
    assert rank_problems(rep.iloc[:1]).empty


# --------------------------------------------------------------------------- robustness across benchmarks
def _claim_rows(verdicts: dict[str, str], diff: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"paper": "P", "table": "Table 1", "claim": c, "notebook": "05_x", "our_difference": diff,
             "ci_low": diff - 1, "ci_high": diff + 1, "verdict": v}
            for c, v in verdicts.items()
        ]
    )  # fmt: skip


def test_compare_verdicts_marks_fragile_stable_and_one_sided_claims():
    from tvrlib.tables import compare_verdicts

    a = _claim_rows({"x": "reproduces", "y": "not significant", "z": "opposite"})
    b = _claim_rows({"x": "not significant", "y": "not significant", "w": "reproduces"}, diff=2.0)
    out = compare_verdicts(a, b, ("quick", "alt")).set_index("claim")
    assert out.loc["x", "status"] == "fragile" and out.loc["y", "status"] == "stable"
    assert out.loc["z", "status"] == "only on quick" and out.loc["w", "status"] == "only on alt"
    assert out.loc["x", "quick"] == "reproduces" and out.loc["x", "alt"] == "not significant"
    assert out.loc["y", "alt Δ [95% CI]"] == "+2.0 [+1.0, +3.0]"


def test_compare_verdicts_keys_hypotheses_by_notebook_and_text_and_rejects_duplicates():
    from tvrlib.tables import compare_verdicts

    h = pd.DataFrame(
        {"notebook": ["05_x", "06_y"], "hypothesis": ["h", "h"], "our_difference": [1.0, -1.0],
         "ci_low": [0.5, -2.0], "ci_high": [1.5, 0.1], "verdict": ["supported", "not significant"]}
    )  # fmt: skip
    out = compare_verdicts(h, h.assign(verdict=["supported", "contradicted"]), ("a", "b"))
    assert list(out["status"]) == ["stable", "fragile"]  # same text, other notebook: another hypothesis
    with pytest.raises(ValueError, match="twice"):
        compare_verdicts(pd.concat([h, h]), h, ("a", "b"))
    with pytest.raises(ValueError, match="two different"):
        compare_verdicts(h, h, ("a", "a"))


def test_compare_verdicts_with_an_empty_side_marks_everything_one_sided():
    from tvrlib.tables import compare_verdicts

    out = compare_verdicts(_claim_rows({"x": "reproduces"}), pd.DataFrame(), ("quick", "full"))
    assert list(out["status"]) == ["only on quick"] and out.loc[0, "full"] == ""


def test_compare_verdicts_with_a_metric_and_an_empty_side_keeps_the_metric(tmp_path, monkeypatch):
    # the empty side as load_claims returns it for a profile with no results (what CI met on quick_alt)
    from tvrlib.paper_tables import load_claims
    from tvrlib.tables import compare_verdicts

    monkeypatch.setenv("TVR_RESULTS_DIR", str(tmp_path))
    empty = load_claims("nowhere", "claims")
    a = _claim_rows({"x": "reproduces"}).assign(metric="R@1")
    for sides, names in (((a, empty), ("quick", "alt")), ((empty, a), ("alt", "quick"))):
        out = compare_verdicts(*sides, names)
        assert list(out["status"]) == ["only on quick"] and list(out["metric"]) == ["R@1"]


def test_compare_rankings_counts_same_swapped_and_tied_pairs():
    from tvrlib.tables import compare_rankings

    a = pd.DataFrame({"notebook": "05_x", "head": ["A", "B", "C", "D"], "mean": [10.0, 8.0, 6.0, 5.9]})
    b = pd.DataFrame({"notebook": "05_x", "head": ["A", "B", "C", "E"], "mean": [7.0, 9.0, 5.0, 1.0]})
    r = compare_rankings(a, b, ("a", "b"), tie=0.5).iloc[0]
    # common heads A, B, C: (A, B) swapped, (A, C) and (B, C) same order; D and E are on one side only
    assert (r["heads on both"], r["pairs"], r["same order"], r["swapped"], r["tied on one"]) == (3, 3, 2, 1, 0)
    assert r["order on a"] == "A > B > C" and r["order on b"] == "B > A > C"
    r = compare_rankings(a, b.assign(mean=[7.0, 7.2, 5.0, 1.0]), ("a", "b"), tie=0.5).iloc[0]
    assert (r["same order"], r["swapped"], r["tied on one"]) == (2, 0, 1)


def test_head_means_reads_every_seed_file_of_a_folder(tmp_path):
    from tvrlib.tables import head_means

    pd.DataFrame({"head": ["A", "A", "B"], "seed": [0, 1, 0], "R1": [10.0, 12.0, 5.0]}).to_csv(
        tmp_path / "etva_seeds.csv", index=False
    )
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")  # not a seeds file: ignored
    m = head_means(tmp_path).set_index("head")
    assert m.loc["A", "mean"] == 11.0 and m.loc["A", "seeds"] == 2 and m.loc["B", "seeds"] == 1
    assert set(m["notebook"]) == {"08_etva_experts_and_shared_centres"}


def test_compare_rankings_of_empty_results_has_its_columns():
    from tvrlib.tables import compare_rankings, head_means

    empty = head_means(Path("/nonexistent"))
    r = compare_rankings(empty, empty, ("a", "b"))
    assert r.empty and {"heads on both", "pairs", "same order", "swapped", "tied on one"} <= set(r.columns)


def _readings(*rows):
    return pd.DataFrame(
        [{"paper": "P", "table": "Table 1", "claim": c, "comparison": k, "note": "two readings"} for c, k in rows]
    )


def test_by_comparison_counts_two_readings_once_and_says_when_they_disagree():
    from tvrlib.tables import by_comparison, verdict_counts

    verdicts = {"a1": "reproduces", "a2": "not significant", "b1": "opposite", "b2": "opposite", "c": "opposite"}
    claims = _claim_rows(verdicts)
    claims["paper_difference"] = [2.0, 2.0, 1.0, 1.0, 3.0]
    readings = _readings(("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"))
    out = by_comparison(claims, readings).set_index("comparison")
    assert list(out.index) == ["A", "B", "c"] and list(out["readings"]) == [2, 2, 1]
    assert out.loc["A", "verdict"] == "readings disagree" and out.loc["A", "verdicts"] == "reproduces / not significant"
    assert out.loc["B", "verdict"] == "opposite" and out.loc["c", "verdict"] == "opposite"
    assert verdict_counts(out.reset_index())["total"].sum() == 3  # five claims, three comparisons
    claims.loc[1, "paper_difference"] = 5.0  # the paper reports one number per comparison: this map is wrong
    with pytest.raises(ValueError, match="different comparisons"):
        by_comparison(claims, readings)
    assert by_comparison(claims.iloc[:0], readings).empty


def test_claim_readings_file_is_checked_and_names_claims_that_exist(tmp_path, monkeypatch):
    from tvrlib.paper_tables import load_claims
    from tvrlib.tables import load_claim_readings

    monkeypatch.delenv("TVR_RESULTS_DIR", raising=False)  # the committed results/quick/

    readings = load_claim_readings()
    assert (readings.groupby(["paper", "table", "comparison"]).size() >= 2).all()  # a reading has a sibling
    committed = load_claims("quick").set_index(["paper", "table", "claim"]).index
    stale = [k for k in zip(readings["paper"], readings["table"], readings["claim"]) if k not in committed]
    assert not stale, f"claim_readings.csv names claims that results/quick/claims.csv does not judge: {stale}"
    bad = readings.iloc[:2].assign(note=["", "x"])
    bad.loc[1, "claim"] = bad.loc[0, "claim"]
    path = tmp_path / "r.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValueError, match="twice") as e:
        load_claim_readings(path)
    assert "without a note" in str(e.value)
