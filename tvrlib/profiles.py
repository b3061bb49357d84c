"""Named run profiles: what a notebook's ``profile`` parameter expands to -- one table, :data:`PROFILES`.

``tiny`` runs every notebook end to end in CI (a few dozen videos, one short epoch: the numbers mean
nothing, the run proves the code paths); ``quick`` is what the committed notebooks and a first-time student
run (the whole suite in minutes on two CPU cores); ``full`` is a larger synthetic benchmark with tighter
confidence intervals; ``msrvtt`` is the real path (MSR-VTT 1k-A, ViT-B/32 with OpenAI weights, the papers'
settings: 12 frames, 32 words, batch 128) and expects a GPU.

``fixture`` runs every notebook on real-format data in CI: the MSR-VTT fixture files in ``tests/fixtures/real/``
(three test videos) with the tiny CLIP of ``tiny``; it proves that no notebook assumes the synthetic benchmark (its
numbers mean nothing).

``clip_benchmark`` (optional) names the benchmark whose still frames pretrained the tiny CLIP, when it is
not the profile's own ``benchmark``.

Each profile holds the data and model settings (:func:`get_profile`, what :func:`tvrlib.session.setup`
uses) and, under ``"training"``, the training budget of the notebooks that train heads
(:func:`training_settings`). A notebook parameter that is not ``None`` overrides the profile's value.
"""

from __future__ import annotations

from .errors import UnknownNameError
from .paths import PROJECT_ROOT

#: Real-format fixture datasets (a few seconds of video each), the ``fixture`` profile's data.
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "real"

#: Every profile: data/model settings, then its ``training`` settings. ``msrvtt`` trains with CLIP4Clip's MSR-VTT recipe
#: (docs/papers.md; method_cards.md card 1); ``quick`` shrinks it to minutes on two CPU cores: a 10x higher head
#: learning rate for few epochs, 2 temporal layers instead of 4, a short end-to-end demo (30 steps of 16 pairs, encoder
#: lr 5e-5), and a capped budget for the cross-encoder, whose every step costs ``B^2`` passes. The caps ``tight_steps``,
#: ``tight_val_videos``, ``tight_gallery``, ``e2e_steps`` and ``e2e_val_videos`` mean "no cap" (every step, every video)
#: when 0. ``max_epochs``, ``patience`` and ``seeds`` are the shared training protocol's (:mod:`tvrlib.experiment`):
#: every head trains for at most ``max_epochs`` epochs (the span of its warm-up/cosine schedule), stops once validation
#: R@1 has not improved for ``patience`` epochs, and is trained once per seed (``seeds`` of them: the notebook's
#: ``seed``, ``seed + 1``, ...): 3 in ``quick`` (frozen features make a run seconds per epoch), 5 in ``full``, 2 in
#: ``tiny`` (CI proves the code path).
PROFILES: dict[str, dict] = {
    "tiny": {
        "dataset": "synthetic",
        "benchmark": "tiny",
        "clip_model": "tvr-tiny-attn",
        "pretrained": None,
        "clip_benchmark": "quick",  # the tiny CLIP trained on the quick benchmark's stills (64 are too few)
        "num_frames": 12,
        "sampler": "uniform",
        "n_boot": 200,
        "dataset_options": {"config": "tiny"},
        "training": {
            "batch_size": 32,
            "lr": 1e-3,
            "lr_encoder": 5e-5,
            "temporal_layers": 1,
            "tight_batch_size": 8,
            "tight_steps": 2,
            "tight_val_videos": 4,
            "tight_gallery": 12,
            "e2e_epochs": 1,
            "e2e_steps": 2,
            "e2e_batch_size": 8,
            "e2e_val_videos": 4,
            "max_epochs": 2,
            "patience": 1,
            "seeds": 2,
            "light": False,
        },
    },
    "quick": {
        "dataset": "synthetic",
        "benchmark": "quick",
        "clip_model": "tvr-tiny-attn",
        "pretrained": None,
        "num_frames": 12,
        "sampler": "uniform",
        "n_boot": 1000,
        "dataset_options": {"config": "quick"},
        "training": {
            "batch_size": 128,
            "lr": 1e-3,
            "lr_encoder": 5e-5,
            "temporal_layers": 2,
            "tight_batch_size": 32,
            "tight_steps": 60,
            "tight_val_videos": 50,
            "tight_gallery": 100,
            "e2e_epochs": 1,
            "e2e_steps": 30,
            "e2e_batch_size": 16,
            "e2e_val_videos": 100,
            "max_epochs": 15,
            "patience": 3,
            "seeds": 3,
            "light": True,
        },
    },
    "full": {
        "dataset": "synthetic",
        "benchmark": "full",
        "clip_model": "tvr-tiny-attn",
        "pretrained": None,
        "num_frames": 12,
        "sampler": "uniform",
        "n_boot": 2000,
        "dataset_options": {"config": "full"},
        "training": {
            "batch_size": 128,
            "lr": 1e-3,
            "lr_encoder": 5e-5,
            "temporal_layers": 4,
            "tight_batch_size": 32,
            "tight_steps": 0,
            "tight_val_videos": 100,
            "tight_gallery": 0,
            "e2e_epochs": 2,
            "e2e_steps": 0,
            "e2e_batch_size": 32,
            "e2e_val_videos": 0,
            "max_epochs": 30,
            "patience": 5,
            "seeds": 5,
            "light": False,
        },
    },
    "fixture": {
        "dataset": "msrvtt",
        "benchmark": None,
        "clip_benchmark": "tiny",
        "clip_model": "tvr-tiny-attn",
        "pretrained": None,
        "num_frames": 12,
        "max_words": 32,
        "sampler": "uniform",
        "n_boot": 50,
        "dataset_options": {"root": str(FIXTURES / "msrvtt"), "train_csv": "MSRVTT_train.9k.csv", "val_size": 2},
        "training": {
            "batch_size": 4,
            "lr": 1e-3,
            "lr_encoder": 5e-5,
            "temporal_layers": 1,
            "tight_batch_size": 2,
            "tight_steps": 2,
            "tight_val_videos": 2,
            "tight_gallery": 3,
            "e2e_epochs": 1,
            "e2e_steps": 2,
            "e2e_batch_size": 2,
            "e2e_val_videos": 2,
            "max_epochs": 2,
            "patience": 1,
            "seeds": 2,
            "light": False,
        },
    },
    "msrvtt": {
        "dataset": "msrvtt",
        "benchmark": None,
        "clip_model": "ViT-B-32",
        "pretrained": "openai",
        "num_frames": 12,
        "max_words": 32,
        "sampler": "uniform",
        "n_boot": 2000,
        "dataset_options": {"train_csv": "MSRVTT_train.9k.csv"},
        "training": {
            "batch_size": 128,
            "lr": 1e-4,
            "lr_encoder": 1e-7,
            "temporal_layers": 4,
            "tight_batch_size": 128,
            "tight_steps": 0,
            "tight_val_videos": 0,
            "tight_gallery": 0,
            "e2e_epochs": 5,
            "e2e_steps": 0,
            "e2e_batch_size": 128,
            "e2e_val_videos": 0,
            "max_epochs": 10,
            "patience": 3,
            "seeds": 3,
            "light": False,
        },
    },
}


def _real_profile(
    dataset: str, dataset_options: dict | None = None, num_frames: int = 12, max_words: int = 32, **training
) -> dict:
    """A real-data profile with the papers' common recipe (CLIP4Clip's: ViT-B/32 with OpenAI weights, uniform
    sampling; the ``msrvtt`` profile's training settings) for ``dataset``; ``training`` replaces settings."""
    base = PROFILES["msrvtt"]
    return {
        **{k: v for k, v in base.items() if k != "training"},
        "dataset": dataset,
        "num_frames": num_frames,
        "max_words": max_words,
        "dataset_options": dict(dataset_options or {}),
        "training": {**base["training"], **training},
    }


#: One profile per real dataset, each with the split and settings the papers report on (docs/reproduce-real-data.md):
#: ``msrvtt`` trains on the 9k list (CLIP4Clip, X-Pool, TS2-Net, seeds 001-003), ``msrvtt-7k`` on the 7k list (seed
#: 000's MSR-VTT rows), both tested on 1k-A; MSVD ranks all its test captions (several per video); LSMDC its 1,000
#: test clips; DiDeMo and ActivityNet are paragraph-to-video retrieval, where CLIP4Clip samples 64 frames and uses a
#: batch of 64. ``max_words`` (optional; default: the model's context) truncates captions as CLIP4Clip does: 32 tokens,
#: 64 for paragraphs.
PROFILES.update(
    {
        # the robustness check of the findings (notebook 11): quick's budget on a second synthetic benchmark that
        # differs in generator seed and factor mix (data/synthetic/quick_alt.json), with its own tiny CLIP
        "quick_alt": {
            **{k: v for k, v in PROFILES["quick"].items() if k != "dataset_options"},
            "benchmark": "quick_alt",
            "dataset_options": {"config": "quick_alt"},
        },
        "msrvtt-7k": _real_profile("msrvtt", {"train_csv": "MSRVTT_train.7k.csv"}),
        "msvd": _real_profile("msvd"),
        "lsmdc": _real_profile("lsmdc"),
        "didemo": _real_profile(
            "didemo", num_frames=64, max_words=64, batch_size=64, e2e_batch_size=64, tight_batch_size=64
        ),
        "activitynet": _real_profile(
            "activitynet", num_frames=64, max_words=64, batch_size=64, e2e_batch_size=64, tight_batch_size=64
        ),
    }
)


def _profile(name: str) -> dict:
    if name not in PROFILES:
        raise UnknownNameError(f"unknown profile {name!r}; known profiles: {sorted(PROFILES)}")
    return PROFILES[name]


def get_profile(name: str, **overrides) -> dict:
    """The data and model settings of profile ``name`` (everything but ``training``) and ``profile=name``;
    keyword arguments that are not ``None`` override them."""
    out = {k: v for k, v in _profile(name).items() if k != "training"}
    out["profile"] = name
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


def training_settings(profile: str, **overrides) -> dict:
    """The training settings of ``profile`` (its ``training`` entry in :data:`PROFILES`); overrides that are
    not ``None`` replace them, an override the profile does not have raises ``TypeError``."""
    out = dict(_profile(profile)["training"])
    unknown = set(overrides) - set(out)
    if unknown:
        raise TypeError(f"unknown training settings {sorted(unknown)}; known: {sorted(out)}")
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out
