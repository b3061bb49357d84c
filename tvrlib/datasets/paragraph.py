"""Paragraph-to-video retrieval: DiDeMo and ActivityNet Captions.

Both datasets annotate several moments per video. Following CLIP4Clip, the
retrieval query of a video is the paragraph made of all its sentences; here the
sentences are joined (single spaces) in temporal order: by mean start time,
then mean end time, then file order. One text per video; every text is a query.
``meta["sentences"]`` keeps each video's sorted sentences and
``meta["times"]`` / ``meta["timestamps"]`` their sorted time annotations.

DiDeMo, under ``root``::

    train_data.json  val_data.json  test_data.json
        a list of {"video": "<flickr name>.<ext>", "description": "...",
                   "times": [[s, e], ...] (5-second segment indices, one pair per
                   annotator), "annotation_id": ..., "num_segments": ..., ...}
    train_list.txt  val_list.txt  test_list.txt   (optional, CLIP4Clip/collaborative-
        experts split lists: when present, the split is exactly these videos, in
        this order)
    videos/<video>                the file named like the "video" field; the same
        name with .mp4/.mkv/.webm/.avi/.mov/.m4v is accepted (videos converted
        to mp4 keep their stem), also in sub-folders.

The video id is the json "video" field as written (extension included).

ActivityNet Captions, under ``root``::

    train.json  val_1.json  [val_2.json]
        {"v_<youtube id>": {"duration": 82.7, "timestamps": [[s, e], ...],
                            "sentences": ["...", ...]}, ...}
    videos/v_<youtube id>.mp4     (.mkv/.webm/.avi accepted; the name without the
        "v_" prefix, as CLIP4Clip stores them, too; sub-folders are searched)

Splits: ``test`` = val_1.json (the standard retrieval test split); ``val_2`` =
val_2.json (the same videos with a second set of annotations); ``val`` = a
deterministic carve-out of ``val_size`` videos from train.json (sorted ids,
numpy default_rng(0) permutation, see ``carve_validation``); ``train`` =
train.json minus those. The original repositories select checkpoints on val_1,
the test split; this library never does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import AnnotationError
from .base import RetrievalData, Video, check_caption
from .files import (
    VideoLocator,
    carve_validation,
    check_split,
    check_video_files,
    read_json,
    reject_duplicates,
    require_file,
    video_candidates,
)

__all__ = [
    "load_didemo",
    "load_activitynet",
    "DIDEMO_FILES",
    "DIDEMO_SPLITS",
    "ACTIVITYNET_FILES",
    "ACTIVITYNET_SPLITS",
]

DIDEMO_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}
DIDEMO_SPLITS = tuple(DIDEMO_FILES)
ACTIVITYNET_FILES = {"train": "train.json", "val": "train.json", "test": "val_1.json", "val_2": "val_2.json"}
ACTIVITYNET_SPLITS = ("train", "val", "test", "val_2")
_DIDEMO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
_ANET_EXTS = (".mp4", ".mkv", ".webm", ".avi")


def _mean_span(spans: object) -> tuple[float, float]:
    """Mean (start, end) of a list of [start, end] pairs; +inf for missing/bad data (sorted last)."""
    try:
        pairs = [(float(s), float(e)) for s, e in spans]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return math.inf, math.inf
    if not pairs:
        return math.inf, math.inf
    return (sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs))


def _temporal_order(keys: Sequence[tuple[float, float]]) -> list[int]:
    return sorted(range(len(keys)), key=lambda i: (keys[i][0], keys[i][1], i))


def _paragraph_data(dataset_name, split, ids, paragraphs, locator, candidates, meta, check_files, videos_dir):
    videos = [Video(v, locator.find(candidates(v))) for v in ids]
    if check_files:
        check_video_files(videos, dataset_name, split, videos_dir)
    texts = [" ".join(sents) for sents in paragraphs]
    n = len(texts)
    return RetrievalData(
        dataset_name, split, videos, texts, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), meta
    )


# --------------------------------------------------------------------------------------
# DiDeMo
# --------------------------------------------------------------------------------------
def load_didemo(
    root: str | os.PathLike,
    split: str,
    *,
    videos_dir: str = "videos",
    use_list_files: bool = True,
    check_files: bool = False,
    dataset_name: str = "didemo",
) -> RetrievalData:
    """Load one DiDeMo split as paragraph retrieval (one joined paragraph per video)."""
    check_split(split, DIDEMO_SPLITS, dataset_name)
    root = Path(root).expanduser()
    path = require_file(root / DIDEMO_FILES[split], dataset_name)
    data = read_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a json list of moment annotations.")
    groups: dict[str, list[tuple[str, tuple[float, float], object, object]]] = {}
    for k, rec in enumerate(data):
        if not isinstance(rec, dict) or "video" not in rec or "description" not in rec:
            raise AnnotationError(f"{path}: entry {k} needs 'video' and 'description' fields.")
        vid = str(rec["video"]).strip()
        if not vid:
            raise AnnotationError(f"{path}: entry {k} has an empty 'video' field.")
        text = check_caption(rec["description"], f"{path} (video {vid}, entry {k})")
        times = rec.get("times", [])
        groups.setdefault(vid, []).append((text, _mean_span(times), times, rec.get("annotation_id")))

    files = {"annotations": str(path)}
    list_path = root / f"{split}_list.txt"
    if use_list_files and list_path.is_file():
        with open(list_path, encoding="utf-8") as f:
            ids = [line.strip() for line in f if line.strip()]
        reject_duplicates(ids, str(list_path))
        absent = [v for v in ids if v not in groups]
        if absent:
            raise AnnotationError(
                f"{list_path}: video id {absent[0]!r} has no annotation in {path}"
                + (f" ({len(absent)} such ids, first: {absent[:5]})" if len(absent) > 1 else "")
                + "."
            )
        files["split_list"] = str(list_path)
    else:
        ids = list(groups)
    paragraphs, times_out, ann_ids = [], [], []
    for vid in ids:
        g = groups[vid]
        order = _temporal_order([x[1] for x in g])
        paragraphs.append([g[i][0] for i in order])
        times_out.append([g[i][2] for i in order])
        ann_ids.append([g[i][3] for i in order])
    meta = {"files": files, "sentences": paragraphs, "times": times_out, "annotation_ids": ann_ids, "paragraph": True}
    return _paragraph_data(
        dataset_name,
        split,
        ids,
        paragraphs,
        VideoLocator(root / videos_dir),
        lambda v: video_candidates(v, _DIDEMO_EXTS),
        meta,
        check_files,
        root / videos_dir,
    )


# --------------------------------------------------------------------------------------
# ActivityNet Captions
# --------------------------------------------------------------------------------------
def _read_anet(path: Path) -> dict:
    data = read_json(path, reject_duplicate_keys=True)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a json object mapping video ids to annotations.")
    return data


def _anet_candidates(vid: str) -> list[str]:
    out = video_candidates(vid, _ANET_EXTS)
    if vid.startswith("v_"):
        out += video_candidates(vid[2:], _ANET_EXTS)
    return out


def load_activitynet(
    root: str | os.PathLike,
    split: str,
    *,
    videos_dir: str = "videos",
    val_size: int = 500,
    check_files: bool = False,
    dataset_name: str = "activitynet",
) -> RetrievalData:
    """Load one ActivityNet Captions split as paragraph retrieval (one paragraph per video)."""
    check_split(split, ACTIVITYNET_SPLITS, dataset_name)
    root = Path(root).expanduser()
    path = require_file(root / ACTIVITYNET_FILES[split], dataset_name)
    data = _read_anet(path)
    ids = [str(k) for k in data]
    meta: dict = {"files": {"annotations": str(path)}, "paragraph": True}
    if split in ("train", "val"):
        val_set = carve_validation(ids, val_size, where=f"{dataset_name} val carve-out from {path}")
        ids = [v for v in ids if (v in val_set) == (split == "val")]
        meta["val_carve_out"] = {
            "from": str(path),
            "val_size": int(val_size),
            "seed": 0,
            "rule": "sorted ids, numpy default_rng(0) permutation, first val_size",
        }
    paragraphs, stamps, durations = [], [], []
    for vid in ids:
        rec = data[vid]
        if not isinstance(rec, dict) or not isinstance(rec.get("sentences"), list) or not rec["sentences"]:
            raise AnnotationError(f"{path}: video {vid!r} needs a non-empty 'sentences' list.")
        sents = [check_caption(s, f"{path} (video {vid}, sentence {k})") for k, s in enumerate(rec["sentences"])]
        ts = rec.get("timestamps")
        if ts is None:
            ts = [None] * len(sents)
            keys = [(math.inf, math.inf)] * len(sents)
        else:
            if not isinstance(ts, list) or len(ts) != len(sents):
                raise AnnotationError(
                    f"{path}: video {vid!r} has {len(sents)} sentences but "
                    f"{len(ts) if isinstance(ts, list) else 'no list of'} timestamps."
                )
            keys = [_mean_span([t]) for t in ts]
        order = _temporal_order(keys)
        paragraphs.append([sents[i] for i in order])
        stamps.append([ts[i] for i in order])
        durations.append(rec.get("duration"))
    meta.update({"sentences": paragraphs, "timestamps": stamps, "durations": durations})
    return _paragraph_data(
        dataset_name,
        split,
        ids,
        paragraphs,
        VideoLocator(root / videos_dir),
        _anet_candidates,
        meta,
        check_files,
        root / videos_dir,
    )
