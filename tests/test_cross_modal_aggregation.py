"""CrossAttnGL's cross-modal aggregation (docs/papers.md, §4.2): the paper's reading (the default) and the
identity-initialised reading (variant ``cross_modal_aggregation-identity``), on small random tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.attention_pooling import AttentionPoolingHead, masked_softmax, rms_normalize
from tvrlib.heads.cross_modal_aggregation import IDENTITY_READING, CrossModalAggregation
from tvrlib.heads.mean_pooling import MeanPooling, masked_frames
from tvrlib.heads.scoring import Encoded

D, F_, T, V = 32, 12, 9, 7

pytestmark = pytest.mark.usefixtures("one_thread")


def perturb(head: nn.Module, scale: float = 0.3, seed: int = 1) -> nn.Module:
    """Move every parameter away from its initialisation, deterministically (biases and FC included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return head.eval()


def paper(seed: int = 0, **kw) -> CrossModalAggregation:
    torch.manual_seed(seed)
    return perturb(CrossModalAggregation(D, **kw))


def identity() -> CrossModalAggregation:
    return perturb(HEADS.build("cross_modal_aggregation-identity", dim=D))


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(0)
    text = TextInput(3 * torch.randn(T, D, generator=g))
    frames = 3 * torch.randn(V, F_, D, generator=g)
    mask = torch.ones(V, F_, dtype=torch.bool)
    mask[1, 7:] = False  # a short video
    mask[4, :2] = False  # padding at the start
    mask[5, 1:] = False  # a single valid frame
    mask[6, [2, 5, 9]] = False  # holes
    return text, VideoInput(frames, mask)


# --------------------------------------------------------------------------- references
def textbook_scores(head: CrossModalAggregation, text: TextInput, video: VideoInput, dropout=None) -> torch.Tensor:
    """The paper's reading spelled out, eq. by eq., without folding or per-frame FC: ``[T, V]``.

    ``dropout``: a callable applied to the pooled ``[T, V, D]`` vectors (default: none).
    """
    x = masked_frames(video.frames, video.mask)  # Set_F, eq. 4.3
    q = text.sentence @ head.query.weight.T + head.query.bias  # Q_t = W_Q E_t, eq. 4.5
    k = x @ head.key.weight.T  # K_F = W_K Set_F, eq. 4.6
    v = x @ head.value.weight.T + head.value.bias  # V_F = W_V Set_F, eq. 4.7
    s = masked_softmax(torch.einsum("ta,vfa->tvf", q, k) / math.sqrt(head.attn_dim), video.mask)  # eq. 4.8
    e_v = torch.einsum("tvf,vfa->tva", s, v)  # S V, eqs. 4.8-4.9
    e_v = e_v @ head.fc.weight.T + head.fc.bias  # the FC layer on the pooled value
    if dropout is not None:
        e_v = dropout(e_v)
    return torch.einsum("tvd,td->tv", F.normalize(e_v, dim=-1), F.normalize(text.sentence, dim=-1))  # cos(E_t, E_V)


class FixedMask(nn.Module):
    """A stand-in for ``nn.Dropout(p)`` with a fixed keep mask (multiplies by it), to see where dropout acts."""

    def __init__(self, keep: torch.Tensor, p: float):
        super().__init__()
        self.keep, self.p = keep, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.keep if self.training else x


class OldCrossModalAggregation(AttentionPoolingHead):
    """A verbatim copy of the head before issue 7 (W_Q = W_K = I, no W_V, no FC, no dropout), for comparison."""

    def __init__(self, dim: int = 512, attn_dim: int | None = None):
        super().__init__()
        self.dim, self.attn_dim = dim, attn_dim or dim
        self.query = nn.Linear(dim, self.attn_dim, bias=False)  # W_Q, eq. 4.5
        self.key = nn.Linear(dim, self.attn_dim, bias=False)  # W_K, eq. 4.6
        for lin in (self.query, self.key):
            if self.attn_dim == dim:
                nn.init.eye_(lin.weight)
            else:
                nn.init.xavier_uniform_(lin.weight)

    def frame_vectors(self, video: VideoInput) -> torch.Tensor:
        return masked_frames(F.normalize(masked_frames(video.frames, video.mask), dim=-1), video.mask)

    def encode_text(self, text: TextInput) -> Encoded:
        q = self.query(rms_normalize(text.sentence))
        query = q @ self.key.weight * (math.sqrt(self.dim) / math.sqrt(self.attn_dim))
        return Encoded({"query": query, "target": text.sentence})

    def encode_video(self, video: VideoInput) -> Encoded:
        return self.video_side(self.frame_vectors(video), video.mask)


# --------------------------------------------------------------------------- construction and registry
def test_default_is_the_papers_reading():
    torch.manual_seed(0)
    head = HEADS.build("cross_modal_aggregation", dim=D)
    assert type(head) is CrossModalAggregation
    assert head.attn_dim == D and head.value is not None and head.fc is not None
    assert head.fc.out_features == D  # the paper's 512-unit FC layer on 512-d ViT-B/32 features
    assert head.dropout.p == pytest.approx(0.3) and not head.normalize
    for lin in (head.query, head.value):
        assert torch.all(lin.bias == 0)  # "the bias values are set to 0"
    assert head.key.bias is None  # a key bias would cancel in the softmax
    bound = 1 / math.sqrt(D)  # PyTorch's default Linear init: Kaiming-uniform, U(-1/sqrt(D), 1/sqrt(D))
    for lin in (head.query, head.key, head.value):
        assert not torch.equal(lin.weight, torch.eye(D)) and lin.weight.abs().max() <= bound
    assert torch.equal(head.fc.weight, torch.eye(D)) and torch.all(head.fc.bias == 0)  # X-Pool's FC init
    assert not torch.equal(head.query.weight, head.key.weight)  # drawn independently
    torch.manual_seed(0)
    again = HEADS.build("cross_modal_aggregation", dim=D)
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), again.state_dict().values()))


def test_identity_variant_is_the_old_head():
    assert HEADS.spec("cross_modal_aggregation-identity") == ("cross_modal_aggregation", IDENTITY_READING)
    head = HEADS.build("cross_modal_aggregation-identity", dim=D)
    old = OldCrossModalAggregation(D)
    assert head.state_dict().keys() == old.state_dict().keys() == {"query.weight", "key.weight"}
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), old.state_dict().values()))
    assert torch.equal(head.query.weight, torch.eye(D)) and head.dropout.p == 0


def test_random_init_differs_from_identity(inputs):
    text, video = inputs
    torch.manual_seed(0)
    rand = CrossModalAggregation(D).eval()
    ident = CrossModalAggregation(D, init="identity").eval()
    assert torch.equal(ident.query.weight, torch.eye(D)) and torch.equal(ident.value.weight, torch.eye(D))
    assert not torch.equal(rand.query.weight, ident.query.weight)
    with torch.no_grad():
        assert not torch.allclose(rand.score(text, video), ident.score(text, video), atol=1e-3)


def test_invalid_settings_are_errors():
    with pytest.raises(ValueError, match="init"):
        CrossModalAggregation(D, init="zeros")
    with pytest.raises(ValueError, match="FC layer"):
        CrossModalAggregation(D, attn_dim=16, fc=False)
    head = CrossModalAggregation(D, attn_dim=16)  # d_a != D: W_V maps to d_a, the FC layer back to D
    assert head.value.out_features == 16 and (head.fc.in_features, head.fc.out_features) == (16, D)


# --------------------------------------------------------------------------- shapes and masks
@pytest.mark.parametrize("make", [paper, identity], ids=["paper", "identity"])
def test_shapes(make, inputs):
    text, video = inputs
    head = make()
    with torch.no_grad():
        assert head.score(text, video).shape == (T, V)
        assert head.frame_weights(text, video).shape == (T, V, F_)
        assert head.pool(text, video).shape == (T, V, D)
        assert head.textbook_logits(text, video).shape == (T, V, F_)
        ve = head.encode_video(video)
    assert ve["values"].shape == (V, F_, D) and ve["gram"].shape == (V, F_, F_)
    assert ("keys" in ve.tensors) == (make is paper)


@pytest.mark.parametrize("make", [paper, identity], ids=["paper", "identity"])
def test_padded_frames_get_zero_weight_and_change_nothing(make, inputs):
    text, video = inputs
    head = make()
    with torch.no_grad():
        w = head.frame_weights(text, video)
        assert torch.all(w[:, ~video.mask] == 0)
        assert torch.allclose(w.sum(-1), torch.ones(T, V), atol=1e-6)
        before = head.score(text, video)
        junk = video.frames.clone()
        junk[~video.mask] = float("nan")
        for path in ("gram", "materialise"):
            after = score_all(head, text, VideoInput(junk, video.mask), path=path, max_bytes=3_000)
            assert torch.allclose(after, before, atol=1e-5), path
        # more padding slots at the end change nothing either
        longer = VideoInput(
            torch.cat([video.frames, torch.randn(V, 3, D)], 1),
            torch.cat([video.mask, torch.zeros(V, 3, dtype=bool)], 1),
        )
        assert torch.allclose(head.score(text, longer), before, atol=1e-5)


def test_video_without_valid_frames_scores_zero(inputs):
    text, video = inputs
    mask = video.mask.clone()
    mask[2] = False
    head = paper()
    for path in ("gram", "materialise"):
        s = score_all(head, text, VideoInput(video.frames, mask), path=path)
        assert not torch.isnan(s).any() and torch.all(s[:, 2] == 0)


# --------------------------------------------------------------------------- eval: Gram == materialised == textbook
@pytest.mark.parametrize("attn_dim", [None, 16])
def test_gram_path_equals_materialised_and_textbook(attn_dim, inputs):
    text, video = inputs
    head = paper(attn_dim=attn_dim)
    gram = score_all(head, text, video, path="gram", max_bytes=3_000)
    mat = score_all(head, text, video, path="materialise")
    with torch.no_grad():
        literal = textbook_scores(head, text, video)
        assert torch.equal(
            head.score(text, video), head.score_encoded(head.encode_text(text), head.encode_video(video))
        )
    assert torch.allclose(gram, mat, atol=1e-5)
    assert torch.allclose(mat, literal, atol=1e-5)
    assert torch.equal(score_all(head, text, video), score_all(head, text, video, path="gram"))  # eval default


def test_folded_logits_are_eq_4_8(inputs):
    text, video = inputs
    for head in (paper(), identity()):
        with torch.no_grad():
            folded = head.logits_encoded(head.encode_text(text), head.encode_video(video))
            literal = head.textbook_logits(text, video)
        # the folded form drops nothing but a per-pair constant (none here: W_K has no bias); equal on valid frames
        assert torch.allclose(folded[:, video.mask], literal[:, video.mask], atol=1e-4)


def test_gram_path_has_the_same_gradients(inputs):
    text, video = inputs
    grads = {}
    for path in ("gram", "materialise"):
        head = paper()
        head.score_encoded(head.encode_text(text), head.encode_video(video), path).sum().backward()
        grads[path] = [p.grad.clone() for p in head.parameters()]
    for a, b in zip(grads["gram"], grads["materialise"]):
        assert torch.allclose(a, b, atol=1e-4)


# --------------------------------------------------------------------------- training: dropout on the pooled vector
def test_dropout_acts_in_training_only(inputs):
    text, video = inputs
    head = paper().train()
    a, b = head.score(text, video), head.score(text, video)
    assert not torch.allclose(a, b, atol=1e-4)  # two forward passes in training differ
    head.eval()
    with torch.no_grad():
        assert torch.equal(head.score(text, video), head.score(text, video))
    # score_all scores in eval mode (no dropout) and gives the training mode back
    head.train()
    s = score_all(head, text, video)
    assert head.training and head.dropout.training
    assert torch.allclose(s, textbook_scores(head, text, video), atol=1e-5)


def test_training_materialises_the_papers_dropout(inputs):
    """In training the score is cos(E_t, Dropout(FC(sum_f S_f V_f))): the same dropout mask gives the same score."""
    text, video = inputs
    head = paper().train()
    te, ve = head.encode_text(text), head.encode_video(video)
    assert "gram" not in ve.tensors  # no Gram matrices for a training batch
    assert head.pair_bytes(F_, D) == head.pair_bytes(F_, D, "materialise")
    with pytest.raises(ValueError, match="dropout"):
        head.score_encoded(te, ve, "gram")
    # where the dropout acts: swap it for a fixed mask of the same rate and compare with the textbook formula
    keep = (torch.rand(T, V, D, generator=torch.Generator().manual_seed(2)) > 0.3).float() / 0.7
    head.dropout = FixedMask(keep, p=0.3)
    got = head.score(text, video)
    expected = textbook_scores(head, text, video, dropout=lambda e: e * keep)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, textbook_scores(head, text, video), atol=1e-3)
    got.sum().backward()  # gradients reach every weight the score uses
    assert all(p.grad is not None for p in head.parameters())


def test_without_dropout_training_uses_the_gram_path(inputs):
    text, video = inputs
    head = paper(dropout=0.0).train()
    assert head.default_eval_path() == "gram" and "gram" in head.encode_video(video).tensors
    assert torch.equal(head.score(text, video), head.score(text, video))


# --------------------------------------------------------------------------- the identity variant
def test_identity_variant_scores_like_the_old_head(inputs):
    """Same weights, same scores, bit for bit, on every path and in training (it has no dropout)."""
    text, video = inputs
    head, old = identity(), OldCrossModalAggregation(D)
    old.load_state_dict(head.state_dict())
    old.eval()
    with torch.no_grad():
        assert torch.equal(head.score(text, video), old.score(text, video))
        assert torch.equal(head.frame_weights(text, video), old.frame_weights(text, video))
        assert torch.equal(head.pool(text, video), old.pool(text, video))
    for path in ("gram", "materialise"):
        for max_bytes in (3_000, 2**27):
            assert torch.equal(
                score_all(head, text, video, path=path, max_bytes=max_bytes),
                score_all(old, text, video, path=path, max_bytes=max_bytes),
            )
    head.train(), old.train()
    assert torch.equal(head.score(text, video), old.score(text, video))


def test_identity_variant_with_uniform_weights_is_mean_pooling(inputs):
    text, video = inputs
    head = identity()
    with torch.no_grad():
        head.query.weight.zero_()  # every logit 0 -> uniform weights over the valid frames
        assert torch.allclose(head.score(text, video), MeanPooling(D).score(text, video), atol=1e-6)


def test_papers_reading_with_uniform_weights_is_the_fc_of_the_mean_value(inputs):
    text, video = inputs
    head = paper()
    with torch.no_grad():
        head.query.weight.zero_()
        head.query.bias.zero_()
        x = masked_frames(video.frames, video.mask)
        mean = x.sum(1) / video.mask.sum(1, keepdim=True)
        e_v = head.fc(head.value(mean))  # FC(W_V mean_f E_f)
        expected = F.normalize(text.sentence, dim=-1) @ F.normalize(e_v, dim=-1).T
        assert torch.allclose(head.score(text, video), expected, atol=1e-5)


def r_at_1(scores: torch.Tensor) -> float:
    return float((scores.argmax(1) == torch.arange(len(scores))).float().mean())


def test_what_the_identity_start_keeps():
    """Untrained, the identity reading scores like meanP; the paper's random W_V starts near chance.

    Toy retrieval set: each caption is its video's mean frame plus noise, so meanP (and CLIP-like zero-shot
    scoring) retrieves well; nothing is trained.
    """
    g = torch.Generator().manual_seed(0)
    n, f, d = 200, 12, 128
    frames = torch.randn(n, f, d, generator=g)
    text = TextInput(F.normalize(frames, dim=-1).mean(1) + 0.03 * torch.randn(n, d, generator=g))
    video = VideoInput(frames, torch.ones(n, f, dtype=torch.bool))
    mean = r_at_1(score_all(MeanPooling(d), text, video))
    ident = r_at_1(score_all(HEADS.build("cross_modal_aggregation-identity", dim=d), text, video))
    torch.manual_seed(0)
    rand = r_at_1(score_all(HEADS.build("cross_modal_aggregation", dim=d), text, video))
    assert mean > 0.9 and ident >= mean - 0.05
    assert rand < 0.05
