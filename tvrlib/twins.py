"""Twin accuracy: does a head tell a video from its twin (the synthetic benchmark's per-factor test)?

The synthetic test split holds **twins**: pairs of videos that differ in exactly one factor of
:data:`FACTORS` (event ``order``, motion ``direction``, a small object's colour: ``detail``). For a query
whose gold video has a twin, score 1 if the head ranks the gold above the twin, 0.5 on a tie (scores
within :data:`TIE_TOLERANCE` = 1e-6), 0 otherwise; chance is 50 %. Values are reported in percent.

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

TIE_TOLERANCE = 1e-6  # scores closer than this are a tie: float32 rounding, not a preference


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


def twin_outcomes(pair_scores: np.ndarray, tie_tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Per twin query: 1 if the gold (column 0) beats the twin (column 1), 0.5 on a tie, else 0."""
    pair_scores = np.array(pair_scores, dtype=np.float64)
    near = np.abs(pair_scores[:, 0] - pair_scores[:, 1]) <= tie_tolerance
    pair_scores[near, 1] = pair_scores[near, 0]
    n = len(pair_scores)
    return M.twin_accuracy(pair_scores, np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64))[1]


def twin_table(
    pair_scores: np.ndarray,
    factor_of: list[str],
    n_boot: int = 1000,
    seed: int = 0,
    tie_tolerance: float = TIE_TOLERANCE,
) -> pd.DataFrame:
    """Per-factor twin accuracy (percent) with a bootstrap 95 % CI from ``[n, 2]`` (gold, twin) scores.

    ``factor_of[i]`` is query ``i``'s factor. Rows: each factor present, then ``all``. Two scores within
    ``tie_tolerance`` count as a tie (0.5): an order-blind head that sums the same frames in another
    order differs only by float32 rounding (~1e-7) and must not "win" or "lose" by it.
    """
    per_query = twin_outcomes(pair_scores, tie_tolerance)
    factor_of = np.asarray(factor_of)
    rows = []
    for f in [*[f for f in FACTORS if f in set(factor_of)], "all"]:
        vals = per_query if f == "all" else per_query[factor_of == f]
        lo, hi = M.bootstrap_mean_ci(vals, n_boot=n_boot, seed=seed)
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
    (``"all"``: every twin query). ``a``, ``b``: :class:`tvrlib.evaluation.Evaluation` (their ``twin_scores``
    and ``twin_factors``). Returns ``{"a", "b", "delta", "ci", "n"}``."""
    if a.twin_scores is None or b.twin_scores is None:
        raise ValueError("both evaluations need twin scores (evaluate on a split with twins)")
    sel = np.ones(len(a.twin_factors), dtype=bool) if factor == "all" else a.twin_factors == factor
    if not np.array_equal(a.twin_factors, b.twin_factors) or not sel.any():
        raise ValueError(f"the two evaluations do not share twin queries of factor {factor!r}")
    oa, ob = twin_outcomes(a.twin_scores)[sel], twin_outcomes(b.twin_scores)[sel]
    lo, hi = M.bootstrap_mean_ci(oa - ob, n_boot=n_boot, seed=seed, level=level)
    return {
        "a": 100 * oa.mean(),
        "b": 100 * ob.mean(),
        "delta": 100 * (oa.mean() - ob.mean()),
        "ci": (100 * lo, 100 * hi),
        "n": int(sel.sum()),
    }
