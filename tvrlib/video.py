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

Decoding uses decord, and PyAV only where decord fails: decord 0.6 mis-sizes the
RGB rows of some frame widths (8, 16, 24, 48, 72... pixels; ``vr[i]`` then has 4 or
more "channels" and ``get_batch`` raises), so a valid file is decoded again with PyAV
before it is called corrupt. Videos that decord reads are decoded exactly as before.
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


def sample_indices(
    n: int, num_frames: int, mode: str = "uniform", rng: np.random.Generator | None = None
) -> np.ndarray:
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
    x = x[:, :, top : top + size, left : left + size]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class PyAVVideo:
    """A video that decord cannot open but PyAV can: ``len()`` is its frame count.

    Only :func:`open_video` makes these; :func:`sample_frames` decodes them with PyAV.
    """

    def __init__(self, path: Path, num_frames: int):
        self.path, self.num_frames = path, num_frames

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"PyAVVideo({str(self.path)!r}, num_frames={self.num_frames})"


def _pyav_count_frames(path: Path) -> int:
    """Frame count of the first video stream of ``path`` read with PyAV; raises if the file is damaged."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        declared = stream.frames  # 0 where the container does not store it (e.g. Matroska)
        if declared > 0:  # count the packets (cheap, no decoding): fewer than declared = truncated
            packets = sum(1 for packet in container.demux(stream) if packet.size)
            if packets < declared:
                raise ValueError(f"the container declares {declared} frames but holds only {packets}")
            return declared
        return sum(1 for _ in container.decode(stream))


def _pyav_frames(path: Path, indices: list[int]) -> np.ndarray:
    """``uint8 [len(indices), H, W, 3]`` RGB: decode ``path`` with PyAV from the start, keep the wanted frames."""
    import av

    wanted, got, decoded = set(indices), {}, 0
    last = max(indices)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if decoded in wanted:
                got[decoded] = frame.to_ndarray(format="rgb24")
            decoded += 1
            if decoded > last:
                break
    if len(got) < len(wanted):
        raise ValueError(f"frame {last} was asked for but only {decoded} frames could be decoded")
    return np.stack([got[i] for i in indices])


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else ""


def open_video(path: str | Path):
    """A decord ``VideoReader`` for ``path`` (a :class:`PyAVVideo` where only PyAV can open it),
    or a :class:`VideoReadError` that names the file and the fix."""
    import decord

    path = Path(path)
    if not path.exists():
        raise VideoReadError(
            f"video file not found: {path}. Check the dataset's videos folder "
            "(see the README, section 'Real data') or re-generate the synthetic benchmark."
        )
    if path.stat().st_size == 0:
        raise VideoReadError(f"video file is empty (0 bytes): {path}. Re-download or re-generate it.")
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises DECORDError / RuntimeError for unreadable containers
        try:
            vr = PyAVVideo(path, _pyav_count_frames(path))
        except Exception as av_err:
            raise VideoReadError(
                f"cannot open {path} as a video ({type(err).__name__}: {_first_line(err)}; "
                f"PyAV: {type(av_err).__name__}: {_first_line(av_err)}). "
                "The file is corrupt, truncated or not a video; re-download or re-generate it."
            ) from err
    if len(vr) == 0:
        raise VideoReadError(f"video has no frames: {path}. Re-download or re-generate it.")
    return vr


def read_frames(vr, indices, path: str | Path) -> np.ndarray:
    """Frames ``indices`` of ``vr`` (from :func:`open_video` on ``path``) as ``uint8 [N, H, W, 3]`` RGB.

    decord first; PyAV when decord raises or returns a wrong shape. A :class:`VideoReadError`
    naming the file only when both fail.
    """
    path, indices = Path(path), [int(i) for i in indices]
    problem = None
    if not isinstance(vr, PyAVVideo):
        try:
            got = vr.get_batch(indices).asnumpy()
            if got.ndim == 4 and got.shape[0] == len(indices) and got.shape[3] == 3 and got.dtype == np.uint8:
                return got
            problem = f"decord returned {got.dtype} {tuple(got.shape)}"
        except Exception as err:
            problem = f"decord: {type(err).__name__}"
    try:
        return _pyav_frames(path, indices)
    except Exception as err:
        detail = (f"{problem}; " if problem else "") + f"PyAV: {type(err).__name__}: {_first_line(err)}"
        raise VideoReadError(
            f"decoding frames {indices} of {path} failed ({detail}); "
            "the file is probably truncated or corrupt: re-download or re-generate it."
        ) from err


def sample_frames(
    path: str | Path,
    num_frames: int = 12,
    size: int = 224,
    mode: str = "uniform",
    rng: np.random.Generator | None = None,
    return_indices: bool = False,
):
    """Decode ``num_frames`` frames of the video at ``path``.

    Returns ``(frames, mask)``: ``frames`` is ``uint8 [num_frames, size, size, 3]`` and ``mask``
    ``bool [num_frames]`` (``False`` for padding when the clip is shorter than ``num_frames``).
    With ``return_indices=True`` also the decoded frame indices (``int64 [num_valid]``).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    vr = open_video(path)
    idx = sample_indices(len(vr), num_frames, mode, rng)
    got = read_frames(vr, idx, path)
    if got.ndim != 4 or got.shape[0] != len(idx):
        raise VideoReadError(f"{path}: decoder returned {got.shape} for {len(idx)} frames; the file is damaged.")
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    frames[: len(idx)] = resize_center_crop(got, size)
    mask = np.zeros(num_frames, dtype=bool)
    mask[: len(idx)] = True
    return (frames, mask, idx) if return_indices else (frames, mask)
