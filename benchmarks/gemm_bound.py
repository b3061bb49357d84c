"""Benchmark: every interaction head's bounded evaluation against its own GEMM bound (issue 13).

The limit to measure against is the machine's own matrix-multiply speed. For each head, in the same process:

* ``seconds``: :func:`tvrlib.heads.score_all` (``head``, all texts, all videos, the library's default block budget
  :data:`tvrlib.heads.DEFAULT_MAX_BYTES`), split into ``encode_seconds`` (the heads' per-side work: ``encode_text``
  and ``encode_video``, or a dual encoder's ``embed_text`` / ``embed_video``, timed by wrapping those methods during
  the same run) and ``pair_seconds`` (the rest: the per-pair scoring in blocks, the block loop, copying the scores);
* ``pair_macs``: the multiply-adds of the matrix products the head's per-pair scoring cannot avoid, counted at valid
  sizes (the formulas below; ``L_t`` = caption ``t``'s valid words, ``F_v`` = video ``v``'s valid frames);
* ``matmul_seconds``: plain float32 ``torch.matmul`` calls with exactly those multiply-adds, each product in the
  head's own shape (below), split into chunks of at most 2^21 or 2^23 output elements (whichever runs faster: the
  machine's best rate for that shape); a product of many chunks is timed on a few and scaled by its multiply-adds;
* ``ratio = pair_seconds / matmul_seconds`` (the number issue 13 asks to bring under 3), and ``ratio_all =
  seconds / (matmul_seconds + encode_matmul_seconds)``, where ``encode_macs`` are the encoders' multiply-adds
  (counted by ``torch.utils.flop_counter`` on the first 64 items of each side, scaled to all of them) and
  ``encode_matmul_seconds`` those multiply-adds at the machine's ``[4096, D] x [D, D]`` matmul rate.

The matmul is timed right before each timed run of the head and once after the last; ``matmul_seconds`` is their
median, ``pair_seconds`` the median of the head's warm runs (after one untimed cold run).

Per-pair multiply-adds (the sum over every text ``t`` and video ``v``), and the products timed for them:

* ``meanP`` (the dual-encoder reference): ``D`` per pair; ``[T, D] x [D, V]``.
* ``xpool`` (moment path, ``n = H F`` attention weights per pair, ``R = 3 (n + 1) + 3``): the attention logits
  ``F D`` (``[T, D] x [D, V F]``, per head ``[T, D/H] x [D/H, V F]``), the numerator's dot products with the
  ``n + 3`` vectors of ``LN3(o) = sum_j w_j k_j``, ``(n + 3) D`` (``[T, D] x [D, V (n + 3)]``), and the nested
  LayerNorms' quadratic and linear forms in the weights, ``R n`` (``V x [R, n] x [n, T]``): per pair
  ``F D + (HF + 3) D + (3 HF + 6) HF``.
* ``wti``, ``wti-uniform``: every valid word against every valid frame, ``sum_t L_t * sum_v F_v * D``
  (``[sum_t L_t, D] x [D, V F]``); the token-weight MLPs are per side (encoding).
* ``ts2net``: the frame-level similarity after token selection, ``F_v D`` per pair (``[T, D] x [D, V F]``); the
  token shift, selection and transformer are per video (encoding).
* ``global_local`` (``S`` = ``sim_dim``, ``N_t`` nodes: ``L_t + 1``; ``-local``: ``L_t``; ``-global``: 1):
  local branch ``L_t F D`` word-frame cosines (``[sum_t L_t, D] x [D, V F]``), ``L_t F D`` word-attended frames
  (``V x [sum_t L_t, F] x [F, D]``), ``L_t D S`` for ``W_l`` (``[V sum_t L_t, D] x [D, S]``); global branch
  ``F D`` attention logits (``[T, D] x [D, V F]``), ``F D`` pooling (``V x [T, F] x [F, D]``), ``D S`` for ``W_g``
  (``[T V, D] x [D, S]``); fusion ``2 N_t S^2`` node projections (``x M`` with ``M = W_q^T W_k / sqrt(S)``
  folded once per block, and ``W_o``: ``[V sum_t N_t, S] x [S, S]``; with one node only ``W_o``, its attention
  weight is 1) and, with more than one node, ``2 N_t^2 S`` node attention (``T V x [N, S] x [S, N]``, ``N`` the
  mean node count). The readout (``S`` per pair) is left out.
* ``etva`` (``E`` experts of size ``D_e``, ``K`` clusters): ``E D_e`` (``[T, E D_e] x [E D_e, V]``), ``E``
  (``[T, E] x [E, V]``) and ``K D`` (``[T, K D] x [K D, V]``) per pair.

Settings (random features; ``fine_grained_eval.make_inputs`` and ``build_head``: seeded inputs, every weight moved
by a seeded ``0.05 * N(0, 1)``):

* ``random``: MSR-VTT 1k-A scale, 1,000 texts x 1,000 videos x 12 frames, D = 512, ``L = 32`` word columns with
  8-32 valid (seeded), ``P = 49`` patch tokens (ts2net, etva);
* ``quick``: the quick profile's shapes, D = 128, ``L = 64`` word columns, ``P = 4``, with the word counts of the
  quick benchmark's 1,000 test queries (CLIP's tokenizer on ``MSRVTT_JSFUSION_test.csv``; 6-56 tokens, mean 27;
  seeded 8-64 if that file is missing) -- its shapes, not its features.

Heads too slow for 1k x 1k on one thread (``--partial``, default the two global_local variants with a local branch)
are timed on ``--partial-texts`` evenly spaced texts x all videos; their pair time, text-encoding time and matmul
time scale linearly in the texts (the ``scaled`` column says so; the ratio is the subset's, MACs of the subset
against the matmul of the subset's products).

Run: ``.venv/bin/python benchmarks/gemm_bound.py [--setting random|quick|both] [--heads ...] [--threads 1]``
(about 10 minutes for both settings on one thread); rows go to ``results/quick/gemm_bound.csv`` (replacing the rows
of the same setting and head). ``--quick-check``: every head on a tiny grid, one repeat, nothing written (a smoke
test). ``pair_macs`` and ``matmul_seconds_for`` are also used by ``benchmarks/efficiency.py``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import fine_grained_eval  # noqa: E402
from bench_io import commit, upsert_csv  # noqa: E402
from fine_grained_eval import build_head, make_inputs  # noqa: E402

CSV = ROOT / "results" / "quick" / "gemm_bound.csv"
QUICK_CAPTIONS = ROOT / "data" / "generated" / "synthetic-quick-seed0" / "MSRVTT_JSFUSION_test.csv"
HEAD_NAMES = (*fine_grained_eval.HEAD_NAMES, "etva")  # fine_grained_eval's heads, and ETVA
PATCH_HEADS = ("ts2net", "etva")
SETTINGS = {
    "random": {"dim": 512, "words": 32, "frames": 12, "patches": 49, "texts": 1000, "videos": 1000},
    "quick": {"dim": 128, "words": 64, "frames": 12, "patches": 4, "texts": 1000, "videos": 1000},
    "check": {"dim": 32, "words": 8, "frames": 6, "patches": 4, "texts": 24, "videos": 30},
}
#: output elements of one timed matmul chunk: the faster of these is the bound (the machine's best for the shape)
CHUNK_ELEMENTS = (2**21, 2**23)
FIELDS = (
    "setting",
    "head",
    "texts",
    "videos",
    "frames",
    "dim",
    "words",
    "patches",
    "texts_timed",
    "scaled",
    "seconds",
    "encode_seconds",
    "pair_seconds",
    "other_seconds",
    "pair_macs",
    "encode_macs",
    "matmul_seconds",
    "ratio",
    "pair_cpu_seconds",
    "matmul_cpu_seconds",
    "ratio_cpu",
    "encode_matmul_seconds",
    "ratio_all",
    "matmul_GMACs",
    "products",
    "block",
    "all_pair_seconds",
    "all_matmul_seconds",
    "threads",
    "load_average",
    "date",
    "commit",
)


# --------------------------------------------------------------------------- #
# the bound: products and their multiply-adds
# --------------------------------------------------------------------------- #
@dataclass
class Product:
    """A matrix product ``batch x [m, k] x [k, n]`` standing for ``macs`` multiply-adds (exact; the shape is the
    representative one that is timed, e.g. with a mean node count)."""

    label: str
    batch: int
    m: int
    k: int
    n: int
    macs: int

    def __str__(self) -> str:
        b = f"{self.batch} x " if self.batch > 1 else ""
        return f"{self.label} {b}[{self.m}, {self.k}] x [{self.k}, {self.n}]"


def product(label: str, batch: int, m: int, k: int, n: int, macs: int | None = None) -> Product:
    return Product(label, int(batch), int(m), int(k), int(n), int(batch * m * k * n if macs is None else macs))


def word_counts(text) -> np.ndarray:
    """Valid words per caption (1 per caption without word tokens: the sentence is its only token)."""
    if text.words is None:
        return np.ones(len(text), dtype=np.int64)
    return text.word_mask.sum(1).numpy().astype(np.int64)


def _config(name: str, dim: int, head=None) -> dict:
    """The head's sizes that enter its formula (from ``head``, else from a default-built head)."""
    if head is None:
        from tvrlib.heads import HEADS

        head = HEADS.build(name, **HEADS.accepted_kwargs(name, dim=dim))
    cfg = {"dual": bool(head.is_dual_encoder)}
    for attr in ("num_heads", "sim_dim", "expert_dim", "branches", "experts", "uses_global", "uses_fine"):
        if hasattr(head, attr):
            cfg[attr] = getattr(head, attr)
    if hasattr(head, "text_vlad"):
        cfg["clusters"] = head.text_vlad.clusters
    return cfg


def pair_products(name: str, text, num_videos: int, frames: int, dim: int, head=None, video_mask=None) -> list:
    """The per-pair products of head ``name`` (a registered name) for ``text`` (a :class:`TextInput`: its word counts)
    against ``num_videos`` videos of ``frames`` frames (``video_mask``: their valid frames; default all valid)."""
    t_, v_, f_, d = len(text), int(num_videos), int(frames), int(dim)
    vf = v_ * f_ if video_mask is None else int(video_mask.sum())  # sum_v F_v
    lengths = word_counts(text)
    words = int(lengths.sum())
    base = name.split("-")[0]
    cfg = _config(name, d, head)
    if base == "xpool":
        h = cfg.get("num_heads", 1)
        n = h * f_
        r = 3 * (n + 1) + 3
        return [
            product("logits", h, t_, d // h, vf),
            product("dots", 1, t_, d, v_ * (n + 3)),
            product("forms", v_, r, n, t_),
        ]
    if base == "wti":
        return [product("cosines", 1, words, d, vf)]
    if base == "ts2net":
        return [product("cosines", 1, t_, d, vf)]
    if base == "global_local":
        s = cfg["sim_dim"]
        branches = cfg.get("branches", "both")
        local, glob = branches in ("both", "local"), branches in ("both", "global")
        nodes = lengths * local + glob  # N_t
        out = []
        if local:
            out += [
                product("word-frame cosines", 1, words, d, vf),
                product("attended frames", v_, words, f_, d, macs=words * vf * d),
                product("W_l", 1, v_ * words, d, s),
            ]
        if glob:
            out += [
                product("attention logits", 1, t_, d, vf),
                product("pooling", v_, t_, f_, d, macs=t_ * vf * d),
                product("W_g", 1, t_ * v_, d, s),
            ]
        # x M with M = W_q^T W_k / sqrt(S) folded once, and W_o; one node: W_o only (its attention weight is 1)
        projections = int(np.where(nodes > 1, 2, 1) @ nodes) * v_ * s * s
        out.append(product("node projections", 1, v_ * int(nodes.sum()), s, s, macs=projections))
        many = nodes[nodes > 1]
        if len(many):  # the logits (x M) x^T and attn @ x: 2 N^2 S
            mean_n = round(float(many.mean()))
            macs = 2 * int((many**2).sum()) * v_ * s
            out.append(product("node attention", 2 * len(many) * v_, mean_n, s, mean_n, macs=macs))
        return out
    if base == "etva":
        out = []
        if cfg.get("uses_global", True):
            e, de = len(cfg["experts"]), cfg["expert_dim"]
            out += [product("experts", 1, t_, e * de, v_), product("expert weights", 1, t_, e, v_)]
        if cfg.get("uses_fine", True):
            out.append(product("vlad", 1, t_, cfg["clusters"] * d, v_))
        return out
    if cfg["dual"]:
        return [product("scores", 1, t_, d, v_)]
    raise KeyError(f"no GEMM bound is written down for head {name!r}")


def pair_macs(name: str, text, num_videos: int, frames: int, dim: int, head=None, video_mask=None) -> int:
    """Multiply-adds of head ``name``'s unavoidable per-pair products (the module docstring's formulas)."""
    return sum(p.macs for p in pair_products(name, text, num_videos, frames, dim, head, video_mask))


# --------------------------------------------------------------------------- #
# timing plain matmuls
# --------------------------------------------------------------------------- #
def _chunk(p: Product, max_out: int) -> tuple[int, int, int]:
    """``(batch, rows, count)``: one timed call's batch and rows, and how many such calls make the product."""
    per_batch = p.m * p.n
    if per_batch >= max_out or p.batch == 1:
        rows = max(1, min(p.m, max_out // max(1, p.n)))
        return 1, rows, p.batch * p.m / rows
    b = max(1, min(p.batch, max_out // max(1, per_batch)))
    return b, p.m, p.batch / b


#: the chunk size (output elements) that ran fastest for each product shape, found on its first timing
_BEST_CHUNK: dict[tuple, int] = {}


def product_times(p: Product, min_seconds: float = 0.5) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of plain float32 ``torch.matmul`` for ``p``'s multiply-adds in ``p``'s shape, in
    chunks (the faster of the chunk sizes in :data:`CHUNK_ELEMENTS`, chosen on the shape's first timing); a product
    of many chunks is timed on as many as take about ``min_seconds`` and scaled by its multiply-adds."""
    import torch

    if p.macs == 0:
        return 0.0, 0.0
    shape = (p.batch, p.m, p.k, p.n)
    best = (math.inf, math.inf)
    for max_out in (_BEST_CHUNK[shape],) if shape in _BEST_CHUNK else CHUNK_ELEMENTS:
        b, rows, count = _chunk(p, max_out)
        a = torch.randn(b, rows, p.k) if b > 1 else torch.randn(rows, p.k)
        w = torch.randn(b, p.k, p.n) if b > 1 else torch.randn(p.k, p.n)
        t0 = time.perf_counter()
        torch.matmul(a, w)  # warm-up, and how long one call takes
        one = time.perf_counter() - t0
        calls = int(min(max(1, math.ceil(count)), max(1, min_seconds // max(one, 1e-9))))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            torch.matmul(a, w)
        macs = calls * b * rows * p.k * p.n
        per_mac = ((time.perf_counter() - t0) / macs, (time.process_time() - c0) / macs)
        if per_mac[0] < best[0]:
            best, _BEST_CHUNK[shape] = per_mac, max_out
    return best[0] * p.macs, best[1] * p.macs


def product_seconds(p: Product, min_seconds: float = 0.5) -> float:
    """Wall-clock seconds of :func:`product_times`."""
    return product_times(p, min_seconds)[0]


def products_times(products: list) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of every product in ``products``."""
    times = [product_times(p) for p in products]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def matmul_seconds_for(macs: int, dim: int, cols: int = 12_000, repeats: int = 3) -> float:
    """Seconds of plain float32 matmuls ``[rows, dim] x [dim, cols]`` with ``macs`` multiply-adds in all (the
    median of ``repeats`` timings)."""
    rows = max(1, math.ceil(macs / (dim * cols)))
    p = product("matmul", 1, rows, dim, cols, macs=macs)
    return float(np.median([product_seconds(p) for _ in range(repeats)]))


def gemm_rate(dim: int) -> float:
    """The machine's float32 matmul rate (multiply-adds per second) on a ``[4096, D] x [D, D]`` product."""
    p = product("rate", 1, 4096, dim, dim)
    return p.macs / float(np.median([product_seconds(p, 0.2) for _ in range(3)]))


# --------------------------------------------------------------------------- #
# inputs, heads, encoders' multiply-adds
# --------------------------------------------------------------------------- #
def quick_word_counts(n: int, num_words: int, seed: int = 5):
    """Word counts (CLIP tokens, start and end included, at most ``num_words``) of the quick benchmark's test
    queries, or seeded uniform 8..``num_words`` where the captions (or the tokenizer) are not there."""
    import torch

    try:
        import open_clip

        with QUICK_CAPTIONS.open() as fh:
            captions = [r["sentence"] for r in csv.DictReader(fh)]
        ids = open_clip.get_tokenizer("ViT-B-32")(captions, context_length=77)
        counts = (ids != 0).sum(1).clamp_max(num_words)
        return counts[torch.arange(n) % len(counts)], "quick test queries' token counts"
    except (ImportError, OSError, KeyError, RuntimeError):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(min(8, num_words), num_words + 1, (n,), generator=g), "seeded uniform 8..L"


def inputs_for(name: str, setting: str, shape: dict, num_texts: int, num_videos: int):
    """``(TextInput, VideoInput)``: ``fine_grained_eval.make_inputs``'s random features at ``shape``'s sizes
    (patch tokens for the heads that read them); the quick setting takes the quick queries' word counts."""
    import torch

    from tvrlib.heads import TextInput

    args = argparse.Namespace(**{k: shape[k] for k in ("dim", "words", "frames", "patches")})
    text, video = make_inputs("random", "ts2net" if name in PATCH_HEADS else name, num_texts, num_videos, args)
    if setting == "quick":
        counts, _ = quick_word_counts(num_texts, shape["words"])
        mask = torch.arange(shape["words"])[None, :] < counts[:, None]
        text = TextInput(text.sentence, text.words, mask)
    return text, video


def encode_macs(head, text, video, sample: int = 64) -> int:
    """Multiply-adds of encoding both sides (``torch.utils.flop_counter`` on the first ``sample`` items of each
    side, scaled to all of them)."""
    from torch.utils.flop_counter import FlopCounterMode

    from tvrlib.heads.scoring import EncodedInteractionHead, inference

    total = 0.0
    with inference(head):
        for side, fn in (
            (text, "encode_text" if isinstance(head, EncodedInteractionHead) else "embed_text"),
            (video, "encode_video" if isinstance(head, EncodedInteractionHead) else "embed_video"),
        ):
            part = side.index(slice(0, min(sample, len(side)))).to("cpu")
            with FlopCounterMode(display=False) as fc:
                getattr(head, fn)(part)
            total += fc.get_total_flops() / 2 * len(side) / len(part)
    return int(total)


# --------------------------------------------------------------------------- #
# one head
# --------------------------------------------------------------------------- #
class _Timed:
    """Wraps a head's per-side methods (``encode_*`` or a dual encoder's ``embed_*``) and its per-pair
    ``score_encoded`` to add up the wall-clock and CPU seconds spent in them."""

    def __init__(self, head):
        from tvrlib.heads.scoring import EncodedInteractionHead

        if isinstance(head, EncodedInteractionHead):
            names = ("encode_text", "encode_video", "score_encoded")
        else:
            names = ("embed_text", "embed_video")
        self.seconds = {n: [0.0, 0.0] for n in names}
        for n in names:
            setattr(head, n, self._wrap(n, getattr(head, n)))

    def _wrap(self, name, fn):
        def timed(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[name][0] += time.perf_counter() - t0
                self.seconds[name][1] += time.process_time() - c0

        return timed

    def reset(self):
        for n in self.seconds:
            self.seconds[n] = [0.0, 0.0]

    def split(self, total: tuple[float, float]) -> dict[str, tuple[float, float]]:
        """``{text, video, pair, other}`` -> ``(wall, cpu)`` of one ``score_all`` run that took ``total``: the
        per-pair time is the time inside ``score_encoded`` (a dual encoder: everything but embedding), ``other`` the
        rest (``score_all``'s input conversion, the block loop)."""
        s = self.seconds
        text = s.get("encode_text", s.get("embed_text"))
        video = s.get("encode_video", s.get("embed_video"))
        rest = tuple(t - a - b for t, a, b in zip(total, text, video))
        pair = tuple(s["score_encoded"]) if "score_encoded" in s else rest
        other = tuple(r - p for r, p in zip(rest, pair))
        return {"text": tuple(text), "video": tuple(video), "pair": pair, "other": other}


def _block(head, text, video) -> str:
    from tvrlib.heads import DEFAULT_MAX_BYTES
    from tvrlib.heads.scoring import block_shape

    if head.is_dual_encoder:
        return "dual: one [T,D]x[D,V] product"
    f, d = video.frames.shape[1], video.frames.shape[2]
    t, v = block_shape(len(text), len(video), head.pair_bytes(f, d, None), DEFAULT_MAX_BYTES)
    return f"{t} x {v}"


def measure(name: str, setting: str, shape: dict, args) -> dict:
    """Time head ``name`` at ``setting`` (see the module docstring) and return its row."""
    import torch

    from tvrlib.heads import score_all

    torch.set_num_threads(args.threads)
    num_texts, num_videos = shape["texts"], shape["videos"]
    text, video = inputs_for(name, setting, shape, num_texts, num_videos)
    timed_texts = num_texts
    if name in args.partial and args.partial_texts < num_texts:  # evenly spaced: representative word counts
        timed_texts = args.partial_texts
        sub = text.index(torch.arange(timed_texts) * num_texts // timed_texts)
    else:
        sub = text
    head = build_head(name, shape["dim"], text.words.shape[1])
    products = pair_products(name, sub, num_videos, shape["frames"], shape["dim"], head, video.mask)
    full_macs = pair_macs(name, text, num_videos, shape["frames"], shape["dim"], head, video.mask)
    enc_macs = encode_macs(head, text, video)
    timer = _Timed(head)
    load = [os.getloadavg()[0]]
    score_all(head, sub, video)  # cold run (untimed)
    runs, matmuls = [], []
    for i in range(args.repeats):
        matmuls.append(products_times(products))
        timer.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        scores = score_all(head, sub, video)
        runs.append(timer.split((time.perf_counter() - t0, time.process_time() - c0)))
        if i == 0 and sum(x[0] for x in runs[0].values()) > args.repeat_cap_s:
            break
    matmuls.append(products_times(products))
    load.append(os.getloadavg()[0])
    assert scores.shape == (len(sub), num_videos) and bool(torch.isfinite(scores).all())
    scale = num_texts / timed_texts
    sub_macs = sum(p.macs for p in products)
    to_full = full_macs / sub_macs  # the subset's matmul time -> the full grid's
    med = lambda xs: float(np.median(xs))  # noqa: E731
    pair, pair_cpu = med([r["pair"][0] for r in runs]), med([r["pair"][1] for r in runs])
    mm, mm_cpu = med([m[0] for m in matmuls]), med([m[1] for m in matmuls])
    text_s, video_s = med([r["text"][0] for r in runs]), med([r["video"][0] for r in runs])
    other = med([r["other"][0] for r in runs])
    encode = video_s + scale * text_s
    seconds = encode + scale * (pair + other)
    enc_mm = enc_macs / gemm_rate(shape["dim"])
    return {
        "setting": setting,
        "head": name,
        "texts": num_texts,
        "videos": num_videos,
        "frames": shape["frames"],
        "dim": shape["dim"],
        "words": text.words.shape[1],
        "patches": shape["patches"] if name in PATCH_HEADS else "",
        "texts_timed": timed_texts,
        "scaled": "" if scale == 1 else f"pair, text-encoding and matmul time x {scale:g} (linear in texts)",
        "seconds": round(seconds, 4),
        "encode_seconds": round(encode, 4),
        "pair_seconds": round(scale * pair, 4),
        "other_seconds": round(scale * other, 4),
        "pair_macs": full_macs,
        "encode_macs": enc_macs,
        "matmul_seconds": round(mm * to_full, 4),
        "ratio": round(pair / mm, 2),
        "pair_cpu_seconds": round(scale * pair_cpu, 4),
        "matmul_cpu_seconds": round(mm_cpu * to_full, 4),
        "ratio_cpu": round(pair_cpu / mm_cpu, 2),
        "encode_matmul_seconds": round(enc_mm, 4),
        "ratio_all": round(seconds / (mm * to_full + enc_mm), 2),
        "matmul_GMACs": round(sub_macs / mm / 1e9, 1),
        "products": "; ".join(map(str, products)),
        "block": _block(head, sub, video),
        "all_pair_seconds": " ".join(f"{r['pair'][0] * scale:.4f}" for r in runs),
        "all_matmul_seconds": " ".join(f"{m[0] * to_full:.4f}" for m in matmuls),
        "threads": args.threads,
        "load_average": round(float(np.mean(load)), 2),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": _commit(),
    }


def _commit() -> str:
    return commit()


# --------------------------------------------------------------------------- #
# output
# --------------------------------------------------------------------------- #
def save_csv(rows: list[dict], path: Path) -> None:
    """Write ``rows``, keeping the file's other rows (a row replaces one of the same setting and head)."""
    upsert_csv(rows, path, FIELDS, ("setting", "head"))


def table(rows: list[dict]) -> str:
    lines = [
        "| setting | head | texts timed | seconds | encode s | pair s | other s | pair GMACs | matmul s | ratio "
        "| ratio (CPU time) | ratio all |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['head']} | {r['texts_timed']} | {r['seconds']:.3f} | {r['encode_seconds']:.3f} | "
            f"{r['pair_seconds']:.3f} | {r['other_seconds']:.3f} | {r['pair_macs'] / 1e9:,.1f} | "
            f"{r['matmul_seconds']:.3f} | {r['ratio']:.2f} | {r['ratio_cpu']:.2f} | {r['ratio_all']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", choices=("random", "quick", "both"), default="both")
    ap.add_argument("--heads", nargs="+", default=list(HEAD_NAMES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="warm runs of each head (median)")
    ap.add_argument("--repeat-cap-s", type=float, default=20.0, help="a run slower than this is repeated once only")
    ap.add_argument("--partial", nargs="*", default=["global_local", "global_local-local"])
    ap.add_argument("--partial-texts", type=int, default=20, help="texts timed for the --partial heads")
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--quick-check", action="store_true", help="tiny sizes, one repeat, nothing written")
    args = ap.parse_args(argv)
    settings = ("random", "quick") if args.setting == "both" else (args.setting,)
    if args.quick_check:
        settings, args.repeats, args.partial_texts = ("check",), 1, 8
    print(
        f"{os.cpu_count()} CPUs visible, torch threads {args.threads}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    rows = []
    for setting in settings:
        for name in args.heads:
            r = measure(name, setting, SETTINGS[setting], args)
            rows.append(r)
            print(
                f"  {setting:6s} {name:20s} {r['seconds']:8.3f} s (encode {r['encode_seconds']:.3f}, pair "
                f"{r['pair_seconds']:.3f}), matmul {r['matmul_seconds']:.3f} s: x{r['ratio']:.2f} "
                f"[{r['products']}]{' ' + r['scaled'] if r['scaled'] else ''}",
                flush=True,
            )
    print(table(rows))
    if not args.quick_check:
        save_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return rows


if __name__ == "__main__":
    main()
