"""Text-conditioned pooling heads (notebook 05): X-Pool, cross-modal aggregation, top-K frames, and
their memory-bounded evaluation. Properties a reader cares about, on small random tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tvrlib.heads import TextInput, VideoInput, score_all
from tvrlib.heads.attention_pooling import masked_softmax
from tvrlib.heads.cross_modal_aggregation import IDENTITY_READING, CrossModalAggregation
from tvrlib.heads.gram import gram_matrices, pooled_cosine_gram, pooled_cosine_materialised, quadratic_form
from tvrlib.heads.mean_pooling import MeanPooling
from tvrlib.heads.scoring import block_shape
from tvrlib.heads.self_attention_aggregation import SelfAttentionAggregation
from tvrlib.heads.topk_frames import TopKFrames
from tvrlib.heads.xpool import XPool

D, F_, T, V = 32, 12, 9, 7


def perturb(head: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> torch.nn.Module:
    """Move every parameter away from its (identity / zero) initialisation, deterministically."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return head.eval()


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    text = TextInput(torch.randn(T, D, generator=g))
    frames = torch.randn(V, F_, D, generator=g)
    mask = torch.ones(V, F_, dtype=torch.bool)
    mask[1, 7:] = False  # a short video
    mask[4, :2] = False  # padding at the start
    mask[5, 1:] = False  # a single valid frame
    return text, VideoInput(frames, mask)


def all_interaction_heads():
    return [
        perturb(CrossModalAggregation(D)),
        perturb(CrossModalAggregation(D, **IDENTITY_READING)),
        perturb(TopKFrames(D, k=3)),
        perturb(TopKFrames(D, k=1)),
        perturb(TopKFrames(D, k=5, temporal=False)),
        perturb(XPool(D)),
        perturb(XPool(D, num_heads=4)),
    ]


@pytest.mark.parametrize("path", ["gram", "materialise"])
@pytest.mark.parametrize("head", all_interaction_heads(), ids=lambda h: type(h).__name__ + h.extra_repr())
def test_chunked_equals_unchunked(head, path, inputs):
    text, video = inputs
    with torch.no_grad():
        full = head.score_encoded(head.encode_text(text), head.encode_video(video), path)
        if path == "gram":  # the default path of every interaction head here, in eval mode
            assert torch.equal(head.score(text, video), full)
    for max_bytes in (2_000, 20_000):  # a few pairs per block; a few texts per block
        assert torch.allclose(score_all(head, text, video, max_bytes=max_bytes, path=path), full, atol=1e-6)


@pytest.mark.parametrize(
    "head",
    [perturb(CrossModalAggregation(D)), perturb(TopKFrames(D, k=4)), perturb(TopKFrames(D, k=12, temporal=True))],
    ids=["cma", "topk4", "topk12"],
)
def test_gram_path_equals_materialising_path(head, inputs):
    text, video = inputs
    gram = score_all(head, text, video, path="gram")
    mat = score_all(head, text, video, path="materialise")
    assert torch.allclose(gram, mat, atol=1e-5)
    # and the materialising path is literally "pool, then cosine"
    with torch.no_grad():
        pooled = head.pool(text, video)
    literal = torch.einsum("tvd,td->tv", F.normalize(pooled, dim=-1), F.normalize(text.sentence, dim=-1))
    assert torch.allclose(mat, literal, atol=1e-6)


@pytest.mark.parametrize("heads", [1, 2])
def test_xpool_moment_path_equals_materialising_path(heads, inputs):
    """X-Pool's LayerNorms need only means and variances: quadratic forms in the weights (no pooled vector)."""
    text, video = inputs
    mask = video.mask.clone()
    mask[6] = False  # a video with no valid frame pools to W_o's bias alone
    video = VideoInput(video.frames, mask)
    head = perturb(XPool(D, num_heads=heads))
    gram = score_all(head, text, video, path="gram", max_bytes=3_000)
    mat = score_all(head, text, video, path="materialise")
    assert torch.allclose(gram, mat, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(
            head.score(text, video), head.score_encoded(head.encode_text(text), head.encode_video(video), "gram")
        )


def test_xpool_trains_by_materialising_because_of_dropout(inputs):
    text, video = inputs
    head = perturb(XPool(D)).train()
    te, ve = head.encode_text(text), head.encode_video(video)
    assert "moments" not in ve.tensors  # no moment matrices are built for a training batch
    with pytest.raises(ValueError, match="dropout"):
        head.score_encoded(te, ve, "gram")
    torch.manual_seed(0)
    a = head.score(text, video)
    torch.manual_seed(0)
    b = head.score_encoded(te, ve, "materialise")
    assert torch.equal(a, b)


def former_xpool_moments(head: XPool, te, ve) -> torch.Tensor:
    """X-Pool's moment path as written before issue 13 (the reference): three Gram matrices, ``w' = [w, 1]``,
    ``w_o = [w' / s2, 1]``, ``w_out = [w_o / s3, 1]`` built per pair and three quadratic forms -> ``[t, v]``."""
    z = ve["value"]
    v_, h_, f_, d = z.shape
    center = lambda x: x - x.mean(-1, keepdim=True)  # noqa: E731
    residual = lambda x: x + F.linear(x, head.linear.weight)  # noqa: E731
    y = torch.cat([z.reshape(v_, h_ * f_, d), head.out_proj.bias.expand(v_, 1, d)], 1)
    c = center(y)
    p = center(residual(head.ln2.weight * c))
    r = center(residual(head.ln2.bias) + head.linear.bias)
    q = torch.cat([p, r.expand(v_, 1, d)], 1)
    k = torch.cat([head.ln3.weight * q, head.ln3.bias.expand(v_, 1, d)], 1)
    w = head.weights_encoded(te, ve)
    t_ = w.shape[0]
    one = w.new_ones(t_, v_, 1)
    w_a = torch.cat([w.reshape(t_, v_, -1), one], -1)
    s2 = (quadratic_form(w_a, gram_matrices(c)) / head.dim + head.ln2.eps).sqrt()
    w_o = torch.cat([w_a / s2[..., None], one], -1)
    s3 = (quadratic_form(w_o, gram_matrices(q)) / head.dim + head.ln3.eps).sqrt()
    w_out = torch.cat([w_o / s3[..., None], one], -1)
    dots = (te["target"] @ k.reshape(-1, head.dim).T).view(t_, v_, -1)
    norm = quadratic_form(w_out, gram_matrices(k)).clamp_min(0.0).sqrt().clamp_min(1e-12)
    return (w_out * dots).sum(-1) / (norm * te["target"].norm(dim=-1, keepdim=True).clamp_min(1e-12))


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("chunk", [None, 1])
def test_xpool_moment_path_and_its_gradients_equal_the_former_code(heads, chunk, inputs, monkeypatch):
    """The forms folded into one per-video matrix (one batched product per chunk of videos), the softmax over a
    middle axis: the scores and gradients of the former per-pair quadratic forms (padded frames, a video without a
    valid frame; ``chunk=1``: the moment arithmetic one video at a time)."""
    import tvrlib.heads.xpool as xpool_module

    if chunk is not None:
        monkeypatch.setattr(xpool_module, "MOMENT_CHUNK", chunk)
    text, video = inputs
    mask = video.mask.clone()
    mask[6] = False
    video = VideoInput(video.frames, mask)
    head = perturb(XPool(D, num_heads=heads, dropout=0.0))  # eval mode, with gradients
    te, ve = head.encode_text(text), head.encode_video(video)
    got, expected = head.score_encoded(te, ve, "gram"), former_xpool_moments(head, te, ve)
    assert got.shape == (T, V)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    g = torch.randn(got.shape, generator=torch.Generator().manual_seed(0))
    params = list(head.parameters())
    new = torch.autograd.grad((got * g).sum(), params, retain_graph=True, allow_unused=True)
    old = torch.autograd.grad((expected * g).sum(), params, allow_unused=True)
    for a, b in zip(new, old):
        if b is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # evaluation takes the in-place branches
        torch.testing.assert_close(score_all(head, text, video), expected.detach(), atol=1e-6, rtol=1e-5)


def test_gram_path_has_the_same_gradients(inputs):
    text, video = inputs
    grads = {}
    for path in ("gram", "materialise"):
        torch.manual_seed(0)  # the same random initialisation for both paths
        head = perturb(TopKFrames(D, k=4))
        head.score_encoded(head.encode_text(text), head.encode_video(video), path).sum().backward()
        grads[path] = [p.grad.clone() for p in head.parameters()]
    for a, b in zip(grads["gram"], grads["materialise"]):
        assert torch.allclose(a, b, atol=1e-4)


def test_gram_identity_on_its_own():
    g = torch.Generator().manual_seed(3)
    target, values = torch.randn(6, D, generator=g), 5 * torch.randn(4, F_, D, generator=g)
    weights = torch.softmax(torch.randn(6, 4, F_, generator=g), -1)
    assert torch.allclose(
        pooled_cosine_gram(target, weights, values), pooled_cosine_materialised(target, weights, values), atol=1e-6
    )


def test_folded_logits_are_eq_4_8(inputs):
    """(W_K^T W_Q t) . x_f, the form both paths use, equals Q_t K_f^T / sqrt(d_a) computed literally."""
    text, video = inputs
    for head in (perturb(CrossModalAggregation(D)), perturb(CrossModalAggregation(D, **IDENTITY_READING))):
        with torch.no_grad():
            folded = head.logits_encoded(head.encode_text(text), head.encode_video(video))
            literal = head.textbook_logits(text, video)
        assert torch.allclose(folded[:, video.mask.all(1)], literal[:, video.mask.all(1)], atol=1e-4)


def test_uniform_attention_is_mean_pooling(inputs):
    """The identity reading (no W_V, no FC) with uniform weights is meanP (the paper's reading: tests of its own)."""
    text, video = inputs
    head = perturb(CrossModalAggregation(D, **IDENTITY_READING))
    with torch.no_grad():
        head.query.weight.zero_()  # every logit 0 -> uniform weights over the valid frames
        w = head.frame_weights(text, video)
        expected = video.mask.float() / video.mask.sum(1, keepdim=True)
        assert torch.allclose(w, expected.expand_as(w), atol=1e-7)
        mean = MeanPooling(D).score(text, video)
        assert torch.allclose(head.score(text, video), mean, atol=1e-6)
        assert torch.allclose(score_all(head, text, video, path="materialise"), mean, atol=1e-6)
        # the Self-Att baseline's identity reading starts as mean pooling too (its learned query starts at 0)
        assert torch.allclose(SelfAttentionAggregation(D, **IDENTITY_READING).score(text, video), mean, atol=1e-6)


def test_k_equal_to_frames_is_attention_over_all_frames(inputs):
    """With K >= F, top-K is the cross-modal head (its default reading) on L2-normalised frames."""
    text, video = inputs
    full = perturb(CrossModalAggregation(D))
    unit = VideoInput(F.normalize(video.frames, dim=-1), video.mask)  # top-K L2-normalises the frames itself
    for k in (F_, F_ + 5):
        topk = TopKFrames(D, k=k, temporal=False)
        topk.load_state_dict(full.state_dict())
        topk.eval()
        with torch.no_grad():
            assert torch.allclose(topk.frame_weights(text, video), full.frame_weights(text, unit), atol=1e-6)
            assert torch.allclose(topk.score(text, video), full.score(text, unit), atol=1e-6)


def test_top_k_keeps_the_k_largest_logits(inputs):
    text, video = inputs
    head = perturb(TopKFrames(D, k=3))
    with torch.no_grad():
        te, ve = head.encode_text(text), head.encode_video(video)
        logits = head.logits_encoded(te, ve)  # eq. 4.8 before the softmax
        w = head.weights_encoded(te, ve)
    valid = video.mask.sum(1)
    nonzero = (w > 0).sum(-1)  # [T, V]
    assert torch.equal(nonzero, valid.clamp(max=3).expand_as(nonzero))
    assert torch.allclose(w.sum(-1), torch.ones(T, V))
    # every kept frame's logit is >= every dropped valid frame's logit
    kept_min = logits.masked_fill(w == 0, math.inf).amin(-1)
    dropped_max = logits.masked_fill((w > 0) | ~video.mask, -math.inf).amax(-1)
    assert torch.all(kept_min >= dropped_max)


@pytest.mark.parametrize(
    "head",
    all_interaction_heads() + [perturb(SelfAttentionAggregation(D))],
    ids=lambda h: type(h).__name__ + h.extra_repr(),
)
def test_padded_frames_get_zero_weight_and_change_nothing(head, inputs):
    text, video = inputs
    with torch.no_grad():
        w = head.frame_weights(text, video)
        assert torch.all(w[..., ~video.mask] == 0)
        before = head.score(text, video)
        junk = video.frames.clone()
        junk[~video.mask] = float("nan")  # whatever sits in a padding slot must not leak
        after = head.score(text, VideoInput(junk, video.mask))
        assert torch.allclose(before, after, atol=1e-6)
        if not head.is_dual_encoder:
            assert torch.allclose(
                score_all(head, text, VideoInput(junk, video.mask), max_bytes=3_000), before, atol=1e-6
            )


def test_video_without_valid_frames_scores_zero(inputs):
    text, video = inputs
    mask = video.mask.clone()
    mask[2] = False
    for head in (perturb(CrossModalAggregation(D)), perturb(TopKFrames(D, k=2))):
        for path in ("gram", "materialise"):
            s = score_all(head, text, VideoInput(video.frames, mask), path=path)
            assert not torch.isnan(s).any() and torch.all(s[:, 2] == 0)


def test_frame_order_matters_only_with_temporal_encoding(inputs):
    text, video = inputs
    perm = torch.randperm(F_, generator=torch.Generator().manual_seed(5))
    full = VideoInput(video.frames[:1], video.mask[:1])
    shuffled = VideoInput(video.frames[:1, perm], video.mask[:1, perm])
    with torch.no_grad():
        blind = perturb(TopKFrames(D, k=4, temporal=False))
        assert torch.allclose(blind.score(text, full), blind.score(text, shuffled), atol=1e-6)
        timed = perturb(TopKFrames(D, k=4, temporal=True))
        assert not torch.allclose(timed.score(text, full), timed.score(text, shuffled), atol=1e-4)


def test_xpool_matches_the_reference_order_of_operations(inputs):
    """Our X-Pool applies W_o per frame before the weighted sum; the reference applies it after. Same result."""
    text, video = inputs
    head = perturb(XPool(D, num_heads=2))
    with torch.no_grad():
        t, x = head.ln1(text.sentence), head.ln1(video.frames)
        h, e = head.num_heads, head.head_dim
        q = head.q_proj(t).view(T, h, e)
        k = head.k_proj(x).view(V, F_, h, e)
        v = head.v_proj(x).view(V, F_, h, e)
        w = masked_softmax(torch.einsum("the,vfhe->tvhf", q, k) / math.sqrt(e), video.mask[:, None, :])
        a = head.out_proj(torch.einsum("tvhf,vfhe->tvhe", w, v).reshape(T, V, D))
        a = head.ln2(a)
        ref = head.ln3(a + head.linear(a))
        expected = torch.einsum("tvd,td->tv", F.normalize(ref, dim=-1), F.normalize(text.sentence, dim=-1))
        assert torch.allclose(head.score(text, video), expected, atol=1e-5)


def test_xpool_starts_from_identity_projections():
    head = XPool(D)
    for lin in (head.q_proj, head.k_proj, head.v_proj, head.out_proj, head.linear):
        assert torch.equal(lin.weight, torch.eye(D)) and torch.all(lin.bias == 0)
    assert head.dropout.p == pytest.approx(0.3)


def test_block_shape_respects_the_budget():
    for t, v, per_pair, budget in [(1000, 1000, 384, 128 * 2**20), (5000, 1000, 6000, 2**20), (10, 10, 10**9, 1)]:
        tc, vc = block_shape(t, v, per_pair, budget)
        assert 1 <= tc <= t and 1 <= vc <= v
        assert tc * vc == 1 or tc * vc * per_pair <= budget
