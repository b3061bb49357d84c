"""Run the commands of ``docs/reproduce-real-data.md`` on the real-format fixture files.

Usage: python tests/run_doc_commands.py [--doc docs/reproduce-real-data.md] [--out build/test/doc-commands] [--dry-run]

Every ``$ `` line of the page's ``console`` blocks is run as written except: ``--profile <real profile>`` becomes
``--profile fixture`` (the MSR-VTT fixture files and the tiny CLIP), an ``--out`` folder moves under ``--out``,
``python`` is this interpreter, ``torchrun`` is ``python -m torch.distributed.run``, and ``--workers N`` becomes
``--workers 1`` (two cores). Results go to ``$TVR_RESULTS_DIR`` when it is set. Exits 1 at the first command that
fails. ``make notebooks-fixture`` (part of ``make test``) runs it, so the page's commands are known to run.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def doc_commands(text: str) -> list[str]:
    """The ``$ `` lines of every ```console block, in order."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        out += [line[2:].strip() for line in block.splitlines() if line.startswith("$ ")]
    return out


def on_fixtures(command: str, out_dir: Path) -> list[str]:
    """``command`` as an argument list, rewritten to run on the fixture profile (see the module docstring)."""
    from tvrlib.profiles import PROFILES

    args = shlex.split(command)
    if args[0] == "python":
        args[0:1] = [sys.executable]
    elif args[0] == "torchrun":
        args[0:1] = [sys.executable, "-m", "torch.distributed.run"]
    else:
        raise ValueError(f"{command!r}: the page's commands start with python or torchrun")
    for i, a in enumerate(args[:-1]):
        nxt = args[i + 1]
        if a == "--profile":
            if nxt not in PROFILES:
                raise ValueError(f"{command!r}: unknown profile {nxt!r}; known: {sorted(PROFILES)}")
            args[i + 1] = "fixture"
        elif a == "--out":
            args[i + 1] = str(out_dir / Path(nxt).name)
        elif a == "--workers":
            args[i + 1] = "1"
    if "--profile" not in args:
        raise ValueError(f"{command!r} names no --profile")
    return args


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "reproduce-real-data.md")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "test" / "doc-commands")
    ap.add_argument("--dry-run", action="store_true", help="print the rewritten commands only")
    a = ap.parse_args(argv)
    commands = doc_commands(a.doc.read_text())
    if not commands:
        print(f"{a.doc}: no commands found", file=sys.stderr)
        return 1
    for command in commands:
        args = on_fixtures(command, a.out)
        print(f"$ {command}\n  -> {shlex.join(args)}", flush=True)
        if a.dry_run:
            continue
        t0 = time.perf_counter()
        rc = subprocess.run(args, cwd=ROOT).returncode
        print(f"  exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
