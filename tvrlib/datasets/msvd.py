"""MSVD (YouTube2Text) in the layout used by CLIP4Clip (``msvd_data.zip`` + YouTubeClips).

Expected files under ``root``::

    root/
      train_list.txt  val_list.txt  test_list.txt   one video id per line
      raw-captions.pkl     pickled dict: video id -> list of token lists
      YouTubeClips/<video id>.avi                   (.mp4/.webm/.mkv accepted)

A caption is its tokens joined by single spaces. Every caption of a split is a
text-to-video query (MSVD is evaluated multi-caption: about 41 captions per
video in the 670-video test split).

``raw-captions.pkl`` is a Python pickle: only load files from the official
source (unpickling runs code chosen by whoever wrote the file).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import AnnotationError
from .base import RetrievalData, Video, check_caption
from .files import VideoLocator, check_split, check_video_files, reject_duplicates, require_file, video_candidates

__all__ = ["load_msvd", "MSVD_SPLITS"]

MSVD_SPLITS = ("train", "val", "test")
_MSVD_EXTS = (".avi", ".mp4", ".webm", ".mkv")


def _read_id_list(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e}).") from e


def _caption_text(cap: object, where: str) -> str:
    if isinstance(cap, (list, tuple)):
        if not all(isinstance(t, str) for t in cap):
            raise AnnotationError(f"{where}: a caption token is not a string: {cap!r}.")
        cap = " ".join(cap)
    return check_caption(cap, where)


def load_msvd(
    root: str | os.PathLike,
    split: str,
    *,
    captions_pkl: str = "raw-captions.pkl",
    videos_dir: str = "YouTubeClips",
    check_files: bool = False,
    dataset_name: str = "msvd",
) -> RetrievalData:
    """Load one MSVD split; ``meta["caption_count"]`` is the number of captions per video."""
    check_split(split, MSVD_SPLITS, dataset_name)
    root = Path(root).expanduser()
    list_path = require_file(root / f"{split}_list.txt", dataset_name, "split file")
    pkl_path = require_file(root / captions_pkl, dataset_name)
    ids = _read_id_list(list_path)
    reject_duplicates(ids, str(list_path))
    try:
        with open(pkl_path, "rb") as f:
            captions = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
        raise AnnotationError(f"{pkl_path}: cannot unpickle ({e!r}); re-download the file.") from e
    if not isinstance(captions, dict):
        raise AnnotationError(
            f"{pkl_path}: expected a dict video id -> list of captions, got {type(captions).__name__}."
        )
    absent = [v for v in ids if v not in captions]
    if absent:
        raise AnnotationError(
            f"{list_path}: video id {absent[0]!r} has no entry in {pkl_path}"
            + (f" ({len(absent)} such ids, first: {absent[:5]})" if len(absent) > 1 else "")
            + ". The split list and the caption file do not belong together."
        )
    texts: list[str] = []
    t2v: list[int] = []
    counts: list[int] = []
    for j, vid in enumerate(ids):
        caps = captions[vid]
        if isinstance(caps, (str, bytes)) or not isinstance(caps, (list, tuple)) or not caps:
            raise AnnotationError(f"{pkl_path}: video {vid!r} needs a non-empty list of captions, got {caps!r}.")
        for k, cap in enumerate(caps):
            texts.append(_caption_text(cap, f"{pkl_path} (video {vid}, caption {k})"))
            t2v.append(j)
        counts.append(len(caps))
    locator = VideoLocator(root / videos_dir)
    videos = [Video(v, locator.find(video_candidates(v, _MSVD_EXTS))) for v in ids]
    if check_files:
        check_video_files(videos, dataset_name, split, root / videos_dir)
    meta = {"files": {"split_list": str(list_path), "captions": str(pkl_path)}, "caption_count": counts}
    return RetrievalData(
        dataset_name, split, videos, texts, np.asarray(t2v, dtype=np.int64), np.arange(len(texts), dtype=np.int64), meta
    )
