"""Benchmark: the cost of CrossTVR's two-stage retrieval (a cheap stage 1 ranks the gallery, a cross-encoder re-ranks).

Three parts (``--part {cost,training,scale,all}``), each writing its own CSV (``--out-dir``, default
``results/quick/``: ``rerank_cost.csv``, ``rerank_training.csv``, ``rerank_scale.csv``; a row replaces the file's row
of the same key, the others are kept) and printing a markdown table. The re-ranker is
:class:`tvrlib.heads.crosstvr.CrossTVR` in four configurations (``--configs``):

* ``default``: ``crosstvr``, layers = 2, queries = 8, mlp_ratio = 4 (the head's defaults, passed explicitly);
* ``light``: ``crosstvr``, layers = 1, queries = 4, mlp_ratio = 2;
* ``temporal`` / ``spatial``: ``crosstvr-temporal`` / ``crosstvr-spatial`` at the default size (Table 6's ablations).

Untrained heads: the time does not depend on the weights. Every head is built after ``torch.manual_seed(3)`` and every
parameter is moved off its initialisation by a seeded ``0.05 * N(0, 1)`` perturbation (as fine_grained_eval.py does).

**cost** (CrossTVR Table 8's "+0.15 s on 7-8 s per 1k videos", in miniature). Quick profile, real test split: the
1,000 t2v queries (``S.queries("test", with_words=True)``: words ``[1000, 64, 128]`` float16) x the 1,000 test videos
(``S.videos("test", with_patches=True)``: frames ``[1000, 12, 128]``, patches ``[1000, 12, 4, 128]`` float16), D = 128.

* stage 1 (``--stage1``, default meanP, ts2net, xpool; ``HEADS.build(name, **HEADS.accepted_kwargs(name, dim=D))``):
  seconds of ``score_all(head, all queries, all videos)`` (both sides encoded inside; patch tokens given to ts2net
  only) divided by the 1,000 queries;
* stage 2: ``rerank_top_k(s1, reranker, texts, videos, 15)`` on ``--queries`` (default 200) queries evenly spaced over
  the 1,000 (quick's queries are not in random order; 6 to 56 valid word tokens, 27 on average), ``s1`` = meanP's scores
  of those queries against all 1,000 videos (computed before, untimed; which stage-1 head made the shortlist does not
  change the cost). Reported: ``Reranked.seconds / T`` (the re-ranker's forward passes over the ``T K`` shortlisted
  pairs, in batches under ``DEFAULT_MAX_BYTES``) and, beside it, the wall time of the whole call (that plus the
  shortlist sort of ``[T, V]`` and the float64 combination) per query.
* matmul bound: for meanP, the time of one ``torch.matmul`` of ``[1000, 128] x [128, 1000]`` (the multiply-adds of its
  scoring product) and the ratio; for the re-ranker an **estimate** of its multiply-adds per pair from the cost
  formula of crosstvr.py's docstring, ``rows x (4 + 2 mlp_ratio) D^2`` (spatial pass: ``(Nq + L) + F Nq`` rows for
  one layer, ``(Nq + L) + 2 F Nq`` for two, plus ``F (Nq + L)`` per middle layer; temporal pass: ``layers x (Nq + L)``
  rows), plus the cross-attention memory's key/value projections (``2 D^2`` per memory token and layer: ``F (1 + P)``
  spatial, ``F M`` temporal) and the token selector (``F (1 + P) D^2 / 2``); attention scores, norms and the ITM
  head are left out. ``L`` is the caption length the head runs at (it trims each batch to its longest caption: the
  batch maximum, averaged over pairs). The matmul time for those multiply-adds comes from the machine's float32
  matmul rate measured in the same process: the faster of a ``[16384, D] x [D, 4 D]`` product (the feed-forward's
  shape) and a ``[2048, 1024] x [1024, 1024]`` one (``matmul_GMACs``).
* ``--threads`` (default 1 and 2). Each (part, head or config, threads) runs in a fresh subprocess; time = median of
  ``--repeats`` warm runs after a cold one.

**training** (CrossTVR Table 7's point: a re-ranker on a frozen encoder trains at a fraction of the cost of fine-tuning
the encoder). Batch ``--batch`` = 32 captions of the quick training split, the ``default`` re-ranker
(``--train-config``), AdamW (the re-ranker's groups from ``tvrlib.reranking._param_groups``, lr 1e-4), gradient
clipping at 1 as ``train_reranker``. One step:

* ``frozen``: cached features (``FeatureSource.from_session(S, "train", with_words=True, with_patches=True)``); meanP's
  in-batch similarity ``[B, B]`` (no gradients), ``hard_negatives`` (temperature 0.01), ``_batch_pairs`` (the B
  positives and up to 2B negatives), ``matching_loss``, backward, step: exactly the inner loop of ``train_reranker``;
* ``end-to-end``: the same step on top of ``finetunable_copy(S.encoder)`` (train mode): each batch video's 12 frames are
  decoded from its file (``sample_frames``, ``random_in_segment``, as ``FrameSource.batch``), encoded with gradients
  (``image_forward(preprocess(frames), with_patches=True)``: CLS and patch tokens), the captions tokenised and encoded
  with gradients (``text_forward(tokens, with_words=True)``); the negatives are drawn the same way
  (``hard_negatives`` on the batch's meanP similarity of the *detached* new features; only the cost matters here,
  not what the negatives teach); the optimiser also holds every encoder parameter (lr = the profile's
  ``lr_encoder``). The decoding time is part of the step and is also reported alone.

Seconds per step: median of ``--steps`` steps after one warm-up step. Memory: a fresh subprocess per mode; the peak RSS
counter (``VmHWM``) is reset through ``/proc/self/clear_refs`` after the inputs, the models and the optimiser are built
and read after the last step; reported: that peak minus the RSS just before (activations, gradients, the optimiser's
moments, decoded frames), beside what was resident before (the cached features, or the encoder). 1 thread by default.

**scale** (does two-stage retrieval stay under **20 ms per query, end to end, on these 2 CPU cores** as the gallery
grows?). A synthetic gallery of ``--sizes`` videos (default 1k, 10k, 100k) at quick's shapes (D = 128, 12 frames, 4
patch tokens per frame as float16), written once to memory-mapped ``.npy`` files under ``--cache-dir`` (default
``data/cache/bench_rerank_scale/``; reused when its ``meta.json`` matches, regenerated otherwise), in chunks of 2,048
videos from a generator seeded per chunk, so a smaller gallery is a prefix of a larger one. Video ``i``: a topic centre
``c`` (unit norm, one of 1,024) plus a video offset ``N(0, 1/D)``, each frame that plus ``N(0, 0.25/D)``, each patch its
frame plus ``N(0, 0.25/D)``. meanP's video embeddings (normalised mean of the normalised frames) are precomputed into
their own memmap (the index of the exact search). Queries (``--queries``, default 200): the embedding of a random video
among the first ``min(--sizes)`` (so every gallery holds every query's source video) plus ``N(0, 1/D)``, normalised; 18
word tokens each, all valid (the sentence plus ``N(0, 1/D)``, float16; quick's test captions have 20 valid tokens on
average, its 1,000 queries 27). The text encoder's cost is not included (the queries arrive as embeddings). Per gallery
size and search method (a fresh subprocess each):

* ``exact``: the queries in batches of ``--query-batch`` (32) times the embedding memmap in blocks of ``--block``
  (16,384) videos, with a running top K (``torch.topk`` merged across blocks);
* ``ivf``: FAISS ``IndexIVFFlat`` (inner product), ``nlist = round(4 sqrt(N))``, trained on the first
  ``min(N, 50 nlist)`` embeddings, ``nprobe`` = ``--nprobe`` (16); build time (train + add) reported separately, and
  recall@K of its shortlist against the exact one (the fraction of the exact top 15 it returns; it depends on the
  synthetic distribution: measure on real embeddings before trusting it). Without faiss the rows are skipped and the
  output says "faiss not installed".
* re-ranking the shortlist (K = 15) with the ``light`` and ``default`` re-rankers (``--scale-configs``): per batch of
  queries (as many as ``DEFAULT_MAX_BYTES`` allows, as ``rerank_top_k``), the shortlisted videos' frames and patches
  are read from the memmaps (sorted unique rows; part of the re-rank time and also reported alone), scored with
  ``tvrlib.reranking.pair_scores`` without gradients, and the shortlist re-ordered by ``s1 + m``.

Reported per row: stage-1 ms/query, re-rank ms/query, end-to-end ms/query (their sum; median of ``--repeats`` warm
runs each), whether that meets 20 ms, recall@15, the fraction of queries whose source video is in the shortlist,
peak RSS deltas of the build, the search and the re-ranking (file-backed pages of the memmaps that a phase touches count
as RSS; the files are in the page cache after the first run, so the reads are warm), and the bytes of the gallery's
memmap rows and of the FAISS index. 2 threads by default.

Run (full size): ``.venv/bin/python benchmarks/reranking.py`` (every part, about 9 minutes on a shared 2-core machine:
cost about 4, training 1, scale 4 the first time, the 100k gallery's 1.9 GB of memmaps included; ``--part cost`` etc.
for one). ``--smoke``: every part at tiny sizes on 1 thread (20 queries, galleries of 1,000 and 5,000, 2 training
steps of 8 captions, one repeat; about 1.5 minutes); its CSVs go to ``--out-dir`` or, by default, a temporary folder,
never to ``results/quick``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_io import upsert_csv  # noqa: E402
from text_conditioned_eval import _reset_peak, _status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K = 15
TARGET_MS = 20.0
PAPER = "CrossTVR Table 8: re-ranking the top 15 adds 0.15 s to stage 1's 7-8 s per 1k videos"
RERANKERS = {
    "default": ("crosstvr", {"layers": 2, "queries": 8, "mlp_ratio": 4.0}),
    "light": ("crosstvr", {"layers": 1, "queries": 4, "mlp_ratio": 2.0}),
    "temporal": ("crosstvr-temporal", {"layers": 2, "queries": 8, "mlp_ratio": 4.0}),
    "spatial": ("crosstvr-spatial", {"layers": 2, "queries": 8, "mlp_ratio": 4.0}),
}
STAGE1 = ("meanP", "ts2net", "xpool")
# the synthetic gallery (scale part); a change here regenerates the cache (meta.json records these)
GALLERY = {
    "version": 1,
    "seed": 0,
    "dim": 128,
    "frames": 12,
    "patches": 4,
    "topics": 1024,
    "chunk": 2048,
    "video_spread": 1.0,
    "frame_spread": 0.5,
    "patch_spread": 0.5,
}
QUERY_SPREAD, WORD_SPREAD, QUERY_WORDS = 1.0, 1.0, 18
MIB = 2**20

COST_FIELDS = (
    "setting", "stage", "config", "head", "threads", "queries", "gallery", "k", "ms_per_query", "call_ms_per_query",
    "peak_MiB", "params", "macs_per_query", "macs_kind", "matmul_ms_per_query", "x_matmul", "matmul_GMACs",
    "words_effective",
    "all_seconds", "load_average", "machine", "when",
)  # fmt: skip
TRAINING_FIELDS = (
    "mode", "config", "threads", "batch", "pairs_per_step", "steps", "s_per_step", "decode_s_per_step",
    "trainable_params", "encoder_params", "reranker_params", "peak_MiB", "resident_before_MiB", "all_seconds",
    "load_average", "machine", "when",
)  # fmt: skip
SCALE_FIELDS = (
    "gallery", "method", "nlist", "nprobe", "config", "threads", "queries", "k", "stage1_ms_per_query",
    "rerank_ms_per_query", "read_ms_per_query", "end_to_end_ms_per_query", "meets_20ms", "recall_at_k",
    "gold_in_shortlist", "build_s", "build_peak_MiB", "search_peak_MiB", "rerank_peak_MiB", "gallery_disk_MiB",
    "index_MiB", "load_average", "machine", "when",
)  # fmt: skip
KEYS = {
    "cost": ("stage", "config", "threads", "queries"),
    "training": ("mode", "config", "threads", "batch"),
    "scale": ("gallery", "method", "nprobe", "config", "threads", "queries"),
}


# --------------------------------------------------------------------------- #
# shared helpers (workers)
# --------------------------------------------------------------------------- #
def _machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    return torch


def _session(threads: int):
    _torch(threads)
    import tvrlib.session

    return tvrlib.session.setup("quick", threads=threads)


def _perturb(module, seed: int = 2):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return module


def build_stage1(name: str, dim: int):
    import torch

    from tvrlib.heads import HEADS

    torch.manual_seed(3)
    return _perturb(HEADS.build(name, **HEADS.accepted_kwargs(name, dim=dim))).eval()


def build_reranker(config: str, dim: int):
    import torch

    from tvrlib.heads import HEADS

    name, kwargs = RERANKERS[config]
    torch.manual_seed(3)
    return _perturb(HEADS.build(name, dim=dim, **kwargs)).eval()


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def measure(fn, repeats: int):
    """``(result, cold seconds, [warm seconds], peak bytes)``: one cold run with the peak-RSS counter reset before
    it (the peak is that run's ``VmHWM`` minus the RSS just before), then ``repeats`` timed warm runs."""
    _reset_peak()
    _, rss = _status()
    t0 = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t0
    peak = _status()[0] - rss
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t0)
    return out, cold, warm, int(peak)


def matmul_seconds(m: int, k: int, n: int, repeats: int) -> float:
    """Median seconds of ``[m, k] x [k, n]`` (float32, after two warm-up products)."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    for _ in range(2):
        torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_rate(dim: int) -> float:
    """The machine's float32 matmul rate (multiply-adds per second): the faster of a ``[16384, D] x [D, 4 D]`` product
    (the re-ranker's feed-forward shape) and a ``[2048, 1024] x [1024, 1024]`` one."""
    shapes = ((16384, dim, 4 * dim), (2048, 1024, 1024))
    return max(m * k * n / matmul_seconds(m, k, n, 7) for m, k, n in shapes)


def reranker_macs(r, frames: int, patches: int, words: float) -> float:
    """Estimated multiply-adds of one pair (see the module docstring): crosstvr.py's ``rows x (4 + 2 mlp_ratio) D^2``
    plus the memory's key/value projections and the token selector."""
    d, nq, layers = r.dim, r.n_queries, r.n_layers
    per_row, kv = (4 + 2 * r.mlp_ratio) * d * d, 2 * d * d
    macs = 0.0
    if r.spatial:
        rows = (nq + words) + (1 if layers == 1 else 2) * frames * nq + max(0, layers - 2) * frames * (nq + words)
        macs += rows * per_row + layers * frames * (1 + patches) * kv
    if r.temporal:
        m = min(r.select, 1 + patches)
        macs += layers * (nq + words) * per_row + layers * frames * m * kv + frames * (1 + patches) * d * d / 2
    return macs


def effective_words(lengths, batches) -> float:
    """The caption length the head runs at, averaged over pairs: each batch of :func:`tvrlib.reranking.rerank_top_k`
    (``batches``: its caption rows, from ``_query_batches``) is padded to its longest caption (``lengths``: word
    tokens per caption, ``_word_counts``; CrossTVR trims the rest)."""
    if not batches:
        return 1.0
    longest = [int(lengths[b].max()) for b in batches]
    return float(np.average(longest, weights=[len(b) for b in batches]))


# --------------------------------------------------------------------------- #
# part 1: cost (workers)
# --------------------------------------------------------------------------- #
def _quick_test(S, with_patches: bool):
    """All test queries (with word tokens) and all test videos, as contiguous copies (RSS stays honest)."""
    from tvrlib.heads import TextInput, VideoInput

    text = S.queries("test", with_words=True)[0]
    video = S.videos("test", with_patches=with_patches)
    text = TextInput(text.sentence.clone(), text.words.clone(), text.word_mask.clone())
    video = VideoInput(
        video.frames.clone(), video.mask.clone(), None if video.patches is None else video.patches.clone()
    )
    return text, video


def work_stage1(spec: dict) -> dict:
    S = _session(spec["threads"])
    from tvrlib.heads import score_all

    text, video = _quick_test(S, with_patches=spec["head"].startswith("ts2net"))
    t, v, d = len(text), len(video), video.frames.shape[2]
    head = build_stage1(spec["head"], d)
    load0 = os.getloadavg()[0]
    scores, cold, warm, peak = measure(lambda: score_all(head, text, video), spec["repeats"])
    assert scores.shape == (t, v)
    seconds = float(np.median(warm or [cold]))
    row = {
        "setting": "quick test",
        "stage": "stage1",
        "config": spec["head"],
        "head": spec["head"],
        "queries": t,
        "gallery": v,
        "k": "",
        "ms_per_query": 1e3 * seconds / t,
        "call_ms_per_query": 1e3 * seconds / t,
        "peak_MiB": peak / MIB,
        "params": n_params(head),
        "words_effective": "",
        "all_seconds": " ".join(f"{s:.4f}" for s in [cold, *warm]),
    }
    if head.is_dual_encoder:  # the scoring product of a dual encoder: [T, D] x [D, V]
        mm = matmul_seconds(t, d, v, 30)
        row.update(
            macs_per_query=v * d,
            macs_kind="exact ([T,D]x[D,V] product only)",
            matmul_ms_per_query=1e3 * mm / t,
            x_matmul=seconds / mm,
            matmul_GMACs=t * d * v / mm / 1e9,
        )
    row["load_average"] = round((load0 + os.getloadavg()[0]) / 2, 2)
    return row


def work_rerank(spec: dict) -> dict:
    S = _session(spec["threads"])
    import torch

    from tvrlib.heads import HEADS, score_all
    from tvrlib.reranking import _query_batches, _word_counts, rerank_top_k

    text, video = _quick_test(S, with_patches=True)
    meanp = HEADS.build("meanP", dim=video.frames.shape[2])
    s1 = score_all(meanp, text, video)  # the shortlist's source; untimed
    n = min(spec["queries"], len(text))
    qi = torch.arange(n) * len(text) // n  # evenly spaced: representative caption lengths
    texts = text.index(qi)
    s1 = s1[qi]
    f, d, p = video.frames.shape[1], video.frames.shape[2], video.patches.shape[2]
    reranker = build_reranker(spec["config"], d)
    load0 = os.getloadavg()[0]
    calls = []  # (wall seconds of the call, Reranked.seconds) per call, the cold one first

    def run():
        t0 = time.perf_counter()
        rec = rerank_top_k(s1, reranker, texts, video, K, max_bytes=int(spec["max_bytes"]))
        calls.append((time.perf_counter() - t0, rec.seconds))
        return rec

    rec, _, _, peak = measure(run, spec["repeats"])
    warm = calls[1:] or calls
    own = [c[1] for c in warm]
    assert rec.matching.shape == (n, K) and bool(torch.isfinite(rec.matching).all())
    # the batches rerank_top_k ran (captions sorted by length), so the estimate sees the padding it paid for
    batches = list(_query_batches(reranker, texts, video, K, int(spec["max_bytes"])))
    words = effective_words(_word_counts(texts), batches)
    macs = reranker_macs(reranker, f, p, words) * K
    rate = matmul_rate(d)
    own_s = float(np.median(own))
    return {
        "setting": "quick test",
        "stage": "rerank",
        "config": spec["config"],
        "head": RERANKERS[spec["config"]][0],
        "queries": n,
        "gallery": len(video),
        "k": K,
        "ms_per_query": 1e3 * own_s / n,
        "call_ms_per_query": 1e3 * float(np.median([c[0] for c in warm])) / n,
        "peak_MiB": peak / MIB,
        "params": n_params(reranker),
        "macs_per_query": macs,
        "macs_kind": "estimate (crosstvr.py's cost formula)",
        "matmul_ms_per_query": 1e3 * macs / rate,
        "x_matmul": own_s / n / (macs / rate),
        "matmul_GMACs": rate / 1e9,
        "words_effective": round(words, 1),
        "all_seconds": " ".join(f"{s:.4f}" for s in own),
        "load_average": round((load0 + os.getloadavg()[0]) / 2, 2),
    }


# --------------------------------------------------------------------------- #
# part 2: training (workers)
# --------------------------------------------------------------------------- #
def work_training(spec: dict) -> dict:
    S = _session(spec["threads"])
    import torch

    from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
    from tvrlib.reranking import RerankConfig, _batch_pairs, _param_groups, hard_negatives, matching_loss

    mode, batch = spec["mode"], spec["batch"]
    cfg = RerankConfig(batch_size=batch)
    rng = np.random.default_rng(0)
    meanp = HEADS.build("meanP", dim=128)
    enc = None
    if mode == "frozen":
        from tvrlib.training import FeatureSource

        train = FeatureSource.from_session(S, "train", with_words=True, with_patches=True)
        t2v, n_captions = train.text_to_video, len(train)
        dim = train.videos.frames.shape[2]
        t, v = train.texts, train.videos
        tensors = [t.sentence, t.words, t.word_mask, v.frames, v.mask, v.patches]
        resident = sum(x.numel() * x.element_size() for x in tensors if x is not None)
    else:
        from tvrlib.profiles import training_settings
        from tvrlib.training import finetunable_copy
        from tvrlib.video import sample_frames

        data = S.data("train")
        enc = finetunable_copy(S.encoder)
        enc.model.train()
        t2v, n_captions = np.asarray(data.text_to_video, dtype=np.int64), len(data.texts)
        dim, frames_per_video = enc.embed_dim, S.num_frames
        resident = sum(p.numel() * p.element_size() for p in enc.model.parameters())
    torch.manual_seed(3)
    reranker = HEADS.build(RERANKERS[spec["config"]][0], dim=dim, **RERANKERS[spec["config"]][1]).train()
    groups = _param_groups(reranker, cfg)
    if enc is not None:
        lr_encoder = training_settings("quick")["lr_encoder"]
        groups.append({"params": list(enc.model.parameters()), "lr": lr_encoder, "weight_decay": cfg.weight_decay})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    trainable = [p for g in groups for p in g["params"]]
    order = rng.permutation(n_captions)
    decode_times, pairs = [], []

    def frozen_pairs(idx):
        vids = t2v[idx]
        sim = score_all(meanp, train.texts.index(torch.as_tensor(idx)), train.videos.index(torch.as_tensor(vids)))
        neg = hard_negatives(sim, np.arange(len(idx)), rng, video_ids=vids, temperature=cfg.temperature)
        return _batch_pairs(train, idx, neg)

    def e2e_pairs(idx):
        vids = t2v[idx]
        uniq, inverse = np.unique(vids, return_inverse=True)
        t0 = time.perf_counter()
        decoded = [
            sample_frames(data.videos[j].path, frames_per_video, enc.image_size, "random_in_segment", rng=rng)
            for j in uniq
        ]
        decode_times.append(time.perf_counter() - t0)
        feats = enc.image_forward(enc.preprocess(np.concatenate([fr for fr, _ in decoded])), with_patches=True)
        cls = feats.cls.view(len(uniq), frames_per_video, -1)
        patches = feats.patches.view(len(uniq), frames_per_video, feats.patches.shape[1], -1)
        mask = torch.from_numpy(np.stack([m for _, m in decoded]))
        inv = torch.as_tensor(inverse)
        tf = enc.text_forward(enc.tokenize([data.texts[i] for i in idx]), with_words=True)
        texts = TextInput(tf.sentence, tf.words, tf.mask)
        videos = VideoInput(cls[inv], mask[inv], patches[inv])  # one row per caption, as FrameSource.batch
        # stage 1 on the detached new features (score_all runs without gradients)
        sim = score_all(meanp, TextInput(tf.sentence.detach()), VideoInput(videos.frames.detach(), videos.mask))
        neg = hard_negatives(sim, np.arange(len(idx)), rng, video_ids=vids, temperature=cfg.temperature)
        # what _batch_pairs reads: the batch's captions and one video row per caption (column i = caption i's video)
        batch_source = SimpleNamespace(texts=texts, videos=videos, text_to_video=np.arange(len(idx)))
        return _batch_pairs(batch_source, np.arange(len(idx)), neg)

    make_pairs = frozen_pairs if mode == "frozen" else e2e_pairs
    times = []

    def step(s: int):
        t0 = time.perf_counter()
        idx = order[s * batch : (s + 1) * batch]
        texts, videos, labels = make_pairs(idx)
        pairs.append(len(labels))
        loss = matching_loss(reranker, texts.to("cpu"), videos.to("cpu"), labels)  # eq. 7
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, cfg.clip_grad)
        opt.step()
        times.append(time.perf_counter() - t0)
        assert math.isfinite(float(loss.detach()))

    load0 = os.getloadavg()[0]
    _reset_peak()
    _, rss = _status()
    for s in range(1 + spec["steps"]):  # step 0: warm-up (also allocates the optimiser's moments)
        step(s)
    peak = _status()[0] - rss
    measured = times[1:] or times
    return {
        "mode": "frozen features" if mode == "frozen" else "end-to-end",
        "config": spec["config"],
        "batch": batch,
        "pairs_per_step": float(np.mean(pairs)),
        "steps": len(measured),
        "s_per_step": float(np.median(measured)),
        "decode_s_per_step": float(np.median(decode_times[1:] or decode_times)) if decode_times else "",
        "trainable_params": sum(p.numel() for p in trainable),
        "encoder_params": 0 if enc is None else n_params(enc.model),
        "reranker_params": n_params(reranker),
        "peak_MiB": peak / MIB,
        "resident_before_MiB": resident / MIB,
        "all_seconds": " ".join(f"{s:.4f}" for s in times),
        "load_average": round((load0 + os.getloadavg()[0]) / 2, 2),
    }


# --------------------------------------------------------------------------- #
# part 3: scale (the gallery cache in the parent, the searches in workers)
# --------------------------------------------------------------------------- #
def _gallery_files(cache: Path) -> dict[str, Path]:
    return {k: cache / f"{k}.npy" for k in ("frames", "patches", "embeddings")}


def video_bytes() -> int:
    """Bytes of one video's rows in the three memmaps (frames float32, patches float16, embedding float32)."""
    d, f, p = GALLERY["dim"], GALLERY["frames"], GALLERY["patches"]
    return f * d * 4 + f * p * d * 2 + d * 4


def ensure_gallery(cache: Path, rows: int) -> tuple[bool, float]:
    """Make sure ``cache`` holds a synthetic gallery of at least ``rows`` videos: ``(reused, seconds)``."""
    import torch

    from tvrlib.heads.mean_pooling import masked_mean_pool

    meta_path = cache / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        files = _gallery_files(cache)
        if (
            {k: meta.get(k) for k in GALLERY} == GALLERY
            and meta["rows"] >= rows
            and all(p.exists() for p in files.values())
        ):
            return True, 0.0
    t0 = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # written last: a half-written gallery is never reused
    g = GALLERY
    d, f, p, chunk = g["dim"], g["frames"], g["patches"], g["chunk"]
    files = _gallery_files(cache)
    out = {
        "frames": np.lib.format.open_memmap(files["frames"], "w+", np.float32, (rows, f, d)),
        "patches": np.lib.format.open_memmap(files["patches"], "w+", np.float16, (rows, f, p, d)),
        "embeddings": np.lib.format.open_memmap(files["embeddings"], "w+", np.float32, (rows, d)),
    }
    centres = np.random.default_rng([g["seed"], 0]).standard_normal((g["topics"], d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    scale = 1 / math.sqrt(d)
    for c, start in enumerate(range(0, rows, chunk)):
        rng = np.random.default_rng([g["seed"], 1 + c])  # a full chunk always: a gallery's rows never depend on N
        topic = rng.integers(0, g["topics"], chunk)
        z = centres[topic] + g["video_spread"] * scale * rng.standard_normal((chunk, d), dtype=np.float32)
        frames = z[:, None] + g["frame_spread"] * scale * rng.standard_normal((chunk, f, d), dtype=np.float32)
        patches = frames[:, :, None] + g["patch_spread"] * scale * rng.standard_normal(
            (chunk, f, p, d), dtype=np.float32
        )
        n = min(chunk, rows - start)
        out["frames"][start : start + n] = frames[:n]
        out["patches"][start : start + n] = patches[:n].astype(np.float16)
        fr = torch.from_numpy(frames[:n])
        out["embeddings"][start : start + n] = masked_mean_pool(fr, torch.ones(fr.shape[:2], dtype=torch.bool)).numpy()
    for m in out.values():
        m.flush()
    del out
    meta_path.write_text(json.dumps({**GALLERY, "rows": rows}, indent=1))
    return False, time.perf_counter() - t0


def synthetic_queries(emb: np.ndarray, num: int, pool: int):
    """``(TextInput, source video [Q])``: see the module docstring (the same queries for every gallery size)."""
    import torch
    import torch.nn.functional as F

    from tvrlib.heads import TextInput

    rng = np.random.default_rng([GALLERY["seed"], 999_999])
    src = rng.integers(0, pool, num)
    d = emb.shape[1]
    noise = rng.standard_normal((num, d), dtype=np.float32) * QUERY_SPREAD / math.sqrt(d)
    sentence = F.normalize(torch.from_numpy(np.asarray(emb[src]) + noise), dim=-1)
    words = sentence[:, None] + torch.from_numpy(
        rng.standard_normal((num, QUERY_WORDS, d), dtype=np.float32) * WORD_SPREAD / math.sqrt(d)
    )
    return TextInput(sentence, words.half(), torch.ones(num, QUERY_WORDS, dtype=torch.bool)), src


def exact_search(q, emb, k: int, query_batch: int, block: int):
    """Top ``k`` of ``q [Q, D] x emb [N, D]^T`` (values, indices ``[Q, k]``, best first), blocks of the memmap."""
    import torch

    vals, idxs = [], []
    n = emb.shape[0]
    for i in range(0, len(q), query_batch):
        qb = q[i : i + query_batch]
        best_v = best_i = None
        for j in range(0, n, block):
            s = qb @ torch.from_numpy(emb[j : j + block]).T
            v, ix = s.topk(min(k, s.shape[1]), dim=1)
            ix += j
            if best_v is not None:
                v, o = torch.cat([best_v, v], 1).topk(min(k, best_v.shape[1] + v.shape[1]), dim=1)
                ix = torch.cat([best_i, ix], 1).gather(1, o)
            best_v, best_i = v, ix
        vals.append(best_v)
        idxs.append(best_i)
    return torch.cat(vals), torch.cat(idxs)


def rerank_shortlist(reranker, texts, top, s1, frames_mm, patches_mm, max_bytes: int):
    """Re-score ``top [Q, K]`` (gallery rows) with ``reranker``: ``(re-ordered shortlist [Q, K], read seconds)``."""
    import torch

    from tvrlib.heads import VideoInput
    from tvrlib.heads.scoring import inference
    from tvrlib.reranking import _pair_bytes, _word_counts, pair_scores

    q, k = top.shape
    f = frames_mm.shape[1]
    probe = VideoInput(torch.zeros(1, f, frames_mm.shape[2]), torch.ones(1, f, dtype=torch.bool))
    probe.patches = torch.zeros(1, f, *patches_mm.shape[2:])
    per_batch = max(1, int(max_bytes) // (max(1, _pair_bytes(reranker, probe, int(_word_counts(texts).max()))) * k))
    m = torch.empty(q, k)
    read = 0.0
    with inference(reranker):
        for i in range(0, q, per_batch):
            t0 = time.perf_counter()
            sel = top[i : i + per_batch]
            n = len(sel)
            uniq, inverse = np.unique(sel.reshape(-1).numpy(), return_inverse=True)  # sorted rows: a forward read
            inv = torch.from_numpy(inverse.reshape(-1))
            fr = torch.from_numpy(frames_mm[uniq])[inv]
            pa = torch.from_numpy(patches_mm[uniq])[inv]
            videos = VideoInput(fr, torch.ones(fr.shape[:2], dtype=torch.bool), pa).to("cpu")
            read += time.perf_counter() - t0
            ti = torch.arange(n).repeat_interleave(k)
            m[i : i + n] = pair_scores(reranker, texts.index(slice(i, i + n)).index(ti).to("cpu"), videos).view(n, k)
    order = (s1.double() + m.double()).argsort(dim=1, descending=True, stable=True)  # CrossTVR §3.4: s1 + m
    return top.gather(1, order), read


def work_scale(spec: dict) -> list[dict]:
    torch = _torch(spec["threads"])
    from tvrlib.heads import HEADS

    n, method, repeats = spec["gallery"], spec["method"], spec["repeats"]
    files = _gallery_files(Path(spec["cache"]))
    emb = np.load(files["embeddings"], mmap_mode="c")[:n]  # copy-on-write: writable for torch, never written
    frames_mm = np.load(files["frames"], mmap_mode="r")[:n]
    patches_mm = np.load(files["patches"], mmap_mode="r")[:n]
    texts, src = synthetic_queries(emb, spec["queries"], spec["pool"])
    q = HEADS.build("meanP").embed_text(texts)  # meanP's query embedding: the normalised sentence
    load0 = os.getloadavg()[0]
    exact = lambda: exact_search(q, emb, K, spec["query_batch"], spec["block"])  # noqa: E731
    nlist, index_bytes, build_s, build_peak = "", 0, 0.0, 0
    if method == "exact":
        (s1, top), cold, warm, search_peak = measure(exact, repeats)
        truth = top
    else:
        import faiss

        faiss.omp_set_num_threads(spec["threads"])
        truth = exact()[1]
        nlist = max(1, round(4 * math.sqrt(n)))

        def build():
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(emb.shape[1]), emb.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(np.ascontiguousarray(emb[: min(n, 50 * nlist)]))
            for j in range(0, n, 65536):
                index.add(np.ascontiguousarray(emb[j : j + 65536]))
            index.nprobe = spec["nprobe"]
            return index

        index, build_s, _, build_peak = measure(build, 0)
        index_bytes = int(faiss.serialize_index(index).nbytes)
        qn = q.numpy()

        def approx():
            out = [index.search(qn[i : i + spec["query_batch"]], K) for i in range(0, len(qn), spec["query_batch"])]
            return torch.from_numpy(np.concatenate([o[0] for o in out])), torch.from_numpy(
                np.concatenate([o[1] for o in out]).astype(np.int64)
            )

        (s1, top), cold, warm, search_peak = measure(approx, repeats)
    nq = len(q)
    assert int(top.min()) >= 0, "the search returned fewer than K videos"
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(top, truth)]))
    gold = float(np.mean([int(s) in set(t.tolist()) for s, t in zip(src, top)]))
    stage1_ms = 1e3 * float(np.median(warm or [cold])) / nq
    rows = []
    for config in spec["configs"]:
        reranker = build_reranker(config, emb.shape[1])
        reads = []

        def run(reranker=reranker, reads=reads):
            final, read = rerank_shortlist(reranker, texts, top, s1, frames_mm, patches_mm, spec["max_bytes"])
            reads.append(read)
            return final

        final, rr_cold, rr_warm, rr_peak = measure(run, repeats)
        assert sorted(final[0].tolist()) == sorted(top[0].tolist())
        rerank_ms = 1e3 * float(np.median(rr_warm or [rr_cold])) / nq
        rows.append(
            {
                "gallery": n,
                "method": method,
                "nlist": nlist,
                "nprobe": spec["nprobe"] if method == "ivf" else "",
                "config": config,
                "queries": nq,
                "k": K,
                "stage1_ms_per_query": stage1_ms,
                "rerank_ms_per_query": rerank_ms,
                "read_ms_per_query": 1e3 * float(np.median(reads[1:] or reads)) / nq,
                "end_to_end_ms_per_query": stage1_ms + rerank_ms,
                "meets_20ms": stage1_ms + rerank_ms <= TARGET_MS,
                "recall_at_k": recall,
                "gold_in_shortlist": gold,
                "build_s": build_s,
                "build_peak_MiB": build_peak / MIB,
                "search_peak_MiB": search_peak / MIB,
                "rerank_peak_MiB": rr_peak / MIB,
                "gallery_disk_MiB": n * video_bytes() / MIB,
                "index_MiB": index_bytes / MIB,
                "load_average": round((load0 + os.getloadavg()[0]) / 2, 2),
            }
        )
    return rows


# --------------------------------------------------------------------------- #
# the parent
# --------------------------------------------------------------------------- #
def _subprocess(spec: dict):
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    res = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise RuntimeError(f"worker failed: {spec}")
    return json.loads(res.stdout.strip().splitlines()[-1])


WORKERS = {"stage1": work_stage1, "rerank": work_rerank, "training": work_training, "scale": work_scale}


def _stamp(rows: list[dict], threads: int, machine: str) -> list[dict]:
    when = time.strftime("%Y-%m-%d %H:%M")
    return [{**r, "threads": threads, "machine": machine, "when": when} for r in rows]


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else v


def save_csv(rows: list[dict], path: Path, fields: tuple, key: tuple) -> None:
    """Write ``rows`` to ``path``, keeping the file's rows of other keys."""
    upsert_csv(rows, path, fields, key, fmt=_fmt)


def run_cost(args, machine: str) -> list[dict]:
    rows = []
    for threads in args.threads_cost:
        for head in args.stage1:
            r = _subprocess({"kind": "stage1", "head": head, "threads": threads, "repeats": args.repeats})
            rows += _stamp([r], threads, machine)
            extra = f", x matmul {r['x_matmul']:.1f}" if r.get("x_matmul") else ""
            print(
                f"  cost  {threads}t stage 1 {head:10s} {r['ms_per_query']:.3f} ms/query "
                f"(1000 x 1000), peak {r['peak_MiB']:.0f} MiB{extra}",
                flush=True,
            )
        for config in args.configs:
            spec = {"kind": "rerank", "config": config, "threads": threads, "repeats": args.repeats}
            r = _subprocess({**spec, "queries": args.queries, "max_bytes": args.max_bytes})
            rows += _stamp([r], threads, machine)
            print(
                f"  cost  {threads}t re-rank {config:10s} {r['ms_per_query']:.2f} ms/query (K={K}, {r['queries']} "
                f"queries; call {r['call_ms_per_query']:.2f}), peak {r['peak_MiB']:.0f} MiB, "
                f"x matmul {r['x_matmul']:.1f} (estimate)",
                flush=True,
            )
    return rows


def run_training(args, machine: str) -> list[dict]:
    rows = []
    for mode in ("frozen", "e2e"):
        spec = {"kind": "training", "mode": mode, "config": args.train_config, "threads": args.threads_training}
        r = _subprocess({**spec, "batch": args.batch, "steps": args.steps})
        rows += _stamp([r], args.threads_training, machine)
        print(
            f"  train {r['mode']:16s} {r['s_per_step']:.3f} s/step ({r['pairs_per_step']:.0f} pairs), "
            f"peak {r['peak_MiB']:.0f} MiB, trainable {r['trainable_params']:,}",
            flush=True,
        )
    return rows


def run_scale(args, machine: str) -> tuple[list[dict], str]:
    cache = args.cache_dir
    reused, secs = ensure_gallery(cache, max(args.sizes))
    note = f"gallery cache {cache}: " + (
        "reused" if reused else f"generated {max(args.sizes):,} videos in {secs:.0f} s"
    )
    print(f"  scale {note}", flush=True)
    try:
        import faiss  # noqa: F401

        methods = ("exact", "ivf")
    except ImportError:
        methods = ("exact",)
        note += "; faiss not installed: approximate search skipped (.venv/bin/pip install faiss-cpu)"
        print("  scale faiss not installed: approximate search skipped", flush=True)
    rows = []
    for n in args.sizes:
        for method in methods:
            spec = {
                "kind": "scale",
                "gallery": n,
                "method": method,
                "threads": args.threads_scale,
                "queries": args.queries,
                "pool": min(args.sizes),
                "nprobe": args.nprobe,
                "configs": args.scale_configs,
                "cache": str(cache),
                "repeats": args.repeats,
                "query_batch": args.query_batch,
                "block": args.block,
                "max_bytes": args.max_bytes,
            }
            got = _subprocess(spec)
            rows += _stamp(got, args.threads_scale, machine)
            for r in got:
                print(
                    f"  scale {n:>7,} {method:5s} {r['config']:8s} stage 1 {r['stage1_ms_per_query']:.3f} + "
                    f"re-rank {r['rerank_ms_per_query']:.2f} = {r['end_to_end_ms_per_query']:.2f} ms/query, "
                    f"recall@{K} {r['recall_at_k']:.3f}",
                    flush=True,
                )
    return rows, note


def _share(ratio: float) -> str:
    """What re-ranking adds, relative to stage 1: a percentage below 10x, a multiple above."""
    return f"+{100 * ratio:.0f}%" if ratio < 10 else f"{ratio:,.0f}x stage 1"


def markdown_cost(rows: list[dict]) -> str:
    lines = [
        f"**cost** (quick test split, 1,000 videos; {PAPER})",
        "",
        "| threads | stage | config | ms/query | call ms/query | peak MiB | params | matmul ms/query (same MACs) "
        "| x matmul |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mm = f"{r['matmul_ms_per_query']:.3f}" if r.get("matmul_ms_per_query") else ""
        xm = f"{r['x_matmul']:.1f}" + (" (est.)" if r["stage"] == "rerank" else "") if r.get("x_matmul") else ""
        lines.append(
            f"| {r['threads']} | {r['stage']} | {r['config']} | {r['ms_per_query']:.3f} | "
            f"{r['call_ms_per_query']:.3f} | {r['peak_MiB']:.0f} | {r['params']:,} | {mm} | {xm} |"
        )
    configs = list(dict.fromkeys(r["config"] for r in rows if r["stage"] == "rerank"))
    lines += [
        "",
        f"two-stage cost per query: stage 1 over 1,000 videos, + re-ranking its top {K} (ms, and the share added)",
        "",
        "| threads | stage 1 | stage 1 ms | " + " | ".join(f"+ {c}" for c in configs) + " |",
        "|---:|---|---:|" + "---:|" * len(configs),
    ]
    for r in rows:
        if r["stage"] != "stage1":
            continue
        rr = {x["config"]: x for x in rows if x["stage"] == "rerank" and x["threads"] == r["threads"]}
        cells = [
            f"+{rr[c]['ms_per_query']:.2f} ({_share(rr[c]['ms_per_query'] / r['ms_per_query'])})" if c in rr else ""
            for c in configs
        ]
        lines.append(f"| {r['threads']} | {r['config']} | {r['ms_per_query']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_training(rows: list[dict]) -> str:
    lines = [
        "**training** (one step: B captions, positives + hard negatives, matching loss, backward, AdamW)",
        "",
        "| mode | re-ranker | threads | batch | pairs/step | s/step | decode s/step | trainable params | peak MiB "
        "| resident before MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        dec = f"{r['decode_s_per_step']:.3f}" if r["decode_s_per_step"] != "" else ""
        lines.append(
            f"| {r['mode']} | {r['config']} | {r['threads']} | {r['batch']} | {r['pairs_per_step']:.0f} | "
            f"{r['s_per_step']:.3f} | {dec} | {r['trainable_params']:,} | {r['peak_MiB']:.0f} | "
            f"{r['resident_before_MiB']:.0f} |"
        )
    if len(rows) == 2:
        f, e = rows
        lines.append(
            f"\nend-to-end / frozen: {e['s_per_step'] / f['s_per_step']:.1f}x time per step, "
            f"{e['peak_MiB'] / max(f['peak_MiB'], 1e-9):.1f}x peak memory, "
            f"{e['trainable_params'] / f['trainable_params']:.1f}x trainable parameters"
        )
    return "\n".join(lines)


def markdown_scale(rows: list[dict], note: str) -> str:
    lines = [
        f"**scale** (synthetic gallery, K = {K}, target <= {TARGET_MS:.0f} ms/query end to end; {note})",
        "",
        "| gallery | search | re-ranker | stage 1 ms/q | re-rank ms/q (read) | end to end ms/q | <= 20 ms | "
        f"recall@{K} | gold in shortlist | build s | peak MiB build/search/re-rank | disk MiB (index) |",
        "|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        method = f"ivf nlist={r['nlist']} nprobe={r['nprobe']}" if r["method"] == "ivf" else "exact"
        idx = f" ({r['index_MiB']:.0f})" if r["index_MiB"] else ""
        lines.append(
            f"| {r['gallery']:,} | {method} | {r['config']} | {r['stage1_ms_per_query']:.3f} | "
            f"{r['rerank_ms_per_query']:.2f} ({r['read_ms_per_query']:.2f}) | {r['end_to_end_ms_per_query']:.2f} | "
            f"{'yes' if r['meets_20ms'] else 'no'} | {r['recall_at_k']:.3f} | {r['gold_in_shortlist']:.2f} | "
            f"{r['build_s']:.2f} | {r['build_peak_MiB']:.0f}/{r['search_peak_MiB']:.0f}/{r['rerank_peak_MiB']:.0f} | "
            f"{r['gallery_disk_MiB']:.0f}{idx} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("cost", "training", "scale", "all"), default="all")
    ap.add_argument("--smoke", action="store_true", help="every part at tiny sizes on 1 thread (under 2 minutes)")
    ap.add_argument("--out-dir", type=Path, default=None, help="where the CSVs go (default results/quick)")
    ap.add_argument("--queries", type=int, default=None, help="re-ranked queries, cost and scale parts (200)")
    ap.add_argument("--repeats", type=int, default=None, help="warm runs timed, median (3)")
    ap.add_argument("--max-bytes", type=int, default=None, help="re-ranking batch budget (DEFAULT_MAX_BYTES)")
    ap.add_argument("--threads", type=int, nargs="+", default=None, help="cost part (1 2)")
    ap.add_argument("--stage1", nargs="+", default=list(STAGE1), help="stage-1 heads of the cost part")
    ap.add_argument("--configs", nargs="+", default=list(RERANKERS), choices=list(RERANKERS))
    ap.add_argument("--threads-training", type=int, default=None, help="training part (1)")
    ap.add_argument("--batch", type=int, default=None, help="training captions per step (32)")
    ap.add_argument("--steps", type=int, default=None, help="measured training steps after a warm-up (5)")
    ap.add_argument("--train-config", default="default", choices=list(RERANKERS))
    ap.add_argument("--threads-scale", type=int, default=None, help="scale part (2)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="gallery sizes (1000 10000 100000)")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache" / "bench_rerank_scale")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--scale-configs", nargs="+", default=["light", "default"], choices=list(RERANKERS))
    ap.add_argument("--query-batch", type=int, default=32)
    ap.add_argument("--block", type=int, default=16384, help="videos per block of the exact search")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["kind"]](spec)))
        return

    sys.path.insert(0, str(ROOT))
    from tvrlib.heads import DEFAULT_MAX_BYTES
    from tvrlib.paths import results_dir

    smoke = args.smoke
    pick = lambda v, full, tiny: v if v is not None else (tiny if smoke else full)  # noqa: E731
    args.queries = pick(args.queries, 200, 20)
    args.repeats = pick(args.repeats, 3, 1)
    args.max_bytes = pick(args.max_bytes, DEFAULT_MAX_BYTES, DEFAULT_MAX_BYTES)
    args.threads_cost = pick(args.threads, [1, 2], [1])
    args.threads_training = pick(args.threads_training, 1, 1)
    args.threads_scale = pick(args.threads_scale, 2, 1)
    args.steps = pick(args.steps, 5, 2)
    args.batch = pick(args.batch, 32, 8)
    args.sizes = sorted(pick(args.sizes, [1000, 10000, 100000], [1000, 5000]))
    out_dir = args.out_dir or (Path(tempfile.gettempdir()) / "tvr_rerank_smoke" if smoke else results_dir("quick"))

    import torch

    torch.set_num_threads(1)  # the parent only generates the synthetic gallery
    machine = _machine()
    start = time.perf_counter()
    print(
        f"{machine}, load average {os.getloadavg()[0]:.2f}; threads: cost {args.threads_cost}, training "
        f"{args.threads_training}, scale {args.threads_scale}" + (" (smoke)" if smoke else ""),
        flush=True,
    )
    parts = ("cost", "training", "scale") if args.part == "all" else (args.part,)
    tables = []
    if "cost" in parts:
        t0 = time.perf_counter()
        rows = run_cost(args, machine)
        print(f"  cost part: {time.perf_counter() - t0:.0f} s", flush=True)
        save_csv(rows, out_dir / "rerank_cost.csv", COST_FIELDS, KEYS["cost"])
        tables.append(markdown_cost(rows))
    if "training" in parts:
        t0 = time.perf_counter()
        rows = run_training(args, machine)
        print(f"  training part: {time.perf_counter() - t0:.0f} s", flush=True)
        save_csv(rows, out_dir / "rerank_training.csv", TRAINING_FIELDS, KEYS["training"])
        tables.append(markdown_training(rows))
    if "scale" in parts:
        t0 = time.perf_counter()
        rows, note = run_scale(args, machine)
        print(f"  scale part: {time.perf_counter() - t0:.0f} s", flush=True)
        save_csv(rows, out_dir / "rerank_scale.csv", SCALE_FIELDS, KEYS["scale"])
        tables.append(markdown_scale(rows, note))
    print("\n" + "\n\n".join(tables))
    print(
        f"\nwrote {', '.join(f'rerank_{p}.csv' for p in parts)} to {out_dir}; total "
        f"{time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
