"""Frame-order probes: does a trained head use the order of the frames, and how many frames does it need?

* :func:`reorder_frames` reverses or shuffles each video's valid frames;
* :func:`frame_order_test` re-evaluates a head on original, reversed and shuffled frames (CLIP4Clip's
  ``--eval_frame_order``), with the paired-bootstrap change of R@1 and the twin accuracy per factor;
* :func:`keep_uniform_frames` keeps ``k`` evenly spaced frames per video.

Shapes: ``VideoInput`` ``frames [V, F, D]``, ``mask bool [V, F]`` (padding slots stay where they are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .evaluation import evaluate
from .heads.base import RetrievalHead, TextInput, VideoInput


def reorder_frames(video: VideoInput, mode: str, seed: int = 0) -> VideoInput:
    """``video`` with each clip's valid frames reversed (``"reverse"``) or shuffled (``"shuffle"``, a fixed
    permutation per clip from ``seed``); padding slots stay where they are. ``"original"`` returns it as is."""
    if mode == "original":
        return video
    if mode not in ("reverse", "shuffle"):
        raise ValueError(f"mode must be 'original', 'reverse' or 'shuffle', got {mode!r}")
    rng = np.random.default_rng(seed)
    V, n_frames = video.mask.shape
    src = torch.arange(n_frames).repeat(V, 1)
    mask = video.mask.cpu()
    for j in range(V):
        pos = torch.nonzero(mask[j]).flatten()
        new = pos.flip(0) if mode == "reverse" else pos[torch.as_tensor(rng.permutation(len(pos)))]
        src[j, pos] = new
    src = src.to(video.frames.device)
    frames = video.frames.gather(1, src[..., None].expand_as(video.frames))
    patches = None
    if video.patches is not None:
        patches = video.patches.gather(1, src[..., None, None].expand_as(video.patches))
    return VideoInput(frames, video.mask, patches)


def keep_uniform_frames(video: VideoInput, k: int) -> VideoInput:
    """``video`` with only ``k`` evenly spaced valid frames left unmasked per clip (``linspace`` over the valid
    ones)."""
    mask = torch.zeros_like(video.mask)
    for j in range(mask.shape[0]):
        pos = torch.nonzero(video.mask[j]).flatten()
        if len(pos):
            pick = np.unique(np.linspace(0, len(pos) - 1, min(k, len(pos))).round().astype(np.int64))
            mask[j, pos[pick]] = True
    return VideoInput(video.frames, mask, video.patches)


def frame_order_test(
    head: RetrievalHead,
    texts: TextInput,
    videos: VideoInput,
    data,
    *,
    method: str,
    n_boot: int = 1000,
    seed: int = 0,
    gallery: int | None = None,
    modes=("original", "reverse", "shuffle"),
) -> pd.DataFrame:
    """CLIP4Clip's frame-order evaluation: the same trained head on original, reversed and shuffled test frames.

    Rows per mode: t2v R@1 with CI, the paired-bootstrap change of R@1 against the original frames (CI),
    and the twin accuracy per factor.
    """
    evals = {
        m: evaluate(
            head,
            texts,
            reorder_frames(videos, m, seed),
            data,
            method=method,
            n_boot=n_boot,
            seed=seed,
            gallery=gallery,
            v2t=False,
        )
        for m in modes
    }
    base = evals[modes[0]]
    sub = data if gallery is None else data.subset(gallery)
    q = np.asarray(sub.query_index)
    gold = sub.text_to_video[q]
    rows = []
    for m, ev in evals.items():
        row = {"method": method, "frames": m, "R1": ev.t2v["R1"], "R1_lo": ev.t2v["R1_lo"], "R1_hi": ev.t2v["R1_hi"]}
        if m != modes[0]:
            c = M.compare(ev.sim, base.sim, gold, "t2v", metric="R1", n_boot=n_boot, seed=seed)
            row.update(dR1=c["delta"], dR1_lo=c["ci"][0], dR1_hi=c["ci"][1], p_value=c["p_value"])
        else:
            row.update(dR1=0.0, dR1_lo=0.0, dR1_hi=0.0, p_value=1.0)
        if ev.twins is not None:
            for r in ev.twins.itertuples():
                row[f"twin_{r.factor}"] = r.accuracy
        rows.append(row)
    return pd.DataFrame(rows)
