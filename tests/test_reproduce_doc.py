"""docs/reproduce-real-data.md: its commands name real profiles and rewrite onto the fixture profile (they are run
by ``make notebooks-fixture`` through tests/run_doc_commands.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_doc_commands import doc_commands, on_fixtures  # noqa: E402

DOC = Path(__file__).parent.parent / "docs" / "reproduce-real-data.md"


def test_the_page_has_extract_notebook_and_torchrun_commands_on_a_real_profile(tmp_path):
    commands = doc_commands(DOC.read_text())
    assert any(" extract " in c for c in commands)
    assert any(" run-notebooks " in c for c in commands)
    assert any(c.startswith("torchrun ") for c in commands)
    notebooks = sorted(p.name for p in (DOC.parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    run = next(c for c in commands if " run-notebooks " in c)
    assert sorted(Path(w).name for w in run.split() if w.endswith(".ipynb")) == notebooks  # every notebook
    for c in commands:
        args = on_fixtures(c, tmp_path)
        assert args[args.index("--profile") + 1] == "fixture" and "--profile msrvtt" in c
        if "--out" in args:
            assert Path(args[args.index("--out") + 1]).parent == tmp_path


def test_the_rewrite_refuses_an_unknown_profile_and_a_command_without_one(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'msr-vtt'"):
        on_fixtures("python -m tvrlib extract --profile msr-vtt", tmp_path)
    with pytest.raises(ValueError, match="names no --profile"):
        on_fixtures("python -m tvrlib extract", tmp_path)
