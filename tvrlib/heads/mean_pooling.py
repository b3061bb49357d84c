"""``meanP``: parameter-free mean pooling of frame embeddings (CLIP4Clip).

Paper: Luo et al., "CLIP4Clip: An Empirical Study of CLIP for End to End Video Clip Retrieval"
(Neurocomputing 2022), Sec. 3.2 "parameter-free type"; it is the baseline row (基准) of TopKTemporal's
Table 5 (docs/papers.md; raw text ``../shared/seeds/001_*``).

Equations (CLIP4Clip eq. 4-5, with the frame mask made explicit)::

    v_hat_f = z_f / ||z_f||                              each frame embedding, L2-normalised
    v       = sum_f m_f v_hat_f / max(1, sum_f m_f)      masked mean over the F frames
    s(t, v) = <t / ||t||, v / ||v||>                     cosine with the caption's EOT embedding

Shapes: ``frames [V, F, D]`` with ``mask bool [V, F]`` -> ``embed_video [V, D]``;
``sentence [T, D]`` -> ``embed_text [T, D]``; ``score -> [T, V]``.

Properties the tests check: the score does not depend on the order of the frames, nor on the
values or the number of masked (padding) frames. The sum over frames is accumulated in float64,
so that two videos holding the same frames in a different order get bit-identical embeddings
(an order-blind method then *ties* on our order and direction twins instead of winning or losing
by a rounding error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import HEADS
from .base import DualEncoderHead, TextInput, VideoInput


def masked_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``frames [V, F, D]`` with every masked frame (``mask [V, F] == False``) set to exactly zero.

    Heads call this first, so that whatever sits in a padding slot (zeros, garbage, NaN) cannot
    reach a valid frame through a recurrence or an attention layer.
    """
    if mask.shape != frames.shape[:2]:
        raise ValueError(f"mask must be [V, F] = {tuple(frames.shape[:2])}, got {tuple(mask.shape)}")
    return torch.where(mask[..., None], frames, torch.zeros((), dtype=frames.dtype, device=frames.device))


def masked_mean_pool(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CLIP4Clip's meanP: ``frames [V, F, D]``, ``mask bool [V, F]`` -> L2-normalised ``[V, D]``.

    Each valid frame is L2-normalised, the valid frames are averaged (a video with no valid frame
    gets the zero vector), and the mean is L2-normalised again.
    """
    unit = masked_frames(F.normalize(masked_frames(frames, mask), dim=-1), mask)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1)
    pooled = (unit.double().sum(dim=1) / count).to(frames.dtype)  # float64 sum: order-independent bits
    return F.normalize(pooled, dim=-1)


@HEADS.register("meanP")
class MeanPooling(DualEncoderHead):
    """Parameter-free masked mean of L2-normalised frame embeddings; cosine with the caption."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim  # unused: meanP has no parameters; accepted so every head builds with dim=D

    def embed_text(self, text: TextInput) -> torch.Tensor:  # [T, D]
        return F.normalize(text.sentence, dim=-1)

    def embed_video(self, video: VideoInput) -> torch.Tensor:  # [V, D]
        return masked_mean_pool(video.frames, video.mask)


def frame_contributions(sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How much each frame adds to meanP's score of aligned pairs: ``sentence [N, D]``, ``frames [N, F, D]``,
    ``mask [N, F]`` -> ``[N, F]`` (0 for masked frames).

    Because ``v = m / ||m||`` with ``m = (1/n) sum_f v_hat_f``, the cosine splits exactly into one term per
    frame: ``s = sum_f <t_hat, v_hat_f> / (n ||m||)``; the row sums equal meanP's scores.
    """
    unit = masked_frames(F.normalize(masked_frames(frames, mask), dim=-1), mask)
    count = mask.sum(dim=1, keepdim=True).clamp(min=1)
    mean = unit.double().sum(dim=1) / count
    norm = mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    per_frame = (unit.double() @ F.normalize(sentence, dim=-1).double()[:, :, None]).squeeze(-1)
    return (per_frame / (count * norm)).to(frames.dtype)
