"""Dataset registry: names, default locations, download notes, and ``load_dataset``.

The registry knows no loader itself: :mod:`tvrlib.datasets.builtin` registers the built-in
datasets (MSR-VTT, MSVD, LSMDC, DiDeMo, ActivityNet, synthetic) when :mod:`tvrlib.datasets`
is imported, so the loaders can use :func:`help_text` in their error messages without an
import circle.

Default location of dataset ``<name>``: ``<project>/data/datasets/<name>``, where
``<project>`` is the directory that contains the ``tvrlib`` package. The
environment variable ``TVR_DATA_ROOT`` replaces ``<project>/data/datasets``
(so ``TVR_DATA_ROOT=/big/disk`` makes MSR-VTT's root ``/big/disk/msrvtt``).
``load_dataset(..., root=...)`` overrides both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetNotFoundError, UnknownNameError
from .base import RetrievalData

__all__ = [
    "ENV_VAR",
    "PROJECT_ROOT",
    "DatasetInfo",
    "DATASETS",
    "HOW_TO_GET",
    "LAYOUT",
    "data_root",
    "dataset_root",
    "register_dataset",
    "load_dataset",
    "available_datasets",
    "get_dataset_info",
    "help_text",
]

ENV_VAR = "TVR_DATA_ROOT"
from ..paths import PROJECT_ROOT  # noqa: E402  (re-exported)

_PROJECT_DATA = PROJECT_ROOT / "data" / "datasets"

RootSpec = str | os.PathLike | Callable[[], str | os.PathLike] | None


def data_root() -> Path:
    """``$TVR_DATA_ROOT`` if set (and non-empty), else ``<project>/data/datasets``."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else _PROJECT_DATA


def _resolve_root(name: str, spec: RootSpec) -> Path:
    """None -> ``data_root()/name``; a relative path -> relative to the project root; any path
    below ``<project>/data/datasets`` is moved below ``$TVR_DATA_ROOT`` when that is set."""
    if spec is None:
        return data_root() / name
    if callable(spec):
        return Path(spec()).expanduser()
    p = Path(spec).expanduser()
    if not p.is_absolute():
        p = PROJECT_ROOT / p
    try:
        rel = p.relative_to(_PROJECT_DATA)
    except ValueError:
        return p
    return data_root() / rel


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable[..., RetrievalData]
    default_root: RootSpec = None
    how_to_get: str = ""
    splits: tuple[str, ...] | None = None
    layout: str = ""
    builtin: bool = field(default=False, compare=False)

    def root(self) -> Path:
        return _resolve_root(self.name, self.default_root)


DATASETS: dict[str, DatasetInfo] = {}
HOW_TO_GET: dict[str, str] = {}
LAYOUT: dict[str, str] = {}


def register_dataset(
    name: str,
    loader: Callable[..., RetrievalData],
    default_root: RootSpec = None,
    how_to_get: str = "",
    *,
    splits=None,
    layout: str = "",
    overwrite: bool = False,
    builtin: bool = False,
) -> DatasetInfo:
    """Register a dataset for :func:`load_dataset`.

    ``loader(root, split, **options) -> RetrievalData``. ``default_root``: ``None``
    for ``<data root>/<name>``, a path (relative paths are relative to the project
    root; paths under ``data/datasets`` follow ``TVR_DATA_ROOT``), or a callable
    returning a path. ``splits``: the valid split names (``None``: the loader checks).
    Re-registering a name replaces it, except a built-in one unless ``overwrite``.
    ``builtin=True`` marks the entry as built in (:mod:`tvrlib.datasets.builtin` does).
    """
    if not isinstance(name, str) or not name:
        raise ValueError("dataset name must be a non-empty string")
    if not callable(loader):
        raise TypeError(f"loader for {name!r} must be callable")
    old = DATASETS.get(name)
    if old is not None and old.builtin and not overwrite:
        raise ValueError(f"dataset {name!r} is built in; pass overwrite=True to replace it")
    info = DatasetInfo(
        name, loader, default_root, how_to_get, tuple(splits) if splits else None, layout, builtin=builtin
    )
    DATASETS[name] = info
    HOW_TO_GET[name] = how_to_get
    LAYOUT[name] = layout
    return info


def available_datasets() -> list[str]:
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown dataset {name!r}; known datasets: {', '.join(available_datasets())}. "
            "Register others with tvrlib.datasets.registry.register_dataset."
        ) from None


def dataset_root(name: str) -> Path:
    """Where ``load_dataset(name, ...)`` looks when no root is given."""
    return get_dataset_info(name).root()


def help_text(name: str) -> str:
    """Where the data comes from, where it must go, and how to point the loader at it."""
    info = DATASETS.get(name)
    lines = []
    if info is not None:
        lines.append(
            f"Default location: {info.root()} (set {ENV_VAR} to a directory that holds "
            f"'{name}/' to change it, or pass root=...)."
        )
        if info.how_to_get:
            lines.append("How to get it: " + info.how_to_get)
        if info.layout:
            lines.append("Expected layout:\n" + info.layout)
    else:
        lines.append(
            f"Pass root=... or set {ENV_VAR} (a directory holding one folder per dataset); "
            "see CLIP4Clip's README, section Data Preparation."
        )
    return "\n".join(lines)


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, **options) -> RetrievalData:
    """Load split ``split`` of dataset ``name`` (options go to the loader, e.g. ``val_size``,
    ``check_files``)."""
    info = get_dataset_info(name)
    if info.splits is not None and split not in info.splits:
        raise ValueError(f"{name}: unknown split {split!r}; valid splits are {list(info.splits)}.")
    if root is None:
        path = info.root()
        origin = (
            f"default root, {ENV_VAR}={os.environ[ENV_VAR]!r}"
            if os.environ.get(ENV_VAR, "").strip()
            else f"default root, {ENV_VAR} is not set"
        )
    else:
        path = Path(root).expanduser()
        origin = "passed as root=..."
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{name}: dataset directory {path} does not exist ({origin}); expected the annotation files "
            f"of {name} there.\n{help_text(name)}"
        )
    return info.loader(path, split, **options)
