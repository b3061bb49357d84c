"""WTI: weighted token-wise interaction between caption tokens and frames (DRL, Wang et al. 2022).

Paper: DRL, "Disentangled representation learning for text-video retrieval" (docs/papers.md; implementation facts
from method_cards.md card 4, the public ``foolwood/DRL`` code with ``wti_arch=2``). The paper's equations are not
in our sources, so the code marks each line with its step, ``# step N``:

1. token weights: ``w_t = softmax_l(MLP_t(t_l))`` over the caption's valid tokens and ``w_v = softmax_f(MLP_v(v_f))``
   over the video's valid frames, each ``MLP = Linear(D, D), ReLU, Linear(D, 1)`` (separate weights per side);
2. ``c_lf = cos(t_l, v_f)`` for every caption token ``l`` and frame ``f`` of a (caption, video) pair;
3. text-to-video: ``t2v = sum_l w_t[l] * max_f c_lf`` (each token's best frame);
4. video-to-text: ``v2t = sum_f w_v[f] * max_l c_lf`` (each frame's best token);
5. ``s = (t2v + v2t) / 2``, a cosine-like score (training multiplies it by CLIP's temperature).

Variant ``wti-uniform`` (``weights=False``): DRL's plain TI, the token weights replaced by a masked mean (the same
as step 1 with every logit equal).

Our choices (where DRL differs or is silent):

* **Padding comes from the masks only.** Padded tokens and frames get weight 0, and the maxima of steps 3-4 run
  over the valid entries only. DRL multiplies ``c`` by the masks, so a padded 0 wins the max whenever every valid
  cosine is negative (card 4's pitfall); here it cannot. A video without a valid frame (a caption without a valid
  token) contributes 0 to that direction.
* **Frame tokens are the cached CLIP frame embeddings.** DRL feeds frames after its seqTransf module; a temporal
  module can be put in front later (notebook 07), this head keeps the interaction itself.
* **Without word tokens** (``text.words is None``) the caption's sentence embedding is its only token (``L = 1``),
  so the head still scores sentence-only inputs; load word tokens with ``S.texts(split, with_words=True)`` to get
  DRL's token-wise text side.

Cost: per (caption, video) pair ``L x F`` cosines, so ``O(T V L F D)`` time; :func:`tvrlib.heads.score_all`
encodes each side once (unit tokens and weights, ``O((T L + V F) D^2)``) and scores the grid in blocks whose
``[t, v, L, F]`` cosine tensor stays under its byte budget (:meth:`pair_bytes`, with ``L <= max_words``), as DRL
evaluates in 32 x 32 blocks. ``score_all``'s ``path`` is ignored (one evaluation path).

Shapes: ``text.words [T, L, D]`` + ``text.word_mask bool [T, L]`` (or ``text.sentence [T, D]`` alone),
``video.frames [V, F, D]`` + ``video.mask bool [V, F]`` -> scores ``[T, V]``; :meth:`token_weights` ->
``([T, L], [V, F])``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import TextInput, VideoInput
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead

__all__ = ["WeightedTokenInteraction", "text_tokens", "masked_max", "trim_padding"]

#: CLIP's context length: the default upper bound on caption tokens used to size scoring blocks
CLIP_CONTEXT = 77


def text_tokens(text: TextInput) -> tuple[torch.Tensor, torch.Tensor]:
    """``(words [T, L, D], word_mask bool [T, L])`` with padded tokens set to exactly 0, in the sentence's dtype
    (the feature cache stores word tokens as float16; the heads compute in the sentence's precision).

    Without word tokens (``text.words is None``) the sentence embedding is the only token (``L = 1``). Word tokens
    without a mask are an error: padding must come from an explicit mask, never from zeros.
    """
    if text.words is None:
        return text.sentence[:, None, :], torch.ones(len(text), 1, dtype=torch.bool, device=text.sentence.device)
    if text.word_mask is None:
        raise ValueError(
            "text.words is given without text.word_mask; pass the mask the encoder returns "
            "(S.texts(split, with_words=True) does)"
        )
    words, mask = text.words.to(text.sentence.dtype), text.word_mask.to(torch.bool)
    if mask.shape != words.shape[:2]:
        raise ValueError(f"word_mask must be [T, L] = {tuple(words.shape[:2])}, got {tuple(mask.shape)}")
    return torch.where(mask[..., None], words, torch.zeros((), dtype=words.dtype, device=words.device)), mask


def trim_padding(side: Encoded, mask: str, keys: tuple[str, ...]) -> Encoded:
    """``side`` without the trailing token columns that are padding in every row (``side[mask]`` False there),
    cut from the mask and from each tensor in ``keys`` (axis 1). Token tensors are padded to the longest caption of
    a whole split; a block of short captions need not pay for that. Nothing valid is dropped, so scores are equal."""
    valid = side[mask].any(0).nonzero()
    n = int(valid.max()) + 1 if len(valid) else 1
    if n == side[mask].shape[1]:
        return side
    return Encoded({**side.tensors, **{k: side[k][:, :n] for k in (mask, *keys)}})


def masked_max(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """The maximum of ``x`` over ``dim`` among the entries where ``mask`` (broadcast to ``x``) is True; 0 where
    there is none. Padded entries never win, whatever their value."""
    best = x.masked_fill(~mask, float("-inf")).amax(dim)
    return torch.where(mask.any(dim), best, torch.zeros((), dtype=x.dtype, device=x.device))


def weight_mlp(dim: int) -> nn.Sequential:
    """DRL's token-weight branch (``wti_arch=2``): ``Linear(D, D), ReLU, Linear(D, 1)`` -> one logit per token."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))


@HEADS.register("wti")
class WeightedTokenInteraction(EncodedInteractionHead):
    """DRL's weighted token-wise interaction (card 4); ``score -> [T, V]``, cosine-like.

    ``dim``: ``D``; ``weights``: learned token weights (WTI) or a masked mean (TI, variant ``wti-uniform``);
    ``max_words``: an upper bound on ``L``, used only to size the blocks of :func:`~tvrlib.heads.score_all`.
    """

    block_by_memory = True  # score_all keeps its blocks within the memory budget (scoring.py)

    def __init__(self, dim: int = 512, weights: bool = True, max_words: int = CLIP_CONTEXT):
        super().__init__()
        self.dim, self.max_words = dim, max_words
        self.text_weight = weight_mlp(dim) if weights else None  # step 1, caption side
        self.video_weight = weight_mlp(dim) if weights else None  # step 1, video side

    def extra_repr(self) -> str:
        return f"dim={self.dim}, weights={self.text_weight is not None}"

    def _weights(self, mlp: nn.Module | None, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = tokens.new_zeros(tokens.shape[:-1]) if mlp is None else mlp(tokens).squeeze(-1)
        return masked_softmax(logits, mask)  # step 1: padded tokens get weight 0; equal logits: a masked mean

    # -- per side ----------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        words, mask = text_tokens(text)
        weights = self._weights(self.text_weight, words, mask)  # step 1
        return Encoded({"tokens": F.normalize(words, dim=-1), "weights": weights, "mask": mask})

    def encode_video(self, video: VideoInput) -> Encoded:
        frames = masked_frames(video.frames, video.mask)
        weights = self._weights(self.video_weight, frames, video.mask)  # step 1
        return Encoded({"tokens": F.normalize(frames, dim=-1), "weights": weights, "mask": video.mask})

    # -- per pair ----------------------------------------------------------------
    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        te = trim_padding(te, "mask", ("tokens", "weights"))
        c = torch.einsum("tld,vfd->tvlf", te["tokens"], ve["tokens"])  # step 2: c[t, v, l, f]
        best_frame = masked_max(c, ve["mask"][None, :, None, :], dim=-1)  # step 3: max over valid frames [t, v, L]
        best_token = masked_max(c, te["mask"][:, None, :, None], dim=-2)  # step 4: max over valid tokens [t, v, F]
        t2v = torch.einsum("tvl,tl->tv", best_frame, te["weights"])  # step 3
        v2t = torch.einsum("tvf,vf->tv", best_token, ve["weights"])  # step 4
        return (t2v + v2t) / 2  # step 5

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        return 4 * 4 * self.max_words * num_frames  # c, its two masked copies, the maxima: a few [L, F] per pair

    # -- for figures and checks --------------------------------------------------
    def token_weights(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """The caption token weights ``[T, L]`` and the frame weights ``[V, F]`` of step 1 (0 on padding)."""
        return self.encode_text(text)["weights"], self.encode_video(video)["weights"]


HEADS.register_variant("wti-uniform", "wti", weights=False)
