"""Scoring every (text, video) pair of a split: :func:`score_all`, the one entry point, for every head.

* **Dual encoders** (:class:`~tvrlib.heads.base.DualEncoderHead`): each side is embedded once
  (in batches of ``chunk``, default 256) and the ``[T, V]`` scores are one matrix product.
* **Interaction heads** look at both sides together, so the grid is scored in blocks of
  ``text_chunk x video_chunk`` pairs. By default a block is sized from the head's per-pair
  working memory (:meth:`~tvrlib.heads.base.RetrievalHead.pair_bytes`) so that it stays under
  ``max_bytes`` (:func:`block_shape`); ``chunk=n`` forces ``n x n`` blocks instead.
* **Encoded interaction heads** (:class:`EncodedInteractionHead`) split their work into per-side
  and per-pair parts: each side is encoded once (frame keys, values, Gram matrices; text
  queries), then only the per-pair part runs in blocks. A text-conditioned pooling head would
  otherwise build a ``[T, V, D]`` tensor of pooled videos (X-Pool's reference evaluation: 2 GB at
  1,000 x 1,000 x 512; X-Pool in docs/papers.md, method_cards.md card 2); with blocks and the Gram-matrix path
  (:mod:`tvrlib.heads.gram`) no such tensor exists. ``path`` picks the head's evaluation path
  (``"gram"`` or ``"materialise"`` for attention-pooling heads; ``None`` = the head's default).

The output is always a CPU ``float32 [T, V]`` tensor, computed without gradients with the head in
eval mode; the head's train/eval modes are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import RetrievalHead, TextInput, VideoInput

#: default working-memory budget of one block of pairs in :func:`score_all`
DEFAULT_MAX_BYTES = 128 * 2**20
#: texts (videos) embedded per batch by a dual encoder in :func:`score_all` when no ``chunk`` is given
DUAL_ENCODER_CHUNK = 256


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

    def index(self, idx) -> Encoded:
        return Encoded({k: v[idx] for k, v in self.tensors.items()})

    def to(self, device, dtype=torch.float32) -> Encoded:
        return Encoded(
            {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in self.tensors.items()}
        )


class EncodedInteractionHead(RetrievalHead):
    """An interaction head split into per-side work and per-pair work.

    ``encode_text(text) -> Encoded`` and ``encode_video(video) -> Encoded`` run once per
    side; ``score_encoded(te, ve, path) -> [t, v]`` scores a block of pairs; ``pair_bytes``
    (override it) is the working memory one pair needs in ``score_encoded`` (sizes the blocks).

    ``block_by_memory``: :func:`score_all` bounds this head's blocks by ``pair_bytes`` and ``max_bytes`` even when a
    fixed ``chunk`` is asked (as training's validation and the test ranking do): the token-level heads build
    ``[t, v, words, D]``-sized tensors per block, so a 256 x 256 block is gigabytes and several times slower than
    blocks that fit the budget. Heads written before this flag keep the fixed blocks their committed numbers were
    computed with.
    """

    block_by_memory: bool = False

    def encode_text(self, text: TextInput) -> Encoded:
        raise NotImplementedError

    def encode_video(self, video: VideoInput) -> Encoded:
        raise NotImplementedError

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        raise NotImplementedError

    def score(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        return self.score_encoded(self.encode_text(text), self.encode_video(video))


# --------------------------------------------------------------------------- #
# blocks
# --------------------------------------------------------------------------- #
def block_shape(num_texts: int, num_videos: int, bytes_per_pair: int, max_bytes: int) -> tuple[int, int]:
    """``(text_chunk, video_chunk)`` with ``text_chunk * video_chunk * bytes_per_pair <= max_bytes``.

    Whole video rows first (long matrix products are efficient), at least one pair.
    """
    pairs = max(1, int(max_bytes) // max(1, int(bytes_per_pair)))
    if pairs >= num_videos:
        return max(1, min(num_texts, pairs // num_videos)), num_videos
    return 1, pairs


def _score_blocks(
    score: Callable, text, video, text_chunk: int, video_chunk: int, device: str | torch.device
) -> torch.Tensor:
    """``[T, V]`` on the CPU from ``score(text_block, video_block)`` on ``text_chunk x video_chunk`` blocks.

    ``text`` and ``video`` are :class:`TextInput`/:class:`VideoInput` or :class:`Encoded` sides.
    """
    out = torch.empty(len(text), len(video))
    for i in range(0, len(text), text_chunk):
        tb = text.index(slice(i, i + text_chunk)).to(device)
        for j in range(0, len(video), video_chunk):
            vb = video.index(slice(j, j + video_chunk)).to(device)
            out[i : i + text_chunk, j : j + video_chunk] = score(tb, vb).cpu()
    return out


def _score_dual(head, text: TextInput, video: VideoInput, chunk: int, device) -> torch.Tensor:
    t = torch.cat(
        [
            F.normalize(head.embed_text(text.index(slice(i, i + chunk)).to(device)), dim=-1).cpu()
            for i in range(0, len(text), chunk)
        ]
    )
    v = torch.cat(
        [
            F.normalize(head.embed_video(video.index(slice(j, j + chunk)).to(device)), dim=-1).cpu()
            for j in range(0, len(video), chunk)
        ]
    )
    return t @ v.T


def _encode(encode: Callable, side, chunk: int, device) -> Encoded:
    """``encode(side)`` in chunks of ``chunk`` items, concatenated: a head's per-side work (e.g. TS2-Net's
    transformer over every frame's kept patch tokens) never holds the whole gallery's intermediates at once."""
    parts = [encode(side.index(slice(i, i + chunk)).to(device)) for i in range(0, len(side), chunk)]
    if len(parts) == 1:
        return parts[0]
    return Encoded({k: torch.cat([p[k] for p in parts]) for k in parts[0].tensors})


def _score_all(
    head: RetrievalHead, text: TextInput, video: VideoInput, max_bytes: int, path: str | None, device, chunk: int | None
) -> torch.Tensor:
    if head.is_dual_encoder:
        return _score_dual(head, text, video, chunk or DUAL_ENCODER_CHUNK, device)
    encoded = isinstance(head, EncodedInteractionHead)
    num_frames, dim = video.frames.shape[1], video.frames.shape[2]
    if chunk is not None and encoded and head.block_by_memory:  # at most chunk x chunk, and within max_bytes
        tc, vc = block_shape(
            min(chunk, len(text)), min(chunk, len(video)), head.pair_bytes(num_frames, dim, path), max_bytes
        )
        te, ve = _encode(head.encode_text, text, chunk, device), _encode(head.encode_video, video, chunk, device)
        return _score_blocks(lambda a, b: head.score_encoded(a, b, path), te, ve, tc, vc, device)
    if chunk is not None:  # fixed chunk x chunk blocks; each block encodes its own texts and videos
        if encoded and path is not None:

            def score(tb, vb):
                return head.score_encoded(head.encode_text(tb), head.encode_video(vb), path)
        else:
            score = head.score
        return _score_blocks(score, text, video, chunk, chunk, device)
    text_chunk, video_chunk = block_shape(len(text), len(video), head.pair_bytes(num_frames, dim, path), max_bytes)
    if encoded and head.block_by_memory:  # each side encoded once (in chunks), then the per-pair work in blocks
        te = _encode(head.encode_text, text, DUAL_ENCODER_CHUNK, device)
        ve = _encode(head.encode_video, video, DUAL_ENCODER_CHUNK, device)
        return _score_blocks(lambda a, b: head.score_encoded(a, b, path), te, ve, text_chunk, video_chunk, device)
    if encoded:  # each side encoded once, then the per-pair work in blocks
        te, ve = head.encode_text(text.to(device)), head.encode_video(video.to(device))
        return _score_blocks(lambda a, b: head.score_encoded(a, b, path), te, ve, text_chunk, video_chunk, device)
    return _score_blocks(head.score, text, video, text_chunk, video_chunk, device)


def score_all(
    head: RetrievalHead,
    text: TextInput,
    video: VideoInput,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    path: str | None = None,
    device: str | torch.device = "cpu",
    chunk: int | None = None,
) -> torch.Tensor:
    """Scores of every text against every video, ``[T, V]`` on the CPU, in bounded memory.

    ``max_bytes``: working-memory budget of one block of pairs (interaction heads; blocks are sized
    from ``head.pair_bytes(F, D, path)``). ``chunk``: if given, ``chunk x chunk`` blocks instead
    (dual encoders: embedding batches of ``chunk``). ``path``: the evaluation path of an
    :class:`EncodedInteractionHead` (``"gram"``/``"materialise"``; ``None`` = the head's default;
    ignored by other heads). ``device``: where the blocks are computed.

    Runs without gradients, with the head in eval mode; every submodule's train/eval mode is
    restored afterwards.
    """
    with inference(head):
        return _score_all(head, text, video, max_bytes, path, device, chunk)


@contextmanager
def inference(module: torch.nn.Module):
    """Eval mode and no gradients inside the block; every submodule's train/eval mode is restored afterwards
    (a head being trained can be scored between steps)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        for m, training in modes:
            m.training = training
