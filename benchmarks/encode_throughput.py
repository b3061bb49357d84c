"""Frames per second of decode (decord) + encode (open_clip) on this machine.

Usage: python benchmarks/encode_throughput.py [--videos N] [--threads K]

Decodes 12 uniformly sampled frames from each of N synthetic test videos and encodes them with the
tiny CLIP (its checkpoint) and with ViT-B-32 (random weights: the speed does not depend on the values).
Prints a markdown table; the numbers go into docs/performance.md.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch

from tvrlib.datasets import load_dataset
from tvrlib.models import get_encoder
from tvrlib.video import sample_frames


def measure(enc, paths, num_frames=12, batch_videos=16):
    decode = encode = 0.0
    n = 0
    for i in range(0, len(paths), batch_videos):
        t = time.perf_counter()
        frames = np.concatenate([sample_frames(p, num_frames, enc.image_size)[0] for p in paths[i : i + batch_videos]])
        decode += time.perf_counter() - t
        t = time.perf_counter()
        enc.encode_frames(frames, with_patches=False)
        encode += time.perf_counter() - t
        n += len(frames)
    return {
        "frames": n,
        "decode s": decode,
        "encode s": encode,
        "frames/s (decode+encode)": n / (decode + encode),
        "frames/s (encode only)": n / encode,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = load_dataset("synthetic", "test")
    paths = [v.path for v in data.videos[: a.videos]]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoders = [
            ("tvr-tiny (64 px)", get_encoder("tvr-tiny", device="cpu")),
            ("ViT-B-32 (224 px, random weights)", get_encoder("ViT-B-32", None, device="cpu")),
        ]
    for name, enc in encoders:
        measure(enc, paths[:16])  # warm-up
        r = measure(enc, paths)
        rows.append((name, r))
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads {a.threads}, "
        f"{a.videos} videos x 12 frames, {time.strftime('%Y-%m-%d')}"
    )
    print("| encoder | frames | decode s | encode s | frames/s decode+encode | frames/s encode only |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['frames']} | {r['decode s']:.2f} | {r['encode s']:.2f} | "
            f"{r['frames/s (decode+encode)']:.0f} | {r['frames/s (encode only)']:.0f} |"
        )


if __name__ == "__main__":
    main()
