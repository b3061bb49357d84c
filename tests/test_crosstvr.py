"""CrossTVR (issue 12, seed 003): the stage-2 re-ranker (decoupled spatial/temporal cross attention, token selector,
matching head; variants of Tables 6 and 9) and two-stage retrieval (shortlist, re-rank, hard negatives, training,
DSL, per-seed runs), on small random tensors with explicit word, frame and patch masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import masked_token_inputs, perturb

from tvrlib import metrics as M
from tvrlib.experiment import HeadRuns, Protocol, SeedRun, paired_difference, subset_runs
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.crosstvr import CrossTVR, QueryTransformer
from tvrlib.reranking import (
    LIFT_GAP,
    RerankConfig,
    combine,
    dual_softmax,
    hard_negatives,
    matching_loss,
    rerank,
    rerank_runs,
    rerank_top_k,
    runs_at,
    shortlist,
    train_reranker,
    train_rerankers,
)
from tvrlib.training import FeatureSource

D, F_, T, V, L, P = 16, 6, 5, 7, 8, 3
NAMES = ["crosstvr", "crosstvr-spatial", "crosstvr-temporal", "crosstvr-unshared"]

pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str = "crosstvr", move: bool = True, **kw) -> CrossTVR:
    torch.manual_seed(0)
    head = HEADS.build(name, **{"dim": D, "queries": 3, "layers": 1, **kw})
    return perturb(head) if move else head.eval()


@pytest.fixture(scope="module")
def heads():
    return {name: build(name) for name in NAMES}


@pytest.fixture(scope="module")
def inputs():
    return masked_token_inputs(T, V, L, F_, P, D)


def scores(head, text, video) -> torch.Tensor:
    with torch.no_grad():
        return head.score(text, video)


# --------------------------------------------------------------------------- the head: shapes, masks, errors
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_declared_capabilities(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    s = scores(head, text, video)
    assert s.shape == (T, V) and torch.isfinite(s).all()
    with torch.no_grad():
        logits = head.itm_logits(text, video.index(slice(0, T)))
        pairs = head.match_scores(text, video.index(slice(0, T)))
    assert logits.shape == (T, 2) and pairs.shape == (T,)
    assert torch.equal(pairs, logits[:, 1] - logits[:, 0])  # the matching score is the log-odds
    assert torch.allclose(pairs, s[torch.arange(T), torch.arange(T)], atol=1e-5)
    assert not head.uses_logit_scale and not head.is_dual_encoder and not head.has_frame_weights


@pytest.mark.parametrize("name", NAMES)
def test_padded_words_frames_and_patches_never_change_a_score(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    before = scores(head, text, video)
    words, frames, patches = text.words.clone(), video.frames.clone(), video.patches.clone()
    words[~text.word_mask] = float("nan")
    frames[~video.mask] = float("nan")
    patches[~video.mask] = float("nan")
    junk_text, junk_video = TextInput(text.sentence, words, text.word_mask), VideoInput(frames, video.mask, patches)
    assert torch.allclose(scores(head, junk_text, junk_video), before, atol=1e-5)
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
    # the feature cache's float16 word and patch tokens are read in the frames' precision
    half_text = TextInput(text.sentence, text.words.half(), text.word_mask)
    half_video = VideoInput(video.frames, video.mask, video.patches.half())
    ref = scores(head, TextInput(text.sentence, text.words.half().float(), text.word_mask),
                 VideoInput(video.frames, video.mask, video.patches.half().float()))  # fmt: skip
    assert torch.equal(scores(head, half_text, half_video), ref)


def test_without_words_the_sentence_is_the_only_token(heads, inputs):
    head, (text, video) = heads["crosstvr"], inputs
    alone = TextInput(text.sentence)
    as_word = TextInput(text.sentence, text.sentence[:, None], torch.ones(T, 1, dtype=torch.bool))
    assert torch.equal(scores(head, alone, video), scores(head, as_word, video))


def test_missing_patches_and_empty_videos_are_clear_errors(heads, inputs):
    head, (text, video) = heads["crosstvr"], inputs
    with pytest.raises(ValueError, match=r"S\.videos\(split, with_patches=True\)"):
        head.score(text, VideoInput(video.frames, video.mask))
    empty = video.mask.clone()
    empty[0] = False
    with pytest.raises(ValueError, match="no valid frame"):
        head.score(text, VideoInput(video.frames, empty, video.patches))


def test_batched_match_scores_equal_one_pair_at_a_time(heads, inputs):
    """match_scores batches pairs (what re-ranking uses); score_pairs runs one pair per pass, bit for bit score's
    1 x 1; they agree up to float rounding, whatever else is in the batch (trailing word padding is cut per batch)."""
    head, (text, video) = heads["crosstvr"], inputs
    v = video.index(torch.tensor([5, 4, 1, 2, 0]))
    with torch.no_grad():
        batched = head.match_scores(text, v)
        alone = head.score_pairs(text, v)
        one_by_one = torch.stack(
            [head.score(text.index(slice(i, i + 1)), v.index(slice(i, i + 1)))[0, 0] for i in range(T)]
        )
        short = head.match_scores(text.index(torch.tensor([1, 2])), v.index(torch.tensor([1, 2])))
    assert torch.equal(alone, one_by_one)
    assert torch.allclose(batched, alone, atol=1e-5) and torch.allclose(short, alone[1:3], atol=1e-5)


# --------------------------------------------------------------------------- variants (Tables 6 and 9)
def test_shared_parameters_are_one_set_of_weights():
    shared, unshared = build("crosstvr", move=False), build("crosstvr-unshared", move=False)
    assert shared.parameters_shared and shared.temporal_module is shared.spatial_module
    assert not unshared.parameters_shared and unshared.temporal_module is not unshared.spatial_module
    block = sum(p.numel() for p in shared.spatial_module.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731  (parameters() lists a tensor once)
    assert count(unshared) == count(shared) + block
    ptrs = lambda m: {p.data_ptr() for p in m.parameters()}  # noqa: E731
    assert ptrs(shared.spatial_module) == ptrs(shared.temporal_module)
    assert not ptrs(unshared.spatial_module) & ptrs(unshared.temporal_module)
    # the tie is real: one gradient step on the shared head moves "both" modules, which are one
    with torch.no_grad():
        shared.spatial_module.layers[0].ffn[0].weight.add_(1.0)
    assert torch.equal(shared.temporal_module.layers[0].ffn[0].weight, shared.spatial_module.layers[0].ffn[0].weight)


def test_unshared_starts_as_a_copy_and_differs_only_after_training(inputs):
    text, video = inputs
    shared, unshared = build("crosstvr", move=False), build("crosstvr-unshared", move=False)
    assert shared.state_dict().keys() == unshared.state_dict().keys()  # weights move between them
    assert torch.equal(scores(shared, text, video), scores(unshared, text, video))  # same weights, same scores
    # one identical training step: the unshared head's spatial and temporal weights drift apart
    labels = torch.tensor([1, 0, 1, 0, 1])
    for head in (shared, unshared):
        opt = torch.optim.SGD(head.parameters(), lr=0.5)
        head.train()
        matching_loss(head, text, video.index(slice(0, T)), labels).backward()
        opt.step()
        head.eval()
    w = lambda m: m.layers[0].cross_attention.q.weight  # noqa: E731
    assert not torch.equal(w(unshared.spatial_module), w(unshared.temporal_module))
    assert torch.equal(w(shared.spatial_module), w(shared.temporal_module))
    assert not torch.allclose(scores(shared, text, video), scores(unshared, text, video))


def test_variants_build_only_the_modules_they_use(heads):
    full, spatial, temporal = heads["crosstvr"], heads["crosstvr-spatial"], heads["crosstvr-temporal"]
    assert spatial.spatial and not spatial.temporal
    assert spatial.temporal_module is None and spatial.selector is None and spatial.frame_positions is None
    assert temporal.temporal and not temporal.spatial and temporal.spatial_module is None
    assert isinstance(temporal.temporal_module, QueryTransformer) and temporal.selector is not None
    keys = set(full.state_dict())
    assert set(spatial.state_dict()) < keys
    assert set(temporal.state_dict()) == {k for k in keys if not k.startswith("spatial_module.")}
    with pytest.raises(ValueError, match="at least one"):
        HEADS.build("crosstvr", dim=D, spatial=False, temporal=False)


def test_spatial_only_ignores_frame_order_and_temporal_reads_only_the_selected_tokens(heads, inputs):
    text, video = inputs
    # crosstvr-spatial: a mean over the frames' spatial passes, no frame position: the frame order does not matter
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    shuffled = VideoInput(video.frames[:, perm], video.mask[:, perm], video.patches[:, perm])
    spatial = heads["crosstvr-spatial"]
    assert torch.allclose(scores(spatial, text, shuffled), scores(spatial, text, video), atol=1e-5)
    assert not torch.allclose(scores(heads["crosstvr"], text, shuffled), scores(heads["crosstvr"], text, video))
    # crosstvr-temporal with M = 2 of 1 + P = 4 tokens: in a frame whose top 2 stay the same, the other tokens'
    # values never change a score (the selection is per frame, so frames are independent)
    head = build("crosstvr-temporal", select=2)
    with torch.no_grad():
        kept = head.selected_indices(video)  # [V, F, 2]
        dropped = torch.ones(V, F_, 1 + P, dtype=torch.bool).scatter(2, kept, False)[:, :, 1:]  # patches not kept
        noise = torch.randn(V, F_, P, D, generator=torch.Generator().manual_seed(9))
        trial = VideoInput(video.frames, video.mask, torch.where(dropped[..., None], noise, video.patches))
        same = (head.selected_indices(trial) == kept).all(-1) & video.mask  # frames whose selection did not move
        changed = dropped & same[..., None]
        other = VideoInput(video.frames, video.mask, torch.where(changed[..., None], noise, video.patches))
    assert int(changed.sum()) >= 10 and torch.equal(head.selected_indices(other), kept)
    assert torch.equal(scores(head, text, other), scores(head, text, video))
    patches = video.patches.clone()
    patches[~dropped] += torch.randn(int((~dropped).sum()), D)  # the kept patches do matter
    assert not torch.allclose(
        scores(head, text, VideoInput(video.frames, video.mask, patches)), scores(head, text, video)
    )


def test_token_selector_keeps_the_top_m_per_frame(inputs):
    _, video = inputs
    head = build("crosstvr", select=2)
    with torch.no_grad():
        tokens = head.visual_tokens(video)  # [V, F, 1 + P, D]
        logits, soft = head.selector(tokens)
        kept, indicator = head._select(tokens)
    assert torch.allclose(soft.sum(-1), torch.ones(V, F_))  # a softmax over each frame's tokens
    top = logits.topk(2, dim=-1).indices.sort(-1).values
    assert torch.equal(head.selected_indices(video), top)
    assert torch.equal(kept, tokens.gather(2, top[..., None].expand(V, F_, 2, D)))  # exactly those tokens, in order
    assert torch.equal(indicator.argmax(-1), top)
    # M >= 1 + P: every token, unchanged and in order (the identity)
    for m in (1 + P, 10):
        head = build("crosstvr", select=m)
        with torch.no_grad():
            tokens = head.visual_tokens(video)
            assert torch.equal(head._select(tokens)[0], tokens)


@pytest.mark.parametrize("selection", ["straight-through", "perturbed"])
def test_the_selector_learns_and_evaluation_is_the_hard_top_m(selection, inputs):
    text, video = inputs
    head = build("crosstvr", select=2, selection=selection).train()
    tokens = head.visual_tokens(video)
    kept_train, _ = head._select(tokens)
    with torch.no_grad():
        kept_eval, _ = head.eval()._select(tokens)
    if selection == "straight-through":  # the forward pass is the hard selection in training too
        assert torch.equal(kept_train.detach(), kept_eval)
    head.train()
    torch.manual_seed(0)
    matching_loss(head, text, video.index(slice(0, T)), torch.tensor([1, 0, 1, 0, 1])).backward()
    grads = [p.grad for p in head.selector.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


def test_spatial_attention_weights(heads, inputs):
    text, video = inputs
    pairs = video.index(slice(0, T))
    with torch.no_grad():
        w = heads["crosstvr"].spatial_attention(text, pairs)
    assert w.shape == (T, F_, 3, 1 + P)
    valid = pairs.mask
    assert torch.allclose(w[valid].sum(-1), torch.ones(int(valid.sum()), 3), atol=1e-6)
    assert torch.all(w[~valid] == 0)
    with pytest.raises(ValueError, match="no spatial pass"):
        heads["crosstvr-temporal"].spatial_attention(text, pairs)


# --------------------------------------------------------------------------- shortlist and re-ranking
def zero_head(head: CrossTVR) -> CrossTVR:
    with torch.no_grad():
        head.itm_head.weight.zero_()
        head.itm_head.bias.zero_()
    return head


def test_shortlist_is_the_stable_top_k():
    s = torch.tensor([[0.1, 0.5, 0.5, 0.3], [0.9, 0.2, 0.4, 0.8]])
    assert torch.equal(shortlist(s, 2), torch.tensor([[1, 2], [0, 3]]))  # a tie: the lower index first
    assert shortlist(s, 10).shape == (2, 4) and shortlist(s, 0).shape == (2, 0)


def test_top_k_equal_to_the_gallery_with_a_zero_head_reproduces_stage_1(inputs):
    text, video = inputs
    s1 = torch.randn(T, V, generator=torch.Generator().manual_seed(3))
    out = rerank(s1, zero_head(build("crosstvr")), text, video, k=V)
    assert out.dtype == torch.float64 and torch.equal(out, s1.double())
    gold = np.array([0, 3, 6, 2, 1])
    assert np.array_equal(M.ranks_t2v(out, gold), M.ranks_t2v(s1, gold))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_re_ranking_keeps_the_rest_in_stage_1_order(k, heads, inputs):
    text, video = inputs
    s1 = torch.randn(T, V, generator=torch.Generator().manual_seed(k))
    rec = rerank_top_k(s1, heads["crosstvr"], text, video, k)
    out, top = rec.scores, rec.shortlist
    inside = torch.zeros(T, V, dtype=torch.bool).scatter(1, top, True)
    assert torch.equal(out[~inside], s1.double()[~inside])  # the rest keep their stage-1 scores, bit for bit
    assert torch.all(
        out.masked_fill(~inside, float("inf")).amin(1) >= out.masked_fill(inside, -np.inf).amax(1) + LIFT_GAP
    )
    # inside the shortlist: the order of stage 1 + matching score
    combined = s1.double().gather(1, top) + rec.matching.double()
    assert torch.equal(out.gather(1, top).argsort(1), combined.argsort(1))
    # a gold video outside the shortlist keeps its stage-1 rank
    for gold in range(V):
        g = np.full(T, gold)
        outside = ~inside[:, gold].numpy()
        assert np.array_equal(M.ranks_t2v(out, g)[outside], M.ranks_t2v(s1, g)[outside])


def test_k_1_never_changes_r_at_1(heads, inputs):
    text, video = inputs
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        s1 = torch.randn(T, V, generator=gen)  # continuous scores: no ties
        gold = torch.randint(0, V, (T,), generator=gen).numpy()
        out = rerank(s1, heads["crosstvr"], text, video, k=1)
        assert np.array_equal(M.ranks_t2v(out, gold) == 1, M.ranks_t2v(s1, gold) == 1)


def test_a_smaller_k_from_the_kept_record_equals_a_fresh_re_ranking(heads, inputs):
    text, video = inputs
    s1 = torch.randn(T, V, generator=torch.Generator().manual_seed(5))
    big = rerank_top_k(s1, heads["crosstvr"], text, video, 5)
    for k in (0, 2, 4):
        fresh = rerank_top_k(s1, heads["crosstvr"], text, video, k)
        assert torch.allclose(big.at(k).scores, fresh.scores, atol=1e-5)
        assert torch.equal(big.at(k).shortlist, fresh.shortlist)
    # one caption per batch (a tiny memory budget): the same scores
    tiny = rerank_top_k(s1, heads["crosstvr"], text, video, 5, max_bytes=1)
    assert torch.allclose(tiny.scores, big.scores, atol=1e-5)
    prob = big.at(weight=0.5, matching_kind="probability")
    expected = combine(s1, big.shortlist, big.matching, weight=0.5, matching_kind="probability")
    assert torch.equal(prob.scores, expected)


def test_any_head_with_score_pairs_can_re_rank(inputs):
    text, video = inputs
    torch.manual_seed(0)
    tight = HEADS.build("tightTransf", dim=D, layers=1).eval()
    s1 = torch.randn(T, V, generator=torch.Generator().manual_seed(1))
    rec = rerank_top_k(s1, tight, text, video, 3)
    with torch.no_grad():
        full = tight.score(text, video)
    assert torch.allclose(rec.matching.double(), full.gather(1, rec.shortlist).double(), atol=1e-5)


# --------------------------------------------------------------------------- hard negatives
def test_hard_negatives_never_share_the_positives_video():
    rng = np.random.default_rng(0)
    vids = np.array([0, 0, 1, 2, 2, 2, 3, 4])  # a batch holding two and three captions of one video
    B = len(vids)
    for _ in range(200):
        sim = rng.normal(size=(B, B)) * 5
        sim[np.arange(B), np.arange(B)] += 10  # own-video scores are the highest: the tempting mistake
        sim[0, 1] = sim[3, 4] = 50  # another caption's column of the same video scores best of all
        neg = hard_negatives(sim, np.arange(B), rng, video_ids=vids, temperature=0.5)
        assert np.all(neg.video >= 0) and np.all(neg.text >= 0)
        assert np.all(vids[neg.video] != vids)  # the negative video shows another video
        assert np.all(vids[neg.text] != vids)  # the negative caption is not a caption of the positive's video
    # a batch of one video has no negative at all
    none = hard_negatives(np.zeros((3, 3)), np.arange(3), rng, video_ids=np.zeros(3, dtype=int))
    assert np.all(none.video == -1) and np.all(none.text == -1)


def test_hard_negatives_follow_the_stage_1_distribution():
    rng = np.random.default_rng(1)
    sim = np.array([[0.0, 0.02, 0.0, 0.01]])  # caption 0 of video 0 against 4 videos
    draws = np.array([hard_negatives(sim, [0], rng, temperature=0.01).video[0] for _ in range(3000)])
    p = np.exp([0.02 / 0.01, 0.0, 0.01 / 0.01])
    p /= p.sum()  # softmax(s / temperature) over videos 1..3
    freq = np.bincount(draws, minlength=4)[1:] / len(draws)
    assert np.bincount(draws, minlength=4)[0] == 0 and np.allclose(freq, p, atol=0.03)


def test_hard_negatives_at_an_infinite_temperature_are_uniform_random_negatives():
    rng = np.random.default_rng(2)
    sim = np.array([[0.0, 0.9, -0.9, 0.1]])  # at 0.01, video 1 would be drawn almost always
    draws = np.array([hard_negatives(sim, [0], rng, temperature=float("inf")).video[0] for _ in range(3000)])
    counts = np.bincount(draws, minlength=4)
    assert counts[0] == 0 and np.allclose(counts[1:] / len(draws), 1 / 3, atol=0.03)


# --------------------------------------------------------------------------- dual softmax
def test_dual_softmax_is_a_hand_computation_and_transductive():
    s = torch.tensor([[0.3, 0.1, 0.2], [0.1, 0.4, 0.0], [0.2, 0.2, 0.5]], dtype=torch.float64)
    e = torch.exp(s / 0.1)
    expected = s * e / e.sum(0, keepdim=True)  # softmax over the captions (column-wise), then times s
    assert torch.allclose(dual_softmax(s, temperature=0.1), expected)
    assert float(dual_softmax(s, 0.1)[0, 0]) == pytest.approx(0.3 * np.exp(3) / (np.exp(3) + np.exp(1) + np.exp(2)))
    assert dual_softmax.transductive is True and "Transductive" in dual_softmax.__doc__
    # transductive: caption 0's scores change when another test caption changes
    other = s.clone()
    other[2, 0] = 0.9
    assert not torch.allclose(dual_softmax(other, 0.1)[0], dual_softmax(s, 0.1)[0])


# --------------------------------------------------------------------------- training
def toy(n: int = 8, captions: int = 2, frames: int = 2, seed: int = 0) -> FeatureSource:
    """Caption i names a concept; its video shows that concept in patch 0 of every frame: separable by matching."""
    g = torch.Generator().manual_seed(seed)
    concepts = torch.nn.functional.normalize(torch.randn(n, D, generator=g), dim=-1) * 4
    t2v = np.repeat(np.arange(n), captions)
    words = torch.randn(len(t2v), 4, D, generator=g) * 0.1
    words[:, 0] = concepts[t2v]
    mask = torch.ones(len(t2v), 4, dtype=torch.bool)
    mask[::2, 3] = False
    patches = torch.randn(n, frames, P, D, generator=g) * 0.1
    patches[:, :, 0] = concepts[:, None]
    videos = VideoInput(torch.randn(n, frames, D, generator=g) * 0.1, torch.ones(n, frames, dtype=torch.bool), patches)
    return FeatureSource(TextInput(concepts[t2v].clone(), words, mask), videos, t2v)


def test_training_reduces_the_matching_loss_on_a_separable_toy():
    src = toy(captions=1)
    torch.manual_seed(0)
    head = HEADS.build("crosstvr", dim=D, queries=4, layers=1)
    n = len(src)
    neg = hard_negatives(torch.zeros(n, n), np.arange(n), np.random.default_rng(0))
    t_idx = np.concatenate([np.arange(n), np.arange(n), neg.text])
    v_idx = np.concatenate([np.arange(n), neg.video, np.arange(n)])
    texts, videos = src.texts.index(torch.as_tensor(t_idx)), src.videos.index(torch.as_tensor(v_idx))
    labels = torch.cat([torch.ones(n), torch.zeros(2 * n)]).long()
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.0)
    with torch.no_grad():
        first = float(matching_loss(head.eval(), texts, videos, labels))
    head.train()
    for _ in range(40):
        opt.zero_grad()
        matching_loss(head, texts, videos, labels).backward()
        opt.step()
    with torch.no_grad():
        last = float(matching_loss(head.eval(), texts, videos, labels))
    assert last < 0.25 * first and last < 0.2


def test_training_never_changes_stage_1_or_the_cached_features():
    src = toy()
    torch.manual_seed(0)
    stage1 = perturb(HEADS.build("seqTransf", dim=D, layers=1)).train()  # a frozen stage 1 with parameters
    before_head = {k: v.clone() for k, v in stage1.state_dict().items()}
    before = [t.clone() for t in (src.texts.sentence, src.texts.words, src.videos.frames, src.videos.patches)]
    torch.manual_seed(0)
    head = HEADS.build("crosstvr", dim=D, queries=2, layers=1)
    start = {k: v.clone() for k, v in head.state_dict().items()}
    res = train_reranker(head, stage1, src, src, RerankConfig(epochs=2, batch_size=8, lr=1e-3, k=3), seed=0)
    assert all(torch.equal(v, before_head[k]) for k, v in stage1.state_dict().items())
    assert all(m.training for m in stage1.modules())  # its train/eval modes are restored
    now = (src.texts.sentence, src.texts.words, src.videos.frames, src.videos.patches)
    assert all(torch.equal(a, b) for a, b in zip(now, before))
    assert any(not torch.equal(v, start[k]) for k, v in res.reranker.state_dict().items())  # the re-ranker learned
    assert list(res.history["epoch"]) == [1, 2] and res.epochs_run == 2 and not res.reranker.training
    assert {"train_loss", "val_R1", "val_MnR", "lr"} <= set(res.history.columns)


def test_training_with_precomputed_scores_is_deterministic_and_stops_early():
    src = toy()
    s1 = torch.randn(len(src), len(src.videos), generator=torch.Generator().manual_seed(0))
    cfg = RerankConfig(epochs=4, batch_size=8, lr=1e-3, k=3, patience=1, min_delta=100.0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        head = HEADS.build("crosstvr", dim=D, queries=2, layers=1)
        runs.append(train_reranker(head, (s1, s1), src, src, cfg, seed=3))
    a, b = runs
    assert a.stopped_early and a.epochs_run == 2 and a.best_epoch in (1, 2)  # no improvement > 100 points: stop
    assert a.history["train_loss"].equals(b.history["train_loss"])
    assert all(torch.equal(x, y) for x, y in zip(a.reranker.state_dict().values(), b.reranker.state_dict().values()))
    with pytest.raises(ValueError, match="train stage-1 scores"):
        train_reranker(head, (s1[:3], s1), src, src, cfg)


# --------------------------------------------------------------------------- per-seed runs for the notebooks
def test_rerank_runs_pair_with_the_stage_1_runs():
    src = toy()
    protocol = Protocol(max_epochs=1, patience=None, seeds=(0, 1), batch_size=4, lr=1e-3, logit_scale=2.0)
    q = np.asarray(src.query_index)
    gold = src.text_to_video[q]
    base = HeadRuns("seqTransf", "seqTransf", protocol)
    for seed in protocol.seeds:
        torch.manual_seed(seed)
        head = perturb(HEADS.build("seqTransf", dim=D, layers=1), seed=seed)
        ranks = M.ranks_t2v(score_all(head, src.texts, src.videos, chunk=256), gold)
        base.runs.append(SeedRun("seqTransf", "seqTransf", seed, M.summarize(ranks), ranks, gold, 1, 1, False, 0.0,
                                 0.0, trained=head))  # fmt: skip
    alone = rerank_runs(base, None, src, k=0)  # stage 1 alone: the same ranks as the stage-1 runs
    assert all(np.array_equal(a.ranks, b.ranks) for a, b in zip(alone.runs, base.runs))
    cfg = RerankConfig(epochs=1, batch_size=8, lr=1e-3, k=3)
    trained = train_rerankers(
        base, "crosstvr-spatial", src, src, config=cfg, reranker_kwargs={"queries": 2, "layers": 1}
    )
    assert set(trained) == {0, 1} and all(t.name == "crosstvr-spatial" for t in trained.values())
    two = rerank_runs(base, trained, src, k=4)
    assert two.head == "seqTransf+crosstvr-spatial" and two.seeds == base.seeds
    for r, b in zip(two.runs, base.runs):  # a gold outside the top 4 keeps its stage-1 rank
        assert np.array_equal(r.ranks[b.ranks > 4], b.ranks[b.ranks > 4])
        assert r.evaluation.k == 4 and r.trained is trained[r.seed].reranker
    d = paired_difference(two, base, "R1", n_boot=20)
    assert d["seeds"] == 2 and d["n"] == len(q)
    at2 = runs_at(two, k=2)
    assert at2.label.endswith("K=2") and all(r.evaluation.k == 2 for r in at2.runs)
    at0 = runs_at(two, k=0)
    assert all(np.array_equal(a.ranks, b.ranks) for a, b in zip(at0.runs, base.runs))
    dsl = rerank_runs(base, None, src, k=0, dsl_temperature=0.01)
    assert dsl.head == "seqTransf+DSL"
    # a budget of queries: the same ranks as the whole run's for those queries, paired with subset_runs of stage 1
    pick = np.arange(len(q))[::2]
    part = rerank_runs(base, trained, src, k=4, queries=pick)
    assert all(np.array_equal(p.ranks, w.ranks[pick]) for p, w in zip(part.runs, two.runs))
    assert paired_difference(part, subset_runs(base, pick), "R1", n_boot=20)["n"] == len(pick)
    dsl_part = rerank_runs(base, None, src, k=0, dsl_temperature=0.01, queries=pick)  # DSL still sees every query
    assert all(np.array_equal(p.ranks, w.ranks[pick]) for p, w in zip(dsl_part.runs, dsl.runs))
    with pytest.raises(ValueError, match="queries must select"):
        rerank_runs(base, trained, src, k=4, queries=np.array([len(q)]))


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_spatial_pass_equals_one_copy_of_the_caption_per_frame(layers):
    """forward_per_memory (the spatial pass, frame-independent work done once) equals forward on per-frame copies."""
    torch.manual_seed(layers)
    block = QueryTransformer(D, layers, heads=2).eval()
    n, f, nq, m = 3, 4, 2, 5
    x = torch.randn(n, nq + L, D)
    x_mask = torch.ones(n, nq + L, dtype=torch.bool)
    x_mask[1, nq + 3 :] = False  # a shorter caption
    memory, memory_mask = torch.randn(n, f, m, D), torch.rand(n, f, m) > 0.2
    memory_mask[..., 0] = True
    with torch.no_grad():
        fast, w_fast = block.forward_per_memory(x, x_mask, nq, memory, memory_mask, weights=True)
        rep = lambda a: a.repeat_interleave(f, 0)  # noqa: E731
        ref, w_ref = block(rep(x), rep(x_mask), nq, memory.reshape(n * f, m, D), memory_mask.reshape(n * f, m), True)
    assert fast.shape == (n, f, nq, D) and w_fast.shape == (n * f, nq, m)
    torch.testing.assert_close(fast, ref[:, :nq].reshape(n, f, nq, D), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_fast, w_ref, atol=1e-6, rtol=1e-5)


def test_dual_softmax_scores_rank_with_exact_ties():
    """DSL's revised scores are tiny where another caption wins a video: ranked exactly, not within 1e-5."""
    g = torch.Generator().manual_seed(0)
    sim = 0.3 + 0.1 * torch.randn(50, 50, generator=g)
    revised = dual_softmax(sim, 0.01)
    gold = np.arange(50)
    exact = M.ranks_t2v(revised, gold, tie_tolerance=0.0)
    assert (revised.abs() < 1e-5).float().mean() > 0.5  # most of a row would tie under the absolute tolerance
    assert not np.array_equal(exact, M.ranks_t2v(revised, gold))
    assert np.array_equal(exact, M.ranks_t2v(revised.double().argsort(1).argsort(1).double(), gold, tie_tolerance=0.0))


def test_rerank_batches_captions_by_length_and_puts_every_score_back_in_its_row():
    """Captions of different lengths, re-ranked one per batch or all together: the same matching scores per row,
    equal to scoring each caption's shortlist alone."""
    src = toy(n=6, captions=2)
    mask = src.texts.word_mask.clone()
    mask[1, 1:] = False  # lengths 1..4, out of order
    mask[4, 2:] = False
    texts = TextInput(src.texts.sentence, src.texts.words, mask)
    torch.manual_seed(0)
    head = perturb(HEADS.build("crosstvr", dim=D, queries=2, layers=1), seed=1).eval()
    s1 = torch.randn(len(texts), len(src.videos), generator=torch.Generator().manual_seed(2))
    one = rerank_top_k(s1, head, texts, src.videos, 3, max_bytes=1)  # one caption per batch
    many = rerank_top_k(s1, head, texts, src.videos, 3, max_bytes=2**30)
    torch.testing.assert_close(one.matching, many.matching, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        for i in range(len(texts)):
            alone = head.match_scores(texts.index(torch.tensor([i] * 3)), src.videos.index(one.shortlist[i]))
            torch.testing.assert_close(one.matching[i], alone.float(), atol=1e-5, rtol=1e-5)


def test_validation_queries_are_spread_over_the_split():
    from tvrlib.reranking import validation_queries

    assert np.array_equal(validation_queries(10, None), np.arange(10))
    assert np.array_equal(validation_queries(10, 50), np.arange(10))
    pos = validation_queries(750, 150)
    assert len(pos) == 150 and pos[0] == 0 and pos[-1] == 749 and np.all(np.diff(pos) > 0)
    with pytest.raises(ValueError, match="val_queries"):
        validation_queries(10, 0)
