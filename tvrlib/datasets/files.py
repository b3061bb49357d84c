"""Reading a dataset's files: the helpers every loader shares.

* finding videos: :class:`VideoLocator` (a directory, searched recursively by file name on a miss),
  :func:`video_candidates` (file names to try for an id), :data:`VIDEO_EXTS`;
* the deterministic validation carve-out of a training list: :func:`carve_validation`;
* annotation files: :func:`read_json`, :func:`read_id_csv` (a csv with a ``video_id`` column);
* checks that stop with a message naming the file and the fix: :func:`require_file`,
  :func:`missing_file_error`, :func:`check_video_files`, :func:`check_split`, :func:`reject_duplicates`.

Errors about missing files end with the dataset's download notes and expected layout
(:func:`tvrlib.datasets.registry.help_text`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import AnnotationError, DatasetNotFoundError
from .base import Video
from .registry import help_text

__all__ = [
    "VIDEO_EXTS",
    "VideoLocator",
    "video_candidates",
    "carve_validation",
    "read_json",
    "read_id_csv",
    "require_file",
    "missing_file_error",
    "check_video_files",
    "check_split",
    "reject_duplicates",
]

VIDEO_EXTS = (".mp4", ".avi", ".webm", ".mkv")
_KNOWN_VIDEO_SUFFIXES = {".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp", ".wmv"}


def check_split(split: str, valid: Sequence[str], dataset_name: str) -> str:
    if split not in valid:
        raise ValueError(f"{dataset_name}: unknown split {split!r}; valid splits are {list(valid)}.")
    return split


def missing_file_error(path: Path, dataset_name: str, what: str = "annotation file") -> DatasetNotFoundError:
    path = Path(path)
    parent = path.parent
    where = f"expected directory {parent}"
    if not parent.exists():
        where += " (this directory does not exist)"
    return DatasetNotFoundError(
        f"{dataset_name}: missing {what} {path.name!r} at {path}; {where}.\n{help_text(dataset_name)}"
    )


def require_file(path: Path, dataset_name: str, what: str = "annotation file") -> Path:
    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path, dataset_name, what)
    return path


def reject_duplicates(ids: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    dup: list[str] = []
    for i in ids:
        if i in seen and i not in dup:
            dup.append(i)
        seen.add(i)
    if dup:
        raise AnnotationError(
            f"{where}: duplicate video id {dup[0]!r}"
            + (f" (and {len(dup) - 1} more: {dup[1:6]})" if len(dup) > 1 else "")
            + "; each video may appear only once in a split file."
        )


def carve_validation(ids: Iterable[str], val_size: int, *, seed: int = 0, where: str = "") -> set[str]:
    """The deterministic validation carve-out: ``val_size`` ids out of ``ids``.

    The unique ids are sorted, permuted with ``numpy.random.default_rng(seed)``
    and the first ``val_size`` of the permutation are returned. The result only
    depends on the set of ids, not on their file order.
    """
    pool = sorted(set(ids))
    if not isinstance(val_size, (int, np.integer)) or val_size < 1 or val_size >= len(pool):
        raise ValueError(
            f"{where or 'validation carve-out'}: val_size={val_size!r} must be an integer in "
            f"[1, {len(pool) - 1}] (the training list has {len(pool)} videos); pass a smaller "
            "val_size (or a dedicated validation file where the loader supports one)."
        )
    perm = np.random.default_rng(seed).permutation(len(pool))
    return {pool[i] for i in perm[: int(val_size)]}


class VideoLocator:
    """Finds video files below one directory.

    ``find(candidates)`` tries each relative candidate path in order; if none
    exists it looks the candidates' file names up in a recursive index of the
    directory (built once, on the first miss), and finally returns the first
    candidate's path so that a missing file is reported when frames are read.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._exists = self.directory.is_dir()
        self._top: set[str] | None = None
        self._index: dict[str, Path] | None = None

    def _top_names(self) -> set[str]:
        if self._top is None:
            self._top = set(os.listdir(self.directory)) if self._exists else set()
        return self._top

    def _build_index(self) -> dict[str, Path]:
        if self._index is None:
            index: dict[str, Path] = {}
            if self._exists:
                visited: set[str] = set()
                for dirpath, dirnames, filenames in os.walk(self.directory, followlinks=True):
                    real = os.path.realpath(dirpath)
                    if real in visited:
                        dirnames[:] = []
                        continue
                    visited.add(real)
                    dirnames.sort()
                    for fn in sorted(filenames):
                        index.setdefault(fn, Path(dirpath) / fn)
            self._index = index
        return self._index

    def find(self, candidates: Sequence[str]) -> Path:
        if not candidates:
            raise ValueError("VideoLocator.find needs at least one candidate")
        if self._exists:
            top = self._top_names()
            for c in candidates:
                if "/" not in c:
                    if c in top and (self.directory / c).is_file():
                        return self.directory / c
                elif (self.directory / c).is_file():
                    return self.directory / c
            index = self._build_index()
            for c in candidates:
                hit = index.get(c.rsplit("/", 1)[-1])
                if hit is not None:
                    return hit
        return self.directory / candidates[0]


def video_candidates(video_id: str, exts: Sequence[str] = VIDEO_EXTS, *, prefixes: Sequence[str] = ("",)) -> list[str]:
    """File names to try for ``video_id``: the id itself when it already ends in a
    video suffix, then ``<id without suffix><ext>`` for every ext."""
    out: list[str] = []
    stem = video_id
    suffix = os.path.splitext(video_id)[1].lower()
    if suffix in _KNOWN_VIDEO_SUFFIXES:
        for p in prefixes:
            out.append(p + video_id)
        stem = video_id[: -len(suffix)]
    for p in prefixes:
        for e in exts:
            out.append(f"{p}{stem}{e}")
    return list(dict.fromkeys(out))


def check_video_files(videos: Sequence[Video], dataset_name: str, split: str, videos_dir: Path) -> None:
    """Raise DatasetNotFoundError when any video file of the split is missing."""
    missing = [str(v.path) for v in videos if not Path(v.path).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{dataset_name}/{split}: {len(missing)} of {len(videos)} video files are missing under "
            f"{videos_dir}; first missing: {missing[:5]}.\n{help_text(dataset_name)}"
        )


def read_json(path: Path, *, reject_duplicate_keys: bool = False):
    def _pairs(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise AnnotationError(
                    f"{path}: duplicate key {k!r} (for a video id: each video may appear "
                    "only once in an annotation file)."
                )
            out[k] = v
        return out

    try:
        with open(path, encoding="utf-8") as f:
            if reject_duplicate_keys:
                return json.load(f, object_pairs_hook=_pairs)
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: not valid JSON ({e}); re-download or repair the file.") from e
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e}).") from e


def read_id_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: cannot parse as csv ({e}).") from e
    df.columns = [str(c).strip() for c in df.columns]
    if "video_id" not in df.columns:
        raise AnnotationError(
            f"{path}: no 'video_id' column (columns: {list(df.columns)}); a split csv "
            "needs a header line with a video_id column."
        )
    df["video_id"] = df["video_id"].str.strip()
    empty = np.flatnonzero((df["video_id"] == "").to_numpy())
    if len(empty):
        raise AnnotationError(f"{path}: empty video_id on data row {int(empty[0]) + 1}.")
    return df
