"""The interface every retrieval head shares.

A head turns text features and video features into a score matrix ``[T, V]``
(``T`` texts, ``V`` videos). Inputs are the cached CLIP features:

* :class:`TextInput`  ``sentence [T, D]`` (EOT embedding), optionally ``words [T, L, D]``
  with ``word_mask bool [T, L]``;
* :class:`VideoInput` ``frames [V, F, D]`` (per-frame CLS embeddings) with ``mask bool [V, F]``
  (``False`` = padding; masks are always explicit), optionally ``patches [V, F, P, D]``.

Two families:

* **dual encoders** (:class:`DualEncoderHead`) embed each side on its own
  (``embed_text -> [T, D]``, ``embed_video -> [V, D]``) and score by cosine, so a
  gallery is embedded once and searched with one matrix product;
* **interaction heads** (:class:`RetrievalHead` subclasses that override ``score``)
  look at both sides together; :func:`score_chunked` evaluates them over a large
  ``T x V`` grid in blocks so memory stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TextInput:
    sentence: torch.Tensor  # [T, D]
    words: torch.Tensor | None = None  # [T, L, D]
    word_mask: torch.Tensor | None = None  # bool [T, L]

    def __len__(self) -> int:
        return self.sentence.shape[0]

    def index(self, idx) -> "TextInput":
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return TextInput(self.sentence[idx], pick(self.words), pick(self.word_mask))

    def to(self, device, dtype=torch.float32) -> "TextInput":
        mv = lambda t: None if t is None else (t.to(device, dtype) if t.is_floating_point() else t.to(device))  # noqa
        return TextInput(mv(self.sentence), mv(self.words), mv(self.word_mask))


@dataclass
class VideoInput:
    frames: torch.Tensor  # [V, F, D]
    mask: torch.Tensor  # bool [V, F]
    patches: torch.Tensor | None = None  # [V, F, P, D]

    def __len__(self) -> int:
        return self.frames.shape[0]

    def index(self, idx) -> "VideoInput":
        return VideoInput(self.frames[idx], self.mask[idx], None if self.patches is None else self.patches[idx])

    def to(self, device, dtype=torch.float32) -> "VideoInput":
        return VideoInput(self.frames.to(device, dtype), self.mask.to(device),
                          None if self.patches is None else self.patches.to(device, dtype))


class RetrievalHead(nn.Module):
    """Base class: ``score(text, video) -> [T, V]`` (higher = more similar)."""

    is_dual_encoder = False

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        raise NotImplementedError


class DualEncoderHead(RetrievalHead):
    """A head whose score is the cosine of independently embedded text and video."""

    is_dual_encoder = True

    def embed_text(self, text: TextInput) -> torch.Tensor:  # [T, D]
        return text.sentence

    def embed_video(self, video: VideoInput) -> torch.Tensor:  # [V, D]
        raise NotImplementedError

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return F.normalize(self.embed_text(text), dim=-1) @ F.normalize(self.embed_video(video), dim=-1).T


@torch.no_grad()
def score_chunked(head: RetrievalHead, text: TextInput, video: VideoInput, text_chunk: int = 256,
                  video_chunk: int = 256, device: str | torch.device = "cpu") -> torch.Tensor:
    """``[T, V]`` scores computed block by block (``text_chunk x video_chunk`` pairs at a time), on CPU output.

    Dual encoders embed each side once and take one matrix product instead.
    """
    head.eval()
    if head.is_dual_encoder:
        t = torch.cat([F.normalize(head.embed_text(text.index(slice(i, i + text_chunk)).to(device)), dim=-1).cpu()
                       for i in range(0, len(text), text_chunk)])
        v = torch.cat([F.normalize(head.embed_video(video.index(slice(j, j + video_chunk)).to(device)), dim=-1).cpu()
                       for j in range(0, len(video), video_chunk)])
        return t @ v.T
    out = torch.empty(len(text), len(video))
    for i in range(0, len(text), text_chunk):
        tb = text.index(slice(i, i + text_chunk)).to(device)
        for j in range(0, len(video), video_chunk):
            out[i:i + text_chunk, j:j + video_chunk] = head.score(tb, video.index(slice(j, j + video_chunk)).to(device)).cpu()
    return out
