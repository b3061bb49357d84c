"""``tightTransf``: a cross-encoder over ``[text; frames]`` with a matching head (CLIP4Clip).

Paper: Luo et al., "CLIP4Clip" (Neurocomputing 2022), Sec. 3.2 "tight type" (docs/papers.md; method_cards.md card 1).
Unlike the dual encoders (``meanP``, ``seqLSTM``, ``seqTransf``) the text and the video are read
*together*: every pair (text, video) is one sequence through the transformer, so scoring
``T`` texts against ``V`` videos costs ``T * V`` transformer passes instead of ``T + V``
embeddings and one matrix product. That is why it is slow to evaluate, and why two-stage systems
(notebook 09) only re-rank a short list with such a model.

Equations (for one pair; the frame mask is explicit)::

    x     = [t; z_1; ...; z_F] + [P_0; P_1; ...; P_F]     caption EOT embedding, frame embeddings,
                                                          learned position embeddings P
    y     = Transformer(Dropout(x); key mask)             L pre-LN blocks, masked frames never attended
    h     = QuickGELU(W_p LN(y_0) + b_p)                  pooler on the first (text) token
    s     = w_s^T h + b_s                                 one matching logit per pair, no logit scale

Shapes: ``score(text [T, D], video [V, F, D] + mask [V, F]) -> [T, V]``;
``score_pairs(text [N, D], video [N, F, D] + mask [N, F]) -> [N]`` (aligned pairs, one pass each).

CLIP4Clip's cross model is a 4-layer BERT-style (post-LN) encoder with FFN 2048; here the blocks are
open_clip's pre-LN :class:`~open_clip.transformer.Transformer`, the rest follows the card.
``score`` evaluates the ``T x V`` grid in blocks of at most ``pair_chunk`` pairs so that memory
stays bounded.
"""

from __future__ import annotations

import torch
from open_clip.transformer import LayerNorm, QuickGELU, Transformer
from torch import nn

from ..registry import HEADS
from .base import RetrievalHead, TextInput, VideoInput
from .mean_pooling import masked_frames
from .temporal_transformer import default_heads, key_padding_attn_mask


@HEADS.register("tightTransf")
class TightTransformer(RetrievalHead):
    """CLIP4Clip's ``tightTransf`` cross-encoder: one transformer pass per (text, video) pair."""

    uses_logit_scale = False  # the matching logit is trained as is (CLIP4Clip applies no temperature)

    def __init__(
        self,
        dim: int,
        layers: int = 4,
        heads: int | None = None,
        max_frames: int = 76,
        dropout: float = 0.1,
        pair_chunk: int = 4096,
    ):
        super().__init__()
        self.dim, self.layers, self.max_frames, self.pair_chunk = dim, layers, max_frames, pair_chunk
        self.heads = heads or default_heads(dim)
        self.position_embeddings = nn.Parameter(torch.randn(1 + max_frames, dim) * 0.01)
        self.dropout = nn.Dropout(dropout)
        self.transformer = Transformer(dim, layers, self.heads, act_layer=QuickGELU)
        self.pooler_norm = LayerNorm(dim)
        self.pooler = nn.Sequential(nn.Linear(dim, dim), QuickGELU())
        self.similarity_dense = nn.Linear(dim, 1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, layers={self.layers}, heads={self.heads}, pair_chunk={self.pair_chunk}"

    def score_pairs(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Matching logits of ``N`` aligned pairs (text ``i``, video ``i``): ``sentence [N, D]``, ``frames [N, F, D]``,
        ``mask [N, F]`` -> ``[N]``."""
        sentence, frames, mask = text.sentence, video.frames, video.mask
        n, n_frames, _ = frames.shape
        if n_frames > self.max_frames:
            raise ValueError(
                f"{n_frames} frames but the position table has {self.max_frames} frame rows; "
                f"build the head with max_frames>={n_frames}"
            )
        x = torch.cat([sentence[:, None, :], masked_frames(frames, mask)], dim=1)
        x = self.dropout(x + self.position_embeddings[: 1 + n_frames])
        keys = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        y = self.transformer(x, attn_mask=key_padding_attn_mask(keys, self.heads, x.dtype))
        return self.similarity_dense(self.pooler(self.pooler_norm(y[:, 0]))).squeeze(-1)

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """``[T, V]`` logits, every text against every video, ``pair_chunk`` pairs per transformer call."""
        T, V = len(text), len(video)
        vb = max(1, min(V, self.pair_chunk))
        tb = max(1, self.pair_chunk // vb)
        rows = []
        for i in range(0, T, tb):
            s = text.sentence[i : i + tb]
            blocks = []
            for j in range(0, V, vb):
                fr, m = video.frames[j : j + vb], video.mask[j : j + vb]
                t_n, v_n = s.shape[0], fr.shape[0]
                pairs = self.score_pairs(
                    TextInput(s.repeat_interleave(v_n, dim=0)), VideoInput(fr.repeat(t_n, 1, 1), m.repeat(t_n, 1))
                )
                blocks.append(pairs.view(t_n, v_n))
            rows.append(torch.cat(blocks, dim=1))
        return torch.cat(rows, dim=0)
