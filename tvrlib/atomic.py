"""Write a file so that a reader never sees half of it: temp file in the same folder, then rename.

Every writer of the project (feature cache, checkpoints, the tiny CLIP, results tables) goes through
:func:`write_atomic`, so an interrupted run leaves either the old file or the new one, never a torn one.
Temp files are named ``.<name>.<random>.tmp`` next to the target; :mod:`tvrlib.cache` removes stale ones.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort; not possible on every file system)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(target: str | Path, write: Callable[[Any], None], *, durable: bool = False) -> Path:
    """Write ``target`` by calling ``write(f)`` on a binary file object of a temp file, then renaming it.

    ``durable=True`` also fsyncs the file and its folder (the feature cache wants that; a results CSV
    does not need it). On any error the temp file is removed and the target is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(target.parent)
    return target
