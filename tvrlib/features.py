"""Encode a whole split once and keep the features on disk.

``encode_videos(encoder, data)`` samples frames from every video of a
:class:`~tvrlib.datasets.RetrievalData` split, encodes them and returns
:class:`VideoFeatures` (``frames [V, F, D]``, ``mask bool [V, F]``, optionally
``patches [V, F, P, D]``). ``encode_texts(encoder, texts)`` returns
:class:`~tvrlib.encoders.TextFeatures`. Both go through :class:`tvrlib.cache.FeatureCache`,
keyed by everything that changes the numbers: the dataset and its fingerprint
(video ids and file sizes, or the synthetic config digest), the encoder and a
digest of its weights, the sampler, the number of frames and the frame size.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .cache import FeatureCache, default_cache_dir
from .datasets.base import RetrievalData
from .encoders import ClipEncoder, TextFeatures
from .errors import VideoReadError
from .video import sample_frames

FEATURE_VERSION = 1


@dataclass
class VideoFeatures:
    frames: torch.Tensor  # float32 [V, F, D], CLS embedding of each sampled frame (not normalised)
    mask: torch.Tensor  # bool [V, F], False for padding (short clips) and for unreadable videos
    video_ids: list[str]
    patches: torch.Tensor | None = None  # float16 [V, F, P, D]
    failed: dict[str, str] = field(default_factory=dict)  # video_id -> reason, when on_error="skip"

    def __len__(self) -> int:
        return len(self.video_ids)


def dataset_fingerprint(data: RetrievalData) -> str:
    """A digest of the split's videos: ids, file names and sizes (or the synthetic config digest)."""
    h = hashlib.sha256()
    h.update(json.dumps([data.dataset, data.split, data.meta.get("digest")]).encode())
    for v in data.videos:
        size = v.path.stat().st_size if v.path.exists() else -1
        h.update(f"{v.video_id}|{v.path.name}|{size}\n".encode())
    return h.hexdigest()[:20]


def texts_fingerprint(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:20]


def _cache(cache: FeatureCache | None | bool) -> FeatureCache | None:
    if cache is False:
        return None
    return cache if isinstance(cache, FeatureCache) else FeatureCache(default_cache_dir())


def encode_videos(
    encoder: ClipEncoder,
    data: RetrievalData,
    num_frames: int = 12,
    mode: str = "uniform",
    *,
    cache: FeatureCache | None | bool = None,
    with_patches: bool = False,
    on_error: str = "raise",
    seed: int = 0,
    batch_videos: int = 16,
    progress: bool = True,
) -> VideoFeatures:
    """Frame features of every video of ``data`` (cached).

    ``on_error="raise"`` (default) stops at the first unreadable video with its id and path;
    ``"skip"`` gives that video an all-``False`` mask, records it in ``failed`` and warns.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    parts = {
        "kind": "video",
        "version": FEATURE_VERSION,
        "dataset": data.dataset,
        "split": data.split,
        "fingerprint": dataset_fingerprint(data),
        **encoder.cache_parts,
        "sampler": mode,
        "num_frames": num_frames,
        "patches": with_patches,
        "on_error": on_error,
        "seed": seed if mode.replace("-", "_") == "random_in_segment" else None,
    }

    def compute() -> dict[str, torch.Tensor]:
        from tqdm.auto import tqdm

        rng = np.random.default_rng(seed)
        V, D = data.num_videos, encoder.embed_dim
        out_frames = torch.zeros(V, num_frames, D)
        out_mask = torch.zeros(V, num_frames, dtype=torch.bool)
        out_patches = None
        failed = torch.zeros(V, dtype=torch.bool)
        for start in tqdm(
            range(0, V, batch_videos), desc=f"encoding {data.dataset}/{data.split} videos", disable=not progress
        ):
            batch, rows = [], []
            for j in range(start, min(V, start + batch_videos)):
                v = data.videos[j]
                try:
                    fr, m = sample_frames(v.path, num_frames, encoder.image_size, mode, rng=rng)
                except VideoReadError as err:
                    if on_error == "raise":
                        raise VideoReadError(f"video {v.video_id!r} of {data.dataset}/{data.split}: {err}") from err
                    warnings.warn(f"skipping video {v.video_id!r}: {err}", stacklevel=2)
                    failed[j] = True
                    continue
                batch.append(fr)
                rows.append((j, m))
            if not batch:
                continue
            feats = encoder.encode_frames(np.concatenate(batch), with_patches=with_patches)
            cls = feats.cls.view(len(batch), num_frames, -1)
            for b, (j, m) in enumerate(rows):
                mm = torch.from_numpy(m)
                out_frames[j] = cls[b] * mm[:, None]
                out_mask[j] = mm
            if with_patches:
                p = feats.patches.view(len(batch), num_frames, feats.patches.shape[1], -1).half()
                if out_patches is None:
                    out_patches = torch.zeros(V, num_frames, p.shape[2], p.shape[3], dtype=torch.float16)
                for b, (j, m) in enumerate(rows):
                    out_patches[j] = p[b] * torch.from_numpy(m)[:, None, None]
        out = {"frames": out_frames, "mask": out_mask, "failed": failed}
        if out_patches is not None:
            out["patches"] = out_patches
        return out

    store = _cache(cache)
    t = store.get_or_compute(parts, compute) if store is not None else compute()
    failed = {
        data.videos[j].video_id: "unreadable video (see the warning when it was encoded)"
        for j in torch.nonzero(t["failed"]).flatten().tolist()
    }
    if failed:
        warnings.warn(
            f"{len(failed)} video(s) of {data.dataset}/{data.split} could not be read and are "
            f"masked out: {list(failed)[:5]}",
            stacklevel=2,
        )
    return VideoFeatures(t["frames"], t["mask"], data.video_ids, t.get("patches"), failed)


def encode_texts(
    encoder: ClipEncoder,
    texts: list[str],
    *,
    cache: FeatureCache | None | bool = None,
    with_words: bool = False,
    batch_size: int = 512,
) -> TextFeatures:
    """Sentence (and optionally word-token) features of ``texts`` (cached)."""
    parts = {
        "kind": "text",
        "version": FEATURE_VERSION,
        "texts": texts_fingerprint(texts),
        "n": len(texts),
        **encoder.cache_parts,
        "context_length": encoder.context_length,
        "words": with_words,
    }

    def compute() -> dict[str, torch.Tensor]:
        f = encoder.encode_text(texts, with_words=with_words, batch_size=batch_size)
        out = {"sentence": f.sentence, "mask": f.mask, "tokens": f.tokens}
        if with_words:
            out["words"] = f.words.half()
        return out

    store = _cache(cache)
    t = store.get_or_compute(parts, compute) if store is not None else compute()
    return TextFeatures(t["sentence"], t.get("words"), t["mask"], t["tokens"])
