"""Text-conditioned attention pooling: the kernels and the base class of the heads the Gram path covers.

Paper: CrossAttnGL (docs/papers.md), section 4.2, eqs. 4.8-4.9: a caption attends over a video's frames (eq. 4.8:
softmax of query-key logits over the frames) and the pooled video is the attention-weighted sum
of frame vectors (eq. 4.9), compared with the caption by cosine.

:class:`AttentionPoolingHead` is the family whose pooled video is a *linear* weighted sum of
per-frame vectors: CrossAttnGL's cross-modal aggregation
(:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`) and TopKTemporal's top-K frames
(:class:`~tvrlib.heads.topk_frames.TopKFrames`). For them the attention logits are dot products of
a text-side vector with the same frame vectors that are pooled
(``(W_Q t) . (W_K u_f) = (W_K^T W_Q t) . u_f``), so the logits and the dot products in the
numerator of the Gram-path cosine (:mod:`tvrlib.heads.gram`) come out of one matrix product, and
no ``[T, V, D]`` pooled tensor is built.

Shapes: texts ``[T, D]``, frame values ``[V, F, D]``, frame mask ``bool [V, F]``
(``False`` = padding), attention weights ``[T, V, F]``, scores ``[T, V]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import TextInput, VideoInput
from .gram import EPS, attention_pool, gram_matrices, pooled_cosine_gram, pooled_cosine_materialised
from .scoring import Encoded, EncodedInteractionHead


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis (frames) where ``mask`` is True; padded frames get weight 0 (eq. 4.8).

    ``logits [..., V, F]``, ``mask bool [V, F]`` (broadcast). A video with no valid frame
    gets all-zero weights (its pooled vector is 0 and its cosine 0), never NaN.
    """
    if bool(mask.all()):  # no padding and nothing deselected: a plain softmax
        return torch.softmax(logits, dim=-1)  # eq. 4.8
    logits = logits.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)  # eq. 4.8, over the valid (selected) frames
    return torch.where(mask, w, torch.zeros((), dtype=w.dtype, device=w.device))


def rms_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rescale each vector to norm ``sqrt(D)`` (unit mean square), as a LayerNorm without centring would."""
    return F.normalize(x, dim=-1, eps=EPS) * math.sqrt(x.shape[-1])


class AttentionPoolingHead(EncodedInteractionHead):
    """Text-conditioned attention pooling whose pooled video is a linear weighted sum of frame vectors.

    Subclasses define, per side:

    * ``encode_text``  -> ``Encoded(query [T, D], target [T, D])``: the attention logit of
      frame ``f`` is ``query_t . values_{v,f}``; the score is ``cos(target_t, pooled_{t,v})``;
    * ``encode_video`` -> ``Encoded(values [V, F, D], mask bool [V, F], gram [V, F, F])``;
    * optionally ``select_frames(logits, mask) -> mask`` (e.g. top-K frames).

    ``path="gram"`` (default) never builds a pooled vector (:func:`~tvrlib.heads.gram.pooled_cosine_gram`);
    ``path="materialise"`` builds the ``[t, v, D]`` pooled tensor of the block. Both give
    the same scores (up to float rounding) and both are differentiable.
    """

    default_path = "gram"
    has_frame_weights = True

    # -- subclasses -----------------------------------------------------------
    def select_frames(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Which frames the softmax may use: ``logits [t, v, F]``, ``mask [v, F]`` -> bool ``[t, v, F]``/``[v, F]``."""
        return mask

    # -- shared ----------------------------------------------------------------
    def video_side(self, values: torch.Tensor, mask: torch.Tensor) -> Encoded:
        return Encoded({"values": values, "mask": mask, "gram": gram_matrices(values)})

    def weights_encoded(self, te: Encoded, ve: Encoded, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``[t, v, F]`` of a block (zero on padded and unselected frames)."""
        values = ve["values"]
        if logits is None:  # eq. 4.8's logits, folded: (W_K^T W_Q t / sqrt(d_a)) . u_f
            logits = (te["query"] @ values.reshape(-1, values.shape[-1]).T).view(len(te), *values.shape[:2])
        return masked_softmax(logits, self.select_frames(logits, ve["mask"]))  # eq. 4.8

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Attention weights ``[T, V, F]`` of every (text, video) pair (for figures and checks)."""
        return self.weights_encoded(self.encode_text(text), self.encode_video(video))

    def pool(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """The pooled video of every (text, video) pair, ``[T, V, D]`` (eq. 4.9; memory ``T*V*D``)."""
        te, ve = self.encode_text(text), self.encode_video(video)
        return attention_pool(self.weights_encoded(te, ve), ve["values"])  # eq. 4.9

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        path = path or self.default_path
        values = ve["values"]
        t, (v, f, d) = len(te), values.shape
        if path == "gram":
            # one matrix product gives the attention logits and the numerator's dot products
            both = torch.cat([te["query"], te["target"]]) @ values.reshape(-1, d).T
            logits, dots = both[:t].view(t, v, f), both[t:].view(t, v, f)
            weights = self.weights_encoded(te, ve, logits)  # eq. 4.8
            return pooled_cosine_gram(te["target"], weights, values, ve["gram"], dots)  # cos(E_t, E_V), eq. 4.9
        if path == "materialise":
            return pooled_cosine_materialised(te["target"], self.weights_encoded(te, ve), values)  # eq. 4.9, cosine
        raise ValueError(f"unknown evaluation path {path!r}; use 'gram' or 'materialise'")

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        if (path or self.default_path) == "gram":
            return 4 * 8 * num_frames  # logits, dots, weights, products: a few F-vectors per pair
        return 4 * (3 * dim + 4 * num_frames)  # pooled, normalised pooled, product, plus the weights
