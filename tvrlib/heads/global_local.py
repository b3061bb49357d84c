"""Global-local similarity: CrossAttnGL's full model, similarity *vectors* at two granularities fused into one score.

Paper: CrossAttnGL (docs/papers.md; ``../shared/seeds/000_6b49f8a173a2ab00.txt``), §3 ("the model then aggregates
the global and local similarity scores through self-attention"), §4.3, eqs. 4.10-4.15, and §4.4, eqs. 4.16-4.20
(the loss: :func:`tvrlib.losses.global_local_ranking_loss`). The similarity-vector function is SGRAF's (card 8)::

    f(a, b; W)  = W |a - b|^2 / || W |a - b|^2 ||_2          (square element-wise)         eq. 4.10
    sim_g       = f(E_V, E_t; W_g)                            global: caption vs. its pooled video     eq. 4.11
    C_ij        = cos(v_i, t_j)                               frame i, word j                          eq. 4.12
    beta_ij     = [C_ij]_+ / sqrt(sum_i [C_ij]_+^2)           clipped, L2-normalised over the frames   eq. 4.13
    a_j         = sum_i beta_ij v_i                           the word-attended frames                 eq. 4.14
    sim_l_j     = f(a_j, t_j; W_l)                            local: one vector per word               eq. 4.15

``E_V`` is the caption-conditioned video of CrossAttnGL §4.2, eqs. 4.5-4.9: the ``cross_modal_aggregation`` head
(:class:`~tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`, the paper's reading with ``W_V``, the FC
layer and dropout 0.3) is a submodule, ``self.aggregation``, and its pooled video is used as it is.

**Fusion (§3, our reading: the paper gives no equation).** The similarity vectors are the nodes of one small
self-attention step, as in SGRAF's reasoning module (card 8), then a mean over the nodes and a linear layer::

    X  = [sim_g; sim_l_1 .. sim_l_L]                          nodes [N, S] (the valid words only)
    H  = ReLU( softmax(X W_q (X W_k)^T / sqrt(S)) X W_o )     one self-attention step over the valid nodes
    s  = sigmoid( w . mean_n H_n + b )                        the score, in (0, 1)

The sigmoid is SGRAF's (its score is ``sigma(Linear(readout))``): a bounded score suits the hinge's margin 0.2 and
CLIP's temperature alike. The loss needs a local and a global score (eq. 4.18); they are read out the same way from
the same ``H``, over the word nodes and over the global node: ``s_loc = sigmoid(w . mean_j H_j + b)``,
``s_glo = sigmoid(w . H_g + b)`` (:meth:`GlobalLocalSimilarity.score_parts`). The full score's logit is therefore
the average of the two parts' logits weighted by node count, ``(z_glo + L z_loc) / (L + 1)``.

Table 3's variants change only the nodes that enter the fusion: ``global_local-local`` (``branches="local"``,
the word nodes only) and ``global_local-global`` (``branches="global"``, the global node only; then the score is
``s_glo``). The parameters are the same in all three, so weights can be moved between them.

Our readings where the paper is silent:

* **Inputs of eq. 4.10 are L2-normalised** (``E_V``, ``E_t``, ``a_j``, ``t_j``), as SGRAF does: otherwise the squared
  difference mostly measures the scale of a random ``W_V`` against CLIP's. ``W_g`` and ``W_l`` have no bias (the
  formula has none; SGRAF's code has one, card 8's pitfall). ``S`` (``sim_dim``) is SGRAF's 256.
* Eq. 4.12 uses the CLIP frame embeddings ``v_i`` and word tokens ``t_j``; eq. 4.13 is applied as printed (its text
  says "softmax", its formula is the clipped L2 normalisation); a word with no positive cosine gets ``a_j = 0``.
* f is zero-safe: ``a = b`` gives the zero vector (not NaN).
* Without word tokens (``text.words is None``) the sentence embedding is the only word (``L = 1``); load word
  tokens with ``S.texts(split, with_words=True)`` for the paper's local branch.

Padding comes from the masks only: padded frames get ``beta = 0`` and attention weight 0 in the aggregation,
padded words are no nodes. Permuting the words (with their mask) or the frames (with theirs) leaves the score
unchanged: nothing here uses a position.

Cost per (caption, video) pair: global ``O(F D + D S)``; local ``O(L F D + L D S)``; fusion ``O(N S^2 + N^2 S)``
with ``N = L + 1``; so ``O(T V (L F D + L D S + L S^2))`` for the grid. :func:`tvrlib.heads.score_all` encodes each
side once and scores in blocks sized by :meth:`pair_bytes` (``[t, v, L, D]`` word-attended frames are built per
block, never for the whole grid; ``L <= max_words`` sizes them). ``score_all``'s ``path`` is ignored.

Shapes: ``text.sentence [T, D]``, ``text.words [T, L, D]`` + ``text.word_mask bool [T, L]``, ``video.frames
[V, F, D]`` + ``video.mask bool [V, F]`` -> scores ``[T, V]``; :meth:`score_parts` -> ``(local [T, V] | None,
global [T, V] | None)``; :meth:`similarity_vectors` -> ``(global [T, V, S] | None, local [T, V, L, S] | None,
word_mask [T, L])``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS
from .attention_pooling import masked_softmax
from .base import TextInput, VideoInput
from .cross_modal_aggregation import CrossModalAggregation
from .gram import attention_pool
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead
from .wti import CLIP_CONTEXT, text_tokens, trim_padding

__all__ = ["GlobalLocalSimilarity", "similarity_vector", "BRANCHES"]

BRANCHES = ("both", "local", "global")
_AGG = "agg."  # prefix of the aggregation submodule's tensors inside this head's Encoded sides


def similarity_vector(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Eq. 4.10: ``W (a - b)^2 / ||W (a - b)^2||_2`` -> ``[..., S]``, from ``a, b [..., D]`` and ``weight [S, D]``.

    Zero-safe: where ``W (a - b)^2 = 0`` (e.g. ``a = b``) the result is the zero vector, with finite gradients.
    """
    return F.normalize(F.linear((a - b) ** 2, weight), dim=-1, eps=eps)  # eq. 4.10


def _sub(side: Encoded, prefix: str) -> Encoded:
    return Encoded({k[len(prefix) :]: v for k, v in side.tensors.items() if k.startswith(prefix)})


@HEADS.register("global_local")
class GlobalLocalSimilarity(EncodedInteractionHead):
    """CrossAttnGL's full model (§4.2-4.3): caption-conditioned aggregation, global and local similarity vectors,
    self-attention fusion, a score in ``(0, 1)``.

    ``dim``: ``D``; ``attn_dim``, ``dropout``: the aggregation head's (``d_a = D``, 0.3); ``sim_dim``: ``S`` (256);
    ``branches``: ``"both"`` / ``"local"`` / ``"global"`` (Table 3; variants ``global_local-local`` and
    ``global_local-global``); ``max_words``: an upper bound on ``L`` for sizing scoring blocks.
    """

    block_by_memory = True  # score_all keeps its blocks within the memory budget (scoring.py)

    def __init__(
        self,
        dim: int = 512,
        attn_dim: int | None = None,
        sim_dim: int = 256,
        dropout: float = 0.3,
        branches: str = "both",
        max_words: int = CLIP_CONTEXT,
    ):
        super().__init__()
        if branches not in BRANCHES:
            raise ValueError(f"global_local: branches must be one of {BRANCHES}, got {branches!r}")
        self.dim, self.sim_dim, self.branches, self.max_words = dim, sim_dim, branches, max_words
        self.aggregation = CrossModalAggregation(dim, attn_dim, dropout=dropout)  # E_V, eqs. 4.5-4.9
        self.global_proj = nn.Linear(dim, sim_dim, bias=False)  # W_g, eq. 4.11
        self.local_proj = nn.Linear(dim, sim_dim, bias=False)  # W_l, eq. 4.15
        self.node_query = nn.Linear(sim_dim, sim_dim, bias=False)  # fusion (§3, our reading)
        self.node_key = nn.Linear(sim_dim, sim_dim, bias=False)
        self.node_out = nn.Linear(sim_dim, sim_dim)
        self.readout = nn.Linear(sim_dim, 1)  # the linear readout to one score (§3, our reading)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, sim_dim={self.sim_dim}, branches={self.branches!r}"

    @property
    def uses_global(self) -> bool:
        return self.branches in ("both", "global")

    @property
    def uses_local(self) -> bool:
        return self.branches in ("both", "local")

    # -- per side ----------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        words, mask = text_tokens(text)
        side = {"sentence": F.normalize(text.sentence, dim=-1), "words": F.normalize(words, dim=-1), "word_mask": mask}
        if self.uses_global:
            side.update({_AGG + k: v for k, v in self.aggregation.encode_text(text).tensors.items()})
        return Encoded(side)

    def encode_video(self, video: VideoInput) -> Encoded:
        frames = F.normalize(masked_frames(video.frames, video.mask), dim=-1)
        side = {"frames": frames, "mask": video.mask}
        if self.uses_global:
            side.update({_AGG + k: v for k, v in self.aggregation.encode_video(video).tensors.items()})
        return Encoded(side)

    # -- per pair: the similarity vectors ------------------------------------------
    def global_vectors(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """``sim_g [t, v, S]`` (eq. 4.11) of a block; ``E_V`` from the aggregation head (eqs. 4.5-4.9)."""
        agg, ta, va = self.aggregation, _sub(te, _AGG), _sub(ve, _AGG)
        pooled = agg.dropout(attention_pool(agg.weights_encoded(ta, va), va["values"]))  # E_V, eqs. 4.8-4.9 + FC
        e_v = F.normalize(pooled, dim=-1)
        return similarity_vector(e_v, te["sentence"][:, None], self.global_proj.weight)  # eq. 4.11

    def local_vectors(self, te: Encoded, ve: Encoded) -> torch.Tensor:
        """``sim_l [t, v, L, S]`` (eqs. 4.12-4.15) of a block (padded words: zero vectors, never used)."""
        frames, mask = ve["frames"], ve["mask"]
        c = torch.einsum("tld,vfd->tvlf", te["words"], frames).clamp_min(0)  # [C_ij]_+, eq. 4.12 (unit vectors)
        if not bool(mask.all()):  # padded frames are 0 in encode_video already; 0 whatever a caller passed
            c = torch.where(mask[None, :, None, :], c, torch.zeros((), dtype=c.dtype, device=c.device))
        # eqs. 4.13-4.14: beta_ij is [C_ij]_+ times a positive factor per word (its L2 normalisation over the
        # frames), and a_j = normalize(sum_i beta_ij v_i) cancels that factor: a_j = normalize(sum_i [C_ij]_+ v_i)
        attended = F.normalize(torch.einsum("tvlf,vfd->tvld", c, frames), dim=-1)  # a_j, eq. 4.14
        return similarity_vector(attended, te["words"][:, None], self.local_proj.weight)  # eq. 4.15

    def nodes(self, te: Encoded, ve: Encoded) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The fusion's nodes ``[t, v, N, S]``, their mask ``[t, N]`` and which are word nodes / the global node
        (``bool [N]`` each); ``N = 1 + L``, ``L`` or ``1`` by ``branches``."""
        te = trim_padding(te, "word_mask", ("words",))
        parts, masks, is_local, is_global = [], [], [], []
        t = len(te)
        if self.uses_global:
            parts.append(self.global_vectors(te, ve)[:, :, None])  # eq. 4.11
            masks.append(te["word_mask"].new_ones(t, 1))
            is_local.append(False)
            is_global.append(True)
        if self.uses_local:
            parts.append(self.local_vectors(te, ve))  # eq. 4.15, one node per word
            masks.append(te["word_mask"])
            n = te["word_mask"].shape[1]
            is_local += [True] * n
            is_global += [False] * n
        device = te["word_mask"].device
        return (
            torch.cat(parts, 2),
            torch.cat(masks, 1),
            torch.tensor(is_local, device=device),
            torch.tensor(is_global, device=device),
        )

    # -- per pair: fusion and readout ----------------------------------------------
    def fuse(self, x: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """One self-attention step over the valid nodes: ``x [t, v, N, S]``, ``node_mask [t, N]`` -> ``H``.

        The logits ``(W_q x_n) . (W_k x_m) / sqrt(S)`` are computed as ``x_n . (M x_m)`` with ``M = W_q^T W_k /
        sqrt(S)`` (``S x S``, once per call): one ``S x S`` product per node instead of two. With a single node
        the attention weight is 1 (0 for an invalid node, whose ``x`` is 0), so no logits are computed."""
        if not bool(node_mask.all()):
            x = torch.where(node_mask[:, None, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        if x.shape[2] == 1:  # softmax over one node: attn @ x = x
            return F.relu(self.node_out(x))
        m = self.node_query.weight.T @ self.node_key.weight / math.sqrt(self.sim_dim)  # W_q^T W_k / sqrt(S)
        logits = (x @ m) @ x.transpose(-1, -2)  # [t, v, N, N] = (W_q x_n) . (W_k x_m) / sqrt(S)
        attn = masked_softmax(logits, node_mask[:, None, None, :])  # over the valid nodes
        return F.relu(self.node_out(attn @ x))

    def read(self, h: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """``sigmoid(w . mean_n H_n + b)`` over the nodes where ``which [t, N]`` is True -> ``[t, v]``."""
        if bool(which.all()):
            pooled = h.mean(2)
        else:
            which = which[:, None, :, None]
            total = torch.where(which, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(2)
            pooled = total / which.sum(2).clamp_min(1).to(h.dtype)
        return torch.sigmoid(self.readout(pooled).squeeze(-1))

    def parts_encoded(self, te: Encoded, ve: Encoded) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, node_mask, is_local, is_global = self.nodes(te, ve)
        h = self.fuse(x, node_mask)
        local = self.read(h, node_mask & is_local) if self.uses_local else None
        glob = self.read(h, node_mask & is_global) if self.uses_global else None
        return local, glob

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        x, node_mask, _, _ = self.nodes(te, ve)
        return self.read(self.fuse(x, node_mask), node_mask)

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        s, words = self.sim_dim, self.max_words if self.uses_local else 0  # the global-only variant has no word nodes
        n = words + int(self.uses_global)
        local = 3 * words * num_frames + 3 * words * dim + 2 * words * s  # cosines, beta; a_j, (a - t)^2; W_l out
        fusion = 6 * n * s + 2 * n * n  # nodes, queries, keys, attended, H; attention logits and weights
        return 4 * (local + fusion + 4 * dim + 2 * s + 2 * num_frames)  # + the global vector and E_V

    # -- whole inputs ---------------------------------------------------------------
    def score_parts(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(local [T, V], global [T, V])``: the scores read out from the word nodes and from the global node, for
        :func:`tvrlib.losses.global_local_ranking_loss` (eq. 4.18); None for a branch the variant does not have."""
        return self.parts_encoded(self.encode_text(text), self.encode_video(video))

    def similarity_vectors(
        self, text: TextInput, video: VideoInput
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """``(sim_g [T, V, S] | None, sim_l [T, V, L, S] | None, word_mask [T, L])`` (eqs. 4.11 and 4.15)."""
        te, ve = self.encode_text(text), self.encode_video(video)
        glob = self.global_vectors(te, ve) if self.uses_global else None
        local = self.local_vectors(te, ve) if self.uses_local else None
        return glob, local, te["word_mask"]


HEADS.register_variant("global_local-local", "global_local", branches="local")
HEADS.register_variant("global_local-global", "global_local", branches="global")
