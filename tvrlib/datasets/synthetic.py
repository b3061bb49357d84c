"""The synthetic benchmark, read by the real MSR-VTT loader.

``load_dataset("synthetic", split, config="quick")`` generates the benchmark on first
use (about half a minute for ``quick``) and then reads it with
:func:`tvrlib.datasets.msrvtt.load_msrvtt` exactly as it would read MSR-VTT. On top
of what the MSR-VTT loader returns, the test split's ``meta`` holds, per query:

* ``twin_of_query``  the column of the gold video's twin (``-1`` if it has none);
* ``factor_of_query`` the factor the twins differ in (``"order"``, ``"direction"``,
  ``"detail"`` or ``""``);
* ``kind_of_query``  ``"video"`` (describes every event) or ``"event"`` (one event).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..paths import generated_dir
from ..synthetic.benchmark import benchmark_dir, generate, load_config
from .base import RetrievalData
from .msrvtt import load_msrvtt

SYNTHETIC_SPLITS = ("train", "val", "test")


def load_synthetic(
    root: str | os.PathLike | None, split: str, *, config: str = "quick", generate_if_missing: bool = True, **options
) -> RetrievalData:
    cfg = load_config(config)
    root = Path(root) if root is not None else generated_dir()
    if not (root / "MSRVTT_data.json").exists():
        root = benchmark_dir(cfg) if root == generated_dir() else root
        if generate_if_missing and root == benchmark_dir(cfg):
            generate(cfg, progress=False)
    data = load_msrvtt(
        root,
        split,
        train_csv="MSRVTT_train.csv",
        val_csv="MSRVTT_val.csv",
        test_csv="MSRVTT_JSFUSION_test.csv",
        dataset_name="synthetic",
        **{"v2t_texts": "all", **options},  # every caption of a test video counts (notebook 00 says why)
    )
    data.meta["config"] = cfg.name
    data.meta["digest"] = cfg.digest()
    fields = data.meta.get("sentence_fields", [{}] * len(data.texts))
    data.meta["kind_of_text"] = [f.get("kind", "") for f in fields]
    col = {v: j for j, v in enumerate(data.video_ids)}
    twin_col = -np.ones(data.num_videos, dtype=np.int64)
    factor = [""] * data.num_videos
    for t in data.meta.get("twins", []):
        a, b = col.get(t["video_id"]), col.get(t["twin_id"])
        if a is not None and b is not None:
            twin_col[a], twin_col[b] = b, a
            factor[a] = factor[b] = t["factor"]
    gold = data.text_to_video[data.query_index]
    data.meta["twin_of_query"] = twin_col[gold]
    data.meta["factor_of_query"] = [factor[g] for g in gold]
    data.meta["kind_of_query"] = [data.meta["kind_of_text"][i] for i in data.query_index]
    return data
