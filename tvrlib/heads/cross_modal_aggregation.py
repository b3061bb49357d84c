"""Cross-modal (text-conditioned) attention aggregation of frames, scored by cosine.

Paper: CrossAttnGL (docs/papers.md; `seeds/000_6b49f8a173a2ab00.txt`), section 4.2, eqs. 4.5-4.9, and the
"Model Settings" paragraph of section 5:

* eq. 4.5  ``Q_t = W_Q E_t``                         the caption embedding is the query;
* eq. 4.6  ``K_F = W_K Set_F``                       the frame embeddings are the keys;
* eq. 4.7  ``V_F = W_V Set_F``                       ... and the values;
* eq. 4.8  ``S = softmax(Q_t K_F^T / sqrt(d_a)) V``  one weight per frame, then the weighted sum of the values;
* eq. 4.9  ``E_V = S_1 E_f1 + ... + S_n E_fn``       the video embedding (printed with the raw frames, see below);
* Model Settings: "[the] attention size of the three projection dimensions [...] is set to 512. The weight matrices
  Wq, Wk, and Wv are randomly initialized, and the bias values are set to 0. The output units of the fully
  connected layer are also set to 512, and a dropout of 0.3 is applied".

The default (registry name ``cross_modal_aggregation``) is that description::

    w_f  = softmax_f( (W_Q E_t + b_Q) . (W_K E_f) / sqrt(d_a) )     over the valid frames   (eqs. 4.5, 4.6, 4.8)
    E_V  = Dropout_0.3( FC( sum_f w_f (W_V E_f + b_V) ) )                                     (eqs. 4.7-4.9, FC)
    s    = cos(E_t, E_V)

Our reading, where the paper is ambiguous or silent (P = the paper says so, X = the paper is silent and we follow
X-Pool, method_cards.md card 2, whose dropout 0.3 and 512-unit FC layer the paper repeats):

* P: ``W_V`` is used: the text (section 3 and 4.2) and eq. 4.8 weight the *value* vectors; eq. 4.9's raw ``E_f`` is
  read as a misprint (docs/papers.md, errata).
* P: ``d_a = D`` (512 on ViT-B/32; our tiny CLIP's 128); the FC layer has ``D`` outputs (512 on ViT-B/32).
* P: ``W_Q, W_K, W_V`` randomly initialised with zero biases. "Random" is PyTorch's default for ``nn.Linear``
  (Kaiming-uniform, ``U(-1/sqrt(D), 1/sqrt(D))``); the paper names no distribution. X-Pool's reference code, by
  contrast, starts every projection at the identity.
* P: no LayerNorm and no residual connection: the paper's equations have none and its text names only the FC
  layer with dropout. (X-Pool wraps its FC in ``LN2``, a residual and ``LN3``, and has an output projection
  ``W_o``; with those the head would be ``xpool`` with another initialisation.)
* X: the FC layer is one linear ``D -> D`` with bias, applied to the pooled value, with dropout on its output
  (X-Pool's ``Dropout(Linear(a))``), initialised like X-Pool's: identity weight, zero bias.
* X: the score is the cosine with the caption's raw embedding ``E_t`` (X-Pool's; the paper's global similarity,
  eq. 4.11, also takes ``E_t``).
* ``W_K`` has no bias: ``Q_t . b_K`` is the same for every frame of a pair, so the softmax cancels it exactly.
* Padded frames get weight 0 (the softmax runs over the valid frames); a video with no valid frame pools to 0
  (score 0), not to the FC's bias.

**Evaluation without pooled vectors** (``path="gram"``, the default in eval mode). Softmax weights sum to 1 over
the valid frames and the FC layer is affine, so ``FC(sum_f w_f v_f) = sum_f w_f FC(v_f)`` exactly, and in eval mode
dropout is the identity. So each frame's value is pushed through ``FC . W_V`` once per video, and the pooled video
is again a *linear* weighted sum of per-frame vectors: the Gram-matrix path of :mod:`tvrlib.heads.gram` (via
:class:`~tvrlib.heads.attention_pooling.AttentionPoolingHead`) gives the cosine exactly, without a ``[T, V, D]``
tensor. The logits use the other per-frame vectors, ``x_f``: ``(W_Q E_t + b_Q) . (W_K x_f) / sqrt(d_a)`` equals
``(W_K^T (W_Q E_t + b_Q) / sqrt(d_a)) . x_f``, one text-side vector per caption (``W_K`` folded into the query).
**Training** (``self.training`` with dropout > 0) drops units of each *pooled* vector, which no per-frame form can
reproduce, so it materialises the ``[t, v, D]`` pooled vectors of the batch (as :mod:`tvrlib.heads.xpool` does);
``path="materialise"`` does so in eval too, and asking for ``"gram"`` in training with dropout is an error.

Variant ``cross_modal_aggregation-identity`` (:data:`IDENTITY_READING`): this module's earlier reading of the same
equations -- eq. 4.9 taken literally (no ``W_V``, no FC layer, no dropout), frames L2-normalised before the sum,
queries and keys computed from embeddings rescaled to unit mean square, ``W_Q = W_K = I`` at the start and no
biases. Kept because it shows what the paper's random start gives up, and what it does not: at initialisation the
identity reading's logit of frame ``f`` is ``sqrt(D) * cos(E_t, E_f)`` (cosine attention) and its pooled video is a
convex combination of the unit frames, so untrained it already retrieves about as well as zero-shot meanP or
better (with uniform weights it *is* meanP; a test checks both on a toy set). The paper's reading starts from a
random ``W_V``, which scrambles CLIP's joint space: untrained, it retrieves at chance (a test checks this too) and
must learn the space back from the training captions. Whether that costs anything once trained is a question for
the notebooks (in a short run on the quick split it caught up within one epoch).

Shapes: ``text.sentence [T, D]``, ``video.frames [V, F, D]``, ``video.mask bool [V, F]``
-> scores ``[T, V]``; :meth:`frame_weights` -> ``[T, V, F]``; :meth:`pool` -> ``[T, V, D]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .aggregation_value_path import IDENTITY_READING, ValuePathAggregation
from .attention_pooling import AttentionPoolingHead, masked_softmax, rms_normalize
from .base import TextInput, VideoInput
from .gram import EPS, attention_pool, gram_matrices, pooled_cosine_gram, pooled_cosine_materialised
from .scoring import Encoded

__all__ = ["CrossModalAggregation", "IDENTITY_READING"]


@HEADS.register("cross_modal_aggregation")
class CrossModalAggregation(ValuePathAggregation, AttentionPoolingHead):
    """CrossAttnGL's text-conditioned aggregation (eqs. 4.5-4.9 with W_V, the FC layer and dropout 0.3); cosine score.

    The constructor arguments, shared with the Self-Att head, are :class:`~tvrlib.heads.aggregation_value_path.
    ValuePathAggregation`'s (the paper's defaults). The query is ``W_Q E_t + b_Q`` (eq. 4.5), initialised like
    ``W_K`` and ``W_V``.
    """

    head_name = "cross_modal_aggregation"

    def make_query(self, bias: bool) -> nn.Linear:
        return nn.Linear(self.dim, self.attn_dim, bias=bias)  # W_Q, eq. 4.5

    @property
    def dropout_active(self) -> bool:
        """Training with dropout: pooled vectors must be built (the Gram path would ignore the dropout)."""
        return self.training and self.dropout.p > 0

    def default_eval_path(self) -> str:
        return "materialise" if self.dropout_active else "gram"

    # -- per side ----------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        """``query [T, D]`` with ``query . x_f`` = the logit of eq. 4.8, and the cosine ``target = E_t``."""
        sentence = rms_normalize(text.sentence) if self.normalize else text.sentence
        q = self.query(sentence)  # Q_t = W_Q E_t, eq. 4.5
        # W_K is applied to key_scale * x_f:
        # Q_t . (W_K key_scale x_f) / sqrt(d_a)  ==  (key_scale W_K^T Q_t / sqrt(d_a)) . x_f
        query = q @ self.key.weight * (self.key_scale / math.sqrt(self.attn_dim))  # eqs. 4.6 and 4.8, folded
        return Encoded({"query": query, "target": text.sentence})

    def encode_video(self, video: VideoInput) -> Encoded:
        """``values [V, F, D]`` (pooled), ``keys [V, F, D]`` (``x_f``, dotted with the query; omitted when it is
        the values), ``mask``, and the values' Gram matrices (not built while training with dropout)."""
        x = self.frame_vectors(video)
        values = self.value_vectors(x, video.mask)
        if values is x and not self.dropout_active:
            return self.video_side(x, video.mask)  # keys = values (the identity reading)
        side = {"values": values, "mask": video.mask}
        if values is not x:
            side["keys"] = x
        if not self.dropout_active:
            side["gram"] = gram_matrices(values)
        return Encoded(side)

    # -- per pair ----------------------------------------------------------------
    def logits_encoded(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """Eq. 4.8's logits ``Q_t K_f^T / sqrt(d_a)`` of a block, ``[t, v, F]`` (folded: ``query . x_f``)."""
        keys = ve.tensors.get("keys", ve["values"])
        return (te["query"] @ keys.reshape(-1, keys.shape[-1]).T).view(len(te), *keys.shape[:2])  # eq. 4.8

    def weights_encoded(self, te: Encoded, ve: Encoded, logits: torch.Tensor | None = None) -> torch.Tensor:
        if logits is None:
            logits = self.logits_encoded(te, ve)
        return masked_softmax(logits, self.select_frames(logits, ve["mask"]))  # S = softmax(...), eq. 4.8

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        path = path or self.default_eval_path()
        if path not in ("gram", "materialise"):
            raise ValueError(f"unknown evaluation path {path!r}; use 'gram' or 'materialise'")
        if path == "gram" and self.dropout_active:
            raise ValueError(
                "cross_modal_aggregation: the Gram path is exact only without dropout; "
                "call .eval() or use path='materialise'"
            )
        if "keys" not in ve.tensors and "gram" in ve.tensors and not self.dropout_active:
            return super().score_encoded(te, ve, path)  # keys = values: one product gives logits and dots
        values = ve["values"]
        weights = self.weights_encoded(te, ve)  # eq. 4.8
        if path == "gram":
            gram = ve["gram"] if "gram" in ve.tensors else gram_matrices(values)
            return pooled_cosine_gram(te["target"], weights, values, gram)  # cos(E_t, E_V), eqs. 4.8-4.9 + FC
        if not self.dropout_active:
            return pooled_cosine_materialised(te["target"], weights, values)  # cos(E_t, E_V), eqs. 4.8-4.9 + FC
        pooled = self.dropout(attention_pool(weights, values))  # E_V = Dropout(FC(sum_f S_f V_f)), eqs. 4.8-4.9
        pooled = F.normalize(pooled, dim=-1, eps=EPS)
        return torch.einsum("tvd,td->tv", pooled, F.normalize(te["target"], dim=-1, eps=EPS))  # cos(E_t, E_V)

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        path = path or self.default_eval_path()
        if path == "gram":
            return 4 * 8 * num_frames  # logits, dots, weights, products: a few F-vectors per pair
        return 4 * (4 * dim + 4 * num_frames)  # pooled, dropout mask, normalised pooled, product; the weights

    # -- for figures and checks --------------------------------------------------
    def pool(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """The pooled video ``E_V`` of every (text, video) pair, ``[T, V, D]`` (memory ``T*V*D``)."""
        te, ve = self.encode_text(text), self.encode_video(video)
        return self.dropout(attention_pool(self.weights_encoded(te, ve), ve["values"]))  # eqs. 4.8-4.9, FC, dropout

    def textbook_logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Eq. 4.8's logits computed literally, ``Q_t K_F^T / sqrt(d_a)`` -> ``[T, V, F]`` (for checks)."""
        sentence = rms_normalize(text.sentence) if self.normalize else text.sentence
        q = self.query(sentence)  # Q_t = W_Q E_t, eq. 4.5
        k = self.key(self.key_scale * self.frame_vectors(video))  # K_F = W_K Set_F, eq. 4.6
        return torch.einsum("ta,vfa->tvf", q, k) / math.sqrt(self.attn_dim)  # eq. 4.8, before the softmax


HEADS.register_variant("cross_modal_aggregation-identity", "cross_modal_aggregation", **IDENTITY_READING)
