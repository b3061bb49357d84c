"""Training time per epoch of every CLIP4Clip head, on frozen features and end to end (quick profile).

Usage: python benchmarks/training_speed.py [--threads K] [--frozen-steps N] [--e2e-steps N] [--repeats R] [--out CSV]

* **frozen features**: ``fit`` on the cached tiny-CLIP features of the training split (12,000 captions of
  1,500 videos), batch 128 (tightTransf: 32, since each step scores B x B pairs). Each head runs
  ``--frozen-steps`` optimiser steps after one warm-up step (median of ``--repeats`` runs); the time per step
  is multiplied by the number of steps of a full epoch (all captions once). Validation is not included.
* **end to end**: the same heads on top of a trainable copy of the tiny CLIP (``FrameSource``: decode
  12 frames per video with ``random_in_segment``, image and text towers with gradients), batch 16. The
  seconds per step of ``--e2e-steps`` measured steps are extrapolated to a full epoch (750 steps);
  the table says so.

The heads are configured as in notebook 04 (quick profile: 2 temporal layers). Prints a markdown table
(the numbers go into docs/performance.md, section "Training time per epoch, per head") and writes a CSV.
The tiny CLIP checkpoint must exist (``python -m tvrlib prepare``); this script never trains it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def build(name: str, dim: int, layers: int):
    """Any registered head (variants included) with the quick profile's shared settings."""
    from tvrlib.heads import HEADS

    torch.manual_seed(0)
    return HEADS.build(name, **HEADS.accepted_kwargs(name, dim=dim, layers=layers))


def seconds_per_step(model, train, val, batch_size: int, steps: int, repeats: int = 1) -> float:
    """Median over ``repeats`` runs of the mean optimiser-step time over ``steps`` steps (one untimed warm-up
    step first). The median keeps the number honest on a machine shared with other jobs."""
    from tvrlib.training import fit

    fit(model, train, val, epochs=1, batch_size=batch_size, max_steps_per_epoch=1, warmup=0.0, progress=False)
    times = []
    for r in range(repeats):
        res = fit(
            model,
            train,
            val,
            epochs=1,
            batch_size=batch_size,
            max_steps_per_epoch=steps,
            warmup=0.0,
            seed=r,
            progress=False,
        )
        times.append(float(res.history["train_seconds"].sum() / res.history["steps"].sum()))
    return float(np.median(times))


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no dependency on tabulate)."""
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frozen-steps", type=int, default=10)
    ap.add_argument("--e2e-steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="measurements per head and mode; the median is kept")
    ap.add_argument(
        "--heads",
        nargs="*",
        default=["meanP", "seqLSTM", "seqTransf-noPE", "seqTransf", "tightTransf"],
        help="registered head names (tvrlib.heads.HEADS.names())",
    )
    ap.add_argument("--out", default=None, help="CSV (default results/quick/training_speed.csv)")
    a = ap.parse_args()

    import tvrlib.session
    from tvrlib.paths import results_dir
    from tvrlib.profiles import training_settings
    from tvrlib.training import FeatureSource, FrameSource, RetrievalModel, finetunable_copy

    warnings.filterwarnings("ignore")
    S = tvrlib.session.setup("quick", threads=a.threads)
    T = training_settings("quick")

    train = FeatureSource.from_session(S, "train")
    tiny_val = FeatureSource.from_session(S, "val").subset(5)
    dim = train.videos.frames.shape[-1]
    n_captions = len(train)
    load0 = os.getloadavg()[0]
    rows = []
    for name in a.heads:
        bs = T["tight_batch_size"] if name == "tightTransf" else T["batch_size"]
        model = RetrievalModel(build(name, dim, T["temporal_layers"]))
        sps = seconds_per_step(model, train, tiny_val, bs, a.frozen_steps, a.repeats)
        rows.append(
            {
                "head": name,
                "mode": "frozen features",
                "batch": bs,
                "steps per epoch": n_captions // bs,
                "measured steps": a.frozen_steps,
                "repeats": a.repeats,
                "s per step": sps,
                "s per epoch": sps * (n_captions // bs),
                "extrapolated": (n_captions // bs) > a.frozen_steps,
            }
        )
        print(rows[-1], flush=True)
    e2e_train = FrameSource(S.data("train"), S.num_frames)
    e2e_val = FrameSource(S.data("val"), S.num_frames).subset(4)
    bs = T["e2e_batch_size"]
    for name in a.heads:
        model = RetrievalModel(build(name, dim, T["temporal_layers"]), encoder=finetunable_copy(S.encoder))
        sps = seconds_per_step(model, e2e_train, e2e_val, bs, a.e2e_steps, a.repeats)
        rows.append(
            {
                "head": name,
                "mode": "end to end",
                "batch": bs,
                "steps per epoch": n_captions // bs,
                "measured steps": a.e2e_steps,
                "repeats": a.repeats,
                "s per step": sps,
                "s per epoch": sps * (n_captions // bs),
                "extrapolated": True,
            }
        )
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df["threads"] = a.threads
    df["load average at start"] = round(load0, 2)
    df["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    df["when"] = time.strftime("%Y-%m-%d %H:%M")
    out = Path(a.out) if a.out else results_dir("quick") / "training_speed.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    show = df.pivot(index="head", columns="mode", values="s per epoch").loc[a.heads]
    step = df.pivot(index="head", columns="mode", values="s per step").loc[a.heads]
    table = pd.DataFrame(
        {
            "frozen: s/step": step["frozen features"].round(3),
            "frozen: s/epoch": show["frozen features"].round(1),
            "end to end: s/step": step["end to end"].round(2),
            "end to end: min/epoch (extrapolated)": (show["end to end"] / 60).round(1),
        }
    )
    print(f"\n{out}\nthreads={a.threads}, load average at start {load0:.2f}\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
