"""Evaluate a trained head on a split: what notebooks 03-05 report for every head.

* :func:`evaluate` -- t2v and v2t metrics with 95 % bootstrap CIs, and, on the synthetic test
  split, **per-factor twin accuracy** (order / direction / detail) with CIs (:mod:`tvrlib.twins`);
* :func:`evaluation_rows` -- the tidy rows ``S.save`` writes to ``results/<profile>/``;
* :func:`summary_frame` -- one display row per head.

Related: frame-order probes in :mod:`tvrlib.frame_order`, a paper's rows beside ours and claim
verdicts in :mod:`tvrlib.paper_tables`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .heads import score_all
from .heads.base import RetrievalHead, TextInput, VideoInput
from .reporting import ci_cell, results_rows
from .twins import twin_pair_scores, twin_table

EVAL_CHUNK = 256  # texts and videos per scoring block (the blocks every reported number was computed with)


@dataclass
class Evaluation:
    """One head on one split. ``sim`` is ``[num_texts, num_videos]`` over the evaluated gallery
    (``[num_queries, num_videos]`` when evaluated with ``v2t=False``)."""

    method: str
    t2v: dict
    v2t: dict
    twins: pd.DataFrame | None
    sim: torch.Tensor | None = field(repr=False, default=None)
    twin_scores: np.ndarray | None = field(repr=False, default=None)  # [n_twin_queries, 2]: gold, twin
    twin_factors: np.ndarray | None = field(repr=False, default=None)  # [n_twin_queries] factor of each
    num_videos: int = 0
    num_queries: int = 0
    seconds: float = 0.0
    twin_videos: np.ndarray | None = field(repr=False, default=None)  # [n_twin_queries] gold video of each


#: What a video ranks in v2t (:func:`evaluate`'s ``v2t_texts``): the split's query captions, or all its captions.
V2T_TEXTS = ("queries", "all")


def evaluate(
    head: RetrievalHead,
    texts: TextInput,
    videos: VideoInput,
    data,
    *,
    method: str,
    n_boot: int = 1000,
    seed: int = 0,
    convention: str = "best_caption",
    gallery: int | None = None,
    keep_sim: bool = True,
    v2t: bool = True,
    v2t_texts: str | None = None,
) -> Evaluation:
    """t2v (the split's queries) and v2t metrics with CIs, and per-factor twin accuracy.

    ``v2t_texts``: which captions each video ranks in v2t. ``"queries"``: only the split's query captions (MSR-VTT
    1k-A: the 1,000 JSFusion sentences, one per video, so v2t ranks the same 1,000 x 1,000 matrix as t2v);
    ``"all"``: every caption of the split (a hit when any of the video's own captions ranks high, ``convention``).
    None: the split's own protocol, ``data.meta["v2t_texts"]`` (set by its loader), else ``"all"``.

    ``texts``: every caption of the split (``S.texts(split)``); ``videos``: ``S.videos(split)``;
    ``data``: ``S.data(split)``. ``gallery=n`` evaluates retrieval on the first ``n`` videos and their
    captions only (for heads too slow for the whole ``T x V`` grid); twin accuracy always uses every
    twin query of the split (it needs only two scores per query).

    Ties (ranks and twin accuracy alike) use :data:`tvrlib.metrics.TIE_TOLERANCE`. Resampled unit of the CIs:
    t2v resamples *videos* with all their query captions when some video has more than one query caption
    (:func:`tvrlib.metrics.with_ci`'s ``clusters="auto"``; one query per video: the queries, as before); v2t
    resamples the query videos; twin accuracy resamples twin queries, or their gold videos when a video has
    several twin queries.
    """
    t0 = time.perf_counter()
    sub = data if gallery is None else data.subset(gallery)
    if gallery is None:
        tx, vx = texts, videos
    else:
        keep = np.flatnonzero(np.asarray(data.text_to_video) < gallery)
        tx, vx = texts.index(torch.as_tensor(keep)), videos.index(slice(0, gallery))
    q = np.asarray(sub.query_index)
    meta = getattr(data, "meta", None) or {}
    v2t_texts = v2t_texts or meta.get("v2t_texts", "all")
    if v2t_texts not in V2T_TEXTS:
        raise ValueError(f"v2t_texts={v2t_texts!r}; use one of {V2T_TEXTS}")
    if v2t:
        sim = score_all(head, tx, vx, chunk=EVAL_CHUNK)
        sim_q = sim[torch.as_tensor(q)]
        if v2t_texts == "queries":  # the query captions only: rows of sim_q, their gold videos
            r_v2t = M.with_ci(sim_q, sub.text_to_video[q], "v2t", convention=convention, n_boot=n_boot, seed=seed)
        else:
            r_v2t = M.with_ci(sim, sub.text_to_video, "v2t", convention=convention, n_boot=n_boot, seed=seed)
    else:
        sim = sim_q = score_all(head, tx.index(torch.as_tensor(q)), vx, chunk=EVAL_CHUNK)
        r_v2t = {}
    # clusters="auto": the gold video of each query caption when a video has several (bit-identical otherwise)
    r_t2v = M.with_ci(sim_q, sub.text_to_video[q], "t2v", n_boot=n_boot, seed=seed, clusters="auto")

    def from_grid(qidx, rows, gold, twin):  # the twins' two scores are already in the scored grid
        s = (sim[torch.as_tensor(qidx)] if v2t else sim[torch.as_tensor(rows)]).double().numpy()
        return np.stack([s[np.arange(len(rows)), gold], s[np.arange(len(rows)), twin]], axis=1)

    twin_scores = from_grid if gallery is None else None
    twins, pair, factors, gold = _twin_part(head, texts, videos, data, n_boot, seed, twin_scores)
    return Evaluation(
        method,
        r_t2v,
        r_v2t,
        twins,
        sim if keep_sim else None,
        pair,
        factors,
        len(vx),
        len(q),
        time.perf_counter() - t0,
        twin_videos=None if pair is None else gold,
    )


def _twin_part(head, texts, videos, data, n_boot, seed, scores=None):
    """``(twin table, [n, 2] gold/twin scores, factor of each, gold video of each)`` of the split's twin queries,
    all None without twins. ``scores(qidx, rows, gold, twin)`` reads them from a scored grid; None: scores the
    ``2 n`` aligned pairs (:func:`tvrlib.twins.twin_pair_scores`)."""
    meta = getattr(data, "meta", None) or {}
    twin_of = meta.get("twin_of_query")
    if twin_of is None:
        return None, None, None, None
    twin_of = np.asarray(twin_of)
    rows = np.flatnonzero(twin_of >= 0)
    if not rows.size:
        return None, None, None, None
    qidx = np.asarray(data.query_index)[rows]
    gold, twin = np.asarray(data.text_to_video)[qidx], twin_of[rows]
    if scores is None:
        pair = twin_pair_scores(head, texts.index(torch.as_tensor(qidx)), videos, gold, twin)
    else:
        pair = scores(qidx, rows, gold, twin)
    factors = np.asarray([meta["factor_of_query"][i] for i in rows])
    return twin_table(pair, factors, n_boot=n_boot, seed=seed, clusters=gold), pair, factors, gold


def evaluate_twins(
    head: RetrievalHead, texts: TextInput, videos: VideoInput, data, *, method: str, n_boot: int = 1000, seed: int = 0
) -> Evaluation:
    """Twin accuracy only (no t2v or v2t): each twin query scored against its gold video and its twin, ``2 n``
    pairs instead of the ``T x V`` grid, for heads whose every pair is expensive (run's ``test_eval_fn`` for the
    paired twin comparisons of :func:`tvrlib.experiment.twin_runs`). ``texts`` / ``videos`` / ``data``: as
    :func:`evaluate`'s. The scores equal those of :func:`evaluate` (the same pairs)."""
    t0 = time.perf_counter()
    twins, pair, factors, gold = _twin_part(head, texts, videos, data, n_boot, seed)
    return Evaluation(
        method, {}, {}, twins, None, pair, factors, len(videos), 0, time.perf_counter() - t0, twin_videos=gold
    )


def evaluation_rows(experiment: str, ev: Evaluation, **extra) -> list[dict]:
    """Tidy rows (experiment, method, direction, metric, value, ci_lo, ci_hi, n, num_videos, ...) of an
    :class:`Evaluation`. ``num_videos`` is the size of the retrieval gallery the t2v/v2t rows were ranked in; twin rows
    (``direction="twin"``, value in percent) always cover every twin query of the split, counted in ``n``."""
    rows = results_rows(experiment, ev.method, "t2v", ev.t2v, num_videos=ev.num_videos, **extra)
    if ev.v2t:
        rows += results_rows(experiment, ev.method, "v2t", ev.v2t, num_videos=ev.num_videos, **extra)
    if ev.twins is not None:
        for r in ev.twins.itertuples():
            rows.append(
                {
                    "experiment": experiment,
                    "method": ev.method,
                    "direction": "twin",
                    "metric": f"twin_{r.factor}",
                    "value": r.accuracy,
                    "ci_lo": r.ci_lo,
                    "ci_hi": r.ci_hi,
                    "n": r.n,
                    "num_videos": ev.num_videos,
                    **extra,
                }
            )
    return rows


def summary_frame(evals: list[Evaluation], digits: int = 1) -> pd.DataFrame:
    """One row per head: t2v R@1/R@5/R@10/MnR and v2t R@1 with CIs, and the per-factor twin accuracy."""
    rows = {}
    for ev in evals:
        row = {
            f"t2v {m}": ci_cell(ev.t2v[m], ev.t2v[f"{m}_lo"], ev.t2v[f"{m}_hi"], digits)
            for m in ("R1", "R5", "R10", "MnR")
        }
        row["v2t R1"] = ci_cell(ev.v2t["R1"], ev.v2t["R1_lo"], ev.v2t["R1_hi"], digits) if ev.v2t else "-"
        if ev.twins is not None:
            for r in ev.twins.itertuples():
                row[f"twin {r.factor}"] = ci_cell(r.accuracy, r.ci_lo, r.ci_hi, digits)
        row["videos"] = ev.num_videos
        rows[ev.method] = row
    return pd.DataFrame.from_dict(rows, orient="index")
