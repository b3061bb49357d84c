"""X-Pool: text-conditioned attention pooling of frames (Gorti et al., CVPR 2022), scored by cosine.

Facts from method_cards.md card 2 (the public ``layer6ai-labs/xpool`` code; X-Pool in docs/papers.md), in the order the
block runs (``D`` = embedding size, ``H`` heads of size ``D/H``; the default is one head). The
paper's equations are not in our sources, so the code marks each line with its step, ``# step N``:

1. one **shared** LayerNorm ``LN1`` on the caption embedding and on every frame embedding;
2. ``q = W_q LN1(t)``, ``k_f = W_k LN1(e_f)``, ``v_f = W_v LN1(e_f)``;
3. weights ``softmax_f(q . k_f / sqrt(D/H))`` (per head), ``a = W_o concat_h(sum_f w_f v_f) + b_o``;
4. ``a = LN2(a)``, ``o = a + Dropout(W_l a + b_l)`` (a single D x D linear, not an MLP), ``LN3(o)``;
5. the score is ``cos(t, LN3(o))`` with the caption's raw embedding ``t``.

Every linear weight (``W_q, W_k, W_v, W_o, W_l``) starts as the identity with zero bias.
Dropout defaults to 0.3 (the card: 0.3 on MSR-VTT 9k and LSMDC, 0.4 on 7k and MSVD).
Differences from the reference code: padded frames get weight 0 (the reference assumes
exactly 12 real frames), and ``W_o`` is applied to each frame's value before the weighted
sum (``W_o sum_f w_f v_f = sum_f w_f W_o v_f``, exact), so that it runs once per video
instead of once per (caption, video) pair.

Evaluation without pooled vectors (the **moment path**, ``path="gram"``, the default in eval
mode). ``LN2``, ``W_l`` and ``LN3`` make the pooled vector a non-linear function of the frames,
but a LayerNorm only needs a vector's mean and variance, and both are quadratic forms in the
attention weights. With ``w' = [w, 1]`` (the 1 carries ``b_o``) and per-video vectors ``y_j``
(``W_o v_f`` per head and frame, then ``b_o``): ``a = sum_j w'_j y_j``; centring is linear, so
``LN2(a) = gamma2 * sum_j w'_j c_j / s + beta2`` with ``s^2 = w'^T C w' / D + eps`` (``C`` the Gram
matrix of the centred ``c_j``); the residual linear is linear; ``LN3`` repeats the trick one level
up; the final cosine is a dot product and a norm, again a quadratic form. Per video we keep three
small Gram matrices (``(HF+1)^2``, ``(HF+2)^2``, ``(HF+3)^2``) and ``HF+3`` vectors; per pair, a few
``HF``-vectors. Dropout makes this inexact, so training (``self.training``) materialises
``[t, v, D]`` for the batch; ``path="materialise"`` does so in eval too. Both paths give the
same scores (tests), and :func:`tvrlib.heads.score_all` evaluates either in blocks,
never building the full ``[V, T, D]`` tensor of the reference evaluation (2 GB for 1k x 1k x 512).
The Gram-matrix identity itself is explained in :mod:`tvrlib.heads.gram`.

Shapes: ``text.sentence [T, D]``, ``video.frames [V, F, D]``, ``video.mask bool [V, F]``
-> scores ``[T, V]``; :meth:`pool` -> ``[T, V, D]``; :meth:`frame_weights` -> ``[T, V, F]``
(averaged over heads).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import TextInput, VideoInput
from .gram import gram_matrices, quadratic_form
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead

__all__ = ["XPool"]


@HEADS.register("xpool")
class XPool(EncodedInteractionHead):
    """X-Pool's text-conditioned pooling block (card 2); ``score -> [T, V]`` cosines."""

    has_frame_weights = True

    def __init__(self, dim: int = 512, num_heads: int = 1, dropout: float = 0.3):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"xpool: dim={dim} is not divisible by num_heads={num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.linear = nn.Linear(dim, dim)  # the residual "feed-forward": one D x D linear
        self.dropout = nn.Dropout(dropout)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj, self.linear):
            nn.init.eye_(lin.weight)
            nn.init.zeros_(lin.bias)

    # -- per side ----------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        q = self.q_proj(self.ln1(text.sentence)).view(len(text), self.num_heads, self.head_dim)  # steps 1-2
        return Encoded({"query": q, "target": text.sentence})

    def encode_video(self, video: VideoInput) -> Encoded:
        v_, f_, _ = video.frames.shape
        x = self.ln1(masked_frames(video.frames, video.mask))  # step 1; padding slots may hold anything
        k = self.k_proj(x).view(v_, f_, self.num_heads, self.head_dim)  # step 2
        v = self.v_proj(x).view(v_, f_, self.num_heads, self.head_dim)  # step 2
        w_o = self.out_proj.weight.view(self.dim, self.num_heads, self.head_dim)  # W_o split by head
        z = torch.einsum("vfhe,dhe->vhfd", v, w_o)  # step 3's W_o, applied to each head's value before the sum
        side = {"key": k, "value": z, "mask": video.mask}
        if not self.training:
            side.update(self.moment_side(z))
        return Encoded(side)

    def moment_side(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-video vectors and Gram matrices of the moment path, from ``z [V, H, F, D]`` (eval mode)."""
        v_, h_, f_, d = z.shape
        center = lambda x: x - x.mean(-1, keepdim=True)  # noqa: E731  (LayerNorm's centring: linear)
        residual = lambda x: x + F.linear(x, self.linear.weight)  # noqa: E731  (I + W_l) x, bias apart
        y = torch.cat([z.reshape(v_, h_ * f_, d), self.out_proj.bias.expand(v_, 1, d)], 1)  # a = sum_j w'_j y_j
        c = center(y)  # LN2(a) = gamma2 * (sum_j w'_j c_j) / s + beta2
        p = center(residual(self.ln2.weight * c))  # each c_j after gamma2 and the residual linear, centred
        r = center(residual(self.ln2.bias) + self.linear.bias)  # the constant part, centred
        q = torch.cat([p, r.expand(v_, 1, d)], 1)  # LN3's input, centred: sum_j u_j q_j, u = [w'/s, 1]
        k = torch.cat([self.ln3.weight * q, self.ln3.bias.expand(v_, 1, d)], 1)  # out = sum_j x_j k_j
        return {"gram_a": gram_matrices(c), "gram_o": gram_matrices(q), "gram_out": gram_matrices(k), "out_vectors": k}

    # -- per pair ----------------------------------------------------------------
    def weights_encoded(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """Attention weights ``[t, v, H, F]`` of a block."""
        logits = torch.einsum("the,vfhe->tvhf", te["query"], ve["key"]) / math.sqrt(self.head_dim)  # step 3
        return masked_softmax(logits, ve["mask"][:, None, :])  # step 3

    def pool_encoded(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """The pooled video of every pair of a block, ``[t, v, D]`` (steps 3-4)."""
        a = torch.einsum("tvhf,vhfd->tvd", self.weights_encoded(te, ve), ve["value"]) + self.out_proj.bias  # step 3
        a = self.ln2(a)  # step 4
        return self.ln3(a + self.dropout(self.linear(a)))  # step 4

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        path = path or ("materialise" if self.training else "gram")
        if path == "materialise":
            pooled = F.normalize(self.pool_encoded(te, ve), dim=-1)
            return torch.einsum("tvd,td->tv", pooled, F.normalize(te["target"], dim=-1))  # step 5
        if path != "gram":
            raise ValueError(f"unknown evaluation path {path!r}; use 'gram' or 'materialise'")
        if self.training and self.dropout.p > 0:
            raise ValueError(
                "xpool: the moment path is exact only without dropout; call .eval() or use path='materialise'"
            )
        m = ve.tensors if "gram_a" in ve.tensors else self.moment_side(ve["value"])
        w = self.weights_encoded(te, ve)  # [t, v, H, F]
        t_, v_ = w.shape[:2]
        one = w.new_ones(t_, v_, 1)
        w_a = torch.cat([w.reshape(t_, v_, -1), one], -1)  # w' = [w, 1]
        s2 = (quadratic_form(w_a, m["gram_a"]) / self.dim + self.ln2.eps).sqrt()  # LN2's std
        w_o = torch.cat([w_a / s2[..., None], one], -1)
        s3 = (quadratic_form(w_o, m["gram_o"]) / self.dim + self.ln3.eps).sqrt()  # LN3's std
        w_out = torch.cat([w_o / s3[..., None], one], -1)  # LN3(o) = sum_j w_out_j k_j
        k = m["out_vectors"]
        dots = (te["target"] @ k.reshape(-1, self.dim).T).view(t_, v_, -1)
        norm = quadratic_form(w_out, m["gram_out"]).clamp_min(0.0).sqrt().clamp_min(1e-12)
        return (w_out * dots).sum(-1) / (norm * te["target"].norm(dim=-1, keepdim=True).clamp_min(1e-12))  # step 5

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        if (path or ("materialise" if self.training else "gram")) == "gram":
            return 4 * 24 * (self.num_heads * num_frames + 3)  # ~24 vectors of HF+3 floats per pair
        return 4 * (12 * dim + 3 * self.num_heads * num_frames)  # ~12 D-vectors: LayerNorms, linear, residual

    # -- for figures and checks ----------------------------------------------------
    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V, F]`` attention weights (mean over heads)."""
        return self.weights_encoded(self.encode_text(text), self.encode_video(video)).mean(2)

    def pool(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return self.pool_encoded(self.encode_text(text), self.encode_video(video))
