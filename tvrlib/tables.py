"""The seed papers' ablation tables in their own shape, with our per-seed results beside them (notebook 11).

Pure pandas: nothing is trained or evaluated here. Every number of ours is read from a file a notebook wrote
(``results/<profile>/*_seeds.csv`` and friends), every reported number from ``data/paper_tables/``.

* ``data/paper_tables/row_map.csv`` (:func:`load_row_map`) says which of our result rows stands for which reported
  row. Columns (:data:`ROW_MAP_COLUMNS`): ``seed_id`` (``"000"``), ``paper`` (the short name of docs/papers.md),
  ``table``, ``dataset``, ``split`` and ``method`` (the reported row exactly as in the paper's CSV; several reported
  rows may share one label, e.g. one method with two backbones), ``kind`` (``ablation`` or ``main``), ``status``
  (:data:`STATUSES`), ``results_file`` and ``head`` (our file under ``results/<profile>/`` and the label of the head
  in it) and ``note`` (the caveat, or why there is no counterpart). A reported row may have several of ours (two
  readings of a garbled label, one head under two notebooks' protocols): one map row each.
* :func:`load_seed_results` reads a per-seed file -- one row per head and seed (``head, seed, R1, ...``, as
  :func:`tvrlib.experiment.seed_rows` writes them) or tidy rows (``method, direction, metric, value, seed``, as the
  K sweep of notebook 05) -- into one frame ``head, seed, R1, R5, R10, MdR, MnR``; :func:`seed_stats` and
  :func:`spread_cell` summarise one head over seeds (mean ± std [min, max], std with ddof 1 as
  :func:`tvrlib.experiment.summarise_seeds`).
* :func:`beside_reported` puts a reported table's t2v rows beside ours; a file that does not exist yet gives
  "not yet run" (naming the notebook that writes it), never an error.
* :func:`claims_view` / :func:`verdict_counts` / :func:`hypotheses_view` show ``claims.csv`` and
  ``hypotheses.csv`` (:func:`tvrlib.paper_tables.load_claims`) per table and per paper; :func:`by_comparison`
  counts a paper comparison judged under two readings (``data/paper_tables/claim_readings.csv``) once.
* :func:`load_twins` / :func:`twin_matrix`: per-factor twin accuracy from every ``*_twins.csv`` (and tidy files with
  per-seed twin rows), methods x factors.
* :func:`rank_problems` finds reported rows whose recalls and median rank cannot all be true;
  :func:`load_inconsistencies` reads the hand list ``data/paper_tables/inconsistencies.csv``.

>>> from tvrlib.tables import load_row_map
>>> rm = load_row_map()
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import METRICS
from .paths import data_dir

#: the columns of ``data/paper_tables/row_map.csv``
ROW_MAP_COLUMNS = [
    "seed_id",
    "paper",
    "table",
    "dataset",
    "split",
    "method",
    "kind",
    "status",
    "results_file",
    "head",
    "note",
]
#: ``ours``: the run the notebook judged (or, for a main table, our run of that method); ``stand-in``: another
#: notebook's run of the same head, shown because the judged run is not saved; ``not implemented`` / ``not
#: comparable``: no row of ours, the note says why
STATUSES = ("ours", "stand-in", "not implemented", "not comparable")
MAPPED = ("ours", "stand-in")
KINDS = ("ablation", "main")
#: the columns of ``data/paper_tables/inconsistencies.csv``
INCONSISTENCY_COLUMNS = ["seed_id", "paper", "table", "type", "description"]
#: the columns of ``data/paper_tables/claim_readings.csv``
READING_COLUMNS = ["paper", "table", "claim", "comparison", "note"]
#: the seed papers' short names (docs/papers.md), by seed id
PAPERS = {"000": "CrossAttnGL", "001": "TopKTemporal", "002": "ETVA", "003": "CrossTVR"}
#: which notebook writes which results (the stem of the file starts with the key)
RESULT_SOURCES = {
    "mean_pooling": "03_mean_pooling_and_training",
    "temporal_modelling": "04_temporal_modelling",
    "text_conditioned_pooling": "05_text_conditioned_pooling",
    "global_local": "06_global_local_similarity",
    "token_level": "07_token_level_alignment",
    "etva": "08_etva_experts_and_shared_centres",
    "crosstvr": "09_crosstvr_two_stage_reranking",
    "post_processing": "10_post_processing",
}
#: the twin factors in display order (others found in the files follow)
TWIN_FACTORS = ("order", "direction", "detail", "all")


def _norm_seed(seed_id) -> str:
    return f"{int(str(seed_id).split('_')[0]):03d}"


def _read_text_csv(path: Path, columns: list[str], what: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} {path} lacks the columns {missing}; expected {columns}")
    return df[columns].apply(lambda s: s.str.strip())


# --------------------------------------------------------------------------- the map and the hand list
def load_row_map(path: str | Path | None = None) -> pd.DataFrame:
    """``data/paper_tables/row_map.csv`` (or ``path``), checked: known ``kind`` and ``status``; a mapped row names
    its file and head; a row without a counterpart says why (``note``); no row twice."""
    path = Path(path) if path is not None else data_dir() / "paper_tables" / "row_map.csv"
    df = _read_text_csv(path, ROW_MAP_COLUMNS, "the row map")
    df["seed_id"] = df["seed_id"].map(_norm_seed)
    problems = []
    for i, r in df.iterrows():
        where = f"line {i + 2} ({r['table']!r}, {r['method']!r})"
        if r["kind"] not in KINDS:
            problems.append(f"{where}: kind {r['kind']!r} is not one of {KINDS}")
        if r["status"] not in STATUSES:
            problems.append(f"{where}: status {r['status']!r} is not one of {STATUSES}")
        elif r["status"] in MAPPED and not (r["results_file"] and r["head"]):
            problems.append(f"{where}: status {r['status']!r} needs results_file and head")
        elif r["status"] not in MAPPED and not r["note"]:
            problems.append(f"{where}: status {r['status']!r} needs a note saying why")
        if r["status"] == "stand-in" and not r["note"]:
            problems.append(f"{where}: a stand-in says in its note which run it replaces")
    key = ["seed_id", "table", "dataset", "split", "method", "results_file", "head"]
    dup = df[df.duplicated(key, keep=False)]
    if len(dup):
        problems.append(f"rows mapped twice: {dup[['table', 'method', 'head']].drop_duplicates().values.tolist()}")
    if problems:
        raise ValueError(f"{path}:\n  " + "\n  ".join(problems))
    return df.reset_index(drop=True)


def load_inconsistencies(path: str | Path | None = None) -> pd.DataFrame:
    """``data/paper_tables/inconsistencies.csv`` (or ``path``): one row per inconsistency of a paper, hand-listed
    from ``data/paper_tables/README.md`` (columns :data:`INCONSISTENCY_COLUMNS`)."""
    path = Path(path) if path is not None else data_dir() / "paper_tables" / "inconsistencies.csv"
    df = _read_text_csv(path, INCONSISTENCY_COLUMNS, "the list of inconsistencies")
    df["seed_id"] = df["seed_id"].map(_norm_seed)
    empty = df[df["description"] == ""]
    if len(empty):
        raise ValueError(f"{path}: rows without a description at lines {[i + 2 for i in empty.index]}")
    return df


def load_claim_readings(path: str | Path | None = None) -> pd.DataFrame:
    """``data/paper_tables/claim_readings.csv`` (or ``path``): the claims of ``claims.csv`` that judge **one**
    comparison of a paper under two readings (a row label uncertain in the OCR; a row that two notebooks' heads can
    stand for), each naming its ``comparison`` (columns :data:`READING_COLUMNS`); no claim twice, every row a note."""
    path = Path(path) if path is not None else data_dir() / "paper_tables" / "claim_readings.csv"
    df = _read_text_csv(path, READING_COLUMNS, "the list of claim readings")
    problems = []
    dup = df[df.duplicated(["paper", "table", "claim"], keep=False)]
    if len(dup):
        problems.append(f"claims listed twice: {dup['claim'].drop_duplicates().tolist()}")
    for col in ("comparison", "note"):
        empty = df.index[df[col] == ""]
        if len(empty):
            problems.append(f"rows without a {col} at lines {[i + 2 for i in empty]}")
    if problems:
        raise ValueError(f"{path}:\n  " + "\n  ".join(problems))
    return df


def by_comparison(claims: pd.DataFrame, readings: pd.DataFrame | None = None) -> pd.DataFrame:
    """``claims.csv`` with each comparison of a paper counted once: one row per ``paper, table, comparison`` (a
    claim's own text when :func:`load_claim_readings` lists no other reading of it), with ``readings`` (how many
    claims judge it here), ``notebooks`` and ``verdict``: the verdict of its readings when they all agree, else
    ``"readings disagree"`` (``verdicts`` lists them, ``" / "``-joined, in the order of ``claims``). Readings of one
    comparison must carry the same ``paper_difference`` (the paper reports one number): a map that groups different
    comparisons raises."""
    readings = load_claim_readings() if readings is None else readings
    out_cols = ["paper", "table", "comparison", "readings", "notebooks", "verdicts", "verdict"]
    if claims.empty:
        return pd.DataFrame(columns=out_cols)
    name = {(r.paper, r.table, r.claim): r.comparison for r in readings.itertuples(index=False)}
    c = claims.assign(comparison=[name.get(k, k[2]) for k in zip(claims["paper"], claims["table"], claims["claim"])])
    rows = []
    for (paper, table, comparison), g in c.groupby(["paper", "table", "comparison"], sort=False):
        diffs = pd.to_numeric(g["paper_difference"], errors="coerce").dropna().unique()
        if len(diffs) > 1:
            raise ValueError(
                f"{paper} {table}: the readings of {comparison!r} ({g['claim'].tolist()}) carry different paper "
                f"differences {sorted(diffs.tolist())}; they are different comparisons, not readings of one"
            )
        verdicts = list(dict.fromkeys(g["verdict"]))
        rows.append(
            {"paper": paper, "table": table, "comparison": comparison, "readings": len(g),
             "notebooks": ", ".join(dict.fromkeys(g["notebook"])), "verdicts": " / ".join(g["verdict"]),
             "verdict": verdicts[0] if len(verdicts) == 1 else "readings disagree"}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=out_cols)


def _matches(reported: pd.DataFrame, r) -> pd.Series:
    """The rows of ``reported`` (one paper's rows) that map-row ``r`` stands for."""
    return (
        (reported["table"] == r["table"])
        & (reported["dataset"] == r["dataset"])
        & (reported["split"] == r["split"])
        & (reported["method"] == r["method"])
    )


def check_row_map(row_map: pd.DataFrame, load: Callable[[str], pd.DataFrame], direction: str = "t2v") -> list[str]:
    """What is wrong between the map and the reported tables (empty: nothing): a map row that matches no reported
    ``direction`` row, and a reported row of an ``ablation`` table that no map row covers. ``load(seed_id)``
    returns a paper's whole table (:func:`tvrlib.paper_tables.load_paper_table`)."""
    problems = []
    for seed_id, rows in row_map.groupby("seed_id", sort=False):
        rep = load(seed_id)
        rep = rep[rep["direction"] == direction]
        covered = pd.Series(False, index=rep.index)
        for _, r in rows.iterrows():
            hit = _matches(rep, r)
            if not hit.any():
                problems.append(
                    f"seed {seed_id}: no {direction} row {r['method']!r} in {r['table']!r} "
                    f"(dataset {r['dataset']!r}, split {r['split']!r})"
                )
            covered |= hit
        for table in rows.loc[rows["kind"] == "ablation", "table"].unique():
            left = rep[(rep["table"] == table) & ~covered]
            problems += [f"seed {seed_id}: {table!r} row {m!r} is not in the map" for m in left["method"]]
    return problems


def table_number(label: str) -> str:
    """``"Table 11 (appendix, DSL)"`` -> ``"Table 11"``: how claims.csv names a table."""
    m = re.match(r"\s*(Table\s+\d+)", str(label))
    return re.sub(r"\s+", " ", m.group(1)) if m else str(label).strip()


def notebook_of(results_file: str) -> str:
    """The notebook that writes ``results_file`` (``"etva_seeds.csv"`` -> ``"08_etva_experts_and_shared_centres"``);
    ``""`` when unknown."""
    stem = Path(str(results_file)).stem
    best = max((k for k in RESULT_SOURCES if stem.startswith(k)), key=len, default=None)
    return RESULT_SOURCES[best] if best else ""


# --------------------------------------------------------------------------- our per-seed numbers
def load_seed_results(path: str | Path, direction: str = "t2v") -> pd.DataFrame | None:
    """Per-seed test metrics from ``path`` as ``head, seed, R1, R5, R10, MdR, MnR`` (None when the file does not
    exist). Reads both layouts the notebooks write: one row per head and seed (``head``, ``seed`` and a column per
    metric) and tidy rows (``method``, ``metric``, ``value``, ``seed``; only ``direction`` rows when the file has a
    ``direction`` column)."""
    path = Path(path)
    if not path.exists():
        return None
    df = pd.read_csv(path)
    columns = ["head", "seed", *METRICS]
    if {"head", "seed"} <= set(df.columns) and "R1" in df.columns:
        out = df.copy()
    elif {"method", "metric", "value", "seed"} <= set(df.columns):
        if "direction" in df.columns:
            df = df[df["direction"] == direction]
        out = (
            df.pivot_table(index=["method", "seed"], columns="metric", values="value", aggfunc="first", sort=False)
            .reset_index()
            .rename(columns={"method": "head"})
        )
    else:
        raise ValueError(
            f"{path}: not a per-seed results file (need head, seed, R1, ... or method, metric, value, seed); "
            f"columns: {list(df.columns)}"
        )
    for m in METRICS:
        if m not in out.columns:
            out[m] = np.nan
    out["head"] = out["head"].astype(str)
    return out[columns].reset_index(drop=True)


def seed_stats(results: pd.DataFrame, head: str, metric: str = "R1") -> dict | None:
    """``{mean, std, min, max, seeds}`` of ``metric`` over the seeds of ``head`` (std: ddof 1, NaN with one seed);
    None when the head has no row."""
    v = results.loc[results["head"] == head, metric].dropna().to_numpy(dtype=float)
    if v.size == 0:
        return None
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
        "min": float(v.min()),
        "max": float(v.max()),
        "seeds": int(v.size),
    }


def spread_cell(stats: dict | None, digits: int = 1) -> str:
    """``"12.5 ± 1.1 [11.3, 13.3]"`` (``"12.5 [one seed]"`` with one seed; ``""`` for None)."""
    if stats is None:
        return ""
    f = f"{{:.{digits}f}}"
    if stats["seeds"] < 2:
        return f"{f.format(stats['mean'])} [one seed]"
    return f"{f.format(stats['mean'])} ± {f.format(stats['std'])} [{f.format(stats['min'])}, {f.format(stats['max'])}]"


def beside_reported(
    reported: pd.DataFrame,
    row_map: pd.DataFrame,
    folder: str | Path | None,
    *,
    metric: str = "R1",
    direction: str = "t2v",
    only_mapped: bool = False,
    digits: int = 1,
) -> pd.DataFrame:
    """One reported table beside ours: a row per (reported ``direction`` row, map row), in the paper's order.

    ``reported``: the rows of one table (:func:`tvrlib.paper_tables.load_paper_table`); ``row_map``: its map rows;
    ``folder``: ``results/<profile>/`` (None: read no results, only the map). Columns: ``seed_id, paper, table,
    method`` and the reported metrics, then ``ours`` (our head), ``from`` (its notebook's number), ``ours <metric>``
    (mean ± std [min, max] over training seeds), ``seeds``, ``status`` (the map's, or ``not yet run`` / ``no such
    head`` / ``not in the map``), ``map_status`` (the map's status as written) and ``note``; and numeric ``mean,
    std, min, max`` for figures (NaN without a number). ``only_mapped``: only reported rows with a map row (a main
    table restricted to what we implement)."""
    folder = Path(folder) if folder is not None else None
    rep = reported[reported["direction"] == direction]
    cache: dict[str, pd.DataFrame | None] = {}
    seed_id = row_map["seed_id"].iloc[0] if len(row_map) else ""
    paper = row_map["paper"].iloc[0] if len(row_map) else ""
    rows = []
    for _, p in rep.iterrows():
        maps = row_map[_matches(row_map, p)] if len(row_map) else row_map
        if maps.empty:
            if only_mapped:
                continue
            maps = pd.DataFrame([{"status": "not in the map", "results_file": "", "head": "", "note": ""}])
        for _, r in maps.iterrows():
            row = {
                "seed_id": seed_id,
                "paper": paper,
                "table": p["table"],
                "method": p["method"],
                **{m: p[m] for m in METRICS if m in p.index},
                "ours": r["head"],
                "from": notebook_of(r["results_file"])[:2] if r["results_file"] else "",
                f"ours {metric}": "",
                "seeds": 0,
                "status": r["status"],
                "map_status": r["status"],
                "note": r["note"],
                "mean": np.nan,
                "std": np.nan,
                "min": np.nan,
                "max": np.nan,
            }
            if r["status"] in MAPPED and folder is not None:
                f = r["results_file"]
                if f not in cache:
                    cache[f] = load_seed_results(folder / f, direction=direction)
                res = cache[f]
                if res is None:
                    row["status"] = f"not yet run ({notebook_of(f) or f})"
                else:
                    s = seed_stats(res, r["head"], metric)
                    if s is None:
                        row["status"] = f"no such head in {f}"
                    else:
                        row.update({k: s[k] for k in ("mean", "std", "min", "max", "seeds")})
                        row[f"ours {metric}"] = spread_cell(s, digits)
            rows.append(row)
    return pd.DataFrame(rows)


def unmapped_methods(reported: pd.DataFrame, row_map: pd.DataFrame, direction: str = "t2v") -> list[str]:
    """The methods of ``reported`` (one table) that share a dataset and split with a row of ``row_map`` but have no
    map row themselves: the rows of a main table that we do not implement, in the paper's order."""
    rep = reported[reported["direction"] == direction]
    if rep.empty or row_map.empty:
        return []
    blocks = set(zip(row_map["dataset"], row_map["split"]))
    in_block = [(d, s) in blocks for d, s in zip(rep["dataset"], rep["split"])]
    mapped = np.zeros(len(rep), dtype=bool)
    for _, r in row_map.iterrows():
        mapped |= _matches(rep, r).to_numpy()
    left = rep[np.asarray(in_block) & ~mapped]
    return list(dict.fromkeys(left["method"]))


def order_agreement(frame: pd.DataFrame, metric: str = "R1") -> tuple[int, int]:
    """``(agree, pairs)``: of the pairs of rows of ``frame`` (:func:`beside_reported`) that both have a reported
    ``metric`` and a mean of ours, differ in the reported value and are different heads of ours, how many our means
    order as the paper does (a tie of ours counts as not agreeing). A description of means, not a test."""
    t = frame[frame[metric].notna() & frame["mean"].notna()]
    agree = pairs = 0
    rows = list(t[[metric, "mean", "ours", "from"]].itertuples(index=False))
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if a[0] == b[0] or (a[2], a[3]) == (b[2], b[3]):
                continue
            pairs += 1
            agree += int(np.sign(a[0] - b[0]) == np.sign(a[1] - b[1]))
    return agree, pairs


# --------------------------------------------------------------------------- claims and hypotheses
def _ci_cell(value, lo, hi, digits: int = 1) -> str:
    if pd.isna(value):
        return ""
    f = f"{{:+.{digits}f}}"
    if pd.isna(lo) or pd.isna(hi):
        return f.format(value)
    return f"{f.format(value)} [{f.format(lo)}, {f.format(hi)}]"


def _agreeing(row) -> str:
    seeds = 0 if pd.isna(row["seeds"]) else int(row["seeds"])
    agree = 0 if pd.isna(row["seeds_agreeing"]) else int(row["seeds_agreeing"])
    return f"{agree}/{seeds}"


def claims_view(claims: pd.DataFrame, paper: str | None = None, table: str | None = None, digits: int = 1):
    """The claims of ``paper``'s ``table`` (``"Table 11 (appendix, DSL)"`` and ``"Table 11"`` both match; None:
    all) as display rows: ``paper, table, claim, metric, paper Δ, ours Δ [95% CI], seeds agreeing, verdict,
    notebook``."""
    c = claims
    if paper is not None:
        c = c[c["paper"] == paper]
    if table is not None:
        c = c[c["table"].map(table_number) == table_number(table)]
    out = pd.DataFrame(
        {
            "paper": c["paper"],
            "table": c["table"],
            "claim": c["claim"],
            "metric": c["metric"],
            "paper Δ": [("" if pd.isna(v) else f"{v:+.{digits}f}") for v in c["paper_difference"]],
            "ours Δ [95% CI]": [
                _ci_cell(v, lo, hi, digits) for v, lo, hi in zip(c["our_difference"], c["ci_low"], c["ci_high"])
            ],
            "seeds agreeing": [_agreeing(r) for _, r in c.iterrows()],
            "verdict": c["verdict"],
            "notebook": c["notebook"],
        },
        columns=[
            "paper",
            "table",
            "claim",
            "metric",
            "paper Δ",
            "ours Δ [95% CI]",
            "seeds agreeing",
            "verdict",
            "notebook",
        ],
    )
    return out.reset_index(drop=True)


def verdict_counts(frame: pd.DataFrame, by: str = "paper", verdicts=("reproduces", "opposite", "not significant")):
    """Counts of each verdict per ``by`` (rows) with a ``total`` column; ``verdicts`` come first (zero when absent),
    any other verdict found follows. An empty input gives an empty table with those columns."""
    found = [v for v in dict.fromkeys(frame["verdict"]) if v not in verdicts] if len(frame) else []
    columns = [*verdicts, *found]
    if frame.empty:
        return pd.DataFrame(columns=[*columns, "total"], dtype=int).rename_axis(by)
    table = pd.crosstab(frame[by], frame["verdict"]).reindex(columns=columns, fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.rename_axis(index=by, columns=None)


def hypotheses_view(hypotheses: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """``hypotheses.csv`` as display rows: ``notebook, hypothesis, metric, ours Δ [95% CI], seeds agreeing,
    verdict``, sorted by notebook."""
    h = hypotheses.sort_values(["notebook", "hypothesis"], kind="stable")
    return pd.DataFrame(
        {
            "notebook": h["notebook"],
            "hypothesis": h["hypothesis"],
            "metric": h["metric"],
            "ours Δ [95% CI]": [
                _ci_cell(v, lo, hi, digits) for v, lo, hi in zip(h["our_difference"], h["ci_low"], h["ci_high"])
            ],
            "seeds agreeing": [_agreeing(r) for _, r in h.iterrows()],
            "verdict": h["verdict"],
        },
        columns=["notebook", "hypothesis", "metric", "ours Δ [95% CI]", "seeds agreeing", "verdict"],
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- twins
def _twin_rows_of_file(path: Path) -> pd.DataFrame | None:
    """The twin rows of one results file as ``method, factor, seed, twin_accuracy``, or None when it has none.

    ``*_twins.csv`` (:func:`tvrlib.experiment.twin_seed_rows`): ``method, factor, seed, twin_accuracy``; rows that
    name their head ``head`` and their accuracy ``accuracy`` (notebook 09's re-rankers) are read alike. Tidy
    results (``direction == "twin"``, ``metric`` ``twin_<factor>``, ``value``) count only with a ``seed`` column and
    one row per method, seed and metric (a first-seed-only file is left out)."""
    df = pd.read_csv(path)
    if path.stem.endswith("_twins"):
        if "factor" not in df.columns:
            return None
        method = df["method"] if "method" in df.columns else pd.Series(np.nan, index=df.index, dtype=object)
        if "head" in df.columns:
            method = method.fillna(df["head"])
        acc = df["twin_accuracy"] if "twin_accuracy" in df.columns else pd.Series(np.nan, index=df.index)
        if "accuracy" in df.columns:
            acc = acc.fillna(df["accuracy"])
        seed = df["seed"] if "seed" in df.columns else 0
        return pd.DataFrame({"method": method, "factor": df["factor"], "seed": seed, "twin_accuracy": acc})
    if not {"direction", "metric", "value", "method", "seed"} <= set(df.columns):
        return None
    t = df[(df["direction"] == "twin") & df["metric"].astype(str).str.startswith("twin_")]
    if t.empty or t.duplicated(["method", "seed", "metric"]).any():
        return None
    return pd.DataFrame(
        {
            "method": t["method"],
            "factor": t["metric"].str.slice(len("twin_")),
            "seed": t["seed"],
            "twin_accuracy": t["value"],
        }
    )


def load_twins(folder: str | Path) -> pd.DataFrame:
    """Per-seed twin accuracy from every results file of ``folder`` that has it (:func:`_twin_rows_of_file`: the
    ``*_twins.csv`` files, and tidy files with per-seed twin rows such as ``temporal_modelling.csv``), as ``source,
    notebook, method, factor, seed, twin_accuracy``; empty when there is none."""
    columns = ["source", "notebook", "method", "factor", "seed", "twin_accuracy"]
    frames = []
    for path in sorted(Path(folder).glob("*.csv")):
        rows = _twin_rows_of_file(path)
        if rows is not None and len(rows):
            frames.append(rows.assign(source=path.stem, notebook=notebook_of(path.name)))
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)[columns]
    out["twin_accuracy"] = pd.to_numeric(out["twin_accuracy"], errors="coerce")
    return out.dropna(subset=["method", "twin_accuracy"]).reset_index(drop=True)


def twin_matrix(twins: pd.DataFrame, factors=TWIN_FACTORS) -> pd.DataFrame:
    """Mean twin accuracy over seeds, methods (rows, ``"label (NN)"`` with the notebook number) x factors
    (``factors`` first, then any other factor found). A method that another notebook already reported with the
    same label and the same means (e.g. the parameter-free Mean in three notebooks) is kept once, labelled with
    every notebook (``"Mean (06, 07, 08)"``)."""
    if twins.empty:
        return pd.DataFrame(columns=list(factors), dtype=float)
    twins = twins.sort_values("notebook", kind="stable")  # notebook order; within one, the file's order
    means = twins.pivot_table(
        index=["notebook", "method"], columns="factor", values="twin_accuracy", aggfunc="mean", sort=False
    )
    cols = [f for f in factors if f in means.columns] + [f for f in means.columns if f not in factors]
    means = means[cols]
    kept: list[tuple[str, list[str], pd.Series]] = []
    for (nb, method), values in means.iterrows():
        for k_method, k_nbs, k_values in kept:
            same = k_method == method and np.allclose(
                k_values.to_numpy(float), values.to_numpy(float), equal_nan=True, atol=1e-9
            )
            if same:
                k_nbs.append(nb)
                break
        else:
            kept.append((method, [nb], values))
    rows = {f"{m} ({', '.join(n[:2] for n in nbs if n) or '?'})": v for m, nbs, v in kept}
    return pd.DataFrame(rows).T.rename_axis(index=None, columns=None)


# --------------------------------------------------------------------------- what cannot be true
def rank_problems(reported: pd.DataFrame) -> pd.DataFrame:
    """Reported rows whose numbers cannot all be true: R@5 < R@1 or R@10 < R@5, or a median rank that contradicts
    a recall (R@K above 50 % needs MdR <= K; R@K below 50 % needs MdR > K). Columns: ``table, dataset, split,
    direction, method, problem`` (one row per problem)."""
    out = []
    key = ["table", "dataset", "split", "direction", "method"]
    for _, r in reported.iterrows():
        problems = []
        for lo, hi in (("R1", "R5"), ("R5", "R10")):
            if pd.notna(r.get(lo)) and pd.notna(r.get(hi)) and r[hi] < r[lo]:
                problems.append(f"{hi} {r[hi]:g} < {lo} {r[lo]:g}")
        mdr = r.get("MdR")
        if pd.notna(mdr):
            for k in (1, 5, 10):
                rk = r.get(f"R{k}")
                if pd.isna(rk):
                    continue
                if rk > 50 and mdr > k:
                    problems.append(f"MdR {mdr:g} with R{k} {rk:g} > 50 (needs MdR <= {k})")
                elif rk < 50 and mdr <= k:
                    problems.append(f"MdR {mdr:g} with R{k} {rk:g} < 50 (needs MdR > {k})")
        out += [{**{c: r.get(c, "") for c in key}, "problem": p} for p in problems]
    return pd.DataFrame(out, columns=[*key, "problem"])


# --------------------------------------------------------------------------- robustness across benchmarks
def compare_verdicts(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], digits: int = 1) -> pd.DataFrame:
    """The claims (``claims.csv``) or hypotheses (``hypotheses.csv``) judged on two profiles, side by side.

    One row per claim judged on either profile, keyed by ``paper, table, claim, notebook`` (hypotheses:
    ``notebook, hypothesis``), its ``metric`` (when the tables have one); for each profile ``name`` the columns
    ``"<name> Δ [95% CI]"`` and ``"<name>"`` (the verdict), then ``status``: ``"stable"`` (the same verdict on
    both), ``"fragile"`` (the verdicts differ, e.g. *reproduces* on one and *not significant* on the other) or
    ``"only on <name>"`` (not judged on the other one, e.g. a notebook that has not run there). A claim is the same
    claim when its key matches exactly."""
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"names must be two different profile names, got {names!r}")
    frames = [f for f in (a, b) if len(f)]
    kind = "hypothesis" if any("hypothesis" in f.columns for f in frames) else "claim"
    keys = ["notebook", "hypothesis"] if kind == "hypothesis" else ["paper", "table", "claim", "notebook"]
    has_metric = any("metric" in f.columns for f in frames)
    cols = [*keys, *(["metric"] if has_metric else []), *(c for n in names for c in (f"{n} Δ [95% CI]", n)), "status"]
    sides = []
    for frame, name in zip((a, b), names):
        if frame.empty:  # judged nowhere on this profile: every row is "only on" the other one
            empty = [*keys, f"{name} Δ [95% CI]", name, *([f"metric {name}"] if has_metric else [])]
            sides.append(pd.DataFrame(columns=empty))
            continue
        missing = set(keys) - set(frame.columns)
        if missing:
            raise ValueError(f"the {name} table lacks the key columns {sorted(missing)}")
        dup = frame.duplicated(keys)
        if dup.any():
            raise ValueError(f"the {name} table has the same {kind} twice: {frame.loc[dup, keys].values.tolist()}")
        diffs = zip(frame["our_difference"], frame["ci_low"], frame["ci_high"])
        cell = [_ci_cell(v, lo, hi, digits) for v, lo, hi in diffs]
        side = frame[keys].assign(**{f"{name} Δ [95% CI]": cell, name: frame["verdict"].to_numpy()})
        if has_metric:
            side[f"metric {name}"] = frame["metric"].to_numpy() if "metric" in frame else np.nan
        sides.append(side)
    out = sides[0].merge(sides[1], on=keys, how="outer", sort=False)
    if has_metric:  # the metric a claim is judged on is fixed up front: the same on both sides where both have it
        m0, m1 = out.pop(f"metric {names[0]}"), out.pop(f"metric {names[1]}")
        out["metric"] = m0.where(m0.notna(), m1)
    va, vb = out[names[0]], out[names[1]]
    out["status"] = np.where(
        va.isna(),
        f"only on {names[1]}",
        np.where(vb.isna(), f"only on {names[0]}", np.where(va == vb, "stable", "fragile")),
    )
    return out[cols].fillna("").reset_index(drop=True)


def head_means(folder: str | Path, metric: str = "R1", direction: str = "t2v") -> pd.DataFrame:
    """The mean test ``metric`` over training seeds of every head in every per-seed file of ``folder``
    (``*_seeds.csv``, :func:`load_seed_results`): columns ``notebook, head, mean, seeds``. Post-processed rows
    (``"+ DSL"``, ``"+ QB-Norm"``, ...) are kept: they are rows of notebook 10's table."""
    rows = []
    for path in sorted(Path(folder).glob("*_seeds.csv")):
        res = load_seed_results(path, direction)
        if res is None or res.empty:
            continue
        nb = notebook_of(path.name)
        for head, v in res.groupby("head", sort=False)[metric]:
            v = v.dropna()
            if len(v):
                rows.append({"notebook": nb, "head": head, "mean": float(v.mean()), "seeds": int(len(v))})
    return pd.DataFrame(rows, columns=["notebook", "head", "mean", "seeds"])


def compare_rankings(a: pd.DataFrame, b: pd.DataFrame, names: tuple[str, str], tie: float = 0.0) -> pd.DataFrame:
    """How the order of heads within each notebook (one protocol each) carries over from one profile to another.

    ``a``, ``b``: :func:`head_means` of the two profiles. Per notebook, over the pairs of heads that both profiles
    have: ``pairs``, ``same order`` (both profiles put the same head first by more than ``tie`` points of the
    metric), ``swapped`` (opposite orders, each by more than ``tie``), ``tied on one`` (within ``tie`` on at least
    one profile) and the heads ranked on each profile (best first). A description of means over seeds, not a test."""
    rows = []
    for nb in dict.fromkeys([*a["notebook"], *b["notebook"]]):
        x = a[a["notebook"] == nb].set_index("head")["mean"]
        y = b[b["notebook"] == nb].set_index("head")["mean"]
        common = [h for h in x.index if h in y.index]
        same = swapped = tied = 0
        for i, h in enumerate(common):
            for g in common[i + 1 :]:
                dx, dy = x[h] - x[g], y[h] - y[g]
                if abs(dx) <= tie or abs(dy) <= tie:
                    tied += 1
                elif np.sign(dx) == np.sign(dy):
                    same += 1
                else:
                    swapped += 1
        rows.append(
            {
                "notebook": nb,
                "heads on both": len(common),
                "pairs": same + swapped + tied,
                "same order": same,
                "swapped": swapped,
                "tied on one": tied,
                f"order on {names[0]}": " > ".join(x[common].sort_values(ascending=False).index),
                f"order on {names[1]}": " > ".join(y[common].sort_values(ascending=False).index),
            }
        )
    columns = ["notebook", "heads on both", "pairs", "same order", "swapped", "tied on one"]
    return pd.DataFrame(rows, columns=[*columns, f"order on {names[0]}", f"order on {names[1]}"])
