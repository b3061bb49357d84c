"""Benchmark: time and peak memory of evaluating the fine-grained heads over every (text, video) pair.

Evaluation = :func:`tvrlib.heads.score_all` (``head``, all texts, all videos, ``max_bytes`` = the library's default
block budget :data:`tvrlib.heads.DEFAULT_MAX_BYTES`): each side encoded once, then the per-pair work in blocks of
pairs whose shape :func:`tvrlib.heads.scoring.block_shape` picks from the head's ``pair_bytes``. The time includes
encoding both sides. Heads (registered names, untrained: the time does not depend on the weights; every parameter
is moved off its initialisation by a seeded ``0.05 * N(0, 1)`` perturbation so that no weight is trivial):

* ``meanP``  (reference: a dual encoder, one ``[T, D] x [D, V]`` product);
* ``xpool``  (reference: text-conditioned pooling, its moment path);
* ``wti``, ``wti-uniform``  (DRL's token-wise interaction, words x frames);
* ``ts2net``  (TS2-Net: token shift + selection over patch tokens, then a frame-level similarity);
* ``global_local``, ``global_local-local``, ``global_local-global``  (CrossAttnGL's similarity vectors, S = 256).

Settings:

* ``random``: random features at MSR-VTT 1k-A scale, 1,000 texts x 1,000 videos x 12 frames x D = 512; word tokens
  ``L = 32`` per text (float16, as the feature cache stores them) with 8-32 valid words (seeded, uniform); for
  ts2net ``P = 49`` patch tokens per frame (ViT-B/32's 7 x 7), float16;
* ``quick``: the quick profile's real test split, ``S.queries("test", with_words=True)[0]`` (1,000 t2v queries,
  words ``[1000, 64, 128]`` float16) and ``S.videos("test", with_patches=True)`` (frames ``[1000, 12, 128]``,
  patches ``[1000, 12, 4, 128]`` float16), D = 128.

Patch tokens are given to ts2net only (the other heads do not read them; ``score_all`` would still copy them to
float32: ``VideoInput.to``). ``wti`` and ``global_local*`` are built with ``max_words = L`` (it sizes their
blocks).

Memory: each (head, setting) runs in a fresh subprocess; after the inputs and the head are built, the kernel's
peak-RSS counter (``VmHWM``) is reset through ``/proc/self/clear_refs`` and read again after the first (cold)
evaluation; the number reported is that peak minus the RSS just before, i.e. what the evaluation itself needed.
Beside it: the size a ``[T, V, L, F]`` float32 tensor (every word against every frame of every pair) would have,
which no head builds. Time: the median of ``--repeats`` warm runs in the same subprocess.

Heads too slow on one thread at full size (``--extrapolate``, default the two global_local variants with a local
branch) are timed at each of ``--partial-texts`` texts (evenly spaced over the ``--texts``, so that their word
counts are representative; quick's queries are not in random order) x all ``--videos`` videos and extrapolated
linearly in the number of texts from the largest (the table says so; the measured rows are written too, so that
linearity can be checked). Fewer texts, not fewer videos: these heads' blocks hold one text (and word columns are
trimmed per block to the block's longest caption), so the blocks are exactly those of the full run. Their peak
memory comes from a separate full-size run stopped after its first ``--peak-blocks`` blocks (both sides encoded,
every block the same shape).

Correctness: a separate subprocess scores a small grid (``--check-size``; the global_local heads, whose one-shot
``score`` builds ``[T, V, L, D]`` tensors, at ``--check-size-gl``) of each setting with ``score_all`` under a tiny
budget (blocks of 1 text x 1/``--check-splits`` of the videos; dual encoders in batches of 64) and with one-shot
``head.score(text, video)``, and prints the largest absolute difference (must be <= 1e-5).

A run slower than ``--repeat-cap-s`` is timed by one warm repeat only (ts2net at full size).

Run: ``.venv/bin/python benchmarks/fine_grained_eval.py`` (about 14 minutes on 1 thread of a shared 2-core machine);
rows go to ``results/quick/fine_grained_eval.csv`` (replacing the rows of the same setting, head and size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_io import upsert_csv  # noqa: E402
from text_conditioned_eval import _reset_peak, _status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "results" / "quick" / "fine_grained_eval.csv"
HEAD_NAMES = (
    "meanP",
    "xpool",
    "wti",
    "wti-uniform",
    "ts2net",
    "global_local-global",
    "global_local-local",
    "global_local",
)
FIELDS = (
    "setting",
    "head",
    "texts",
    "videos",
    "frames",
    "dim",
    "words",
    "patches",
    "seconds",
    "peak_MiB",
    "block",
    "block_budget_MiB",
    "extrapolated",
    "hypothetical_full_tensor_MiB",
    "seconds_per_1k_x_1k",
    "all_seconds",
    "threads",
    "load_average",
    "date",
)


# --------------------------------------------------------------------------- #
# inputs and heads (in the worker process)
# --------------------------------------------------------------------------- #
def make_inputs(setting: str, head: str, num_texts: int, num_videos: int, args):
    """``(TextInput, VideoInput)`` of ``setting``; the first ``n`` videos are the same whatever ``num_videos`` is."""
    import torch

    from tvrlib.heads import TextInput, VideoInput

    wants_patches = head.startswith("ts2net")
    if setting == "random":
        d, n_words, frames = args.dim, args.words, args.frames
        sentence = torch.randn(num_texts, d, generator=torch.Generator().manual_seed(0))
        words = torch.randn(num_texts, n_words, d, generator=torch.Generator().manual_seed(4)).half()
        lengths = torch.randint(
            min(8, n_words), n_words + 1, (num_texts,), generator=torch.Generator().manual_seed(5)
        )  # 8..L valid words, the rest padding
        word_mask = torch.arange(n_words)[None, :] < lengths[:, None]
        text = TextInput(sentence, words, word_mask)
        video = VideoInput(
            torch.randn(num_videos, frames, d, generator=torch.Generator().manual_seed(1)),
            torch.ones(num_videos, frames, dtype=torch.bool),
        )
        if wants_patches:  # generated per video so that fewer videos are a prefix of more
            g = torch.Generator().manual_seed(6)
            video.patches = torch.empty(num_videos, frames, args.patches, d, dtype=torch.float16)
            for i in range(num_videos):
                video.patches[i] = torch.randn(frames, args.patches, d, generator=g).half()
        return text, video
    if setting == "quick":
        from tvrlib.session import setup

        S = setup("quick", threads=args.threads)
        text = S.queries("test", with_words=True)[0]
        video = S.videos("test", with_patches=wants_patches)
        if num_texts > len(text) or num_videos > len(video):
            raise ValueError(f"quick test split has {len(text)} queries and {len(video)} videos")
        text, video = text.index(slice(0, num_texts)), video.index(slice(0, num_videos))
        # contiguous copies: a slice would keep the whole split's storage alive either way; this keeps RSS honest
        text = TextInput(text.sentence.clone(), text.words.clone(), text.word_mask.clone())
        video = VideoInput(
            video.frames.clone(), video.mask.clone(), None if video.patches is None else video.patches.clone()
        )
        return text, video
    raise ValueError(setting)


def build_head(name: str, dim: int, max_words: int):
    import torch

    from tvrlib.heads import HEADS

    torch.manual_seed(3)  # the same head in every process (some projections are randomly initialised)
    head = HEADS.build(name, **HEADS.accepted_kwargs(name, dim=dim, max_words=max_words)).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return head


def block_of(head, text, video, max_bytes: int) -> str:
    """The block shape ``score_all`` uses, as ``"t x v"`` (dual encoders: their embedding batches)."""
    from tvrlib.heads.scoring import DUAL_ENCODER_CHUNK, block_shape

    if head.is_dual_encoder:
        return f"dual: embed {DUAL_ENCODER_CHUNK}/batch, one [T,D]x[D,V] product"
    f, d = video.frames.shape[1], video.frames.shape[2]
    t, v = block_shape(len(text), len(video), head.pair_bytes(f, d, None), max_bytes)
    return f"{t} x {v}"


# --------------------------------------------------------------------------- #
# workers
# --------------------------------------------------------------------------- #
class _Stop(Exception):
    """Raised from inside ``score_all`` to end a memory-only run after its first blocks."""


def worker(head_name: str, setting: str, num_texts: int, num_videos: int, args) -> dict:
    """Evaluate one head in this (fresh) process and return its measurements."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tvrlib.heads import score_all

    torch.set_num_threads(args.threads)
    text, video = make_inputs(setting, head_name, num_texts, num_videos, args)
    if args.text_subset:  # evenly spaced texts: their word counts are those of the whole set (quick's are sorted)
        text = text.index(torch.arange(args.text_subset) * len(text) // args.text_subset)
        num_texts = len(text)
    n_words = text.words.shape[1]
    head = build_head(head_name, video.frames.shape[2], n_words)
    f, d = video.frames.shape[1], video.frames.shape[2]
    load_before = os.getloadavg()[0]
    if args.stop_after_blocks:  # memory only: the full-size evaluation, stopped after its first blocks
        score_encoded, calls = head.score_encoded, [0]

        def stopping(*a, **k):
            calls[0] += 1
            if calls[0] > args.stop_after_blocks:
                raise _Stop
            return score_encoded(*a, **k)

        head.score_encoded = stopping

    def run():
        try:
            return score_all(head, text, video, max_bytes=args.max_bytes)
        except _Stop:
            return None

    _reset_peak()
    _, rss_before = _status()
    t0 = time.perf_counter()
    scores = run()
    cold = time.perf_counter() - t0
    peak = _status()[0] - rss_before
    times = []
    # warm runs; a run slower than --repeat-cap-s is repeated once only (keeps the benchmark's total in bounds)
    for _ in range(0 if scores is None else args.repeats if cold <= args.repeat_cap_s else min(1, args.repeats)):
        t0 = time.perf_counter()
        scores = run()
        times.append(time.perf_counter() - t0)
    warm_runs = len(times)
    times = times or [cold]
    assert scores is None or (scores.shape == (num_texts, num_videos) and bool(torch.isfinite(scores).all()))
    return {
        "setting": setting,
        "head": head_name,
        "texts": num_texts,
        "videos": num_videos,
        "frames": f,
        "dim": d,
        "words": n_words,
        "patches": video.patches.shape[2] if video.patches is not None else "",
        "seconds": float(np.median(times)),
        "cold_seconds": cold,
        "warm_runs": warm_runs,
        "all_seconds": times,
        "peak_bytes": int(peak),
        "block": block_of(head, text, video, args.max_bytes),
        "pair_bytes": 0 if head.is_dual_encoder else int(head.pair_bytes(f, d, None)),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
    }


def check_worker(setting: str, args) -> list[dict]:
    """Chunked ``score_all`` (tiny budget, many blocks) against one-shot ``head.score`` on a small grid."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tvrlib.heads import score_all
    from tvrlib.heads.scoring import block_shape

    torch.set_num_threads(args.threads)
    out = []
    for name in args.heads:
        gl = name.startswith("global_local")
        nt, nv = args.check_size_gl if gl else args.check_size
        text, video = make_inputs(setting, name, nt, nv, args)
        head = build_head(name, video.frames.shape[2], text.words.shape[1])
        blocks = "dual, batches of 64"
        if head.is_dual_encoder:
            chunked = score_all(head, text, video, chunk=64)
        else:  # a budget of nv / check_splits pairs: blocks of 1 text x a fraction of the videos
            pair_bytes = head.pair_bytes(video.frames.shape[1], video.frames.shape[2])
            budget = pair_bytes * max(1, nv // args.check_splits)
            chunked = score_all(head, text, video, max_bytes=budget)
            t, v = block_shape(nt, nv, pair_bytes, budget)
            blocks = f"{-(-nt // t) * -(-nv // v)} blocks of {t} x {v}"
        with torch.no_grad():
            one_shot = head.score(text.to("cpu"), video.to("cpu"))
        out.append(
            {
                "setting": setting,
                "head": name,
                "size": f"{nt} x {nv}",
                "blocks": blocks,
                "max_abs_diff": float((chunked - one_shot).abs().max()),
            }
        )
    return out


# --------------------------------------------------------------------------- #
# the parent
# --------------------------------------------------------------------------- #
def _common_args(args) -> list[str]:
    return [
        "--dim",
        str(args.dim),
        "--words",
        str(args.words),
        "--patches",
        str(args.patches),
        "--frames",
        str(args.frames),
        "--threads",
        str(args.threads),
        "--max-bytes",
        str(args.max_bytes),
    ]


def _subprocess(cmd: list[str]):
    res = subprocess.run([sys.executable, __file__, *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise RuntimeError(f"worker failed: {' '.join(cmd)}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_in_subprocess(head: str, setting: str, args, text_subset: int = 0, stop_after_blocks: int = 0) -> dict:
    row = _subprocess(
        [
            "--worker",
            head,
            "--setting",
            setting,
            "--texts",
            str(args.texts),
            "--videos",
            str(args.videos),
            "--text-subset",
            str(text_subset),
            "--stop-after-blocks",
            str(stop_after_blocks),
            "--repeats",
            str(args.partial_repeats if text_subset else args.repeats),
            "--repeat-cap-s",
            str(args.repeat_cap_s),
            *_common_args(args),
        ]
    )
    what = f"first {stop_after_blocks} blocks (memory only)" if stop_after_blocks else f"{row['seconds']:.2f} s"
    print(
        f"  {setting:6s} {head:20s} {row['texts']} x {row['videos']}: {what} "
        f"(cold {row['cold_seconds']:.2f} s, warm runs {row['warm_runs']}), "
        f"peak {row['peak_bytes'] / 2**20:.0f} MiB, block {row['block']}",
        flush=True,
    )
    return row


def hypothetical_mib(row: dict) -> float:
    """MiB of a float32 ``[T, V, L, F]`` tensor at the row's size (every word x every frame of every pair)."""
    return row["texts"] * row["videos"] * row["words"] * row["frames"] * 4 / 2**20


def finish(row: dict, args, extrapolated: str = "") -> dict:
    per_1k = row["seconds"] * 1e6 / (row["texts"] * row["videos"])
    return {
        **{k: row[k] for k in ("setting", "head", "texts", "videos", "frames", "dim", "words", "patches", "block")},
        "seconds": round(row["seconds"], 4),
        "peak_MiB": round(row["peak_bytes"] / 2**20, 1),
        "block_budget_MiB": args.max_bytes / 2**20,
        "extrapolated": extrapolated,
        "hypothetical_full_tensor_MiB": round(hypothetical_mib(row), 1),
        "seconds_per_1k_x_1k": round(per_1k, 4),
        "all_seconds": " ".join(f"{s:.4f}" for s in row["all_seconds"]),
        "threads": args.threads,
        "load_average": row["load_average"],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def measure_setting(setting: str, args) -> list[dict]:
    rows = []
    for head in args.heads:
        partial = [n for n in args.partial_texts if n < args.texts] if head in args.extrapolate else []
        if not partial:
            rows.append(finish(run_in_subprocess(head, setting, args), args))
            continue
        partial = [run_in_subprocess(head, setting, args, text_subset=n) for n in partial]
        rows += [finish(r, args) for r in partial]
        memory = run_in_subprocess(head, setting, args, stop_after_blocks=args.peak_blocks)
        last = partial[-1]
        scale = args.texts / last["texts"]
        full = {
            **memory,
            "seconds": last["seconds"] * scale,
            "all_seconds": [s * scale for s in last["all_seconds"]],
            "load_average": last["load_average"],
        }
        note = "time linear in texts from " + ", ".join(
            f"{r['texts']} x {r['videos']}: {r['seconds']:.2f} s" for r in partial
        )
        note += f"; peak: first {args.peak_blocks} blocks at full size"
        rows.append(finish(full, args, note))
    return rows


def save_csv(rows: list[dict], path: Path) -> None:
    """Write ``rows``, keeping the file's other rows (a row is replaced by one of the same setting, head and size)."""
    upsert_csv(rows, path, FIELDS, ("setting", "head", "texts", "videos"))


def markdown(rows: list[dict], checks: list[dict], num_texts: int, num_videos: int) -> str:
    """The full-size rows of each setting (measured or extrapolated) and the checks, as markdown tables."""
    lines = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        rs = [
            r
            for r in rows
            if r["setting"] == setting and (int(r["texts"]), int(r["videos"])) == (num_texts, num_videos)
        ]
        base = next((r["seconds"] for r in rs if r["head"] == "meanP"), None)
        r0 = rs[0]
        lines += [
            f"**{setting}**: {r0['texts']} texts x {num_videos} videos x {r0['frames']} frames x D = {r0['dim']}, "
            f"L = {r0['words']} word columns" + (f", P = {next((r['patches'] for r in rs if r['patches']), '')}"),
            "",
            "| head | seconds | x meanP | peak MiB | block (texts x videos) | [T,V,L,F] float32 MiB | note |",
            "|---|---:|---:|---:|---|---:|---|",
        ]
        for r in rs:
            ratio = f"{r['seconds'] / base:,.0f}" if base else ""
            lines.append(
                f"| {r['head']} | {r['seconds']:.2f} | {ratio} | {r['peak_MiB']:.0f} | {r['block']} | "
                f"{r['hypothetical_full_tensor_MiB']:,.0f} | {r['extrapolated']} |"
            )
        lines.append("")
    if checks:
        lines += ["| check: chunked vs one-shot | size | blocks | max abs diff |", "|---|---|---|---:|"]
        lines += [
            f"| {c['setting']} {c['head']} | {c['size']} | {c['blocks']} | {c['max_abs_diff']:.1e} |" for c in checks
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", choices=("random", "quick", "both"), default="both")
    ap.add_argument("--heads", nargs="+", default=list(HEAD_NAMES))
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=12, help="random setting only (quick has 12)")
    ap.add_argument("--dim", type=int, default=512, help="random setting only (quick has 128)")
    ap.add_argument("--words", type=int, default=32, help="word columns per text, random setting (quick has 64)")
    ap.add_argument("--patches", type=int, default=49, help="patch tokens per frame for ts2net, random setting")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs timed (median)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-bytes", type=int, default=None, help="block budget; default tvrlib's DEFAULT_MAX_BYTES")
    ap.add_argument(
        "--extrapolate",
        nargs="*",
        default=["global_local", "global_local-local"],
        help="heads timed at --partial-texts x --videos and extrapolated linearly to --texts",
    )
    ap.add_argument("--partial-texts", type=int, nargs="+", default=[50, 100], help="evenly spaced subsets of texts")
    ap.add_argument("--partial-repeats", type=int, default=1)
    ap.add_argument("--peak-blocks", type=int, default=50, help="blocks of the memory-only full-size run")
    ap.add_argument("--repeat-cap-s", type=float, default=20.0, help="a run slower than this is repeated once only")
    ap.add_argument("--text-subset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--stop-after-blocks", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--check-size", type=int, nargs=2, default=[200, 300])
    ap.add_argument("--check-size-gl", type=int, nargs=2, default=[40, 50])
    ap.add_argument("--check-splits", type=int, default=7, help="check blocks: 1 text x 1/n of the videos")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--check-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.max_bytes is None:
        sys.path.insert(0, str(ROOT))
        from tvrlib.heads import DEFAULT_MAX_BYTES

        args.max_bytes = DEFAULT_MAX_BYTES

    if args.worker:
        print(json.dumps(worker(args.worker, args.setting, args.texts, args.videos, args)))
        return []
    if args.check_worker:
        print(json.dumps(check_worker(args.setting, args)))
        return []

    start = time.perf_counter()
    settings = ("random", "quick") if args.setting == "both" else (args.setting,)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs visible, torch threads {args.threads}, "
        f"block budget {args.max_bytes / 2**20:.0f} MiB, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    checks = []
    if not args.no_check:
        for setting in settings:
            got = _subprocess(
                [
                    "--check-worker",
                    "--setting",
                    setting,
                    "--heads",
                    *args.heads,
                    "--check-size",
                    *map(str, args.check_size),
                    "--check-size-gl",
                    *map(str, args.check_size_gl),
                    "--check-splits",
                    str(args.check_splits),
                    *_common_args(args),
                ]
            )
            for c in got:
                ok = "ok" if c["max_abs_diff"] <= 1e-5 else "FAIL"
                print(
                    f"  check {setting:6s} {c['head']:20s} {c['size']}, {c['blocks']}: chunked vs one-shot "
                    f"max |diff| = {c['max_abs_diff']:.1e} {ok}",
                    flush=True,
                )
            checks += got
    rows = []
    for setting in settings:
        rows += measure_setting(setting, args)
    save_csv(rows, args.csv)
    print(markdown(rows, checks, args.texts, args.videos))
    print(f"\nwrote {args.csv}; total {time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}")
    if any(c["max_abs_diff"] > 1e-5 for c in checks):
        raise SystemExit("chunked evaluation differs from one-shot scoring by more than 1e-5")
    return rows


if __name__ == "__main__":
    main()
