"""The text side of training: the text tower trains over cached frame features (the image tower and the cached
features never change), counterfactual captions differ from a true caption exactly in one direction or one order,
and as hard negatives they enter the video-to-text side of the loss; the protocol records all of it, and the same
seed gives the same run."""

from __future__ import annotations

import dataclasses
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvrlib import experiment as X
from tvrlib.frame_order import reorder_frames
from tvrlib.heads import HEADS, TextInput, VideoInput
from tvrlib.losses import edit_contrast, symmetric_infonce
from tvrlib.synthetic import captions as cap
from tvrlib.synthetic.benchmark import load_config, sample_spec
from tvrlib.synthetic.counterfactuals import (
    caption_counterfactual_table,
    caption_counterfactuals,
    clause_spans,
    counterfactual_changes,
    counterfactual_pair,
    counterfactual_table,
)
from tvrlib.synthetic.world import OPPOSITE, check_valid
from tvrlib.training import (
    CaptionNegatives,
    FeatureSource,
    FitConfig,
    RetrievalModel,
    TextTowerSource,
    fit,
    text_tower_copy,
)
from tvrlib.training.loop import batch_loss

pytestmark = pytest.mark.usefixtures("one_thread")
CLIP_TAU = math.log(1 / 0.07)


@pytest.fixture(scope="module")
def encoder():
    """A randomly initialised tiny CLIP (no checkpoint needed)."""
    import open_clip

    from tvrlib.encoders import TINY_MODEL, ClipEncoder, register_configs

    register_configs()
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_MODEL)
    return ClipEncoder(model, open_clip.get_tokenizer(TINY_MODEL), TINY_MODEL, "random-test", torch.device("cpu"))


def specs(n: int, seed: int = 0):
    cfg = load_config("tiny")
    return [sample_spec(np.random.default_rng([seed, i]), cfg) for i in range(n)]


def split(encoder, n_videos: int, seed: int, with_specs: bool = True) -> FeatureSource:
    """A constructed split in the session's shape: frozen caption features from ``encoder``, random cached frame
    features, two true captions per video (from the benchmark's grammar) and, optionally, the video specs."""
    vs = specs(n_videos, seed)
    rng = np.random.default_rng(seed)
    texts = [cap.video_caption(s, rng) for s in vs for _ in range(2)]
    t2v = np.repeat(np.arange(n_videos), 2)
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_videos, 4, encoder.embed_dim, generator=g)
    mask = torch.ones(n_videos, 4, dtype=torch.bool)
    meta = {"video_fields": [{"spec": s.to_json()} for s in vs]} if with_specs else {"video_fields": [{}] * n_videos}
    data = SimpleNamespace(
        dataset="constructed",
        split="train",
        texts=texts,
        video_ids=[f"v{i}" for i in range(n_videos)],
        text_to_video=t2v,
        meta=meta,
    )
    sentence = encoder.encode_text(texts, with_words=False).sentence
    return FeatureSource(TextInput(sentence), VideoInput(frames, mask), t2v, data=data, encoder=encoder)


def protocol(**kw) -> X.Protocol:
    base = dict(max_epochs=2, patience=None, seeds=(0,), batch_size=8, lr=1e-3, temporal_layers=1)
    base.update(kw)
    return X.Protocol.from_profile("tiny", logit_scale=CLIP_TAU, **base)


# --------------------------------------------------------------------------- the text-tower regime
def test_the_image_tower_and_the_cached_features_never_change(encoder):
    src = split(encoder, 6, 0)
    frames0 = src.videos.frames.clone()
    original = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    tower = text_tower_copy(encoder)
    assert tower.weights_id != encoder.weights_id and tower.cache_parts != encoder.cache_parts  # never its cache
    model = RetrievalModel(HEADS.build("seqTransf", dim=encoder.embed_dim, layers=1), encoder=tower)
    assert model.text_tower and not model.end_to_end
    groups = model.param_groups(FitConfig(lr_text=2e-3))
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in in_groups for p in tower.model.visual.parameters())
    assert {g["lr"] for g in groups if g["name"].startswith("text_tower")} == {2e-3}
    visual0 = {k: v.clone() for k, v in tower.model.visual.state_dict().items()}  # weights and BN buffers
    text0 = tower.model.token_embedding.weight.detach().clone()
    res = fit(model, TextTowerSource.from_features(src), src, epochs=2, batch_size=4, warmup=0.0, progress=False)
    assert all(torch.equal(v, res.model.clip.visual.state_dict()[k]) for k, v in visual0.items())
    assert not torch.equal(res.model.clip.token_embedding.weight, text0)  # the text tower did train
    assert {c for c in res.steps.columns if c.startswith("lr_")} == {"lr_head", "lr_text_tower", "lr_logit_scale"}
    assert torch.equal(src.videos.frames, frames0)  # the cached frame features are untouched
    assert all(torch.equal(v, encoder.model.state_dict()[k]) for k, v in original.items())  # the session's encoder


def test_text_training_separates_a_direction_flip(encoder):
    """A frozen text tower that cannot tell "left" from "right" learns to, when a batch needs it."""
    captions = ["a red circle moves to the left", "a red circle moves to the right"]
    tokens = encoder.tokenize(captions)
    frames = torch.stack([torch.eye(encoder.embed_dim)[:4], torch.eye(encoder.embed_dim)[4:8]])  # two videos
    src = TextTowerSource(tokens, VideoInput(frames, torch.ones(2, 4, dtype=torch.bool)), [0, 1])

    def cosine(enc):
        s = src.texts_of(enc).sentence
        return float(F.cosine_similarity(s[0], s[1], dim=0))

    tower = text_tower_copy(encoder)
    before = cosine(tower)
    model = RetrievalModel(HEADS.build("meanP"), encoder=tower)
    cfg = FitConfig(lr_text=1e-3, weight_decay=0.0)
    optimizer = torch.optim.AdamW(model.param_groups(cfg))
    for _ in range(20):  # the steps of fit (without its model selection, which two videos saturate at once)
        text, video, ids = src.batch(np.arange(2), model, np.random.default_rng(0))
        loss = batch_loss(cfg, model, text, video, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = cosine(model.encoder)
    assert before > 0.8 and after < before - 0.3, (before, after)
    assert cosine(encoder) == pytest.approx(before)  # the encoder it was copied from is unchanged


def test_run_never_reads_or_writes_the_session_text_cache_with_a_trained_tower(encoder, monkeypatch):
    import tvrlib.features

    train, val, test = split(encoder, 8, 0), split(encoder, 4, 1), split(encoder, 4, 2)
    monkeypatch.setattr(tvrlib.features, "encode_texts", lambda *a, **k: pytest.fail("the feature cache was used"))
    original = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    runs = X.run(protocol(text_training=True), "meanP", train, val, test, test_eval_fn=lambda h, s, texts: texts)
    assert all(torch.equal(v, encoder.model.state_dict()[k]) for k, v in original.items())  # each seed copies it
    (r,) = runs.runs
    assert r.epochs_run == 2 and r.text_encoder is not None  # meanP trains: its text side has parameters
    assert r.evaluation.sentence.shape == (len(test), encoder.embed_dim)  # the test captions through its tower
    assert not torch.allclose(r.evaluation.sentence, test.texts.sentence)
    again = X.rank_on(runs, test)
    assert np.array_equal(again.runs[0].ranks, r.ranks)  # rank_on re-encodes with the run's own tower
    with pytest.raises(TypeError, match="texts"):
        X.run(protocol(text_training=True), "meanP", train, val, test, test_eval_fn=lambda h, s: None)


def test_same_seed_same_results_with_a_trained_tower_and_hard_negatives(encoder):
    train, val, test = split(encoder, 8, 0), split(encoder, 4, 1), split(encoder, 4, 2)
    P = protocol(text_training=True, hard_negatives=2)
    a = X.run(P, "seqTransf", train, val, test)
    b = X.run(P, "seqTransf", train, val, test)
    assert np.array_equal(a.runs[0].ranks, b.runs[0].ranks)
    assert a.runs[0].history["train_loss"].tolist() == b.runs[0].history["train_loss"].tolist()
    c = X.run(dataclasses.replace(P, hard_negatives=0), "seqTransf", train, val, test)
    assert a.runs[0].history["train_loss"].tolist() != c.runs[0].history["train_loss"].tolist()


def test_hard_negatives_with_frozen_text_use_the_frozen_embeddings(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("TVR_CACHE_DIR", str(tmp_path))  # the frozen encoder's features go through a feature cache
    train, val, test = split(encoder, 8, 0), split(encoder, 4, 1), split(encoder, 4, 2)
    P = protocol(hard_negatives=1)
    src, _, _ = X._regime_sources(P, train, val, test)
    assert isinstance(src, FeatureSource) and src.negatives is not None and src.negatives.texts is not None
    table = caption_counterfactual_table(train.data)
    want = encoder.encode_text(table["caption"].tolist(), with_words=False).sentence
    assert torch.allclose(src.negatives.texts.sentence, want, atol=1e-5)
    assert src.negatives.caption_of.tolist() == table["text"].tolist()  # each edit belongs to one caption
    a, b = X.run(P, "seqTransf", train, val, test), X.run(P, "seqTransf", train, val, test)
    assert a.runs[0].history["train_loss"].tolist() == b.runs[0].history["train_loss"].tolist()


def test_hard_negatives_on_data_without_specs_is_a_clear_error(encoder):
    train, val, test = split(encoder, 6, 0, with_specs=False), split(encoder, 4, 1), split(encoder, 4, 2)
    with pytest.raises(ValueError, match="synthetic video specs.*hard_negatives=0"):
        X.run(protocol(text_training=True, hard_negatives=1), "meanP", train, val, test)
    with pytest.raises(ValueError, match="pool of negative captions"):
        fit(HEADS.build("seqTransf", dim=encoder.embed_dim, layers=1), train, val, hard_negatives=1, progress=False)


# --------------------------------------------------------------------------- counterfactual captions
def _skeleton(text: str, clauses) -> str:
    """``text`` with each clause (in order) replaced by a numbered placeholder: the connectives and the tail."""
    pos = 0
    for i, c in enumerate(clauses):
        j = text.index(c, pos)
        text = text[:j] + f"<{i}>" + text[j + len(c) :]
        pos = j + len(f"<{i}>")
    return text


def _no_articles(clause: str) -> str:
    return re.sub(r"\b(a|an|the) ", "", clause)


def test_counterfactual_captions_differ_exactly_in_direction_or_order():
    seen = {"direction": 0, "order": 0}
    for n, spec in enumerate(specs(40)):
        for c, change in enumerate(counterfactual_changes(spec)):
            pair = counterfactual_pair(spec, change, np.random.default_rng([n, c]))
            assert pair.true != pair.false
            assert check_valid(dataclasses.replace(change.spec, distractor=None)) is None  # a possible video
            # the same connectives, background and distractor phrases around the clauses
            assert _skeleton(pair.true, pair.true_clauses) == _skeleton(pair.false, pair.false_clauses)
            k = change.event_index
            if change.factor == "direction":
                e = spec.events[k]
                assert change.spec.events[k].direction == OPPOSITE[e.direction]
                assert [x for i, x in enumerate(change.spec.events) if i != k] == [
                    x for i, x in enumerate(spec.events) if i != k
                ]
                assert [i for i in range(len(spec.events)) if pair.true_clauses[i] != pair.false_clauses[i]] == [k]
                # the same template (paraphrase) in the opposite direction
                true_t = cap.EVENT_TEMPLATES[f"move-{e.direction}"]
                false_t = cap.EVENT_TEMPLATES[f"move-{OPPOSITE[e.direction]}"]
                obj = pair.true_clauses[k][: pair.true_clauses[k].index(e.obj.name) + len(e.obj.name)]
                i = [t.format(o=obj) for t in true_t].index(pair.true_clauses[k])
                assert pair.false_clauses[k] == false_t[i].format(o=obj)
            else:
                assert spec.events[k].obj != spec.events[k + 1].obj
                swapped = list(pair.true_clauses)
                swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
                assert [_no_articles(x) for x in pair.false_clauses] == [_no_articles(x) for x in swapped]
                words = [sorted(re.findall(r"[\w-]+", _no_articles(t))) for t in (pair.false, pair.true)]
                assert words[0] == words[1]  # the same bag of words: only their order tells them apart
            seen[change.factor] += 1
    assert seen["direction"] > 5 and seen["order"] > 5


def test_the_counterfactual_table_is_deterministic_and_covers_every_change(encoder):
    data = split(encoder, 10, 3).data
    a, b = counterfactual_table(data, paraphrases=2), counterfactual_table(data, paraphrases=2)
    assert a.equals(b) and len(a) > 0
    n_changes = sum(len(counterfactual_changes(s)) for s in specs(10, 3))
    assert len(a) == 2 * n_changes
    assert not set(a["caption"]) & set(data.texts)  # never one of the video's true captions
    with pytest.raises(ValueError, match="no synthetic video specs"):
        counterfactual_table(SimpleNamespace(dataset="msrvtt", split="train", meta={}, video_ids=[]))


def test_caption_edits_are_true_captions_of_the_changed_video_and_keep_every_other_word():
    rng = np.random.default_rng(0)
    move_words = {
        w for d in ("left", "right", "up", "down") for t in cap.EVENT_TEMPLATES[f"move-{d}"] for w in t.split()
    }
    n_dir = n_order = 0
    for spec in specs(60, 7):
        changed = {(c.factor, c.event_index): c.spec for c in counterfactual_changes(spec)}
        captions = [("video", cap.video_caption(spec, rng))]
        captions += [("event", cap.event_caption(spec, k, rng)) for k in range(len(spec.events))]
        for kind, caption in captions:
            spans = clause_spans(caption, spec, kind)
            assert spans, (kind, caption)  # every caption the grammar writes is parsed back into its events
            for factor, k, edited in caption_counterfactuals(caption, spec, kind):
                assert edited != caption and len(edited.split()) == len(caption.split())
                if kind == "video":
                    # the edit describes the counterfactual video exactly as the caption describes the real one
                    assert clause_spans(edited, changed[(factor, k)], "video"), (caption, edited)
                if factor == "direction":
                    n_dir += 1
                    diff = [a.strip(",") for a, b in zip(caption.split(), edited.split(), strict=True) if a != b]
                    assert diff and set(diff) <= move_words, (caption, edited)
                    if kind == "event":  # never a move that also happens in the video
                        flipped = dataclasses.replace(spec.events[k], direction=OPPOSITE[spec.events[k].direction])
                        assert flipped not in spec.events
                else:
                    n_order += 1
                    strip = lambda t: sorted(w.strip(",") for w in t.split())  # noqa: E731
                    assert strip(edited) == strip(caption)  # the same words, two clauses moved
    assert n_dir > 20 and n_order > 20


def test_a_pool_keyed_by_caption_draws_each_rows_own_edits_and_follows_subsets(encoder):
    src = split(encoder, 8, 4)
    table = caption_counterfactual_table(src.data)
    assert set(table["original"]) <= set(src.data.texts) and not set(table["caption"]) & set(src.data.texts)
    pool = CaptionNegatives(
        table["caption"].tolist(),
        table["video"].to_numpy(),
        texts=TextInput(torch.zeros(len(table), 4)),
        caption_of=table["text"].to_numpy(),
    )
    idx = np.arange(len(src.data.texts))
    picked, rows, _ = pool.sample(src.text_to_video[idx], 3, np.random.default_rng(0), captions=idx)
    assert len(picked) and np.all(pool.caption_of[picked] == idx[rows])
    with pytest.raises(ValueError, match="captions=idx"):
        pool.sample(src.text_to_video[idx], 3, np.random.default_rng(0))
    sub = pool.subset(5, src.text_to_video)
    keep = np.flatnonzero(src.text_to_video < 5)
    assert len(sub) == int((table["video"] < 5).sum())
    assert [src.data.texts[keep[c]] for c in sub.caption_of] == table.loc[table["video"] < 5, "original"].tolist()


# --------------------------------------------------------------------------- hard negatives in the loss
def test_extra_v2t_negatives_match_a_hand_computation():
    logits = torch.tensor([[3.0, 1.0], [0.5, 2.0]])
    extra = torch.tensor([[2.5, 0.0], [1.5, -7.0]])
    mask = torch.tensor([[True, True], [True, False]])
    got = symmetric_infonce(logits, extra_v2t=extra, extra_mask=mask)
    e = math.exp
    t2v = -math.log(e(3) / (e(3) + e(1))) - math.log(e(2) / (e(0.5) + e(2)))
    v2t = -math.log(e(3) / (e(3) + e(0.5) + e(2.5) + e(0))) - math.log(e(2) / (e(1) + e(2) + e(1.5)))
    assert float(got) == pytest.approx(0.5 * (t2v / 2 + v2t / 2), rel=1e-6)
    assert float(got) > float(symmetric_infonce(logits))  # more negatives: a larger loss
    none = torch.zeros(2, 2, dtype=torch.bool)
    assert float(symmetric_infonce(logits, extra_v2t=extra, extra_mask=none)) == pytest.approx(
        float(symmetric_infonce(logits))
    )


def test_edit_contrast_matches_a_hand_computation_and_joins_the_loss_by_its_weight():
    pos = torch.tensor([2.0, 1.0, 0.5])
    extra = torch.tensor([[1.0, float("-inf")], [3.0, 0.0], [float("-inf"), float("-inf")]])  # row 3: no edits
    e = math.exp
    want = 0.5 * (-math.log(e(2) / (e(2) + e(1))) - math.log(e(1) / (e(1) + e(3) + e(0))))
    assert float(edit_contrast(pos, extra)) == pytest.approx(want, rel=1e-6)
    assert float(edit_contrast(pos, torch.full((3, 2), float("-inf")))) == 0.0
    with pytest.raises(ValueError, match="hard_negative_weight"):
        FitConfig(hard_negative_weight=1.0, loss="hinge")
    with pytest.raises(ValueError, match="hard_negative_weight"):
        FitConfig(hard_negative_weight=-1.0)


def test_reversed_videos_join_each_captions_t2v_softmax_and_tie_for_an_order_blind_head(encoder):
    logits = torch.tensor([[3.0, 1.0], [0.5, 2.0]])
    rev = torch.tensor([[2.5], [2.0]])
    e = math.exp
    t2v = -math.log(e(3) / (e(3) + e(1) + e(2.5))) - math.log(e(2) / (e(0.5) + e(2) + e(2)))
    v2t = -math.log(e(3) / (e(3) + e(0.5))) - math.log(e(2) / (e(1) + e(2)))
    got = symmetric_infonce(logits, extra_t2v=rev)
    assert float(got) == pytest.approx(0.5 * (t2v / 2 + v2t / 2), rel=1e-6)
    src = split(encoder, 6, 0)
    idx = np.arange(6)
    text, video, ids = src.batch(idx, RetrievalModel(HEADS.build("meanP")), np.random.default_rng(0))
    with torch.no_grad():
        for name, blind in (("meanP", True), ("seqTransf", False)):
            torch.manual_seed(0)
            model = RetrievalModel(HEADS.build(name, **({} if blind else {"dim": encoder.embed_dim, "layers": 1})))
            logits = model.logits(text, video)
            rev = model.pair_logits(text, reorder_frames(video, "reverse"))
            assert torch.allclose(rev, logits.diagonal(), atol=1e-5) == blind  # order-blind: the same score
            want = symmetric_infonce(logits, ids, extra_t2v=rev[:, None])
            got = batch_loss(FitConfig(reversed_negatives=True), model, text, video, ids)
            assert float(got) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ValueError, match="reversed_negatives"):
        FitConfig(reversed_negatives=True, loss="hinge")


def test_batch_loss_scores_each_negative_with_its_own_video(encoder):
    src = split(encoder, 6, 0)
    table = counterfactual_table(src.data)
    pool = CaptionNegatives(
        table["caption"].tolist(), table["video"].to_numpy(), tokens=encoder.tokenize(table.caption.tolist())
    )
    tsrc = TextTowerSource.from_features(src, pool)
    torch.manual_seed(0)
    model = RetrievalModel(HEADS.build("meanP"), encoder=text_tower_copy(encoder))
    idx = np.arange(6)
    text, video, ids = tsrc.batch(idx, model, np.random.default_rng(0))
    neg = tsrc.hard_negatives(idx, model, np.random.default_rng(1), 2)
    vids = src.text_to_video[idx]
    cfg = FitConfig()
    with torch.no_grad():
        plain = batch_loss(cfg, model, text, video, ids)
        hard = batch_loss(cfg, model, text, video, ids, neg)
        logits = model.logits(text, video)
        by_hand = torch.full((6, 2), float("-inf"))
        for m, (r, s) in enumerate(zip(neg.row.tolist(), neg.slot.tolist(), strict=True)):
            by_hand[r, s] = model.pair_logits(neg.text.index(slice(m, m + 1)), video.index(slice(r, r + 1)))[0]
        want = symmetric_infonce(logits, ids, extra_v2t=by_hand)
    assert float(hard) != pytest.approx(float(plain)) and float(hard) == pytest.approx(float(want), rel=1e-6)
    with torch.no_grad():  # the weighted contrast of each caption with its own edits comes on top
        weighted = batch_loss(FitConfig(hard_negative_weight=2.0), model, text, video, ids, neg)
        alone = edit_contrast(logits.diagonal(), by_hand)
    assert float(weighted) == pytest.approx(float(want) + 2.0 * float(alone), rel=1e-6)
    # every drawn negative belongs to its row's video, at most 2 per row, distinct
    sampled, rows, _ = pool.sample(vids, 2, np.random.default_rng(1))
    assert np.all(pool.video_of[sampled] == vids[rows])
    assert all(len(set(sampled[rows == r])) == len(sampled[rows == r]) <= 2 for r in range(6))


# --------------------------------------------------------------------------- the protocol
def test_the_protocol_records_the_text_side():
    P = protocol()
    assert (P.text_training, P.hard_negatives) == (False, 0)
    assert "text tower" not in P.describe() and "counterfactual" not in P.describe()  # the default line is unchanged
    Q = protocol(text_training=True, lr_text=1e-3, hard_negatives=2)
    cfg = Q.fit_config(0)
    assert (cfg.lr_text, cfg.hard_negatives) == (1e-3, 2)
    d = Q.as_dict()
    assert (d["text_training"], d["lr_text"], d["hard_negatives"]) == (True, 1e-3, 2)
    line = Q.describe()
    assert "text tower trained at lr 0.001" in line and "2 counterfactual caption(s) (direction/order)" in line
    assert protocol(hard_negatives=1, hard_negative_factors=["order"]).hard_negative_factors == ("order",)
    with pytest.raises(ValueError, match="hard_negative_factors"):
        protocol(hard_negative_factors=("colour",))
    R = P.replace(text_training=True, hard_negatives=1, reason="the text side trains")
    assert "text_training False -> True (the text side trains)" in R.differences()
    assert "hard_negatives 0 -> 1 (the text side trains)" in R.differences()
    with pytest.raises(ValueError, match="hard_negatives"):
        protocol(hard_negatives=-1)
    with pytest.raises(TypeError, match="text_training"):
        protocol(text_training="yes")
