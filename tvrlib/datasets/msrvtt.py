"""MSR-VTT in the layout used by CLIP4Clip (``msrvtt_data.zip`` + the raw videos).

Expected files under ``root`` (names are keyword arguments, so the synthetic
benchmark reuses this loader with its own file names)::

    root/
      MSRVTT_data.json            {"videos": [...], "sentences": [...], ...}
      MSRVTT_train.9k.csv         column video_id   (or MSRVTT_train.7k.csv)
      MSRVTT_JSFUSION_test.csv    columns key,vid_key,video_id,sentence
      videos/video0.mp4 ...       (.avi/.webm/.mkv accepted; sub-folders such
                                   as videos/all/ are found by file name)

Splits
------
* ``train``: the videos of ``train_csv`` minus the validation videos, with every
  json caption of each video. Every text is a query.
* ``val``: the videos of ``val_csv`` when given. Otherwise a deterministic
  carve-out of ``val_size`` videos from ``train_csv``: the ids are sorted, then
  ``numpy.random.default_rng(0).permutation`` picks the first ``val_size`` of
  them (see :func:`tvrlib.datasets.files.carve_validation`). The original
  repositories (CLIP4Clip, X-Pool, ...) select checkpoints on the 1k-A test set;
  this library never does, so it needs a validation set that is disjoint from
  both train and test.
  A validation video is never a training video.
* ``test``: the videos of ``test_csv`` in file order. When the csv has a
  ``sentence`` column (JSFusion 1k-A), that sentence is the single query of its
  video; it is looked up among the video's json captions after whitespace
  normalisation and appended to ``texts`` only when it is not there. ``texts``
  also holds every other json caption of the test videos, for multi-caption
  video-to-text. Without a ``sentence`` column every caption is a query.

The helpers it shares with the other loaders (video lookup, validation carve-out,
missing-file errors) are in :mod:`tvrlib.datasets.files`.
"""

from __future__ import annotations

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
    read_id_csv,
    read_json,
    reject_duplicates,
    require_file,
    video_candidates,
)

__all__ = ["load_msrvtt", "MSRVTT_SPLITS"]

MSRVTT_SPLITS = ("train", "val", "test")


def _parse_msrvtt_json(path: Path):
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise AnnotationError(f"{path}: expected a json object with a 'sentences' list (MSRVTT_data.json format).")
    videos = data.get("videos", [])
    if not isinstance(videos, list):
        raise AnnotationError(f"{path}: 'videos' must be a list of objects with a video_id.")
    video_fields: dict[str, dict] = {}
    for k, rec in enumerate(videos):
        if not isinstance(rec, dict) or "video_id" not in rec:
            raise AnnotationError(f"{path}: entry {k} of 'videos' has no video_id.")
        vid = str(rec["video_id"]).strip()
        if vid in video_fields:
            raise AnnotationError(f"{path}: duplicate video id {vid!r} in 'videos'.")
        video_fields[vid] = {key: val for key, val in rec.items() if key != "video_id"}
    sentences: dict[str, list[tuple[object, object, dict]]] = {}
    for k, rec in enumerate(data["sentences"]):
        if not isinstance(rec, dict) or "video_id" not in rec or "caption" not in rec:
            raise AnnotationError(f"{path}: entry {k} of 'sentences' needs 'video_id' and 'caption'.")
        vid = str(rec["video_id"]).strip()
        extra = {key: val for key, val in rec.items() if key not in ("video_id", "caption", "sen_id")}
        sentences.setdefault(vid, []).append((rec["caption"], rec.get("sen_id"), extra))
    extras = {k: v for k, v in data.items() if k not in ("videos", "sentences", "info")}
    return video_fields, sentences, extras


def load_msrvtt(
    root: str | os.PathLike,
    split: str,
    *,
    train_csv: str = "MSRVTT_train.9k.csv",
    val_csv: str | None = None,
    test_csv: str | None = "MSRVTT_JSFUSION_test.csv",
    data_json: str = "MSRVTT_data.json",
    videos_dir: str = "videos",
    val_size: int = 500,
    check_files: bool = False,
    dataset_name: str = "msrvtt",
    v2t_texts: str = "queries",
) -> RetrievalData:
    """Load one split of MSR-VTT (or any dataset in the same json + csv format).

    ``meta`` holds: ``sentence_fields`` (per text, the json sentence fields other
    than video_id/caption/sen_id; ``{}`` for an appended csv sentence),
    ``sen_ids`` (per text, ``None`` for an appended csv sentence),
    ``video_fields`` (per video, the json video fields other than video_id),
    ``files`` (the annotation files used), ``val_carve_out`` (when used),
    ``csv_sentences_added`` (test: ids whose csv sentence was not a json caption), ``v2t_texts`` (what a video
    ranks in v2t, :func:`tvrlib.evaluation.evaluate`: ``"queries"``, MSR-VTT 1k-A's protocol, the default: the
    test csv's sentences only, one per video; ``"all"``: every caption of the split),
    and every extra top-level key of the json except videos/sentences/info.
    """
    check_split(split, MSRVTT_SPLITS, dataset_name)
    root = Path(root).expanduser()
    json_path = require_file(root / data_json, dataset_name)
    video_fields, sentences, extras = _parse_msrvtt_json(json_path)
    files = {"data_json": str(json_path)}
    meta: dict = dict(extras)

    def known(vid: str) -> bool:
        return vid in video_fields or vid in sentences

    def check_known(ids: Sequence[str], csv_path: Path) -> None:
        absent = [i for i in ids if not known(i)]
        if absent:
            raise AnnotationError(
                f"{csv_path}: video id {absent[0]!r} is not in {json_path} (neither in 'videos' nor in "
                f"'sentences')"
                + (f"; {len(absent)} such ids, first: {absent[:5]}" if len(absent) > 1 else "")
                + ". The split file and the json do not belong together."
            )

    csv_sentences: list[str] | None = None
    if split in ("train", "val"):
        train_path = require_file(root / train_csv, dataset_name, "split file")
        files["train_csv"] = str(train_path)
        train_ids = read_id_csv(train_path)["video_id"].tolist()
        reject_duplicates(train_ids, str(train_path))
        check_known(train_ids, train_path)
        if val_csv is not None:
            val_path = require_file(root / val_csv, dataset_name, "split file")
            files["val_csv"] = str(val_path)
            val_list = read_id_csv(val_path)["video_id"].tolist()
            reject_duplicates(val_list, str(val_path))
            check_known(val_list, val_path)
            val_set = set(val_list)
        else:
            val_set = carve_validation(train_ids, val_size, where=f"{dataset_name} val carve-out from {train_path}")
            val_list = [i for i in train_ids if i in val_set]
            meta["val_carve_out"] = {
                "from": str(train_path),
                "val_size": int(val_size),
                "seed": 0,
                "rule": "sorted ids, numpy default_rng(0) permutation, first val_size",
            }
        if split == "train":
            ids = [i for i in train_ids if i not in val_set]
            if val_csv is not None:
                meta["removed_val_videos_from_train"] = len(train_ids) - len(ids)
        else:
            ids = val_list
        # leakage guard: a train/val video must not be a test video
        if test_csv is not None and (root / test_csv).is_file():
            test_ids = set(read_id_csv(root / test_csv)["video_id"].tolist())
            leak = [i for i in ids if i in test_ids]
            if leak:
                raise AnnotationError(
                    f"{dataset_name}/{split}: video id {leak[0]!r} ({len(leak)} in all) is both "
                    f"in this split and in the test file {root / test_csv}; the splits must "
                    "be disjoint."
                )
    else:
        if test_csv is None:
            raise ValueError(f"{dataset_name}: split 'test' needs test_csv")
        test_path = require_file(root / test_csv, dataset_name, "split file")
        files["test_csv"] = str(test_path)
        df = read_id_csv(test_path)
        ids = df["video_id"].tolist()
        reject_duplicates(ids, str(test_path))
        check_known(ids, test_path)
        if "sentence" in df.columns:
            csv_sentences = [check_caption(s, f"{test_path} (video {v})") for v, s in zip(ids, df["sentence"])]

    texts: list[str] = []
    t2v: list[int] = []
    sen_fields: list[dict] = []
    sen_ids: list[object] = []
    queries: list[int] = []
    added: list[str] = []
    for j, vid in enumerate(ids):
        caps = sentences.get(vid, [])
        if not caps and csv_sentences is None:
            raise AnnotationError(
                f"{json_path}: video {vid!r} (listed for split {split!r}) has no caption in 'sentences'."
            )
        start = len(texts)
        for cap, sid, extra in caps:
            texts.append(check_caption(cap, f"{json_path} (video {vid}, sen_id {sid})"))
            t2v.append(j)
            sen_fields.append(extra)
            sen_ids.append(sid)
        if csv_sentences is None:
            queries.extend(range(start, len(texts)))
        else:
            q = csv_sentences[j]
            try:
                pos = start + texts[start:].index(q)
            except ValueError:
                pos = len(texts)
                texts.append(q)
                t2v.append(j)
                sen_fields.append({})
                sen_ids.append(None)
                added.append(vid)
            queries.append(pos)

    locator = VideoLocator(root / videos_dir)
    videos = [Video(vid, locator.find(video_candidates(vid))) for vid in ids]
    if check_files:
        check_video_files(videos, dataset_name, split, root / videos_dir)
    meta.update(
        {
            "files": files,
            "sentence_fields": sen_fields,
            "sen_ids": sen_ids,
            "video_fields": [video_fields.get(v, {}) for v in ids],
        }
    )
    if split == "test" and csv_sentences is not None:
        meta["csv_sentences_added"] = added
    if v2t_texts not in ("queries", "all"):
        raise ValueError(f"{dataset_name}: v2t_texts={v2t_texts!r}; use 'queries' (1k-A) or 'all'")
    meta["v2t_texts"] = v2t_texts
    return RetrievalData(
        dataset_name, split, videos, texts, np.asarray(t2v, dtype=np.int64), np.asarray(queries, dtype=np.int64), meta
    )
