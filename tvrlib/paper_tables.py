"""The seed papers' reported results, and ours beside them.

* :func:`load_paper_table` -- the reported tables as transcribed in ``data/paper_tables/``: one CSV per seed
  document (``<seed>_<digest>__<slug>.csv``, copied from the shared transcriptions together with their README
  of OCR fixes and inconsistencies). Columns: ``table, dataset, split, direction, method, backbone, R1, R5,
  R10, MdR, MnR, extra, note``; the metric columns are floats (an empty cell -- not reported -- is NaN).
* :func:`reported_vs_reproduced` -- a paper's rows beside our numbers with their CIs;
* :func:`claim_verdict` -- whether the *direction* of a paper's claim ("A beats B") reproduces here.

>>> from tvrlib.paper_tables import load_paper_table
>>> t2 = load_paper_table("000", table="Table 2 (ablation)")
"""

from __future__ import annotations

import pandas as pd

from .errors import DatasetNotFoundError
from .metrics import METRICS
from .paths import data_dir
from .reporting import ci_cell


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


def claim_verdict(comparison: dict, claimed_sign: int = 1, metric_lower_is_better: bool = False) -> str:
    """Whether the *direction* of a claim ("A beats B") reproduces, from :func:`tvrlib.metrics.compare` of A vs B.

    ``reproduces`` if the 95 % CI of the difference excludes 0 on the claimed side, ``opposite`` if it
    excludes 0 on the other side, ``inconclusive`` otherwise (the CI contains 0).
    """
    lo, hi = comparison["ci"]
    sign = -claimed_sign if metric_lower_is_better else claimed_sign
    if (lo > 0 and sign > 0) or (hi < 0 and sign < 0):
        return "reproduces"
    if (hi < 0 and sign > 0) or (lo > 0 and sign < 0):
        return "opposite"
    return "inconclusive"
