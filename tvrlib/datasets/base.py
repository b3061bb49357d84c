"""The one in-memory shape every dataset loader returns.

A loader reads a dataset's own files (MSR-VTT json/csv, MSVD pickle, ...) and
returns a :class:`RetrievalData` for one split. Everything downstream (frame
sampling, encoding, heads, metrics) only ever sees this class.

Conventions
-----------
* ``videos``: one entry per video, in a fixed order; video index ``j`` is the
  column ``j`` of every similarity matrix ``[num_texts, num_videos]``.
* ``texts``: every caption of the split (all of them, so that video-to-text can
  use several captions per video). ``text_to_video[i]`` is the index of the gold
  video of ``texts[i]``.
* ``query_index``: the indices of ``texts`` used as text-to-video queries. For
  MSR-VTT 1k-A style test sets this is one caption per video (the JSFusion
  sentence); for training splits and multi-caption test sets it is every text.
* ``meta``: dataset-specific extras (e.g. the synthetic benchmark's twin pairs
  and caption kinds), never needed by generic code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AnnotationError


@dataclass(frozen=True)
class Video:
    video_id: str
    path: Path


@dataclass
class RetrievalData:
    dataset: str
    split: str
    videos: list[Video]
    texts: list[str]
    text_to_video: np.ndarray  # int64 [num_texts]
    query_index: np.ndarray  # int64 [num_queries], indices into texts
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.text_to_video = np.asarray(self.text_to_video, dtype=np.int64)
        self.query_index = np.asarray(self.query_index, dtype=np.int64)
        ids = [v.video_id for v in self.videos]
        if len(set(ids)) != len(ids):
            seen, dup = set(), []
            for i in ids:
                (dup.append(i) if i in seen else seen.add(i))
            raise AnnotationError(
                f"{self.dataset}/{self.split}: duplicate video ids {sorted(set(dup))[:5]}; "
                "each video must appear once in a split (fix the annotation or split file)."
            )
        if len(self.texts) != len(self.text_to_video):
            raise AnnotationError(
                f"{self.dataset}/{self.split}: {len(self.texts)} texts but {len(self.text_to_video)} gold indices"
            )
        if len(self.text_to_video) and (self.text_to_video.min() < 0 or self.text_to_video.max() >= len(self.videos)):
            raise AnnotationError(f"{self.dataset}/{self.split}: a gold video index is out of range")
        if len(self.query_index) and (self.query_index.min() < 0 or self.query_index.max() >= len(self.texts)):
            raise AnnotationError(f"{self.dataset}/{self.split}: a query index is out of range")

    @property
    def video_ids(self) -> list[str]:
        return [v.video_id for v in self.videos]

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def queries(self) -> tuple[list[str], np.ndarray]:
        """The text-to-video queries and their gold video indices."""
        return [self.texts[i] for i in self.query_index], self.text_to_video[self.query_index]

    def subset(self, n_videos: int) -> RetrievalData:
        """The first ``n_videos`` videos with their texts (for quick looks and tests)."""
        keep_t, query_index = first_videos(self.text_to_video, self.query_index, n_videos)
        return RetrievalData(
            self.dataset,
            self.split,
            self.videos[:n_videos],
            [self.texts[i] for i in keep_t],
            self.text_to_video[keep_t],
            query_index,
            dict(self.meta),
        )


def first_videos(text_to_video, query_index, n_videos: int) -> tuple[np.ndarray, np.ndarray]:
    """What the first ``n_videos`` videos of a split keep: the indices of their captions (``keep``, in order) and
    the queries among them, renumbered as positions in ``keep``. Every ``subset(n_videos)`` of a split uses it."""
    text_to_video = np.asarray(text_to_video)
    keep = np.flatnonzero(text_to_video < n_videos)
    remap = -np.ones(len(text_to_video), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    q = remap[np.asarray(query_index)]
    return keep, q[q >= 0]


def check_caption(caption: object, where: str) -> str:
    """Return a stripped caption, or raise naming ``where`` if it is empty or not a string."""
    if not isinstance(caption, str) or not caption.strip():
        raise AnnotationError(
            f"{where}: empty or whitespace-only caption {caption!r}; "
            "remove it from the annotation file or give it text."
        )
    return " ".join(caption.split())
