"""The model :func:`tvrlib.training.fit` trains: a head, CLIP's temperature and, end to end, the CLIP towers."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..heads.base import RetrievalHead, TextInput, VideoInput
from ..losses import clamp_logit_scale_
from .config import FitConfig


class RetrievalModel(nn.Module):
    """A head, CLIP's learnable log-temperature and, for end-to-end training, the CLIP encoder.

    ``logits(text, video) -> [T, V]`` is what the losses see: ``exp(logit_scale) * score`` for heads
    that output cosines, the raw score for heads that output their own logits (``tightTransf``:
    ``head.uses_logit_scale`` is False).
    """

    def __init__(self, head: RetrievalHead, encoder=None, logit_scale: float | None = None):
        super().__init__()
        self.head = head
        self.encoder = encoder  # a tvrlib.encoders.ClipEncoder (fine-tuned end to end) or None
        self.clip = encoder.model if encoder is not None else None  # registered: saved, trained, moved
        if logit_scale is None:
            logit_scale = math.log(1 / 0.07)  # CLIP's initial temperature
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        clamp_logit_scale_(self.logit_scale)

    @property
    def end_to_end(self) -> bool:
        return self.clip is not None

    def logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        s = self.head.score(text, video)
        return s * self.logit_scale.exp() if self.head.uses_logit_scale else s

    def param_groups(self, cfg: FitConfig) -> list[dict]:
        """Optimiser groups: encoder and head, each split into decayed weight matrices and the rest."""

        def split(params):
            params = [p for p in params if p.requires_grad]
            return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]

        groups = []
        if self.clip is not None:
            dec, no = split(self.clip.parameters())
            groups += [
                {"name": "encoder", "params": dec, "lr": cfg.lr_encoder, "weight_decay": cfg.weight_decay},
                {"name": "encoder_no_decay", "params": no, "lr": cfg.lr_encoder, "weight_decay": 0.0},
            ]
        dec, no = split(self.head.parameters())
        groups += [
            {"name": "head", "params": dec, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
            {"name": "head_no_decay", "params": no, "lr": cfg.lr, "weight_decay": 0.0},
            {
                "name": "logit_scale",
                "params": [self.logit_scale],
                "lr": cfg.lr_encoder if self.end_to_end else cfg.lr,
                "weight_decay": 0.0,
            },
        ]
        return [g for g in groups if g["params"]]


def finetunable_copy(encoder):
    """A deep copy of a :class:`~tvrlib.encoders.ClipEncoder` to fine-tune, so the session's encoder
    (and the feature cache keyed by its weights) is never modified. Its features are never cached."""
    enc = copy.deepcopy(encoder)
    enc.weights_id = f"{encoder.weights_id}+finetuned"
    for p in enc.model.parameters():
        p.requires_grad_(True)
    return enc
