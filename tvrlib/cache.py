"""Encoded features on disk, keyed by everything that changes them.

Encoding a dataset with CLIP (frame embeddings, patch tokens, sentence
embeddings, word tokens and masks) is slow, so the results are stored under a
cache directory and reused.  An entry is addressed by a *key*: a short digest
of the canonical JSON of the *parts* that produced it (dataset, config hash,
split, encoder, weights hash, sampler mode, number of frames, size, kind,
dtype...).  Changing any part changes the key, so a stale entry is never
picked up by mistake.

On disk, an entry ``<key>`` is two files in the cache root:

``<key>.pt``
    the tensors, written with ``torch.save`` (a ``dict[str, Tensor]``) and read
    back with ``torch.load(..., weights_only=True)``;
``<key>.json``
    the manifest: the parts, the tensors' names, shapes and dtypes, and the
    sha256 of ``<key>.pt``.

Both files are written atomically with :func:`tvrlib.atomic.write_atomic`
(temporary file in the same directory, flush, ``os.fsync``, ``os.replace``,
``durable=True``) and the manifest is written last: it is the commit marker.
An entry without a manifest does not exist; an entry whose manifest does not
match its key or its tensor file is corrupt.  Temporary files left by an
interrupted write (``.<key>.*.tmp``) are ignored and removed by
:meth:`FeatureCache.clear`.

Partial areas: a long computation may store its pieces first (``python -m tvrlib extract`` saves a split's
features in chunks, :mod:`tvrlib.features`). :meth:`FeatureCache.partial` gives a cache of its own under
``<root>/partial/<key>/``, whose entries are written like any other (atomically, manifest last), so a killed run
leaves complete pieces or nothing readable; :meth:`FeatureCache.drop_partial` removes the area once the whole
entry is written, and :meth:`FeatureCache.clear` removes every area with the entries.

Typical use::

    cache = FeatureCache()                       # <project>/data/cache or $TVR_CACHE_DIR
    parts = dict(dataset="msrvtt", split="test", encoder="ViT-B/32",
                 weights=file_digest(weights_path), num_frames=12, kind="video",
                 dtype="float16")
    feats = cache.get_or_compute(parts, lambda: encode_all_videos(...),
                                 desc="MSR-VTT test video features")
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import TMP_SUFFIX, write_atomic
from .errors import CacheError
from .paths import PROJECT_ROOT

__all__ = [
    "CacheMissError",
    "FeatureCache",
    "cache_key",
    "default_cache_dir",
    "file_digest",
    "tree_digest",
]

log = logging.getLogger(__name__)

KEY_LENGTH = 20
MANIFEST_FORMAT = 1
_KEY_RE = re.compile(rf"^[0-9a-f]{{{KEY_LENGTH}}}$")
_TENSOR_SUFFIX = ".pt"
_MANIFEST_SUFFIX = ".json"
PARTIAL_DIR = "partial"


class CacheMissError(CacheError, KeyError):
    """No entry is stored under the requested key (a miss, not a corruption)."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- keys


def _canonical(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON data, or raise TypeError naming ``where``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cache key part {where!r} is {value!r}; NaN/inf cannot be keyed reliably")
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"cache key part {where!r} has a non-string dict key {k!r} ({type(k).__name__}); use string keys"
                )
            out[k] = _canonical(v, f"{where}.{k}")
        return out
    raise TypeError(
        f"cache key part {where!r} has type {type(value).__module__}.{type(value).__name__}, "
        "which is not JSON data; key on str/int/float/bool/None/list/tuple/dict/Path "
        "(e.g. a digest or a number), never on an object"
    )


def _canonical_parts(parts: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(parts, Mapping):
        raise TypeError(f"cache parts must be a mapping of name -> value, got {type(parts).__name__}")
    if not parts:
        raise ValueError("a cache key needs at least one part (dataset, split, encoder, ...)")
    out = {}
    for k, v in parts.items():
        if not isinstance(k, str):
            raise TypeError(f"cache key part names must be strings, got {k!r}")
        out[k] = _canonical(v, k)
    return out


def _canonical_json(canonical_parts: Mapping[str, Any]) -> str:
    return json.dumps(canonical_parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cache_key(**parts: Any) -> str:
    """A stable key (first 20 hex chars of a sha256) for ``parts``.

    The digest is taken over the canonical JSON of the parts (sorted keys,
    tuples as lists, ``Path`` as ``str``), so it does not depend on argument
    order.  Any value that is not plain JSON data (a tensor, an array, a model)
    raises ``TypeError`` naming the offending part.
    """
    text = _canonical_json(_canonical_parts(parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 hex digest of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def tree_digest(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 hex digest over several files (or directories) in a stable order.

    Each file contributes its name and its content digest: a plain file by its
    base name, a file found under a directory by its path relative to that
    directory.  Entries are sorted by those names, so the order in which
    ``paths`` are given does not matter, and neither does where the tree lives.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    named: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    named.setdefault(f"{p.name}/{f.relative_to(p).as_posix()}", f)
        elif p.is_file():
            named.setdefault(p.name, p)
        else:
            raise FileNotFoundError(f"tree_digest: {p} does not exist")
    if not named:
        raise ValueError("tree_digest needs at least one file")
    h = hashlib.sha256()
    for name in sorted(named):
        h.update(name.encode("utf-8"))
        h.update(b"\0")
        h.update(file_digest(named[name]).encode("ascii"))
        h.update(b"\n")
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$TVR_CACHE_DIR`` if set, else ``<project root>/data/cache``.

    The project root is the parent directory of the ``tvrlib`` package.
    """
    env = os.environ.get("TVR_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return PROJECT_ROOT / "data" / "cache"


# --------------------------------------------------------------------------- helpers


def _prepare_tensors(tensors: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if not isinstance(tensors, Mapping):
        raise TypeError(f"cached features must be a dict of name -> Tensor, got {type(tensors).__name__}")
    out = {}
    for name, t in tensors.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"cached tensor names must be non-empty strings, got {name!r}")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"cached value {name!r} is a {type(t).__name__}, not a torch.Tensor")
        # detach, move to CPU and copy so a view does not drag its whole storage to disk
        out[name] = t.detach().to("cpu").clone().contiguous()
    return out


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --------------------------------------------------------------------------- cache


class FeatureCache:
    """A directory of tensor dictionaries, each keyed by :func:`cache_key` of its parts."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    # ---- paths

    @staticmethod
    def _check_key(key: str) -> str:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r} (expected {KEY_LENGTH} lowercase hex chars from cache_key)")
        return key

    def path_for(self, key: str) -> Path:
        """Path of the tensor file of entry ``key`` (it may not exist)."""
        return self.root / (self._check_key(key) + _TENSOR_SUFFIX)

    def manifest_path_for(self, key: str) -> Path:
        """Path of the JSON manifest of entry ``key`` (it may not exist)."""
        return self.root / (self._check_key(key) + _MANIFEST_SUFFIX)

    # ---- reading

    def _corrupt(self, path: Path, why: str) -> CacheError:
        return CacheError(
            f"feature cache file {path} is invalid ({why}); delete it "
            f"(or call FeatureCache({str(self.root)!r}).delete(key)) and it will be recomputed"
        )

    def _read_manifest(self, key: str) -> dict[str, Any]:
        mpath = self.manifest_path_for(key)
        try:
            text = mpath.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CacheMissError(f"no feature cache entry {key} in {self.root} (no {mpath.name})") from None
        except OSError as e:
            raise self._corrupt(mpath, f"unreadable: {e}") from e
        try:
            manifest = json.loads(text)
        except ValueError as e:
            raise self._corrupt(mpath, f"not valid JSON: {e}") from e
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise self._corrupt(mpath, "not a feature cache manifest of a known format")
        if manifest.get("key") != key:
            raise self._corrupt(mpath, f"it records key {manifest.get('key')!r}, not {key!r}")
        parts = manifest.get("parts")
        try:
            rehashed = cache_key(**parts) if isinstance(parts, dict) else None
        except (TypeError, ValueError):
            rehashed = None
        if rehashed != key:
            raise self._corrupt(mpath, f"its parts hash to {rehashed!r}, not to its key {key!r}")
        tensors = manifest.get("tensors")
        if not isinstance(tensors, dict) or not isinstance(manifest.get("sha256"), str):
            raise self._corrupt(mpath, "it lacks the tensor list or the checksum")
        return manifest

    def has(self, key: str) -> bool:
        """True if a committed entry exists: a manifest matching ``key`` and its tensor file.

        This is a cheap check; the tensor checksum is only verified by :meth:`load`.
        """
        try:
            manifest = self._read_manifest(key)
        except CacheError:
            return False
        tpath = self.path_for(key)
        try:
            return tpath.stat().st_size == manifest.get("size")
        except OSError:
            return False

    def load(self, key: str, map_location: Any = "cpu") -> dict[str, torch.Tensor]:
        """Load and verify entry ``key``.

        Raises :class:`CacheMissError` (a ``CacheError`` and a ``KeyError``) if
        there is no entry, and :class:`CacheError` naming the file if the entry
        is corrupt (parts that do not hash to the key, a checksum mismatch, an
        unreadable tensor file, tensors that differ from the manifest).
        """
        manifest = self._read_manifest(key)
        tpath = self.path_for(key)
        try:
            digest = file_digest(tpath)
        except FileNotFoundError:
            raise self._corrupt(tpath, "the tensor file is missing but its manifest exists") from None
        except OSError as e:
            raise self._corrupt(tpath, f"unreadable: {e}") from e
        if digest != manifest["sha256"]:
            raise self._corrupt(tpath, "its sha256 does not match the manifest (truncated or modified)")
        try:
            data = torch.load(tpath, map_location=map_location, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure to unpickle means a bad file
            raise self._corrupt(tpath, f"torch.load failed: {type(e).__name__}: {e}") from e
        if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise self._corrupt(tpath, "it does not hold a dict of tensors")
        expected = manifest["tensors"]
        if set(data) != set(expected):
            raise self._corrupt(tpath, f"tensor names {sorted(data)} differ from the manifest {sorted(expected)}")
        for name, t in data.items():
            info = expected[name]
            if (
                not isinstance(info, dict)
                or list(t.shape) != info.get("shape")
                or _dtype_name(t.dtype) != info.get("dtype")
            ):
                raise self._corrupt(
                    tpath,
                    f"tensor {name!r} is {_dtype_name(t.dtype)}{list(t.shape)}, manifest says {info!r}",
                )
        return data

    # ---- writing

    def save(self, key: str, tensors: Mapping[str, torch.Tensor], parts: Mapping[str, Any]) -> Path:
        """Store ``tensors`` under ``key`` (which must be ``cache_key(**parts)``).

        Overwrites an existing entry.  The old manifest is removed first and the
        new one written last, so an interrupted save never leaves an entry that
        reads as valid.  Returns the tensor file's path.
        """
        self._check_key(key)
        canon = _canonical_parts(parts)
        if cache_key(**canon) != key:
            raise ValueError(f"parts {canon!r} hash to {cache_key(**canon)}, not to the given key {key}")
        return self._write(key, _prepare_tensors(tensors), canon)

    def _write(self, key: str, prepared: dict[str, torch.Tensor], canon: dict[str, Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        tpath, mpath = self.path_for(key), self.manifest_path_for(key)

        # un-commit any previous entry before touching its tensor file
        try:
            mpath.unlink()
        except FileNotFoundError:
            pass

        write_atomic(tpath, lambda f: torch.save(prepared, f), durable=True)
        manifest = {
            "format": MANIFEST_FORMAT,
            "key": key,
            "parts": canon,
            "tensor_file": tpath.name,
            "size": tpath.stat().st_size,
            "sha256": file_digest(tpath),
            "tensors": {name: {"shape": list(t.shape), "dtype": _dtype_name(t.dtype)} for name, t in prepared.items()},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
        }
        payload = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
        write_atomic(mpath, lambda f: f.write(payload), durable=True)
        return tpath

    def get_or_compute(
        self,
        parts: Mapping[str, Any],
        compute: Callable[[], Mapping[str, torch.Tensor]],
        *,
        desc: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return the entry keyed by ``parts``, computing and storing it on a miss.

        A corrupt entry is treated as a miss: a warning names the bad file and
        the features are recomputed and overwritten.  If the result cannot be
        written (an ``OSError`` such as a full disk or a read-only directory) a
        warning is issued and the computed features are returned anyway.
        Returned tensors are on the CPU in both cases.
        """
        key = cache_key(**parts)
        label = desc or f"features {key}"
        try:
            data = self.load(key)
            log.debug("feature cache hit: %s (%s)", label, self.path_for(key))
            return data
        except CacheMissError:
            log.info("feature cache miss: computing %s", label)
        except CacheError as e:
            warnings.warn(f"{e}; recomputing {label}", RuntimeWarning, stacklevel=2)
        prepared = _prepare_tensors(compute())
        try:
            self._write(key, prepared, _canonical_parts(parts))
        except OSError as e:
            warnings.warn(
                f"could not write feature cache entry {self.path_for(key)} for {label}: {e}; "
                "the features were computed but not cached",
                RuntimeWarning,
                stacklevel=2,
            )
        return prepared

    # ---- housekeeping

    def delete(self, key: str) -> bool:
        """Remove entry ``key`` (manifest first). Returns True if anything was removed."""
        removed = False
        for path in (self.manifest_path_for(key), self.path_for(key)):
            try:
                path.unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def partial(self, key: str) -> FeatureCache:
        """The partial area of entry ``key``: a :class:`FeatureCache` in ``<root>/partial/<key>/`` for the pieces
        of a computation that is saved as it goes (created on the first write)."""
        return FeatureCache(self.root / PARTIAL_DIR / self._check_key(key))

    def drop_partial(self, key: str) -> int:
        """Remove the partial area of ``key`` (only files this class writes); returns the number of files removed."""
        area = self.partial(key)
        removed = area.clear()
        try:
            area.root.rmdir()  # only if nothing else is in it
            area.root.parent.rmdir()
        except OSError:
            pass
        return removed

    def _entry_keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        keys = set()
        for p in self.root.iterdir():
            if p.suffix in (_TENSOR_SUFFIX, _MANIFEST_SUFFIX) and _KEY_RE.match(p.stem):
                keys.add(p.stem)
        return sorted(keys)

    def entries(self):
        """A ``pandas.DataFrame`` of what is cached, one row per key.

        Columns: ``key``, ``parts`` (dict, or None if the manifest is missing or
        invalid), ``size`` (bytes on disk, tensor file plus manifest),
        ``created`` (UTC timestamp), ``tensors`` (``name: dtype[shape]``) and
        ``committed`` (False for a tensor file without a valid manifest, e.g. an
        interrupted write).  Checksums are not verified here; :meth:`load` does.
        """
        import pandas as pd

        rows = []
        for key in self._entry_keys():
            size = 0
            for path in (self.path_for(key), self.manifest_path_for(key)):
                try:
                    size += path.stat().st_size
                except OSError:
                    pass
            try:
                manifest = self._read_manifest(key)
            except CacheError:
                manifest = None
            if manifest is not None:
                tensors = ", ".join(f"{n}: {i.get('dtype')}{i.get('shape')}" for n, i in manifest["tensors"].items())
                created = pd.to_datetime(manifest.get("created"), utc=True, errors="coerce")
                rows.append(
                    dict(key=key, parts=manifest["parts"], size=size, created=created, tensors=tensors, committed=True)
                )
            else:
                rows.append(dict(key=key, parts=None, size=size, created=pd.NaT, tensors="", committed=False))
        columns = ["key", "parts", "size", "created", "tensors", "committed"]
        df = pd.DataFrame(rows, columns=columns)
        df["created"] = pd.to_datetime(df["created"], utc=True)
        return df

    def clear(self) -> int:
        """Remove every entry, partial area and leftover temp file in the root; returns the number of files removed.

        Only files this class writes are touched (``<key>.pt``, ``<key>.json``,
        ``.<key>.*.tmp``, the same in ``partial/<key>/``), so pointing a cache at a wrong directory cannot wipe it.
        """
        if not self.root.is_dir():
            return 0
        removed = 0
        areas = self.root / PARTIAL_DIR
        if areas.is_dir():
            for d in sorted(areas.iterdir()):
                if d.is_dir() and _KEY_RE.match(d.name):
                    removed += self.drop_partial(d.name)
        # manifests first, so a concurrent reader never sees a manifest without its tensors
        candidates = sorted(self.root.iterdir(), key=lambda p: (p.suffix != _MANIFEST_SUFFIX, p.name))
        for p in candidates:
            if not p.is_file():
                continue
            is_entry = p.suffix in (_TENSOR_SUFFIX, _MANIFEST_SUFFIX) and _KEY_RE.match(p.stem)
            is_tmp = (
                p.name.startswith(".") and p.name.endswith(TMP_SUFFIX) and _KEY_RE.match(p.name[1 : 1 + KEY_LENGTH])
            )
            if is_entry or is_tmp:
                try:
                    p.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed
