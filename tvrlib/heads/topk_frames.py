"""Top-K frame selection: the caption keeps its K most relevant frames and attends over them.

Paper: TopKTemporal (docs/papers.md; `seeds/001_9901961dbd826a92.txt`, Dong et al., J. Northeastern
Univ. 2026). Our copy holds **only tables**: Table 4 sweeps the number of selected frames
``K = 1, 2, 4, 6, 8, 10, 12`` (R@1 peaks at K = 4 and falls towards K = 12) and Table 5
compares the model with and without temporal (position) encoding. Everything below is
our reading of the method, built from CrossAttnGL's cross-modal attention (CrossAttnGL eqs. 4.5-4.9),
which it extends:

1. **relevance**: the text-frame logit of the cross-modal attention,
   ``r_{t,v,f} = (W_Q E_t) . (W_K x_f) / sqrt(d_a)`` (eq. 4.8 before the softmax);
2. **selection**: per (caption, video) keep the ``K`` frames with the largest ``r``
   (only valid frames; all of them when the video has ``<= K``);
3. **attention**: softmax of ``r`` over the selected frames, weight 0 elsewhere;
4. **aggregation**: as CrossAttnGL's head does it (random W_Q/W_K/W_V, values ``W_V x_f``, FC layer and
   dropout 0.3 on the pooled vector; eqs. 4.8-4.9 and its Model Settings), then the score ``cos(E_t, E_V)``;
5. **temporal encoding** (``temporal=True``): ``x_f = E_f / |E_f| + P_f`` with a learned
   position embedding ``P_f`` of the frame's index in the video (not its rank among the
   selected frames), initialised to zero, so that keys and pooled vector know *when* a
   frame happened; ``temporal=False`` uses ``x_f = E_f / |E_f|``.

Selection is a hard top-K (no gradient through the choice; gradients flow through the
softmax over the chosen frames). With ``K >= F`` the head is CrossAttnGL's
:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation` applied to L2-normalised frames (plus
the position embedding when ``temporal=True``); it inherits that head's defaults, so a change of reading
there (e.g. ``cross_modal_aggregation-identity``) is one keyword away here too. With ``K = 1`` the video is
its single most relevant frame.

Shapes: ``text.sentence [T, D]``, ``video.frames [V, F, D]``, ``video.mask bool [V, F]``
-> scores ``[T, V]``; :meth:`frame_weights` -> ``[T, V, F]`` (at most K non-zero per pair).
The pooled video is linear in the frames, so evaluation uses the Gram-matrix path.

Named variants (``HEADS.build("topK4", dim=512)``): ``topK{K}`` (with temporal encoding) and
``topK{K}-noTE`` (without) for every K of TopKTemporal's Table 4 (1, 2, 4, 6, 8, 10, 12).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .base import VideoInput
from .cross_modal_aggregation import CrossModalAggregation
from .mean_pooling import masked_frames

__all__ = ["TopKFrames", "top_k_mask", "TABLE4_K"]

#: the numbers of selected frames that TopKTemporal's Table 4 sweeps (each gets a named variant)
TABLE4_K = (1, 2, 4, 6, 8, 10, 12)


def top_k_mask(logits: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` valid frames with the largest logits: ``logits [T, V, F]``, ``mask [V, F]`` -> bool ``[T, V, F]``.

    Ties are broken by frame index (``torch.topk``); videos with fewer than ``k`` valid
    frames keep all of them.
    """
    if k >= logits.shape[-1]:
        return mask.expand_as(logits)
    idx = logits.masked_fill(~mask, float("-inf")).topk(k, dim=-1).indices  # step 2: the k largest eq. 4.8 logits
    chosen = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter_(-1, idx, True)
    return chosen & mask


@HEADS.register("topk_frames")
class TopKFrames(CrossModalAggregation):
    """TopKTemporal (our reading): attend over the caption's ``k`` most relevant frames, optional temporal encoding."""

    def __init__(
        self, dim: int = 512, k: int = 4, temporal: bool = True, max_frames: int = 64, attn_dim: int | None = None
    ):
        super().__init__(dim, attn_dim)
        if k < 1:
            raise ValueError(f"topk_frames needs k >= 1 selected frames, got k={k}")
        self.k, self.temporal, self.max_frames = int(k), bool(temporal), max_frames
        self.position = nn.Embedding(max_frames, dim) if temporal else None
        if self.position is not None:
            nn.init.zeros_(self.position.weight)

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        x = F.normalize(masked_frames(video.frames, video.mask), dim=-1)  # E_f / |E_f|
        if self.position is not None:
            num_frames = x.shape[1]
            if num_frames > self.max_frames:
                raise ValueError(
                    f"topk_frames has position embeddings for {self.max_frames} frames but the videos "
                    f"have {num_frames}; build it with max_frames >= {num_frames}"
                )
            x = x + self.position.weight[:num_frames]  # step 5: x_f = E_f / |E_f| + P_f (temporal encoding)
        return masked_frames(x, video.mask)

    def select_frames(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return top_k_mask(logits, mask, self.k)  # step 2; the softmax over these (step 3) is eq. 4.8's

    def extra_repr(self) -> str:
        return f"k={self.k}, temporal={self.temporal}"


for _k in TABLE4_K:
    HEADS.register_variant(f"topK{_k}", "topk_frames", k=_k, temporal=True)
    HEADS.register_variant(f"topK{_k}-noTE", "topk_frames", k=_k, temporal=False)
del _k
