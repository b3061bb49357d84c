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
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import DualEncoderHead, TextInput, VideoInput
from .cross_modal_aggregation import IDENTITY_READING
from .mean_pooling import masked_frames

__all__ = ["SelfAttentionAggregation", "IDENTITY_READING"]


@HEADS.register("self_attention_aggregation")
class SelfAttentionAggregation(DualEncoderHead):
    """Caption-blind attention pooling with one learned query (CrossAttnGL Table 2, "Self-Att").

    The arguments are the cross-modal head's (:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`),
    with the same defaults: ``dim`` ``D``; ``attn_dim`` ``d_a`` (default ``D``); ``init`` ``"random"`` (PyTorch's
    default Linear init, zero biases) or ``"identity"``; ``bias`` on ``W_V``; ``value_projection`` (pool
    ``W_V E_f`` or the frames themselves); ``fc`` (the ``D``-unit FC layer after pooling); ``dropout`` (on the FC
    layer's output, training only); ``normalize`` (L2-normalise the frames, keys from frames at unit mean square).
    The learned query ``q [d_a]`` starts at zero.
    """

    has_frame_weights = True

    def __init__(
        self,
        dim: int = 512,
        attn_dim: int | None = None,
        *,
        init: str = "random",
        bias: bool = True,
        value_projection: bool = True,
        fc: bool = True,
        dropout: float = 0.3,
        normalize: bool = False,
    ):
        super().__init__()
        if init not in ("random", "identity"):
            raise ValueError(f"self_attention_aggregation: init must be 'random' or 'identity', got {init!r}")
        self.dim, self.attn_dim = dim, attn_dim or dim
        if value_projection and not fc and self.attn_dim != dim:
            raise ValueError(
                f"self_attention_aggregation: values of size d_a={self.attn_dim} need the FC layer to return to D={dim}"
            )
        self.init, self.normalize = init, bool(normalize)
        self.query = nn.Parameter(torch.zeros(self.attn_dim))  # q: eq. 4.5 without the caption (b_Q, starts at 0)
        self.key = nn.Linear(dim, self.attn_dim, bias=False)  # W_K, eq. 4.6
        self.value = nn.Linear(dim, self.attn_dim, bias=bias) if value_projection else None  # W_V, eq. 4.7
        self.fc = nn.Linear(self.attn_dim if value_projection else dim, dim) if fc else None  # the D-unit FC layer
        self.dropout = nn.Dropout(dropout)  # on the FC layer's output (0.3, Model Settings)
        for lin in (self.key, self.value):  # as CrossModalAggregation initialises them
            if lin is None:
                continue
            if init == "identity":
                if self.attn_dim == dim:
                    nn.init.eye_(lin.weight)
                else:
                    nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        if self.fc is not None:
            nn.init.eye_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        """``x_f [V, F, D]``, the input of ``W_K`` and ``W_V``: CLIP's frames (L2-normalised with ``normalize``),
        padded frames set to zero."""
        x = masked_frames(video.frames, video.mask)
        if self.normalize:
            x = masked_frames(F.normalize(x, dim=-1), video.mask)
        return x

    def _weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        key_scale = math.sqrt(self.dim) if self.normalize else 1.0
        k = self.key(key_scale * x)  # K_F = W_K Set_F, eq. 4.6
        return masked_softmax(k @ self.query / math.sqrt(self.attn_dim), mask)  # eq. 4.8 with q for Q_t

    def video_frame_weights(self, video: VideoInput) -> torch.Tensor:
        """``[V, F]`` softmax weights over each video's valid frames (no caption involved)."""
        return self._weights(self.frame_vectors(video), video.mask)

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V, F]``: :meth:`video_frame_weights` repeated for every caption (a view, no copy)."""
        w = self.video_frame_weights(video)
        return w.unsqueeze(0).expand(len(text), *w.shape)

    def value_vectors(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What is pooled, per frame: ``FC(W_V x_f + b_V)`` ``[V, F, D]`` (``x`` itself without W_V and FC); the FC
        layer is affine and the weights sum to 1, so per frame equals after pooling (as in the cross-modal head)."""
        if self.value is None and self.fc is None:
            return x  # eq. 4.9 as printed
        v = x if self.value is None else self.value(x)  # V_F = W_V Set_F, eq. 4.7
        if self.fc is not None:
            v = self.fc(v)
        return masked_frames(v, mask)

    def embed_video(self, video: VideoInput) -> torch.Tensor:
        x = self.frame_vectors(video)
        w = self._weights(x, video.mask)
        pooled = torch.einsum("vf,vfd->vd", w, self.value_vectors(x, video.mask))  # eq. 4.9 (+ FC)
        return self.dropout(pooled)  # the identity in eval mode

    def extra_repr(self) -> str:
        return (
            f"init={self.init!r}, value_projection={self.value is not None}, fc={self.fc is not None}, "
            f"dropout={self.dropout.p}, normalize={self.normalize}"
        )


HEADS.register_variant("self_attention_aggregation-identity", "self_attention_aggregation", **IDENTITY_READING)
