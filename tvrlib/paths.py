"""Where things live on disk. Every location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Committed small data: synthetic-benchmark configs, paper tables."""
    return PROJECT_ROOT / "data"


def generated_dir() -> Path:
    """Generated synthetic benchmarks (ignored by git); ``TVR_GENERATED_DIR`` moves it."""
    return Path(os.environ.get("TVR_GENERATED_DIR", PROJECT_ROOT / "data" / "generated"))


def models_dir() -> Path:
    """Trained tiny-CLIP checkpoints (ignored by git); ``TVR_MODELS_DIR`` moves it."""
    return Path(os.environ.get("TVR_MODELS_DIR", PROJECT_ROOT / "data" / "models"))


def results_dir(profile: str) -> Path:
    """Tidy result rows written by the notebooks; ``TVR_RESULTS_DIR`` moves the parent."""
    return PROJECT_ROOT / os.environ.get("TVR_RESULTS_DIR", "results") / profile  # a relative path: from the root
