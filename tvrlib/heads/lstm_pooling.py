"""``seqLSTM``: an LSTM over the frames, a residual to the input frames, then mean pooling (CLIP4Clip).

Paper: Luo et al., "CLIP4Clip" (Neurocomputing 2022), Sec. 3.2 "sequential type", the LSTM variant
(CLIP4Clip in docs/papers.md; method_cards.md card 1). The LSTM reads the valid frames in order, so
unlike ``meanP`` the pooled video depends on the order of the frames.

Equations (with the frame mask made explicit)::

    h_1..h_n = LSTM(z_1..z_n)                 the n valid frames, in order (1 layer, hidden D)
    z'_f     = h_f + z_f                      residual to the original frame embedding
    v        = meanP(z', mask)                see :mod:`tvrlib.heads.mean_pooling`
    s(t, v)  = cos(t, v)

Shapes: ``frames [V, F, D]``, ``mask bool [V, F]`` -> ``embed_video [V, D]``; ``score -> [T, V]``.

Masks need not be a prefix: the valid frames of each video are moved to the front (keeping
their order), packed with their lengths (``pack_padded_sequence``), run through the LSTM and
put back in place, so a masked frame never changes a score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..registry import HEADS
from .base import DualEncoderHead, TextInput, VideoInput
from .mean_pooling import masked_frames, masked_mean_pool


def valid_first_order(mask: torch.Tensor) -> torch.Tensor:
    """``int64 [V, F]``: for each video, the indices of its valid frames (in order), then the masked ones."""
    return torch.argsort((~mask).to(torch.int8), dim=1, stable=True)


@HEADS.register("seqLSTM")
class LSTMPooling(DualEncoderHead):
    """CLIP4Clip's ``seqLSTM``: LSTM over valid frames, residual, masked mean, cosine."""

    def __init__(self, dim: int, num_layers: int = 1):
        super().__init__()
        self.dim = dim
        self.lstm = nn.LSTM(dim, dim, num_layers=num_layers, batch_first=True)

    def embed_text(self, text: TextInput) -> torch.Tensor:  # [T, D]
        return F.normalize(text.sentence, dim=-1)

    def temporal(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``frames [V, F, D]``, ``mask [V, F]`` -> LSTM outputs + residual ``[V, F, D]`` (masked rows are 0)."""
        x = masked_frames(frames, mask)
        V, n_frames, D = x.shape
        order = valid_first_order(mask)
        idx = order[..., None].expand(V, n_frames, D)
        packed_in = x.gather(1, idx)
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # a fully masked video runs on one zero frame
        packed = pack_padded_sequence(packed_in, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=n_frames)
        h = torch.zeros_like(x).scatter(1, idx, out)
        return masked_frames(h + x, mask)

    def embed_video(self, video: VideoInput) -> torch.Tensor:  # [V, D]
        return masked_mean_pool(self.temporal(video.frames, video.mask), video.mask)
