"""Retrieval metrics for text-video retrieval: ranks, R@K, MdR, MnR, bootstrap CIs.

Definitions
-----------
Every query (a caption for text-to-video, a video for video-to-text) gets the
1-based *rank* of its gold item among all candidates, sorted by similarity
(higher is better).  From the per-query ranks:

* ``R@K`` (``R1``, ``R5``, ``R10``): percentage of queries whose rank is
  ``<= K``.
* ``MdR``: median rank (lower is better).
* ``MnR``: mean rank (lower is better).

Tie rule (average rank)
-----------------------
The rank of the gold item is::

    rank = 1 + #(candidates scoring strictly higher than the gold)
             + #(other candidates scoring exactly the same as the gold) / 2

i.e. the mean of the ranks the gold would get over all orderings of the tied
block.  A row of ``N`` identical scores gives ``(N + 1) / 2`` (``N = 10`` ->
5.5).  Ranks may therefore be ``x.5``: a gold tied with exactly one other item
at the top gets rank 1.5, which is **not** counted by R@1 (``1.5 > 1``), but is
counted by R@5.  The rule is deterministic (no dependence on sort stability or
on item order) and each query contributes exactly one rank.

We use it because the ranking in CLIP4Clip's ``metrics.py`` ("sort the
negated scores, subtract the gold score and find the zeros",
``np.where(sorted - gold == 0)``) returns one hit per tied item, so a query
whose gold is tied with others contributes several ranks and is over-counted
in R@K/MdR/MnR; see https://github.com/ArrowLuo/CLIP4Clip/issues/80.  Ties are
not exotic: they appear with low-precision (fp16/bf16) similarities, duplicate
videos or captions, and degenerate (e.g. all-zero) embeddings.

Similarity matrices
-------------------
All functions take ``sim`` of shape ``[num_texts, num_videos]`` (rows are
captions, columns are videos), as a NumPy array or a torch tensor (any device,
any float dtype; it is converted chunk by chunk to float64 on the CPU, so the
full matrix is never copied).  ``text_to_video[i]`` is the gold video (column)
of caption ``i``; several captions may share a video.  Any NaN in ``sim`` that
a query has to look at raises ``ValueError`` naming the row.

Text-to-video: each caption is its own query, ranked over all videos (videos
without captions are allowed and act as distractors).

Video-to-text has two conventions in the literature, selected by
``convention``; every video must have at least one caption:

* ``"best_caption"`` (VSE++/SGRAF/Collaborative-Experts style): rank all
  captions by ``sim[:, j]``; the video's rank is that of its best-scoring gold
  caption, counting only *non-gold* captions as competitors::

      rank = 1 + #(non-gold captions strictly above the best gold score)
               + #(non-gold captions tied with it) / 2

  Other gold captions of the same video above/tied with it are not errors.
  Without ties this is the best (smallest) rank of any gold caption.
* ``"max_group"`` (CLIP4Clip multi-sentence style): caption group ``g`` (all
  captions of video ``g``) scores ``max_{t in g} sim[t, j]`` against video
  ``j``; each video is ranked over the ``num_videos`` groups (its own group is
  gold) with the tie rule above.

The two conventions always give the same R@1 (both count a video at rank 1 iff
its best gold caption strictly beats every non-gold caption) but differ for
R@5/R@10/MdR/MnR when a wrong video has several high-scoring captions
(``"best_caption"`` counts each of them, ``"max_group"`` counts the group
once).  With exactly one caption per video they are identical.

Uncertainty
-----------
:func:`bootstrap_ci` gives percentile bootstrap CIs over queries, and
:func:`paired_bootstrap`/:func:`compare` compare two methods on the same
queries (paired resampling).  Both are deterministic for a given ``seed``
(``numpy.random.default_rng``), ``n_boot`` and number of queries.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "LOWER_IS_BETTER",
    "CONVENTIONS",
    "DIRECTIONS",
    "rank_of_gold",
    "summarize",
    "ranks_t2v",
    "ranks_v2t",
    "t2v",
    "v2t",
    "bootstrap_ci",
    "paired_bootstrap",
    "compare",
    "with_ci",
    "twin_accuracy",
    "bootstrap_mean_ci",
]

#: Metric names returned by :func:`summarize` (besides ``n``), in the order every table shows them.
METRICS = ("R1", "R5", "R10", "MdR", "MnR")
#: The metrics where a smaller value is better (ranks); for R@K larger is better.
LOWER_IS_BETTER = frozenset({"MdR", "MnR"})
#: Valid ``convention`` values for video-to-text.
CONVENTIONS = ("best_caption", "max_group")
#: Valid ``direction`` values.
DIRECTIONS = ("t2v", "v2t")

_DEFAULT_CHUNK = 1024  # rows (or columns) ranked at a time
_BOOT_CHUNK_ELEMS = 1 << 22  # resampled values held at once by the bootstraps


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_sim(sim: Any, name: str = "sim") -> Any:
    """Return ``sim`` as a 2-D torch tensor or numpy array (no float64 copy yet)."""
    if not _is_torch(sim):
        sim = np.asarray(sim)
        if (
            sim.dtype == object
            or np.iscomplexobj(sim)
            or not (np.issubdtype(sim.dtype, np.number) or sim.dtype == bool)
        ):
            raise ValueError(f"{name} must be a real-valued numeric matrix, got dtype {sim.dtype}")
    elif sim.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {sim.dtype}")
    if sim.ndim != 2:
        raise ValueError(f"{name} must be 2-D [num_queries, num_items] (texts x videos), got shape {tuple(sim.shape)}")
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(sim.shape)}")
    return sim


def _block(sim: Any, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
    """A float64 numpy copy of ``sim[rows, cols]`` (on the CPU)."""
    rows = slice(None) if rows is None else rows
    cols = slice(None) if cols is None else cols
    part = sim[rows, cols]
    if _is_torch(part):
        import torch

        return part.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(part, dtype=np.float64)


def _check_index(idx: Any, name: str, length: int, upper: int, what: str, allow_minus_one: bool = False) -> np.ndarray:
    """Validate a 1-D integer index vector of ``length`` entries in ``[0, upper)``."""
    if _is_torch(idx):
        idx = idx.detach().cpu().numpy()
    idx = np.asarray(idx)
    if idx.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {idx.shape}")
    if idx.shape[0] != length:
        raise ValueError(
            f"{name} has {idx.shape[0]} entries but sim has {length} rows; {name} needs one entry per row of sim"
        )
    if length and not (np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{name} must hold integer indices, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    low = -1 if allow_minus_one else 0
    bad = np.flatnonzero((idx < low) | (idx >= upper))
    if bad.size:
        i = int(bad[0])
        allowed = f"[0, {upper})" + (" or -1" if allow_minus_one else "")
        raise ValueError(
            f"{name}[{i}] = {int(idx[i])} is out of range: must be in {allowed} "
            f"(sim has {upper} {what}); {bad.size} bad entr{'y' if bad.size == 1 else 'ies'} in total"
        )
    return idx


def _raise_nan(block: np.ndarray, row_offset: int, col_offset: int, query_axis: int) -> None:
    """Raise if ``block`` (a chunk of sim at the given offsets) contains NaN.

    ``query_axis`` 0: rows are the queries (t2v); 1: columns are (v2t).
    """
    nan_mask = np.isnan(block)
    if nan_mask.any():
        r, c = (int(x) for x in np.argwhere(nan_mask)[0])
        r, c = r + row_offset, c + col_offset
        query = f"query row {r}" if query_axis == 0 else f"video (column) {c}"
        raise ValueError(
            f"sim contains NaN at row {r}, column {c}; cannot rank {query} "
            f"(replace NaNs, e.g. from zero-norm embeddings, before evaluating)"
        )


def _avg_rank_rows(block: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Average-tie 1-based rank of ``block[k, gold[k]]`` within row ``k``."""
    g = block[np.arange(block.shape[0]), gold][:, None]
    higher = np.count_nonzero(block > g, axis=1)
    equal = np.count_nonzero(block == g, axis=1) - 1  # minus the gold itself
    return 1.0 + higher + 0.5 * equal


# --------------------------------------------------------------------------- #
# ranks
# --------------------------------------------------------------------------- #
def rank_of_gold(sim: Any, gold: Any, *, chunk_size: int = _DEFAULT_CHUNK, gold_name: str = "gold") -> np.ndarray:
    """1-based average-tie rank of the gold column of each row of ``sim``.

    ``sim`` is ``[num_queries, num_items]`` (numpy or torch), ``gold[i]`` the gold
    column of row ``i``.  ``rank = 1 + #(strictly higher) + #(other exact ties)/2``.
    Rows are processed ``chunk_size`` at a time (memory ~ ``chunk_size * num_items``
    float64 values).  Raises ``ValueError`` on bad shapes/indices or if a row
    contains NaN.  Returns a float64 array of length ``num_queries``.
    """
    sim = _check_sim(sim)
    n, m = sim.shape
    gold = _check_index(gold, gold_name, n, m, "columns")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    out = np.empty(n, dtype=np.float64)
    for r0 in range(0, n, chunk_size):
        r1 = min(n, r0 + chunk_size)
        block = _block(sim, rows=slice(r0, r1))
        _raise_nan(block, r0, 0, query_axis=0)
        out[r0:r1] = _avg_rank_rows(block, gold[r0:r1])
    return out


def ranks_t2v(sim: Any, text_to_video: Any, *, chunk_size: int = _DEFAULT_CHUNK) -> np.ndarray:
    """Per-caption text-to-video ranks; ``sim`` is ``[num_texts, num_videos]``."""
    return rank_of_gold(sim, text_to_video, chunk_size=chunk_size, gold_name="text_to_video")


def _check_v2t(sim: Any, text_to_video: Any) -> tuple[Any, np.ndarray]:
    sim = _check_sim(sim)
    num_texts, num_videos = sim.shape
    t2v_idx = _check_index(text_to_video, "text_to_video", num_texts, num_videos, "videos (columns)")
    counts = np.bincount(t2v_idx, minlength=num_videos)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            f"video-to-text needs at least one caption per video, but {missing.size} of "
            f"{num_videos} videos have none in text_to_video (first: column {int(missing[0])}); "
            f"drop those columns from sim or add their captions"
        )
    return sim, t2v_idx


def ranks_v2t(
    sim: Any, text_to_video: Any, convention: str = "best_caption", *, chunk_size: int = _DEFAULT_CHUNK
) -> np.ndarray:
    """Per-video video-to-text ranks (length ``num_videos``); see module docstring.

    ``sim`` is ``[num_texts, num_videos]`` (same orientation as for t2v).
    ``convention`` is ``"best_caption"`` or ``"max_group"``.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown v2t convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    sim, t2v_idx = _check_v2t(sim, text_to_video)
    num_texts, num_videos = sim.shape
    out = np.empty(num_videos, dtype=np.float64)

    if convention == "max_group":
        order = np.argsort(t2v_idx, kind="stable")
        starts = np.searchsorted(t2v_idx[order], np.arange(num_videos))

    for c0 in range(0, num_videos, chunk_size):
        c1 = min(num_videos, c0 + chunk_size)
        block = _block(sim, cols=slice(c0, c1))  # [num_texts, c]
        _raise_nan(block, 0, c0, query_axis=1)
        vids = np.arange(c0, c1)
        if convention == "best_caption":
            is_gold = t2v_idx[:, None] == vids[None, :]  # [num_texts, c]
            best = np.where(is_gold, block, -np.inf).max(axis=0)  # each video has >= 1 caption
            rival = ~is_gold
            higher = np.count_nonzero((block > best) & rival, axis=0)
            tied = np.count_nonzero((block == best) & rival, axis=0)
            out[c0:c1] = 1.0 + higher + 0.5 * tied
        else:
            group = np.maximum.reduceat(block[order], starts, axis=0)  # [num_videos(groups), c]
            out[c0:c1] = _avg_rank_rows(group.T, vids)
    return out


# --------------------------------------------------------------------------- #
# summaries
# --------------------------------------------------------------------------- #
def _check_ranks(ranks: Any, name: str = "ranks") -> np.ndarray:
    if _is_torch(ranks):
        ranks = ranks.detach().cpu().numpy()
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one rank per query), got shape {ranks.shape}")
    if ranks.size == 0:
        raise ValueError(f"{name} is empty: need at least one query")
    if not np.all(np.isfinite(ranks)) or np.any(ranks < 1):
        raise ValueError(f"{name} must be finite 1-based ranks (>= 1)")
    return ranks


def _stat(metric: str, r: np.ndarray) -> np.ndarray:
    """``metric`` along the last axis of ranks ``r`` (1-D -> scalar, 2-D -> per row)."""
    if metric == "R1":
        return 100.0 * np.mean(r <= 1, axis=-1)
    if metric == "R5":
        return 100.0 * np.mean(r <= 5, axis=-1)
    if metric == "R10":
        return 100.0 * np.mean(r <= 10, axis=-1)
    if metric == "MdR":
        return np.median(r, axis=-1)
    if metric == "MnR":
        return np.mean(r, axis=-1)
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def summarize(ranks: Any) -> dict[str, float]:
    """``{"R1", "R5", "R10"`` (percent), ``"MdR"``, ``"MnR"``, ``"n"}`` from per-query ranks.

    R@K counts ``rank <= K``; an average rank of 1.5 (gold tied with one other at
    the top) is not a hit for R@1.  Values are Python floats (``n`` is an int).
    """
    r = _check_ranks(ranks)
    out: dict[str, float] = {m: float(_stat(m, r)) for m in METRICS}
    out["n"] = int(r.size)
    return out


def t2v(sim: Any, text_to_video: Any) -> dict[str, float]:
    """Text-to-video metrics; ``sim`` is ``[num_texts, num_videos]``, one query per caption."""
    return summarize(ranks_t2v(sim, text_to_video))


def v2t(sim: Any, text_to_video: Any, convention: str = "best_caption") -> dict[str, float]:
    """Video-to-text metrics; ``sim`` is ``[num_texts, num_videos]``, one query per video."""
    return summarize(ranks_v2t(sim, text_to_video, convention))


def _ranks(sim: Any, text_to_video: Any, direction: str, convention: str) -> np.ndarray:
    if direction == "t2v":
        return ranks_t2v(sim, text_to_video)
    if direction == "v2t":
        return ranks_v2t(sim, text_to_video, convention)
    raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")


# --------------------------------------------------------------------------- #
# bootstrap
# --------------------------------------------------------------------------- #
def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _check_n_boot(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")


def _resampled_stats(
    arrays: list[np.ndarray], metrics: tuple[str, ...], n_boot: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """Bootstrap ``metrics`` of each array using the *same* resampled query indices."""
    n = arrays[0].size
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_ELEMS // n)
    out = [{m: np.empty(n_boot) for m in metrics} for _ in arrays]
    for b0 in range(0, n_boot, chunk):
        b1 = min(n_boot, b0 + chunk)
        idx = rng.integers(0, n, size=(b1 - b0, n))
        for arr, res in zip(arrays, out):
            sample = arr[idx]
            for m in metrics:
                res[m][b0:b1] = _stat(m, sample)
    return out


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def bootstrap_ci(ranks: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI over queries: ``{metric: (lo, hi)}`` for R1, R5, R10, MdR, MnR."""
    r = _check_ranks(ranks)
    _check_n_boot(n_boot)
    _check_level(level)
    (stats,) = _resampled_stats([r], METRICS, int(n_boot), seed)
    return {m: _percentile_ci(stats[m], level) for m in METRICS}


def paired_bootstrap(
    ranks_a: Any, ranks_b: Any, metric: str = "R1", n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` over the same queries.

    Both rank arrays must describe the same queries in the same order.  Each
    bootstrap replicate resamples query indices once and applies them to both
    methods.  Returns ``delta`` (a - b on the full set; for MdR/MnR negative
    means *a* is better), ``ci`` (percentile CI of the delta at ``level``),
    ``p_value``, ``a``/``b`` (the metric for each method), ``metric``, ``n``
    and ``n_boot``.

    ``p_value`` is a two-sided bootstrap sign test: the fraction of bootstrap
    deltas on the other side of 0 from the observed delta (zeros included, i.e.
    ``<= 0`` when ``delta > 0`` and ``>= 0`` when ``delta < 0``), times 2,
    capped at 1; ``delta == 0`` gives 1.  Its resolution is ``2 / n_boot``: 0
    means "below that", not exactly 0.
    """
    a = _check_ranks(ranks_a, "ranks_a")
    b = _check_ranks(ranks_b, "ranks_b")
    if a.size != b.size:
        raise ValueError(
            f"paired bootstrap needs the same queries for both methods: "
            f"ranks_a has {a.size} queries, ranks_b has {b.size}"
        )
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    _check_n_boot(n_boot)
    _check_level(level)
    va, vb = float(_stat(metric, a)), float(_stat(metric, b))
    delta = va - vb
    sa, sb = _resampled_stats([a, b], (metric,), int(n_boot), seed)
    deltas = sa[metric] - sb[metric]
    if delta > 0:
        p = min(1.0, 2.0 * float(np.mean(deltas <= 0)))
    elif delta < 0:
        p = min(1.0, 2.0 * float(np.mean(deltas >= 0)))
    else:
        p = 1.0
    return {
        "metric": metric,
        "a": va,
        "b": vb,
        "delta": delta,
        "ci": _percentile_ci(deltas, level),
        "p_value": p,
        "n": int(a.size),
        "n_boot": int(n_boot),
    }


def compare(
    sim_a: Any,
    sim_b: Any,
    text_to_video: Any,
    direction: str = "t2v",
    convention: str = "best_caption",
    metric: str = "R1",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """:func:`paired_bootstrap` of two methods' similarity matrices (same shape and captions)."""
    shape_a = tuple(_check_sim(sim_a, "sim_a").shape)
    shape_b = tuple(_check_sim(sim_b, "sim_b").shape)
    if shape_a != shape_b:
        raise ValueError(f"sim_a and sim_b must have the same shape, got {shape_a} and {shape_b}")
    ra = _ranks(sim_a, text_to_video, direction, convention)
    rb = _ranks(sim_b, text_to_video, direction, convention)
    return paired_bootstrap(ra, rb, metric=metric, n_boot=n_boot, seed=seed, level=level)


def with_ci(
    sim: Any,
    text_to_video: Any,
    direction: str = "t2v",
    convention: str = "best_caption",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Metrics plus ``<metric>_lo`` / ``<metric>_hi`` bootstrap bounds for each metric."""
    ranks = _ranks(sim, text_to_video, direction, convention)
    out = summarize(ranks)
    for m, (lo, hi) in bootstrap_ci(ranks, n_boot=n_boot, seed=seed, level=level).items():
        out[f"{m}_lo"] = lo
        out[f"{m}_hi"] = hi
    return out


# --------------------------------------------------------------------------- #
# twin accuracy (synthetic benchmark)
# --------------------------------------------------------------------------- #
def twin_accuracy(sim: Any, query_video: Any, twin_of: Any) -> tuple[float, np.ndarray]:
    """How often a query prefers its gold video over the gold video's near-twin.

    ``sim`` is ``[num_queries, num_videos]``, ``query_video[i]`` the gold video of
    query ``i`` and ``twin_of[i]`` the column of that video's twin (-1: none).
    Each query with a twin scores 1 if ``sim[i, gold] > sim[i, twin]``, 0.5 on an
    exact tie and 0 otherwise (chance = 0.5).  Returns ``(mean, per_query)``
    where ``per_query`` holds the scores of the twin queries only, in query
    order (feed it to :func:`bootstrap_mean_ci`).  Raises ``ValueError`` if no
    query has a twin, a twin equals its gold, or a compared score is NaN.
    """
    sim = _check_sim(sim)
    n, m = sim.shape
    gold = _check_index(query_video, "query_video", n, m, "videos (columns)")
    twin = _check_index(twin_of, "twin_of", n, m, "videos (columns)", allow_minus_one=True)
    rows = np.flatnonzero(twin >= 0)
    if rows.size == 0:
        raise ValueError("twin_of is -1 everywhere: no query has a twin video to compare against")
    same = rows[gold[rows] == twin[rows]]
    if same.size:
        raise ValueError(f"twin_of[{int(same[0])}] equals query_video[{int(same[0])}]: a video cannot be its own twin")
    g = np.empty(rows.size)
    t = np.empty(rows.size)
    for k0 in range(0, rows.size, _DEFAULT_CHUNK):
        sel = rows[k0 : k0 + _DEFAULT_CHUNK]
        if _is_torch(sim):
            import torch

            sel_t = torch.as_tensor(sel, device=sim.device)
            vals = sim.detach()[sel_t].to(device="cpu", dtype=torch.float64).numpy()
        else:
            vals = np.asarray(sim[sel], dtype=np.float64)
        local = np.arange(sel.size)
        g[k0 : k0 + sel.size] = vals[local, gold[sel]]
        t[k0 : k0 + sel.size] = vals[local, twin[sel]]
    bad = np.isnan(g) | np.isnan(t)
    if bad.any():
        raise ValueError(f"sim is NaN at the gold or twin column of row {int(rows[bad.argmax()])}")
    scores = np.where(g > t, 1.0, np.where(g == t, 0.5, 0.0))
    return float(scores.mean()), scores


def bootstrap_mean_ci(values: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI ``(lo, hi)`` of the mean of ``values`` (deterministic in ``seed``)."""
    if _is_torch(values):
        values = values.detach().cpu().numpy()
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite (no NaN/inf)")
    _check_n_boot(n_boot)
    _check_level(level)
    rng = np.random.default_rng(seed)
    n = v.size
    chunk = max(1, _BOOT_CHUNK_ELEMS // n)
    means = np.empty(int(n_boot))
    for b0 in range(0, int(n_boot), chunk):
        b1 = min(int(n_boot), b0 + chunk)
        means[b0:b1] = v[rng.integers(0, n, size=(b1 - b0, n))].mean(axis=1)
    return _percentile_ci(means, level)
