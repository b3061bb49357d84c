"""The model :func:`tvrlib.training.fit` trains: a head, CLIP's temperature and, when they train, CLIP's towers.

Three regimes, told apart by which encoder parameters require gradients:

* frozen features (no encoder): the head and the temperature learn;
* text tower (:func:`text_tower_copy`): the CLIP text tower learns with the head at ``FitConfig.lr_text``, the image
  tower is frozen and its frame features come from the cache (CLIP4Clip and X-Pool fine-tune the text encoder; here
  the frames stay cached, so a step costs a text forward and backward only);
* end to end (:func:`finetunable_copy`): both towers learn at ``FitConfig.lr_encoder`` (CLIP4Clip).
"""

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
        self.encoder = encoder  # a tvrlib.encoders.ClipEncoder (text tower or end to end) or None
        self.clip = encoder.model if encoder is not None else None  # registered: saved, trained, moved
        if logit_scale is None:
            logit_scale = math.log(1 / 0.07)  # CLIP's initial temperature
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        clamp_logit_scale_(self.logit_scale)

    @property
    def end_to_end(self) -> bool:
        """Both CLIP towers train (:func:`finetunable_copy`)."""
        return self.clip is not None and any(p.requires_grad for p in self.clip.visual.parameters())

    @property
    def text_tower(self) -> bool:
        """Only CLIP's text tower trains; the image tower is frozen (:func:`text_tower_copy`)."""
        return self.clip is not None and not self.end_to_end

    def logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        s = self.head.score(text, video)
        return s * self.logit_scale.exp() if self.head.uses_logit_scale else s

    def pair_logits(self, text: TextInput, video: VideoInput) -> torch.Tensor:
        """:meth:`logits` of ``N`` aligned pairs, text ``i`` with video ``i``: ``[N]`` (``head.score_pairs``)."""
        s = self.head.score_pairs(text, video)
        return s * self.logit_scale.exp() if self.head.uses_logit_scale else s

    def param_groups(self, cfg: FitConfig) -> list[dict]:
        """Optimiser groups: encoder (``encoder`` end to end at ``lr_encoder``, or ``text_tower`` at ``lr_text``) and
        head, each split into decayed weight matrices and the rest, and the temperature. Parameters that do not
        require gradients (a frozen image tower) are in no group."""

        def split(params):
            params = [p for p in params if p.requires_grad]
            return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]

        groups = []
        if self.clip is not None:
            name, lr = ("encoder", cfg.lr_encoder) if self.end_to_end else ("text_tower", cfg.lr_text)
            dec, no = split(self.clip.parameters())
            groups += [
                {"name": name, "params": dec, "lr": lr, "weight_decay": cfg.weight_decay},
                {"name": f"{name}_no_decay", "params": no, "lr": lr, "weight_decay": 0.0},
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


def in_text_tower(name: str) -> bool:
    """Whether open_clip parameter ``name`` belongs to CLIP's text tower: everything but the image tower
    (``visual.*``) and CLIP's own temperature (``logit_scale``, ``logit_bias``; :class:`RetrievalModel` has its own)."""
    return not name.startswith("visual.") and name not in ("logit_scale", "logit_bias")


def text_tower_copy(encoder):
    """A deep copy of a :class:`~tvrlib.encoders.ClipEncoder` whose text tower trains and whose image tower is
    frozen (``requires_grad=False``: :meth:`RetrievalModel.param_groups` never hands it to the optimiser, so the
    cached frame features stay valid). Its ``weights_id`` differs from the original's, so the text features it
    makes never enter or come from the session's feature cache."""
    enc = copy.deepcopy(encoder)
    enc.weights_id = f"{encoder.weights_id}+text-tower"
    for name, p in enc.model.named_parameters():
        p.requires_grad_(in_text_tower(name))
    return enc


def finetunable_copy(encoder):
    """A deep copy of a :class:`~tvrlib.encoders.ClipEncoder` to fine-tune, so the session's encoder
    (and the feature cache keyed by its weights) is never modified. Its features are never cached."""
    enc = copy.deepcopy(encoder)
    enc.weights_id = f"{encoder.weights_id}+finetuned"
    for p in enc.model.parameters():
        p.requires_grad_(True)
    return enc
