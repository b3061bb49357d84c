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
cosine tensor stays under its byte budget (:meth:`pair_bytes`, with ``L <= max_words``), as DRL evaluates in
32 x 32 blocks. A block is one matrix product of its captions' *valid* words (no padded word is multiplied:
:func:`valid_words`) with every frame, ``[R, D] x [D, F v]``; padded frames are folded into that product (an extra
coordinate gives them the cosine :data:`PADDED_COSINE`, below every real one), so step 3 is a plain maximum over the
frames and step 4 an elementwise maximum per word slot (:func:`running_max`), with no masked copy of the cosines.
The multiply-adds are exactly ``sum_t L_t x sum_v F_v x D`` (issue 13's GEMM bound; ``benchmarks/gemm_bound.py``
times the head against a plain matmul of that size). ``score_all``'s ``path`` is ignored (one evaluation path).

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

__all__ = ["WeightedTokenInteraction", "text_tokens", "masked_max", "trim_padding", "valid_words", "running_max"]

#: CLIP's context length: the default upper bound on caption tokens used to size scoring blocks
CLIP_CONTEXT = 77
#: the "cosine" a padded frame gets in the scoring product (through an extra coordinate): below every real cosine
PADDED_COSINE = -4.0


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


def valid_words(
    tokens: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    """The valid words of a block of captions as the rows of one matrix, for one product with every frame.

    ``tokens [t, L, D]``, ``weights [t, L]``, ``mask bool [t, L]`` -> ``(rows [R, D], row_weights [R], row_text
    long [R], counts, order long [t])`` with ``R`` the number of valid words. The captions are taken longest first
    (``order``: block index of the caption in each position; ``row_text`` indexes positions), each caption's valid
    words moved to its first slots (WTI does not depend on the order of the words), and the rows laid out by word
    slot: first every caption's word 0, then every word 1 of the captions that have one, ... ``counts[j]`` (not
    increasing) is how many captions have a word ``j``; they are the first ``counts[j]`` captions, so the rows of
    slot ``j`` line up with a prefix of the captions (:func:`running_max`). Padding is never a row.
    """
    lengths = mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    tokens, weights, mask, lengths = tokens[order], weights[order], mask[order], lengths[order]
    prefix = torch.arange(mask.shape[1], device=mask.device) < lengths[:, None]
    if not torch.equal(mask, prefix):  # valid words after padding: move them to the front, in their order
        idx = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
        tokens = tokens.gather(1, idx[..., None].expand_as(tokens))
        weights, mask = weights.gather(1, idx), prefix
    by_slot = mask.T  # [L, t]
    text_index = torch.arange(len(mask), device=mask.device).expand_as(by_slot)
    counts = by_slot.sum(1).tolist()
    return tokens.transpose(0, 1)[by_slot], weights.T[by_slot], text_index[by_slot], counts, order


def running_max(c: torch.Tensor, counts: list[int], num_texts: int) -> torch.Tensor:
    """Each caption's maximum over its words: ``c [F, R, v]`` with rows laid out by :func:`valid_words` -> ``[F, t, v]``
    (0 for a caption without a valid word). One elementwise maximum per word slot, over the captions that have it
    (a loop over the slots, never over captions). Without gradients the maxima are taken in place, in ``c``."""
    f_, _, v_ = c.shape
    n0 = counts[0] if counts else 0
    best, done, off = c[:, :n0], [], n0
    for n in counts[1:]:
        if n == 0:
            break
        if c.requires_grad:  # out of place; captions whose words have run out are finished
            if n < best.shape[1]:
                done.append(best[:, n:])
                best = best[:, :n]
            best = torch.maximum(best, c[:, off : off + n])
        else:
            torch.maximum(best[:, :n], c[:, off : off + n], out=best[:, :n])
        off += n
    parts = [best, *done[::-1]]
    if n0 < num_texts:
        parts.append(c.new_zeros(f_, num_texts - n0, v_))
    return torch.cat(parts, 1) if len(parts) > 1 else best


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
        rows, row_weights, row_text, counts, order = valid_words(te["tokens"], te["weights"], te["mask"])
        frames, frame_mask = ve["tokens"], ve["mask"]
        padded = not bool(frame_mask.all())
        if padded:  # fold the frame mask into the product: an extra coordinate gives a padded frame PADDED_COSINE
            pad = torch.where(frame_mask, 0.0, PADDED_COSINE).to(frames.dtype)
            frames = torch.cat([frames, pad[..., None]], -1)
            rows = torch.cat([rows, rows.new_ones(len(rows), 1)], -1)
        c = torch.matmul(rows, frames.permute(1, 2, 0))  # step 2: c[f, r, v] = cos(word r, frame f of video v)
        best_frame = c.amax(0)  # step 3: max over frames [R, v] (a padded frame never wins)
        t_, v_ = len(order), len(frame_mask)
        t2v = c.new_zeros(t_, v_).index_add(0, row_text, best_frame * row_weights[:, None])  # step 3
        if padded:  # a video without a valid frame: its "best frame" was padding; that direction contributes 0
            t2v = torch.where(frame_mask.any(1), t2v, torch.zeros((), dtype=t2v.dtype, device=t2v.device))
        best_token = running_max(c, counts, t_)  # step 4: max over each caption's words [F, t, v]
        frame_weights = ve["weights"]  # 0 on padding; and a padded frame's "best token" gets no gradient either
        if padded:
            frame_weights = torch.where(frame_mask, frame_weights, torch.zeros((), dtype=c.dtype, device=c.device))
        v2t = (best_token * frame_weights.T[:, None, :]).sum(0)  # step 4
        scores = (t2v + v2t) / 2  # step 5, in the order of `order`
        return scores.index_select(0, torch.argsort(order))

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        words = self.max_words  # c [L, F] per pair; the best frames and their weighted copy [L]; best tokens [F] x 2
        return 4 * (words * num_frames + 2 * words + 2 * num_frames + 4)

    # -- for figures and checks --------------------------------------------------
    def token_weights(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """The caption token weights ``[T, L]`` and the frame weights ``[V, F]`` of step 1 (0 on padding)."""
        return self.encode_text(text)["weights"], self.encode_video(video)["weights"]


HEADS.register_variant("wti-uniform", "wti", weights=False)
