"""One profile table: every profile has every setting, notebook overrides, named errors, the tiny CI profile."""

from __future__ import annotations

import pytest

from tvrlib.errors import UnknownNameError
from tvrlib.profiles import PROFILES, get_profile, training_settings

SETTINGS = {
    "dataset",
    "benchmark",
    "clip_model",
    "pretrained",
    "num_frames",
    "sampler",
    "n_boot",
    "dataset_options",
    "training",
}
OPTIONAL = {"clip_benchmark", "max_words"}
TRAINING = {
    "batch_size",
    "lr",
    "lr_encoder",
    "temporal_layers",
    "tight_batch_size",
    "tight_steps",
    "tight_val_videos",
    "tight_gallery",
    "e2e_epochs",
    "e2e_steps",
    "e2e_batch_size",
    "e2e_val_videos",
    "max_epochs",
    "patience",
    "seeds",
    "light",
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_has_every_setting(name):
    assert SETTINGS <= set(PROFILES[name]) <= SETTINGS | OPTIONAL
    assert set(PROFILES[name]["training"]) == TRAINING
    settings = get_profile(name)
    assert settings["profile"] == name and "training" not in settings  # what a Session holds
    assert training_settings(name) == PROFILES[name]["training"]


def test_the_profiles_state_the_papers_settings_where_they_follow_a_paper():
    """msrvtt follows CLIP4Clip (lr 1e-4 for new modules, 1e-7 for CLIP; 12 frames); quick runs the synthetic
    benchmark on the tiny CLIP with enough bootstrap resamples for 95 % CIs."""
    m, q = get_profile("msrvtt"), get_profile("quick")
    assert training_settings("msrvtt")["lr"] == 1e-4 and training_settings("msrvtt")["lr_encoder"] == 1e-7
    assert m["dataset"] == "msrvtt" and m["clip_model"] == "ViT-B-32" and m["num_frames"] == 12
    assert q["dataset"] == "synthetic" and q["clip_model"] == "tvr-tiny-attn" and q["pretrained"] is None
    assert q["n_boot"] >= 1000


def test_the_training_protocol_runs_enough_seeds_to_convergence():
    """Issue 7: >= 3 training seeds in quick, 5 in full; early stopping within a larger maximum budget."""
    assert training_settings("quick")["seeds"] >= 3 and training_settings("full")["seeds"] >= 5
    for name in PROFILES:
        t = training_settings(name)
        assert t["seeds"] >= 2 and 1 <= t["patience"] < t["max_epochs"]


def test_overrides_replace_values_and_none_keeps_the_profile_value():
    before = training_settings("quick")
    t = training_settings("quick", max_epochs=2, lr=None)
    assert t["max_epochs"] == 2 and t["lr"] == before["lr"]
    assert training_settings("quick") == before  # the table itself is not modified
    s = get_profile("quick", num_frames=8, dataset=None)
    assert s["num_frames"] == 8 and s["dataset"] == "synthetic"
    assert get_profile("quick")["num_frames"] == 12


def test_unknown_profile_and_unknown_training_setting_raise_named_errors():
    with pytest.raises(UnknownNameError, match="unknown profile 'nope'.*quick"):
        get_profile("nope")
    with pytest.raises(UnknownNameError, match="unknown profile 'nope'"):
        training_settings("nope")
    with pytest.raises(TypeError, match=r"unknown training settings \['epoch'\]"):
        training_settings("quick", epoch=3)
    with pytest.raises(TypeError, match="unknown training settings"):
        training_settings("quick", epoch=None)  # a misspelt parameter is an error even when left at None


def test_tiny_profile_runs_the_tiny_benchmark_quickly():
    from tvrlib.synthetic.benchmark import load_config

    s, t = get_profile("tiny"), training_settings("tiny")
    assert s["dataset"] == "synthetic" and s["benchmark"] == "tiny" and s["dataset_options"] == {"config": "tiny"}
    assert s["clip_model"] == "tvr-tiny-attn" and s["pretrained"] is None and s["num_frames"] == 12
    assert s["n_boot"] < get_profile("quick")["n_boot"]
    cfg = load_config(s["benchmark"])
    assert cfg.name == "tiny"
    assert t["max_epochs"] <= 3 and t["batch_size"] <= cfg.num_train * cfg.captions_train
    for cap in ("tight_steps", "tight_val_videos", "e2e_steps", "e2e_val_videos"):
        assert 0 < t[cap] <= training_settings("quick")[cap]  # capped (0 would mean "no cap")
    assert t["tight_val_videos"] <= cfg.num_val and t["e2e_val_videos"] <= cfg.num_val
    assert 0 < t["tight_gallery"] <= cfg.num_test


def test_session_setup_takes_the_tiny_profile():
    import torch

    import tvrlib.session

    threads = torch.get_num_threads()
    try:
        S = tvrlib.session.setup("tiny", device="cpu", threads=1)
        S2 = tvrlib.session.setup("tiny", dataset="msrvtt", device="cpu", threads=1)
    finally:
        torch.set_num_threads(threads)
    assert S.profile == "tiny" and S.n_boot == 200 and S.settings["dataset_options"] == {"config": "tiny"}
    assert S2.settings["dataset"] == "msrvtt" and S2.settings["dataset_options"] == {}  # another dataset's options


def _stub_prepare(monkeypatch):
    """``prepare`` with both steps stubbed (nothing written): the benchmarks it generates, the CLIPs it pretrains."""
    import tvrlib.pretrain
    import tvrlib.synthetic.benchmark as B

    generated, pretrained = [], []
    monkeypatch.setattr(B, "generate", lambda cfg, progress=False: generated.append(cfg.name) or cfg.name)
    monkeypatch.setattr(
        tvrlib.pretrain,
        "ensure_tiny_clip",
        lambda cfg, progress=False, model_name=None: pretrained.append((cfg.name, model_name)),
    )
    return generated, pretrained


@pytest.mark.parametrize("name", ["tiny", "quick", "full"])
def test_prepare_generates_the_profile_benchmark_and_the_clip_benchmark(name, monkeypatch, capsys):
    """`python -m tvrlib prepare --profile NAME` for each synthetic profile (both steps stubbed: nothing written)."""
    from tvrlib.__main__ import main

    generated, pretrained = _stub_prepare(monkeypatch)
    assert main(["prepare", "--profile", name]) == 0
    clip = PROFILES[name].get("clip_benchmark", PROFILES[name]["benchmark"])
    assert generated == list(dict.fromkeys([PROFILES[name]["benchmark"], clip]))
    assert pretrained == [(clip, PROFILES[name]["clip_model"])]


REAL_FIXTURE_OPTIONS = {  # the fixture folders are small: carve 2 validation videos where a loader carves
    "msrvtt": {"val_size": 2},
    "msvd": {},
    "lsmdc": {},
    "didemo": {},
    "activitynet": {"val_size": 1},
}


@pytest.mark.parametrize("name", ["msrvtt", "msrvtt-7k", "msvd", "lsmdc", "didemo", "activitynet"])
def test_each_real_profile_loads_its_dataset_in_the_real_format(name):
    """Every real profile's dataset, with the profile's own options, loads all three splits from the real-format
    fixture files (only the folder and the size of a validation carve-out differ from a reviewer's run)."""
    from tvrlib.datasets import load_dataset
    from tvrlib.profiles import FIXTURES

    p = get_profile(name)
    opts = {**p["dataset_options"], **REAL_FIXTURE_OPTIONS[p["dataset"]], "root": FIXTURES / p["dataset"]}
    sizes = {split: load_dataset(p["dataset"], split, **opts).num_videos for split in ("train", "val", "test")}
    assert all(n > 0 for n in sizes.values()), sizes
    assert p["clip_model"] == "ViT-B-32" and p["pretrained"] == "openai"


def test_the_real_profiles_follow_the_papers_splits_and_frames():
    assert get_profile("msrvtt")["dataset_options"]["train_csv"] == "MSRVTT_train.9k.csv"
    assert get_profile("msrvtt-7k")["dataset_options"]["train_csv"] == "MSRVTT_train.7k.csv"  # seed 000's list
    for name in ("didemo", "activitynet"):  # paragraph retrieval: CLIP4Clip's 64 frames, batch 64
        assert get_profile(name)["num_frames"] == 64 and training_settings(name)["batch_size"] == 64
    for name in ("msvd", "lsmdc"):
        assert get_profile(name)["num_frames"] == 12 and training_settings(name)["batch_size"] == 128


def test_prepare_for_the_fixture_profile_pretrains_the_tiny_clip_only(monkeypatch, capsys):
    """Real data with the tiny CLIP: no benchmark of its own to generate, only the stills of its clip_benchmark."""
    from tvrlib.__main__ import main

    generated, pretrained = _stub_prepare(monkeypatch)
    assert main(["prepare", "--profile", "fixture"]) == 0
    assert generated == ["tiny"] and pretrained == [("tiny", "tvr-tiny-attn")]
    generated.clear()
    assert main(["prepare", "--profile", "msrvtt"]) == 0  # ViT-B-32 weights: nothing to generate or pretrain
    assert generated == [] and "nothing to generate" in capsys.readouterr().out


def test_default_threads_follow_tvr_threads(monkeypatch):
    import os

    from tvrlib.session import default_threads

    monkeypatch.delenv("TVR_THREADS", raising=False)
    assert default_threads() == min(4, os.cpu_count() or 1)
    monkeypatch.setenv("TVR_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("TVR_THREADS", "two")
    with pytest.raises(ValueError, match="TVR_THREADS"):
        default_threads()


def test_quick_alt_is_quick_on_another_benchmark():
    """The robustness profile differs from quick in its benchmark only: same budget, model and bootstrap."""
    q, alt = get_profile("quick"), get_profile("quick_alt")
    differ = {k for k in q if q[k] != alt[k]}
    assert differ == {"profile", "benchmark", "dataset_options"}
    assert alt["benchmark"] == alt["dataset_options"]["config"] == "quick_alt"
    assert training_settings("quick_alt") == training_settings("quick")
    assert training_settings("quick")["light"] and not training_settings("full")["light"]
