"""ETVA (issue 11, seed 002): multi-expert video encoder, MEE global alignment, NetVLAD fine-grained alignment with
centres shared by the two modalities, and the variants of Tables 4-5; small random tensors with explicit masks."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F
from helpers import masked_token_inputs, perturb
from torch import nn

from tvrlib.errors import TVRError, WeightsNotFoundError
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.etva import (
    EfficientTextVideoAligner,
    NetVLAD,
    albert_text_features,
    frame_differences,
    shared_centre_vlad,
)
from tvrlib.heads.scoring import EncodedInteractionHead

D, F_, T, V, L, P, K, G = 16, 6, 5, 7, 8, 3, 4, 1
NAMES = ["etva", "etva-global", "etva-fine", "etva-text-vlad", "etva-text-centres", "etva-separate"]
#: what each test config builds: a registered name and extra arguments
CONFIGS = {n: (n, {}) for n in NAMES} | {"etva[frames+patches]": ("etva", {"vlad_tokens": "frames+patches"})}
#: parameters a variant never uses (it keeps them, so weights move between variants)
UNUSED = {
    "etva-global": ("text_vlad.", "video_vlad."),
    "etva-fine": ("text_units.", "video_units.", "expert_gate."),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, **kw) -> EfficientTextVideoAligner:
    torch.manual_seed(0)
    return perturb(HEADS.build(name, **{"dim": D, "clusters": K, "ghost_clusters": G, **kw}))


def build_config(key: str) -> EfficientTextVideoAligner:
    name, kw = CONFIGS[key]
    return build(name, **kw)


@pytest.fixture(scope="module")
def heads():
    return {key: build_config(key) for key in CONFIGS}


@pytest.fixture(scope="module")
def inputs():
    return masked_token_inputs(T, V, L, F_, P, D)


def scores(head, text, video) -> torch.Tensor:
    with torch.no_grad():
        return head.score(text, video)


def with_nan_padding(text: TextInput, video: VideoInput) -> tuple[TextInput, VideoInput]:
    words, frames, patches = text.words.clone(), video.frames.clone(), video.patches.clone()
    words[~text.word_mask] = float("nan")
    frames[~video.mask] = float("nan")
    patches[~video.mask] = float("nan")
    return TextInput(text.sentence, words, text.word_mask), VideoInput(frames, video.mask, patches)


def direct_vlad(vlad: NetVLAD, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """NetVLAD sample by sample over the valid tokens only: softmax over K + G, ghosts dropped, intra-norm, L2."""
    out = []
    for x, m in zip(tokens, mask):
        x = x[m]
        a = torch.softmax(x @ vlad.assignment.weight.T + vlad.assignment.bias, -1)[:, : vlad.clusters]
        blocks = torch.stack([(a[:, k, None] * (x - vlad.centres[k])).sum(0) for k in range(vlad.clusters)])
        out.append(F.normalize(F.normalize(blocks, dim=-1).flatten(), dim=0))
    return torch.stack(out)


# --------------------------------------------------------------------------- every variant: shapes, masks, chunks
@pytest.mark.parametrize("key", CONFIGS)
def test_shapes_and_registry(key, heads, inputs):
    head, (text, video) = heads[key], inputs
    s = scores(head, text, video)
    assert s.shape == (T, V) and torch.isfinite(s).all() and s.abs().max() <= 1 + 1e-5  # cosine-like
    assert isinstance(head, EncodedInteractionHead) and head.block_by_memory
    assert head.uses_logit_scale and not head.has_frame_weights and not head.is_dual_encoder


@pytest.mark.parametrize("key", CONFIGS)
def test_padded_tokens_get_no_assignment_and_change_nothing(key, heads, inputs):
    head, (text, video) = heads[key], inputs
    before = scores(head, text, video)
    junk_text, junk_video = with_nan_padding(text, video)
    with torch.no_grad():
        words, frames = head.cluster_assignments(junk_text, junk_video)
    assert torch.all(words[~text.word_mask] == 0) and torch.all(frames[~video.mask] == 0)  # exactly 0
    assert torch.isfinite(words).all() and torch.isfinite(frames).all()
    torch.testing.assert_close(scores(head, junk_text, junk_video), before, atol=1e-6, rtol=0)
    torch.testing.assert_close(score_all(head, junk_text, junk_video, max_bytes=200), before, atol=1e-6, rtol=0)
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
    torch.testing.assert_close(scores(head, longer_text, longer_video), before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("key", CONFIGS)
def test_chunked_scoring_equals_one_shot(key, heads, inputs):
    head, (text, video) = heads[key], inputs
    full = scores(head, text, video)
    assert torch.equal(score_all(head, text, video), full)  # one block: the same operations
    for max_bytes in (1, 3 * head.pair_bytes(F_, D)):  # one pair per block; three pairs per block
        torch.testing.assert_close(score_all(head, text, video, max_bytes=max_bytes), full, atol=1e-6, rtol=0)
    for chunk in (2, 3):
        torch.testing.assert_close(score_all(head, text, video, chunk=chunk), full, atol=1e-6, rtol=0)
    n = min(T, V)
    with torch.no_grad():
        pairs = head.score_pairs(text.index(slice(0, n)), video.index(slice(0, n)))
    torch.testing.assert_close(pairs, full.diagonal()[:n], atol=1e-6, rtol=0)


def test_pair_bytes_is_small_and_has_no_token_axis(heads):
    head = heads["etva"]
    assert head.pair_bytes(12, 512) == head.pair_bytes(64, 512) == head.pair_bytes(12, 16) == 4 * 6


@pytest.mark.parametrize("key", CONFIGS)
def test_float16_words_and_patches_score_like_their_float32_copies(key, heads, inputs):
    head, (text, video) = heads[key], inputs
    half_text = TextInput(text.sentence, text.words.half(), text.word_mask)
    half_video = VideoInput(video.frames, video.mask, video.patches.half())
    copy_text = TextInput(text.sentence, text.words.half().float(), text.word_mask)
    copy_video = VideoInput(video.frames, video.mask, video.patches.half().float())
    expected = scores(head, copy_text, copy_video)
    torch.testing.assert_close(scores(head, half_text, half_video), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(score_all(head, half_text, half_video), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_training_reaches_the_parameters(name, inputs):
    text, video = inputs
    head = build(name)
    assert torch.equal(scores(head, text, video), scores(head, text, video))
    head.train()
    head.score(text, video).square().sum().backward()
    unused = UNUSED.get(name, ())
    for n, p in head.named_parameters():
        if n.startswith(unused):
            assert p.grad is None, n  # the variant leaves the other branch's weights alone
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
    if name != "etva-global":
        assert head.text_vlad.centres.grad.abs().sum() > 0 and head.video_vlad.centres.grad.abs().sum() > 0
    if name != "etva-fine":
        assert head.expert_gate.weight.grad.abs().sum() > 0
        assert all(u.gate.weight.grad.abs().sum() > 0 for u in [*head.text_units.values(), *head.video_units.values()])


@pytest.mark.parametrize("name", NAMES)
def test_empty_caption_and_empty_video_score_finitely(name, heads, inputs):
    text, video = inputs
    word_mask, mask = text.word_mask.clone(), video.mask.clone()
    word_mask[0] = False
    mask[0] = False
    text, video = TextInput(text.sentence, text.words, word_mask), VideoInput(video.frames, mask, video.patches)
    head = heads[name]
    s = scores(head, text, video)
    assert torch.isfinite(s).all()
    assert torch.all(s[:, 0] == 0)  # a video without a valid frame: no expert, an empty VLAD
    with torch.no_grad():
        glob, fine = head.score_parts(text, video)
    if fine is not None:
        assert torch.all(fine[0] == 0)  # a caption without a valid word has an all-zero descriptor


@pytest.mark.parametrize("name", NAMES)
def test_word_order_never_matters(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    perm = torch.randperm(L, generator=torch.Generator().manual_seed(3))
    shuffled = TextInput(text.sentence, text.words[:, perm], text.word_mask[:, perm])
    torch.testing.assert_close(scores(head, shuffled, video), scores(head, text, video), atol=1e-6, rtol=0)


def test_only_the_motion_expert_sees_the_order_of_the_frames(heads, inputs):
    text, video = inputs
    perm = torch.tensor([5, 0, 3, 1, 4, 2])
    shuffled = VideoInput(video.frames[:, perm], video.mask[:, perm], video.patches[:, perm])
    for key in ("etva", "etva-global", "etva-separate"):
        assert not torch.allclose(scores(heads[key], text, shuffled), scores(heads[key], text, video), atol=1e-4)
    # the fine-grained part (frames, or frames + patches) and the global part without motion ignore the order
    no_motion = build("etva", experts=("appearance", "detail"))
    for head, part in ((heads["etva"], 1), (heads["etva[frames+patches]"], 1), (no_motion, 0), (no_motion, 1)):
        with torch.no_grad():
            a, b = head.score_parts(text, shuffled)[part], head.score_parts(text, video)[part]
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_frame_differences_join_consecutive_valid_frames_only():
    frames = torch.randn(2, 5, D)
    mask = torch.tensor([[True, False, True, True, False], [False, True, False, False, False]])
    junk = frames.clone()
    junk[~mask] = float("nan")
    d, d_mask = frame_differences(junk, mask)
    assert torch.equal(d_mask, torch.tensor([[False, False, True, True, False], [False] * 5]))
    torch.testing.assert_close(d[0, 2], frames[0, 2] - frames[0, 0])  # the hole at 1 is skipped
    torch.testing.assert_close(d[0, 3], frames[0, 3] - frames[0, 2])
    assert torch.all(d[~d_mask] == 0) and torch.isfinite(d).all()
    # reversing a clip flips the signed mean (the net change) and keeps the absolute one
    rev, rev_mask = frame_differences(frames[:1, [3, 2, 0]], torch.ones(1, 3, dtype=torch.bool))
    fwd, _ = frame_differences(frames[:1, [0, 2, 3]], torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(rev.sum(1), -fwd.sum(1))
    torch.testing.assert_close(rev.abs().sum(1), fwd.abs().sum(1))


# --------------------------------------------------------------------------- NetVLAD and the shared centres
def test_vlad_is_intra_normalised_l2_normalised_and_matches_the_formula(inputs):
    text, _ = inputs
    torch.manual_seed(0)
    vlad = perturb(NetVLAD(D, K, G))
    tokens, mask = F.normalize(text.words, dim=-1), text.word_mask.clone()
    mask[3] = False  # an empty caption
    with torch.no_grad():
        out = vlad(tokens, mask)
        expected = direct_vlad(vlad, tokens[:3], mask[:3])
    assert out.shape == (T, K * D)
    blocks = out.view(T, K, D)
    valid = [0, 1, 2, 4]
    torch.testing.assert_close(out[valid].norm(dim=-1), torch.ones(4))  # L2-normalised
    torch.testing.assert_close(blocks[valid].norm(dim=-1), torch.full((4, K), K**-0.5))  # every cluster the same norm
    assert torch.all(out[3] == 0)  # nothing to aggregate: the zero descriptor
    torch.testing.assert_close(out[:3], expected, atol=1e-6, rtol=0)
    # the ghost cluster takes assignment mass (the real clusters' rows sum below 1) and is not in the descriptor
    with torch.no_grad():
        a = vlad.assign(tokens, mask)
    assert a.shape == (T, L, K + G)
    torch.testing.assert_close(a.sum(-1), mask.float())
    assert torch.all(a[..., :K].sum(-1)[mask] < 1)


def test_vlad_ignores_the_order_of_its_tokens(inputs):
    text, _ = inputs
    torch.manual_seed(0)
    vlad = perturb(NetVLAD(D, K, G))
    perm = torch.randperm(L, generator=torch.Generator().manual_seed(5))
    tokens = F.normalize(text.words, dim=-1)
    with torch.no_grad():
        a, b = vlad(tokens, text.word_mask), vlad(tokens[:, perm], text.word_mask[:, perm])
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_shared_centres_are_one_tensor_and_both_sides_train_it(inputs):
    text, video = inputs
    head = build("etva")
    assert head.text_vlad is head.video_vlad
    assert head.text_vlad.centres.data_ptr() == head.video_vlad.centres.data_ptr()
    state = head.state_dict()
    assert state["text_vlad.centres"].data_ptr() == state["video_vlad.centres"].data_ptr()
    assert sum(".centres" in n for n, _ in head.named_parameters()) == 1  # an optimizer sees one tensor

    r_t, r_v = torch.randn(T, K * D), torch.randn(V, K * D)
    params = [head.text_vlad.centres, head.text_vlad.assignment.weight]

    def grads(text_side: bool, video_side: bool) -> list[torch.Tensor]:
        head.zero_grad()
        loss = 0
        if text_side:
            loss = loss + (head.encode_text(text)["vlad"] * r_t).sum()
        if video_side:
            loss = loss + (head.encode_video(video)["vlad"] * r_v).sum()
        loss.backward()
        return [p.grad.clone() for p in params]

    from_text, from_video, from_both = grads(True, False), grads(False, True), grads(True, True)
    for gt, gv, gb in zip(from_text, from_video, from_both):
        assert gt.abs().sum() > 0 and gv.abs().sum() > 0  # each modality moves the one set of centres
        torch.testing.assert_close(gb, gt + gv)  # and their gradients accumulate into it


def test_shared_centre_vlad_is_one_module_for_both_sides(inputs):
    text, video = inputs
    head = build("etva")
    with torch.no_grad():
        t, v = shared_centre_vlad(head.text_vlad, text.words, text.word_mask, video.frames, video.mask)
        t2, v2 = head.vlad_descriptors(text, video)
    torch.testing.assert_close(t, t2, atol=1e-6, rtol=0)
    torch.testing.assert_close(v, v2, atol=1e-6, rtol=0)


def test_separate_centres_differ_from_shared_only_in_the_tying(inputs):
    text, video = inputs
    shared, separate = build("etva"), build("etva-separate")
    assert separate.text_vlad is not separate.video_vlad
    assert shared.state_dict().keys() == separate.state_dict().keys()
    one_vlad = sum(p.numel() for p in shared.text_vlad.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) - count(shared) == one_vlad  # the only difference: a second copy of the VLAD tensors
    separate.load_state_dict(shared.state_dict())  # both copies get the shared values
    assert torch.equal(separate.text_vlad.centres, separate.video_vlad.centres)
    assert separate.text_vlad.centres.data_ptr() != separate.video_vlad.centres.data_ptr()
    torch.testing.assert_close(scores(separate, text, video), scores(shared, text, video), atol=1e-6, rtol=0)
    # the copies are independent: a text-side loss trains the text copy only
    separate.train()
    separate.encode_text(text)["vlad"].square().sum().backward()
    assert separate.text_vlad.centres.grad.abs().sum() > 0 and separate.video_vlad.centres.grad is None
    with torch.no_grad():
        separate.video_vlad.centres.add_(0.5)
    assert not torch.allclose(scores(separate.eval(), text, video), scores(shared, text, video), atol=1e-4)


def test_text_centres_score_like_etva_but_only_the_text_trains_them(inputs):
    text, video = inputs
    shared, text_only = build("etva"), build("etva-text-centres")
    assert text_only.text_vlad is text_only.video_vlad
    text_only.load_state_dict(shared.state_dict())
    torch.testing.assert_close(scores(text_only, text, video), scores(shared, text, video), atol=1e-6, rtol=0)
    # the video side uses them with the gradient stopped (and nothing trainable comes before its VLAD)
    assert not text_only.encode_video(video)["vlad"].requires_grad
    assert build("etva").encode_video(video)["vlad"].requires_grad
    text_only.encode_text(text)["vlad"].square().sum().backward()
    assert text_only.text_vlad.centres.grad.abs().sum() > 0


# --------------------------------------------------------------------------- the two alignments, equation by equation
def geu(unit, x: torch.Tensor) -> torch.Tensor:
    y = x @ unit.fc.weight.T + unit.fc.bias
    z = y * torch.sigmoid(y @ unit.gate.weight.T + unit.gate.bias)
    return z / z.norm(dim=-1, keepdim=True)


def direct_expert_inputs(video: VideoInput, v: int) -> dict[str, torch.Tensor | None]:
    """Step 1 for one video, from its valid frames in order (None: the expert is missing)."""
    frames = F.normalize(video.frames[v][video.mask[v]], dim=-1)
    patches = F.normalize(video.patches[v][video.mask[v]], dim=-1)
    d = frames[1:] - frames[:-1]
    return {
        "appearance": F.normalize(frames.mean(0), dim=0),
        "motion": torch.cat([d.mean(0), d.abs().mean(0)]) if len(frames) > 1 else None,
        "detail": F.normalize(patches.mean(1).mean(0), dim=0),
    }


def test_global_score_is_the_renormalised_mixture_of_expert_cosines(heads, inputs):
    text, video = inputs
    head = heads["etva"]
    with torch.no_grad():
        weights = head.expert_weights(text)
        glob, _ = head.score_parts(text, video)
        sentence = F.normalize(text.sentence, dim=-1)
        for t in range(T):
            for v in range(V):
                x = direct_expert_inputs(video, v)
                present = [e for e in head.experts if x[e] is not None]
                w = torch.stack([weights[t, head.experts.index(e)] for e in present])
                cos = torch.stack(
                    [geu(head.text_units[e], sentence[t]) @ geu(head.video_units[e], x[e]) for e in present]
                )
                torch.testing.assert_close(glob[t, v], (w * cos).sum() / w.sum(), atol=1e-6, rtol=0)
    assert direct_expert_inputs(video, 2)["motion"] is None  # video 2 (one frame) was scored without motion


def test_expert_weights_sum_to_one_over_the_experts_present(heads, inputs):
    text, _ = inputs
    with torch.no_grad():
        w = heads["etva"].expert_weights(text)
        w2 = build("etva", experts=("appearance", "detail")).expert_weights(text)
    assert w.shape == (T, 3) and w2.shape == (T, 2)
    for x in (w, w2):
        assert torch.all(x > 0)
        torch.testing.assert_close(x.sum(-1), torch.ones(T))
    assert not torch.allclose(w[0], w[1])  # per caption


def test_fine_score_is_the_mean_per_cluster_cosine(heads, inputs):
    text, video = inputs
    head = heads["etva"]
    with torch.no_grad():
        _, fine = head.score_parts(text, video)
        t, v = head.vlad_descriptors(text, video)
    per_cluster = F.cosine_similarity(t.view(T, 1, K, D), v.view(1, V, K, D), dim=-1)  # [T, V, K]
    torch.testing.assert_close(fine, per_cluster.mean(-1), atol=1e-6, rtol=0)


def test_variants_differ_only_as_documented(heads, inputs):
    text, video = inputs
    base = heads["etva"]
    state = base.state_dict()
    with torch.no_grad():
        glob, fine = base.score_parts(text, video)
    full = scores(base, text, video)
    torch.testing.assert_close(full, 0.5 * glob + 0.5 * fine)  # step 8, fine_weight = 0.5
    got = {}
    for name in NAMES:
        head = build(name)
        assert head.state_dict().keys() == state.keys()
        head.load_state_dict(state)
        got[name] = scores(head, text, video)
    torch.testing.assert_close(got["etva-global"], glob, atol=1e-6, rtol=0)  # Table 4: w/o fine-grained
    torch.testing.assert_close(got["etva-fine"], fine, atol=1e-6, rtol=0)  # Table 4: w/o global
    for name in ("etva-separate", "etva-text-centres"):  # Table 5: only the tying / the training differ
        torch.testing.assert_close(got[name], full, atol=1e-6, rtol=0)
    quarter = build("etva", fine_weight=0.25)
    quarter.load_state_dict(state)
    torch.testing.assert_close(scores(quarter, text, video), 0.75 * glob + 0.25 * fine)

    # Table 5 "text" (VLAD on the text only): the global part is etva's, the video's pooled frame stands for its tokens
    text_vlad = build("etva-text-vlad")
    text_vlad.load_state_dict(state)
    with torch.no_grad():
        g2, f2 = text_vlad.score_parts(text, video)
        t_desc, _ = base.vlad_descriptors(text, video)
    torch.testing.assert_close(g2, glob, atol=1e-6, rtol=0)
    assert not torch.allclose(f2, fine, atol=1e-3)
    c = base.text_vlad.centres.detach()
    for v in range(V):
        pooled = direct_expert_inputs(video, v)["appearance"]
        blocks = F.normalize(pooled - c, dim=-1)  # (v - c_k) / ||v - c_k||: the assignment cancels
        desc = F.normalize(blocks.flatten(), dim=0)
        torch.testing.assert_close(f2[:, v], t_desc @ desc, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- figures, missing inputs, arguments
def test_cluster_assignments_for_the_figure(heads, inputs):
    text, video = inputs
    with torch.no_grad():
        words, frames = heads["etva"].cluster_assignments(text, video)
        w0, f0 = build("etva", ghost_clusters=0).cluster_assignments(text, video)
    assert words.shape == (T, L, K) and frames.shape == (V, F_, K)
    assert torch.all(words[~text.word_mask] == 0) and torch.all(frames[~video.mask] == 0)
    assert torch.all(words.sum(-1)[text.word_mask] < 1) and torch.all(words.sum(-1)[text.word_mask] > 0)  # ghost
    torch.testing.assert_close(w0.sum(-1), text.word_mask.float())  # without a ghost a valid row sums to 1
    torch.testing.assert_close(f0.sum(-1), video.mask.float())


def test_without_patches_the_detail_expert_is_a_clear_error(heads, inputs):
    text, video = inputs
    no_patches = VideoInput(video.frames, video.mask)
    for key in ("etva", "etva-global", "etva[frames+patches]"):
        with pytest.raises(ValueError, match=r"video\.patches is None.*with_patches=True.*experts=\('appearance'"):
            heads[key].score(text, no_patches)
    with pytest.raises(ValueError, match=r"\[V, F, P, D\]"):
        heads["etva"].score(text, VideoInput(video.frames, video.mask, video.patches[..., :4]))
    assert torch.isfinite(scores(heads["etva-fine"], text, no_patches)).all()  # frames-only VLAD needs no patches
    head = build("etva", experts=("appearance", "motion"))
    torch.testing.assert_close(scores(head, text, no_patches), scores(head, text, video))


def test_detail_expert_is_the_mean_of_the_unit_patches_without_a_normalised_copy(heads, inputs):
    """Issue 13: the detail expert's per-frame mean of unit patches is one weighted sum per frame; it equals the mean
    of the normalised copy the head built before (values and gradients), NaN in padded frames included."""
    head = heads["etva"]
    _, video = with_nan_padding(*inputs)
    with torch.no_grad():
        torch.testing.assert_close(head._patch_means(video), head._patches(video).mean(2), atol=1e-6, rtol=1e-5)
    _, video = inputs
    patches = video.patches.clone().requires_grad_(True)
    video = VideoInput(video.frames, video.mask, patches)
    g = torch.randn(V, F_, D, generator=torch.Generator().manual_seed(0))
    got = torch.autograd.grad((head._patch_means(video) * g).sum(), patches)[0]
    expected = torch.autograd.grad((head._patches(video).mean(2) * g).sum(), patches)[0]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_without_word_tokens_the_sentence_is_the_only_token(heads, inputs):
    text, video = inputs
    head = heads["etva"]
    one = TextInput(text.sentence, text.sentence[:, None], torch.ones(T, 1, dtype=torch.bool))
    torch.testing.assert_close(scores(head, TextInput(text.sentence), video), scores(head, one, video))
    with pytest.raises(ValueError, match="word_mask"):
        head.score(TextInput(text.sentence, text.words), video)


def test_bad_arguments_are_named():
    for kw, match in (
        ({"branches": "local"}, "branches"),
        ({"centres": "joint"}, "centres"),
        ({"video_vlad": "none"}, "video_vlad"),
        ({"vlad_tokens": "patches"}, "vlad_tokens"),
        ({"experts": ("appearance", "audio")}, "experts"),
        ({"experts": ()}, "experts"),
        ({"fine_weight": 1.5}, "fine_weight"),
    ):
        with pytest.raises(ValueError, match=match):
            EfficientTextVideoAligner(D, **kw)


# --------------------------------------------------------------------------- ALBERT (the paper's text encoder)
def test_albert_without_transformers_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` raises ImportError
    with pytest.raises(WeightsNotFoundError) as e:
        albert_text_features(["a man drives a car"])
    msg = str(e.value)
    assert isinstance(e.value, TVRError) and "`transformers` package is not installed" in msg
    for needed in ("pip install transformers", "huggingface-cli download albert-base-v2", "HF_HOME", "offline"):
        assert needed in msg, needed


def fake_transformers(load) -> types.ModuleType:
    mod = types.ModuleType("transformers")
    mod.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda name, **kw: load("tokenizer", name, kw))
    mod.AutoModel = types.SimpleNamespace(from_pretrained=lambda name, **kw: load("model", name, kw))
    return mod


def test_albert_without_cached_weights_is_a_clear_error_and_never_downloads(monkeypatch):
    calls = []

    def load(what, name, kw):
        calls.append((what, name, kw))
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load the files of {name}")

    monkeypatch.delenv("TVR_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(load))
    with pytest.raises(WeightsNotFoundError, match="not in the local Hugging Face cache") as e:
        albert_text_features(["a man drives a car"])
    assert calls and all(kw["local_files_only"] for _, _, kw in calls)
    for needed in ("huggingface-cli download albert-base-v2", "models--albert-base-v2", "text_dim=768", "offline"):
        assert needed in str(e.value), needed


def test_albert_features_feed_a_head_with_text_dim(monkeypatch, inputs):
    """The happy path with a stand-in model (the real one is not on this machine): shapes, masks, the head."""
    hidden, max_length = 12, 6

    class Tokenizer:
        def __call__(self, captions, **kw):
            n = [min(len(c.split()) + 2, kw["max_length"]) for c in captions]  # [CLS] words [SEP]
            mask = torch.tensor([[i < k for i in range(kw["max_length"])] for k in n], dtype=torch.long)
            return {"input_ids": torch.arange(mask.numel()).view(mask.shape) * mask, "attention_mask": mask}

    class Model(nn.Module):
        def forward(self, input_ids, attention_mask):
            g = torch.Generator().manual_seed(0)
            return types.SimpleNamespace(last_hidden_state=torch.randn(*input_ids.shape, hidden, generator=g))

    def load(what, name, kw):
        return Tokenizer() if what == "tokenizer" else Model()

    monkeypatch.setitem(sys.modules, "transformers", fake_transformers(load))
    captions = ["a man drives a car", "cats", "a girl is singing on a stage tonight"]
    feats = albert_text_features(captions, max_length=max_length, batch_size=2)
    assert feats.words.shape == (3, max_length, hidden) and feats.sentence.shape == (3, hidden)
    assert feats.word_mask.tolist()[1] == [True] * 3 + [False] * 3 and feats.word_mask[2].all()
    assert torch.all(feats.words[~feats.word_mask] == 0)
    torch.testing.assert_close(feats.sentence[1], feats.words[1, :3].mean(0))
    _, video = inputs
    head = build("etva", text_dim=hidden)
    s = scores(head, feats, video)
    assert s.shape == (3, V) and torch.isfinite(s).all()
