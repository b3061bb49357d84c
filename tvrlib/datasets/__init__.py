"""Dataset loaders. ``load_dataset(name, split)`` is the one entry point; see :mod:`.registry`.

Modules: :mod:`.base` (``RetrievalData``), :mod:`.registry` (names, roots, download notes,
``load_dataset``), :mod:`.files` (helpers every loader shares), one module per loader
(:mod:`.msrvtt`, :mod:`.msvd`, :mod:`.lsmdc`, :mod:`.paragraph` for DiDeMo and ActivityNet,
:mod:`.synthetic`), and :mod:`.builtin`, which registers them.
"""

from . import builtin  # noqa: F401  (registers the built-in datasets)
from .base import RetrievalData, Video, check_caption
from .registry import (
    DATASETS,
    available_datasets,
    dataset_root,
    get_dataset_info,
    help_text,
    load_dataset,
    register_dataset,
)
from .synthetic import load_synthetic

__all__ = [
    "RetrievalData",
    "Video",
    "check_caption",
    "DATASETS",
    "available_datasets",
    "dataset_root",
    "get_dataset_info",
    "help_text",
    "load_dataset",
    "register_dataset",
    "load_synthetic",
]
