"""Losses (masking by video id, the hinge by hand, the temperature clamp) and the fit loop
(a step lowers the loss, resume equals an uninterrupted run, selection on validation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tvrlib import training
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.losses import MAX_LOGIT_SCALE, hardest_negative_hinge, same_video_mask, symmetric_infonce
from tvrlib.training import FeatureSource, FitConfig, RetrievalModel, fit, loop

D, F_ = 8, 4


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- losses
def test_same_video_mask_marks_only_other_rows_of_the_same_video():
    m = same_video_mask(torch.tensor([3, 5, 3, 7]), 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 2] = expected[2, 0] = True
    assert torch.equal(m, expected)


def test_infonce_equals_open_clip_loss_when_videos_are_distinct():
    from open_clip.loss import ClipLoss

    g = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(6, D, generator=g), dim=-1)
    video = torch.nn.functional.normalize(torch.randn(6, D, generator=g), dim=-1)
    scale = torch.tensor(20.0)
    ours = symmetric_infonce(scale * text @ video.T, torch.arange(6))
    theirs = ClipLoss()(video, text, scale)  # open_clip: (image_features, text_features, logit_scale)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(ours, symmetric_infonce(scale * text @ video.T), atol=1e-6)


def test_infonce_never_uses_a_caption_of_the_same_video_as_a_negative():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 4, generator=g, requires_grad=True)
    ids = torch.tensor([0, 1, 0, 2])  # rows 0 and 2 are two captions of video 0
    loss = symmetric_infonce(logits, ids)
    loss.backward()
    assert logits.grad[0, 2] == 0 and logits.grad[2, 0] == 0  # no push-away from the duplicate
    assert logits.grad[0, 1] != 0
    # by hand: drop the duplicate entries from both softmaxes
    L = logits.detach()

    def ce(row, keep, target):
        return -(row[target] - torch.logsumexp(row[keep], 0))

    rows = [ce(L[0], [0, 1, 3], 0), ce(L[1], [0, 1, 2, 3], 1), ce(L[2], [1, 2, 3], 2), ce(L[3], [0, 1, 2, 3], 3)]
    cols = [
        ce(L[:, 0], [0, 1, 3], 0),
        ce(L[:, 1], [0, 1, 2, 3], 1),
        ce(L[:, 2], [1, 2, 3], 2),
        ce(L[:, 3], [0, 1, 2, 3], 3),
    ]
    assert torch.allclose(loss.detach(), 0.5 * (torch.stack(rows).mean() + torch.stack(cols).mean()), atol=1e-6)


def test_hinge_equals_a_hand_computed_example():
    s = torch.tensor([[0.9, 0.5, 0.1], [0.3, 0.4, 0.8], [0.2, 0.1, 0.7]])
    # captions (rows): hardest other video 0.5, 0.8, 0.2 -> [0.2-0.9+0.5]+=0, [0.2-0.4+0.8]=0.6, [0.2-0.7+0.2]+=0
    # videos (cols):   hardest other caption 0.3, 0.5, 0.8 -> 0, [0.2-0.4+0.5]=0.3, [0.2-0.7+0.8]=0.3
    assert torch.allclose(hardest_negative_hinge(s, margin=0.2), torch.tensor(1.2))
    assert torch.allclose(hardest_negative_hinge(s, margin=0.2, reduction="mean"), torch.tensor(0.4))


def test_hinge_ignores_captions_of_the_same_video():
    s = torch.tensor([[0.9, 0.1, 0.95], [0.1, 0.9, 0.1], [0.95, 0.1, 0.9]])
    ids = torch.tensor([4, 6, 4])  # rows/columns 0 and 2 are the same video
    assert torch.allclose(hardest_negative_hinge(s, ids, margin=0.2), torch.tensor(0.0))
    assert hardest_negative_hinge(s, margin=0.2) > 0  # without ids they would be (false) violations


def test_logit_scale_is_clamped_at_init_and_after_every_step():
    head = HEADS.build("meanP")
    assert RetrievalModel(head, logit_scale=10.0).logit_scale.item() == pytest.approx(MAX_LOGIT_SCALE)
    model = RetrievalModel(head, logit_scale=MAX_LOGIT_SCALE)
    train = tiny_source(0)
    res = fit(model, train, train, epochs=1, batch_size=8, lr=10.0, warmup=0.0, progress=False)
    assert res.model.logit_scale.item() <= MAX_LOGIT_SCALE + 1e-7
    assert (res.steps["logit_scale"] <= 100.0 + 1e-4).all()


# --------------------------------------------------------------------------- fit
def tiny_source(seed: int, n_videos: int = 24, captions: int = 2) -> FeatureSource:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_videos, F_, D, generator=g)
    mask = torch.ones(n_videos, F_, dtype=torch.bool)
    mask[::4, 3:] = False
    t2v = np.repeat(np.arange(n_videos), captions)
    sentence = frames.mean(1)[t2v] + 0.7 * torch.randn(len(t2v), D, generator=g)
    return FeatureSource(TextInput(sentence), VideoInput(frames, mask), t2v)


def small_head(name: str = "seqTransf"):
    torch.manual_seed(0)
    kw = {"dim": D}
    if name in ("seqTransf", "tightTransf"):
        kw.update(layers=1, heads=2)
    return HEADS.build(name, **kw)


@pytest.mark.parametrize("name,loss", [("seqTransf", "infonce"), ("seqLSTM", "hinge"), ("tightTransf", "infonce")])
def test_a_training_step_lowers_the_loss_on_a_fixed_batch(name, loss):
    src = tiny_source(0)
    model = RetrievalModel(small_head(name))
    cfg = FitConfig(loss=loss)
    idx = np.arange(16)
    text, video, ids = src.batch(idx, model, np.random.default_rng(0))
    opt = torch.optim.AdamW(model.param_groups(FitConfig(lr=1e-2)))
    model.train()
    torch.manual_seed(0)
    model.head.eval()  # no dropout: compare the same function before and after
    before = loop.batch_loss(cfg, model, text, video, ids)
    for _ in range(3):
        opt.zero_grad()
        loop.batch_loss(cfg, model, text, video, ids).backward()
        opt.step()
    after = loop.batch_loss(cfg, model, text, video, ids)
    assert after.item() < before.item()


def test_fit_history_and_steps_frames():
    src = tiny_source(0)
    res = fit(small_head(), src, src.subset(12), epochs=2, batch_size=8, lr=1e-3, progress=False)
    assert list(res.history["epoch"]) == [1, 2]
    assert {"train_loss", "val_R1", "val_MnR", "train_seconds", "logit_scale"} <= set(res.history.columns)
    assert len(res.steps) == 2 * (len(src) // 8)
    assert res.best_epoch in (1, 2)
    lr = res.steps["lr_head"].to_numpy()
    assert lr.argmax() == round(0.1 * len(lr)) - 1 and lr[-1] < 1e-8  # warm-up, then cosine to 0


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    src, val = tiny_source(0), tiny_source(0).subset(12)
    kw = dict(epochs=3, batch_size=8, lr=1e-3, progress=False)
    full = fit(small_head(), src, val, checkpoint_dir=tmp_path / "a", **kw)
    part = fit(small_head(), src, val, checkpoint_dir=tmp_path / "b", stop_after_epoch=1, **kw)
    assert len(part.history) == 1
    torch.manual_seed(123)  # the global RNG state must not matter
    resumed = fit(small_head(), src, val, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    cols = ["epoch", "train_loss", "val_R1", "val_R5", "val_R10", "val_MdR", "val_MnR", "logit_scale"]
    pd_equal = full.history[cols].equals(resumed.history[cols])
    assert pd_equal, (full.history[cols], resumed.history[cols])
    assert full.best_epoch == resumed.best_epoch
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="config differs"):
        fit(small_head(), src, val, checkpoint_dir=tmp_path / "b", resume=True, **{**kw, "lr": 2e-3})


@pytest.mark.parametrize(
    "metric,values,best", [("R1", [10.0, 30.0, 20.0], 2), ("MnR", [5.0, 4.0, 6.0], 2), ("R1", [40.0, 30.0, 20.0], 1)]
)
def test_fit_keeps_the_epoch_that_is_best_on_validation(monkeypatch, metric, values, best):
    seen = []

    def scripted_validate(model, source):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        v = values[len(seen) - 1]
        return {"R1": v, "R5": v, "R10": v, "MdR": v, "MnR": v, "n": 1}

    monkeypatch.setattr(loop, "validate", scripted_validate)
    src = tiny_source(0)
    res = fit(small_head(), src, src, epochs=3, batch_size=8, lr=1e-2, select_metric=metric, progress=False)
    assert res.best_epoch == best and res.best_value == values[best - 1]
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, seen[best - 1][k]), k
    assert not torch.equal(
        seen[best - 1]["head.transformer.resblocks.0.mlp.c_fc.weight"],
        seen[(best % 3)]["head.transformer.resblocks.0.mlp.c_fc.weight"],
    )


def test_checkpoints_are_written_whole_and_a_resumed_run_restores_an_earlier_best_epoch(monkeypatch, tmp_path):
    values = iter([40.0, 30.0, 20.0])  # epoch 1 is the best; the run is interrupted after it

    def scripted_validate(model, source):
        v = next(values)
        return {"R1": v, "R5": v, "R10": v, "MdR": v, "MnR": v, "n": 1}

    monkeypatch.setattr(loop, "validate", scripted_validate)
    src = tiny_source(0)
    kw = dict(epochs=3, batch_size=8, lr=1e-2, progress=False, checkpoint_dir=tmp_path)
    first = fit(small_head(), src, src, stop_after_epoch=1, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temp files left
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["epoch"] == 0 and best["value"] == 40.0
    resumed = fit(small_head(), src, src, resume=True, **kw)
    assert list(resumed.history["epoch"]) == [1, 2, 3] and resumed.best_epoch == 1 and resumed.best_value == 40.0
    for k, v in resumed.model.state_dict().items():  # the weights of epoch 1, read back from best.pt
        assert torch.equal(v, first.model.state_dict()[k]), k
    fresh = fit(small_head(), src, src, stop_after_epoch=0, **kw)  # without resume, last.pt is removed
    assert not (tmp_path / "last.pt").exists() and len(fresh.history) == 0


def test_the_public_names_stay_importable_from_the_package():
    import tvrlib.training as T

    assert set(T.__all__) == {
        "FitConfig",
        "RetrievalModel",
        "finetunable_copy",
        "text_tower_copy",
        "FeatureSource",
        "TextTowerSource",
        "FrameSource",
        "CaptionNegatives",
        "HardNegatives",
        "text_tower_texts",
        "FitResult",
        "fit",
        "validate",
    }
    assert all(callable(getattr(T, name)) for name in T.__all__)


def test_frozen_meanP_training_changes_only_the_temperature():
    src = tiny_source(0)
    head = HEADS.build("meanP")
    before = score_all(head, src.texts, src.videos)
    res = fit(head, src, src, epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert [n for n, _ in res.model.named_parameters()] == ["logit_scale"]
    assert torch.equal(score_all(res.head, src.texts, src.videos), before)


def test_end_to_end_source_trains_the_encoder(tmp_path):
    """One end-to-end step on two fixture videos with a randomly initialised tiny CLIP."""
    import open_clip

    from tvrlib.datasets.base import RetrievalData, Video
    from tvrlib.encoders import TINY_MODEL, ClipEncoder, register_configs

    register_configs()
    videos = sorted((__import__("pathlib").Path(__file__).parent / "fixtures" / "real").rglob("*.mp4"))[:2]
    if len(videos) < 2:
        pytest.skip("needs two fixture videos")
    data = RetrievalData(
        "fixture",
        "train",
        [Video(f"v{i}", p) for i, p in enumerate(videos)],
        ["a red thing", "a blue thing", "a red shape", "a blue shape"],
        [0, 1, 0, 1],
        [0, 1, 2, 3],
    )
    torch.manual_seed(0)
    enc = ClipEncoder(
        open_clip.create_model(TINY_MODEL),
        open_clip.get_tokenizer(TINY_MODEL),
        TINY_MODEL,
        "random",
        torch.device("cpu"),
    )
    enc = training.finetunable_copy(enc)
    model = RetrievalModel(HEADS.build("meanP"), encoder=enc)
    src = training.FrameSource(data, num_frames=2)
    w0 = next(enc.model.visual.parameters()).detach().clone()
    res = fit(model, src, src, epochs=1, batch_size=4, lr_encoder=1e-3, warmup=0.0, progress=False)
    assert not torch.equal(next(res.model.clip.visual.parameters()), w0)
    assert {g for g in res.steps.columns if g.startswith("lr_")} == {"lr_encoder", "lr_logit_scale"}


# --------------------------------------------------------------------------- early stopping
def scripted(values):
    """A validate() that returns ``values`` one epoch after another (every metric the same number)."""
    it = iter(values)

    def validate(model, source):
        v = next(it)
        return {"R1": v, "R5": v, "R10": v, "MdR": v, "MnR": v, "n": 1}

    return validate


@pytest.mark.parametrize(
    "metric,values,patience,min_delta,epochs_run,best",
    [
        ("R1", [10.0, 30.0, 20.0, 25.0, 28.0, 29.0, 50.0], 3, 0.0, 5, 2),  # 3 epochs without beating 30 -> stop
        ("R1", [10.0, 30.0, 30.0, 30.0, 50.0], 2, 0.0, 4, 2),  # an equal value is no improvement
        ("R1", [10.0, 30.0, 30.5, 30.8, 40.0], 2, 1.0, 4, 4),  # gains below min_delta count as none; best is 30.8
        ("MnR", [5.0, 4.0, 4.0, 4.5, 3.0], 2, 0.0, 4, 2),  # lower is better
        ("R1", [10.0, 20.0, 30.0, 40.0], 1, 0.0, 4, 4),  # still improving: runs to the maximum
    ],
)
def test_early_stopping_stops_at_the_right_epoch(monkeypatch, metric, values, patience, min_delta, epochs_run, best):
    monkeypatch.setattr(loop, "validate", scripted(values))
    src = tiny_source(0)
    res = fit(
        small_head("seqLSTM"),
        src,
        src,
        epochs=len(values),
        batch_size=8,
        select_metric=metric,
        patience=patience,
        min_delta=min_delta,
        progress=False,
    )
    assert res.epochs_run == epochs_run == len(res.history) and list(res.history["epoch"]) == list(
        range(1, epochs_run + 1)
    )
    assert res.stopped_early == (epochs_run < len(values))
    assert res.best_epoch == best and res.best_value == values[best - 1]
    assert len(res.steps) == epochs_run * (len(src) // 8)


def test_without_patience_every_epoch_runs(monkeypatch):
    values = [10.0, 30.0, 20.0, 20.0, 20.0]
    monkeypatch.setattr(loop, "validate", scripted(values))
    src = tiny_source(0)
    res = fit(small_head("seqLSTM"), src, src, epochs=5, batch_size=8, progress=False)
    assert res.config.patience is None and res.epochs_run == 5 and not res.stopped_early and res.best_epoch == 2


def test_an_early_stopped_run_is_the_start_of_the_run_without_patience():
    """The schedule spans the maximum budget, so patience changes nothing but where the run ends; patience=None and a
    patience that never triggers give bit-identical runs."""
    src, val = tiny_source(0), tiny_source(3).subset(12)
    kw = dict(epochs=6, batch_size=8, lr=3e-2, progress=False)
    full = fit(small_head(), src, val, **kw)
    never = fit(small_head(), src, val, patience=6, **kw)
    cols = ["epoch", "train_loss", "val_R1", "val_R5", "val_R10", "val_MdR", "val_MnR", "logit_scale"]
    assert full.history[cols].equals(never.history[cols]) and full.steps.equals(never.steps)
    for (k, a), b in zip(full.model.state_dict().items(), never.model.state_dict().values()):
        assert torch.equal(a, b), k
    # where patience 2 stops, read off the full run's validation curve
    r1, best, stale, stop = full.history["val_R1"].to_numpy(), -1.0, 0, len(full.history)
    for e, v in enumerate(r1, 1):
        best, stale = (v, 0) if v > best else (best, stale + 1)
        if stale == 2:
            stop = e
            break
    assert stop < 6, "the curve should trigger early stopping (change lr or seeds if the data changed)"
    short = fit(small_head(), src, val, patience=2, **kw)
    assert short.epochs_run == stop and short.stopped_early
    assert short.history[cols].equals(full.history[cols].iloc[:stop])
    assert short.steps.equals(full.steps.iloc[: len(short.steps)])
    assert short.best_epoch == int(np.argmax(r1[:stop])) + 1


def test_resume_with_early_stopping_reproduces_the_uninterrupted_run(monkeypatch, tmp_path):
    values = [10.0, 30.0, 20.0, 25.0, 28.0, 50.0]
    src = tiny_source(0)
    kw = dict(epochs=6, batch_size=8, lr=1e-2, patience=3, progress=False)
    monkeypatch.setattr(loop, "validate", scripted(values))
    full = fit(small_head(), src, src, checkpoint_dir=tmp_path / "a", **kw)
    assert full.epochs_run == 5 and full.stopped_early
    monkeypatch.setattr(loop, "validate", scripted(values))
    part = fit(small_head(), src, src, checkpoint_dir=tmp_path / "b", stop_after_epoch=3, **kw)
    assert part.epochs_run == 3 and not part.stopped_early
    monkeypatch.setattr(loop, "validate", scripted(values[3:]))
    resumed = fit(small_head(), src, src, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    assert resumed.epochs_run == 5 and resumed.stopped_early and resumed.best_epoch == full.best_epoch == 2
    cols = ["epoch", "train_loss", "val_R1", "logit_scale"]
    assert full.history[cols].equals(resumed.history[cols])
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    # resuming a run that early stopping ended trains nothing more
    monkeypatch.setattr(loop, "validate", scripted([]))
    again = fit(small_head(), src, src, checkpoint_dir=tmp_path / "b", resume=True, **kw)
    assert again.epochs_run == 5 and again.stopped_early and again.best_epoch == 2


def test_a_checkpoint_from_before_early_stopping_still_resumes(tmp_path):
    src, val = tiny_source(0), tiny_source(0).subset(12)
    kw = dict(epochs=2, batch_size=8, lr=1e-3, progress=False, checkpoint_dir=tmp_path)
    fit(small_head(), src, val, stop_after_epoch=1, **kw)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    for k in ("patience", "min_delta"):
        del state["config"][k]
    for k in ("ref_value", "stale", "stopped_early"):
        del state[k]
    torch.save(state, tmp_path / "last.pt")
    res = fit(small_head(), src, val, resume=True, **kw)
    assert res.epochs_run == 2 and not res.stopped_early


@pytest.mark.parametrize("bad", [dict(patience=0), dict(patience=1.5), dict(min_delta=-1.0)])
def test_early_stopping_settings_are_checked(bad):
    with pytest.raises(ValueError):
        FitConfig(**bad)
