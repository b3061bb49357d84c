"""LSMDC 2016 (Large Scale Movie Description Challenge) as used for retrieval by CLIP4Clip.

Expected files under ``root``::

    root/
      LSMDC16_annos_training.csv                 train
      LSMDC16_annos_val.csv                      val
      LSMDC16_challenge_1000_publictect.csv      test (the 1000-clip retrieval test)
      videos/<movie>/<clip id>.avi               e.g. videos/0001_American_Beauty/
                                                 0001_American_Beauty_00.00.51.926-00.00.54.129.avi

The annotation files are tab-separated, without a header, one sentence per line:
``clip_id, start_aligned, end_aligned, start_extracted, end_extracted, sentence``.
``<movie>`` is the clip id without its trailing ``_HH.MM.SS.mmm-HH.MM.SS.mmm``.
Videos are also found anywhere below ``videos/`` by file name (an index is
built once, on the first clip not found at its usual place), and ``.mp4``,
``.mkv`` and ``.webm`` are accepted besides ``.avi``.

A clip id may carry several sentences in the training file (the LSMDC readme
says so); such a clip is one video with several texts. Every text is a query.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import AnnotationError
from .base import RetrievalData, Video, check_caption
from .files import VideoLocator, check_split, check_video_files, require_file

__all__ = ["load_lsmdc", "LSMDC_FILES", "LSMDC_SPLITS", "lsmdc_movie"]

LSMDC_FILES = {
    "train": "LSMDC16_annos_training.csv",
    "val": "LSMDC16_annos_val.csv",
    "test": "LSMDC16_challenge_1000_publictect.csv",
}
LSMDC_SPLITS = tuple(LSMDC_FILES)
_LSMDC_EXTS = (".avi", ".mp4", ".mkv", ".webm")
_CLIP_TIME = re.compile(r"^(?P<movie>.+)_\d{2}\.\d{2}\.\d{2}\.\d{3}-\d{2}\.\d{2}\.\d{2}\.\d{3}$")


def lsmdc_movie(clip_id: str) -> str | None:
    """The movie folder of a clip id (``None`` if the id has no timestamp suffix)."""
    m = _CLIP_TIME.match(clip_id)
    return m.group("movie") if m else None


def load_lsmdc(
    root: str | os.PathLike,
    split: str,
    *,
    videos_dir: str = "videos",
    annotation_file: str | None = None,
    check_files: bool = False,
    dataset_name: str = "lsmdc",
) -> RetrievalData:
    """Load one LSMDC split (``annotation_file`` overrides the split's file name).

    ``meta["times"]`` holds, per text, the four time stamps of its line
    (start/end aligned, start/end extracted) as strings.
    """
    check_split(split, LSMDC_SPLITS, dataset_name)
    root = Path(root).expanduser()
    path = require_file(root / (annotation_file or LSMDC_FILES[split]), dataset_name)
    ids: list[str] = []
    index: dict[str, int] = {}
    texts: list[str] = []
    t2v: list[int] = []
    times: list[tuple[str, str, str, str]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) < 6:
                    raise AnnotationError(
                        f"{path}, line {lineno}: expected 6 tab-separated fields (clip_id, start_aligned, "
                        "end_aligned, start_extracted, end_extracted, sentence), found "
                        f"{len(parts)}: {line[:120]!r}."
                    )
                clip = parts[0].strip()
                if not clip:
                    raise AnnotationError(f"{path}, line {lineno}: empty clip id.")
                sentence = "\t".join(parts[5:])
                text = check_caption(sentence, f"{path}, line {lineno} (video {clip})")
                if clip not in index:
                    index[clip] = len(ids)
                    ids.append(clip)
                texts.append(text)
                t2v.append(index[clip])
                times.append(tuple(p.strip() for p in parts[1:5]))
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e}).") from e
    if not ids:
        raise AnnotationError(f"{path}: no annotation lines.")

    locator = VideoLocator(root / videos_dir)
    videos = []
    for clip in ids:
        movie = lsmdc_movie(clip)
        cands = ([f"{movie}/{clip}{e}" for e in _LSMDC_EXTS] if movie else []) + [f"{clip}{e}" for e in _LSMDC_EXTS]
        videos.append(Video(clip, locator.find(cands)))
    if check_files:
        check_video_files(videos, dataset_name, split, root / videos_dir)
    meta = {"files": {"annotations": str(path)}, "times": times}
    return RetrievalData(
        dataset_name, split, videos, texts, np.asarray(t2v, dtype=np.int64), np.arange(len(texts), dtype=np.int64), meta
    )
