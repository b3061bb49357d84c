"""Encode a whole split once and keep the features on disk.

``encode_videos(encoder, data)`` samples frames from every video of a
:class:`~tvrlib.datasets.RetrievalData` split, encodes them and returns
:class:`VideoFeatures` (``frames [V, F, D]``, ``mask bool [V, F]``, optionally
``patches [V, F, P, D]``). ``encode_texts(encoder, texts)`` returns
:class:`~tvrlib.encoders.TextFeatures`. Both go through :class:`tvrlib.cache.FeatureCache`,
keyed by everything that changes the numbers: the dataset and its fingerprint
(video ids and file sizes, or the synthetic config digest), the encoder and a
digest of its weights, the sampler, the number of frames and the frame size.

Extraction at real scale (:func:`extract_videos`, ``python -m tvrlib extract``): a
``torch.utils.data.DataLoader`` decodes, samples and resizes the videos (in ``num_workers``
processes; 0 = in this one) while this process encodes them in batches of ``batch_videos``.
A split of more than ``chunk_videos`` videos is written as numbered *chunks* to a partial area
of the cache (:meth:`tvrlib.cache.FeatureCache.partial`), each one an ordinary atomic cache
entry (temp file + rename, manifest last, checksum), so a killed extraction leaves complete
chunks or nothing readable. A re-run reuses the chunks whose videos (ids, file names, sizes)
and settings match and decodes only the rest; when every chunk exists they are concatenated
into the split's one entry (the same key and the same tensors, to the bit, as encoding the
split in one go: chunks start on batch boundaries, so every batch is the same) and the
partial area is removed.

The partial area is keyed by the settings and the split's list of videos, *not* by the file
sizes; each chunk's key adds the sizes of its own videos. So a re-run after fixing a corrupt
or missing file (which changes its size, hence the final key) still reuses the chunks before
it, and a chunk is never reused for other settings, another encoder or other videos.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .cache import CacheMissError, FeatureCache, cache_key, default_cache_dir
from .datasets.base import RetrievalData
from .encoders import ClipEncoder, TextFeatures
from .errors import CacheError, VideoReadError
from .video import MODES, sample_frames

FEATURE_VERSION = 1
#: videos per chunk of a resumable extraction (rounded up to a multiple of ``batch_videos``); a split of at most
#: this many videos is encoded in one go, without chunks
DEFAULT_CHUNK_VIDEOS = 512


@dataclass
class VideoFeatures:
    frames: torch.Tensor  # float32 [V, F, D], CLS embedding of each sampled frame (not normalised)
    mask: torch.Tensor  # bool [V, F], False for padding (short clips) and for unreadable videos
    video_ids: list[str]
    patches: torch.Tensor | None = None  # float16 [V, F, P, D]
    failed: dict[str, str] = field(default_factory=dict)  # video_id -> reason, when on_error="skip"

    def __len__(self) -> int:
        return len(self.video_ids)


@dataclass
class ExtractionStats:
    """What one :func:`extract_videos` call did. ``seconds`` is the decode + encode time of this run
    (DataLoader start included, cache reads and the final write not), ``frames`` the frames it encoded."""

    dataset: str
    split: str
    key: str | None  # the split's cache entry (None without a cache)
    videos: int
    cache_hit: bool = False
    chunks: int = 1
    chunks_reused: int = 0
    videos_reused: int = 0
    videos_encoded: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        where = f"{self.dataset}/{self.split}"
        if self.cache_hit:
            return f"{where}: {self.videos} videos already in the feature cache (entry {self.key})"
        reused = f", {self.videos_reused} reused from {self.chunks_reused} saved chunk(s)" if self.chunks_reused else ""
        return (
            f"{where}: {self.videos_encoded} of {self.videos} videos encoded{reused}; {self.frames} frames in "
            f"{self.seconds:.1f} s = {self.frames_per_s:.1f} frames/s (decode + encode)"
            + (f"; cache entry {self.key}" if self.key else "")
        )


def dataset_fingerprint(data: RetrievalData) -> str:
    """A digest of the split's videos: ids, file names and sizes (or the synthetic config digest)."""
    h = hashlib.sha256()
    h.update(json.dumps([data.dataset, data.split, data.meta.get("digest")]).encode())
    for v in data.videos:
        size = v.path.stat().st_size if v.path.exists() else -1
        h.update(f"{v.video_id}|{v.path.name}|{size}\n".encode())
    return h.hexdigest()[:20]


def _videos_digest(videos, with_sizes: bool) -> str:
    h = hashlib.sha256()
    for v in videos:
        size = (v.path.stat().st_size if v.path.exists() else -1) if with_sizes else ""
        h.update(f"{v.video_id}|{v.path.name}|{size}\n".encode())
    return h.hexdigest()[:20]


def texts_fingerprint(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:20]


def _cache(cache: FeatureCache | None | bool) -> FeatureCache | None:
    if cache is False:
        return None
    return cache if isinstance(cache, FeatureCache) else FeatureCache(default_cache_dir())


def _is_random(mode: str) -> bool:
    return mode.replace("-", "_") == "random_in_segment"


def video_parts(
    encoder: ClipEncoder,
    data: RetrievalData,
    num_frames: int = 12,
    mode: str = "uniform",
    *,
    with_patches: bool = False,
    on_error: str = "raise",
    seed: int = 0,
) -> dict:
    """The cache-key parts of :func:`encode_videos`'s entry for these arguments."""
    return {
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
        "seed": seed if _is_random(mode) else None,
    }


# ------------------------------------------------------------------------------------------ decoding


class _SplitVideos(torch.utils.data.Dataset):
    """Item ``j``: ``(j, frames uint8 [F, S, S, 3], mask bool [F], error)`` of the split's video ``j``.

    Runs in the DataLoader's workers: decode, sample, resize and centre-crop. An unreadable video gives
    ``frames = mask = None`` and its :class:`VideoReadError` (the main process decides: raise or skip).
    ``rng`` is only set for ``random_in_segment``, which then runs in the main process, in order."""

    def __init__(self, videos, num_frames: int, size: int, mode: str) -> None:
        self.videos, self.num_frames, self.size, self.mode = videos, num_frames, size, mode
        self.rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, j: int):
        try:
            fr, m = sample_frames(self.videos[j].path, self.num_frames, self.size, self.mode, rng=self.rng)
        except VideoReadError as err:
            return j, None, None, err
        return j, fr, m, None


def _as_list(batch):
    return batch


def _rng_to_tensor(rng: np.random.Generator) -> torch.Tensor:
    text = json.dumps(rng.bit_generator.state, sort_keys=True).encode()
    return torch.tensor(list(text), dtype=torch.uint8)


def _rng_from_tensor(t: torch.Tensor) -> np.random.Generator:
    state = json.loads(bytes(t.tolist()).decode())
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)


class _Progress:
    """tqdm when it is installed, else a printed line every few seconds; videos done / total and frames/s."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool) -> None:
        self.enabled, self.total, self.done, self.desc = enabled, total, initial, desc
        self.bar, self._last = None, 0.0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency, the fallback is for trimmed installs
            return
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="video")

    def update(self, n: int, fps: float) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{fps:.1f} frames/s", refresh=False)
            self.bar.update(n)
        elif time.monotonic() - self._last > 5 or self.done == self.total:
            self._last = time.monotonic()
            print(f"{self.desc}: {self.done}/{self.total} videos, {fps:.1f} frames/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _chunk_ranges(n_videos: int, chunk_videos: int, batch_videos: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each chunk; every chunk but the last is a whole number of batches."""
    size = max(1, math.ceil(chunk_videos / batch_videos)) * batch_videos
    return [(s, min(n_videos, s + size)) for s in range(0, n_videos, size)]


def _encode_batch(encoder, data, items, chunk, num_frames, with_patches, on_error) -> int:
    """Encode one DataLoader batch into ``chunk`` (rows ``j - chunk["start"]``), exactly as the one-go path
    did; returns the number of frames encoded. An unreadable video raises (naming it) or is skipped."""
    where, s = f"{data.dataset}/{data.split}", chunk["start"]
    batch, rows = [], []
    for j, fr, m, err in items:
        if err is not None:
            v = data.videos[j]
            if on_error == "raise":
                raise VideoReadError(f"video {v.video_id!r} of {where} ({v.path}): {err}") from err
            warnings.warn(f"skipping video {v.video_id!r} of {where}: {err}", stacklevel=4)
            chunk["failed"][j - s] = True
            continue
        batch.append(fr)
        rows.append((j - s, torch.from_numpy(m)))
    if not batch:
        return 0
    feats = encoder.encode_frames(np.concatenate(batch), with_patches=with_patches)
    cls = feats.cls.view(len(batch), num_frames, -1)
    for b, (r, mm) in enumerate(rows):
        chunk["frames"][r] = cls[b] * mm[:, None]
        chunk["mask"][r] = mm
    if with_patches:
        p = feats.patches.view(len(batch), num_frames, feats.patches.shape[1], -1).half()
        if "patches" not in chunk:
            chunk["patches"] = torch.zeros(len(chunk["mask"]), num_frames, p.shape[2], p.shape[3], dtype=torch.float16)
        for b, (r, mm) in enumerate(rows):
            chunk["patches"][r] = p[b] * mm[:, None, None]
    return len(batch) * num_frames


def _concat(outs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The split's tensors from its chunks', in order (a chunk whose every video failed has no patches)."""
    if len(outs) == 1:
        return {k: v for k, v in outs[0].items() if k != "rng_state"}
    out = {name: torch.cat([o[name] for o in outs]) for name in ("frames", "mask", "failed")}
    with_p = [o["patches"] for o in outs if "patches" in o]
    if with_p:
        _, F, P, D = with_p[0].shape
        zeros = lambda n: torch.zeros(n, F, P, D, dtype=torch.float16)  # a chunk whose every video failed
        out["patches"] = torch.cat([o["patches"] if "patches" in o else zeros(len(o["mask"])) for o in outs])
    return out


def extract_videos(
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
    num_workers: int = 0,
    chunk_videos: int = DEFAULT_CHUNK_VIDEOS,
) -> tuple[VideoFeatures, ExtractionStats]:
    """:func:`encode_videos` plus what it did (:class:`ExtractionStats`: videos reused and encoded, frames/s).

    ``num_workers`` DataLoader processes decode (0: this process; ``random_in_segment`` always uses 0, since
    its random draws must follow the video order); ``chunk_videos`` videos per resumable chunk.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if batch_videos < 1 or chunk_videos < 1 or num_workers < 0:
        raise ValueError(
            f"batch_videos and chunk_videos must be >= 1 and num_workers >= 0, got {batch_videos}, "
            f"{chunk_videos}, {num_workers}"
        )
    if mode.replace("-", "_") not in MODES:
        raise ValueError(f"unknown frame sampling mode {mode!r}; use one of {MODES}")
    random_mode = _is_random(mode)
    if random_mode and num_workers > 0:
        warnings.warn(
            "mode='random_in_segment' draws its frames in video order from one generator: decoding in this "
            f"process (num_workers={num_workers} ignored)",
            stacklevel=2,
        )
        num_workers = 0
    parts = video_parts(encoder, data, num_frames, mode, with_patches=with_patches, on_error=on_error, seed=seed)
    store = _cache(cache)
    key = cache_key(**parts) if store is not None else None
    V, where = data.num_videos, f"{data.dataset}/{data.split}"
    stats = ExtractionStats(data.dataset, data.split, key, V)
    ranges = _chunk_ranges(V, chunk_videos, batch_videos) if V else []
    stats.chunks = len(ranges)
    # chunks go to disk only when there is a cache and more than one of them
    area_key = None
    if store is not None and len(ranges) > 1:
        area_parts = {k: v for k, v in parts.items() if k != "fingerprint"}
        area_parts.update(role="partial", digest=data.meta.get("digest"), videos=_videos_digest(data.videos, False))
        area_key = cache_key(**area_parts)

    def chunk_parts(i: int) -> dict:
        s, e = ranges[i]
        return {
            "chunk_of": area_key,
            "chunk": i,
            "start": s,
            "stop": e,
            "batch_videos": batch_videos,
            "videos": _videos_digest(data.videos[s:e], True),
        }

    def compute() -> dict[str, torch.Tensor]:
        stats.cache_hit = False
        area = store.partial(area_key) if area_key is not None else None
        outs: list[dict[str, torch.Tensor] | None] = [None] * len(ranges)
        if area is not None:
            for i in range(len(ranges)):
                ckey = cache_key(**chunk_parts(i))
                try:
                    got = area.load(ckey)
                except CacheMissError:
                    got = None
                except CacheError as err:  # torn or modified: never used, recomputed
                    warnings.warn(f"{err}; re-encoding chunk {i} of {where}", RuntimeWarning, stacklevel=3)
                    area.delete(ckey)
                    got = None
                if got is not None and len(got.get("mask", ())) != ranges[i][1] - ranges[i][0]:
                    got = None
                if got is None and random_mode:
                    break  # the random draws of a later chunk depend on this one: re-encode from here on
                outs[i] = got
        rng = np.random.default_rng(seed)
        todo = [i for i, o in enumerate(outs) if o is None]
        if random_mode and todo and todo[0] > 0:
            rng = _rng_from_tensor(outs[todo[0] - 1]["rng_state"])
        stats.chunks_reused = len(ranges) - len(todo)
        stats.videos_reused = sum(e - s for (s, e), o in zip(ranges, outs) if o is not None)

        dataset = _SplitVideos(data.videos, num_frames, encoder.image_size, mode)
        dataset.rng = rng if random_mode else None
        batches, owner = [], []
        for i in todo:
            s, e = ranges[i]
            for b in range(s, e, batch_videos):
                batches.append(list(range(b, min(e, b + batch_videos))))
                owner.append(i)
        bar = _Progress(V, stats.videos_reused, f"encoding {where} videos", progress)
        t0, frames_done = time.perf_counter(), 0
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=_as_list
        )
        it = iter(loader) if batches else iter(())
        chunk: dict | None = None  # the chunk being encoded: its first video and its tensors
        try:
            for bi, items in enumerate(it):
                i = owner[bi]
                if chunk is None:
                    s, e = ranges[i]
                    chunk = {
                        "start": s,
                        "frames": torch.zeros(e - s, num_frames, encoder.embed_dim),
                        "mask": torch.zeros(e - s, num_frames, dtype=torch.bool),
                        "failed": torch.zeros(e - s, dtype=torch.bool),
                    }
                frames_done += _encode_batch(encoder, data, items, chunk, num_frames, with_patches, on_error)
                stats.videos_encoded += len(items)
                bar.update(len(items), frames_done / max(time.perf_counter() - t0, 1e-9))
                if bi + 1 == len(batches) or owner[bi + 1] != i:  # the chunk is complete
                    done = {k: chunk[k] for k in ("frames", "mask", "failed", "patches") if k in chunk}
                    if area is not None:
                        if random_mode:
                            done["rng_state"] = _rng_to_tensor(rng)
                        try:
                            area.save(cache_key(**chunk_parts(i)), done, chunk_parts(i))
                        except OSError as err:
                            warnings.warn(
                                f"could not save chunk {i} of {where} under {area.root} ({err}); going on "
                                "without saving chunks (an interrupted run will start over)",
                                RuntimeWarning,
                                stacklevel=3,
                            )
                            area = None
                    outs[i] = done
                    chunk = None
        except VideoReadError as err:
            if area is not None and on_error == "raise":
                n_saved = sum(o is not None for o in outs)
                raise VideoReadError(
                    f"{err} {n_saved} of the {len(ranges)} chunks of {where} are saved under {area.root}; "
                    "fix or replace the file and run again to continue from there."
                ) from err
            raise
        finally:
            stats.frames, stats.seconds = frames_done, time.perf_counter() - t0
            bar.close()
            del it  # shuts the workers down now, also when a video raised
        return _concat(outs) if outs else _empty(num_frames, encoder.embed_dim)

    if store is None:
        t = compute()
    else:
        stats.cache_hit = True  # unless compute() runs
        t = store.get_or_compute(parts, compute, desc=f"{where} video features")
        if area_key is not None and store.has(key):
            store.drop_partial(area_key)
    failed = {
        data.videos[j].video_id: "unreadable video (see the warning when it was encoded)"
        for j in torch.nonzero(t["failed"]).flatten().tolist()
    }
    if failed:
        warnings.warn(
            f"{len(failed)} video(s) of {where} could not be read and are masked out: {list(failed)[:5]}",
            stacklevel=3,
        )
    return VideoFeatures(t["frames"], t["mask"], data.video_ids, t.get("patches"), failed), stats


def _empty(num_frames: int, dim: int) -> dict[str, torch.Tensor]:
    return {
        "frames": torch.zeros(0, num_frames, dim),
        "mask": torch.zeros(0, num_frames, dtype=torch.bool),
        "failed": torch.zeros(0, dtype=torch.bool),
    }


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
    num_workers: int = 0,
    chunk_videos: int = DEFAULT_CHUNK_VIDEOS,
) -> VideoFeatures:
    """Frame features of every video of ``data`` (cached).

    ``on_error="raise"`` (default) stops at the first unreadable video with its id and path;
    ``"skip"`` gives that video an all-``False`` mask, records it in ``failed`` and warns.
    ``num_workers`` DataLoader processes decode while this one encodes; a split of more than
    ``chunk_videos`` videos is saved in resumable chunks (see the module docstring). Neither
    changes the cache key or the features.
    """
    return extract_videos(
        encoder,
        data,
        num_frames,
        mode,
        cache=cache,
        with_patches=with_patches,
        on_error=on_error,
        seed=seed,
        batch_videos=batch_videos,
        progress=progress,
        num_workers=num_workers,
        chunk_videos=chunk_videos,
    )[0]


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
