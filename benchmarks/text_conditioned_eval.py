"""Benchmark: memory and time of evaluating a text-conditioned pooling head over every (text, video) pair.

Setting: 1,000 texts x 1,000 videos x 12 frames x D = 512, random features, CPU.
The head is CrossAttnGL's cross-modal aggregation (docs/papers.md;
:class:`tvrlib.heads.cross_modal_aggregation.CrossModalAggregation`: pooled video = attention-weighted
sum of frames, CrossAttnGL eq. 4.9, then cosine), with its identity initialisation moved by a seeded
random perturbation so that the weights are not uniform.
The ways to get the ``[T, V]`` scores:

(a) ``full``        X-Pool-reference style: every pooled vector at once (a ``[T, V, D]`` tensor);
(b) ``chunked``     the same materialising computation in blocks under a memory budget
                    (:func:`tvrlib.heads.score_all`, ``path="materialise"``);
(c) ``gram``        the Gram-matrix path: no pooled vector (``path="gram"``), same blocks;
(d) ``meanP``       mean pooling, a dual encoder: embed each side once, then one
                    ``[T, D] x [D, V]`` matrix product (timed with and without the embedding).
(e), (f)            X-Pool (method_cards.md card 2, identity initialisation perturbed) in blocks, by
                    materialising ``[t, v, D]`` per block and by its moment path (no pooled vector).

Both (b) and (c) include the attention logits (one matrix product of caption vectors with the
frames) and the softmax. To separate the idea from that shared cost, the pooled-cosine stage is
also timed alone, with all attention weights precomputed (``stage_gram``, ``stage_materialise``).

Memory: each method runs in a fresh subprocess; after the inputs are built, the kernel's
peak-RSS counter (``VmHWM``) is reset through ``/proc/self/clear_refs`` and read again after
the first evaluation. The number reported is that peak minus the RSS just before the
evaluation, i.e. what the evaluation itself needed (inputs, Python and torch not counted).
(tracemalloc would not see torch's tensor allocations, so it is not used.)
Time: median wall time of ``--repeats`` further runs in the same subprocess (warm).
(a) needs about 4 GB at full size on this shared machine, so it is measured at 1,000 texts
x 125 and x 250 videos and extrapolated linearly in the number of videos (the table says so);
both sizes are reported so the linearity can be checked.

Run: ``.venv/bin/python benchmarks/text_conditioned_eval.py`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _status() -> tuple[int, int]:
    """(peak RSS, current RSS) of this process in bytes, from /proc/self/status."""
    text = Path("/proc/self/status").read_text()
    hwm = int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) * 1024
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024
    return hwm, rss


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(
    method: str,
    num_texts: int,
    num_videos: int,
    num_frames: int,
    dim: int,
    max_bytes: int,
    repeats: int,
    threads: int,
    out: str,
) -> dict:
    """Run one method in this (fresh) process; save its scores to ``out`` and return its measurements."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tvrlib.heads import TextInput, VideoInput, score_all
    from tvrlib.heads.cross_modal_aggregation import CrossModalAggregation
    from tvrlib.heads.gram import pooled_cosine_gram, pooled_cosine_materialised
    from tvrlib.heads.mean_pooling import MeanPooling
    from tvrlib.heads.scoring import block_shape
    from tvrlib.heads.xpool import XPool

    torch.set_num_threads(threads)
    # separate generators: (a) at fewer videos sees the same texts, head and first videos
    text = TextInput(torch.randn(num_texts, dim, generator=torch.Generator().manual_seed(0)))
    video = VideoInput(
        torch.randn(num_videos, num_frames, dim, generator=torch.Generator().manual_seed(1)),
        torch.ones(num_videos, num_frames, dtype=torch.bool),
    )
    torch.manual_seed(3)  # the same head in every process (its projections are randomly initialised)
    head = CrossModalAggregation(dim).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    if method.startswith("xpool_"):
        head = XPool(dim).eval()  # identity projections, moved by a seeded perturbation
        with torch.no_grad():
            for p in head.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))

    def run():
        if method == "full":
            with torch.no_grad():
                return head.score_encoded(head.encode_text(text), head.encode_video(video), path="materialise")
        if method == "chunked":
            return score_all(head, text, video, max_bytes=max_bytes, path="materialise")
        if method == "gram":
            return score_all(head, text, video, max_bytes=max_bytes, path="gram")
        if method in ("xpool_chunked", "xpool_gram"):
            return score_all(
                head, text, video, max_bytes=max_bytes, path="materialise" if method == "xpool_chunked" else "gram"
            )
        if method == "meanP":
            return score_all(MeanPooling(dim), text, video)
        if method == "meanP_product":  # the gallery is already embedded: only the [T, D] x [D, V] product
            return embedded_text @ embedded_video.T
        if method.startswith("stage_"):  # the pooled-cosine stage alone, the attention weights given
            path = method[len("stage_") :]
            t_chunk, _ = block_shape(num_texts, num_videos, head.pair_bytes(num_frames, dim, path), max_bytes)
            out = torch.empty(num_texts, num_videos)
            for i in range(0, num_texts, t_chunk):
                w, tgt = weights[i : i + t_chunk], te_["target"][i : i + t_chunk]
                out[i : i + t_chunk] = (
                    pooled_cosine_gram(tgt, w, ve_["values"], ve_["gram"])
                    if path == "gram"
                    else pooled_cosine_materialised(tgt, w, ve_["values"])
                )
            return out
        raise ValueError(method)

    if method.startswith("stage_"):
        with torch.no_grad():
            te_, ve_ = head.encode_text(text), head.encode_video(video)
            weights = head.weights_encoded(te_, ve_)  # [T, V, F], not timed
    if method == "meanP_product":
        mean = MeanPooling(dim)
        embedded_text, embedded_video = mean.embed_text(text), mean.embed_video(video)
    # memory: the first (cold) run, so that no allocation is served from memory freed by an earlier run
    _reset_peak()
    _, rss_before = _status()
    t0 = time.perf_counter()
    scores = run()
    cold = time.perf_counter() - t0
    peak = _status()[0] - rss_before
    # time: the median of the warm runs that follow (the cold run's time when there are none)
    times = []
    for _ in range(repeats if method != "full" else 0):
        t0 = time.perf_counter()
        scores = run()
        times.append(time.perf_counter() - t0)
    times = times or [cold]
    np.save(out, scores.numpy())  # the last run's scores, compared across methods by the parent
    return {
        "method": method,
        "texts": num_texts,
        "videos": num_videos,
        "frames": num_frames,
        "dim": dim,
        "seconds": float(np.median(times)),
        "all_seconds": times,
        "peak_bytes": int(peak),
    }


def run_in_subprocess(method: str, num_videos: int, args, tmp: Path) -> dict:
    out = tmp / f"{method}_{num_videos}.npy"
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--videos",
        str(num_videos),
        "--texts",
        str(args.texts),
        "--frames",
        str(args.frames),
        "--dim",
        str(args.dim),
        "--max-bytes",
        str(args.max_bytes),
        "--repeats",
        str(1 if method == "full" else args.repeats),
        "--threads",
        str(args.threads),
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row["scores_file"] = str(out)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--max-bytes", type=int, default=128 * 2**20, help="working-memory budget of one block")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--full-videos",
        type=int,
        nargs="+",
        default=[125, 250],
        help="video counts at which (a) is measured and then extrapolated",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(
            json.dumps(
                worker(
                    args.worker,
                    args.texts,
                    args.videos,
                    args.frames,
                    args.dim,
                    args.max_bytes,
                    args.repeats,
                    args.threads,
                    args.out,
                )
            )
        )
        return {}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        methods = (
            "meanP_product",
            "meanP",
            "gram",
            "chunked",
            "stage_gram",
            "stage_materialise",
            "xpool_gram",
            "xpool_chunked",
        )
        rows = {m: run_in_subprocess(m, args.videos, args, tmp) for m in methods}
        full = [run_in_subprocess("full", n, args, tmp) for n in args.full_videos]
        gram_scores = np.load(rows["gram"]["scores_file"])
        chunk_scores = np.load(rows["chunked"]["scores_file"])
        diff = float(np.abs(gram_scores - chunk_scores).max())
        xpool_diff = float(
            np.abs(np.load(rows["xpool_gram"]["scores_file"]) - np.load(rows["xpool_chunked"]["scores_file"])).max()
        )
        full_diff = max(float(np.abs(np.load(r["scores_file"]) - gram_scores[:, : r["videos"]]).max()) for r in full)

    scale = args.videos / full[-1]["videos"]
    rows["full"] = {
        "method": "full",
        "seconds": full[-1]["seconds"] * scale,
        "peak_bytes": int(full[-1]["peak_bytes"] * scale),
        "extrapolated_from": full,
    }
    result = {
        "setting": {
            k: getattr(args, k) for k in ("texts", "videos", "frames", "dim", "max_bytes", "threads", "repeats")
        },
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"torch threads {args.threads}",
        "rows": {
            k: {kk: vv for kk, vv in v.items() if kk not in ("scores_file", "all_seconds")} for k, v in rows.items()
        },
        "max_abs_diff_gram_vs_chunked": diff,
        "max_abs_diff_full_vs_gram": full_diff,
        "max_abs_diff_xpool_moment_vs_chunked": xpool_diff,
        "speedup_gram_over_chunked": rows["chunked"]["seconds"] / rows["gram"]["seconds"],
        "speedup_stage": rows["stage_materialise"]["seconds"] / rows["stage_gram"]["seconds"],
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


def markdown(result: dict) -> str:
    s, rows = result["setting"], result["rows"]
    mb = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    lines = [
        f"{s['texts']:,} texts x {s['videos']:,} videos x {s['frames']} frames x D = {s['dim']}, float32, "
        f"{s['threads']} torch threads, block budget {mb(s['max_bytes'])}; {result['machine']}.",
        "",
        "| method | peak extra memory | time (s) | time / meanP product |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "full": "(a) full materialisation `[T, V, D]` (X-Pool reference style)*",
        "chunked": "(b) chunked materialising",
        "gram": "(c) Gram-matrix path (ours)",
        "meanP": "(d) meanP: embed both sides + one matrix product",
        "meanP_product": "(d') meanP: the matrix product alone",
        "xpool_chunked": "(e) X-Pool, chunked materialising",
        "xpool_gram": "(f) X-Pool, moment path (ours)",
    }
    base = rows["meanP_product"]["seconds"]
    for k in ("full", "chunked", "gram", "meanP", "meanP_product", "xpool_chunked", "xpool_gram"):
        r = rows[k]
        lines.append(f"| {names[k]} | {mb(r['peak_bytes'])} | {r['seconds']:.2f} | {r['seconds'] / base:,.0f}x |")
    ext = rows["full"]["extrapolated_from"]
    lines += [
        "",
        "*(a) measured at "
        + ", ".join(
            f"{r['texts']:,} x {r['videos']:,} videos: {mb(r['peak_bytes'])}, {r['seconds']:.2f} s" for r in ext
        )
        + f"; extrapolated linearly to {s['videos']:,} videos.",
        f"Gram path vs chunked materialising: {result['speedup_gram_over_chunked']:.1f}x faster; "
        f"max |score difference| = {result['max_abs_diff_gram_vs_chunked']:.1e} "
        f"(full vs Gram on the measured columns: {result['max_abs_diff_full_vs_gram']:.1e}).",
        f"The pooled-cosine stage alone (attention weights given, same blocks): Gram "
        f"{rows['stage_gram']['seconds']:.2f} s vs materialising {rows['stage_materialise']['seconds']:.2f} s, "
        f"{result['speedup_stage']:.1f}x.",
        f"X-Pool: moment path {rows['xpool_chunked']['seconds'] / rows['xpool_gram']['seconds']:.1f}x faster than "
        f"chunked materialising; max |score difference| = {result['max_abs_diff_xpool_moment_vs_chunked']:.1e}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
