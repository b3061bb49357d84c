"""Command line: ``python -m tvrlib prepare``, ``python -m tvrlib extract`` and ``python -m tvrlib run-notebooks``."""

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


def extract_splits(profile: str, splits: list[str] | None) -> list[str]:
    """The splits ``extract`` encodes for ``profile``: ``splits`` checked against the dataset's, or all of them.
    An unknown profile or split raises :class:`~tvrlib.errors.UnknownNameError` naming the valid ones."""
    from .datasets import get_dataset_info
    from .errors import UnknownNameError
    from .profiles import get_profile

    info = get_dataset_info(get_profile(profile)["dataset"])
    if info.splits is None:
        if not splits:
            raise UnknownNameError(f"dataset {info.name!r} (profile {profile!r}) lists no splits; pass --split")
        return list(splits)
    unknown = [s for s in splits or () if s not in info.splits]
    if unknown:
        raise UnknownNameError(
            f"unknown split(s) {unknown} for profile {profile!r} (dataset {info.name!r}); valid splits: "
            f"{list(info.splits)}"
        )
    return list(dict.fromkeys(splits)) if splits else list(info.splits)


def extract(
    profile: str,
    splits: list[str] | None = None,
    *,
    workers: int = 0,
    chunk: int | None = None,
    batch: int = 16,
    patches: bool = False,
    limit: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    progress: bool | None = None,
) -> list:
    """Encode the video features of the profile's splits into the feature cache (``$TVR_CACHE_DIR`` or
    ``data/cache``), resumably, and print videos, frames/s and the cache entry per split.

    The entries are those the notebooks read (``Session.video_features``: the profile's encoder, frame count and
    sampler). ``limit`` encodes only the first ``limit`` videos of each split (another entry; for timing).
    Returns the :class:`~tvrlib.features.ExtractionStats` of each split."""
    from .features import DEFAULT_CHUNK_VIDEOS, extract_videos
    from .session import setup

    names = extract_splits(profile, splits)
    progress = sys.stderr.isatty() if progress is None else progress
    S = setup(profile, device=device, threads=threads)
    enc = S.encoder
    print(f"profile {profile}: {enc!r}, {S.num_frames} frames ({S.settings['sampler']}), {workers} decode worker(s)")
    out = []
    for split in names:
        data = S.data(split)
        if limit is not None:
            data = data.subset(limit)
        _, stats = extract_videos(
            enc,
            data,
            S.num_frames,
            S.settings["sampler"],
            with_patches=patches,
            batch_videos=batch,
            num_workers=workers,
            chunk_videos=chunk or DEFAULT_CHUNK_VIDEOS,
            progress=progress,
        )
        print(stats.summary(), flush=True)
        out.append(stats)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tvrlib")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="generate the synthetic benchmark and pretrain the tiny CLIP")
    p.add_argument("--profile", default="quick")
    x = sub.add_parser(
        "extract",
        help="encode the profile's video features into the feature cache (resumable, with decode workers)",
        description="Encode every video of the profile's splits once into the feature cache ($TVR_CACHE_DIR or "
        "data/cache), in chunks that a re-run after an interruption reuses; prints frames/s per split.",
    )
    x.add_argument("--profile", default="quick")
    x.add_argument("--split", action="append", dest="splits", help="a split to encode (repeatable; default: all)")
    x.add_argument("--workers", type=int, default=0, help="DataLoader processes that decode (default 0: this one)")
    x.add_argument("--chunk", type=int, default=None, help="videos per saved chunk (default 512)")
    x.add_argument("--batch", type=int, default=16, help="videos per encoder batch (default 16)")
    x.add_argument("--patches", action="store_true", help="also the patch tokens (another cache entry)")
    x.add_argument("--limit", type=int, default=None, help="only the first N videos of each split (for timing)")
    x.add_argument("--device", default="auto")
    x.add_argument("--threads", type=int, default=None, help="torch threads (default: up to 4)")
    x.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    if a.cmd == "extract":
        from .errors import TVRError, UnknownNameError

        try:
            extract_splits(a.profile, a.splits)
        except UnknownNameError as err:
            x.error(str(err))
        for name, value in (("--workers", a.workers), ("--chunk", a.chunk), ("--batch", a.batch), ("--limit", a.limit)):
            if value is not None and value < (0 if name == "--workers" else 1):
                x.error(f"{name} must be {'>= 0' if name == '--workers' else '>= 1'}, got {value}")
        try:
            extract(
                a.profile,
                a.splits,
                workers=a.workers,
                chunk=a.chunk,
                batch=a.batch,
                patches=a.patches,
                limit=a.limit,
                device=a.device,
                threads=a.threads,
                progress=False if a.no_progress else None,
            )
        except TVRError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    return run_notebooks(a.notebooks, a.profile, a.out, a.in_place)


if __name__ == "__main__":
    sys.exit(main())
