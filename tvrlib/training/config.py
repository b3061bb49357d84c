"""The configuration of one training run (:func:`tvrlib.training.fit`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..metrics import METRICS

#: the losses :func:`~tvrlib.training.fit` knows (``FitConfig.loss``)
LOSSES = ("infonce", "hinge", "global_local_ranking")


@dataclass
class FitConfig:
    """Every knob of :func:`~tvrlib.training.fit` (CLIP4Clip's MSR-VTT defaults where they apply, method card 1)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-4  # new modules (the head)
    lr_encoder: float = 1e-7  # pretrained CLIP towers, and the temperature when fine-tuning (CLIP4Clip: 1e-4 * 1e-3)
    lr_text: float = 3e-4  # the CLIP text tower when it trains alone over cached frame features (text_tower_copy)
    optimizer: str = "adamw"  # "adamw" or "adam"
    weight_decay: float = 0.2  # on weight matrices only; biases, norms and the temperature get none
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup: float = 0.1  # fraction of all steps with a linear warm-up, then cosine decay to 0
    clip_grad: float | None = 1.0  # max global gradient norm (None: no clipping)
    # "infonce" (symmetric, temperature-scaled), "hinge" (VSE++ hardest negative) or "global_local_ranking"
    # (CrossAttnGL eq. 4.18: the hinge on the local plus the hinge on the global scores of a global_local head)
    loss: str = "infonce"
    margin: float = 0.2  # hinge margin (both hinge losses)
    seed: int = 0
    max_steps_per_epoch: int | None = None  # cap an epoch (e.g. a short end-to-end demo); None: every batch
    select_metric: str = "R1"  # validation t2v metric that picks the best epoch
    # early stopping: stop once ``select_metric`` on validation has not improved by more than ``min_delta`` for
    # ``patience`` epochs in a row; ``epochs`` is then the maximum budget (and the span of the cosine schedule).
    # None: no early stopping, every one of ``epochs`` epochs runs.
    patience: int | None = None
    min_delta: float = 0.0  # in the metric's units (R@K: percentage points; MdR/MnR: ranks)
    # caption-level hard negatives: per training caption and step, this many captions from the source's
    # ``negatives`` pool (e.g. counterfactual captions of its video) join the video-to-text side of the loss
    hard_negatives: int = 0
    # > 0: also ``hard_negative_weight`` x the contrast of each true pair with its own hard negatives only
    # (:func:`tvrlib.losses.edit_contrast`; InfoNCE only), so the edits are not diluted among the batch's captions
    hard_negative_weight: float = 0.0
    # True: each caption's t2v softmax also holds its own video with the valid frames reversed (a negative that only
    # a head which sees frame order can tell apart; InfoNCE only)
    reversed_negatives: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.hard_negatives and self.loss == "global_local_ranking":
            raise ValueError(
                "hard_negatives needs loss='infonce' or 'hinge' (global_local_ranking has no extra negatives)"
            )
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.select_metric not in METRICS:
            raise ValueError(f"select_metric must be one of {METRICS}, got {self.select_metric!r}")
        if self.patience is not None and (int(self.patience) != self.patience or self.patience < 1):
            raise ValueError(f"patience must be None or a positive number of epochs, got {self.patience!r}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta!r}")
        if int(self.hard_negatives) != self.hard_negatives or self.hard_negatives < 0:
            raise ValueError(f"hard_negatives must be a count >= 0, got {self.hard_negatives!r}")
        if self.hard_negative_weight < 0 or (self.hard_negative_weight and self.loss != "infonce"):
            raise ValueError(
                f"hard_negative_weight must be >= 0 and needs loss='infonce', got {self.hard_negative_weight!r} "
                f"with loss={self.loss!r}"
            )
        if self.reversed_negatives and self.loss != "infonce":
            raise ValueError("reversed_negatives needs loss='infonce'")
        if not self.lr_text > 0:
            raise ValueError(f"lr_text must be > 0, got {self.lr_text!r}")
        self.betas = tuple(self.betas)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
