"""The encoder a run asks for, by name: the one call that may train the tiny CLIP first.

:func:`tvrlib.encoders.load_encoder` only loads weights that exist; :mod:`tvrlib.pretrain` trains
the tiny CLIP. :func:`get_encoder` sits above both (``Session.encoder`` calls it):

* ``clip_model="tvr-tiny-attn"`` (or another tiny config), ``pretrained=None``: the tiny CLIP pretrained on the
  synthetic benchmark ``benchmark`` with ``seed`` (its settings: :func:`tvrlib.pretrain.pretrain_config`), trained
  and cached under ``data/models/`` on first use (a few minutes on a CPU; ``make data`` does it ahead of time),
  then loaded;
* anything else goes straight to :func:`~tvrlib.encoders.load_encoder` (a weights file, an
  open_clip tag such as ``"openai"``, or random weights with a warning).
"""

from __future__ import annotations

import os

from .encoders import TINY_MODEL, TINY_MODELS, ClipEncoder, load_encoder

__all__ = ["get_encoder"]


def get_encoder(
    clip_model: str = TINY_MODEL,
    pretrained: str | os.PathLike | None = None,
    device: str = "auto",
    benchmark: str = "quick",
    seed: int = 0,
) -> ClipEncoder:
    """A :class:`~tvrlib.encoders.ClipEncoder` for ``clip_model``; trains the tiny CLIP's checkpoint if missing."""
    if clip_model in TINY_MODELS and pretrained is None:
        from .pretrain import ensure_tiny_clip

        pretrained = ensure_tiny_clip(benchmark, seed=seed, model_name=clip_model)
    return load_encoder(clip_model, pretrained, device=device, seed=seed)
