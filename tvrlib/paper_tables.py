"""The seed papers' reported results, and ours beside them.

* :func:`load_paper_table` -- the reported tables as transcribed in ``data/paper_tables/``: one CSV per seed
  document (``<seed>_<digest>__<slug>.csv``, copied from the shared transcriptions together with their README
  of OCR fixes and inconsistencies). Columns: ``table, dataset, split, direction, method, backbone, R1, R5,
  R10, MdR, MnR, extra, note``; the metric columns are floats (an empty cell -- not reported -- is NaN).
* :func:`reported_vs_reproduced` -- a paper's rows beside our numbers with their CIs;
* :func:`verdict` -- the one verdict on a paper's claim ("A beats B"), from a paired difference
  (:func:`tvrlib.experiment.paired_difference` over seeds, or one :func:`tvrlib.metrics.compare`); with
  ``kind="hypothesis"`` (:func:`hypothesis_verdict`) the vocabulary of our own hypotheses, which is never
  "reproduces";
* :func:`record_claim` / :func:`record_hypothesis` and :func:`save_claims` -- one row per paper claim in
  ``results/<profile>/claims.csv`` (our own hypotheses in ``hypotheses.csv``), upserted by every notebook that
  judges claims; a claim judged in two notebooks is an error;
* :func:`claim_verdict` -- the older single-comparison verdict (``inconclusive`` for "not significant"), kept only
  for the notebooks that have not moved to :func:`verdict`.

Verdict rules (:func:`verdict`; ``direction=+1``: the paper says A is better than B on the claim's one metric):

* ``reproduces`` -- the paired CI of A - B excludes 0 on the paper's side **and** every seed's difference is on
  that side;
* ``opposite`` -- the CI excludes 0 on the other side and every seed's difference is on that other side;
* ``not significant`` -- the CI contains 0, or the seeds disagree in sign (or a seed's difference is exactly 0);
  "0" is anything within ``ZERO_TOL`` (1e-9 metric points) of 0, so a CI bound or a seed's difference that is 0 up
  to float rounding (a bootstrap bound of 1.5e-17) never counts as excluding 0 or as taking a side;
* ``not comparable`` -- our setting cannot test the claim; only with a reason (``not_comparable="..."``).

Hypotheses (ours, stated before the numbers): ``supported`` / ``contradicted`` / ``not significant``, same rules.

>>> from tvrlib.paper_tables import load_paper_table
>>> t2 = load_paper_table("000", table="Table 2 (ablation)")
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DatasetNotFoundError
from .metrics import LOWER_IS_BETTER, METRICS
from .paths import data_dir, results_dir
from .reporting import ci_cell, save_results


def paper_table_path(seed_id: str | int):
    """The CSV of seed ``seed_id`` (``"000"``, ``0`` or ``"000_6b49f8a173a2ab00"``)."""
    prefix = f"{int(str(seed_id).split('_')[0]):03d}_"
    folder = data_dir() / "paper_tables"
    found = sorted(folder.glob(f"{prefix}*.csv"))
    if not found:
        raise DatasetNotFoundError(
            f"no paper table for seed {seed_id!r} in {folder}; copy it there from the "
            f"shared transcriptions (../shared/paper_tables/{prefix}*.csv)"
        )
    return found[0]


def load_paper_table(seed_id: str | int, table: str | None = None) -> pd.DataFrame:
    """Reported numbers of seed ``seed_id`` (optionally one ``table``, e.g. ``"Table 4 (ablation)"``)."""
    df = pd.read_csv(paper_table_path(seed_id), dtype=str, keep_default_na=False)
    for col in METRICS:
        df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce")
    if table is not None:
        if table not in set(df["table"]):
            raise KeyError(f"seed {seed_id}: no table {table!r}; tables: {sorted(set(df['table']))}")
        df = df[df["table"] == table].reset_index(drop=True)
    return df


def reported_vs_reproduced(
    reported: pd.DataFrame, ours: dict[str, dict], mapping: dict[str, str], metrics=METRICS, digits: int = 1
) -> pd.DataFrame:
    """A paper's rows beside ours. ``reported``: rows of a paper table (``method`` + metric columns);
    ``ours``: our label -> a metrics dict with CIs (``with_ci``); ``mapping``: paper method -> our label."""
    rows = []
    for paper_method, label in mapping.items():
        rep = reported[reported["method"] == paper_method]
        if rep.empty:
            raise KeyError(f"no row {paper_method!r} in the reported table; rows: {list(reported['method'])}")
        rep = rep.iloc[0]
        m = ours[label]
        row = {"paper row": paper_method, "ours": label}
        for k in metrics:
            row[f"{k} (paper)"] = rep[k]
        for k in metrics:
            row[f"{k} (ours)"] = ci_cell(m[k], m[f"{k}_lo"], m[f"{k}_hi"], digits)
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts
#: The verdicts on a paper's claim, and on one of our own hypotheses (never "reproduces").
CLAIM_VERDICTS = ("reproduces", "opposite", "not significant", "not comparable")
HYPOTHESIS_VERDICTS = ("supported", "contradicted", "not significant")
_WORDS = {"paper": ("reproduces", "opposite"), "hypothesis": ("supported", "contradicted")}


def _lower_is_better(diff: dict) -> bool:
    if "lower_is_better" in diff:
        return bool(diff["lower_is_better"])
    return diff.get("metric") in LOWER_IS_BETTER


#: differences and CI bounds within this many metric points of 0 are 0 (float rounding, not a side); metric
#: resolutions are far coarser (one query of 10,000 moves R@1 by 0.01 points)
ZERO_TOL = 1e-9


def _snap(x: np.ndarray | float) -> np.ndarray:
    """``x`` with every value within :data:`ZERO_TOL` of 0 set to exactly 0."""
    x = np.asarray(x, dtype=float)
    return np.where(np.abs(x) < ZERO_TOL, 0.0, x)


def _per_seed(diff: dict) -> np.ndarray:
    """The per-seed differences of ``diff`` (0 up to rounding is 0); a single comparison counts as one seed."""
    return _snap(np.asarray(diff.get("per_seed_delta", [diff["delta"]]), dtype=float))


def _side(diff: dict, direction: int) -> str:
    """``"claimed"``, ``"other"`` or ``"neither"``: where the paired CI and every seed put A - B."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (the claim: A better than B) or -1 (A worse), got {direction!r}")
    lo, hi = (float(x) for x in _snap(diff["ci"]))
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError("the difference has no CI (NaN)")
    # the sign of the raw difference A - B when A is better: + for R@K, - for ranks (MdR, MnR)
    sign = -direction if _lower_is_better(diff) else direction
    seeds = _per_seed(diff)
    if (lo > 0 if sign > 0 else hi < 0) and np.all(np.sign(seeds) == sign):
        return "claimed"
    if (hi < 0 if sign > 0 else lo > 0) and np.all(np.sign(seeds) == -sign):
        return "other"
    return "neither"


def verdict(diff: dict | None, direction: int = 1, *, kind: str = "paper", not_comparable: str | None = None) -> str:
    """The verdict on a claim "A is better than B" (``direction=+1``; ``-1``: "A is worse than B").

    ``diff``: a paired difference A - B on the claim's one metric (:func:`tvrlib.experiment.paired_difference`,
    which carries the per-seed differences, or one :func:`tvrlib.metrics.compare` result, which counts as a single
    seed). Lower-is-better metrics (MdR, MnR) are handled: "better" means a lower rank.
    ``kind="paper"`` (a paper's claim): ``reproduces`` / ``opposite`` / ``not significant`` / ``not comparable``.
    ``kind="hypothesis"`` (our own): ``supported`` / ``contradicted`` / ``not significant`` -- never "reproduces".
    The rules are in the module docstring. ``not_comparable="reason"``: our setting cannot test the claim
    (``diff`` may be None); a paper claim only.
    """
    if kind not in _WORDS:
        raise ValueError(f"kind must be 'paper' or 'hypothesis', got {kind!r}")
    if not_comparable is not None:
        if kind == "hypothesis":
            raise ValueError("a hypothesis we cannot test is not stated: 'not comparable' is for paper claims")
        if not str(not_comparable).strip():
            raise ValueError("'not comparable' needs a reason: say why our setting cannot test the claim")
        return "not comparable"
    if diff is None:
        raise ValueError("no difference to judge: pass one, or not_comparable='why our setting cannot test it'")
    side = _side(diff, direction)
    if side == "neither":
        return "not significant"
    return _WORDS[kind][0] if side == "claimed" else _WORDS[kind][1]


def hypothesis_verdict(diff: dict, direction: int = 1) -> str:
    """:func:`verdict` with ``kind="hypothesis"``: ``supported`` / ``contradicted`` / ``not significant``."""
    return verdict(diff, direction, kind="hypothesis")


def direction_of(paper_difference: float, metric: str) -> int:
    """The claim's direction from a paper's reported difference A - B on ``metric``: +1 when it has A better."""
    if paper_difference is None or not np.isfinite(paper_difference) or paper_difference == 0:
        raise ValueError(
            f"the paper's difference {paper_difference!r} has no direction; pass direction=+1 or -1 explicitly"
        )
    better = paper_difference < 0 if metric in LOWER_IS_BETTER else paper_difference > 0
    return 1 if better else -1


def claim_verdict(comparison: dict, claimed_sign: int = 1, metric_lower_is_better: bool = False) -> str:
    """The older verdict of one comparison, kept for notebooks that have not moved to :func:`verdict`.

    ``reproduces`` if the 95 % CI of the difference excludes 0 on the claimed side, ``opposite`` if it
    excludes 0 on the other side, ``inconclusive`` otherwise (the CI contains 0). Unlike :func:`verdict` it
    knows no seeds, and it is used on our own hypotheses too: new code uses :func:`verdict`.
    """
    lo, hi = (float(x) for x in _snap(comparison["ci"]))
    sign = -claimed_sign if metric_lower_is_better else claimed_sign
    if (lo > 0 and sign > 0) or (hi < 0 and sign < 0):
        return "reproduces"
    if (hi < 0 and sign > 0) or (lo > 0 and sign < 0):
        return "opposite"
    return "inconclusive"


# --------------------------------------------------------------------------- claims.csv
#: what a paper claim and one of our hypotheses both record: ``our_difference``: A - B on ``metric`` (the mean over
#: seeds); ``ci_low`` / ``ci_high``: its paired CI; ``seeds``: training seeds; ``seeds_agreeing``: seeds whose
#: difference is on the claim's (or the hypothesis') side; ``reason``: why "not comparable", or a note.
_JUDGED = ["our_difference", "ci_low", "ci_high", "seeds", "seeds_agreeing", "verdict", "reason", "notebook"]
#: ``results/<profile>/claims.csv``: one row per paper claim; ``paper_difference``: A - B as the paper reports it.
CLAIM_COLUMNS = ["paper", "table", "claim", "metric", "paper_difference", *_JUDGED]
#: ``results/<profile>/hypotheses.csv``: our own hypotheses, stated before the numbers.
HYPOTHESIS_COLUMNS = ["hypothesis", "metric", *_JUDGED]
_KEYS = {"claims": ("paper", "table", "claim"), "hypotheses": ("hypothesis",)}


def _numbers(diff: dict | None, metric: str, direction: int) -> dict:
    if diff is None:
        nan = float("nan")
        return {"our_difference": nan, "ci_low": nan, "ci_high": nan, "seeds": 0, "seeds_agreeing": 0}
    if diff.get("metric", metric) != metric:
        raise ValueError(
            f"the claim's metric is {metric!r} (chosen up front) but the difference is on {diff['metric']!r}; "
            "one primary metric per claim: show the others, do not judge on them"
        )
    seeds = _per_seed(diff)
    sign = -direction if metric in LOWER_IS_BETTER else direction
    return {
        "our_difference": float(diff["delta"]),
        "ci_low": float(diff["ci"][0]),
        "ci_high": float(diff["ci"][1]),
        "seeds": int(seeds.size),
        "seeds_agreeing": int(np.sum(np.sign(seeds) == sign)),
    }


def _notebook_name(notebook: str) -> str:
    name = Path(str(notebook)).stem
    if not name:
        raise ValueError("every claim names the notebook that judges it (e.g. '04_temporal_modelling')")
    return name


def record_claim(
    paper: str,
    table: str,
    claim: str,
    diff: dict | None,
    *,
    notebook: str,
    paper_difference: float,
    metric: str = "R1",
    direction: int | None = None,
    not_comparable: str | None = None,
    note: str = "",
) -> dict:
    """One row of ``claims.csv``: a paper's claim "A beats B" judged on its one primary ``metric`` (R@1 unless
    chosen otherwise up front; ``diff`` must be on that metric).

    ``paper``: the short name (docs/papers.md, e.g. ``"TopKTemporal"``); ``table``: e.g. ``"Table 5"``;
    ``claim``: the claim in words; ``diff``: our paired difference A - B (:func:`tvrlib.experiment.paired_difference`);
    ``paper_difference``: the paper's A - B on ``metric`` (NaN if the paper gives none: then ``direction``);
    ``direction``: +1 when the paper has A better (default: from ``paper_difference``); ``not_comparable``: why our
    setting cannot test the claim (the verdict is then "not comparable" and ``diff`` may be None); ``note``: shown
    in ``reason`` (e.g. how a head's protocol differs). ``notebook``: the one notebook that judges this claim.
    """
    if not str(paper).strip():
        raise ValueError("a paper claim names its paper (a claim of ours is a hypothesis: record_hypothesis)")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if not_comparable is None:
        if direction is None:
            direction = direction_of(paper_difference, metric)
        v = verdict(diff, direction)
        numbers = _numbers(diff, metric, direction)
        reason = note
    else:  # our numbers, if any, are shown; the verdict does not rest on them
        v = verdict(diff, kind="paper", not_comparable=not_comparable)
        numbers = _numbers(diff, metric, direction or 1)
        if direction is None:
            numbers["seeds_agreeing"] = 0  # no direction to agree with
        reason = "; ".join(x for x in (str(not_comparable).strip(), note) if x)
    return {
        "kind": "claims",
        "paper": str(paper).strip(),
        "table": str(table).strip(),
        "claim": str(claim).strip(),
        "metric": metric,
        "paper_difference": float("nan") if paper_difference is None else float(paper_difference),
        **numbers,
        "verdict": v,
        "reason": reason,
        "notebook": _notebook_name(notebook),
    }


def record_hypothesis(
    hypothesis: str, diff: dict, *, notebook: str, metric: str, direction: int = 1, note: str = ""
) -> dict:
    """One row of ``hypotheses.csv``: our own hypothesis "A beats B" on ``metric`` (chosen when the hypothesis is
    stated, before the numbers), judged ``supported`` / ``contradicted`` / ``not significant`` -- never
    "reproduces": there is no paper result to reproduce."""
    if not str(hypothesis).strip():
        raise ValueError("state the hypothesis")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    return {
        "kind": "hypotheses",
        "hypothesis": str(hypothesis).strip(),
        "metric": metric,
        **_numbers(diff, metric, direction),
        "verdict": hypothesis_verdict(diff, direction),
        "reason": note,
        "notebook": _notebook_name(notebook),
    }


def _check_row(kind: str, row: dict) -> None:
    if kind == "claims":
        if row["verdict"] not in CLAIM_VERDICTS:
            raise ValueError(f"claim {row['claim']!r}: {row['verdict']!r} is not a claim verdict {CLAIM_VERDICTS}")
        if row["verdict"] == "not comparable" and not str(row.get("reason") or "").strip():
            raise ValueError(f"claim {row['claim']!r} is 'not comparable' without a reason")
        if not str(row.get("paper") or "").strip():
            raise ValueError(f"claim {row['claim']!r} names no paper: a claim of ours is a hypothesis")
    elif row["verdict"] not in HYPOTHESIS_VERDICTS:
        raise ValueError(
            f"hypothesis {row['hypothesis']!r}: {row['verdict']!r} is not a hypothesis verdict {HYPOTHESIS_VERDICTS} "
            "(a hypothesis of ours never 'reproduces')"
        )


@contextlib.contextmanager
def _locked(folder: Path, name: str):
    """An exclusive lock on ``folder/.<name>.lock`` while a read-modify-write runs (no-op where flock is missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(folder / f".{name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _upsert(profile: str, kind: str, rows: list[dict]) -> Path:
    columns = CLAIM_COLUMNS if kind == "claims" else HYPOTHESIS_COLUMNS
    keys = _KEYS[kind]
    new = {}
    for row in rows:
        missing = [c for c in columns if c not in row]
        if missing:
            raise ValueError(f"a {kind} row lacks {missing}: build it with record_claim / record_hypothesis")
        _check_row(kind, row)
        key = tuple(str(row[k]) for k in keys)
        if key in new:
            other = new[key]["notebook"]
            raise ValueError(
                f"{kind[:-1]} {key} is judged twice ({other} and {row['notebook']}): each claim has one verdict, "
                "in one notebook"
            )
        new[key] = {c: row[c] for c in columns}
    folder = results_dir(profile)
    with _locked(folder, kind):
        path = folder / f"{kind}.csv"
        merged = {}
        rerun = {row["notebook"] for row in new.values()}  # a notebook's save replaces every row it wrote before
        if path.exists():
            for r in _read(path, kind).to_dict("records"):
                if r["notebook"] not in rerun:
                    merged[tuple(str(r[k]) for k in keys)] = r
        for key, row in new.items():
            if key in merged and merged[key]["notebook"] != row["notebook"]:
                raise ValueError(
                    f"{kind[:-1]} {key} is judged in two notebooks: {merged[key]['notebook']} (in {path}) and "
                    f"{row['notebook']}; judge it in one and link to it from the other"
                )
            merged[key] = row
        table = pd.DataFrame([merged[k] for k in sorted(merged)], columns=columns)
        return save_results(profile, kind, table)


def save_claims(rows: list[dict], profile: str) -> dict[str, Path]:
    """Upsert rows from :func:`record_claim` into ``results/<profile>/claims.csv`` and rows from
    :func:`record_hypothesis` into ``results/<profile>/hypotheses.csv`` (paper claims and our hypotheses never share
    a table), keyed by (paper, table, claim) / hypothesis, sorted by key, written atomically
    (:func:`tvrlib.reporting.save_results`). A row whose claim is already in the file from **another** notebook
    raises (naming both notebooks), as does the same claim twice in ``rows``; a notebook re-run replaces all of its
    rows (a claim it renamed or no longer judges does not survive).
    Returns ``{"claims": path, "hypotheses": path}`` for the files written."""
    by_kind: dict[str, list[dict]] = {"claims": [], "hypotheses": []}
    for row in rows:
        kind = row.get("kind")
        if kind not in by_kind:
            kind = "hypotheses" if "hypothesis" in row else "claims"
        by_kind[kind].append(row)
    return {kind: _upsert(profile, kind, rs) for kind, rs in by_kind.items() if rs}


def load_claims(profile: str, kind: str = "claims") -> pd.DataFrame:
    """``results/<profile>/claims.csv`` (or ``kind="hypotheses"``); an empty table when no notebook wrote one."""
    if kind not in _KEYS:
        raise ValueError(f"kind must be 'claims' or 'hypotheses', got {kind!r}")
    path = results_dir(profile) / f"{kind}.csv"
    columns = CLAIM_COLUMNS if kind == "claims" else HYPOTHESIS_COLUMNS
    if not path.exists():
        return pd.DataFrame(columns=columns)
    return _read(path, kind)


def _read(path: Path, kind: str) -> pd.DataFrame:
    text = [*_KEYS[kind], "metric", "verdict", "reason", "notebook"]
    df = pd.read_csv(path, dtype={k: str for k in text})
    return df.fillna({k: "" for k in text})
