"""Results rows, figures and the environment record shared by every notebook.

* :func:`save_results` appends tidy rows (experiment, method, metric, value, CI) to
  ``results/<profile>/<experiment>.csv`` (the file is rewritten atomically);
* :func:`figure` is the one figure helper (fixed size, seaborn theme, saved as PNG);
* :func:`versions` records the package versions a notebook ran with.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd

from .paths import results_dir

METRIC_ORDER = ("R1", "R5", "R10", "MdR", "MnR")


def results_rows(experiment: str, method: str, direction: str, metrics: dict, **extra) -> list[dict]:
    """Tidy rows from a metrics dict as returned by :func:`tvrlib.metrics.with_ci`."""
    rows = []
    for m in METRIC_ORDER:
        if m in metrics:
            rows.append({"experiment": experiment, "method": method, "direction": direction, "metric": m,
                         "value": float(metrics[m]), "ci_lo": float(metrics.get(f"{m}_lo", float("nan"))),
                         "ci_hi": float(metrics.get(f"{m}_hi", float("nan"))), "n": int(metrics.get("n", 0)),
                         **extra})
    return rows


def save_results(profile: str, experiment: str, rows: list[dict] | pd.DataFrame) -> Path:
    """Write ``rows`` to ``results/<profile>/<experiment>.csv`` atomically and return the path."""
    df = pd.DataFrame(rows)
    out = results_dir(profile) / f"{experiment}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


def metrics_frame(results: dict[str, dict], ci: bool = True, digits: int = 1) -> pd.DataFrame:
    """A display table: one row per method, ``R1 [lo, hi]`` cells when CIs are present."""
    rows = {}
    for name, m in results.items():
        row = {}
        for k in METRIC_ORDER:
            if k not in m:
                continue
            v = round(float(m[k]), digits)
            if ci and f"{k}_lo" in m:
                row[k] = f"{v:.{digits}f} [{m[f'{k}_lo']:.{digits}f}, {m[f'{k}_hi']:.{digits}f}]"
            else:
                row[k] = v
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def figure(name: str | None = None, profile: str = "quick", width: float = 7.0, height: float = 3.5, **kw):
    """A matplotlib figure with the project's seaborn theme; saved to ``results/<profile>/figures/<name>.png``
    by :func:`save_figure`."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    fig, ax = plt.subplots(figsize=(width, height), **kw)
    fig._tvr_name = (name, profile)
    return fig, ax


def save_figure(fig) -> Path | None:
    name, profile = getattr(fig, "_tvr_name", (None, "quick"))
    if not name:
        return None
    out = results_dir(profile) / "figures" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out


def versions() -> pd.DataFrame:
    """Versions of Python and of the packages the suite builds on."""
    import importlib.metadata as md

    pkgs = ["torch", "torchvision", "open_clip_torch", "decord", "av", "numpy", "pandas", "seaborn", "papermill",
            "nbval"]
    rows = [("python", platform.python_version())]
    for p in pkgs:
        try:
            rows.append((p, md.version(p)))
        except md.PackageNotFoundError:
            rows.append((p, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"]).set_index("package")


def show_source(obj) -> None:
    """Display the source of a tvrlib function or class in a notebook (one place for the code, d2l style)."""
    import inspect

    from IPython.display import Markdown, display

    mod = inspect.getmodule(obj)
    display(Markdown(f"`{mod.__name__}.{obj.__qualname__}`\n```python\n{inspect.getsource(obj)}```"))


def frame_grid(rows, row_labels=None, col_labels=None, name: str | None = None, profile: str = "quick",
               cell: float = 0.9, weights=None):
    """Draw videos as rows of frames: ``rows`` is a list of ``uint8 [F, H, W, 3]`` arrays.

    ``weights`` (optional, ``[len(rows), F]``) are written under each frame (attention weights).
    Returns the figure (saved under ``results/<profile>/figures/<name>.png`` when ``name`` is given).
    """
    import matplotlib.pyplot as plt

    n, f = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n, f, figsize=(cell * f, cell * n + 0.25 * n), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(f):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(r):
                ax.imshow(r[j])
            if weights is not None:
                ax.set_xlabel(f"{float(weights[i][j]):.2f}", fontsize=7)
            if i == 0 and col_labels is not None:
                ax.set_title(str(col_labels[j]), fontsize=7)
        if row_labels is not None:
            import textwrap

            axes[i, 0].set_ylabel(textwrap.fill(str(row_labels[i]), 48), fontsize=7, rotation=0, ha="right", va="center")
    fig._tvr_name = (name, profile)
    save_figure(fig)
    return fig
