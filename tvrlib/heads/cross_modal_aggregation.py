"""Cross-modal (text-conditioned) attention aggregation of frames, scored by cosine.

Paper: CrossAttnGL (docs/papers.md; `seeds/000_6b49f8a173a2ab00.txt`), section 4.2, eqs. 4.5-4.9:

* eq. 4.5  ``Q_t = W_Q E_t``                 the caption embedding is the query;
* eq. 4.6  ``K_F = W_K SetF``                the frame embeddings are the keys;
* eq. 4.8  ``S = softmax(Q_t K_F^T / sqrt(d_a))``  one weight per frame;
* eq. 4.9  ``E_V = S_1 E_f1 + ... + S_n E_fn``    the video embedding is the weighted sum
  of the frame embeddings; the score is ``cos(E_t, E_V)``.

Our reading, where the paper is ambiguous or silent:

* eq. 4.8 as printed ends in ``V_v`` (a projected value, eq. 4.7) while eq. 4.9 sums the
  *frame embeddings* with the weights. We follow eq. 4.9 (the pooled video stays in CLIP's
  joint space, where the cosine with ``E_t`` means something), so ``W_V`` is not used.
* Frame embeddings are L2-normalised before the sum (as CLIP4Clip's meanP does), so that
  with uniform weights this head *is* mean pooling (meanP) -- the three rows of the
  paper's Table 2 (Mean / Self-Att / Cross-modal) then differ only in the weights.
* Queries and keys are computed from the embeddings rescaled to unit mean square (a
  LayerNorm without centring, as X-Pool feeds LayerNorm outputs to its attention), and
  ``W_Q``, ``W_K`` start as the identity: at initialisation the logit of frame ``f`` is
  ``sqrt(d) * cos(E_t, E_f)``. No biases (the paper's equations have none).

Shapes: ``text.sentence [T, D]``, ``video.frames [V, F, D]``, ``video.mask bool [V, F]``
-> scores ``[T, V]``; :meth:`frame_weights` -> ``[T, V, F]``; :meth:`pool` -> ``[T, V, D]``.

Evaluation uses the Gram-matrix path (:mod:`tvrlib.heads.gram`, through
:class:`~tvrlib.heads.attention_pooling.AttentionPoolingHead`) by default: the
logit ``(W_Q q_t) . (W_K k_f) / sqrt(d_a)`` equals ``(W_K^T W_Q q_t / sqrt(d_a)) . k_f``, so
one text-side vector per caption is dotted with the frame vectors directly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import AttentionPoolingHead, rms_normalize
from .base import TextInput, VideoInput
from .mean_pooling import masked_frames
from .scoring import Encoded

__all__ = ["CrossModalAggregation"]


@HEADS.register("cross_modal_aggregation")
class CrossModalAggregation(AttentionPoolingHead):
    """CrossAttnGL's text-conditioned aggregation: ``E_V = sum_f softmax_f(Q_t K_f / sqrt(d_a)) E_f`` (eqs. 4.5-4.9).

    ``dim``: embedding size ``D``; ``attn_dim``: ``d_a`` (default ``D``; identity init needs ``d_a = D``).
    """

    def __init__(self, dim: int = 512, attn_dim: int | None = None):
        super().__init__()
        self.dim, self.attn_dim = dim, attn_dim or dim
        self.query = nn.Linear(dim, self.attn_dim, bias=False)  # W_Q, eq. 4.5
        self.key = nn.Linear(dim, self.attn_dim, bias=False)  # W_K, eq. 4.6
        for lin in (self.query, self.key):
            if self.attn_dim == dim:
                nn.init.eye_(lin.weight)
            else:
                nn.init.xavier_uniform_(lin.weight)

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        """The vectors that are pooled: L2-normalised frame embeddings ``[V, F, D]`` (the ``E_f`` of eq. 4.9)."""
        return masked_frames(F.normalize(masked_frames(video.frames, video.mask), dim=-1), video.mask)  # E_f, eq. 4.9

    def encode_text(self, text: TextInput) -> Encoded:
        """``query [T, D]`` with ``query . u_f`` = the logit of eq. 4.8, and the cosine ``target = E_t``."""
        q = self.query(rms_normalize(text.sentence))  # W_Q E_t (eq. 4.5)
        # (W_Q E_t) . (W_K sqrt(D) u_f) / sqrt(d_a)  ==  (sqrt(D) W_K^T W_Q E_t / sqrt(d_a)) . u_f
        query = q @ self.key.weight * (math.sqrt(self.dim) / math.sqrt(self.attn_dim))  # eq. 4.8, folded
        return Encoded({"query": query, "target": text.sentence})

    def encode_video(self, video: VideoInput) -> Encoded:
        return self.video_side(self.frame_vectors(video), video.mask)

    def textbook_logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Eq. 4.8's logits computed literally, ``Q_t K_F^T / sqrt(d_a)`` -> ``[T, V, F]`` (for checks)."""
        q = self.query(rms_normalize(text.sentence))  # W_Q E_t (eq. 4.5)
        k = self.key(math.sqrt(self.dim) * self.frame_vectors(video))  # W_K E_f (eq. 4.6)
        return torch.einsum("ta,vfa->tvf", q, k) / math.sqrt(self.attn_dim)  # eq. 4.8, before the softmax
