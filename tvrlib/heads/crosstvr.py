"""CrossTVR's stage-2 re-ranker: decoupled spatial and temporal text-video cross attention with a matching head.

Paper: CrossTVR, "Fine-grained Text-Video Retrieval with Frozen Image Encoders" (docs/papers.md;
``../shared/seeds/003_7fc3eb177733b376.txt`` §3.1-3.4 and the appendix). Its building blocks come from method_cards.md:
card 5a (BLIP-2's Q-Former: learnable queries, self-attention shared with the text, cross attention from the
query positions only, an ITM head averaged over the queries), card 3 (TS2-Net's token selector) and card 5b (ALBEF's
matching loss on hard negatives, trained by :func:`tvrlib.reranking.train_reranker`). Our copy of the paper prints
the labels of eqs. (1)-(7) but not the formulas, so the code marks each line with its step, ``# step N``.

For one (caption, video) pair, on the cached features of the frozen CLIP encoder (frame CLS embeddings and projected
patch tokens; word tokens of the caption):

1. **tokens**: the caption's tokens ``W [L, D]`` (``LayerNorm``; without word tokens the sentence embedding is the
   only token, ``L = 1``) and each frame's visual tokens ``X_f = [CLS_f; patch_f,1..P] [1 + P, D]`` (``LayerNorm``:
   BLIP-2's ``ln_vision`` on the frozen features). Padded words and frames are set to exactly 0 first;
2. **spatial text attention** (eqs. 1-2): ``[Q; W]`` (``Nq`` learnable queries ``Q``, initialised N(0, 0.02) as in
   BLIP-2, and the caption's tokens) pass through the query transformer with **each frame's tokens separately** as
   the cross-attention memory: per layer, self-attention over ``[Q; W]`` (padded words are no keys), cross attention
   from the query positions to ``X_f``, a feed-forward block;
3. **spatially enhanced queries** (eq. 3): the first ``Nq`` outputs of the last layer, averaged over the valid frames:
   ``Q_s [Nq, D]``;
4. **token selector** (eqs. 4-5): an MLP (``LayerNorm, Linear(D, D/2), GELU, Linear(D/2, 1)``) and a softmax over the
   frame's ``1 + P`` tokens score each token; the top ``M`` (default 4) of each frame are kept, in their original
   order (``M >= 1 + P``: every token, unchanged);
5. **temporal text attention** (eq. 6): ``[Q_s; W]`` pass through the query transformer (**the same module** as
   step 2 unless ``shared=False``) with the flattened selected tokens of all valid frames, ``[F M, D]`` (plus a
   learned frame-position embedding, zero at initialisation), as the memory;
6. **matching head**: ``Linear(D, 2)`` on each of the first ``Nq`` outputs, averaged over the queries (BLIP-2's ITM
   head, card 5a): the 2-way logits ``(no match, match)`` of eq. (7). The pair's **matching score** is the log-odds
   ``logit_match - logit_no_match`` (:meth:`CrossTVR.match_scores`, batched; :meth:`~CrossTVR.score_pairs`, one
   pair per pass; ``softmax`` of the logits is eq. 7's ``p``).

Variants (seed 003's ablations; docs/papers.md §5 lists the table rows):

* ``crosstvr``: steps 1-6, spatial and temporal modules share every parameter (``temporal_module`` *is*
  ``spatial_module``, one set of weights; Table 9 "Sharing");
* ``crosstvr-unshared`` (``shared=False``): the temporal module is a second query transformer, a copy of the spatial
  one at initialisation (as both start from BLIP-2 in the paper), so before training it scores exactly as
  ``crosstvr``; the two drift apart only in training (Table 9 "Unsharing");
* ``crosstvr-spatial`` (``temporal=False``): steps 1-3 and 6, the matching head reads ``Q_s`` (Table 6 + spatial);
* ``crosstvr-temporal`` (``spatial=False``): steps 1, 4-6 with the learnable queries ``Q`` in place of ``Q_s``
  (Table 6 + temporal).

``crosstvr`` and ``crosstvr-unshared`` have the same ``state_dict`` keys (the shared module is listed under both
names), so weights move between them. The other two build only the modules they use: ``crosstvr-spatial`` has no
selector, temporal module or frame positions; ``crosstvr-temporal`` has no spatial module.

Our readings where the paper is silent:

* **Sizes.** The paper initialises the cross attention from BLIP-2's Q-Former (32 queries, 12 BERT-base layers of
  width 768 and 12 heads, cross attention in every other layer). We train from scratch on small features, so the
  defaults are small: ``queries=8``, ``layers=2`` (each with cross attention), ``heads=max(1, D // 64)`` (CLIP's
  64-wide heads), a 4x feed-forward. Pre-LN blocks (trained from scratch), one feed-forward for query and text
  positions (BLIP-2 has a separate one for the queries).
* **The selector's tokens.** "Select the most informative tokens for each frame" among the frame's ``1 + P`` tokens
  (its CLS and its patches, all ranked alike; TS2-Net always keeps the CLS and adds ``k`` patches, card 3).
* **Training the selector.** Top-M is not differentiable. ``selection="straight-through"`` (default): the kept
  tokens are multiplied by ``1 + s - stop_gradient(s)`` (``s`` its softmax score), which is exactly 1 in the forward
  pass (identical in training and evaluation) and passes ``d loss / d s = <d loss / d token, token>`` to the
  scorer. ``selection="perturbed"``: TS2-Net's perturbed top-k (card 3; :func:`tvrlib.heads.ts2net.perturbed_topk`,
  500 samples, sigma 0.05 on the MLP's logits) in training, the hard top-M in evaluation.
* **Temporal input.** The temporal pass takes ``[Q_s; W]`` (the same input form as the spatial pass, so that one
  module serves both) and the frame-position embedding tells it which frame a selected token came from.
* **Matching score** = log-odds of the 2-way ITM head. The re-ranking score (stage 1 + matching,
  :func:`tvrlib.reranking.rerank`) can use it or the probability ``p`` (the paper "adds" a cosine and "the"
  matching score without saying which; BLIP-2 adds the ITM logit, card 5a).
* **No logit scale.** The scores are the head's own logits (``uses_logit_scale = False``, as ``tightTransf``).

Padding comes from the masks only: padded words are no keys of the self-attention, padded frames are left out of
step 3's mean and of step 5's memory, and padded slots are zeroed before anything reads them, so NaN there changes
nothing. A video needs at least one valid frame.

Cost per (caption, video) pair: the spatial pass means ``F`` copies of ``[Q; W]``, i.e. ``F (Nq + L)`` token rows
per layer through self-attention and the feed-forward (about ``(4 + 2 mlp_ratio) D^2`` multiply-adds each) plus
``F Nq (1 + P)`` cross-attention scores; the temporal pass one copy with ``F M`` memory tokens. Most of the copies
are the same computation: the first layer's input is identical for every frame and the text positions never look at
the frame, and only the query positions of the last layer are read. So the spatial pass
(:meth:`QueryTransformer.forward_per_memory`) runs the caption's ``Nq + L`` rows once and only the ``Nq`` query rows
per frame, for one or two layers: about ``(Nq + L) + 2 F Nq`` rows instead of ``2 F (Nq + L)`` for two layers
(measured: a training step of 96 pairs 2.8x faster, scoring 2.4x, docs/performance.md). Still a cross-encoder:
``T V`` passes for a full grid, which is why it only re-scores stage 1's top K (:func:`tvrlib.reranking.rerank`;
measured costs in docs/papers.md §5). :meth:`score` evaluates a grid in chunks of ``pair_chunk`` pairs;
:meth:`pair_bytes` estimates one pair's working memory for :func:`tvrlib.heads.score_all`.

Shapes: ``text.sentence [N, D]``, ``text.words [N, L, D]`` + ``text.word_mask bool [N, L]`` (optional),
``video.frames [N, F, D]`` + ``video.mask bool [N, F]``, ``video.patches [N, F, P, D]`` (required:
``S.videos(split, with_patches=True)``; float16 is fine) -> :meth:`match_scores` / :meth:`score_pairs` ``[N]``,
:meth:`itm_logits` ``[N, 2]``; :meth:`score` ``[T, V]``; :meth:`spatial_attention` ``[N, F, Nq, 1 + P]``;
:meth:`selection_scores` ``[V, F, 1 + P]``; :meth:`selected_indices` ``[V, F, M]``.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import RetrievalHead, TextInput, VideoInput
from .mean_pooling import masked_frames
from .temporal_transformer import default_heads
from .ts2net import perturbed_topk
from .wti import text_tokens

__all__ = ["CrossTVR", "QueryTransformer", "TokenSelector", "SELECTIONS", "DEFAULT_WORDS", "DEFAULT_PATCHES"]

SELECTIONS = ("straight-through", "perturbed")
#: the caption length and patches per frame that :meth:`CrossTVR.pair_bytes` assumes (CLIP's 32-token captions in
#: the paper, ViT-B/32's 49 patches); pass ``words=`` / ``patches=`` for other sizes
DEFAULT_WORDS, DEFAULT_PATCHES = 32, 49


class MaskedAttention(nn.Module):
    """Multi-head attention of ``x [B, S, D]`` over ``memory [B, M, D]`` with key mask ``bool [B, M]``.

    Written out (not ``nn.MultiheadAttention``) so that the weights can be returned and a key with mask False gets
    weight exactly 0 (:func:`masked_softmax`); a row without any valid key gets all-zero weights, never NaN.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"crosstvr: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``memory [B, M, D]``: two ``[B, H, M, Dh]``."""
        b, m, d = memory.shape
        k, v = self.kv(memory).view(b, m, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return k, v

    def attend(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, S, D]`` attending to projected keys / values ``[B, H, M, Dh]`` with key mask ``bool [B, M]``."""
        b, s, d = x.shape
        q = self.q(x).view(b, s, self.heads, d // self.heads).transpose(1, 2)  # [B, H, S, Dh]
        logits = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)  # [B, H, S, M]
        w = masked_softmax(logits, key_mask[:, None, None, :])
        out = self.out((w @ v).transpose(1, 2).reshape(b, s, d))
        return out, (w.mean(1) if weights else None)  # weights averaged over the heads: [B, S, M]

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor, weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.attend(x, *self.project_kv(memory), memory_mask, weights)


class QueryLayer(nn.Module):
    """One Q-Former-style layer (card 5a): self-attention over ``[queries; text]``, cross attention from the query
    positions only to the memory, a feed-forward block; pre-LN, residual around each."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm_self, self.self_attention = nn.LayerNorm(dim), MaskedAttention(dim, heads)
        self.norm_cross, self.cross_attention = nn.LayerNorm(dim), MaskedAttention(dim, heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(dropout)

    def self_attend(self, x, x_mask):
        """``x + self-attention(LN(x))`` over ``[Q; W]`` (padded words are no keys)."""
        h = self.norm_self(x)
        return x + self.dropout(self.self_attention(h, h, x_mask)[0])

    def cross(self, q, memory, memory_mask, weights: bool = False):
        """The query positions' cross attention to the memory, with its residual."""
        c, w = self.cross_attention(self.norm_cross(q), memory, memory_mask, weights)
        return q + self.dropout(c), w

    def feed(self, x):
        """The feed-forward block with its residual (position-wise: rows can be fed in any grouping)."""
        return x + self.dropout(self.ffn(self.norm_ffn(x)))

    def forward(self, x, x_mask, n_query, memory, memory_mask, weights: bool = False):
        x = self.self_attend(x, x_mask)  # [Q; W] self-attention, padded words no keys
        q, w = self.cross(x[:, :n_query], memory, memory_mask, weights)  # only the queries look
        return self.feed(torch.cat([q, x[:, n_query:]], 1)), w


class QueryTransformer(nn.Module):
    """``layers`` :class:`QueryLayer` s: ``x [B, Nq + L, D]`` (queries first) with ``x_mask bool [B, Nq + L]``, read
    against ``memory [B, M, D]`` with ``memory_mask bool [B, M]`` -> ``[B, Nq + L, D]`` (and, with ``weights=True``,
    the last layer's cross-attention weights ``[B, Nq, M]``, averaged over heads)."""

    def __init__(self, dim: int, layers: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList([QueryLayer(dim, heads, mlp_ratio, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, x_mask, n_query, memory, memory_mask, weights: bool = False):
        w = None
        for layer in self.layers:
            x, w = layer(x, x_mask, n_query, memory, memory_mask, weights)
        return self.norm(x), w

    def forward_per_memory(self, x, x_mask, n_query, memory, memory_mask, weights: bool = False):
        """The query outputs of :meth:`forward` run on **one copy of** ``x [N, S, D]`` **per memory** ``memory
        [N, F, M, D]`` (``memory_mask bool [N, F, M]``): ``[N, F, Nq, D]`` (after the final norm) and, with
        ``weights``, the last layer's cross-attention weights ``[N F, Nq, M]``. The spatial pass (one memory per
        frame) in far fewer operations, equal up to float rounding:

        * the first layer's input is the same for every memory, so its self-attention runs once per caption, not
          once per frame; the text positions never look at the memory, so they stay frame-independent through the
          first layer's cross attention and feed-forward;
        * only the query positions of the last layer are read, so there the text positions only give keys and
          values (projected once per caption when they are still frame-independent), and the final norm and the
          last feed-forward see the query positions only;
        * layers in between (``layers >= 3``) run on per-frame copies, as :meth:`forward`.

        With ``dropout > 0`` in training, the frame-independent positions share one dropout mask across frames."""
        n, f, m, d = memory.shape
        rep = lambda a: a.repeat_interleave(f, 0)  # noqa: E731  [N, ...] -> [N F, ...], frame-major per caption
        mem, mem_mask = memory.reshape(n * f, m, d), memory_mask.reshape(n * f, m)
        first, *rest = self.layers
        h = first.self_attend(x, x_mask)  # once per caption: the same input for every frame
        q, w = first.cross(rep(h[:, :n_query]), mem, mem_mask, weights)
        q = first.feed(q)
        if not rest:
            return self.norm(q).view(n, f, n_query, d), w
        text = first.feed(h[:, n_query:])  # [N, L, D]: frame-independent through the first layer
        per_frame = False
        for layer in rest[:-1]:  # middle layers: the text positions depend on the frame from here on
            full = layer(torch.cat([q, text if per_frame else rep(text)], 1), rep(x_mask), n_query, mem, mem_mask)
            q, text, per_frame = full[0][:, :n_query], full[0][:, n_query:], True
        last = rest[-1]
        hq, ht = last.norm_self(q), last.norm_self(text)
        kq, vq = last.self_attention.project_kv(hq)
        kt, vt = last.self_attention.project_kv(ht)
        if not per_frame:
            kt, vt = rep(kt), rep(vt)  # projected once per caption, copied per frame
        k, v = torch.cat([kq, kt], 2), torch.cat([vq, vt], 2)
        q = q + last.dropout(last.self_attention.attend(hq, k, v, rep(x_mask))[0])
        q, w = last.cross(q, mem, mem_mask, weights)
        return self.norm(last.feed(q)).view(n, f, n_query, d), w


class TokenSelector(nn.Module):
    """Steps 4-5's scorer: ``LayerNorm, Linear(D, D/2), GELU, Linear(D/2, 1)`` per token, then a softmax over the
    frame's tokens: ``tokens [V, F, N, D]`` -> ``(logits, scores)``, each ``[V, F, N]`` (scores sum to 1 per frame)."""

    def __init__(self, dim: int):
        super().__init__()
        half = max(1, dim // 2)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, half), nn.GELU(), nn.Linear(half, 1))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.mlp(tokens).squeeze(-1)  # step 4: MLP
        return logits, logits.softmax(-1)  # step 4: softmax over the frame's tokens


@HEADS.register("crosstvr")
class CrossTVR(RetrievalHead):
    """CrossTVR's stage-2 cross-encoder (see the module docstring): ``match_scores -> [N]`` matching log-odds.

    ``dim``: ``D``; ``queries``: ``Nq`` learnable queries (8; BLIP-2 32); ``layers``: query-transformer layers (2;
    BLIP-2 12); ``heads``: attention heads (``max(1, D // 64)``); ``select``: ``M`` tokens kept per frame (4, the
    paper's); ``spatial`` / ``temporal``: which attention passes run (Table 6); ``shared``: one set of weights for
    both passes (Table 9); ``selection``: ``"straight-through"`` or ``"perturbed"`` (how the selector learns; both
    select the hard top-M in evaluation); ``num_samples``, ``sigma``: the perturbed top-k's; ``mlp_ratio``: the
    feed-forward width; ``dropout``; ``max_frames``: rows of the frame-position table; ``pair_chunk``: pairs per
    forward in :meth:`score`.
    """

    uses_logit_scale = False  # matching logits, trained with the 2-way cross-entropy of eq. 7, no temperature

    def __init__(
        self,
        dim: int = 512,
        queries: int = 8,
        layers: int = 2,
        heads: int | None = None,
        select: int = 4,
        spatial: bool = True,
        temporal: bool = True,
        shared: bool = True,
        selection: str = "straight-through",
        num_samples: int = 500,
        sigma: float = 0.05,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_frames: int = 64,
        pair_chunk: int = 64,
    ):
        super().__init__()
        if not (spatial or temporal):
            raise ValueError("crosstvr: at least one of spatial and temporal attention must be on")
        if selection not in SELECTIONS:
            raise ValueError(f"crosstvr: selection must be one of {SELECTIONS}, got {selection!r}")
        if queries < 1 or layers < 1 or select < 1:
            raise ValueError(f"crosstvr: queries, layers and select must be >= 1, got {queries}, {layers}, {select}")
        self.dim, self.n_queries, self.n_layers, self.select = dim, queries, layers, select
        self.heads = heads or default_heads(dim)
        self.spatial, self.temporal, self.shared = bool(spatial), bool(temporal), bool(shared)
        self.selection, self.num_samples, self.sigma = selection, num_samples, sigma
        self.max_frames, self.pair_chunk, self.mlp_ratio = max_frames, pair_chunk, mlp_ratio
        self.query_tokens = nn.Parameter(torch.randn(queries, dim) * 0.02)  # BLIP-2's init, card 5a
        self.ln_text = nn.LayerNorm(dim)  # step 1
        self.ln_vision = nn.LayerNorm(dim)  # step 1 (BLIP-2's ln_vision)
        block = QueryTransformer(dim, layers, self.heads, mlp_ratio, dropout)
        self.spatial_module = block if spatial else None  # steps 2-3
        if temporal:
            # step 5: the same module (one set of weights) or a copy that starts equal (both from BLIP-2 in the paper)
            self.temporal_module = block if (shared or not spatial) else copy.deepcopy(block)
            self.selector = TokenSelector(dim)  # step 4
            self.frame_positions = nn.Parameter(torch.zeros(max_frames, dim))  # step 5 (our reading)
        else:
            self.temporal_module, self.selector, self.frame_positions = None, None, None
        self.itm_head = nn.Linear(dim, 2)  # step 6

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, queries={self.n_queries}, layers={self.n_layers}, heads={self.heads}, "
            f"select={self.select}, spatial={self.spatial}, temporal={self.temporal}, shared={self.shared}, "
            f"selection={self.selection!r}"
        )

    @property
    def parameters_shared(self) -> bool:
        """True when the spatial and temporal passes run the very same module (one set of weights)."""
        return self.spatial_module is not None and self.spatial_module is self.temporal_module

    # -- inputs -----------------------------------------------------------------------------------------------------
    def _text(self, text: TextInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 1: ``(LN(words) [N, L, D], word_mask [N, L])``, without the trailing columns that are padding in every
        row (the cache pads word tokens to a split's longest caption; a batch of short captions need not pay for it)."""
        words, mask = text_tokens(text)  # padded tokens exactly 0; the sentence alone without word tokens
        valid = mask.any(0).nonzero()
        n = int(valid.max()) + 1 if len(valid) else 1
        words, mask = words[:, :n], mask[:, :n]
        return self.ln_text(words), mask

    def visual_tokens(self, video: VideoInput) -> torch.Tensor:
        """Step 1: per frame its CLS embedding and patch tokens, ``LN([CLS; patches]) [V, F, 1 + P, D]``; padded
        frames' inputs are set to 0 first."""
        if video.patches is None:
            raise ValueError(
                "crosstvr cross-attends to each frame's patch tokens, but video.patches is None: load the videos with "
                "their patch tokens, S.videos(split, with_patches=True) (or FeatureSource.from_session(S, split, "
                "with_patches=True), tvrlib.features.encode_videos(..., with_patches=True))"
            )
        v, f, d = video.frames.shape
        if video.patches.ndim != 4 or video.patches.shape[:2] != (v, f) or video.patches.shape[3] != d:
            raise ValueError(
                f"video.patches must be [V, F, P, D] = [{v}, {f}, P, {d}], got {tuple(video.patches.shape)}"
            )
        if not bool(video.mask.any(1).all()):
            bad = int((~video.mask.any(1)).nonzero()[0])
            raise ValueError(f"crosstvr: video {bad} of the batch has no valid frame (mask all False)")
        cls = masked_frames(video.frames, video.mask)
        patches = video.patches.to(video.frames.dtype)  # the feature cache stores patch tokens as float16
        patches = torch.where(video.mask[:, :, None, None], patches, patches.new_zeros(()))
        return self.ln_vision(torch.cat([cls[:, :, None], patches], 2))  # step 1

    def _queries_and_text(self, queries: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor):
        """``[Q; W] [B, Nq + L, D]`` and its mask (queries always valid)."""
        b = words.shape[0]
        x = torch.cat([queries.expand(b, -1, -1), words], 1)
        ones = torch.ones(b, queries.shape[-2], dtype=torch.bool, device=word_mask.device)
        return x, torch.cat([ones, word_mask], 1)

    # -- steps 2-3: spatial text attention -----------------------------------------------------------------------------
    def _spatial(self, words, word_mask, tokens, frame_mask, weights: bool = False):
        """``Q_s [N, Nq, D]`` (eq. 3) and, with ``weights``, the last layer's weights ``[N, F, Nq, 1 + P]``."""
        n, f, t, d = tokens.shape
        x, x_mask = self._queries_and_text(self.query_tokens, words, word_mask)  # step 2: [Q; W]
        memory_mask = torch.ones(n, f, t, dtype=torch.bool, device=tokens.device)
        # eqs. 1-2: [Q; W] against each frame's tokens separately (one copy of the caption per frame, computed
        # without repeating what is the same for every frame); eq. 3: the first Nq outputs per frame
        q, w = self.spatial_module.forward_per_memory(x, x_mask, self.n_queries, tokens, memory_mask, weights)
        keep = frame_mask[:, :, None, None]
        total = torch.where(keep, q, torch.zeros((), dtype=q.dtype, device=q.device)).sum(1)
        q_s = total / frame_mask.sum(1).to(q.dtype)[:, None, None]  # eq. 3: mean over the valid frames
        if w is not None:
            w = torch.where(keep, w.reshape(n, f, self.n_queries, t), w.new_zeros(()))
        return q_s, w

    # -- steps 4-5: token selector, temporal text attention --------------------------------------------------------
    def _select(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 4-5: ``(kept tokens [V, F, M, D], indicator [V, F, M, 1 + P])`` with ``M = min(select, 1 + P)``."""
        v, f, t, d = tokens.shape
        m = min(self.select, t)
        logits, scores = self.selector(tokens)  # step 4
        flat_logits, flat_scores = logits.reshape(v * f, t), scores.reshape(v * f, t)
        flat = tokens.reshape(v * f, t, d)
        if self.selection == "perturbed" and self.training:
            indicator = perturbed_topk(flat_logits, m, self.num_samples, self.sigma)  # step 5 (card 3), training
            kept = torch.einsum("nmt,ntd->nmd", indicator, flat)
        else:
            idx = flat_logits.topk(m, dim=-1).indices.sort(dim=-1).values  # step 5: the top M, in their order
            kept = flat.gather(1, idx[..., None].expand(v * f, m, d))
            if self.selection == "straight-through":
                s = flat_scores.gather(1, idx)
                kept = kept * (1 + (s - s.detach()))[..., None]  # exactly 1 forward; d loss / d s = <grad, token>
            indicator = F.one_hot(idx, t).to(tokens.dtype)
        return kept.view(v, f, m, d), indicator.view(v, f, m, t)

    def _temporal(self, queries, words, word_mask, tokens, frame_mask):
        n, f = frame_mask.shape
        if f > self.max_frames:
            raise ValueError(
                f"crosstvr: {f} frames but the frame-position table has {self.max_frames} rows; build the head with "
                f"max_frames>={f}"
            )
        kept, _ = self._select(tokens)  # steps 4-5
        m, d = kept.shape[2], kept.shape[3]
        kept = kept + self.frame_positions[:f][None, :, None]  # step 5: which frame a token came from
        memory = kept.reshape(n, f * m, d)  # step 5: the selected tokens of all frames, flattened
        memory_mask = frame_mask[:, :, None].expand(n, f, m).reshape(n, f * m)  # padded frames: no keys
        x, x_mask = self._queries_and_text(queries, words, word_mask)  # step 5: [Q_s; W]
        out, _ = self.temporal_module(x, x_mask, self.n_queries, memory, memory_mask)  # eq. 6
        return out[:, : self.n_queries]

    # -- per pair ---------------------------------------------------------------------------------------------------
    def itm_logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """2-way matching logits ``[N, 2]`` (no match, match) of ``N`` aligned pairs (text ``i``, video ``i``)."""
        if len(text) != len(video):
            raise ValueError(f"crosstvr scores aligned pairs: {len(text)} texts but {len(video)} videos")
        words, word_mask = self._text(text)  # step 1
        tokens = self.visual_tokens(video)  # step 1
        if self.spatial:
            queries, _ = self._spatial(words, word_mask, tokens, video.mask)  # steps 2-3
        else:
            queries = self.query_tokens.expand(len(text), -1, -1)  # Table 6 "+ temporal": the learnable queries
        if self.temporal:
            queries = self._temporal(queries, words, word_mask, tokens, video.mask)  # steps 4-5
        return self.itm_head(queries).mean(1)  # step 6: ITM head averaged over the queries (card 5a)

    def match_scores(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Matching scores ``[N]`` of ``N`` aligned pairs in one batched pass: the log-odds ``logit_match -
        logit_no_match`` (step 6). What :func:`tvrlib.reranking.rerank` and :meth:`score` use.

        :meth:`score_pairs` (the base class's) gives the same scores one pair per pass, bit for bit what :meth:`score`
        gives for that pair alone; the batched scores equal them up to float rounding (a matrix product's rounding
        depends on the number of rows in the batch)."""
        logits = self.itm_logits(text, video)
        return logits[:, 1] - logits[:, 0]

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V]`` matching scores, every text against every video, ``pair_chunk`` pairs per forward pass."""
        nt, nv = len(text), len(video)
        ti = torch.arange(nt).repeat_interleave(nv)
        vi = torch.arange(nv).repeat(nt)
        out = [
            self.match_scores(text.index(ti[i : i + self.pair_chunk]), video.index(vi[i : i + self.pair_chunk]))
            for i in range(0, nt * nv, self.pair_chunk)
        ]
        return torch.cat(out).view(nt, nv)

    def pair_bytes(
        self,
        num_frames: int,
        dim: int,
        path: str | None = None,
        *,
        words: int = DEFAULT_WORDS,
        patches: int = DEFAULT_PATCHES,
    ) -> int:
        """Working memory of one pair's forward pass (float32): the spatial pass's rows (the caption's ``Nq + L``
        once, the queries' ``Nq`` per frame; every frame's ``Nq + L`` when middle layers exist), about ``8 + 2 x
        mlp_ratio`` D-vectors each alive at once, the per-frame copies of the text's keys and values, the attention
        maps, and the frame tokens themselves. ``words`` / ``patches``: the caption length and patches per frame
        assumed (default 32 and 49)."""
        per_row = (8 + 2 * self.mlp_ratio) * dim + self.heads * (self.n_queries + words)
        if self.n_layers > 2:
            rows = num_frames * (self.n_queries + words)
        else:
            rows = (self.n_queries + words) + num_frames * self.n_queries
        text_kv = 2 * num_frames * words * dim
        cross = num_frames * self.heads * self.n_queries * (1 + patches)
        tokens = 2 * num_frames * (1 + patches) * dim
        return int(4 * (rows * per_row + text_kv + cross + tokens))

    # -- for the notebook's pictures --------------------------------------------------------------------------------
    def spatial_attention(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """The queries' attention over each frame's tokens ``[CLS, patch_1..P]`` in the last spatial layer, averaged
        over heads: ``[N, F, Nq, 1 + P]`` for ``N`` aligned pairs (rows sum to 1; padded frames 0)."""
        if not self.spatial:
            raise ValueError("crosstvr-temporal has no spatial pass (spatial=False): no spatial attention weights")
        words, word_mask = self._text(text)
        _, w = self._spatial(words, word_mask, self.visual_tokens(video), video.mask, weights=True)
        return w

    def selection_scores(self, video: VideoInput) -> torch.Tensor:
        """Step 4's softmax scores of each frame's tokens ``[V, F, 1 + P]`` (token 0 is the frame's CLS)."""
        if not self.temporal:
            raise ValueError("crosstvr-spatial has no token selector (temporal=False)")
        return self.selector(self.visual_tokens(video))[1]

    def selected_indices(self, video: VideoInput) -> torch.Tensor:
        """Step 5's kept tokens ``long [V, F, M]`` (indices into ``[CLS, patch_1..P]``, ascending; evaluation's hard
        top-M)."""
        logits = self.selector(self.visual_tokens(video))[0] if self.temporal else None
        if logits is None:
            raise ValueError("crosstvr-spatial has no token selector (temporal=False)")
        m = min(self.select, logits.shape[-1])
        return logits.topk(m, dim=-1).indices.sort(dim=-1).values


HEADS.register_variant("crosstvr-spatial", "crosstvr", temporal=False)
HEADS.register_variant("crosstvr-temporal", "crosstvr", spatial=False)
HEADS.register_variant("crosstvr-unshared", "crosstvr", shared=False)
