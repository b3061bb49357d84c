"""Self-attention aggregation: frame weights from the video alone (the "Self-Att" row of CrossAttnGL's Table 2).

Paper: CrossAttnGL (docs/papers.md; `seeds/000_6b49f8a173a2ab00.txt`), section 5 ablation (Table 2): "the
Self-attention Aggregation method computes aggregation weights without utilizing textual semantic information and
aggregates the frame features". The paper gives no equations for it. Table 2 is an ablation of the aggregation
step, so our reading keeps **everything** of the cross-modal head
(:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`, eqs. 4.5-4.9 with the Model Settings) and
changes one thing: the caption's query ``W_Q E_t + b_Q`` (eq. 4.5) becomes one learned query vector ``q``, the
same for every caption::

    w_f  = softmax_f( q . (W_K E_f) / sqrt(d_a) )                    over the valid frames   (eqs. 4.6, 4.8)
    E_V  = Dropout_0.3( FC( sum_f w_f (W_V E_f + b_V) ) )                                     (eqs. 4.7-4.9, FC)
    s    = cos(E_t, E_V)

* ``W_K``, ``W_V`` and the FC layer are built and initialised exactly as in the cross-modal head (random
  ``W_K``/``W_V`` with PyTorch's default ``nn.Linear`` init and zero biases; FC identity weight, zero bias; dropout
  0.3 on the FC layer's output; the frames as CLIP gives them). Its docstring and docs/papers.md give the sources.
* ``q`` starts at zero: it is what is left of eq. 4.5 once the caption is removed, the bias ``b_Q``, which the
  paper starts at 0 ("the bias values are set to 0"). So the head starts with uniform weights over the valid frames
  (the mean of the projected values). The cross-modal head with ``W_Q = 0`` and ``b_Q = q`` gives the same scores
  (a test checks it): the two heads differ only in whether the weights can see the caption.
* Because the weights do not depend on the caption, this is a **dual encoder**: in eval mode each video is embedded
  once and a gallery is searched with one matrix product. Dropout is active only in training, where it drops units
  of each video's pooled vector (one mask per video, as the pooled vector is per video; the cross-modal head's
  pooled vector, and so its mask, is per caption-video pair).

Variant ``self_attention_aggregation-identity`` (:data:`IDENTITY_READING`, the same arguments as
``cross_modal_aggregation-identity``): this module's earlier reading -- eq. 4.9 taken literally (no ``W_V``, no FC
layer, no dropout), frames L2-normalised before the sum, keys computed from frames rescaled to unit mean square,
``W_K = I`` at the start. With ``q = 0`` it starts as exactly mean pooling (meanP), the Self-Att counterpart of the
cross-modal identity reading.

Shapes: ``video.frames [V, F, D]``, ``video.mask bool [V, F]`` -> ``embed_video [V, D]``,
:meth:`video_frame_weights` -> ``[V, F]`` (the same for every caption; :meth:`frame_weights` repeats them for every
caption, ``[T, V, F]``, like every head with ``has_frame_weights``); ``score(text [T, D], video) -> [T, V]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import HEADS
from .aggregation_value_path import IDENTITY_READING, ValuePathAggregation
from .attention_pooling import masked_softmax
from .base import DualEncoderHead, TextInput, VideoInput

__all__ = ["SelfAttentionAggregation", "IDENTITY_READING"]


@HEADS.register("self_attention_aggregation")
class SelfAttentionAggregation(ValuePathAggregation, DualEncoderHead):
    """Caption-blind attention pooling with one learned query (CrossAttnGL Table 2, "Self-Att").

    The arguments are the cross-modal head's, with the same defaults (both built by
    :class:`~tvrlib.heads.aggregation_value_path.ValuePathAggregation`); ``bias`` applies to ``W_V`` only.
    The learned query ``q [d_a]`` starts at zero.
    """

    has_frame_weights = True

    head_name = "self_attention_aggregation"

    def make_query(self, bias: bool) -> nn.Parameter:
        return nn.Parameter(torch.zeros(self.attn_dim))  # q: eq. 4.5 without the caption (b_Q, starts at 0)

    def _weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = self.key(self.key_scale * x)  # K_F = W_K Set_F, eq. 4.6
        return masked_softmax(k @ self.query / math.sqrt(self.attn_dim), mask)  # eq. 4.8 with q for Q_t

    def video_frame_weights(self, video: VideoInput) -> torch.Tensor:
        """``[V, F]`` softmax weights over each video's valid frames (no caption involved)."""
        return self._weights(self.frame_vectors(video), video.mask)

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V, F]``: :meth:`video_frame_weights` repeated for every caption (a view, no copy)."""
        w = self.video_frame_weights(video)
        return w.unsqueeze(0).expand(len(text), *w.shape)

    def embed_video(self, video: VideoInput) -> torch.Tensor:
        x = self.frame_vectors(video)
        w = self._weights(x, video.mask)
        pooled = torch.einsum("vf,vfd->vd", w, self.value_vectors(x, video.mask))  # eq. 4.9 (+ FC)
        return self.dropout(pooled)  # the identity in eval mode


HEADS.register_variant("self_attention_aggregation-identity", "self_attention_aggregation", **IDENTITY_READING)
