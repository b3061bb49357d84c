"""Memory-bounded evaluation of interaction heads, and the Gram-matrix path for attention pooling.

Papers: seed 000, section 4.2 (eq. 4.9: the text-conditioned video embedding is an
attention-weighted sum of frame embeddings, then compared with the text by cosine);
X-Pool (method card 2: how its reference code evaluates).

The problem
-----------
A text-conditioned head pools every video once *per text*: for ``T`` texts and ``V``
videos it produces ``T x V`` pooled vectors of size ``D``. X-Pool's reference code
builds that whole ``[V, T, D]`` tensor (1,000 x 1,000 x 512 floats = 2 GB on MSR-VTT
1k-A; on MSVD it runs out of memory). Two remedies, one function each:

1. **Blocks under a memory budget** (:func:`score_bounded`): each side is encoded once
   (frame keys, values, Gram matrices; text queries), then the ``[T, V]`` grid is
   scored in blocks of ``text_chunk x video_chunk`` pairs, sized from the head's
   per-pair working memory (``pair_bytes``) so that a block stays under ``max_bytes``.
   The blocks go through the generic :func:`~tvrlib.heads.base.score_chunked`.
2. **No pooled vector at all** (:func:`pooled_cosine_gram`), for heads whose pooled
   video is a *linear* attention-weighted sum of per-frame vectors ``u_{v,f}`` scored by
   a cosine with a text vector ``t`` (eq. 4.9; :class:`AttentionPoolingHead`)::

       p_{t,v} = sum_f w_{t,v,f} u_{v,f}

       cos(t, p_{t,v}) = sum_f w_{t,v,f} (t . u_{v,f})
                         / ( |t| * sqrt( w_{t,v}^T G_v w_{t,v} ) ),   G_v = U_v U_v^T  [F, F]

   The numerator needs the frame-text dot products ``t . u_{v,f}`` (one matrix product
   ``[T, D] x [D, V*F]``), the norm needs each video's ``F x F`` Gram matrix (computed
   once per video). Memory per pair: a few ``F``-vectors instead of ``D``-vectors.

The attention logits of these heads are dot products of a text-side vector with the
same frame vectors (``(W_Q t) . (W_K u_f) = (W_K^T W_Q t) . u_f``), so the logits and
the numerator's dot products come out of one matrix product.

Shapes: texts ``[T, D]``, frame values ``[V, F, D]``, frame mask ``bool [V, F]``
(``False`` = padding), attention weights ``[T, V, F]``, scores ``[T, V]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import RetrievalHead, TextInput, VideoInput, score_chunked

#: default working-memory budget of one block of pairs in :func:`score_bounded`
DEFAULT_MAX_BYTES = 128 * 2**20
_EPS = 1e-12


# --------------------------------------------------------------------------- #
# the two ways of turning attention weights into a cosine score
# --------------------------------------------------------------------------- #
def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis (frames) where ``mask`` is True; padded frames get weight 0.

    ``logits [..., V, F]``, ``mask bool [V, F]`` (broadcast). A video with no valid frame
    gets all-zero weights (its pooled vector is 0 and its cosine 0), never NaN.
    """
    if bool(mask.all()):  # no padding and nothing deselected: a plain softmax
        return torch.softmax(logits, dim=-1)
    logits = logits.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return torch.where(mask, w, torch.zeros((), dtype=w.dtype, device=w.device))


def attention_pool(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Materialise the pooled vectors: ``weights [T, V, F]``, ``values [V, F, D]`` -> ``[T, V, D]`` (eq. 4.9)."""
    return torch.einsum("tvf,vfd->tvd", weights, values)


def pooled_cosine_materialised(target: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``cos(target_t, sum_f w_{t,v,f} values_{v,f})`` by building the ``[T, V, D]`` pooled tensor -> ``[T, V]``."""
    pooled = F.normalize(attention_pool(weights, values), dim=-1, eps=_EPS)
    return torch.einsum("tvd,td->tv", pooled, F.normalize(target, dim=-1, eps=_EPS))


def gram_matrices(values: torch.Tensor) -> torch.Tensor:
    """Each video's frame Gram matrix ``G_v = U_v U_v^T``: ``[V, F, D]`` -> ``[V, F, F]``."""
    return values @ values.transpose(1, 2)


def quadratic_form(weights: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """``w_{t,v}^T G_v w_{t,v}`` for every pair: ``weights [T, V, F]``, ``gram [V, F, F]`` -> ``[T, V]``.

    This is ``|sum_f w_f u_f|^2`` when ``G_v`` is the Gram matrix of the vectors ``u_f``.
    """
    wg = torch.bmm(weights.transpose(0, 1), gram).transpose(0, 1)  # [T, V, F]: (G_v w)_f
    return (wg * weights).sum(-1)


def pooled_cosine_gram(target: torch.Tensor, weights: torch.Tensor, values: torch.Tensor,
                       gram: torch.Tensor | None = None, dots: torch.Tensor | None = None) -> torch.Tensor:
    """The same cosine as :func:`pooled_cosine_materialised` without any pooled vector -> ``[T, V]``.

    ``target [T, D]``, ``weights [T, V, F]``, ``values [V, F, D]``; optional precomputed
    ``gram [V, F, F]`` (:func:`gram_matrices`) and ``dots [T, V, F] = target . values``.
    """
    if gram is None:
        gram = gram_matrices(values)
    if dots is None:
        dots = (target @ values.reshape(-1, values.shape[-1]).T).view(len(target), *values.shape[:2])
    numerator = (weights * dots).sum(-1)  # sum_f w_f (t . u_f)
    pooled_norm = quadratic_form(weights, gram).clamp_min(0.0).sqrt().clamp_min(_EPS)  # |p_{t,v}|
    return numerator / (pooled_norm * target.norm(dim=-1, keepdim=True).clamp_min(_EPS))


# --------------------------------------------------------------------------- #
# encoded sides: each side of an interaction head is encoded once, then scored in blocks
# --------------------------------------------------------------------------- #
@dataclass
class Encoded:
    """Per-text or per-video tensors that share the leading axis (what a head computes once per side)."""

    tensors: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def index(self, idx) -> "Encoded":
        return Encoded({k: v[idx] for k, v in self.tensors.items()})

    def to(self, device, dtype=torch.float32) -> "Encoded":
        return Encoded({k: v.to(device, dtype) if v.is_floating_point() else v.to(device)
                        for k, v in self.tensors.items()})


class EncodedInteractionHead(RetrievalHead):
    """An interaction head split into per-side work and per-pair work.

    ``encode_text(text) -> Encoded`` and ``encode_video(video) -> Encoded`` run once per
    side; ``score_encoded(te, ve) -> [t, v]`` scores a block of pairs; ``pair_bytes`` is
    the working memory one pair needs in ``score_encoded`` (used to size blocks).
    """

    def encode_text(self, text: TextInput) -> Encoded:
        raise NotImplementedError

    def encode_video(self, video: VideoInput) -> Encoded:
        raise NotImplementedError

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        raise NotImplementedError

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        raise NotImplementedError

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return self.score_encoded(self.encode_text(text), self.encode_video(video))


class _BlockScorer(RetrievalHead):
    """Adapter so that :func:`score_chunked` can score blocks of already-encoded sides."""

    def __init__(self, head: EncodedInteractionHead, path: str | None):
        super().__init__()
        self.head, self.path = head, path

    def score(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        return self.head.score_encoded(te, ve, self.path)


def block_shape(num_texts: int, num_videos: int, bytes_per_pair: int, max_bytes: int) -> tuple[int, int]:
    """``(text_chunk, video_chunk)`` with ``text_chunk * video_chunk * bytes_per_pair <= max_bytes``.

    Whole video rows first (long matrix products are efficient), at least one pair.
    """
    pairs = max(1, int(max_bytes) // max(1, int(bytes_per_pair)))
    if pairs >= num_videos:
        return max(1, min(num_texts, pairs // num_videos)), num_videos
    return 1, pairs


@torch.no_grad()
def score_bounded(head: RetrievalHead, text: TextInput, video: VideoInput, max_bytes: int = DEFAULT_MAX_BYTES,
                  path: str | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """All ``[T, V]`` scores of any head with a bounded working set, on the CPU.

    Dual encoders: one matrix product (as :func:`score_chunked`). Heads with
    ``encode_text``/``encode_video``/``score_encoded`` (:class:`EncodedInteractionHead`):
    each side is encoded once, then blocks of at most ``max_bytes`` of per-pair working
    memory are scored (``path``: ``"gram"`` or ``"materialise"`` for attention-pooling
    heads; ``None`` = the head's default). Other interaction heads: blocks sized from
    ``head.pair_bytes`` if they have it, else from a guess of ``4 * F * D`` floats per pair.
    """
    head.eval()
    num_frames, dim = video.frames.shape[1], video.frames.shape[2]
    if head.is_dual_encoder:
        return score_chunked(head, text, video, device=device)
    if isinstance(head, EncodedInteractionHead):
        t_chunk, v_chunk = block_shape(len(text), len(video), head.pair_bytes(num_frames, dim, path), max_bytes)
        te = head.encode_text(text.to(device))
        ve = head.encode_video(video.to(device))
        return score_chunked(_BlockScorer(head, path), te, ve, t_chunk, v_chunk, device=device)
    per_pair = getattr(head, "pair_bytes", None)
    per_pair = per_pair(num_frames, dim) if callable(per_pair) else 4 * num_frames * dim * 4
    t_chunk, v_chunk = block_shape(len(text), len(video), per_pair, max_bytes)
    return score_chunked(head, text, video, t_chunk, v_chunk, device=device)


# --------------------------------------------------------------------------- #
# the family of heads that the Gram path covers
# --------------------------------------------------------------------------- #
def rms_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rescale each vector to norm ``sqrt(D)`` (unit mean square), as a LayerNorm without centring would."""
    return F.normalize(x, dim=-1, eps=_EPS) * math.sqrt(x.shape[-1])


class AttentionPoolingHead(EncodedInteractionHead):
    """Text-conditioned attention pooling whose pooled video is a linear weighted sum of frame vectors.

    Subclasses define, per side:

    * ``encode_text``  -> ``Encoded(query [T, D], target [T, D])``: the attention logit of
      frame ``f`` is ``query_t . values_{v,f}``; the score is ``cos(target_t, pooled_{t,v})``;
    * ``encode_video`` -> ``Encoded(values [V, F, D], mask bool [V, F], gram [V, F, F])``;
    * optionally ``select_frames(logits, mask) -> mask`` (e.g. top-K frames).

    ``path="gram"`` (default) never builds a pooled vector (:func:`pooled_cosine_gram`);
    ``path="materialise"`` builds the ``[t, v, D]`` pooled tensor of the block. Both give
    the same scores (up to float rounding) and both are differentiable.
    """

    default_path = "gram"

    # -- subclasses -----------------------------------------------------------
    def select_frames(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Which frames the softmax may use: ``logits [t, v, F]``, ``mask [v, F]`` -> bool ``[t, v, F]``/``[v, F]``."""
        return mask

    # -- shared ----------------------------------------------------------------
    def video_side(self, values: torch.Tensor, mask: torch.Tensor) -> Encoded:
        return Encoded({"values": values, "mask": mask, "gram": gram_matrices(values)})

    def weights_encoded(self, te: Encoded, ve: Encoded, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``[t, v, F]`` of a block (zero on padded and unselected frames)."""
        values = ve["values"]
        if logits is None:
            logits = (te["query"] @ values.reshape(-1, values.shape[-1]).T).view(len(te), *values.shape[:2])
        return masked_softmax(logits, self.select_frames(logits, ve["mask"]))

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Attention weights ``[T, V, F]`` of every (text, video) pair (for figures and checks)."""
        return self.weights_encoded(self.encode_text(text), self.encode_video(video))

    def pool(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """The pooled video of every (text, video) pair, ``[T, V, D]`` (eq. 4.9; memory ``T*V*D``)."""
        te, ve = self.encode_text(text), self.encode_video(video)
        return attention_pool(self.weights_encoded(te, ve), ve["values"])

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        path = path or self.default_path
        values = ve["values"]
        t, (v, f, d) = len(te), values.shape
        if path == "gram":
            # one matrix product gives the attention logits and the numerator's dot products
            both = torch.cat([te["query"], te["target"]]) @ values.reshape(-1, d).T
            logits, dots = both[:t].view(t, v, f), both[t:].view(t, v, f)
            weights = self.weights_encoded(te, ve, logits)
            return pooled_cosine_gram(te["target"], weights, values, ve["gram"], dots)
        if path == "materialise":
            return pooled_cosine_materialised(te["target"], self.weights_encoded(te, ve), values)
        raise ValueError(f"unknown evaluation path {path!r}; use 'gram' or 'materialise'")

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        if (path or self.default_path) == "gram":
            return 4 * 8 * num_frames  # logits, dots, weights, products: a few F-vectors per pair
        return 4 * (3 * dim + 4 * num_frames)  # pooled, normalised pooled, product, plus the weights
