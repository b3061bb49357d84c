"""Dataset loaders. ``load_dataset(name, split)`` is the one entry point; see :mod:`.registry`."""
from ..paths import generated_dir
from ..synthetic.benchmark import available_configs
from .base import RetrievalData, Video, check_caption
from .registry import (DATASETS, available_datasets, dataset_root, get_dataset_info, help_text, load_dataset,
                       register_dataset)
from .synthetic import SYNTHETIC_SPLITS, load_synthetic

register_dataset("synthetic", load_synthetic, default_root=generated_dir,
                 how_to_get="Nothing to download: the synthetic benchmark is generated on first use from "
                            f"data/synthetic/<config>.json (configs: {available_configs()}); "
                            "`make data` generates the default one.",
                 splits=SYNTHETIC_SPLITS, overwrite=True)

__all__ = ["RetrievalData", "Video", "check_caption", "DATASETS", "available_datasets", "dataset_root",
           "get_dataset_info", "help_text", "load_dataset", "register_dataset", "load_synthetic"]
