"""What CrossAttnGL's cross-modal and Self-Att aggregation heads share: the frames, ``W_K``, ``W_V``, the FC layer.

CrossAttnGL's Table 2 is an ablation of the aggregation step, so its "Self-Att" row is read as the cross-modal head
with one change: the query. Everything else -- which frame vectors enter (eq. 4.3), the key projection ``W_K``
(eq. 4.6), the value projection ``W_V`` (eq. 4.7), the ``D``-unit FC layer and dropout 0.3 (Model Settings) and how
they are initialised -- is built here, once, so the two heads cannot drift apart.
:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation` adds the caption's query ``W_Q E_t + b_Q``;
:class:`~tvrlib.heads.self_attention_aggregation.SelfAttentionAggregation` one learned query vector.

The constructor arguments (the same for both heads, with the paper's defaults):

* ``dim``: the embedding size ``D``; ``attn_dim``: ``d_a`` (default ``D``, the paper's 512 on ViT-B/32);
* ``init``: ``"random"`` (the paper: PyTorch's default Linear init, zero biases) or ``"identity"`` (projections
  start at ``I``; Xavier-uniform when ``d_a != D``);
* ``bias``: biases on the query projection and ``W_V`` (zero at the start, the paper's);
* ``value_projection``: pool ``W_V x_f`` (eq. 4.7) or the frames themselves (eq. 4.9 as printed);
* ``fc``: the ``D``-unit FC layer after pooling (identity weight, zero bias: X-Pool's init; the paper is silent);
* ``dropout``: on the FC layer's output, training only (0.3, the paper's);
* ``normalize``: L2-normalise the frames and feed the key (and query) projections inputs rescaled to unit mean
  square (the identity reading's; the paper feeds CLIP's embeddings as they are).

``W_K`` has no bias: the query's dot product with it is the same for every frame, so the softmax cancels it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import VideoInput
from .mean_pooling import masked_frames

__all__ = ["ValuePathAggregation", "IDENTITY_READING"]

#: the constructor arguments of the identity-initialised reading (variants ``*-identity``): eq. 4.9 taken literally
#: (no ``W_V``, no FC layer, no dropout), normalised frames, projections starting at the identity, no biases
IDENTITY_READING = {
    "init": "identity",
    "bias": False,
    "value_projection": False,
    "fc": False,
    "dropout": 0.0,
    "normalize": True,
}


class ValuePathAggregation:
    """Mixin (before the head's base class): builds ``query``, ``key``, ``value``, ``fc``, ``dropout``.

    A subclass sets ``head_name`` (for error messages) and implements :meth:`make_query` (the one thing in which
    the two heads differ); the arguments are described in the module docstring.
    """

    head_name = "aggregation"

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
            raise ValueError(f"{self.head_name}: init must be 'random' or 'identity', got {init!r}")
        self.dim, self.attn_dim = dim, attn_dim or dim
        if value_projection and not fc and self.attn_dim != dim:
            raise ValueError(
                f"{self.head_name}: values of size d_a={self.attn_dim} need the FC layer to return to D={dim}"
            )
        self.init, self.normalize = init, bool(normalize)
        self.query = self.make_query(bias)  # eq. 4.5 (the caption's W_Q) or its caption-blind replacement
        self.key = nn.Linear(dim, self.attn_dim, bias=False)  # W_K, eq. 4.6
        self.value = nn.Linear(dim, self.attn_dim, bias=bias) if value_projection else None  # W_V, eq. 4.7
        self.fc = nn.Linear(self.attn_dim if value_projection else dim, dim) if fc else None  # the D-unit FC layer
        self.dropout = nn.Dropout(dropout)  # on the FC layer's output (0.3, Model Settings)
        for lin in (self.query, self.key, self.value):
            if not isinstance(lin, nn.Linear):
                continue
            if init == "identity":
                if self.attn_dim == dim:
                    nn.init.eye_(lin.weight)
                else:
                    nn.init.xavier_uniform_(lin.weight)
            # init == "random": PyTorch's default nn.Linear weights (Kaiming-uniform), as built
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)  # "the bias values are set to 0"
        if self.fc is not None:  # the paper is silent: X-Pool's init of its FC layer
            nn.init.eye_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def make_query(self, bias: bool) -> nn.Module | nn.Parameter:
        raise NotImplementedError

    @property
    def key_scale(self) -> float:
        """The factor on ``x_f`` before ``W_K``: ``sqrt(D)`` with ``normalize`` (unit mean square), else 1."""
        return math.sqrt(self.dim) if self.normalize else 1.0

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        """``x_f [V, F, D]``, the input of ``W_K`` and ``W_V`` (``Set_F`` of eq. 4.3), padded frames set to 0.

        The frame embeddings as CLIP gives them; L2-normalised with ``normalize=True``.
        """
        x = masked_frames(video.frames, video.mask)  # Set_F, eq. 4.3
        if self.normalize:
            x = masked_frames(F.normalize(x, dim=-1), video.mask)
        return x

    def value_vectors(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What is pooled, per frame: ``FC(W_V x_f + b_V)`` ``[V, F, D]`` (``x`` itself without W_V and FC).

        The FC layer is affine and the weights of a video with a valid frame sum to 1, so applying it to each
        frame before the weighted sum equals applying it to the pooled value.
        """
        if self.value is None and self.fc is None:
            return x  # eq. 4.9 as printed: the frames themselves are pooled
        v = x if self.value is None else self.value(x)  # V_F = W_V Set_F, eq. 4.7
        if self.fc is not None:
            v = self.fc(v)  # the FC layer, per frame (exact: see the docstring)
        return masked_frames(v, mask)

    def extra_repr(self) -> str:
        return (
            f"init={self.init!r}, value_projection={self.value is not None}, fc={self.fc is not None}, "
            f"dropout={self.dropout.p}, normalize={self.normalize}"
        )
