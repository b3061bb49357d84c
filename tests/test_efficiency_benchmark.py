"""benchmarks/efficiency.py (issue 13): the per-query search it times returns the same top 10 as scoring the whole
grid with ``score_all``, for a dual encoder, an interaction head scored in blocks and a cross-encoder; a tiled
gallery has the exact size of the videos it stands for."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pytest
import torch

from tvrlib.heads import score_all
from tvrlib.heads.scoring import Encoded, EncodedInteractionHead, inference

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
ARGS = argparse.Namespace(dim=16, words=10, frames=4, patches=3)  # 8..10 valid words


@pytest.fixture(scope="module")
def eff():
    sys.path.insert(0, str(BENCH))
    return importlib.import_module("efficiency")


@pytest.mark.parametrize("name", ["meanP", "wti", "xpool", "tightTransf"])
def test_the_timed_query_ranks_as_score_all(eff, name):
    import torch.nn.functional as F

    head = eff.build(name, ARGS.dim, max_words=ARGS.words)
    text, video = eff._random_inputs(name, 5, 23, ARGS)
    with inference(head):
        if head.is_dual_encoder:
            gallery = F.normalize(head.embed_video(video), dim=-1)
        elif isinstance(head, EncodedInteractionHead):
            gallery = head.encode_video(video)
        else:
            gallery = video
        got = eff._query(head, name, text, gallery, len(video), ARGS)
    want = torch.topk(score_all(head, text, video), 10, dim=1)
    torch.testing.assert_close(got.values, want.values, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.indices, want.indices)


def test_tile_repeats_every_kind_of_gallery_to_the_exact_size(eff):
    text, video = eff._random_inputs("wti", 2, 3, ARGS)
    enc = Encoded({"a": torch.arange(3.0)[:, None], "b": torch.ones(3, 2, dtype=torch.bool)})
    t = eff._tile(enc, 8)
    assert len(t) == 8 and torch.equal(t["a"][:, 0], torch.tensor([0.0, 1, 2, 0, 1, 2, 0, 1]))
    assert eff._nbytes(t) == 8 * 4 + 8 * 2
    v = eff._tile(video, 7)
    assert len(v) == 7 and torch.equal(v.frames[3], video.frames[0])
    assert eff._nbytes(v) == 7 * ARGS.frames * ARGS.dim * 4 + 7 * ARGS.frames


def test_upsert_csv_replaces_rows_of_the_same_key_and_keeps_the_others(tmp_path):
    sys.path.insert(0, str(BENCH))
    from bench_io import upsert_csv

    path = tmp_path / "x.csv"
    upsert_csv(
        [{"head": "a", "n": 1, "t": 0.5}, {"head": "b", "n": 1, "t": 0.7}], path, ("head", "n", "t"), ("head", "n")
    )
    upsert_csv([{"head": "a", "n": 1, "t": 0.25}], path, ("head", "n", "t"), ("head", "n"), fmt=lambda v: f"{v}")
    rows = path.read_text().splitlines()
    assert rows == ["head,n,t", "b,1,0.7", "a,1,0.25"]
