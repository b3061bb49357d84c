"""Which event of a synthetic video each sampled frame shows (for partial-relevance analyses)."""

from __future__ import annotations

import numpy as np

from ..video import sample_indices
from .world import VideoSpec


def sampled_frame_events(data, num_frames: int = 12, sampler: str = "uniform") -> np.ndarray:
    """``int [V, num_frames]``: the event (0, 1, ...) shown by each sampled frame of each synthetic video, or
    ``-1`` for a frame on the boundary between two events (it belongs to both). Needs ``meta["video_fields"]``."""
    fields = data.meta.get("video_fields")
    if fields is None:
        raise ValueError(f"{data.dataset}/{data.split} has no synthetic video specs (meta['video_fields'])")
    out = -np.ones((len(fields), num_frames), dtype=np.int64)
    for j, f in enumerate(fields):
        spec = VideoSpec.from_json(f["spec"])
        idx = sample_indices(spec.num_frames, num_frames, sampler)
        for e, (a, b) in enumerate(spec.bounds()):
            inside = (idx > a) & (idx < b)
            out[j, : len(idx)][inside] = e
    return out
