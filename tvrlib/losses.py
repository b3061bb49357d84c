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
* :func:`hardest_negative_hinge` -- VSE++ (Faghri et al. 2018) max-violation triplet loss, the
  ranking loss of CrossAttnGL (docs/papers.md), eqs. 4.16-4.20 with the sign of 4.20 corrected, margin ``alpha``::

      V' = argmax_{r != v} s(r, T),   T' = argmax_{w != T} s(V, w)             (4.16), (4.17)
      L  = sum_i [alpha - s_ii + s_i,V'(i)]_+  +  sum_j [alpha - s_jj + s_T'(j),j]_+   (4.20)

  summed over the batch as in VSE++/SGRAF (``reduction="sum"``), on raw cosines (no temperature).

Shapes: ``scores [B, B]``, ``video_ids [B]`` (any integer labels) -> scalar.
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


def symmetric_infonce(logits: torch.Tensor, video_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE on ``logits [B, B]`` (already multiplied by the temperature); same-video
    off-diagonal entries are removed from both softmaxes."""
    B = _check_square(logits)
    same = same_video_mask(video_ids, B, logits.device)
    masked = logits.masked_fill(same, float("-inf"))
    target = torch.arange(B, device=logits.device)
    return 0.5 * (F.cross_entropy(masked, target) + F.cross_entropy(masked.T, target))


def hardest_negative_hinge(
    scores: torch.Tensor, video_ids: torch.Tensor | None = None, margin: float = 0.2, reduction: str = "sum"
) -> torch.Tensor:
    """VSE++ max-violation hinge on ``scores [B, B]`` (cosines); same-video entries are not negatives.

    ``reduction``: ``"sum"`` (VSE++) or ``"mean"`` (divided by ``B``).
    """
    B = _check_square(scores)
    not_negative = same_video_mask(video_ids, B, scores.device) | torch.eye(B, dtype=torch.bool, device=scores.device)
    pos = scores.diagonal()
    neg = scores.masked_fill(not_negative, float("-inf"))
    hardest_video = neg.max(dim=1).values  # per caption, eq. 4.16
    hardest_text = neg.max(dim=0).values  # per video, eq. 4.17
    # a row without any negative (hardest = -inf) contributes 0 after the clamp
    cost_t2v = (margin - pos + hardest_video).clamp(min=0)
    cost_v2t = (margin - pos + hardest_text).clamp(min=0)
    total = cost_t2v + cost_v2t
    if reduction == "sum":
        return total.sum()
    if reduction == "mean":
        return total.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def clamp_logit_scale_(logit_scale: torch.nn.Parameter, max_value: float = MAX_LOGIT_SCALE) -> None:
    """Clamp CLIP's log-temperature in place to ``[0, ln 100]`` (done after every optimiser step)."""
    with torch.no_grad():
        logit_scale.clamp_(0.0, max_value)
