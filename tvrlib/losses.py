"""Training losses for text-video retrieval, on a batch score matrix ``[B, B]`` (row = caption, column = video).

Row ``i`` and column ``i`` come from the same training pair, so the diagonal holds the positives.
A batch built from captions can hold **two captions of the same video**; their cross entries
``(i, j)`` are then also correct matches. Both losses take the batch's ``video_ids [B]`` and never
use such an entry as a negative (``same_video_mask``): it is dropped from the softmax (InfoNCE)
or from the hinge (VSE++), the way ALBEF masks by image id (method_cards.md card 5b).

* :func:`symmetric_infonce` -- CLIP's symmetric cross-entropy (CLIP4Clip's ``CrossEn`` on ``S``
  and ``S^T``, method_cards.md card 1)::

      L = 1/2 [ mean_i -log softmax_j(l_ij)[i]  +  mean_j -log softmax_i(l_ij)[j] ],
      l_ij = exp(tau) * s_ij   with CLIP's learnable log-temperature tau clamped to [0, ln 100]

  With distinct video ids it equals :class:`open_clip.loss.ClipLoss` (checked in the tests).

  **Extra video-to-text negatives** (``extra_v2t [B, K]``, our own addition, measured in
  ``benchmarks/text_regime.py``, not a paper's method): column ``j``'s video also competes against ``K`` captions
  of its own, e.g. counterfactual captions of that video (direction flipped, two events swapped)::

      L_v2t(j) = -log  exp(l_jj) / ( sum_i exp(l_ij) + sum_k exp(e_jk) )

  where ``e_jk`` are their logits with the video (``extra_mask [B, K]``: False = padding, left out). The
  text-to-video side keeps the in-batch negatives only.
* :func:`hardest_negative_hinge` -- VSE++ (Faghri et al. 2018) max-violation triplet loss, the
  ranking loss of CrossAttnGL (docs/papers.md), eqs. 4.16-4.20 with the sign of 4.20 corrected, margin ``alpha``::

      V' = argmax_{r != v} s(r, T),   T' = argmax_{w != T} s(V, w)             (4.16), (4.17)
      L  = sum_i [alpha - s_ii + s_i,V'(i)]_+  +  sum_j [alpha - s_jj + s_T'(j),j]_+   (4.20)

  summed over the batch as in VSE++/SGRAF (``reduction="sum"``), on raw cosines (no temperature).
  With ``extra_v2t [B, K]`` (raw scores) the hardest caption of video ``j`` (4.17) is also sought among them.

* :func:`global_local_ranking_loss` -- CrossAttnGL's training objective (eq. 4.18): ``w_loc * L_loc + w_glo * L_glo``,
  each term the hinge above (eqs. 4.16, 4.17, 4.19/4.20 in the corrected VSE++ form) on one of the two score
  matrices of :class:`tvrlib.heads.global_local.GlobalLocalSimilarity` (``head.score_parts``): the score read out
  from the local (word) similarity vectors and the one read out from the global vector.
* :func:`channel_decorrelation` -- DRL's channel decorrelation regulariser (CDCR, method_cards.md card 4) on paired
  feature sets; a function only, not used by :func:`tvrlib.training.fit`.

Shapes: ``scores [B, B]``, ``video_ids [B]`` (any integer labels), optionally ``extra_v2t [B, K]`` with
``extra_mask bool [B, K]`` -> scalar.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP / CLIP4Clip clamp the log-temperature to at most ln(100)


def same_video_mask(video_ids: torch.Tensor | None, size: int, device=None) -> torch.Tensor:
    """``bool [B, B]``: True at ``(i, j)``, ``i != j``, where rows ``i`` and ``j`` show the same video."""
    if video_ids is None:
        return torch.zeros(size, size, dtype=torch.bool, device=device)
    ids = torch.as_tensor(video_ids, device=device)
    if ids.shape != (size,):
        raise ValueError(f"video_ids must have one id per batch row ({size}), got shape {tuple(ids.shape)}")
    same = ids[:, None] == ids[None, :]
    return same & ~torch.eye(size, dtype=torch.bool, device=device)


def _check_square(scores: torch.Tensor) -> int:
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(
            f"scores must be a square [B, B] batch matrix (caption i <-> video i), got {tuple(scores.shape)}"
        )
    return scores.shape[0]


def _extra(extra: torch.Tensor | None, mask: torch.Tensor | None, B: int) -> torch.Tensor | None:
    """``extra [B, K]`` with padded entries (``mask`` False) set to ``-inf``; None when there are none."""
    if extra is None:
        return None
    if extra.ndim == 2 and extra.shape[1] == 0:
        return None
    if extra.ndim != 2 or extra.shape[0] != B:
        raise ValueError(f"extra_v2t must be [B, K] with B = {B} (one row per batch video), got {tuple(extra.shape)}")
    if mask is None:
        return extra
    if mask.shape != extra.shape:
        raise ValueError(f"extra_mask {tuple(mask.shape)} must match extra_v2t {tuple(extra.shape)}")
    return extra.masked_fill(~mask.to(torch.bool), float("-inf"))


def symmetric_infonce(
    logits: torch.Tensor,
    video_ids: torch.Tensor | None = None,
    extra_v2t: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
    extra_t2v: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE on ``logits [B, B]`` (already multiplied by the temperature); same-video
    off-diagonal entries are removed from both softmaxes. ``extra_v2t [B, K]``: logits of extra negative captions
    of each column's video, added to that video's v2t softmax only (``extra_mask [B, K]``: False = padding).
    ``extra_t2v [B, K]``: logits of extra negative videos of each row's caption (e.g. its own video with the
    frames reversed), added to that caption's t2v softmax only."""
    B = _check_square(logits)
    same = same_video_mask(video_ids, B, logits.device)
    masked = logits.masked_fill(same, float("-inf"))
    target = torch.arange(B, device=logits.device)
    v2t = masked.T
    extra = _extra(extra_v2t, extra_mask, B)
    if extra is not None:
        v2t = torch.cat([v2t, extra.to(v2t.dtype)], dim=1)
    t2v = masked
    extra = _extra(extra_t2v, None, B)
    if extra is not None:
        t2v = torch.cat([t2v, extra.to(t2v.dtype)], dim=1)
    return 0.5 * (F.cross_entropy(t2v, target) + F.cross_entropy(v2t, target))


def edit_contrast(positive: torch.Tensor, extra: torch.Tensor, extra_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The contrast of each positive pair with its own extra negatives only (our own addition, measured in
    ``benchmarks/text_regime.py``): ``positive [B]`` logits of the true pairs, ``extra [B, K]`` logits of each row's
    extra captions (``extra_mask`` False = padding)::

        L = mean over rows with >= 1 extra of  -log  exp(l_jj) / ( exp(l_jj) + sum_k exp(e_jk) )

    Unlike ``extra_v2t`` inside :func:`symmetric_infonce`, the edits are not diluted among the batch's other
    captions: a true caption and its minimal edit compete alone. Rows without an extra are left out (0 if none)."""
    extra = _extra(extra, extra_mask, positive.shape[0])
    if extra is None:
        return positive.sum() * 0.0
    has = torch.isfinite(extra).any(dim=1)
    if not bool(has.any()):
        return positive.sum() * 0.0
    both = torch.cat([positive[:, None], extra.to(positive.dtype)], dim=1)[has]
    return -(both[:, 0] - torch.logsumexp(both, dim=1)).mean()


def hardest_negative_hinge(
    scores: torch.Tensor,
    video_ids: torch.Tensor | None = None,
    margin: float = 0.2,
    reduction: str = "sum",
    extra_v2t: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """VSE++ max-violation hinge on ``scores [B, B]`` (cosines); same-video entries are not negatives.

    ``reduction``: ``"sum"`` (VSE++) or ``"mean"`` (divided by ``B``). ``extra_v2t [B, K]``: scores of extra
    negative captions of each column's video, candidates for its hardest caption (``extra_mask``: False = padding).
    """
    B = _check_square(scores)
    not_negative = same_video_mask(video_ids, B, scores.device) | torch.eye(B, dtype=torch.bool, device=scores.device)
    pos = scores.diagonal()
    neg = scores.masked_fill(not_negative, float("-inf"))
    hardest_video = neg.max(dim=1).values  # per caption, eq. 4.16
    hardest_text = neg.max(dim=0).values  # per video, eq. 4.17
    extra = _extra(extra_v2t, extra_mask, B)
    if extra is not None:
        hardest_text = torch.maximum(hardest_text, extra.to(scores.dtype).max(dim=1).values)
    # a row without any negative (hardest = -inf) contributes 0 after the clamp
    cost_t2v = (margin - pos + hardest_video).clamp(min=0)
    cost_v2t = (margin - pos + hardest_text).clamp(min=0)
    total = cost_t2v + cost_v2t
    if reduction == "sum":
        return total.sum()
    if reduction == "mean":
        return total.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def global_local_ranking_loss(
    local_scores: torch.Tensor | None,
    global_scores: torch.Tensor | None,
    video_ids: torch.Tensor | None = None,
    margin: float = 0.2,
    local_weight: float = 1.0,
    global_weight: float = 1.0,
    reduction: str = "sum",
) -> torch.Tensor:
    """CrossAttnGL's loss (docs/papers.md, §4.4): ``w_loc * L_loc + w_glo * L_glo`` (eq. 4.18).

    ``local_scores [B, B]`` and ``global_scores [B, B]`` are the batch's two score matrices (row = caption, column =
    video, positives on the diagonal), e.g. ``GlobalLocalSimilarity.score_parts(text, video)``. Each term is
    :func:`hardest_negative_hinge` -- the VSE++ form ``[margin - s(t, v) + s(t, v')]_+ + [margin - s(t, v) +
    s(t', v)]_+`` with the hardest in-batch negatives ``v'``, ``t'`` (eqs. 4.16, 4.17), summed over the batch --,
    not the printed eqs. 4.19-4.20, whose margin term has the wrong sign (errata in docs/papers.md).
    Our reading of eq. 4.19 ("summed over the local pairs"): the local term ranks the score read out from all the
    words' local similarity vectors, one hinge per (caption, video) pair like the global term.
    Either matrix may be None (a head variant without that branch): its term is left out. ``video_ids [B]``:
    same-video entries are not negatives. ``reduction``: ``"sum"`` (VSE++) or ``"mean"`` (each term divided by B).
    """
    if local_scores is None and global_scores is None:
        raise ValueError("global_local_ranking_loss needs at least one of local_scores and global_scores")
    total = None
    for scores, weight in ((local_scores, local_weight), (global_scores, global_weight)):
        if scores is None:
            continue
        term = weight * hardest_negative_hinge(scores, video_ids, margin=margin, reduction=reduction)  # eqs. 4.19-4.20
        total = term if total is None else total + term  # eq. 4.18
    return total


def channel_decorrelation(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor | None = None,
    diagonal_weight: float = 1.0,
    off_diagonal_weight: float = 0.06,
    eps: float = 1e-6,
) -> torch.Tensor:
    """DRL's channel decorrelation regulariser (CDCR; docs/papers.md, method_cards.md card 4) on ``N`` paired rows.

    ``x [N, D]`` and ``y [N, D]``: row ``n`` of ``x`` is paired with row ``n`` of ``y`` (in DRL: a caption token
    and its best-matching frame of the paired video, and the other way round). Each channel is z-scored over the
    ``N`` rows (``z = (x - mean) / std``), the cross-correlation is ``C = sum_n w_n z_x[n] z_y[n]^T / sum_n w_n``
    (``D x D``; ``weights [N]`` default uniform, DRL uses the WTI token weights) and ::

        loss = diagonal_weight * sum_i (C_ii - 1)^2  +  off_diagonal_weight * sum_{i != j} C_ij^2

    It is 0 when every channel of ``x`` matches the same channel of ``y`` perfectly and is uncorrelated with every
    other channel (``C = I``). Defaults: DRL's ``main.py`` (1.0, 0.06); its released scripts use 0.14 and 0.0, i.e.
    no off-diagonal (decorrelation) term at all. Not wired into :func:`tvrlib.training.fit` (off by default).
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must be paired [N, D] feature sets, got {tuple(x.shape)} and {tuple(y.shape)}")
    zx = (x - x.mean(0)) / (x.std(0, unbiased=False) + eps)
    zy = (y - y.mean(0)) / (y.std(0, unbiased=False) + eps)
    w = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) if weights is None else weights.to(x.dtype)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have one value per row ({x.shape[0]}), got shape {tuple(w.shape)}")
    c = torch.einsum("n,ni,nj->ij", w, zx, zy) / w.sum().clamp_min(eps)
    diag = c.diagonal()
    off = c - torch.diag_embed(diag)
    return diagonal_weight * ((diag - 1) ** 2).sum() + off_diagonal_weight * (off**2).sum()


def clamp_logit_scale_(logit_scale: torch.nn.Parameter, max_value: float = MAX_LOGIT_SCALE) -> None:
    """Clamp CLIP's log-temperature in place to ``[0, ln 100]`` (done after every optimiser step)."""
    with torch.no_grad():
        logit_scale.clamp_(0.0, max_value)
