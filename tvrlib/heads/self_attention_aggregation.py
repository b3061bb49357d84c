"""Self-attention aggregation: frame weights from the video alone (the "Self-Att" row of CrossAttnGL's Table 2).

Paper: CrossAttnGL (docs/papers.md; `seeds/000_6b49f8a173a2ab00.txt`), section 5 ablation (Table 2): "the
Self-attention Aggregation method computes aggregation weights without utilizing textual
semantic information and aggregates the frame features". The paper gives no equations
for it; our reading keeps everything of the cross-modal head
(:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`, eqs. 4.6-4.9) and
replaces the caption's query ``W_Q E_t`` by one learned query vector ``q``::

    w_f = softmax_f( q . (W_K E_f) / sqrt(d_a) ),     E_V = sum_f w_f E_f / |E_f|

``q`` starts at zero, so the head starts as mean pooling. Because the weights do not
depend on the caption, this is a dual encoder: each video is embedded once and a
gallery is searched with one matrix product.

Shapes: ``video.frames [V, F, D]``, ``video.mask bool [V, F]`` -> ``embed_video [V, D]``,
:meth:`video_frame_weights` -> ``[V, F]`` (the same for every caption; :meth:`frame_weights`
repeats them for every caption, ``[T, V, F]``, like every head with ``has_frame_weights``);
``score(text [T, D], video) -> [T, V]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import DualEncoderHead, TextInput, VideoInput
from .mean_pooling import masked_frames

__all__ = ["SelfAttentionAggregation"]


@HEADS.register("self_attention_aggregation")
class SelfAttentionAggregation(DualEncoderHead):
    """Text-agnostic attention pooling with one learned query (CrossAttnGL Table 2, "Self-Att")."""

    has_frame_weights = True

    def __init__(self, dim: int = 512, attn_dim: int | None = None):
        super().__init__()
        self.dim, self.attn_dim = dim, attn_dim or dim
        self.query = nn.Parameter(torch.zeros(self.attn_dim))  # q: one query for every video
        self.key = nn.Linear(dim, self.attn_dim, bias=False)  # W_K, as eq. 4.6
        if self.attn_dim == dim:
            nn.init.eye_(self.key.weight)
        else:
            nn.init.xavier_uniform_(self.key.weight)

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        """L2-normalised frame embeddings ``[V, F, D]``, padded frames set to zero."""
        return masked_frames(F.normalize(masked_frames(video.frames, video.mask), dim=-1), video.mask)

    def video_frame_weights(self, video: VideoInput) -> torch.Tensor:
        """``[V, F]`` softmax weights over each video's valid frames (no caption involved)."""
        k = self.key(math.sqrt(self.dim) * self.frame_vectors(video))  # W_K E_f, as eq. 4.6
        return masked_softmax(k @ self.query / math.sqrt(self.attn_dim), video.mask)  # eq. 4.8 with q for Q_t

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V, F]``: :meth:`video_frame_weights` repeated for every caption (a view, no copy)."""
        w = self.video_frame_weights(video)
        return w.unsqueeze(0).expand(len(text), *w.shape)

    def embed_video(self, video: VideoInput) -> torch.Tensor:
        w = self.video_frame_weights(video)
        return torch.einsum("vf,vfd->vd", w, self.frame_vectors(video))  # eq. 4.9
