"""Benchmark: the cost of every head, for notebook 12's efficiency table and scaling curves.

Two parts (``--part train``, ``--part scale``; default both):

* **train** -- parameters and training time per epoch of every head on frozen features. The quick profile's cached
  tiny-CLIP features of the training split (12,000 captions of 1,500 videos; word tokens and patch tokens loaded for
  the heads that read them), one batch size for every head (``--batch``, default 32: the token-level notebooks'
  quick batch, and the largest at which the cross-encoder ``tightTransf`` and the full global-local head stay in
  seconds per step), the shared training loop (``tvrlib.training.fit``: symmetric InfoNCE, AdamW), one untimed
  warm-up step, then ``--steps`` timed steps, median of ``--repeats`` runs. Seconds per epoch = seconds per step x
  the steps of one pass over all captions (``12,000 // batch``); validation is not included. The heads are built as
  the notebooks build them (``HEADS.accepted_kwargs(name, dim, layers=2, init_from=the tiny CLIP, k=1)``).
  Rows: ``results/quick/efficiency_train.csv``.
* **scale** -- evaluation time per query and memory as the gallery grows, ``--galleries`` (default 1k, 3k, 10k, 30k,
  100k videos), random features at MSR-VTT scale (12 frames, D = 512, 32 word tokens with 8-32 valid; TS2-Net with
  49 patch tokens per frame, ViT-B/32's 7 x 7). What a search system does per query is timed: the gallery side is
  encoded offline, once (``encode_video``, or a dual encoder's video embedding), and each query encodes its text and
  scores it against the whole stored gallery (a dual encoder: one ``[Q, D] x [D, V]`` product; an interaction head:
  ``score_encoded`` on blocks sized by its ``pair_bytes`` under the library's block budget, as ``score_all`` does).
  The offline encoding is timed on 1,000 videos and reported per video; the stored gallery of ``V`` videos is the
  1,000 encoded videos repeated (its values do not change the time of the per-query work, its size is exact).
  Per query: ``--queries`` queries scored together (fewer for the heads that take seconds per query at 100k, see
  ``SLOW``), the median of ``--repeats`` warm runs divided by the number of queries. Memory: the stored gallery's
  bytes (exact, from the tensors), and the evaluation's own peak (peak RSS, reset through ``/proc/self/clear_refs``
  after the gallery is built, minus the RSS before the query). Each head runs in a fresh subprocess, galleries
  growing (a fresh process per head and gallery), and stops at the first gallery that would not fit in
  ``--max-gallery-gib`` of stored features. Beside each time: plain ``torch.matmul`` calls with the same
  multiply-adds as the head's per-pair products (``gemm_bound.pair_products``, each product in its own shape; the
  median of 5 timings) in the same process, and the ratio of the whole query's time to them (text encoding and
  top-k included). Rows: ``results/quick/efficiency_scale.csv``.
  The two-stage re-ranker's scale curve is ``benchmarks/reranking.py --part scale`` (``rerank_scale.csv``).

Run: ``.venv/bin/python benchmarks/efficiency.py --threads 1`` (about 25 minutes on one thread, most of it the
global-local head at 30k and 100k videos).
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
from bench_io import commit, upsert_csv  # noqa: E402
from text_conditioned_eval import _reset_peak, _status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "quick"

#: the heads of the efficiency table, in the order of the notebooks that introduce them
TRAIN_HEADS = (
    "meanP",
    "seqLSTM",
    "seqTransf",
    "tightTransf",
    "self_attention_aggregation",
    "cross_modal_aggregation",
    "topK4",
    "xpool",
    "global_local-global",
    "global_local-local",
    "global_local",
    "wti-uniform",
    "wti",
    "ts2net",
    "etva",
)
#: the heads of the scaling curves: dual encoders, then the interaction heads scored in blocks
SCALE_HEADS = ("meanP", "seqTransf", "xpool", "wti", "ts2net", "etva", "global_local")
#: the other heads of the table: timed at 1,000 videos only (``--extra-galleries``), for its 1k x 1k column
EXTRA_HEADS = tuple(h for h in TRAIN_HEADS if h not in SCALE_HEADS)
#: heads that take about a second or more per query at 100k videos: fewer queries per measurement
SLOW = ("global_local", "ts2net", "wti", "tightTransf", "global_local-local")
#: the heads that read word tokens / patch tokens
WORDS = ("wti", "wti-uniform", "global_local", "global_local-local", "global_local-global", "etva", "ts2net")
PATCHES = ("ts2net", "etva")


def _machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def _upsert(path: Path, rows: list[dict], keys: tuple[str, ...]) -> None:
    """Write ``rows`` into the CSV at ``path``, replacing earlier rows with the same ``keys``."""
    upsert_csv(rows, path, dict.fromkeys(k for r in rows for k in r), keys)


def build(name: str, dim: int, init_from=None, max_words: int | None = None):
    """A registered head configured as the quick notebooks configure it (2 temporal layers, TS2-Net keeps 1 patch
    per frame, the interaction heads sized for ``max_words`` words)."""
    import torch

    from tvrlib.heads import HEADS

    torch.manual_seed(0)
    opts = {"dim": dim, "layers": 2, "k": 1}
    if init_from is not None:
        opts["init_from"] = init_from
    if max_words is not None:
        opts["max_words"] = max_words
    return HEADS.build(name, **HEADS.accepted_kwargs(name, **opts))


# --------------------------------------------------------------------------- train
def _random_source(n_videos: int, captions_per_video: int, a, words: bool, patches: bool, seed: int):
    """A :class:`FeatureSource` of random features in the quick profile's shapes (D = 128, 12 frames, 64 word columns
    with the quick test captions' token counts, 4 patches per frame): the time of a training step depends on the
    shapes, not on the values."""
    import torch
    from gemm_bound import quick_word_counts

    from tvrlib.heads import TextInput, VideoInput
    from tvrlib.training import FeatureSource

    g = torch.Generator().manual_seed(seed)
    n, d, L = n_videos * captions_per_video, 128, 64
    lengths, _ = quick_word_counts(n, L)
    text = TextInput(
        torch.randn(n, d, generator=g),
        torch.randn(n, L, d, generator=g).half() if words else None,
        (torch.arange(L)[None, :] < lengths[:, None]) if words else None,
    )
    video = VideoInput(torch.randn(n_videos, 12, d, generator=g), torch.ones(n_videos, 12, dtype=torch.bool))
    if patches:
        video.patches = torch.randn(n_videos, 12, 4, d, generator=g).half()
    return FeatureSource(text, video, np.repeat(np.arange(n_videos), captions_per_video))


def part_train(a) -> list[dict]:
    import torch

    from tvrlib.training import FeatureSource, RetrievalModel, fit

    torch.set_num_threads(a.threads)
    init_from, sources = None, {}
    if a.features == "quick":  # the quick split's cached features (needs the quick tiny CLIP)
        import tvrlib.session

        S = tvrlib.session.setup("quick", threads=a.threads)
        init_from = S.encoder.model

    def source(words: bool, patches: bool):
        if (words, patches) not in sources:
            if a.features == "quick":
                train = FeatureSource.from_session(S, "train", with_words=words, with_patches=patches)
                val = FeatureSource.from_session(S, "val", with_words=words, with_patches=patches).subset(5)
            else:  # quick's sizes: 1,500 training videos x 8 captions; a 5-video validation set (not timed)
                train = _random_source(1500, 8, a, words, patches, seed=0)
                val = _random_source(5, 5, a, words, patches, seed=1)
            sources[(words, patches)] = (train, val)
        return sources[(words, patches)]

    rows = []
    for name in a.heads or TRAIN_HEADS:
        train, val = source(name in WORDS, name in PATCHES)
        dim = train.videos.frames.shape[-1]
        head = build(name, dim, init_from=init_from)
        model = RetrievalModel(head)
        kw = dict(epochs=1, batch_size=a.batch, warmup=0.0, progress=False)
        fit(model, train, val, max_steps_per_epoch=1, **kw)  # warm-up
        times = []
        for r in range(a.repeats):
            res = fit(model, train, val, max_steps_per_epoch=a.steps, seed=r, **kw)
            times.append(float(res.history["train_seconds"].sum() / res.history["steps"].sum()))
        sps = float(np.median(times))
        steps = len(train) // a.batch
        rows.append(
            {
                "head": name,
                "params": sum(p.numel() for p in head.parameters()),
                "trainable_params": sum(p.numel() for p in head.parameters() if p.requires_grad),
                "dim": dim,
                "features": a.features,
                "batch": a.batch,
                "s_per_step": sps,
                "steps_per_epoch": steps,
                "s_per_epoch": sps * steps,
                "measured_steps": a.steps,
                "repeats": a.repeats,
                "all_s_per_step": " ".join(f"{t:.4f}" for t in times),
                "threads": torch.get_num_threads(),
                "load_average": round(os.getloadavg()[0], 2),
                "machine": _machine(),
                "commit": commit(),
                "when": time.strftime("%Y-%m-%d %H:%M"),
            }
        )
        r = rows[-1]
        print(f"{name:28s} params {r['params']:>9,d}  {sps:.3f} s/step  {r['s_per_epoch']:.1f} s/epoch", flush=True)
    return rows


# --------------------------------------------------------------------------- scale (worker)
def _random_inputs(name: str, n_texts: int, n_videos: int, a, seed: int = 0):
    import torch

    from tvrlib.heads import TextInput, VideoInput

    g = torch.Generator().manual_seed(seed)
    d, L, F = a.dim, a.words, a.frames
    lengths = torch.randint(8, L + 1, (n_texts,), generator=g)
    text = TextInput(
        torch.randn(n_texts, d, generator=g),
        torch.randn(n_texts, L, d, generator=g).half(),
        torch.arange(L)[None, :] < lengths[:, None],
    )
    video = VideoInput(torch.randn(n_videos, F, d, generator=g), torch.ones(n_videos, F, dtype=torch.bool))
    if name in PATCHES:
        video.patches = torch.randn(n_videos, F, a.patches, d, generator=g).half()
    return text, video


def _tile(side, n: int):
    """``side`` (an :class:`Encoded` or a tensor) repeated along its first axis to ``n`` items."""
    import torch

    from tvrlib.heads import VideoInput
    from tvrlib.heads.scoring import Encoded

    def rep(t):
        reps = -(-n // len(t))
        return t.repeat(reps, *([1] * (t.dim() - 1)))[:n].contiguous()

    if isinstance(side, torch.Tensor):
        return rep(side)
    if isinstance(side, VideoInput):
        return VideoInput(rep(side.frames), rep(side.mask), None if side.patches is None else rep(side.patches))
    return Encoded({k: rep(v) for k, v in side.tensors.items()})


def _nbytes(side) -> int:
    import torch

    from tvrlib.heads import VideoInput

    if isinstance(side, torch.Tensor):
        return side.numel() * side.element_size()
    if isinstance(side, VideoInput):
        return sum(_nbytes(t) for t in (side.frames, side.mask, side.patches) if t is not None)
    return sum(v.numel() * v.element_size() for v in side.tensors.values())


def _query(head, name: str, text, gallery, n: int, a):
    """The top 10 of the stored ``gallery`` (``n`` videos) for every text: what a search does per query."""
    import torch
    import torch.nn.functional as F

    from tvrlib.heads import DEFAULT_MAX_BYTES, score_all
    from tvrlib.heads.scoring import EncodedInteractionHead, block_shape

    if head.is_dual_encoder:
        q = F.normalize(head.embed_text(text), dim=-1)
        return torch.topk(q @ gallery.T, 10, dim=1)
    if not isinstance(head, EncodedInteractionHead):  # a cross-encoder: nothing of the gallery can be precomputed
        return torch.topk(score_all(head, text, gallery), 10, dim=1)
    te = head.encode_text(text)
    tc, vc = block_shape(len(text), n, head.pair_bytes(a.frames, a.dim), DEFAULT_MAX_BYTES)
    out = torch.empty(len(text), n)
    for i in range(0, len(text), tc):
        tb = te.index(slice(i, i + tc))
        for j in range(0, n, vc):
            out[i : i + tc, j : j + vc] = head.score_encoded(tb, gallery.index(slice(j, j + vc)))
    return torch.topk(out, 10, dim=1)


def scale_worker(name: str, galleries: list[int], a) -> list[dict]:
    import torch
    import torch.nn.functional as F
    from gemm_bound import pair_products, product_seconds

    from tvrlib.heads import VideoInput
    from tvrlib.heads.scoring import EncodedInteractionHead, inference

    torch.set_num_threads(a.threads)
    head = build(name, a.dim, max_words=a.words)
    with torch.no_grad():  # no weight is trivial: move every parameter off its initialisation
        g = torch.Generator().manual_seed(3)
        for p in head.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    n_q = a.queries_slow if name in SLOW else a.queries
    text, video = _random_inputs(name, n_q, 1000, a)
    rows = []
    with inference(head):
        t0 = time.perf_counter()
        if head.is_dual_encoder:
            enc = F.normalize(head.embed_video(video), dim=-1)
        elif isinstance(head, EncodedInteractionHead):
            enc = head.encode_video(video)
        else:  # a cross-encoder stores the gallery's frame features as they are
            enc = video
        encode_s = (time.perf_counter() - t0) / len(video)
        if not isinstance(enc, VideoInput):
            del video
        for n in galleries:
            if _nbytes(enc) / len(enc) * n > a.max_gallery_gib * 2**30:
                print(
                    f"{name}: {n:,d} videos would store over {a.max_gallery_gib} GiB of features; stopped", flush=True
                )
                break
            gallery = _tile(enc, n)
            stored = _nbytes(gallery)

            def query(gallery=gallery, n=n):
                return _query(head, name, text, gallery, n, a)

            _, rss0 = _status()
            _reset_peak()
            t0 = time.perf_counter()
            query()
            cold = time.perf_counter() - t0
            peak, _ = _status()
            times = [cold]
            for _ in range(a.repeats if cold < a.repeat_cap_s else 0):
                t0 = time.perf_counter()
                query()
                times.append(time.perf_counter() - t0)
            seconds = float(np.median(times[1:] if len(times) > 1 else times))
            try:  # the per-pair products of the head, timed as plain matmuls in their own shapes (gemm_bound.py)
                products = pair_products(name, text, n, a.frames, a.dim, head=head)
                macs = sum(p.macs for p in products)
                mm = float(np.median([sum(product_seconds(p) for p in products) for _ in range(5)]))
            except KeyError:  # no bound written down for this head (the cross-encoder; heads timed at 1k only)
                macs, mm = float("nan"), float("nan")
            rows.append(
                {
                    "head": name,
                    "gallery": n,
                    "queries": len(text),
                    "ms_per_query": 1e3 * seconds / len(text),
                    "encode_ms_per_video": 1e3 * encode_s,
                    "gallery_MiB": stored / 2**20,
                    "peak_MiB": (peak - rss0) / 2**20,
                    "macs_per_query": macs / len(text),
                    "matmul_ms_per_query": 1e3 * mm / len(text),
                    "x_matmul": seconds / mm,
                    "all_seconds": " ".join(f"{t:.4f}" for t in times),
                }
            )
            r = rows[-1]
            print(
                f"{name:14s} {n:>7,d} videos  {r['ms_per_query']:9.2f} ms/query  matmul {r['matmul_ms_per_query']:8.3f}"
                f"  x{r['x_matmul']:5.1f}  gallery {r['gallery_MiB']:8.1f} MiB  peak {r['peak_MiB']:7.1f} MiB",
                flush=True,
            )
            del gallery
    return rows


def part_scale(a) -> list[dict]:
    rows = []
    plan = [(h, n) for h in a.heads or SCALE_HEADS for n in a.galleries]
    if not a.heads:
        plan += [(h, n) for h in EXTRA_HEADS for n in a.extra_galleries]
    stopped = set()
    for name, n in plan:  # a fresh process per head and gallery: its peak memory is its own
        if name in stopped:
            continue
        galleries = [n]
        cmd = [sys.executable, __file__, "--worker", name, "--threads", str(a.threads)]
        cmd += ["--galleries", *map(str, galleries), "--dim", str(a.dim), "--words", str(a.words)]
        cmd += ["--frames", str(a.frames), "--patches", str(a.patches), "--queries", str(a.queries)]
        cmd += ["--queries-slow", str(a.queries_slow), "--repeats", str(a.repeats)]
        cmd += ["--repeat-cap-s", str(a.repeat_cap_s), "--max-gallery-gib", str(a.max_gallery_gib)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        *lines, last = res.stdout.strip().splitlines() or [""]
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise SystemExit(f"{name}: the worker failed (exit {res.returncode})")
        got = json.loads(last)
        if not got:  # the gallery would not fit: no larger one will
            stopped.add(name)
        rows += got
    for r in rows:
        r.update(
            threads=a.threads,
            dim=a.dim,
            frames=a.frames,
            words=a.words,
            load_average=round(os.getloadavg()[0], 2),
            machine=_machine(),
            commit=commit(),
            when=time.strftime("%Y-%m-%d %H:%M"),
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["train", "scale", "all"], default="all")
    ap.add_argument("--heads", nargs="*", default=None, help="registered head names (default: the part's list)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--features",
        choices=["random", "quick"],
        default="random",
        help="train: random features in quick's shapes, "
        "or the quick split's cached features (needs the quick tiny CLIP)",
    )
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--galleries", type=int, nargs="*", default=[1000, 3000, 10000, 30000, 100000])
    ap.add_argument("--extra-galleries", type=int, nargs="*", default=[1000], help="for the heads of EXTRA_HEADS")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--words", type=int, default=32)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--patches", type=int, default=49)
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--queries-slow", type=int, default=2)
    ap.add_argument("--repeat-cap-s", type=float, default=20.0, help="a query slower than this is timed once")
    ap.add_argument("--max-gallery-gib", type=float, default=8.0)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", default=str(OUT))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(scale_worker(a.worker, a.galleries, a)))
        return
    out = Path(a.out_dir)
    if a.part in ("train", "all"):
        _upsert(out / "efficiency_train.csv", part_train(a), ("head", "batch"))
    if a.part in ("scale", "all"):
        _upsert(out / "efficiency_scale.csv", part_scale(a), ("head", "gallery", "dim"))


if __name__ == "__main__":
    main()
