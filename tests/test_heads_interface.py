"""The head interface: variants by name, declared capabilities, and the one scoring entry point.

``score_all`` replaced ``score_chunked`` and ``score_bounded``; frozen copies of those two (as they were
before the change) are kept below as references, and ``score_all`` must reproduce them bit for bit on
every registered head, so that no notebook number moves.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tvrlib.errors import UnknownNameError
from tvrlib.heads import DEFAULT_MAX_BYTES, HEADS, RetrievalHead, TextInput, VideoInput, score_all
from tvrlib.heads.scoring import EncodedInteractionHead, block_shape
from tvrlib.registry import Registry

D, F_, T, V = 16, 6, 5, 7
ALL = HEADS.names()
WITH_FRAME_WEIGHTS = {"cross_modal_aggregation", "self_attention_aggregation", "topk_frames", "xpool"}

pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str) -> RetrievalHead:
    """Any registered head, small, with every parameter moved off its (identity / zero) initialisation."""
    torch.manual_seed(0)
    head = HEADS.build(name, **HEADS.accepted_kwargs(name, dim=D, layers=1))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return head.eval()


@pytest.fixture(scope="module")
def heads():
    return {name: build(name) for name in ALL}


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    text = TextInput(torch.randn(T, D, generator=g))
    mask = torch.ones(V, F_, dtype=torch.bool)
    mask[1, 4:] = False  # a short clip
    mask[2, 1:] = False  # a single valid frame
    mask[3, [1, 3]] = False  # holes
    frames = torch.randn(V, F_, D, generator=g)
    # word and patch tokens from another generator, so the sentence and frames stay as they were
    g2 = torch.Generator().manual_seed(7)
    word_mask = torch.ones(T, 4, dtype=torch.bool)
    word_mask[1, 2:] = False  # a short caption
    text = TextInput(text.sentence, torch.randn(T, 4, D, generator=g2), word_mask)
    return text, VideoInput(frames, mask, torch.randn(V, F_, 3, D, generator=g2))


# ------------------------------------------------- references: the code before the one-scoring-entry-point refactor
@torch.no_grad()
def old_score_chunked(head, text, video, text_chunk=256, video_chunk=256, device="cpu"):
    head.eval()
    if head.is_dual_encoder:
        t = torch.cat(
            [
                F.normalize(head.embed_text(text.index(slice(i, i + text_chunk)).to(device)), dim=-1).cpu()
                for i in range(0, len(text), text_chunk)
            ]
        )
        v = torch.cat(
            [
                F.normalize(head.embed_video(video.index(slice(j, j + video_chunk)).to(device)), dim=-1).cpu()
                for j in range(0, len(video), video_chunk)
            ]
        )
        return t @ v.T
    out = torch.empty(len(text), len(video))
    for i in range(0, len(text), text_chunk):
        tb = text.index(slice(i, i + text_chunk)).to(device)
        for j in range(0, len(video), video_chunk):
            out[i : i + text_chunk, j : j + video_chunk] = head.score(
                tb, video.index(slice(j, j + video_chunk)).to(device)
            ).cpu()
    return out


class _OldBlockScorer(RetrievalHead):
    def __init__(self, head, path):
        super().__init__()
        self.head, self.path = head, path

    def score(self, te, ve):
        return self.head.score_encoded(te, ve, self.path)


@torch.no_grad()
def old_score_bounded(head, text, video, max_bytes=DEFAULT_MAX_BYTES, path=None, device="cpu"):
    head.eval()
    num_frames, dim = video.frames.shape[1], video.frames.shape[2]
    if head.is_dual_encoder:
        return old_score_chunked(head, text, video, device=device)
    if isinstance(head, EncodedInteractionHead):
        t_chunk, v_chunk = block_shape(len(text), len(video), head.pair_bytes(num_frames, dim, path), max_bytes)
        te = head.encode_text(text.to(device))
        ve = head.encode_video(video.to(device))
        return old_score_chunked(_OldBlockScorer(head, path), te, ve, t_chunk, v_chunk, device=device)
    # before the refactor only some heads had pair_bytes; the others got this guess (now the base default)
    has_own = type(head).pair_bytes is not RetrievalHead.pair_bytes
    per_pair = head.pair_bytes(num_frames, dim) if has_own else 4 * num_frames * dim * 4
    t_chunk, v_chunk = block_shape(len(text), len(video), per_pair, max_bytes)
    return old_score_chunked(head, text, video, t_chunk, v_chunk, device=device)


def paths_of(head) -> list:
    return [None, "gram", "materialise"] if isinstance(head, EncodedInteractionHead) else [None]


# --------------------------------------------------------------------------- score_all == the old functions
@pytest.mark.parametrize("name", ALL)
def test_score_all_is_bitwise_the_old_score_bounded(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    for path in paths_of(head):
        for max_bytes in (DEFAULT_MAX_BYTES, 2_000):  # one block; many blocks
            new = score_all(head, text, video, max_bytes=max_bytes, path=path)
            old = old_score_bounded(head, text, video, max_bytes=max_bytes, path=path)
            assert torch.equal(new, old), (path, max_bytes)


@pytest.mark.parametrize("name", ALL)
def test_score_all_with_chunk_is_bitwise_the_old_score_chunked(name, heads, inputs):
    """``training.similarity`` used ``score_chunked(chunk, chunk)``; ``score_all(chunk=...)`` gives the same bits,
    except for the token-level heads (``block_by_memory``), whose blocks are also bounded by memory: the same scores
    up to float summation order."""
    head, (text, video) = heads[name], inputs
    for chunk in (3, 256):
        old = old_score_chunked(head, text, video, chunk, chunk)
        if getattr(head, "block_by_memory", False):
            torch.testing.assert_close(score_all(head, text, video, chunk=chunk), old, atol=1e-5, rtol=1e-5)
        else:
            assert torch.equal(score_all(head, text, video, chunk=chunk), old)


def test_score_all_with_chunk_and_path(heads, inputs):
    text, video = inputs
    for name in ("cross_modal_aggregation", "xpool"):
        for path in ("gram", "materialise"):
            assert torch.allclose(
                score_all(heads[name], text, video, chunk=3, path=path),
                score_all(heads[name], text, video, path=path),
                atol=1e-6,
            )


def test_score_all_restores_train_and_eval_modes(inputs):
    text, video = inputs
    head = build("xpool").train()
    head.ln2.eval()  # a mixed state must come back as it was
    before = {n: m.training for n, m in head.named_modules()}
    s = score_all(head, text, video)
    assert {n: m.training for n, m in head.named_modules()} == before
    assert not s.requires_grad and s.device.type == "cpu" and s.shape == (T, V)
    # scored in eval mode: X-Pool's dropout is off (the training-mode score would be random)
    assert torch.equal(s, score_all(head.eval(), text, video))
    with torch.no_grad():
        assert torch.allclose(s, head.score(text, video), atol=1e-6)


def test_score_all_restores_modes_after_an_error(inputs):
    text, video = inputs
    head = build("xpool").train()
    with pytest.raises(ValueError, match="evaluation path"):
        score_all(head, text, video, path="nonsense")
    assert all(m.training for m in head.modules())


# --------------------------------------------------------------------------- declared capabilities
def test_uses_logit_scale_is_false_only_for_the_cross_encoders(heads):
    """Cross-encoders output their own matching logits: the training loop must not multiply them by CLIP's
    temperature."""
    cross = {"tightTransf", "crosstvr", "crosstvr-spatial", "crosstvr-temporal", "crosstvr-unshared"}
    assert {name for name, h in heads.items() if not h.uses_logit_scale} == cross


def test_has_frame_weights_exactly_where_frame_weights_is_implemented(heads, inputs):
    text, video = inputs
    bases = {n for n in HEADS.names(variants=False) if HEADS.get(n).has_frame_weights}
    assert bases == WITH_FRAME_WEIGHTS
    for name, head in heads.items():
        implemented = type(head).frame_weights is not RetrievalHead.frame_weights
        assert implemented == head.has_frame_weights, name
        if not head.has_frame_weights:
            with pytest.raises(NotImplementedError):
                head.frame_weights(text, video)
            continue
        with torch.no_grad():
            w = head.frame_weights(text, video)
        assert w.shape == (T, V, F_), name
        assert torch.all(w[:, ~video.mask] == 0), name
        assert torch.allclose(w.sum(-1), torch.ones(T, V), atol=1e-6), name


def test_frame_weights_of_meanP_is_a_clear_error(heads, inputs):
    text, video = inputs
    with pytest.raises(NotImplementedError, match="MeanPooling has no frame weights") as e:
        heads["meanP"].frame_weights(text, video)
    for name in WITH_FRAME_WEIGHTS:
        assert name in str(e.value)


def test_self_attention_frame_weights_repeat_its_caption_free_weights(heads, inputs):
    text, video = inputs
    head = heads["self_attention_aggregation"]
    with torch.no_grad():
        per_video = head.video_frame_weights(video)
        w = head.frame_weights(text, video)
    assert per_video.shape == (V, F_) and all(torch.equal(w[t], per_video) for t in range(T))


def test_pair_bytes_default_and_overrides(heads):
    assert RetrievalHead().pair_bytes(12, 512) == 4 * 12 * 512 * 4
    assert heads["tightTransf"].pair_bytes(12, 512) == 4 * 12 * 512 * 4
    cma = heads["cross_modal_aggregation"]
    assert cma.pair_bytes(12, 512, "gram") < cma.pair_bytes(12, 512, "materialise")


@pytest.mark.parametrize("name", ALL)
def test_score_pairs_is_the_diagonal_of_score_all(name, heads, inputs):
    head, (text, video) = heads[name], inputs
    n = min(T, V)
    with torch.no_grad():
        pairs = head.score_pairs(text.index(slice(0, n)), video.index(slice(0, n)))
    assert pairs.shape == (n,)
    full = score_all(head, text, video)
    assert torch.allclose(pairs, full[torch.arange(n), torch.arange(n)], atol=1e-6)


@pytest.mark.parametrize("name", [n for n in ALL if n != "tightTransf"])
def test_score_pairs_is_bitwise_the_old_twin_pair_fallback(name, heads, inputs):
    """Before the refactor, twin scores came from this fallback (tightTransf had its own score_pairs, unchanged)."""
    head, (text, video) = heads[name], inputs
    gold, twin = torch.tensor([0, 3, 6, 2, 1]), torch.tensor([5, 4, 1, 2, 0])
    with torch.no_grad():
        for which in (gold, twin):
            v = video.index(which)
            if head.is_dual_encoder:
                old = (F.normalize(head.embed_text(text), dim=-1) * F.normalize(head.embed_video(v), dim=-1)).sum(-1)
            else:
                old = torch.stack(
                    [head.score(text.index(slice(k, k + 1)), v.index(slice(k, k + 1)))[0, 0] for k in range(len(text))]
                )
            assert torch.equal(head.score_pairs(text, v), old)


# --------------------------------------------------------------------------- variants by name
def test_variants_build_their_base_with_fixed_arguments():
    torch.manual_seed(0)
    variant = HEADS.build("seqTransf-noPE", dim=D, layers=1)
    torch.manual_seed(0)
    spelled = HEADS.build("seqTransf", dim=D, layers=1, position_embeddings=False)
    assert type(variant) is type(spelled) and not variant.position_embeddings
    assert all(torch.equal(a, b) for a, b in zip(variant.state_dict().values(), spelled.state_dict().values()))
    assert variant.state_dict().keys() == spelled.state_dict().keys()
    top = HEADS.build("topK4-noTE", dim=D)
    assert (top.k, top.temporal) == (4, False)
    assert (HEADS.build("topK12", dim=D).k, HEADS.build("topK12", dim=D).temporal) == (12, True)


def test_caller_kwargs_override_a_variants_fixed_arguments():
    assert HEADS.build("topK4", dim=D, k=2).k == 2
    assert HEADS.build("seqTransf-noPE", dim=D, layers=1, position_embeddings=True).position_embeddings


def test_unknown_name_lists_the_known_names():
    for call in (HEADS.build, HEADS.get, HEADS.spec):
        with pytest.raises(UnknownNameError, match="unknown retrieval head 'seqTransf-PE'") as e:
            call("seqTransf-PE")
        assert "seqTransf-noPE" in str(e.value) and "topK4-noTE" in str(e.value) and "meanP" in str(e.value)


def test_names_and_describe_list_bases_and_variants():
    names = HEADS.names()
    assert {"meanP", "seqTransf", "seqTransf-noPE", "topk_frames", "topK1", "topK4-noTE", "xpool"} <= set(names)
    assert "seqTransf-noPE" not in HEADS.names(variants=False) and "seqTransf-noPE" in HEADS
    table = HEADS.describe()
    assert sorted(table.index) == names
    assert table.loc["seqTransf-noPE", "base"] == "seqTransf"
    assert table.loc["seqTransf-noPE", "fixed arguments"] == "position_embeddings=False"
    assert table.loc["topK6-noTE", "fixed arguments"] == "k=6, temporal=False"
    assert table.loc["meanP", "fixed arguments"] == "" and table.loc["meanP", "class"] == "MeanPooling"


def test_registry_rules_on_a_fresh_registry():
    reg = Registry("thing")

    @reg.register("box")
    def box(size: int = 1, colour: str = "red", lid: bool = True):
        return (size, colour, lid)

    reg.register_variant("big-box", "box", size=10)
    reg.register_variant("big-box", "box", size=10)  # the same again: fine (a module imported twice)
    reg.register_variant("big-blue-box", "big-box", colour="blue")  # a variant of a variant
    assert reg.build("big-blue-box") == (10, "blue", True)
    assert reg.build("big-blue-box", size=3) == (3, "blue", True)
    assert reg.spec("big-blue-box") == ("box", {"size": 10, "colour": "blue"})
    with pytest.raises(ValueError, match="already registered"):
        reg.register_variant("big-box", "box", size=11)
    with pytest.raises(ValueError, match="already registered"):
        reg.register_variant("box", "box", size=2)
    with pytest.raises(ValueError, match="variant"):
        reg.register("big-box")(box)
    with pytest.raises(UnknownNameError, match="known: \\['big-blue-box', 'big-box', 'box'\\]"):
        reg.register_variant("crate", "crate-base")
    # shared settings: only what the entry takes, never what its variant fixes
    assert reg.accepted_kwargs("big-box", size=5, colour="green", dim=512) == {"colour": "green"}


def test_accepted_kwargs_picks_each_heads_own_settings():
    shared = {"dim": D, "layers": 2, "init_from": None}
    assert HEADS.accepted_kwargs("seqLSTM", **shared) == {"dim": D}
    assert HEADS.accepted_kwargs("seqTransf-noPE", **shared) == shared
    assert HEADS.accepted_kwargs("tightTransf", **shared) == {"dim": D, "layers": 2}
    assert HEADS.accepted_kwargs("topK4", dim=D, k=2) == {"dim": D}
