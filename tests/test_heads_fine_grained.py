"""Fine-grained heads (issue 10): DRL's WTI (``wti``), TS2-Net (``ts2net``), CrossAttnGL's global-local similarity
(``global_local``) and their losses, on small random tensors with explicit word, frame and patch masks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import masked_token_inputs, perturb
from torch import nn

from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.attention_pooling import masked_softmax
from tvrlib.heads.global_local import GlobalLocalSimilarity, similarity_vector
from tvrlib.heads.scoring import Encoded
from tvrlib.heads.ts2net import MAX_UNSHIFTED_TEMPERATURE, TokenShiftSelection, hard_topk, perturbed_topk, token_shift
from tvrlib.heads.wti import WeightedTokenInteraction, masked_max, running_max, trim_padding, valid_words
from tvrlib.losses import channel_decorrelation, global_local_ranking_loss
from tvrlib.training import FitConfig
from tvrlib.training.loop import batch_loss
from tvrlib.training.model import RetrievalModel

D, F_, T, V, L, P = 16, 6, 5, 7, 8, 5
NAMES = [
    "wti",
    "wti-uniform",
    "ts2net",
    "ts2net-tokens",
    "ts2net-noshift",
    "global_local",
    "global_local-local",
    "global_local-global",
]
#: heads whose score ignores the order of the words (nothing uses a word position); ts2net reads the sentence only
WORD_ORDER_FREE = NAMES
#: heads whose score ignores the order of the frames; ts2net's token shift and position embeddings see it
FRAME_ORDER_FREE = ["wti", "wti-uniform", "global_local", "global_local-local", "global_local-global"]

pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    kw = {**HEADS.accepted_kwargs(name, dim=D, layers=1), **kw}
    if HEADS.get(name) is GlobalLocalSimilarity:
        kw.setdefault("sim_dim", 12)
        kw.setdefault("max_words", L)
    return perturb(HEADS.build(name, **kw))


@pytest.fixture(scope="module")
def heads():
    return {name: build(name) for name in NAMES}


@pytest.fixture(scope="module")
def inputs():
    return masked_token_inputs(T, V, L, F_, P, D)


def scores(head, text, video) -> torch.Tensor:
    with torch.no_grad():
        return head.score(text, video)


# --------------------------------------------------------------------------- every head: shapes, masks, chunks
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_registry(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    s = scores(head, text, video)
    assert s.shape == (T, V) and torch.isfinite(s).all()
    assert head.uses_logit_scale and not head.has_frame_weights and not head.is_dual_encoder


@pytest.mark.parametrize("name", NAMES)
def test_padded_words_frames_and_patches_never_change_a_score(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    before = scores(head, text, video)
    words = text.words.clone()
    words[~text.word_mask] = float("nan")
    frames, patches = video.frames.clone(), video.patches.clone()
    frames[~video.mask] = float("nan")
    patches[~video.mask] = float("nan")
    junk_text, junk_video = TextInput(text.sentence, words, text.word_mask), VideoInput(frames, video.mask, patches)
    assert torch.allclose(scores(head, junk_text, junk_video), before, atol=1e-5)
    assert torch.allclose(score_all(head, junk_text, junk_video, max_bytes=2_000), before, atol=1e-5)
    # more padding slots at the end (words and frames) change nothing either
    longer_text = TextInput(
        text.sentence,
        torch.cat([text.words, torch.randn(T, 3, D)], 1),
        torch.cat([text.word_mask, torch.zeros(T, 3, dtype=torch.bool)], 1),
    )
    longer_video = VideoInput(
        torch.cat([video.frames, torch.randn(V, 2, D)], 1),
        torch.cat([video.mask, torch.zeros(V, 2, dtype=torch.bool)], 1),
        torch.cat([video.patches, torch.randn(V, 2, P, D)], 1),
    )
    assert torch.allclose(scores(head, longer_text, longer_video), before, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_score_pairs_is_the_diagonal_and_chunks_equal_one_shot(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    full = scores(head, text, video)
    n = min(T, V)
    with torch.no_grad():
        pairs = head.score_pairs(text.index(slice(0, n)), video.index(slice(0, n)))
    assert torch.allclose(pairs, full.diagonal()[:n], atol=1e-5)
    for kw in ({}, {"max_bytes": 2_000}, {"max_bytes": 1}, {"chunk": 2}):
        assert torch.allclose(score_all(head, text, video, **kw), full, atol=1e-5), kw


def test_blocks_are_sized_by_pair_bytes(heads):
    """The per-pair working memory grows with the frames (and the word bound), so score_all's blocks stay bounded."""
    for name in ("wti", "ts2net", "global_local"):
        head = heads[name]
        assert head.pair_bytes(24, D) > head.pair_bytes(12, D) > 0
    assert heads["wti"].pair_bytes(12, D) == 4 * (77 * 12 + 2 * 77 + 2 * 12 + 4)  # [L, F] + a few [L], [F] floats
    # the global-only variant builds no word nodes, so its blocks may hold many more pairs
    assert heads["global_local-global"].pair_bytes(12, D) * 5 < heads["global_local"].pair_bytes(12, D)
    assert heads["global_local-local"].pair_bytes(12, D) < heads["global_local"].pair_bytes(12, D)


@pytest.mark.parametrize("name", NAMES)
def test_each_side_is_encoded_in_chunks_with_the_same_result(name, heads, inputs):
    """score_all encodes a gallery in chunks (TS2-Net's per-video transformer over all patch tokens of 1,000 videos
    would otherwise hold gigabytes); the chunks concatenate to the one-shot encoding."""
    from tvrlib.heads.scoring import _encode

    head, (text, video) = heads[name], inputs
    with torch.no_grad():
        for side, fn in ((text, head.encode_text), (video, head.encode_video)):
            whole, parts = fn(side), _encode(fn, side, 2, "cpu")
            assert whole.tensors.keys() == parts.tensors.keys()
            for k in whole.tensors:
                torch.testing.assert_close(parts[k], whole[k], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_a_fixed_chunk_is_also_bounded_by_memory(name, heads, inputs, monkeypatch):
    """Validation and the test ranking ask for fixed 256 x 256 blocks; a token-level head's blocks stay within
    max_bytes anyway (gigabytes otherwise), with the same scores."""
    import tvrlib.heads.scoring as scoring

    head, (text, video) = heads[name], inputs
    assert head.block_by_memory
    seen = []
    real = scoring._score_blocks
    monkeypatch.setattr(
        scoring, "_score_blocks", lambda f, t, v, tc, vc, d: seen.append((tc, vc)) or real(f, t, v, tc, vc, d)
    )
    budget = 3 * head.pair_bytes(F_, D)  # three pairs per block
    got = score_all(head, text, video, chunk=256, max_bytes=budget)
    assert seen and all(tc * vc <= 3 for tc, vc in seen), seen
    torch.testing.assert_close(got, scores(head, text, video), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", WORD_ORDER_FREE)
def test_permuting_the_words_changes_nothing(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    perm = torch.randperm(L, generator=torch.Generator().manual_seed(3))
    shuffled = TextInput(text.sentence, text.words[:, perm], text.word_mask[:, perm])
    assert torch.allclose(scores(head, shuffled, video), scores(head, text, video), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_permuting_the_frames(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    perm = torch.tensor([5, 0, 3, 1, 4, 2])
    shuffled = VideoInput(video.frames[:, perm], video.mask[:, perm], video.patches[:, perm])
    same = torch.allclose(scores(head, text, shuffled), scores(head, text, video), atol=1e-5)
    assert same == (name in FRAME_ORDER_FREE)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_training_reaches_the_weights(name, inputs):
    text, video = inputs
    head = build(name)
    assert torch.equal(scores(head, text, video), scores(head, text, video))
    params = list(head.parameters())
    if not params:
        return  # wti-uniform has no weights
    head.train()
    head.score(text, video).sum().backward()
    unused = {
        "global_local-local": ("aggregation.", "global_proj."),
        # one node: its attention weight is 1, so W_q and W_k never enter the score (their gradient was always 0)
        "global_local-global": ("local_proj.", "node_query.", "node_key."),
    }
    for n, p in head.named_parameters():
        if not n.startswith(unused.get(name, ())):  # a variant leaves its other branch's weights alone
            assert p.grad is not None and torch.isfinite(p.grad).all(), n


@pytest.mark.parametrize("name", NAMES)
def test_empty_caption_and_empty_video_score_finitely(name, heads, inputs):
    text, video = inputs
    word_mask, mask = text.word_mask.clone(), video.mask.clone()
    word_mask[0] = False
    mask[0] = False
    s = scores(
        heads[name], TextInput(text.sentence, text.words, word_mask), VideoInput(video.frames, mask, video.patches)
    )
    assert torch.isfinite(s).all()


@pytest.mark.parametrize("name", ["wti", "global_local"])
def test_without_word_tokens_the_sentence_is_the_only_token(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    alone = TextInput(text.sentence)
    one = TextInput(text.sentence, text.sentence[:, None], torch.ones(T, 1, dtype=torch.bool))
    assert torch.allclose(scores(head, alone, video), scores(head, one, video), atol=1e-6)
    with pytest.raises(ValueError, match="word_mask"):
        head.score(TextInput(text.sentence, text.words), video)


# --------------------------------------------------------------------------- WTI (DRL)
def direct_wti(text: TextInput, video: VideoInput, tw: torch.Tensor | None = None, vw: torch.Tensor | None = None):
    """WTI pair by pair, with Python loops over the valid tokens and frames only (uniform weights by default)."""
    out = torch.zeros(T, V)
    for t in range(T):
        words = F.normalize(text.words[t][text.word_mask[t]], dim=-1)
        wt = torch.full((len(words),), 1 / len(words)) if tw is None else tw[t][text.word_mask[t]]
        for v in range(V):
            frames = F.normalize(video.frames[v][video.mask[v]], dim=-1)
            wv = torch.full((len(frames),), 1 / len(frames)) if vw is None else vw[v][video.mask[v]]
            c = words @ frames.T  # [L', F']
            out[t, v] = ((wt * c.max(1).values).sum() + (wv * c.max(0).values).sum()) / 2
    return out


def test_wti_with_uniform_weights_is_the_mean_of_max_cosines(inputs):
    text, video = inputs
    head = build("wti")
    with torch.no_grad():
        for mlp in (head.text_weight, head.video_weight):
            mlp[-1].weight.zero_()  # every token logit equal -> uniform weights over the valid tokens
            mlp[-1].bias.fill_(0.7)
    expected = direct_wti(text, video)
    assert torch.allclose(scores(head, text, video), expected, atol=1e-5)
    assert torch.allclose(scores(build("wti-uniform"), text, video), expected, atol=1e-5)


def test_wti_learned_weights_match_the_direct_formula(heads, inputs):
    text, video = inputs
    head = heads["wti"]
    with torch.no_grad():
        tw, vw = head.token_weights(text, video)
    assert torch.all(tw[~text.word_mask] == 0) and torch.all(vw[~video.mask] == 0)
    assert torch.allclose(tw.sum(1), torch.ones(T)) and torch.allclose(vw.sum(1), torch.ones(V))
    assert not torch.allclose(tw[0], torch.full((L,), 1 / L))  # learned, not uniform
    assert torch.allclose(scores(head, text, video), direct_wti(text, video, tw, vw), atol=1e-5)


def test_wti_padding_never_wins_a_max_when_every_cosine_is_negative():
    """DRL multiplies the cosines by the masks, so a padded 0 beats all-negative cosines; the masks here forbid it."""
    u = F.normalize(torch.ones(D), dim=0)
    text = TextInput(u[None], torch.stack([u, u, torch.zeros(D)])[None], torch.tensor([[True, True, False]]))
    video = VideoInput(torch.stack([-u, -u, torch.zeros(D)])[None], torch.tensor([[True, True, False]]))
    s = scores(HEADS.build("wti-uniform", dim=D), text, video)
    assert torch.allclose(s, torch.tensor([[-1.0]]), atol=1e-6)


def test_wti_is_an_encoded_head_that_ignores_the_path(heads, inputs):
    text, video = inputs
    head = heads["wti"]
    assert isinstance(head, WeightedTokenInteraction)
    for path in ("gram", "materialise"):
        assert torch.equal(score_all(head, text, video, path=path), score_all(head, text, video))


def former_wti_pairs(te: Encoded, ve: Encoded) -> torch.Tensor:
    """WTI's per-pair part as written before issue 13 (the reference): the ``[t, v, L, F]`` cosines, a masked copy
    for each direction and the masked maxima."""
    te = trim_padding(te, "mask", ("tokens", "weights"))
    c = torch.einsum("tld,vfd->tvlf", te["tokens"], ve["tokens"])
    best_frame = masked_max(c, ve["mask"][None, :, None, :], dim=-1)
    best_token = masked_max(c, te["mask"][:, None, :, None], dim=-2)
    t2v = torch.einsum("tvl,tl->tv", best_frame, te["weights"])
    v2t = torch.einsum("tvf,vf->tv", best_token, ve["weights"])
    return (t2v + v2t) / 2


@pytest.mark.parametrize("name", ["wti", "wti-uniform"])
@pytest.mark.parametrize("frames", ["padded", "all valid"])
def test_wti_pair_scoring_and_its_gradients_equal_the_former_code(name, frames, inputs):
    """One product over the valid words of a block (longest caption first, laid out by word slot), the frame mask
    folded into it, a running maximum over the word slots: the scores and gradients of the masked ``[t, v, L, F]``
    maxima, with holes in the captions, a caption without a valid word and a video without a valid frame."""
    text, video = inputs
    word_mask = text.word_mask.clone()
    word_mask[3] = False  # no valid word
    word_mask[0, :2] = False  # valid words after padding
    mask = video.mask.clone() if frames == "padded" else torch.ones_like(video.mask)
    if frames == "padded":
        mask[5] = False  # no valid frame
    text, video = TextInput(text.sentence, text.words, word_mask), VideoInput(video.frames, mask)
    head = build(name)
    sides = head.encode_text(text), head.encode_video(video)
    leaves = [
        Encoded({k: v.detach().requires_grad_(v.is_floating_point()) for k, v in side.tensors.items()})
        for side in sides
    ]
    got, expected = head.score_encoded(*leaves), former_wti_pairs(*leaves)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    g = torch.randn(got.shape, generator=torch.Generator().manual_seed(0))
    inputs_ = [v for side in leaves for v in side.tensors.values() if v.requires_grad]
    params = list(head.parameters())
    new = torch.autograd.grad((got * g).sum(), inputs_, retain_graph=True)
    old = torch.autograd.grad((expected * g).sum(), inputs_)
    for a, b in zip(new, old):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    if params:  # through the token-weight MLPs too
        s_new = head.score_encoded(head.encode_text(text), head.encode_video(video))
        s_old = former_wti_pairs(head.encode_text(text), head.encode_video(video))
        new = torch.autograd.grad((s_new * g).sum(), params)
        old = torch.autograd.grad((s_old * g).sum(), params)
        for a, b in zip(new, old):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # blocks of a few pairs, and the in-place maxima of evaluation
        expected = former_wti_pairs(head.encode_text(text), head.encode_video(video))
    for max_bytes in (1, 3 * head.pair_bytes(F_, D), 10**9):
        torch.testing.assert_close(score_all(head, text, video, max_bytes=max_bytes), expected, atol=1e-6, rtol=1e-5)


def test_wti_valid_words_are_one_matrix_laid_out_by_word_slot(inputs):
    text, _ = inputs
    mask = text.word_mask.clone()
    mask[3] = False
    weights = torch.rand(T, L)
    rows, row_weights, row_text, counts, order = valid_words(text.words, weights, mask)
    lengths = mask.sum(1)
    assert len(rows) == int(lengths.sum()) and counts == sorted(counts, reverse=True) and sum(counts) == len(rows)
    assert torch.equal(lengths[order], lengths.sort(descending=True, stable=True).values)
    off = 0
    for j, n in enumerate(counts):  # slot j: word j of the first n captions (longest first), in that order
        assert torch.equal(row_text[off : off + n], torch.arange(n))
        for r, i in enumerate(order[:n].tolist()):
            valid = mask[i].nonzero().squeeze(1)
            assert torch.equal(rows[off + r], text.words[i, valid[j]])
            assert row_weights[off + r] == weights[i, valid[j]]
        off += n
    c = torch.randn(3, len(rows), 4)  # [F, R, v]
    best = running_max(c, counts, T)
    for i in range(T):
        mine = row_text == i
        expected = c[:, mine].amax(1) if mine.any() else torch.zeros(3, 4)
        assert torch.equal(best[:, i], expected)


# --------------------------------------------------------------------------- TS2-Net
def test_token_shift_moves_exactly_the_stated_channel_fraction_and_never_across_padding(inputs):
    _, video = inputs
    x = torch.where(video.mask[:, :, None, None], video.patches, torch.zeros(()))
    junk = x.clone()
    junk[~video.mask] = float("nan")
    out = token_shift(junk, video.mask, "channels", 0.25)  # D = 16: channels 0-1 from f-1, 2-3 from f+1
    assert not torch.isnan(out[video.mask]).any()  # nothing of a padded frame reaches a valid one
    k = int(D * 0.25 / 2)
    assert k == 2
    moved = 0
    for v in range(V):
        for f in range(F_):
            if not video.mask[v, f]:
                continue
            prev_ok = f > 0 and bool(video.mask[v, f - 1])
            next_ok = f < F_ - 1 and bool(video.mask[v, f + 1])
            assert torch.equal(out[v, f, :, :k], x[v, f - 1, :, :k] if prev_ok else x[v, f, :, :k])
            assert torch.equal(out[v, f, :, k : 2 * k], x[v, f + 1, :, k : 2 * k] if next_ok else x[v, f, :, k : 2 * k])
            assert torch.equal(out[v, f, :, 2 * k :], x[v, f, :, 2 * k :])  # the other channels stay
            moved += (out[v, f] != x[v, f]).any(0).sum().item() if prev_ok and next_ok else 0
    interior = sum(
        1
        for v in range(V)
        for f in range(1, F_ - 1)
        if video.mask[v, f - 1] and video.mask[v, f] and video.mask[v, f + 1]
    )
    assert moved == interior * 2 * k  # exactly a quarter of the channels moves in a frame with two valid neighbours
    assert torch.equal(token_shift(x, video.mask, "none"), x)


def test_token_shift_tokens_mode_moves_whole_tokens_in_the_reference_pattern():
    x = torch.randn(1, 3, 11, D)
    mask = torch.ones(1, 3, dtype=torch.bool)
    out = token_shift(x, mask, "tokens")
    for p in range(11):
        src = 0 if p % 7 == 0 else 2 if p % 7 == 3 else 1  # patch p of the middle frame comes from frame src
        assert torch.equal(out[0, 1, p], x[0, src, p]), p  # the whole token vector moves
    assert torch.equal(out[0, 0, 0], x[0, 0, 0])  # the first frame has no previous frame: keeps its own


def test_ts2net_keeps_the_cls_and_the_top_k_patches_in_order(inputs):
    _, video = inputs
    head = build("ts2net", k=3)
    with torch.no_grad():
        kept = head.kept_tokens(video)
        indicator = head.selection(video)
        shifted = token_shift(head._patches(video), video.mask, head.shift, head.shift_fraction)
        token_scores = head.scorer(video.frames * video.mask[..., None], shifted)
    assert kept.shape == (V, F_, 4, D) and indicator.shape == (V, F_, 3, P)
    assert torch.equal(kept[:, :, 0][video.mask], video.frames[video.mask])  # the CLS is always the first token
    idx = indicator.argmax(-1)  # hard one-hot in eval
    assert torch.equal(indicator.sum(-1), torch.ones(V, F_, 3))
    assert torch.equal(idx, token_scores.topk(3, dim=-1).indices.sort(-1).values)  # the top 3, in patch order
    picked = torch.gather(shifted, 2, idx[..., None].expand(V, F_, 3, D))
    assert torch.allclose(kept[:, :, 1:][video.mask], picked[video.mask])
    # k larger than the number of patches keeps them all
    assert build("ts2net", k=9).kept_tokens(video).shape == (V, F_, 1 + P, D)


def test_ts2net_training_selection_is_soft_and_eval_is_hard(inputs):
    text, video = inputs
    head = build("ts2net").train()
    soft = head.selection(video)
    assert torch.allclose(soft.sum(-1), torch.ones(V, F_, 3))  # each of the k slots is a distribution over patches
    assert not torch.equal(soft, soft.round())  # noisy samples disagree somewhere
    a, b = head.score(text, video), head.score(text, video)
    assert not torch.equal(a, b)  # fresh noise each call in training
    head.eval()
    assert torch.equal(head.selection(video), head.selection(video).round())
    assert torch.equal(scores(head, text, video), scores(head, text, video))


def test_perturbed_topk_gradient_points_the_right_way():
    torch.manual_seed(0)
    x = torch.tensor([[0.0, 0.02, -0.03, 0.01]], requires_grad=True)
    ind = perturbed_topk(x, 1, num_samples=4000, sigma=0.05)
    assert torch.allclose(ind.sum(-1), torch.ones(1, 1))
    ind[0, 0, 1].backward()  # how often patch 1 is the top-1
    assert x.grad[0, 1] > 0 and (x.grad[0, [0, 2, 3]] < 0).all()  # raising its score helps, raising others hurts
    assert torch.equal(hard_topk(x.detach(), 2), F.one_hot(torch.tensor([[1, 3]]), 4).float())


def test_ts2net_without_patches_is_a_clear_error(inputs):
    text, video = inputs
    head = build("ts2net")
    with pytest.raises(ValueError, match=r"video\.patches is None.*with_patches=True"):
        head.score(text, VideoInput(video.frames, video.mask))
    with pytest.raises(ValueError, match=r"\[V, F, P, D\]"):
        head.score(text, VideoInput(video.frames, video.mask, video.patches[:, :, :, :4]))
    with pytest.raises(ValueError, match="shift"):
        TokenShiftSelection(D, shift="sideways")
    with pytest.raises(ValueError, match="max_tokens>=24"):  # 6 frames x (CLS + 3 patches) tokens
        build("ts2net", max_tokens=20).score(text, video)


def test_ts2net_frame_similarity_is_the_reference_softmax(inputs):
    text, video = inputs
    head = build("ts2net")
    with torch.no_grad():
        y = F.normalize(head.frame_vectors(video), dim=-1)
        got = head.score(text, video)
    t = F.normalize(text.sentence, dim=-1)
    for i in range(T):
        for v in range(V):
            s = y[v][video.mask[v]] @ t[i]
            w = torch.softmax(4 * s / s.norm(), 0)
            assert torch.allclose(got[i, v], (w * s).sum(), atol=1e-5)


def former_ts2net_pairs(head: TokenShiftSelection, te: Encoded, ve: Encoded) -> torch.Tensor:
    """TS2-Net's per-pair step 5 as written before issue 13 (the reference): a ``[t, v, F]`` einsum, the masked,
    max-shifted softmax over the last axis, then the weighted sum."""
    mask = ve["mask"]
    s = torch.einsum("td,vfd->tvf", te["unit"], ve["frames"])
    s = torch.where(mask, s, torch.zeros(()))
    norm = s.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    w = masked_softmax(head.temperature * s / norm, mask)
    return (w * s).sum(-1)


@pytest.mark.parametrize("temperature", [4.0, -3.0, 2 * MAX_UNSHIFTED_TEMPERATURE])
@pytest.mark.parametrize("sub_block", [None, 2])
def test_ts2net_pair_scoring_and_its_gradients_equal_the_former_softmax(temperature, sub_block, inputs, monkeypatch):
    """Issue 13: one GEMM per (sub-)block and an unshifted exp (|z| <= |temperature|) give the former scores and
    gradients, padded frames and a video without a valid frame (score 0) included; a large temperature takes the
    shifted path; sub-blocks of ``sub_block`` texts (SUB_BLOCK_COSINES) change nothing."""
    if sub_block:
        monkeypatch.setattr("tvrlib.heads.ts2net.SUB_BLOCK_COSINES", sub_block * V * F_)
    text, video = inputs
    mask = video.mask.clone()
    mask[0] = False
    video = VideoInput(video.frames, mask, video.patches)
    head = build("ts2net", temperature=temperature)
    with torch.no_grad():
        te, ve = head.encode_text(text), head.encode_video(video)
    unit, frames = te["unit"].clone().requires_grad_(True), ve["frames"].clone().requires_grad_(True)
    te, ve = Encoded({"unit": unit}), Encoded({"frames": frames, "mask": mask})
    got, expected = head.score_encoded(te, ve), former_ts2net_pairs(head, te, ve)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert torch.equal(got[:, 0], torch.zeros(T))
    g = torch.randn(got.shape, generator=torch.Generator().manual_seed(0))
    for a, b in zip(
        torch.autograd.grad((got * g).sum(), (unit, frames)), torch.autograd.grad((expected * g).sum(), (unit, frames))
    ):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(score_all(head, text, video, max_bytes=2_000), expected.detach(), atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- global-local (CrossAttnGL)
def test_similarity_vector_is_unit_norm_and_zero_safe():
    g = torch.Generator().manual_seed(0)
    a, b, w = torch.randn(4, D, generator=g), torch.randn(4, D, generator=g), torch.randn(12, D, generator=g)
    s = similarity_vector(a, b, w)
    assert s.shape == (4, 12) and torch.allclose(s.norm(dim=-1), torch.ones(4), atol=1e-6)
    expected = (w @ ((a - b) ** 2).T).T  # W |a - b|^2, eq. 4.10
    assert torch.allclose(s, expected / expected.norm(dim=-1, keepdim=True), atol=1e-6)
    same = a.clone().requires_grad_(True)
    z = similarity_vector(same, a, w)
    assert torch.equal(z, torch.zeros_like(z))  # a = b: the zero vector, not NaN
    z.sum().backward()
    assert torch.isfinite(same.grad).all()


def textbook_global_local(head: GlobalLocalSimilarity, text: TextInput, video: VideoInput, t: int, v: int):
    """One pair, equation by equation (valid words and frames only)."""
    sentence = F.normalize(text.sentence[t], dim=0)
    words = F.normalize(text.words[t][text.word_mask[t]], dim=-1)  # t_j
    frames = F.normalize(video.frames[v][video.mask[v]], dim=-1)  # v_i
    one_t, one_v = text.index(slice(t, t + 1)), video.index(slice(v, v + 1))
    e_v = F.normalize(head.aggregation.pool(one_t, one_v)[0, 0], dim=0)  # E_V, eqs. 4.5-4.9
    nodes = []
    if head.uses_global:
        d = (e_v - sentence) ** 2
        nodes.append(head.global_proj.weight @ d / (head.global_proj.weight @ d).norm())  # eqs. 4.10-4.11
    if head.uses_local:
        for j in range(len(words)):
            c = frames @ words[j]  # C_ij, eq. 4.12
            beta = c.clamp_min(0) / c.clamp_min(0).pow(2).sum().sqrt().clamp_min(1e-12)  # eq. 4.13
            a_j = F.normalize((beta[:, None] * frames).sum(0), dim=0)  # eq. 4.14
            d = (a_j - words[j]) ** 2
            nodes.append(head.local_proj.weight @ d / (head.local_proj.weight @ d).norm())  # eq. 4.15
    x = torch.stack(nodes)  # [N, S]
    attn = torch.softmax(head.node_query(x) @ head.node_key(x).T / math.sqrt(head.sim_dim), -1)
    h = torch.relu(head.node_out(attn @ x))
    return torch.sigmoid(head.readout(h.mean(0)))[0]


@pytest.mark.parametrize("name", ["global_local", "global_local-local", "global_local-global"])
def test_global_local_is_the_papers_equations(name, heads, inputs):
    text, video = inputs
    head = heads[name]
    got = scores(head, text, video)
    with torch.no_grad():
        for t, v in [(0, 0), (1, 3), (2, 2), (4, 4), (3, 1)]:
            assert torch.allclose(got[t, v], textbook_global_local(head, text, video, t, v), atol=1e-5), (t, v)


def test_variants_differ_only_in_the_fusion_input(heads, inputs):
    text, video = inputs
    full = heads["global_local"]
    local, glob = build("global_local-local"), build("global_local-global")
    local.load_state_dict(full.state_dict())  # the same parameters in all three
    glob.load_state_dict(full.state_dict())
    with torch.no_grad():
        g, loc, word_mask = full.similarity_vectors(text, video)
        ones = torch.ones(T, 1, dtype=torch.bool)

        def fused(x, m):
            return full.read(full.fuse(x, m), m)

        assert torch.allclose(
            full.score(text, video),
            fused(torch.cat([g[:, :, None], loc], 2), torch.cat([ones, word_mask], 1)),
            atol=1e-6,
        )
        assert torch.allclose(local.score(text, video), fused(loc, word_mask), atol=1e-6)
        assert torch.allclose(glob.score(text, video), fused(g[:, :, None], ones), atol=1e-6)
        assert not torch.allclose(local.score(text, video), full.score(text, video), atol=1e-4)
        # the global-only head never looks at the words; the local-only one never at the aggregation weights
        other_words = TextInput(text.sentence, torch.randn(T, L, D), text.word_mask)
        assert torch.allclose(glob.score(other_words, video), glob.score(text, video), atol=1e-6)
        before = local.score(text, video)
        perturb(local.aggregation, seed=5)
        assert torch.equal(local.score(text, video), before)


def test_score_parts_are_the_readouts_of_the_word_and_global_nodes(heads, inputs):
    text, video = inputs
    full, local, glob = heads["global_local"], heads["global_local-local"], heads["global_local-global"]
    with torch.no_grad():
        s_loc, s_glo = full.score_parts(text, video)
        s = full.score(text, video)
        assert s_loc.shape == s_glo.shape == (T, V)
        # the full score's logit is the node-count-weighted mean of the parts' logits
        n = text.word_mask.sum(1, keepdim=True).float()
        assert torch.allclose(torch.logit(s), (torch.logit(s_glo) + n * torch.logit(s_loc)) / (n + 1), atol=1e-4)
        only_local, none_ = local.score_parts(text, video)
        none2, only_global = glob.score_parts(text, video)
        assert none_ is None and none2 is None
        assert torch.allclose(only_local, local.score(text, video), atol=1e-6)
        assert torch.allclose(only_global, glob.score(text, video), atol=1e-6)


def test_global_local_uses_the_cross_modal_aggregation_head(heads):
    from tvrlib.heads.cross_modal_aggregation import CrossModalAggregation

    agg = heads["global_local"].aggregation
    assert type(agg) is CrossModalAggregation and agg.dropout.p == pytest.approx(0.3) and agg.value is not None
    with pytest.raises(ValueError, match="branches"):
        GlobalLocalSimilarity(D, branches="neither")


def former_global_local_pairs(head: GlobalLocalSimilarity, te: Encoded, ve: Encoded) -> torch.Tensor:
    """CrossAttnGL's per-pair part as written before issue 13 (the reference): ``beta`` normalised over the frames
    before ``a_j``, queries and keys projected separately, attention over a single node computed too."""
    te = trim_padding(te, "word_mask", ("words",))
    zero = torch.zeros(())
    parts, masks = [], []
    if head.uses_global:
        parts.append(head.global_vectors(te, ve)[:, :, None])
        masks.append(te["word_mask"].new_ones(len(te), 1))
    if head.uses_local:
        c = torch.einsum("tld,vfd->tvlf", te["words"], ve["frames"])
        beta = F.normalize(torch.where(ve["mask"][None, :, None, :], c.clamp_min(0), zero), dim=-1)
        attended = F.normalize(torch.einsum("tvlf,vfd->tvld", beta, ve["frames"]), dim=-1)
        parts.append(similarity_vector(attended, te["words"][:, None], head.local_proj.weight))
        masks.append(te["word_mask"])
    x, node_mask = torch.cat(parts, 2), torch.cat(masks, 1)
    x = torch.where(node_mask[:, None, :, None], x, zero)
    logits = head.node_query(x) @ head.node_key(x).transpose(-1, -2) / math.sqrt(head.sim_dim)
    h = F.relu(head.node_out(masked_softmax(logits, node_mask[:, None, None, :]) @ x))
    which = node_mask[:, None, :, None]
    pooled = torch.where(which, h, zero).sum(2) / which.sum(2).clamp_min(1)
    return torch.sigmoid(head.readout(pooled).squeeze(-1))


@pytest.mark.parametrize("name", ["global_local", "global_local-local", "global_local-global"])
def test_global_local_pair_scoring_and_its_gradients_equal_the_former_code(name, inputs):
    """Issue 13: W_q^T W_k folded into one S x S matrix, beta's per-word scale left to a_j's normalisation, no
    logits for a single node: the same scores and the same gradients (a weight that never enters the score gets
    none instead of an exact 0)."""
    text, video = inputs
    head = build(name)
    blocks = [(text, video), (text.index(slice(2, 3)), video)]  # caption 2 has one word: one node for "-local"
    for tb, vb in blocks:
        te, ve = head.encode_text(tb), head.encode_video(vb)
        got, expected = head.score_encoded(te, ve), former_global_local_pairs(head, te, ve)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
        params = [p for p in head.parameters()]
        g = torch.randn(got.shape, generator=torch.Generator().manual_seed(0))
        new = torch.autograd.grad((got * g).sum(), params, allow_unused=True, retain_graph=True)
        old = torch.autograd.grad((expected * g).sum(), params, allow_unused=True)
        for a, b in zip(new, old):
            a = torch.zeros_like(b) if a is None and b is not None else a
            if b is not None:
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    with torch.no_grad():
        expected = former_global_local_pairs(head, head.encode_text(text), head.encode_video(video))
    torch.testing.assert_close(score_all(head, text, video, max_bytes=2_000), expected, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- losses
def brute_force_vse(s: torch.Tensor, margin: float) -> float:
    """VSE++ max violation, both directions, summed, with explicit loops."""
    n, total = s.shape[0], 0.0
    for i in range(n):
        hardest_video = max(float(s[i, j]) for j in range(n) if j != i)
        hardest_text = max(float(s[j, i]) for j in range(n) if j != i)
        total += max(0.0, margin - float(s[i, i]) + hardest_video) + max(0.0, margin - float(s[i, i]) + hardest_text)
    return total


def test_global_local_ranking_loss_is_brute_force_vse_on_4x4():
    g = torch.Generator().manual_seed(0)
    s_loc, s_glo = torch.rand(4, 4, generator=g), torch.rand(4, 4, generator=g)
    got = global_local_ranking_loss(s_loc, s_glo, margin=0.2, local_weight=0.7, global_weight=1.5)
    expected = 0.7 * brute_force_vse(s_loc, 0.2) + 1.5 * brute_force_vse(s_glo, 0.2)
    assert got.item() == pytest.approx(expected, abs=1e-6) and expected > 0
    assert global_local_ranking_loss(None, s_glo).item() == pytest.approx(brute_force_vse(s_glo, 0.2), abs=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        global_local_ranking_loss(None, None)


def test_global_local_ranking_loss_is_zero_when_positives_beat_negatives_by_the_margin():
    neg = torch.tensor([[0.0, 0.3, 0.1, 0.2], [0.25, 0.0, 0.3, 0.1], [0.1, 0.2, 0.0, 0.3], [0.3, 0.1, 0.2, 0.0]])
    s = neg + torch.eye(4) * 0.5  # every positive 0.5, every negative <= 0.3: a margin of exactly 0.2
    assert global_local_ranking_loss(s, s, margin=0.2).item() == 0.0
    assert global_local_ranking_loss(s, s, margin=0.21).item() > 0  # and not a hair more
    # the printed sign (eq. 4.20), max(0, s(a, p) - s(a, n) + margin), would penalise this perfect ranking instead
    hardest = s.masked_fill(torch.eye(4, dtype=torch.bool), -1).max(1).values
    assert (s.diagonal() - hardest + 0.2).clamp(min=0).sum() > 0


def test_channel_decorrelation_is_zero_for_decorrelated_features():
    h = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    x = torch.kron(h, h)[:, 1:9]  # 16 rows, 8 channels: zero mean, unit variance, mutually orthogonal
    assert channel_decorrelation(x, x).item() == pytest.approx(0.0, abs=1e-8)
    assert channel_decorrelation(x, x, weights=torch.full((16,), 0.3)).item() == pytest.approx(0.0, abs=1e-8)
    mixed = x.clone()
    mixed[:, 1] = x[:, 0] + 0.5 * x[:, 1]  # channels 0 and 1 correlated
    assert channel_decorrelation(mixed, mixed).item() > 0.01
    assert channel_decorrelation(mixed, mixed, off_diagonal_weight=0.0).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- training: the loss by name
def test_fit_config_selects_the_global_local_ranking_loss(heads, inputs):
    text, video = inputs
    cfg = FitConfig(loss="global_local_ranking", margin=0.2)
    n = 5
    tb, vb, ids = text.index(slice(0, n)), video.index(slice(0, n)), torch.tensor([0, 1, 2, 3, 1])
    model = RetrievalModel(build("global_local"))
    value = batch_loss(cfg, model, tb, vb, ids)
    with torch.no_grad():
        s_loc, s_glo = model.head.score_parts(tb, vb)
    assert value.item() == pytest.approx(global_local_ranking_loss(s_loc, s_glo, ids).item(), abs=1e-6)
    model.train()
    batch_loss(cfg, model, tb, vb, ids).backward()
    assert model.head.readout.weight.grad is not None
    with pytest.raises(ValueError, match="needs a head with local and global scores"):
        batch_loss(cfg, RetrievalModel(heads["wti"]), tb, vb, ids)
    with pytest.raises(ValueError, match="hard_negatives"):
        FitConfig(loss="global_local_ranking", hard_negatives=2)
    with pytest.raises(ValueError, match="loss must be one of"):
        FitConfig(loss="mse")


@pytest.mark.parametrize("name", NAMES)
def test_float16_tokens_as_the_feature_cache_stores_them_score_like_float32(name, heads, inputs):
    """The cache keeps word and patch tokens in float16 next to float32 sentences and frames: every head computes in
    the sentence's / frames' precision, so the half tokens score exactly as their float32 copies."""
    text, video = inputs
    half_text = TextInput(text.sentence, text.words.half(), text.word_mask)
    half_video = VideoInput(video.frames, video.mask, video.patches.half())
    same_text = TextInput(text.sentence, half_text.words.float(), text.word_mask)
    same_video = VideoInput(video.frames, video.mask, half_video.patches.float())
    with torch.no_grad():
        s_half = heads[name].score(half_text, half_video)
        s_float = heads[name].score(same_text, same_video)
    assert s_half.dtype == torch.float32
    torch.testing.assert_close(s_half, s_float)


@pytest.mark.parametrize("name", NAMES)
def test_word_columns_that_are_padding_for_every_caption_change_nothing(name, heads, inputs):
    """Split-wide padding (word tensors padded to the longest caption of a whole split): extra all-padding columns,
    even NaN ones, leave every score as it was, and trim_padding cuts exactly those columns."""
    from tvrlib.heads.scoring import Encoded
    from tvrlib.heads.wti import trim_padding

    text, video = inputs
    extra = 5
    words = torch.cat([text.words, torch.full((T, extra, D), float("nan"))], 1)
    mask = torch.cat([text.word_mask, torch.zeros(T, extra, dtype=torch.bool)], 1)
    with torch.no_grad():
        before = heads[name].score(text, video)
        after = heads[name].score(TextInput(text.sentence, words, mask), video)
    torch.testing.assert_close(after, before)
    side = Encoded({"w": words, "m": mask, "s": text.sentence})
    cut = trim_padding(side, "m", ("w",))
    assert cut["w"].shape[1] == L and cut["m"].shape[1] == L and cut["s"] is text.sentence
    assert trim_padding(cut, "m", ("w",)) is cut  # nothing left to cut
