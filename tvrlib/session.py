"""One call that sets a notebook up: ``S = tvrlib.session.setup(profile=..., ...)``.

The session derives everything from the notebook's parameters and the profile
(:mod:`tvrlib.profiles`), and hands out, lazily and cached:

* ``S.data(split)``            the :class:`~tvrlib.datasets.RetrievalData` of a split;
* ``S.encoder``                the :class:`~tvrlib.encoders.ClipEncoder`;
* ``S.videos(split)``          :class:`~tvrlib.heads.base.VideoInput` of the split's videos;
* ``S.texts(split)``           :class:`~tvrlib.heads.base.TextInput` of all the split's texts;
* ``S.queries(split)``         ``(TextInput, gold video index)`` of the t2v queries;
* ``S.save(experiment, rows)`` tidy results to ``results/<profile>/<experiment>.csv``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from .profiles import get_profile


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Session:
    settings: dict
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def profile(self) -> str:
        return self.settings["profile"]

    @property
    def n_boot(self) -> int:
        return int(self.settings["n_boot"])

    @property
    def num_frames(self) -> int:
        return int(self.settings["num_frames"])

    def data(self, split: str):
        key = ("data", split)
        if key not in self._cache:
            from .datasets import load_dataset

            self._cache[key] = load_dataset(self.settings["dataset"], split, **self.settings["dataset_options"])
        return self._cache[key]

    @property
    def encoder(self):
        if "encoder" not in self._cache:
            from .models import get_encoder

            self._cache["encoder"] = get_encoder(
                self.settings["clip_model"],
                self.settings["pretrained"],
                device=self.device,
                benchmark=self.settings.get("clip_benchmark") or self.settings["benchmark"] or "quick",
                seed=0,
            )
            self._cache["encoder"].set_max_words(self.settings.get("max_words"))
        return self._cache["encoder"]

    def video_features(self, split: str, with_patches: bool = False, sampler: str | None = None):
        from .features import encode_videos

        key = ("video", split, with_patches, sampler)
        if key not in self._cache:
            self._cache[key] = encode_videos(
                self.encoder,
                self.data(split),
                self.num_frames,
                sampler or self.settings["sampler"],
                with_patches=with_patches,
                progress=self.progress,
            )
        return self._cache[key]

    def text_features(self, split: str, with_words: bool = False):
        from .features import encode_texts

        key = ("text", split, with_words)
        if key not in self._cache:
            self._cache[key] = encode_texts(self.encoder, self.data(split).texts, with_words=with_words)
        return self._cache[key]

    def videos(self, split: str, with_patches: bool = False, sampler: str | None = None):
        from .heads.base import VideoInput

        f = self.video_features(split, with_patches, sampler)
        return VideoInput(f.frames, f.mask, f.patches)

    def texts(self, split: str, with_words: bool = False):
        from .heads.base import TextInput

        f = self.text_features(split, with_words)
        return TextInput(f.sentence, f.words, f.mask if with_words else None)

    def queries(self, split: str = "test", with_words: bool = False):
        """The t2v queries of ``split`` and their gold video indices."""
        d = self.data(split)
        return self.texts(split, with_words).index(torch.as_tensor(d.query_index)), d.text_to_video[d.query_index]

    def save(self, experiment: str, rows):
        from .reporting import save_results

        return save_results(self.profile, experiment, rows)


def default_threads() -> int:
    """Torch threads of a session whose notebook does not set ``threads``: ``$TVR_THREADS`` when set (``make test``
    runs two notebooks at once under nbval with ``TVR_THREADS=1``, one core each), else up to 4 of the CPU's cores."""
    env = os.environ.get("TVR_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"TVR_THREADS must be a positive integer (torch threads), got {env!r}")
        return int(env)
    return min(4, os.cpu_count() or 1)


def setup(
    profile: str = "quick",
    *,
    dataset: str | None = None,
    clip_model: str | None = None,
    pretrained: str | None = None,
    num_frames: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = False,
    threads: int | None = None,
) -> Session:
    """Derive a notebook's settings from its parameters; seed everything; pick the device."""
    settings = get_profile(
        profile, dataset=dataset, clip_model=clip_model, pretrained=pretrained, num_frames=num_frames
    )
    if dataset is not None and dataset != get_profile(profile)["dataset"]:
        settings["dataset_options"] = {}
    seed_everything(seed)
    torch.set_num_threads(threads or default_threads())
    from .encoders import resolve_device

    return Session(settings, seed=seed, device=str(resolve_device(device)), progress=progress)
