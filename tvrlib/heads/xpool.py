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
up; the final cosine is a dot product and a norm, again a quadratic form. Per video we keep the three
small Gram matrices (``(HF+1)^2``, ``(HF+2)^2``, ``(HF+3)^2``), folded into one ``[3HF+6, HF]`` matrix of
forms in the weights ``w`` (:meth:`XPool.moment_side`), and ``HF+3`` vectors; per pair, a few ``HF``-vectors. A
block's multiply-adds are its logits (``[v F, D] x [D, t]``), the dot products with the ``HF+3`` vectors
(``[v (HF+3), D] x [D, t]``) and one batched product for all the forms (``v x [3HF+6, HF] x [HF, t]``): issue 13's
GEMM bound, ``F D + (HF+3) D + (3HF+6) HF`` per pair (:meth:`XPool.score_moments`;
``benchmarks/gemm_bound.py``). Dropout makes this inexact, so training (``self.training``) materialises
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
from .gram import gram_matrices
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead

__all__ = ["XPool"]

#: elements of the largest temporary of the moment path's per-chunk arithmetic (2 MiB of float32)
MOMENT_CHUNK = 2**19


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
        """Per-video tensors of the moment path, from ``z [V, H, F, D]`` (eval mode): ``out_vectors [V, HF+3, D]``
        (``LN3(o) = sum_j w_out_j k_j``), and the three Gram matrices folded into ``moments [V, 3(HF+1)+3, HF+1]``
        and ``moment_consts [V, 4]`` (see :meth:`score_moments`)."""
        v_, h_, f_, d = z.shape
        center = lambda x: x - x.mean(-1, keepdim=True)  # noqa: E731  (LayerNorm's centring: linear)
        residual = lambda x: x + F.linear(x, self.linear.weight)  # noqa: E731  (I + W_l) x, bias apart
        y = torch.cat([z.reshape(v_, h_ * f_, d), self.out_proj.bias.expand(v_, 1, d)], 1)  # a = sum_j w'_j y_j
        c = center(y)  # LN2(a) = gamma2 * (sum_j w'_j c_j) / s + beta2
        p = center(residual(self.ln2.weight * c))  # each c_j after gamma2 and the residual linear, centred
        r = center(residual(self.ln2.bias) + self.linear.bias)  # the constant part, centred
        q = torch.cat([p, r.expand(v_, 1, d)], 1)  # LN3's input, centred: sum_j u_j q_j, u = [w'/s, 1]
        k = torch.cat([self.ln3.weight * q, self.ln3.bias.expand(v_, 1, d)], 1)  # out = sum_j x_j k_j
        g_a, g_o, g_out = gram_matrices(c), gram_matrices(q), gram_matrices(k)  # (HF+1)^2, (HF+2)^2, (HF+3)^2
        n = h_ * f_
        n1, n2 = n + 1, n + 2
        # w_o = [w'/s2, 1] and w_out = [w_o/s3, 1] with w' = [w, 1], so every form the path needs is a form in the
        # n weights w (score_moments): three quadratic forms (G_a and the w'-blocks of G_o and G_out), their linear
        # parts (from the 1 of w') and three linear forms, all rows of one [3n + 6, n] matrix; the rest is constant
        quad = [g_a, g_o[:, :n1, :n1], g_out[:, :n1, :n1]]  # x^T A x, x = w'
        lin = [g_o[:, :n1, n1], g_out[:, :n1, n1], g_out[:, :n1, n2]]  # b . x
        rows = [a[:, :n, :n] for a in quad] + [2 * a[:, None, n, :n] for a in quad] + [b[:, None, :n] for b in lin]
        forms = torch.cat(rows, 1)  # [V, 3n + 6, n]
        consts = [a[:, n, n] for a in quad] + [b[:, n] for b in lin]
        consts += [g_o[:, n1, n1], g_out[:, n1, n1], g_out[:, n1, n2], g_out[:, n2, n2]]
        return {"moments": forms, "moment_consts": torch.stack(consts, 1), "out_vectors": k}

    # -- per pair ----------------------------------------------------------------
    def weights_encoded(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """Attention weights ``[t, v, H, F]`` of a block."""
        logits = torch.einsum("the,vfhe->tvhf", te["query"], ve["key"]) / math.sqrt(self.head_dim)  # step 3
        return masked_softmax(logits, ve["mask"][:, None, :])  # step 3

    def video_major_logits(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """The attention logits of a block laid out ``[v, H, F, t]`` (texts innermost): for one head a single
        product ``[v F, e] x [e, t]``, so that the softmax over the frames and everything after it in the moment
        path are vectorised over the texts (a softmax over a last axis of length ``F`` is not)."""
        q, key = te["query"], ve["key"]  # [t, H, e], [v, F, H, e]
        v_, f_, h_, e_ = key.shape
        q = q * (1 / math.sqrt(self.head_dim))
        if h_ == 1:
            return (key.reshape(v_ * f_, e_) @ q[:, 0].T).view(v_, 1, f_, len(q))  # step 3
        return torch.einsum("vfhe,the->vhft", key, q)  # step 3

    @staticmethod
    def frame_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Softmax over the frames (axis 2) of ``logits [v, H, F, t]`` where ``mask [v, F]`` is True; padded frames
        get exactly 0, a video without a valid frame all 0 (as :func:`masked_softmax`) -> ``[v, H F, t]``."""
        v_, h_, f_, t_ = logits.shape
        if not bool(mask.all()):
            logits = logits.masked_fill(~mask[:, None, :, None], float("-inf"))
        top = logits.detach().amax(2, keepdim=True).clamp_min(torch.finfo(logits.dtype).min)  # -inf: no valid frame
        e = torch.exp(logits - top)  # step 3; padded frames: exp(-inf) = 0
        total = e.sum(2, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)  # 0 only without a valid frame
        w = e / total if e.requires_grad else e.div_(total)
        return w.reshape(v_, h_ * f_, t_)

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
        return self.score_moments(te, ve).T

    def score_moments(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """The moment path's scores of a block, ``[v, t]`` (steps 3-5 without a pooled vector).

        With ``n = HF`` attention weights ``w`` and ``x = w' = [w, 1]`` (the 1 carries ``b_o``):
        ``s2^2 = x^T G_a x / D + eps``; ``w_o = [x / s2, 1]``, so ``w_o^T G_o w_o = x^T G_o' x / s2^2 +
        2 g_o . x / s2 + c_o`` (``G_o'`` the ``x``-block of ``G_o``, ``g_o`` its last column, ``c_o`` its corner),
        and ``LN3(o)``'s squared norm likewise one level up; the numerator is ``t . LN3(o) = sum_j w_out_j (t . k_j)``.
        Every form is a form in ``w``: the rows of one per-video matrix (:meth:`moment_side`), so one batched product
        ``[v, 3n + 6, n] x [v, n, t]`` gives them all. The block's two big products (the logits and the dot products
        ``t . k_j``) run once for the whole block; the softmax, the forms and the elementwise rest run on chunks of
        videos whose temporaries stay within a few MiB (:data:`MOMENT_CHUNK`): they are memory-bound, and a
        temporary of tens of MiB costs a fresh allocation and a pass over main memory each.
        """
        m = ve.tensors if "moments" in ve.tensors else self.moment_side(ve["value"])
        forms, consts, k, target = m["moments"], m["moment_consts"], m["out_vectors"], te["target"]
        logits = self.video_major_logits(te, ve)  # [v, H, F, t]: one product for the block
        v_, h_, f_, t_ = logits.shape
        n = h_ * f_
        dots = (k.reshape(-1, self.dim) @ target.T).view(v_, n + 3, t_)  # t . k_j  [v, n + 3, t]: one product
        target_norm = target.norm(dim=-1).clamp_min(1e-12)
        step = max(1, MOMENT_CHUNK // ((3 * n + 6) * t_))
        parts = []
        for j in range(0, v_, step):  # chunks of videos (never of texts)
            c = slice(j, j + step)
            w = self.frame_softmax(logits[c], ve["mask"][c])  # step 3 [v', n, t]
            parts.append(self._moment_scores(w, forms[c], consts[c], dots[c], target_norm))
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def _moment_scores(
        self, w: torch.Tensor, forms: torch.Tensor, consts: torch.Tensor, dots: torch.Tensor, target_norm: torch.Tensor
    ) -> torch.Tensor:
        """Steps 4-5 for a chunk of videos: weights ``w [v, n, t]`` and the chunk's ``forms``, ``consts`` and
        ``dots`` -> scores ``[v, t]``."""
        v_, n, t_ = w.shape
        y = torch.bmm(forms, w)  # [v, 3n + 6, t]: every form's rows times w, one product
        c = consts[..., None]  # [v, 10, 1]
        wy = y[:, : 3 * n].view(v_, 3, n, t_)
        wy = wy * w[:, None] if y.requires_grad else wy.mul_(w[:, None])  # (in place without gradients)
        quad = wy.sum(2) + y[:, 3 * n : 3 * n + 3] + c[:, 0:3]  # [v, 3, t]: x^T A x = w^T A' w + 2 a . w + a_nn
        lin = y[:, 3 * n + 3 :] + c[:, 3:6]  # [v, 3, t]: b . x
        inv2 = torch.rsqrt(quad[:, 0] / self.dim + self.ln2.eps)  # 1 / LN2's std
        q2 = quad[:, 1] * inv2**2 + 2 * lin[:, 0] * inv2 + c[:, 6]  # w_o^T G_o w_o
        inv3 = torch.rsqrt(q2 / self.dim + self.ln3.eps)  # 1 / LN3's std
        out_quad = quad[:, 2] * inv2**2 + 2 * lin[:, 1] * inv2 + c[:, 7]  # w_o^T G_out' w_o
        out_lin = lin[:, 2] * inv2 + c[:, 8]  # w_o . g_out
        q3 = out_quad * inv3**2 + 2 * out_lin * inv3 + c[:, 9]  # |LN3(o)|^2 = w_out^T G_out w_out
        num = (((w * dots[:, :n]).sum(1) + dots[:, n]) * inv2 + dots[:, n + 1]) * inv3 + dots[:, n + 2]  # t . LN3(o)
        return num / (q3.clamp_min(0.0).sqrt().clamp_min(1e-12) * target_norm)  # step 5

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        if (path or ("materialise" if self.training else "gram")) == "gram":
            # the block's logits (HF) and dot products (HF + 3) and its score; the rest is per chunk of videos
            return 4 * (2 * self.num_heads * num_frames + 4)
        return 4 * (12 * dim + 3 * self.num_heads * num_frames)  # ~12 D-vectors: LayerNorms, linear, residual

    # -- for figures and checks ----------------------------------------------------
    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V, F]`` attention weights (mean over heads)."""
        return self.weights_encoded(self.encode_text(text), self.encode_video(video)).mean(2)

    def pool(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return self.pool_encoded(self.encode_text(text), self.encode_video(video))
