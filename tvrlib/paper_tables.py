"""The seed papers' reported results tables, as transcribed in ``data/paper_tables/``.

One CSV per seed document (``<seed>_<digest>__<slug>.csv``, copied from the shared
transcriptions together with their README of OCR fixes and inconsistencies). Columns:
``table, dataset, split, direction, method, backbone, R1, R5, R10, MdR, MnR, extra, note``;
the metric columns are floats (an empty cell -- not reported -- is NaN).

>>> from tvrlib.paper_tables import load_paper_table
>>> t2 = load_paper_table("000", table="Table 2 (ablation)")
"""
from __future__ import annotations

import pandas as pd

from .errors import DatasetNotFoundError
from .paths import data_dir

METRIC_COLUMNS = ("R1", "R5", "R10", "MdR", "MnR")


def paper_table_path(seed_id: str | int):
    """The CSV of seed ``seed_id`` (``"000"``, ``0`` or ``"000_6b49f8a173a2ab00"``)."""
    prefix = f"{int(str(seed_id).split('_')[0]):03d}_"
    folder = data_dir() / "paper_tables"
    found = sorted(folder.glob(f"{prefix}*.csv"))
    if not found:
        raise DatasetNotFoundError(f"no paper table for seed {seed_id!r} in {folder}; copy it there from the "
                                   f"shared transcriptions (../shared/paper_tables/{prefix}*.csv)")
    return found[0]


def load_paper_table(seed_id: str | int, table: str | None = None) -> pd.DataFrame:
    """Reported numbers of seed ``seed_id`` (optionally one ``table``, e.g. ``"Table 4 (ablation)"``)."""
    df = pd.read_csv(paper_table_path(seed_id), dtype=str, keep_default_na=False)
    for col in METRIC_COLUMNS:
        df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce")
    if table is not None:
        if table not in set(df["table"]):
            raise KeyError(f"seed {seed_id}: no table {table!r}; tables: {sorted(set(df['table']))}")
        df = df[df["table"] == table].reset_index(drop=True)
    return df
