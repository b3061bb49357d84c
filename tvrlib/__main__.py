"""Command line: ``python -m tvrlib prepare`` and ``python -m tvrlib run-notebooks``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def prepare(profile: str) -> None:
    """Generate the profile's synthetic benchmark and pretrain its tiny CLIP (both reused when present)."""
    from .encoders import TINY_MODELS
    from .profiles import get_profile

    p = get_profile(profile)
    tiny_clip = p["clip_model"] in TINY_MODELS and p["pretrained"] is None
    if p["dataset"] != "synthetic" and not tiny_clip:
        print(f"profile {profile!r} uses real data ({p['dataset']}) and {p['clip_model']} weights; nothing to generate")
        return
    from .pretrain import ensure_tiny_clip
    from .synthetic.benchmark import generate, load_config

    progress = sys.stderr.isatty()  # no progress bars in CI logs
    # the profile's benchmark (none for real data), and the one whose stills pretrain its tiny CLIP
    own = p["benchmark"] if p["dataset"] == "synthetic" else None
    names = [n for n in dict.fromkeys([own, p.get("clip_benchmark") or p["benchmark"]]) if n]
    for name in names:
        t = time.time()
        out = generate(load_config(name), progress=progress)
        print(f"benchmark: {out} ({time.time() - t:.1f} s)")
    t = time.time()
    if not progress:
        print("pretraining the tiny CLIP if no checkpoint exists (a few minutes on 2 CPU cores)...", flush=True)
    ckpt = ensure_tiny_clip(load_config(names[-1]), progress=progress, model_name=p["clip_model"])
    print(f"tiny CLIP: {ckpt} ({time.time() - t:.1f} s)")


def run_notebooks(notebooks: list[str], profile: str, out: str | None, in_place: bool) -> int:
    """Execute notebooks under papermill with ``profile``; record wall times in ``results/<profile>/timings.csv``."""
    import pandas as pd
    import papermill as pm

    from .paths import results_dir

    if in_place and profile != "quick":
        raise SystemExit(
            "--in-place refreshes the committed notebooks, which hold the quick profile; "
            f"to run profile {profile!r} use --out DIR"
        )
    rows, failed = [], []
    for nb in notebooks:
        src = Path(nb)
        dst = src if in_place else Path(out) / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        t = time.time()
        # in place: the committed notebooks are the quick profile, run with their own defaults, so no
        # "injected-parameters" cell is added to the tracked file
        params = {} if in_place else {"profile": profile}
        try:
            pm.execute_notebook(
                str(src), str(dst), parameters=params, cwd=str(src.parent), progress_bar=False, kernel_name="python3"
            )
            status = "ok"
        except Exception as err:  # keep going, report every failing notebook at the end
            status = f"failed: {type(err).__name__}"
            failed.append((src.name, err))
        rows.append(
            {
                "notebook": src.name,
                "seconds": round(time.time() - t, 1),
                "status": status,
                "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        print(f"{src.name}: {status} in {rows[-1]['seconds']} s", flush=True)
    log = results_dir(profile) / "timings.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(log, mode="a", header=not log.exists(), index=False)
    for name, err in failed:
        print(f"\n--- {name} failed ---\n{err}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tvrlib")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="generate the synthetic benchmark and pretrain the tiny CLIP")
    p.add_argument("--profile", default="quick")
    r = sub.add_parser("run-notebooks", help="execute notebooks under papermill")
    r.add_argument("notebooks", nargs="+")
    r.add_argument("--profile", default="quick")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="folder for the executed copies")
    g.add_argument("--in-place", action="store_true", help="overwrite the notebooks with their executed versions")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.profile)
        return 0
    return run_notebooks(a.notebooks, a.profile, a.out, a.in_place)


if __name__ == "__main__":
    sys.exit(main())
