"""Results rows, figures and the environment record shared by every notebook.

* :func:`results_rows` turns a metrics dict into tidy rows (experiment, method, metric, value, CI), and
  :func:`save_results` writes them to ``results/<profile>/<experiment>.csv`` (atomically:
  :func:`tvrlib.atomic.write_atomic`);
* :func:`metrics_frame` is the one metrics-to-table helper (one row per method, ``value [lo, hi]`` cells
  from :func:`ci_cell`, which every other table of the suite uses too);
* :func:`figure` is the one figure helper (fixed size, seaborn theme, saved as PNG);
* :func:`versions` records the package versions a notebook ran with.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd

from .atomic import write_atomic
from .metrics import METRICS
from .paths import results_dir


def results_rows(experiment: str, method: str, direction: str, metrics: dict, **extra) -> list[dict]:
    """Tidy rows from a metrics dict as returned by :func:`tvrlib.metrics.with_ci`."""
    rows = []
    for m in METRICS:
        if m in metrics:
            rows.append(
                {
                    "experiment": experiment,
                    "method": method,
                    "direction": direction,
                    "metric": m,
                    "value": float(metrics[m]),
                    "ci_lo": float(metrics.get(f"{m}_lo", float("nan"))),
                    "ci_hi": float(metrics.get(f"{m}_hi", float("nan"))),
                    "n": int(metrics.get("n", 0)),
                    **extra,
                }
            )
    return rows


def save_results(profile: str, experiment: str, rows: list[dict] | pd.DataFrame) -> Path:
    """Write ``rows`` to ``results/<profile>/<experiment>.csv`` atomically and return the path."""
    text = pd.DataFrame(rows).to_csv(index=False)
    return write_atomic(results_dir(profile) / f"{experiment}.csv", lambda f: f.write(text.encode()))


def ci_cell(value: float, lo: float, hi: float, digits: int = 1) -> str:
    """A value with its confidence interval as one table cell: ``"42.0 [39.5, 44.6]"``."""
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def metrics_frame(results: dict[str, dict], ci: bool = True, digits: int = 1, metrics=METRICS) -> pd.DataFrame:
    """A display table: one row per method (``results``: name -> metrics dict as :func:`tvrlib.metrics.t2v` or
    :func:`~tvrlib.metrics.with_ci` return it), one column per metric of ``metrics`` the dict holds;
    :func:`ci_cell` strings when the dict has CIs and ``ci``, else the values rounded to ``digits``."""
    rows = {}
    for name, m in results.items():
        row = {}
        for k in metrics:
            if k not in m:
                continue
            if ci and f"{k}_lo" in m:
                row[k] = ci_cell(float(m[k]), m[f"{k}_lo"], m[f"{k}_hi"], digits)
            else:
                row[k] = round(float(m[k]), digits)
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
    engine = fig.get_layout_engine()
    if engine is None or type(engine).__name__ != "ConstrainedLayoutEngine":  # constrained layout places colorbars
        fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out


def versions() -> pd.DataFrame:
    """Versions of Python and of the packages the suite builds on."""
    import importlib.metadata as md

    pkgs = [
        "torch",
        "torchvision",
        "open_clip_torch",
        "decord",
        "av",
        "numpy",
        "pandas",
        "seaborn",
        "papermill",
        "nbval",
    ]
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


def frame_grid(
    rows,
    row_labels=None,
    col_labels=None,
    name: str | None = None,
    profile: str = "quick",
    cell: float = 0.9,
    weights=None,
):
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

            axes[i, 0].set_ylabel(
                textwrap.fill(str(row_labels[i]), 48), fontsize=7, rotation=0, ha="right", va="center"
            )
    fig._tvr_name = (name, profile)
    save_figure(fig)
    return fig
