"""Properties of the CLIP4Clip heads (meanP, seqLSTM, seqTransf ± position embeddings, tightTransf).

Tiny random tensors only: each test runs in well under a second.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.mean_pooling import frame_contributions, masked_mean_pool
from tvrlib.heads.temporal_transformer import TemporalTransformer

D, F_, T, V = 16, 6, 5, 7


pytestmark = pytest.mark.usefixtures("one_thread")

HEAD_SPECS = {
    "meanP": {},
    "seqLSTM": {"dim": D},
    "seqTransf": {"dim": D, "layers": 2, "heads": 2},
    "seqTransf-noPE": {"dim": D, "layers": 2, "heads": 2},  # a registered variant: position_embeddings=False
    "tightTransf": {"dim": D, "layers": 2, "heads": 2},
}
ORDER_BLIND = {"meanP", "seqTransf-noPE"}


def build(spec: str) -> nn.Module:
    torch.manual_seed(0)
    head = HEADS.build(spec, **HEAD_SPECS[spec])
    with torch.no_grad():  # make position embeddings large enough that order visibly matters
        for name, p in head.named_parameters():
            if "position" in name:
                p.normal_(0, 1.0)
    return head.eval()


def inputs(seed: int = 0, holes: bool = True):
    g = torch.Generator().manual_seed(seed)
    text = TextInput(torch.randn(T, D, generator=g))
    frames = torch.randn(V, F_, D, generator=g)
    mask = torch.ones(V, F_, dtype=torch.bool)
    mask[1, 4:] = False  # padding at the end (a short clip)
    mask[2, 1:] = False  # a single valid frame
    if holes:
        mask[3, [1, 3]] = False  # masked frames in the middle
    return text, VideoInput(frames, mask)


def permute_valid(video: VideoInput, perm_fn) -> VideoInput:
    frames = video.frames.clone()
    for j in range(len(video)):
        pos = torch.nonzero(video.mask[j]).flatten()
        frames[j, pos] = video.frames[j, pos[perm_fn(len(pos))]]
    return VideoInput(frames, video.mask)


@pytest.mark.parametrize("spec", list(HEAD_SPECS))
def test_registry_builds_and_scores_shape(spec):
    head = build(spec)
    text, video = inputs()
    s = head.score(text, video)
    assert s.shape == (T, V)
    assert torch.isfinite(s).all()
    if head.is_dual_encoder:
        assert head.embed_text(text).shape == (T, D) and head.embed_video(video).shape == (V, D)


def test_meanP_is_exactly_invariant_to_frame_order():
    head = build("meanP")
    text, video = inputs()
    shuffled = permute_valid(video, lambda n: torch.randperm(n, generator=torch.Generator().manual_seed(1)))
    reversed_ = permute_valid(video, lambda n: torch.arange(n - 1, -1, -1))
    base = head.score(text, video)
    assert torch.equal(base, head.score(text, shuffled))  # bit-identical: the frame sum is accumulated in float64
    assert torch.equal(base, head.score(text, reversed_))


def test_meanP_is_invariant_to_padded_frames():
    head = build("meanP")
    text, video = inputs()
    padded = VideoInput(
        torch.cat([video.frames, 100 * torch.randn(V, 3, D)], dim=1),
        torch.cat([video.mask, torch.zeros(V, 3, dtype=torch.bool)], dim=1),
    )
    assert torch.equal(head.score(text, video), head.score(text, padded))


def test_meanP_matches_the_formula_and_frame_contributions_sum_to_the_score():
    text, video = inputs()
    m = video.mask[..., None].float()
    unit = torch.nn.functional.normalize(video.frames, dim=-1) * m
    expected = torch.nn.functional.normalize(unit.sum(1) / m.sum(1), dim=-1)
    assert torch.allclose(masked_mean_pool(video.frames, video.mask), expected, atol=1e-6)
    head = build("meanP")
    s = head.score(text, video)
    idx = torch.arange(min(T, V))
    contrib = frame_contributions(text.sentence[idx], video.frames[idx], video.mask[idx])
    assert torch.allclose(contrib.sum(1), s[idx, idx], atol=1e-6)
    assert (contrib[~video.mask[idx]] == 0).all()


@pytest.mark.parametrize("spec", list(HEAD_SPECS))
def test_masked_frames_never_change_a_score(spec):
    head = build(spec)
    text, video = inputs()
    garbage = video.frames.clone()
    garbage[~video.mask] = torch.randn(int((~video.mask).sum()), D) * 1e3
    garbage[1, 5] = float("nan")
    assert torch.equal(head.score(text, video), head.score(text, VideoInput(garbage, video.mask)))


@pytest.mark.parametrize("spec", ["seqLSTM", "seqTransf", "seqTransf-noPE", "tightTransf"])
def test_trailing_padding_does_not_change_a_score(spec):
    head = build(spec)
    text, video = inputs()
    padded = VideoInput(
        torch.cat([video.frames, torch.randn(V, 2, D)], dim=1),
        torch.cat([video.mask, torch.zeros(V, 2, dtype=torch.bool)], dim=1),
    )
    assert torch.allclose(head.score(text, video), head.score(text, padded), atol=1e-5)


def test_seqLSTM_reads_only_the_valid_frames_in_order():
    """A clip with holes in its mask scores like the same clip with the masked frames removed."""
    head = build("seqLSTM")
    text, video = inputs()
    j = 3
    pos = torch.nonzero(video.mask[j]).flatten()
    compact = VideoInput(video.frames[j : j + 1, pos], torch.ones(1, len(pos), dtype=torch.bool))
    assert torch.allclose(head.score(text, video)[:, j : j + 1], head.score(text, compact), atol=1e-6)


@pytest.mark.parametrize("spec", list(HEAD_SPECS))
def test_order_sensitivity(spec):
    """Order-blind heads give the same scores on reversed frames; the others do not."""
    head = build(spec)
    text, video = inputs(holes=False)
    rev = permute_valid(video, lambda n: torch.arange(n - 1, -1, -1))
    diff = (head.score(text, video) - head.score(text, rev)).abs().max().item()
    if spec in ORDER_BLIND:
        assert diff < 1e-5
    else:
        assert diff > 1e-4


@pytest.mark.parametrize("spec", list(HEAD_SPECS))
def test_chunked_scoring_equals_unchunked(spec):
    head = build(spec)
    text, video = inputs()
    full = head.score(text, video)
    assert torch.allclose(score_all(head, text, video, chunk=2), full, atol=1e-5)
    assert torch.allclose(score_all(head, text, video, max_bytes=3_000), full, atol=1e-5)


def test_tight_pair_chunks_and_score_pairs_agree_with_the_grid():
    head = build("tightTransf")
    text, video = inputs()
    full = head.score(text, video)
    head.pair_chunk = 4  # blocks of 1 text x 4 videos
    assert torch.allclose(head.score(text, video), full, atol=1e-5)
    n = min(T, V)
    pairs = head.score_pairs(text.index(slice(0, n)), video.index(slice(0, n)))
    assert torch.allclose(pairs, full[torch.arange(n), torch.arange(n)], atol=1e-5)


def test_tight_score_keeps_gradients_in_training_mode():
    head = build("tightTransf").train()
    text, video = inputs()
    head.score(text, video).sum().backward()
    assert head.similarity_dense.weight.grad is not None


def test_seqTransf_init_from_clip_copies_blocks_and_positions():
    from open_clip.transformer import Transformer

    class FakeClip(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = Transformer(D, 3, 2)
            self.positional_embedding = nn.Parameter(torch.randn(20, D))

    torch.manual_seed(0)
    clip = FakeClip()
    head = TemporalTransformer(D, layers=2, max_frames=12, init_from=clip)
    assert head.heads == 2
    for i in range(2):
        for (k, a), (_, b) in zip(
            head.transformer.resblocks[i].state_dict().items(), clip.transformer.resblocks[i].state_dict().items()
        ):
            assert torch.equal(a, b), k
    assert torch.equal(head.frame_position_embeddings.weight, clip.positional_embedding[:12])
    with pytest.raises(ValueError, match="width"):
        TemporalTransformer(D * 2, init_from=clip)


def test_too_many_frames_for_the_position_table_is_an_error():
    head = TemporalTransformer(D, layers=1, heads=2, max_frames=4)
    text, video = inputs()
    with pytest.raises(ValueError, match="max_frames"):
        head.score(text, video)


# --------------------------------------------------------------------------- frame-order evaluation helpers
def test_reorder_frames_moves_only_valid_frames():
    from tvrlib.frame_order import keep_uniform_frames, reorder_frames

    _, video = inputs()
    rev = reorder_frames(video, "reverse")
    assert torch.equal(rev.frames[1, :4], video.frames[1, :4].flip(0))  # 4 valid frames, reversed
    assert torch.equal(rev.frames[1, 4:], video.frames[1, 4:])  # padding stays in place
    assert torch.equal(rev.frames[3, [0, 2, 4, 5]], video.frames[3, [5, 4, 2, 0]])  # holes stay holes
    shuf = reorder_frames(video, "shuffle", seed=3)
    for j in range(V):
        pos = torch.nonzero(video.mask[j]).flatten()
        shuffled_sums, sums = shuf.frames[j, pos].sum(-1), video.frames[j, pos].sum(-1)
        assert torch.equal(torch.sort(shuffled_sums).values, torch.sort(sums).values)
    kept = keep_uniform_frames(video, 2)
    assert kept.mask.sum(1).tolist() == [2, 2, 1, 2, 2, 2, 2]
    assert bool((kept.mask <= video.mask).all())


def test_evaluate_t2v_only_matches_the_full_evaluation():
    import numpy as np

    from tvrlib.datasets.base import RetrievalData, Video
    from tvrlib.evaluation import evaluate

    g = torch.Generator().manual_seed(0)
    nv = 12
    t2v = np.repeat(np.arange(nv), 2)
    texts = TextInput(torch.randn(len(t2v), D, generator=g))
    videos = VideoInput(torch.randn(nv, F_, D, generator=g), torch.ones(nv, F_, dtype=torch.bool))
    twin = -np.ones(nv, dtype=np.int64)
    twin[0::2], twin[1::2] = np.arange(1, nv, 2), np.arange(0, nv, 2)
    data = RetrievalData(
        "toy",
        "test",
        [Video(f"v{i}", "x") for i in range(nv)],
        [f"t{i}" for i in range(len(t2v))],
        t2v,
        np.arange(0, len(t2v), 2),
        {"twin_of_query": twin, "factor_of_query": ["order", "direction", "detail"] * 4},
    )
    head = build("seqTransf")
    full = evaluate(head, texts, videos, data, method="x", n_boot=50)
    t2v_only = evaluate(head, texts, videos, data, method="x", n_boot=50, v2t=False)
    assert full.t2v == t2v_only.t2v and t2v_only.v2t == {}
    assert full.twins.equals(t2v_only.twins)
    sub = evaluate(head, texts, videos, data, method="x", n_boot=50, gallery=6)
    assert sub.num_videos == 6 and full.twins["n"].tolist() == sub.twins["n"].tolist()
    assert np.allclose(full.twin_scores, sub.twin_scores, atol=1e-5)  # twins always over the whole split
