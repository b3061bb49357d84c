"""Twin accuracy: does a head tell a video from its twin (the synthetic benchmark's per-factor test)?

The synthetic test split holds **twins**: pairs of videos that differ in exactly one factor of
:data:`FACTORS` (event ``order``, motion ``direction``, a small object's colour: ``detail``). For a query
whose gold video has a twin, score 1 if the head ranks the gold above the twin, 0.5 on a tie, 0 otherwise;
chance is 50 %. Values are reported in percent. A tie is what the ranks call a tie: the twin's score within
``tvrlib.metrics.TIE_TOLERANCE * max(1, |gold score|)`` of the gold's (the one tolerance of the suite, defined and
explained in :mod:`tvrlib.metrics`), so twin accuracy and R@K give an order-blind head the same credit for a tie
whatever order it sums its frames in.

* :func:`twin_pair_scores` -- ``[n, 2]`` (gold, twin) scores of each query, two scores per query
  (cheap even for a cross-encoder, whose full ``[T, V]`` grid is not);
* :func:`twin_outcomes` / :func:`twin_table` -- per-query outcomes and per-factor accuracy with CIs;
* :func:`twin_difference` -- paired bootstrap of two heads' twin accuracy on the same queries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .heads.base import RetrievalHead, TextInput, VideoInput
from .synthetic.benchmark import FACTORS  # the benchmark generates the twins, so it names their factors

# The suite's one tie tolerance, re-exported for convenience; the functions below read
# ``metrics.TIE_TOLERANCE`` at call time (``tie_tolerance=None``), so ranks and twin accuracy never disagree.
TIE_TOLERANCE = M.TIE_TOLERANCE


def twin_pair_scores(
    head: RetrievalHead, text: TextInput, video: VideoInput, gold, twin, chunk: int = 512
) -> np.ndarray:
    """``[n, 2]`` scores of each query ``text[i]`` against its gold video and its twin, without the full
    ``[T, V]`` grid (``2 n`` aligned pairs through ``head.score_pairs``: cheap even for a cross-encoder)."""
    gold, twin = torch.as_tensor(np.asarray(gold)), torch.as_tensor(np.asarray(twin))
    out = np.empty((len(text), 2))
    head.eval()
    with torch.no_grad():
        for i in range(0, len(text), chunk):
            t = text.index(slice(i, i + chunk))
            for col, which in enumerate((gold, twin)):
                s = head.score_pairs(t, video.index(which[i : i + chunk]))
                out[i : i + len(t), col] = s.double().cpu().numpy()
    return out


def twin_outcomes(pair_scores: np.ndarray, tie_tolerance: float | None = None) -> np.ndarray:
    """Per twin query: 1 if the gold (column 0) beats the twin (column 1), 0.5 on a tie, else 0.

    The rule of :func:`tvrlib.metrics.twin_accuracy` (a tie: within ``tie_tolerance * max(1, |gold|)``;
    ``None``: :data:`tvrlib.metrics.TIE_TOLERANCE`; ``0``: exact equality only)."""
    pair_scores = np.asarray(pair_scores, dtype=np.float64)
    if pair_scores.ndim != 2 or pair_scores.shape[1] != 2:
        raise ValueError(f"pair_scores must be [n, 2] (gold, twin) scores, got shape {pair_scores.shape}")
    n = len(pair_scores)
    gold, twin = np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    return M.twin_accuracy(pair_scores, gold, twin, tie_tolerance=tie_tolerance)[1]


def twin_table(
    pair_scores: np.ndarray,
    factor_of: list[str],
    n_boot: int = 1000,
    seed: int = 0,
    tie_tolerance: float | None = None,
    clusters=None,
) -> pd.DataFrame:
    """Per-factor twin accuracy (percent) with a bootstrap 95 % CI from ``[n, 2]`` (gold, twin) scores.

    ``factor_of[i]`` is query ``i``'s factor. Rows: each factor present, then ``all``. Two scores within
    the tie tolerance count as a tie (0.5; :func:`twin_outcomes`): an order-blind head that sums the same
    frames in another order differs only by float32 rounding (~1e-7) and must not "win" or "lose" by it.
    Resampled unit of the CI: the twin query, or, with ``clusters`` (one label per query, e.g. its gold
    video; :func:`tvrlib.evaluation.evaluate` passes it when a video has several twin queries), the cluster.
    """
    per_query = twin_outcomes(pair_scores, tie_tolerance)
    factor_of = np.asarray(factor_of)
    clusters = None if clusters is None else np.asarray(clusters)
    rows = []
    for f in [*[f for f in FACTORS if f in set(factor_of)], "all"]:
        sel = np.ones(len(factor_of), dtype=bool) if f == "all" else factor_of == f
        vals = per_query[sel]
        cl = None if clusters is None else clusters[sel]
        lo, hi = M.bootstrap_mean_ci(vals, n_boot=n_boot, seed=seed, clusters=cl)
        rows.append(
            {
                "factor": f,
                "accuracy": 100 * vals.mean(),
                "ci_lo": 100 * lo,
                "ci_hi": 100 * hi,
                "ties": int(np.sum(vals == 0.5)),
                "n": int(vals.size),
            }
        )
    return pd.DataFrame(rows)


def twin_difference(a, b, factor: str = "all", n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired bootstrap of twin accuracy (percent) ``a - b`` over the same twin queries of one ``factor``
    (``"all"``: every twin query). ``a``, ``b``: :class:`tvrlib.evaluation.Evaluation` (their ``twin_scores``,
    ``twin_factors`` and ``twin_videos``). Resampled unit: the twin query; the gold video (all its twin
    queries together) when some video has more than one twin query (bit-identical otherwise).
    Returns ``{"a", "b", "delta", "ci", "n"}``."""
    if a.twin_scores is None or b.twin_scores is None:
        raise ValueError("both evaluations need twin scores (evaluate on a split with twins)")
    sel = np.ones(len(a.twin_factors), dtype=bool) if factor == "all" else a.twin_factors == factor
    if not np.array_equal(a.twin_factors, b.twin_factors) or not sel.any():
        raise ValueError(f"the two evaluations do not share twin queries of factor {factor!r}")
    videos = getattr(a, "twin_videos", None)
    clusters = None if videos is None else np.asarray(videos)[sel]
    oa, ob = twin_outcomes(a.twin_scores)[sel], twin_outcomes(b.twin_scores)[sel]
    lo, hi = M.bootstrap_mean_ci(oa - ob, n_boot=n_boot, seed=seed, level=level, clusters=clusters)
    return {
        "a": 100 * oa.mean(),
        "b": 100 * ob.mean(),
        "delta": 100 * (oa.mean() - ob.mean()),
        "ci": (100 * lo, 100 * hi),
        "n": int(sel.sum()),
    }
