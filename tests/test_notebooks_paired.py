"""Every notebook is a pair: ``notebooks/NN_*.py`` (percent format, the file to edit) and its ``.ipynb``
(the same cells plus the committed outputs that nbval checks). The two must hold the same cells."""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_script_hold_the_same_cells(ipynb):
    script = ipynb.with_suffix(".py")
    assert script.exists(), f"{script.name} is missing: run `make sync` (jupytext --sync) to pair {ipynb.name}"
    a, b = _cells(jupytext.read(ipynb)), _cells(jupytext.read(script))
    assert a == b, (
        f"{ipynb.name} and {script.name} differ: edit the .py, then run `make sync` "
        "(jupytext --sync keeps the .ipynb's outputs)"
    )
    assert not any("injected-parameters" in tags for _, _, tags in a), (
        f"{ipynb.name} holds papermill's injected-parameters cell; committed notebooks run with their own defaults"
    )
