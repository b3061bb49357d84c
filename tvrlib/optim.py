"""The learning-rate schedule shared by every training loop: linear warm-up, then cosine decay to 0.

Used by :func:`tvrlib.training.fit` (retrieval heads) and :mod:`tvrlib.pretrain` (the tiny CLIP), stepped
once per batch. CLIP's log-temperature clamp lives beside the losses (:func:`tvrlib.losses.clamp_logit_scale_`).
"""

from __future__ import annotations

from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine(optimizer, total_steps: int, warmup_steps: int, start_factor: float | None = None) -> LRScheduler:
    """Linear warm-up over ``warmup_steps`` from ``start_factor`` x lr (default ``1 / (warmup_steps + 1)``)
    to the full lr, then cosine decay to 0 over the remaining steps. ``warmup_steps <= 0``: cosine only."""
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    if warmup_steps <= 0:
        return cosine
    if start_factor is None:
        start_factor = 1.0 / (warmup_steps + 1)
    warm = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warm, cosine], milestones=[warmup_steps])
