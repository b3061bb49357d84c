"""TS2-Net: token shift and token selection over patch tokens, then a frame-level similarity (Liu et al., ECCV 2022).

Paper: TS2-Net (docs/papers.md; implementation facts from method_cards.md card 3, the public ``yuqi657/ts2_net``
code). The paper's equations are not in our sources, so the code marks each line with its step, ``# step N``.
Per video, from the cached CLIP features (the frame CLS embeddings and the projected patch tokens):

1. **token shift**: a fraction of the patch-token channels is taken from the neighbouring frames (``shift=
   "channels"``, the default: the first ``k = floor(D * shift_fraction / 2)`` channels of frame ``f`` come from frame
   ``f - 1``, the next ``k`` from frame ``f + 1``, the rest stay). ``shift="tokens"`` is the reference code's form:
   whole patch tokens move, patch ``p`` from frame ``f - 1`` when ``p % 7 == 0`` and from ``f + 1`` when
   ``p % 7 == 3`` (on ViT-B/32's 49 patches: 14 tokens, 2/7). ``shift="none"``: no shift (an ablation).
   The CLS embedding is never shifted;
2. **token selection** per frame: a score per patch token from a small MLP (``LN, Linear(D, D/2), GELU`` on the
   patch and on the frame's CLS, concatenated, then ``Linear(D, D/2), GELU, Linear(D/2, 1), tanh``), and the top
   ``k`` patches (default 3) are kept in their original order, after the CLS, which is always kept:
   ``1 + k`` tokens per frame;
3. **differentiable top-k** in training: the perturbed maximum (Berthet et al. 2020, the reference's
   ``PerturbedTopK``): the selection indicator is the mean one-hot top-k of ``num_samples`` noisy copies of the
   scores (Gaussian noise, ``sigma``), and its gradient the estimate ``E[one-hot(noisy top-k) * noise] / sigma``.
   In eval mode the selection is the hard top-k, so scoring is deterministic;
4. a temporal transformer over the ``F (1 + k)`` tokens (CLIP4Clip's seqTransf: a position embedding per token
   index, the padding mask, a residual to its input; :class:`~tvrlib.heads.temporal_transformer.TemporalTransformer`
   reused), and its outputs at the CLS slots are the frame vectors ``y_f``;
5. frame-level similarity with the caption's sentence embedding ``t``: ``s_f = cos(t, y_f)``, weights
   ``w = softmax_f(temperature * s_f / ||s||_2)`` over the valid frames (``||s||_2`` over the valid frames,
   temperature 4), and the score ``sum_f w_f s_f`` (training multiplies it by CLIP's temperature).

Where we differ from the reference code, and why:

* **Shift on the cached outputs.** The reference shifts inside the last two ViT blocks (on the attention input);
  the cache holds the encoder's outputs, so the shift acts on the projected patch tokens, before selection.
  The default shifts a fraction of channels (as our issue asks); ``shift="tokens"`` keeps the reference's
  whole-token pattern.
* **No leak across padding.** The reference reshapes to exactly ``max_frames`` frames, so a padded frame's tokens
  flow into its valid neighbours (card 3's pitfall). Here a frame takes a neighbour's channels only when both are
  valid; otherwise (clip boundary, padding, a hole) it keeps its own, as the reference does at the clip boundary.
  Padded frames' patches are zeroed first and the transformer never attends to them.
* **Deterministic evaluation.** The reference adds the noise at evaluation too; we use the hard top-k.
* The ``||s||_2`` of step 5 has an ``eps`` (a pair whose cosines are all 0 gets uniform weights, not NaN).

Cost: per video ``O(F P D^2)`` for the selection MLP, ``O(num_samples F P log k)`` for the perturbed top-k in
training, and ``O(layers (F (1 + k))^2 D)`` for the transformer; per (caption, video) pair only ``F`` cosines, so
:func:`tvrlib.heads.score_all` encodes each video once and scores the ``[T, V]`` grid in blocks (``O(T V F D)``).
``score_all``'s ``path`` is ignored (one evaluation path).

Shapes: ``text.sentence [T, D]``; ``video.frames [V, F, D]``, ``video.mask bool [V, F]``, ``video.patches
[V, F, P, D]`` (required: ``S.videos(split, with_patches=True)``) -> scores ``[T, V]``; :meth:`frame_vectors` ->
``[V, F, D]``; :meth:`kept_tokens` -> ``[V, F, 1 + k, D]``; :meth:`selection` -> ``[V, F, k, P]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import TextInput, VideoInput
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead
from .temporal_transformer import TemporalTransformer

__all__ = ["TokenShiftSelection", "token_shift", "perturbed_topk", "hard_topk", "SHIFT_MODES"]

SHIFT_MODES = ("channels", "tokens", "none")
#: the reference code's whole-token pattern: patch p from frame f-1 when p % 7 == 0, from f+1 when p % 7 == 3
TOKEN_SHIFT_STRIDE, TOKEN_SHIFT_BACK, TOKEN_SHIFT_FORWARD = 7, 0, 3
#: step 5's softmax skips the max shift up to this |temperature| (float32 exp overflows above 88)
MAX_UNSHIFTED_TEMPERATURE = 80.0
#: step 5 runs on sub-blocks of at most this many cosines (``t v F``, 8 MiB in float32): its few elementwise passes
#: then mostly stay in the last-level cache (one thread, 1,000 videos, D = 128: a whole 838-text block took about 2x
#: its GEMM's time, sub-blocks of 174 texts about 1x)
SUB_BLOCK_COSINES = 2**21
LOG2_E = 1 / math.log(2)


def shift_directions(num_patches: int, dim: int, mode: str, fraction: float) -> torch.Tensor:
    """``long [P, D]``: where each (patch, channel) of frame ``f`` comes from: ``-1`` frame ``f - 1``, ``+1`` frame
    ``f + 1``, ``0`` frame ``f`` itself (see the module docstring, step 1)."""
    if mode not in SHIFT_MODES:
        raise ValueError(f"shift must be one of {SHIFT_MODES}, got {mode!r}")
    out = torch.zeros(num_patches, dim, dtype=torch.long)
    if mode == "channels":
        k = int(dim * fraction / 2)
        out[:, :k] = -1
        out[:, k : 2 * k] = 1
    elif mode == "tokens":
        p = torch.arange(num_patches)
        out[p % TOKEN_SHIFT_STRIDE == TOKEN_SHIFT_BACK] = -1
        out[p % TOKEN_SHIFT_STRIDE == TOKEN_SHIFT_FORWARD] = 1
    return out


def token_shift(
    patches: torch.Tensor, mask: torch.Tensor, mode: str = "channels", fraction: float = 0.25
) -> torch.Tensor:
    """Step 1: ``patches [V, F, P, D]`` with channels (or whole tokens) taken from the neighbouring frames.

    Frame ``f`` takes a value from frame ``f - 1`` (``f + 1``) only when both frames are valid (``mask [V, F]``);
    otherwise it keeps its own, so nothing crosses a padded frame, a hole or the clip boundary.
    """
    v, f, p, d = patches.shape
    direction = shift_directions(p, d, mode, fraction).to(patches.device)  # [P, D]
    if f < 2 or not bool((direction != 0).any()):
        return patches
    zero = torch.zeros_like(patches[:, :1])
    prev = torch.cat([zero, patches[:, :-1]], 1)  # prev[:, f] = patches[:, f - 1]
    nxt = torch.cat([patches[:, 1:], zero], 1)  # nxt[:, f] = patches[:, f + 1]
    no = torch.zeros_like(mask[:, :1])
    prev_ok = (mask & torch.cat([no, mask[:, :-1]], 1))[:, :, None, None]  # both f - 1 and f valid
    next_ok = (mask & torch.cat([mask[:, 1:], no], 1))[:, :, None, None]  # both f + 1 and f valid
    out = torch.where((direction == -1) & prev_ok, prev, patches)  # step 1, from f - 1
    return torch.where((direction == 1) & next_ok, nxt, out)  # step 1, from f + 1


class _PerturbedTopK(torch.autograd.Function):
    """Step 3: the perturbed-maximum top-k indicator ``[N, k, P]`` and its gradient estimate."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, k: int, num_samples: int, sigma: float):
        n, p = scores.shape
        noise = torch.randn(n, num_samples, p, dtype=scores.dtype, device=scores.device)
        idx = (scores[:, None, :] + sigma * noise).topk(k, dim=-1).indices.sort(dim=-1).values  # [N, S, k]
        ones = torch.ones(idx.shape, dtype=scores.dtype, device=scores.device)
        indicator = scores.new_zeros(n, k, p).scatter_add_(-1, idx.transpose(1, 2), ones.transpose(1, 2))
        ctx.save_for_backward(noise, idx)
        ctx.sigma = sigma
        return indicator / num_samples  # the mean one-hot over the noisy samples

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        noise, idx = ctx.saved_tensors
        n, s, k = idx.shape
        # d indicator[j, q] / d scores[m] ~ E[one_hot(idx)[j, q] * noise[m]] / sigma (perturbed maximum)
        picked = grad[:, None].expand(n, s, k, grad.shape[-1]).gather(-1, idx[..., None]).squeeze(-1)  # [N, S, k]
        g = torch.einsum("ns,nsm->nm", picked.sum(-1), noise) / (s * ctx.sigma)
        return g, None, None, None


def perturbed_topk(scores: torch.Tensor, k: int, num_samples: int = 500, sigma: float = 0.05) -> torch.Tensor:
    """Soft top-k indicator ``[N, k, P]`` of ``scores [N, P]`` (step 3; uses torch's global random generator)."""
    return _PerturbedTopK.apply(scores, k, num_samples, sigma)


def hard_topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """One-hot indicator ``[N, k, P]`` of the top ``k`` of ``scores [N, P]``, in their original (index) order."""
    idx = scores.topk(k, dim=-1).indices.sort(dim=-1).values
    return F.one_hot(idx, scores.shape[-1]).to(scores.dtype)


class TokenScorer(nn.Module):
    """Step 2's scorer: one score in ``(-1, 1)`` per patch token, from the token and its frame's CLS (card 3)."""

    def __init__(self, dim: int):
        super().__init__()
        half = max(1, dim // 2)
        self.norm = nn.LayerNorm(dim)
        self.inp = nn.Sequential(nn.Linear(dim, half, bias=False), nn.GELU())
        self.out = nn.Sequential(
            nn.Linear(2 * half, half, bias=False), nn.GELU(), nn.Linear(half, 1, bias=False), nn.Tanh()
        )

    def forward(self, cls: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """``cls [V, F, D]``, ``patches [V, F, P, D]`` -> scores ``[V, F, P]``."""
        x = self.inp(self.norm(patches))  # step 2: LN, Linear(D, D/2), GELU per patch
        c = self.inp(self.norm(cls))[:, :, None].expand_as(x)  # ... and on the frame's CLS
        return self.out(torch.cat([x, c], -1)).squeeze(-1)  # step 2: Linear, GELU, Linear, tanh


@HEADS.register("ts2net")
class TokenShiftSelection(EncodedInteractionHead):
    """TS2-Net (card 3): token shift, token selection, a transformer over the kept tokens, frame-level similarity.

    ``dim``: ``D``; ``layers``, ``heads``, ``init_from``: the temporal transformer's (CLIP4Clip's seqTransf, 4
    layers); ``k``: patches kept per frame besides the CLS (3); ``shift``: ``"channels"`` / ``"tokens"`` /
    ``"none"`` with ``shift_fraction`` (channels mode: the fraction of channels moved, half from each neighbour);
    ``num_samples``, ``sigma``: the perturbed top-k's (500, 0.05); ``temperature``: step 5's (4);
    ``max_tokens``: rows of the token position table (``F (1 + k)`` must fit; 77 as CLIP's).
    """

    block_by_memory = True  # score_all keeps its blocks within the memory budget (scoring.py)

    def __init__(
        self,
        dim: int = 512,
        layers: int = 4,
        heads: int | None = None,
        k: int = 3,
        shift: str = "channels",
        shift_fraction: float = 0.25,
        num_samples: int = 500,
        sigma: float = 0.05,
        temperature: float = 4.0,
        max_tokens: int = 77,
        init_from: nn.Module | None = None,
    ):
        super().__init__()
        if shift not in SHIFT_MODES:
            raise ValueError(f"ts2net: shift must be one of {SHIFT_MODES}, got {shift!r}")
        if not 0 <= shift_fraction <= 1:
            raise ValueError(f"ts2net: shift_fraction must be in [0, 1], got {shift_fraction!r}")
        if k < 0:
            raise ValueError(f"ts2net: k (patches kept per frame) must be >= 0, got {k!r}")
        self.dim, self.k, self.shift, self.shift_fraction = dim, k, shift, shift_fraction
        self.num_samples, self.sigma, self.temperature = num_samples, sigma, temperature
        self.scorer = TokenScorer(dim)  # step 2
        self.temporal = TemporalTransformer(
            dim, layers=layers, heads=heads, max_frames=max_tokens, init_from=init_from
        )  # step 4

    def extra_repr(self) -> str:
        return f"dim={self.dim}, k={self.k}, shift={self.shift!r}, shift_fraction={self.shift_fraction}"

    # -- the video side ----------------------------------------------------------
    def _patches(self, video: VideoInput) -> torch.Tensor:
        if video.patches is None:
            raise ValueError(
                "ts2net selects patch tokens, but video.patches is None: load the videos with their patch tokens, "
                "S.videos(split, with_patches=True) (or tvrlib.features.encode_videos(..., with_patches=True))"
            )
        v, f, d = video.frames.shape
        if video.patches.ndim != 4 or video.patches.shape[:2] != (v, f) or video.patches.shape[3] != d:
            raise ValueError(
                f"video.patches must be [V, F, P, D] = [{v}, {f}, P, {d}], got {tuple(video.patches.shape)}"
            )
        patches = video.patches.to(video.frames.dtype)  # the feature cache stores patch tokens as float16
        zero = torch.zeros((), dtype=patches.dtype, device=patches.device)
        return torch.where(video.mask[:, :, None, None], patches, zero)  # padded frames' patches: exactly 0

    def selection(self, video: VideoInput) -> torch.Tensor:
        """The selection indicator ``[V, F, k, P]`` of steps 2-3 (one-hot in eval mode; soft in training)."""
        return self._select(masked_frames(video.frames, video.mask), self._shifted(video))[1]

    def _shifted(self, video: VideoInput) -> torch.Tensor:
        return token_shift(self._patches(video), video.mask, self.shift, self.shift_fraction)  # step 1

    def _select(self, cls: torch.Tensor, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v, f, p, d = patches.shape
        k = min(self.k, p)
        scores = self.scorer(cls, patches).reshape(v * f, p)  # step 2
        if k == 0:
            return patches[:, :, :0], scores.new_zeros(v, f, 0, p)
        if self.training:
            indicator = perturbed_topk(scores, k, self.num_samples, self.sigma)  # step 3
        else:
            indicator = hard_topk(scores, k)  # step 3, eval: deterministic
        selected = torch.einsum("nkp,npd->nkd", indicator, patches.reshape(v * f, p, d))  # the kept patches
        return selected.view(v, f, k, d), indicator.view(v, f, k, p)

    def kept_tokens(self, video: VideoInput) -> torch.Tensor:
        """Steps 1-3: ``[V, F, 1 + k, D]``, per frame its CLS embedding (never shifted, always kept) and the ``k``
        selected (shifted) patch tokens in their original order (``k = min(k, P)``; padded frames 0)."""
        cls = masked_frames(video.frames, video.mask)
        selected, _ = self._select(cls, self._shifted(video))  # steps 1-3
        return torch.cat([cls[:, :, None], selected], 2)  # [CLS, k patches] per frame

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        """Steps 1-4: the transformer's outputs at the CLS slots, ``[V, F, D]`` (padded frames 0)."""
        kept = self.kept_tokens(video)  # steps 1-3
        v, f, n, d = kept.shape
        if f * n > self.temporal.max_frames:
            raise ValueError(
                f"ts2net: {f} frames x {n} kept tokens = {f * n} tokens, but the token position table has "
                f"{self.temporal.max_frames} rows; build the head with max_tokens>={f * n} (or a smaller k)"
            )
        token_mask = video.mask[:, :, None].expand(v, f, n).reshape(v, f * n)
        out = self.temporal.temporal(kept.reshape(v, f * n, d), token_mask)  # step 4: positions, padding, residual
        return out.view(v, f, n, d)[:, :, 0]  # step 4: the CLS slots

    # -- per side ----------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        return Encoded({"unit": F.normalize(text.sentence, dim=-1)})

    def encode_video(self, video: VideoInput) -> Encoded:
        return Encoded({"frames": F.normalize(self.frame_vectors(video), dim=-1), "mask": video.mask})

    # -- per pair ----------------------------------------------------------------
    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        v, f, _ = ve["frames"].shape
        rows = max(1, SUB_BLOCK_COSINES // max(1, v * f))  # texts per sub-block
        unit, frames, mask = te["unit"], ve["frames"], ve["mask"]
        if len(te) <= rows:
            return self._frame_similarity(unit, frames, mask)
        return torch.cat([self._frame_similarity(unit[i : i + rows], frames, mask) for i in range(0, len(te), rows)])

    def _frame_similarity(self, unit: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Step 5 for texts ``unit [t, D]`` and ``frames [v, F, D]`` (unit), ``mask [v, F]`` -> ``[t, v]``.

        Frame-major: the cosines are ``s [F, t, v]`` (one batched GEMM reading ``frames`` in place), so every
        reduction over the frames adds ``F`` contiguous ``[t, v]`` slabs (a reduction over a last axis of 12 is
        several times slower), and the softmax is ``2^(z log2 e)`` (torch's exp2 is about 4x faster than its exp)."""
        v, f, d = frames.shape
        s = torch.bmm(unit.expand(f, *unit.shape), frames.transpose(0, 1).transpose(1, 2))  # step 5: [F, t, v]
        by_frame = mask.T[:, None, :]  # [F, 1, v]
        padded = not bool(mask.all())
        zero = torch.zeros((), dtype=s.dtype, device=s.device)
        if padded:
            s = torch.where(by_frame, s, zero)
        norm = (s * s).sum(0).clamp_min(1e-12).sqrt()  # ||s||_2 over the valid frames (>= 1e-6), [t, v]
        if abs(self.temperature) > MAX_UNSHIFTED_TEMPERATURE:  # exp could overflow: the max-shifted softmax
            s = s.permute(1, 2, 0)  # [t, v, F]
            return (masked_softmax(self.temperature * s / norm[..., None], mask) * s).sum(-1)  # step 5
        # step 5: w_f = softmax_f(temperature s_f / ||s||) without the max shift: |s_f| <= ||s||, so the exponent is
        # within +-|temperature| (no overflow); sum_f w_f s_f = sum_f e_f s_f / sum_f e_f
        e = torch.mul(s, (self.temperature * LOG2_E) / norm).exp2_()  # e_f = exp(temperature s_f / ||s||)
        if padded:
            e = torch.where(by_frame, e, zero)  # padded frames: weight 0
        den = e.sum(0)  # 0 only for a video without a valid frame (then the numerator is 0 too: score 0)
        num = (e * s if e.requires_grad else e.mul_(s)).sum(0)  # in place unless autograd keeps e
        return num / den.clamp_min(torch.finfo(den.dtype).tiny)

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        return 4 * (3 * num_frames + 4)  # cosines, exp (and the product inside the sum): F-vectors; a few floats


HEADS.register_variant("ts2net-tokens", "ts2net", shift="tokens")
HEADS.register_variant("ts2net-noshift", "ts2net", shift="none")
