"""CrossAttnGL Table 2's Self-Att baseline (docs/papers.md): the cross-modal head's value path with caption-blind
weights (the default), and the earlier identity reading (variant ``self_attention_aggregation-identity``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.attention_pooling import masked_softmax
from tvrlib.heads.cross_modal_aggregation import IDENTITY_READING, CrossModalAggregation
from tvrlib.heads.mean_pooling import MeanPooling, masked_frames
from tvrlib.heads.self_attention_aggregation import SelfAttentionAggregation

D, F_, T, V = 32, 12, 9, 7

pytestmark = pytest.mark.usefixtures("one_thread")


def perturb(head: nn.Module, scale: float = 0.3, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return head.eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    text = TextInput(torch.randn(T, D, generator=g))
    mask = torch.ones(V, F_, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 1:] = False
    mask[3, [2, 5]] = False
    return text, VideoInput(torch.randn(V, F_, D, generator=g), mask)


def test_default_has_the_cross_modal_heads_value_path():
    torch.manual_seed(0)
    sa, cm = SelfAttentionAggregation(D), CrossModalAggregation(D)
    assert sa.init == cm.init == "random" and sa.normalize is cm.normalize is False
    assert sa.dropout.p == cm.dropout.p == 0.3
    assert sa.value.weight.shape == cm.value.weight.shape and torch.equal(sa.value.bias, torch.zeros(D))
    assert sa.key.bias is None and not torch.equal(sa.key.weight, torch.eye(D))  # random W_K, as the cross-modal
    assert not torch.equal(sa.value.weight, torch.eye(D))  # random W_V
    assert torch.equal(sa.fc.weight, torch.eye(D)) and torch.equal(sa.fc.bias, torch.zeros(D))  # as the cross-modal
    assert torch.equal(sa.query, torch.zeros(D))  # b_Q = 0 at the start: uniform weights
    assert HEADS.spec("self_attention_aggregation-identity") == ("self_attention_aggregation", IDENTITY_READING)
    # the same parameters as the cross-modal head, with W_Q's weight matrix gone (q plays b_Q)
    cm_names = {n for n, _ in cm.named_parameters()} - {"query.weight", "query.bias"}
    assert {n for n, _ in sa.named_parameters()} - {"query"} == cm_names


def test_differs_from_the_cross_modal_head_only_in_caption_blind_weights(inputs):
    """Cross-modal with W_Q = 0 and b_Q = q scores exactly like Self-Att with the same W_K, W_V, FC."""
    text, video = inputs
    torch.manual_seed(0)
    sa = perturb(SelfAttentionAggregation(D))
    cm = CrossModalAggregation(D).eval()
    with torch.no_grad():
        for name in ("key", "value", "fc"):
            getattr(cm, name).load_state_dict(getattr(sa, name).state_dict())
        cm.query.weight.zero_()
        cm.query.bias.copy_(sa.query)
        assert torch.allclose(cm.score(text, video), sa.score(text, video), atol=1e-5)
        assert torch.allclose(cm.frame_weights(text, video), sa.frame_weights(text, video), atol=1e-6)


def test_literal_formula(inputs):
    text, video = inputs
    sa = perturb(SelfAttentionAggregation(D))
    with torch.no_grad():
        x = masked_frames(video.frames, video.mask)
        w = masked_softmax(sa.key(x) @ sa.query / D**0.5, video.mask)
        pooled = sa.fc(torch.einsum("vf,vfd->vd", w, sa.value(x)))  # FC(sum_f w_f W_V x_f)
        expected = F.normalize(text.sentence, dim=-1) @ F.normalize(pooled, dim=-1).T
        assert torch.allclose(sa.score(text, video), expected, atol=1e-5)
        assert torch.allclose(sa.video_frame_weights(video), w)


def test_eval_is_a_dual_encoder_and_dropout_acts_in_training_only(inputs):
    text, video = inputs
    sa = perturb(SelfAttentionAggregation(D))
    assert sa.is_dual_encoder
    with torch.no_grad():
        e1, e2 = sa.embed_video(video), sa.embed_video(video)
        assert torch.equal(e1, e2)  # eval: deterministic, one vector per video
        assert torch.allclose(score_all(sa, text, video), sa.score(text, video), atol=1e-6)
        sa.train()
        torch.manual_seed(1)
        d1 = sa.embed_video(video)
        torch.manual_seed(2)
        d2 = sa.embed_video(video)
        assert not torch.equal(d1, d2)  # training: dropout 0.3 on the pooled vector
        assert ((d1 == 0) & (e1 != 0)).any()
        assert torch.equal(score_all(sa, text, video), score_all(sa.eval(), text, video))  # scored in eval mode
        no_drop = perturb(SelfAttentionAggregation(D, dropout=0.0)).train()
        assert torch.equal(no_drop.embed_video(video), no_drop.eval().embed_video(video))


def test_weights_ignore_the_caption_and_padding(inputs):
    text, video = inputs
    sa = perturb(SelfAttentionAggregation(D))
    with torch.no_grad():
        w = sa.frame_weights(text, video)
        assert torch.all(w[:, ~video.mask] == 0)
        assert torch.allclose(w.sum(-1), torch.ones(T, V), atol=1e-6)
        assert all(torch.equal(w[t], w[0]) for t in range(T))
        junk = video.frames.clone()
        junk[~video.mask] = float("nan")
        assert torch.allclose(sa.score(text, VideoInput(junk, video.mask)), sa.score(text, video), atol=1e-6)
        empty = VideoInput(video.frames[:1], torch.zeros(1, F_, dtype=torch.bool))
        assert torch.equal(sa.score(text, empty), torch.zeros(T, 1))


def test_identity_variant_starts_as_mean_pooling_and_is_the_old_head(inputs):
    text, video = inputs
    head = HEADS.build("self_attention_aggregation-identity", dim=D).eval()
    assert head.value is None and head.fc is None and head.dropout.p == 0.0 and head.normalize
    with torch.no_grad():
        assert torch.allclose(head.score(text, video), MeanPooling(D).score(text, video), atol=1e-6)
        nn.init.normal_(head.query)
        x = F.normalize(masked_frames(video.frames, video.mask), dim=-1)
        x = masked_frames(x, video.mask)
        w = masked_softmax((D**0.5 * x) @ head.query / D**0.5, video.mask)  # W_K = I on sqrt(D)-scaled unit frames
        assert torch.allclose(head.video_frame_weights(video), w, atol=1e-6)
        assert torch.allclose(head.embed_video(video), torch.einsum("vf,vfd->vd", w, x), atol=1e-6)


def test_invalid_settings_are_errors():
    with pytest.raises(ValueError, match="init"):
        SelfAttentionAggregation(D, init="xavier")
    with pytest.raises(ValueError, match="FC layer"):
        SelfAttentionAggregation(D, attn_dim=8, fc=False)
    assert SelfAttentionAggregation(D, attn_dim=8).embed_video(
        VideoInput(torch.randn(2, 3, D), torch.ones(2, 3, dtype=torch.bool))
    ).shape == (2, D)
