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
  look at both sides together.

:func:`tvrlib.heads.score_all` scores any head over a whole ``T x V`` grid (one matrix product
for a dual encoder, blocks under a memory budget for an interaction head).

What a head can do besides ``score`` is declared on the class, never discovered with ``hasattr``:

* ``uses_logit_scale`` -- its scores are cosines that training multiplies by CLIP's learnable
  temperature (``False`` for a head that outputs its own logits, e.g. ``tightTransf``);
* ``has_frame_weights`` -- it pools frames with attention weights, and :meth:`RetrievalHead.frame_weights`
  returns them ``[T, V, F]``;
* :meth:`RetrievalHead.pair_bytes` -- the working memory one (text, video) pair needs while scoring
  (sizes the blocks of :func:`~tvrlib.heads.score_all`);
* :meth:`RetrievalHead.score_pairs` -- the scores of aligned pairs (text ``i`` with video ``i``) ``[N]``,
  without the ``N x N`` grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS


@dataclass
class TextInput:
    sentence: torch.Tensor  # [T, D]
    words: torch.Tensor | None = None  # [T, L, D]
    word_mask: torch.Tensor | None = None  # bool [T, L]

    def __len__(self) -> int:
        return self.sentence.shape[0]

    def index(self, idx) -> TextInput:
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return TextInput(self.sentence[idx], pick(self.words), pick(self.word_mask))

    def to(self, device, dtype=torch.float32) -> TextInput:
        mv = lambda t: None if t is None else (t.to(device, dtype) if t.is_floating_point() else t.to(device))  # noqa
        return TextInput(mv(self.sentence), mv(self.words), mv(self.word_mask))


@dataclass
class VideoInput:
    frames: torch.Tensor  # [V, F, D]
    mask: torch.Tensor  # bool [V, F]
    patches: torch.Tensor | None = None  # [V, F, P, D]

    def __len__(self) -> int:
        return self.frames.shape[0]

    def index(self, idx) -> VideoInput:
        return VideoInput(self.frames[idx], self.mask[idx], None if self.patches is None else self.patches[idx])

    def to(self, device, dtype=torch.float32) -> VideoInput:
        return VideoInput(
            self.frames.to(device, dtype),
            self.mask.to(device),
            None if self.patches is None else self.patches.to(device, dtype),
        )


class RetrievalHead(nn.Module):
    """Base class: ``score(text, video) -> [T, V]`` (higher = more similar), plus declared capabilities."""

    is_dual_encoder = False
    #: training multiplies the scores by ``exp(logit_scale)`` (they are cosines); False: the head's own logits
    uses_logit_scale: bool = True
    #: :meth:`frame_weights` returns the attention weights the head gives to each frame of each pair
    has_frame_weights: bool = False

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        raise NotImplementedError

    def score_pairs(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Scores of ``N`` aligned pairs, text ``i`` with video ``i``: ``[N]`` (``len(text) == len(video)``).

        Generic: one ``1 x 1`` :meth:`score` call per pair. Dual encoders and heads with a cheaper
        exact pairwise path override it.
        """
        return torch.stack(
            [self.score(text.index(slice(k, k + 1)), video.index(slice(k, k + 1)))[0, 0] for k in range(len(text))]
        )

    def frame_weights(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Attention weights ``[T, V, F]`` over the frames of every (text, video) pair (``has_frame_weights``)."""
        have = [n for n in HEADS.names(variants=False) if getattr(HEADS.get(n), "has_frame_weights", False)]
        raise NotImplementedError(
            f"{type(self).__name__} has no frame weights (it does not pool frames with "
            f"attention); heads with frame weights (has_frame_weights=True): {', '.join(have)}"
        )

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        """Working memory (bytes) one (text, video) pair needs while scoring; default: four ``[F, D]`` float tensors."""
        return 4 * num_frames * dim * 4


class DualEncoderHead(RetrievalHead):
    """A head whose score is the cosine of independently embedded text and video."""

    is_dual_encoder = True

    def embed_text(self, text: TextInput) -> torch.Tensor:  # [T, D]
        return text.sentence

    def embed_video(self, video: VideoInput) -> torch.Tensor:  # [V, D]
        raise NotImplementedError

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return F.normalize(self.embed_text(text), dim=-1) @ F.normalize(self.embed_video(video), dim=-1).T

    def score_pairs(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """Cosines of aligned pairs ``[N]``: each side embedded once, no ``N x N`` product."""
        return (F.normalize(self.embed_text(text), dim=-1) * F.normalize(self.embed_video(video), dim=-1)).sum(-1)
