"""Frame sampling with decord: a video file -> ``uint8 [num_frames, size, size, 3]`` and a frame mask.

Three ways to pick ``num_frames`` frames from a clip of ``n`` frames:

* ``"uniform"`` (CLIP4Clip): ``linspace(0, n - 1, num_frames)`` truncated to integers,
  so the first and the last frame are always taken;
* ``"segment_middle"`` (X-Pool's test-time sampler): cut ``[0, n)`` into
  ``num_frames`` equal segments and take the middle frame of each;
* ``"random_in_segment"`` (training-time augmentation): one random frame per
  segment (needs an ``rng``).

A clip with fewer than ``num_frames`` frames gives all its frames, in order, then
zero frames with ``mask = False``. Every later module takes that mask explicitly:
padding is never implied by zeros.

Frames are resized so that the shorter side equals ``size`` (bilinear, with
antialiasing) and centre-cropped to ``size x size``, like CLIP's preprocessing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import VideoReadError

MODES = ("uniform", "segment_middle", "random_in_segment")


def _canonical_mode(mode: str) -> str:
    m = mode.replace("-", "_")
    if m not in MODES:
        raise ValueError(f"unknown frame sampling mode {mode!r}; use one of {MODES}")
    return m


def sample_indices(n: int, num_frames: int, mode: str = "uniform",
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices (``int64 [min(n, num_frames)]``, increasing) of the frames to decode from a clip of ``n``."""
    mode = _canonical_mode(mode)
    if n <= 0:
        raise ValueError("a clip with no frames has nothing to sample")
    if n <= num_frames:
        return np.arange(n, dtype=np.int64)
    if mode == "uniform":
        return np.linspace(0, n - 1, num_frames).astype(np.int64)
    edges = np.linspace(0, n, num_frames + 1).astype(np.int64)
    lo, hi = edges[:-1], edges[1:] - 1
    if mode == "segment_middle":
        return (lo + hi) // 2
    if rng is None:
        raise ValueError("mode='random_in_segment' needs rng=np.random.default_rng(seed)")
    return lo + (rng.random(num_frames) * (hi - lo + 1)).astype(np.int64)


def resize_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [N, H, W, 3]`` -> ``uint8 [N, size, size, 3]``: shorter side to ``size``, then centre crop."""
    n, h, w, _ = frames.shape
    if h == size and w == size:
        return frames
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[:, :, top:top + size, left:left + size]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def open_video(path: str | Path):
    """A decord ``VideoReader`` for ``path``, or a :class:`VideoReadError` that names the file and the fix."""
    import decord

    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"video file not found: {path}. Check the dataset's videos folder "
                             "(see the README, section 'Real data') or re-generate the synthetic benchmark.")
    if path.stat().st_size == 0:
        raise VideoReadError(f"video file is empty (0 bytes): {path}. Re-download or re-generate it.")
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises DECORDError / RuntimeError for unreadable containers
        raise VideoReadError(f"cannot open {path} as a video ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
                             "The file is corrupt, truncated or not a video; re-download or re-generate it.") from err
    if len(vr) == 0:
        raise VideoReadError(f"video has no frames: {path}. Re-download or re-generate it.")
    return vr


def num_video_frames(path: str | Path) -> int:
    return len(open_video(path))


def sample_frames(path: str | Path, num_frames: int = 12, size: int = 224, mode: str = "uniform",
                  rng: np.random.Generator | None = None, return_indices: bool = False):
    """Decode ``num_frames`` frames of the video at ``path``.

    Returns ``(frames, mask)``: ``frames`` is ``uint8 [num_frames, size, size, 3]`` and ``mask``
    ``bool [num_frames]`` (``False`` for padding when the clip is shorter than ``num_frames``).
    With ``return_indices=True`` also the decoded frame indices (``int64 [num_valid]``).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    vr = open_video(path)
    idx = sample_indices(len(vr), num_frames, mode, rng)
    try:
        got = vr.get_batch(idx.tolist()).asnumpy()
    except Exception as err:
        raise VideoReadError(f"decoding frames {idx.tolist()} of {path} failed ({type(err).__name__}); "
                             "the file is probably truncated or corrupt: re-download or re-generate it.") from err
    if got.ndim != 4 or got.shape[0] != len(idx):
        raise VideoReadError(f"{path}: decoder returned {got.shape} for {len(idx)} frames; the file is damaged.")
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    frames[: len(idx)] = resize_center_crop(got, size)
    mask = np.zeros(num_frames, dtype=bool)
    mask[: len(idx)] = True
    return (frames, mask, idx) if return_indices else (frames, mask)
