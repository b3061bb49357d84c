"""Named run profiles: what a notebook's ``profile`` parameter expands to.

``quick`` is what CI and a first-time student run (the whole suite in minutes on
two CPU cores); ``full`` is a larger synthetic benchmark with tighter confidence
intervals; ``msrvtt`` is the real path (MSR-VTT 1k-A, ViT-B/32 with OpenAI weights,
the papers' settings: 12 frames, 32 words, batch 128) and expects a GPU.
A notebook parameter that is not ``None`` overrides the profile's value.
"""
from __future__ import annotations

from .errors import UnknownNameError

PROFILES: dict[str, dict] = {
    "quick": {"dataset": "synthetic", "benchmark": "quick", "clip_model": "tvr-tiny", "pretrained": None,
              "num_frames": 12, "sampler": "uniform", "n_boot": 1000, "dataset_options": {"config": "quick"}},
    "full": {"dataset": "synthetic", "benchmark": "full", "clip_model": "tvr-tiny", "pretrained": None,
             "num_frames": 12, "sampler": "uniform", "n_boot": 2000, "dataset_options": {"config": "full"}},
    "msrvtt": {"dataset": "msrvtt", "benchmark": None, "clip_model": "ViT-B-32", "pretrained": "openai",
               "num_frames": 12, "sampler": "uniform", "n_boot": 2000,
               "dataset_options": {"train_csv": "MSRVTT_train.9k.csv"}},
}


def get_profile(name: str, **overrides) -> dict:
    """The settings of profile ``name``; keyword arguments that are not ``None`` override them."""
    if name not in PROFILES:
        raise UnknownNameError(f"unknown profile {name!r}; known profiles: {sorted(PROFILES)}")
    out = dict(PROFILES[name], profile=name)
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out
