"""``seqTransf``: a temporal transformer over the frames, with or without frame position embeddings
(CLIP4Clip; the "temporal encoding" ablation of TopKTemporal, Table 5; papers in docs/papers.md).

Paper: Luo et al., "CLIP4Clip" (Neurocomputing 2022), Sec. 3.2 "sequential type", the Transformer
variant (method_cards.md card 1). TopKTemporal (``../shared/seeds/001_*``, Table 5) reports the same model
family with and without temporal (position) encoding: 46.8 -> 47.2 R@1 on MSR-VTT.

Equations (with the frame mask made explicit)::

    x_f   = z_f + P_f                               frame embedding + position embedding P_f
                                                    (P = 0 when position_embeddings=False)
    y     = Transformer(x; key mask)                L pre-LN blocks, self-attention over frames,
                                                    masked frames are never attended to
    z'_f  = y_f + z_f                               residual to the *original* frame embedding
    v     = meanP(z', mask)                         see :mod:`tvrlib.heads.mean_pooling`
    s(t, v) = cos(t, v)

Without position embeddings the transformer is permutation-equivariant and meanP is
permutation-invariant, so the score ignores frame order exactly as meanP does; with them it
can tell "A then B" from "B then A". The tests check both.

Shapes: ``frames [V, F, D]``, ``mask bool [V, F]`` -> ``embed_video [V, D]``; ``score -> [T, V]``.

Named variant: ``seqTransf-noPE`` = ``seqTransf`` with ``position_embeddings=False``.

The blocks are open_clip's :class:`open_clip.transformer.Transformer` (the blocks of CLIP's text
tower: pre-LN, multi-head attention, MLP x4 with QuickGELU). As in CLIP4Clip,
:meth:`TemporalTransformer.init_from_clip` copies the first layers of a CLIP text transformer and
its positional embedding, when the widths match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, Transformer
from torch import nn

from ..registry import HEADS
from .base import DualEncoderHead, TextInput, VideoInput
from .mean_pooling import masked_frames, masked_mean_pool

MASK_VALUE = -1e6  # additive attention mask for padding (CLIP4Clip uses (1 - mask) * -1e6)


def key_padding_attn_mask(mask: torch.Tensor, heads: int, dtype=torch.float32) -> torch.Tensor:
    """Additive attention mask ``[N * heads, L, L]`` from ``mask bool [N, L]`` (``False`` = padding).

    Every query position may attend to every valid key and to no padded key. A row whose keys are all
    padding gets a constant mask (uniform attention over padding, no NaN); heads mask such rows later.
    """
    n, length = mask.shape
    add = torch.zeros(n, 1, 1, length, dtype=dtype, device=mask.device)
    add = add.masked_fill(~mask[:, None, None, :], MASK_VALUE)
    return add.expand(n, heads, length, length).reshape(n * heads, length, length)


def default_heads(dim: int) -> int:
    """Attention heads for width ``dim``: 64-wide heads as in CLIP (8 for 512), at least 1."""
    return max(1, dim // 64)


@HEADS.register("seqTransf")
class TemporalTransformer(DualEncoderHead):
    """CLIP4Clip's ``seqTransf``: frames (+ position embeddings) -> transformer -> + frames -> meanP."""

    def __init__(
        self,
        dim: int,
        layers: int = 4,
        heads: int | None = None,
        max_frames: int = 77,
        position_embeddings: bool = True,
        init_from: nn.Module | None = None,
    ):
        super().__init__()
        self.dim, self.layers, self.max_frames = dim, layers, max_frames
        if init_from is not None and heads is None:
            heads = _clip_text_heads(init_from)
        self.heads = heads or default_heads(dim)
        self.frame_position_embeddings = nn.Embedding(max_frames, dim) if position_embeddings else None
        if self.frame_position_embeddings is not None:
            nn.init.normal_(self.frame_position_embeddings.weight, std=0.01)  # CLIP's init for positions
        self.transformer = Transformer(dim, layers, self.heads, act_layer=QuickGELU)
        if init_from is not None:
            self.init_from_clip(init_from)

    @property
    def position_embeddings(self) -> bool:
        return self.frame_position_embeddings is not None

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, layers={self.layers}, heads={self.heads}, position_embeddings={self.position_embeddings}"
        )

    @torch.no_grad()
    def init_from_clip(self, clip_model: nn.Module) -> list[str]:
        """Copy the first ``layers`` blocks of ``clip_model``'s text transformer and the first ``max_frames``
        rows of its positional embedding (CLIP4Clip's initialisation). Returns what was copied."""
        text = getattr(clip_model, "transformer", None)
        if text is None or not hasattr(text, "resblocks"):
            raise ValueError("init_from must be an open_clip CLIP model with a text transformer (model.transformer)")
        if text.width != self.dim:
            raise ValueError(
                f"cannot initialise a width-{self.dim} temporal transformer from a CLIP text tower of "
                f"width {text.width}; build the head with dim={text.width} or without init_from"
            )
        copied = []
        for i in range(min(self.layers, len(text.resblocks))):
            self.transformer.resblocks[i].load_state_dict(text.resblocks[i].state_dict())
            copied.append(f"block {i}")
        pos = getattr(clip_model, "positional_embedding", None)
        if self.frame_position_embeddings is not None and pos is not None:
            n = min(self.max_frames, pos.shape[0])
            self.frame_position_embeddings.weight[:n] = pos[:n]
            copied.append(f"{n} position rows")
        return copied

    def embed_text(self, text: TextInput) -> torch.Tensor:  # [T, D]
        return F.normalize(text.sentence, dim=-1)

    def temporal(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``frames [V, F, D]``, ``mask [V, F]`` -> transformer outputs + residual ``[V, F, D]`` (masked rows 0)."""
        z = masked_frames(frames, mask)
        n_frames = z.shape[1]
        if n_frames > self.max_frames:
            raise ValueError(
                f"{n_frames} frames but the position table has {self.max_frames} rows; "
                f"build the head with max_frames>={n_frames}"
            )
        x = z
        if self.frame_position_embeddings is not None:
            x = x + self.frame_position_embeddings.weight[:n_frames]
        y = self.transformer(x, attn_mask=key_padding_attn_mask(mask, self.heads, x.dtype))
        return masked_frames(y + z, mask)

    def embed_video(self, video: VideoInput) -> torch.Tensor:  # [V, D]
        return masked_mean_pool(self.temporal(video.frames, video.mask), video.mask)


HEADS.register_variant("seqTransf-noPE", "seqTransf", position_embeddings=False)


def _clip_text_heads(clip_model: nn.Module) -> int:
    block = clip_model.transformer.resblocks[0]
    return int(block.attn.num_heads)
