"""benchmarks/gemm_bound.py (issue 13): the per-pair multiply-add formulas, the chunked matmul that times them, and a
smoke run of the whole benchmark on a tiny grid."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tvrlib.heads import HEADS, TextInput, VideoInput
from tvrlib.heads.scoring import inference

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
T, V, F_, L, D = 7, 5, 6, 9, 16


@pytest.fixture(scope="module")
def gb():
    sys.path.insert(0, str(BENCH))
    return importlib.import_module("gemm_bound")


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([1, 9, 4, 0, 7, 3, 9])  # a caption without a valid word, two full ones
    text = TextInput(
        torch.randn(T, D, generator=g), torch.randn(T, L, D, generator=g), torch.arange(L) < lengths[:, None]
    )
    video = VideoInput(torch.randn(V, F_, D, generator=g), torch.ones(V, F_, dtype=torch.bool))
    video.patches = torch.randn(V, F_, 4, D, generator=g)
    return text, video


def head(name: str):
    torch.manual_seed(0)
    return HEADS.build(name, **HEADS.accepted_kwargs(name, dim=D, max_words=L)).eval()


def test_the_formulas_at_valid_sizes(gb, inputs):
    text, video = inputs
    words = int(text.word_mask.sum())
    assert gb.pair_macs("wti", text, V, F_, D) == words * V * F_ * D  # every valid word against every frame
    assert gb.pair_macs("wti-uniform", text, V, F_, D) == words * V * F_ * D
    assert gb.pair_macs("meanP", text, V, F_, D) == T * V * D
    assert gb.pair_macs("ts2net", text, V, F_, D) == T * V * F_ * D
    n = F_  # one attention head
    assert gb.pair_macs("xpool", text, V, F_, D) == T * V * (F_ * D + (n + 3) * D + (3 * n + 6) * n)
    mask = video.mask.clone()
    mask[0, 3:] = False  # padded frames do not count
    assert gb.pair_macs("wti", text, V, F_, D, video_mask=mask) == words * (V * F_ - 3) * D
    s, nodes = 256, text.word_mask.sum(1) + 1
    local = words * V * (2 * F_ * D + D * s)
    glob = T * V * (2 * F_ * D + D * s)
    fusion = V * int((torch.where(nodes > 1, 2, 1) * nodes).sum()) * s * s + 2 * V * int((nodes**2).sum()) * s
    assert nodes.min() == 1 and (nodes > 1).sum() == T - 1  # the caption without a word: one node, no attention
    assert gb.pair_macs("global_local", text, V, F_, D) == local + glob + fusion - 2 * V * s
    assert gb.pair_macs("global_local-global", text, V, F_, D) == glob + T * V * s * s  # one node: W_o only
    assert gb.pair_macs("etva", text, V, F_, D) == T * V * (3 * D + 3 + 9 * D)
    for name in ("wti", "xpool", "global_local", "etva"):  # the products add up to the formula
        assert sum(p.macs for p in gb.pair_products(name, text, V, F_, D)) == gb.pair_macs(name, text, V, F_, D)


@pytest.mark.parametrize("name", ["wti", "wti-uniform", "xpool"])
def test_the_heads_per_pair_products_are_exactly_the_bound(gb, inputs, name):
    """What WTI and X-Pool multiply per pair (counted by torch's FLOP counter in ``score_encoded``) is the formula:
    no padded word, no extra product."""
    text, video = inputs
    h = head(name)
    with inference(h):
        te, ve = h.encode_text(text), h.encode_video(video)
        with FlopCounterMode(display=False) as fc:
            h.score_encoded(te, ve)
    assert fc.get_total_flops() == 2 * gb.pair_macs(name, text, V, F_, D, head=h)


def test_chunks_cover_the_product_and_the_matmul_is_timed(gb):
    for p in (gb.product("a", 1, 1000, 64, 12_000), gb.product("b", 300, 42, 12, 50), gb.product("c", 2, 3, 4, 5)):
        for max_out in gb.CHUNK_ELEMENTS:
            b, rows, count = gb._chunk(p, max_out)
            assert b * rows * p.n <= max(max_out, p.n) and math.isclose(b * rows * count, p.batch * p.m)
    wall, cpu = gb.product_times(gb.product("x", 1, 64, 32, 48))
    assert wall > 0 and cpu >= 0
    assert gb.matmul_seconds_for(10**6, 32) > 0


def test_quick_check_runs_every_head(gb, tmp_path):
    csv = tmp_path / "gemm.csv"
    rows = gb.main(["--quick-check", "--heads", "meanP", "xpool", "wti", "global_local-local", "--csv", str(csv)])
    assert [r["head"] for r in rows] == ["meanP", "xpool", "wti", "global_local-local"]
    for r in rows:
        assert r["pair_macs"] > 0 and math.isfinite(r["ratio"]) and r["ratio"] > 0 and r["matmul_GMACs"] > 0
    assert rows[-1]["texts_timed"] < rows[-1]["texts"] and rows[-1]["scaled"]  # timed on a subset of texts
    assert not csv.exists()  # the smoke test writes nothing
