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

Tie rule (average rank, with a tolerance)
-----------------------------------------
Two scores *tie* when they differ by at most :data:`TIE_TOLERANCE` relative
to the reference score's scale: a candidate score ``s`` ties the gold score
``g`` when::

    |s - g| <= delta(g),   delta(g) = TIE_TOLERANCE * max(1, |g|)

(evaluated as ``g - delta <= s <= g + delta`` in float64; ``delta = 0`` when
``g`` is infinite).  The rank of the gold item is then::

    rank = 1 + #(candidates scoring above g + delta(g))
             + #(other candidates within delta(g) of g) / 2

i.e. the mean of the ranks the gold would get over all orderings of the tied
block.  A row of ``N`` identical scores gives ``(N + 1) / 2`` (``N = 10`` ->
5.5).  Ranks may therefore be ``x.5``: a gold tied with exactly one other item
at the top gets rank 1.5, which is **not** counted by R@1 (``1.5 > 1``), but is
counted by R@5.  The rule is deterministic (no dependence on sort stability or
on item order) and each query contributes exactly one rank.  The same rule,
with the same constant, decides :func:`twin_accuracy` (and
:func:`tvrlib.twins.twin_outcomes`): a twin query scores 1 when the twin is
below ``g - delta(g)``, 0.5 when it is within ``delta(g)`` of ``g`` and 0 when
above ``g + delta(g)``, exactly the 0 / 0.5 / 1 the twin adds to the gold's
rank.

*Why a tolerance.*  Floating-point addition is not associative: the same
numbers summed in another order (or in float32 instead of float64) differ in
the last bits.  A head that is order-blind in theory (mean pooling, attention
pooling without position embeddings, X-Pool, top-K frames without temporal
encoding) should give a video and its frame-reordered twin (the synthetic
benchmark's direction twins hold the same frames) the same score, and does so
only when its arithmetic happens to be insensitive to the order: this suite's
mean pooling sums in float64 and ties them exactly, while the float32
attention heads differ by about 1e-7 with a sign that is pure rounding, so
exact-equality ranking hands out R@1 for about half of those queries and
credits rounding as a preference.  float32 has a relative resolution of
about 1.2e-7 and a dot product of D terms accumulates a few such roundings.
Measured on randomly initialised heads (D = 128 and 512, 12 frames), scores
of reordered frames differ by 1e-8 to 3e-7 (a softmax or a transformer layer
amplifies the rounding; a transformer without position embeddings given
deliberately large weights reached 1e-5), and notebook 05 needed 1e-5 for its
attention heads, so ``TIE_TOLERANCE = 1e-5`` leaves a wide margin above
rounding while staying far below the score gaps retrieval decides on.  A
genuine difference smaller than that is rare and then costs nothing
systematic: the pair gets half credit, the expected value of a coin toss.
The scale ``max(1, |g|)`` keeps the tolerance an absolute 1e-5 for cosines
(``|g| <= 1``) and makes it relative for heads whose scores are larger logits
(tightTransf), whose rounding grows with their magnitude.  The scale is the
gold's own score, not the row's, so that the rule needs nothing but the two
scores compared (twin accuracy from ``[n, 2]`` pair scores applies the
identical rule).  Every function that ranks takes ``tie_tolerance=``
(``None``: the module constant, read at call time; ``0``: exact equality,
the rule before the tolerance); fp16/bf16 similarities round at about 1e-3 /
1e-2 and need a larger one if their near-ties matter.

We average ties because the ranking in CLIP4Clip's ``metrics.py`` ("sort the
negated scores, subtract the gold score and find the zeros",
``np.where(sorted - gold == 0)``) returns one hit per tied item, so a query
whose gold is tied with others contributes several ranks and is over-counted
in R@K/MdR/MnR; see https://github.com/ArrowLuo/CLIP4Clip/issues/80.  Ties are
not exotic: they appear with order-blind heads on reordered frames (above),
low-precision (fp16/bf16) similarities, duplicate videos or captions, and
degenerate (e.g. all-zero) embeddings.

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

      rank = 1 + #(non-gold captions above the best gold score b + delta(b))
               + #(non-gold captions tied with b, i.e. within delta(b)) / 2

  Other gold captions of the same video above/tied with it are not errors.
  Without ties this is the best (smallest) rank of any gold caption.
* ``"max_group"`` (CLIP4Clip multi-sentence style): caption group ``g`` (all
  captions of video ``g``) scores ``max_{t in g} sim[t, j]`` against video
  ``j``; each video is ranked over the ``num_videos`` groups (its own group is
  gold) with the tie rule above.

The two conventions always give the same R@1 (both count a video at rank 1 iff
its best gold caption beats every non-gold caption by more than the tie
tolerance) but differ for
R@5/R@10/MdR/MnR when a wrong video has several high-scoring captions
(``"best_caption"`` counts each of them, ``"max_group"`` counts the group
once).  With exactly one caption per video they are identical.

Uncertainty
-----------
:func:`bootstrap_ci` gives percentile bootstrap CIs over queries, and
:func:`paired_bootstrap`/:func:`compare` compare two methods on the same
queries (paired resampling).  Both are deterministic for a given ``seed``
(``numpy.random.default_rng``), ``n_boot`` and number of queries (or
clusters).

*Which unit is resampled.*  Without ``clusters`` each replicate draws queries
with replacement.  That assumes queries are independent, which captions of
one video are not (they describe the same clip; MSVD has about 41 per video,
MSR-VTT's full test set 20): resampling captions treats 41 correlated
captions as 41 independent observations and makes CIs and paired tests too
narrow.  With ``clusters`` (one integer label per query, e.g. the gold video
of each caption) each replicate draws *clusters* with replacement and takes
all the queries of every drawn cluster (the cluster bootstrap; a replicate
has as many clusters as the data, so its number of queries varies).
:func:`with_ci` and :func:`compare` do this by default for text-to-video
(``clusters="auto"``: the gold video of each caption is its cluster) when
some video has more than one query caption; video-to-text queries are videos
already and are resampled one by one.  When every cluster holds one query,
resampling clusters *is* resampling queries and the result is bit-identical
to the unclustered bootstrap with the same seed (so single-query splits,
e.g. MSR-VTT 1k-A or the synthetic benchmark's query set, are unaffected).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "LOWER_IS_BETTER",
    "TIE_TOLERANCE",
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
#: Two scores tie when they differ by at most ``TIE_TOLERANCE * max(1, |reference score|)`` (module docstring).
#: Functions read it at call time (``tie_tolerance=None``), so changing it changes ranks and twin accuracy alike.
TIE_TOLERANCE = 1e-5

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


def _tolerance(tie_tolerance: float | None) -> float:
    """The tie tolerance to use: ``tie_tolerance``, or :data:`TIE_TOLERANCE` (read now) when ``None``."""
    tol = TIE_TOLERANCE if tie_tolerance is None else tie_tolerance
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tie_tolerance must be a non-negative number, got {tie_tolerance!r}") from None
    if not (np.isfinite(tol) and tol >= 0.0):
        raise ValueError(f"tie_tolerance must be finite and >= 0 (0: exact equality), got {tol}")
    return tol


def _tie_bounds(ref: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: a score ``s`` ties the reference ``ref`` iff ``lo <= s <= hi``.

    ``lo, hi = ref -/+ tol * max(1, |ref|)`` (only exact equality where ``ref`` is infinite, or ``tol == 0``).
    Everything above ``hi`` beats the reference, everything below ``lo`` loses to it.
    """
    ref = np.asarray(ref, dtype=np.float64)
    if tol == 0.0:
        return ref, ref
    delta = tol * np.maximum(1.0, np.abs(ref))
    delta = np.where(np.isfinite(delta), delta, 0.0)
    return ref - delta, ref + delta


def _avg_rank_rows(block: np.ndarray, gold: np.ndarray, tol: float) -> np.ndarray:
    """Average-tie 1-based rank of ``block[k, gold[k]]`` within row ``k`` (ties within ``tol``, module docstring)."""
    lo, hi = _tie_bounds(block[np.arange(block.shape[0]), gold], tol)
    higher = np.count_nonzero(block > hi[:, None], axis=1)
    tied = np.count_nonzero(block >= lo[:, None], axis=1) - higher - 1  # minus the gold itself
    return 1.0 + higher + 0.5 * tied


# --------------------------------------------------------------------------- #
# ranks
# --------------------------------------------------------------------------- #
def rank_of_gold(
    sim: Any,
    gold: Any,
    *,
    chunk_size: int = _DEFAULT_CHUNK,
    gold_name: str = "gold",
    tie_tolerance: float | None = None,
) -> np.ndarray:
    """1-based average-tie rank of the gold column of each row of ``sim``.

    ``sim`` is ``[num_queries, num_items]`` (numpy or torch), ``gold[i]`` the gold
    column of row ``i``.  ``rank = 1 + #(above g + delta) + #(others within delta of g)/2``
    with ``g`` the gold score and ``delta = tie_tolerance * max(1, |g|)``
    (``None``: :data:`TIE_TOLERANCE`; ``0``: exact ties only; module docstring).
    Rows are processed ``chunk_size`` at a time (memory ~ ``chunk_size * num_items``
    float64 values).  Raises ``ValueError`` on bad shapes/indices or if a row
    contains NaN.  Returns a float64 array of length ``num_queries``.
    """
    sim = _check_sim(sim)
    n, m = sim.shape
    gold = _check_index(gold, gold_name, n, m, "columns")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    tol = _tolerance(tie_tolerance)
    out = np.empty(n, dtype=np.float64)
    for r0 in range(0, n, chunk_size):
        r1 = min(n, r0 + chunk_size)
        block = _block(sim, rows=slice(r0, r1))
        _raise_nan(block, r0, 0, query_axis=0)
        out[r0:r1] = _avg_rank_rows(block, gold[r0:r1], tol)
    return out


def ranks_t2v(
    sim: Any, text_to_video: Any, *, chunk_size: int = _DEFAULT_CHUNK, tie_tolerance: float | None = None
) -> np.ndarray:
    """Per-caption text-to-video ranks; ``sim`` is ``[num_texts, num_videos]`` (ties: :func:`rank_of_gold`)."""
    return rank_of_gold(
        sim, text_to_video, chunk_size=chunk_size, gold_name="text_to_video", tie_tolerance=tie_tolerance
    )


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
    sim: Any,
    text_to_video: Any,
    convention: str = "best_caption",
    *,
    chunk_size: int = _DEFAULT_CHUNK,
    tie_tolerance: float | None = None,
) -> np.ndarray:
    """Per-video video-to-text ranks (length ``num_videos``); see module docstring.

    ``sim`` is ``[num_texts, num_videos]`` (same orientation as for t2v).
    ``convention`` is ``"best_caption"`` or ``"max_group"``.  Ties are decided
    relative to the best gold caption's score (``"best_caption"``) or the gold
    group's score (``"max_group"``) with ``tie_tolerance`` (``None``:
    :data:`TIE_TOLERANCE`; ``0``: exact ties only).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown v2t convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    tol = _tolerance(tie_tolerance)
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
            lo, hi = _tie_bounds(best, tol)
            rival = ~is_gold
            higher = np.count_nonzero((block > hi) & rival, axis=0)
            tied = np.count_nonzero((block >= lo) & rival, axis=0) - higher
            out[c0:c1] = 1.0 + higher + 0.5 * tied
        else:
            group = np.maximum.reduceat(block[order], starts, axis=0)  # [num_videos(groups), c]
            out[c0:c1] = _avg_rank_rows(group.T, vids, tol)
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


def t2v(sim: Any, text_to_video: Any, *, tie_tolerance: float | None = None) -> dict[str, float]:
    """Text-to-video metrics; ``sim`` is ``[num_texts, num_videos]``, one query per caption."""
    return summarize(ranks_t2v(sim, text_to_video, tie_tolerance=tie_tolerance))


def v2t(
    sim: Any, text_to_video: Any, convention: str = "best_caption", *, tie_tolerance: float | None = None
) -> dict[str, float]:
    """Video-to-text metrics; ``sim`` is ``[num_texts, num_videos]``, one query per video."""
    return summarize(ranks_v2t(sim, text_to_video, convention, tie_tolerance=tie_tolerance))


def _ranks(
    sim: Any, text_to_video: Any, direction: str, convention: str, tie_tolerance: float | None = None
) -> np.ndarray:
    if direction == "t2v":
        return ranks_t2v(sim, text_to_video, tie_tolerance=tie_tolerance)
    if direction == "v2t":
        return ranks_v2t(sim, text_to_video, convention, tie_tolerance=tie_tolerance)
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


def _check_clusters(clusters: Any, n: int) -> np.ndarray | None:
    """Cluster labels ``0 .. C-1`` numbered by first appearance, or ``None`` when no clustering is needed.

    ``clusters`` holds one label per query (``None``: every query is its own cluster).  ``None`` is also
    returned when every label occurs once: resampling singleton clusters numbered in query order draws
    exactly what resampling queries draws, so both paths give bit-identical results for the same seed.
    """
    if clusters is None:
        return None
    if _is_torch(clusters):
        clusters = clusters.detach().cpu().numpy()
    c = np.asarray(clusters)
    if c.ndim != 1:
        raise ValueError(f"clusters must be 1-D (one cluster label per query), got shape {c.shape}")
    if c.shape[0] != n:
        raise ValueError(f"clusters has {c.shape[0]} entries but there are {n} queries; need one label per query")
    if c.size and not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.str_)):
        raise ValueError(f"clusters must hold integer labels (e.g. the gold video of each query), got dtype {c.dtype}")
    _, first, inverse = np.unique(c, return_index=True, return_inverse=True)
    if first.size == n:
        return None
    relabel = np.empty(first.size, dtype=np.int64)
    relabel[np.argsort(first, kind="stable")] = np.arange(first.size)
    return relabel[inverse.reshape(-1)]


def _cluster_draws(
    rng: np.random.Generator, num_clusters: int, b: int, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``b`` cluster resamples: ``counts [b, C]`` (how often each cluster was drawn in each replicate), the
    same as float64 ``weights``, and each replicate's number of queries ``weights @ size``."""
    idx = rng.integers(0, num_clusters, size=(b, num_clusters))
    flat = (idx + num_clusters * np.arange(b)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * num_clusters).reshape(b, num_clusters)
    weights = counts.astype(np.float64)
    return counts, weights, weights @ size


class _ClusterStats:
    """Per-cluster summaries of one array of per-query values, to evaluate statistics of cluster resamples.

    A replicate is given by ``counts [b, C]`` (multiplicity of each cluster, from :func:`_cluster_draws`); its
    queries are all the queries of each drawn cluster, repeated as often as the cluster was drawn. Means are
    ratios of per-cluster sums; the median is read off the replicate's cumulative counts along the values
    sorted once. Nothing of size ``[b, n]`` but the median's running counts is built.
    """

    def __init__(self, values: np.ndarray, labels: np.ndarray, num_clusters: int):
        self.values, self.labels, self.num_clusters = values, labels, num_clusters
        self._sums: dict[str, np.ndarray] = {}
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def _sum(self, key: str, per_query: np.ndarray) -> np.ndarray:
        if key not in self._sums:
            self._sums[key] = np.bincount(self.labels, weights=per_query, minlength=self.num_clusters)
        return self._sums[key]

    def mean(self, weights: np.ndarray, total: np.ndarray, key: str = "value", per_query: np.ndarray | None = None):
        """Mean of ``per_query`` (default: the values) over each replicate's queries (sums of integers and
        halves, as ranks and hits are, are exact in float64: the same numbers as the mean of the replicate)."""
        per_query = self.values if per_query is None else per_query
        return (weights @ self._sum(key, per_query.astype(np.float64))) / total

    def median(self, counts: np.ndarray) -> np.ndarray:
        """``np.median`` of each replicate's values (the mean of the two middle ones for an even count)."""
        if self._sorted is None:
            order = np.argsort(self.values, kind="stable")
            self._sorted = (self.values[order], self.labels[order])
        vals, labs = self._sorted
        cum = np.cumsum(counts[:, labs], axis=1, dtype=np.int32)  # [b, n] running count of the sorted values
        total = cum[:, -1]
        lower = np.count_nonzero(cum < ((total + 1) // 2)[:, None], axis=1)  # 0-based position of the lower middle
        upper = np.count_nonzero(cum < (total // 2 + 1)[:, None], axis=1)
        return (vals[lower] + vals[upper]) / 2.0


def _cluster_stat(metric: str, cs: _ClusterStats, draws: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``_stat(metric, ·)`` of each cluster-resampled replicate (the same values, the same float64 results)."""
    counts, weights, total = draws
    if metric in ("R1", "R5", "R10"):
        k = int(metric[1:])
        return 100.0 * cs.mean(weights, total, metric, cs.values <= k)
    if metric == "MdR":
        return cs.median(counts)
    if metric == "MnR":
        return cs.mean(weights, total)
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def _resampled_stats(
    arrays: list[np.ndarray],
    metrics: tuple[str, ...],
    n_boot: int,
    seed: int,
    clusters: np.ndarray | None = None,
) -> list[dict[str, np.ndarray]]:
    """Bootstrap ``metrics`` of each array using the *same* resampled query indices (or clusters).

    ``clusters``: labels ``0 .. C-1`` from :func:`_check_clusters` (``None``: resample queries).  At most
    about ``_BOOT_CHUNK_ELEMS`` resampled values are held at once either way.
    """
    n = arrays[0].size
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_ELEMS // n)
    out = [{m: np.empty(n_boot) for m in metrics} for _ in arrays]
    if clusters is None:
        for b0 in range(0, n_boot, chunk):
            b1 = min(n_boot, b0 + chunk)
            idx = rng.integers(0, n, size=(b1 - b0, n))
            for arr, res in zip(arrays, out):
                sample = arr[idx]
                for m in metrics:
                    res[m][b0:b1] = _stat(m, sample)
        return out
    num_clusters = int(clusters.max()) + 1
    size = np.bincount(clusters, minlength=num_clusters).astype(np.float64)
    cstats = [_ClusterStats(arr, clusters, num_clusters) for arr in arrays]
    for b0 in range(0, n_boot, chunk):
        b1 = min(n_boot, b0 + chunk)
        draws = _cluster_draws(rng, num_clusters, b1 - b0, size)
        for cs, res in zip(cstats, out):
            for m in metrics:
                res[m][b0:b1] = _cluster_stat(m, cs, draws)
    return out


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def bootstrap_ci(
    ranks: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95, *, clusters: Any = None
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CI ``{metric: (lo, hi)}`` for R1, R5, R10, MdR, MnR.

    Resampled unit: the *query* (``clusters=None``), or the *cluster* when ``clusters`` gives one integer
    label per query (e.g. the gold video of each caption): each replicate then draws as many clusters as
    there are, with replacement, and takes all the queries of each drawn cluster (module docstring, which
    also says why captions of one video must be resampled together).  With one query per cluster the result
    is bit-identical to ``clusters=None``.
    """
    r = _check_ranks(ranks)
    _check_n_boot(n_boot)
    _check_level(level)
    labels = _check_clusters(clusters, r.size)
    (stats,) = _resampled_stats([r], METRICS, int(n_boot), seed, labels)
    return {m: _percentile_ci(stats[m], level) for m in METRICS}


def paired_bootstrap(
    ranks_a: Any,
    ranks_b: Any,
    metric: str = "R1",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    clusters: Any = None,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` over the same queries.

    Both rank arrays must describe the same queries in the same order.  Each
    bootstrap replicate resamples query indices once and applies them to both
    methods; with ``clusters`` (one integer label per query, e.g. the gold
    video of each caption) it resamples *clusters* instead, taking all the
    queries of each drawn cluster for both methods (see :func:`bootstrap_ci`).
    Returns ``delta`` (a - b on the full set; for MdR/MnR negative
    means *a* is better), ``ci`` (percentile CI of the delta at ``level``),
    ``p_value``, ``a``/``b`` (the metric for each method), ``metric``, ``n``
    (queries) and ``n_boot``.

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
    labels = _check_clusters(clusters, a.size)
    va, vb = float(_stat(metric, a)), float(_stat(metric, b))
    delta = va - vb
    sa, sb = _resampled_stats([a, b], (metric,), int(n_boot), seed, labels)
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


def _default_clusters(clusters: Any, text_to_video: Any, direction: str) -> Any:
    """``clusters="auto"``: the gold video of each caption for t2v (singletons reduce to plain resampling
    in :func:`_check_clusters`), none for v2t (its queries are the videos)."""
    if isinstance(clusters, str):
        if clusters != "auto":
            raise ValueError(f"clusters must be 'auto', None or one label per query, got {clusters!r}")
        return text_to_video if direction == "t2v" else None
    return clusters


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
    *,
    clusters: Any = "auto",
    tie_tolerance: float | None = None,
) -> dict[str, Any]:
    """:func:`paired_bootstrap` of two methods' similarity matrices (same shape and captions).

    Resampled unit: for ``direction="t2v"`` and ``clusters="auto"`` (the default) the *video*: each
    replicate draws videos with replacement and takes all their query captions, for both methods (when
    every video has one query caption this is the same as resampling captions, bit for bit); for ``"v2t"``
    the query videos one by one.  ``clusters=None`` resamples queries one by one; an array gives one label
    per query.  ``tie_tolerance``: see :func:`rank_of_gold`.
    """
    shape_a = tuple(_check_sim(sim_a, "sim_a").shape)
    shape_b = tuple(_check_sim(sim_b, "sim_b").shape)
    if shape_a != shape_b:
        raise ValueError(f"sim_a and sim_b must have the same shape, got {shape_a} and {shape_b}")
    ra = _ranks(sim_a, text_to_video, direction, convention, tie_tolerance)
    rb = _ranks(sim_b, text_to_video, direction, convention, tie_tolerance)
    clusters = _default_clusters(clusters, text_to_video, direction)
    return paired_bootstrap(ra, rb, metric=metric, n_boot=n_boot, seed=seed, level=level, clusters=clusters)


def with_ci(
    sim: Any,
    text_to_video: Any,
    direction: str = "t2v",
    convention: str = "best_caption",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    clusters: Any = "auto",
    tie_tolerance: float | None = None,
) -> dict[str, float]:
    """Metrics plus ``<metric>_lo`` / ``<metric>_hi`` bootstrap bounds for each metric.

    Resampled unit: for ``direction="t2v"`` and ``clusters="auto"`` (the default) the *video*: each
    replicate draws videos with replacement and takes all their query captions (when every video has one
    query caption this is the same as resampling captions, bit for bit); for ``"v2t"`` the query videos one
    by one.  ``clusters=None`` resamples queries one by one; an array gives one label per query.
    ``tie_tolerance``: see :func:`rank_of_gold`.
    """
    ranks = _ranks(sim, text_to_video, direction, convention, tie_tolerance)
    clusters = _default_clusters(clusters, text_to_video, direction)
    out = summarize(ranks)
    for m, (lo, hi) in bootstrap_ci(ranks, n_boot=n_boot, seed=seed, level=level, clusters=clusters).items():
        out[f"{m}_lo"] = lo
        out[f"{m}_hi"] = hi
    return out


# --------------------------------------------------------------------------- #
# twin accuracy (synthetic benchmark)
# --------------------------------------------------------------------------- #
def twin_accuracy(
    sim: Any, query_video: Any, twin_of: Any, *, tie_tolerance: float | None = None
) -> tuple[float, np.ndarray]:
    """How often a query prefers its gold video over the gold video's near-twin.

    ``sim`` is ``[num_queries, num_videos]``, ``query_video[i]`` the gold video of
    query ``i`` and ``twin_of[i]`` the column of that video's twin (-1: none).
    Each query with a twin scores 1 if the gold beats the twin beyond the tie
    tolerance (``sim[i, twin] < g - delta``), 0.5 on a tie (within ``delta``
    of ``g``) and 0 otherwise (chance = 0.5), with ``g = sim[i, gold]`` and
    ``delta = tie_tolerance * max(1, |g|)``: the same rule, with the same
    :data:`TIE_TOLERANCE` by default, as the ranks (module docstring), so the
    outcome is exactly what the twin adds to the gold's rank (0, 0.5 or 1).
    Returns ``(mean, per_query)`` where ``per_query`` holds the scores of the
    twin queries only, in query order (feed it to :func:`bootstrap_mean_ci`).
    Raises ``ValueError`` if no query has a twin, a twin equals its gold, or a
    compared score is NaN.
    """
    sim = _check_sim(sim)
    n, m = sim.shape
    gold = _check_index(query_video, "query_video", n, m, "videos (columns)")
    twin = _check_index(twin_of, "twin_of", n, m, "videos (columns)", allow_minus_one=True)
    tol = _tolerance(tie_tolerance)
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
    lo, hi = _tie_bounds(g, tol)
    scores = np.where(t < lo, 1.0, np.where(t > hi, 0.0, 0.5))
    return float(scores.mean()), scores


def bootstrap_mean_ci(
    values: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95, *, clusters: Any = None
) -> tuple[float, float]:
    """Percentile bootstrap CI ``(lo, hi)`` of the mean of ``values`` (deterministic in ``seed``).

    Resampled unit: the value (``clusters=None``), or the cluster when ``clusters`` gives one integer label
    per value (e.g. the gold video of each twin query): each replicate draws clusters with replacement and
    takes all their values, as in :func:`bootstrap_ci` (bit-identical to ``None`` with one value per cluster).
    """
    if _is_torch(values):
        values = values.detach().cpu().numpy()
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite (no NaN/inf)")
    _check_n_boot(n_boot)
    _check_level(level)
    labels = _check_clusters(clusters, v.size)
    rng = np.random.default_rng(seed)
    n = v.size
    chunk = max(1, _BOOT_CHUNK_ELEMS // n)
    means = np.empty(int(n_boot))
    if labels is None:
        for b0 in range(0, int(n_boot), chunk):
            b1 = min(int(n_boot), b0 + chunk)
            means[b0:b1] = v[rng.integers(0, n, size=(b1 - b0, n))].mean(axis=1)
        return _percentile_ci(means, level)
    num_clusters = int(labels.max()) + 1
    size = np.bincount(labels, minlength=num_clusters).astype(np.float64)
    cs = _ClusterStats(v, labels, num_clusters)
    for b0 in range(0, int(n_boot), chunk):
        b1 = min(int(n_boot), b0 + chunk)
        _, weights, total = _cluster_draws(rng, num_clusters, b1 - b0, size)
        means[b0:b1] = cs.mean(weights, total)
    return _percentile_ci(means, level)
