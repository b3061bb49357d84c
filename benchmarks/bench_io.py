"""What every benchmark writes beside its numbers: the commit they were measured at, and their CSV rows upserted into
``results/quick/`` (a row replaces an earlier one with the same key, the file's other rows stay)."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The short commit of the checkout, ``+dirty`` when ``tvrlib/`` or ``benchmarks/`` differ from it ("" outside
    git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "tvrlib", "benchmarks"], cwd=ROOT).returncode
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return ""


def upsert_csv(
    rows: list[dict], path: Path, fields: Iterable[str], key: Iterable[str], fmt: Callable | None = None
) -> None:
    """Write ``rows`` (columns ``fields``; a missing value is empty) to ``path``, keeping the file's rows whose ``key``
    columns (compared as text) no row of ``rows`` has. ``fmt`` formats each new value (default: as it is)."""
    fields, key = list(fields), list(key)
    k = lambda r: tuple(str(r.get(f, "")) for f in key)  # noqa: E731
    new = {k(r) for r in rows}
    old = []
    if path.exists():
        with path.open() as fh:
            old = [r for r in csv.DictReader(fh) if k(r) not in new]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(old + [{f: (fmt or (lambda v: v))(r.get(f, "")) for f in fields} for r in rows])
