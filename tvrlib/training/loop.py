"""The fit loop: train a :class:`~tvrlib.training.RetrievalModel`, validate every epoch, keep the best epoch.

:func:`fit` reads as its steps: the step budget (:class:`_Budget`), the optimiser and the warm-up/cosine
schedule (:func:`tvrlib.optim.warmup_cosine`), the checkpoints (:class:`_Checkpoints`: start fresh or
resume), then per epoch :func:`_train_epoch` (one :func:`_step` per batch), :func:`validate` and model
selection (and, with ``FitConfig.patience``, early stopping), and finally the best epoch's weights.

Early stopping: with ``patience=p`` the run stops after the first epoch that ends ``p`` epochs in a row without
improving the validation ``select_metric`` by more than ``min_delta`` over the value of the last epoch that did.
``epochs`` is then the *maximum* budget. The warm-up/cosine schedule always spans the maximum budget, so a run's
learning rate at epoch ``e`` does not depend on whether or when it stops: an early-stopped run is exactly the
first epochs of the run without patience (tested), and it ends with a learning rate above 0. The best epoch is
chosen among the epochs that ran, as without patience (strictly better ``select_metric``, the first of equals).

Determinism: epoch ``e`` draws its batch order (end to end, its sampled frames; with hard negatives, the drawn
negative captions) from
``numpy.random.default_rng([seed, e])`` and seeds torch (dropout) with ``seed * 1_000_003 + e``
inside :func:`torch.random.fork_rng`, so a run resumed from the checkpoint of epoch ``e`` continues
exactly as the uninterrupted run would (same weights, same metrics, on the same machine and thread
count).

Several processes (torchrun): ``fit(..., distributed=init_distributed())`` trains on the same global batches split
over the processes, with the contrastive loss on the gathered global batch and averaged gradients; rank 0 validates
and writes the checkpoints (:mod:`tvrlib.training.distributed`). Without ``distributed`` nothing changes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..atomic import write_atomic
from ..evaluation import EVAL_CHUNK
from ..frame_order import reorder_frames
from ..heads import score_all
from ..heads.base import RetrievalHead, TextInput, VideoInput
from ..losses import (
    clamp_logit_scale_,
    edit_contrast,
    global_local_ranking_loss,
    hardest_negative_hinge,
    symmetric_infonce,
)
from ..metrics import LOWER_IS_BETTER, METRICS, t2v
from ..optim import warmup_cosine
from .config import FitConfig
from .model import RetrievalModel
from .sources import HardNegatives


@dataclass
class FitResult:
    """What :func:`fit` returns. ``model`` holds the weights of ``best_epoch`` (chosen on validation)."""

    model: RetrievalModel
    history: pd.DataFrame  # one row per epoch: train loss, val metrics, lr, temperature, seconds
    steps: pd.DataFrame  # one row per optimiser step: loss, lr, temperature
    best_epoch: int
    best_value: float
    config: FitConfig = field(repr=False, default=None)
    epochs_run: int = 0  # epochs actually trained (fewer than config.epochs when stopped early or interrupted)
    stopped_early: bool = False  # True when early stopping (config.patience) ended the run

    @property
    def head(self) -> RetrievalHead:
        return self.model.head


def validate(model: RetrievalModel, source) -> dict:
    """Text-to-video metrics of ``model`` on ``source``'s queries (R1, R5, R10, MdR, MnR)."""
    text, video = source.eval_inputs(model)
    q = torch.as_tensor(source.query_index)
    sim = score_all(model.head, text.index(q), video, chunk=EVAL_CHUNK)
    return t2v(sim, source.text_to_video[source.query_index])


def batch_loss(
    cfg: FitConfig,
    model: RetrievalModel,
    text: TextInput,
    video: VideoInput,
    ids: torch.Tensor,
    negatives: HardNegatives | None = None,
) -> torch.Tensor:
    """The loss of one batch: symmetric InfoNCE on the temperature-scaled logits, or the VSE++ hinge on raw scores.

    ``negatives``: extra negative captions of the batch's videos (``FitConfig.hard_negatives``), scored with their
    own video only (``head.score_pairs``) and added to the video-to-text side of the loss
    (:func:`tvrlib.losses.symmetric_infonce`'s ``extra_v2t``). ``loss="global_local_ranking"``: the hinge on the
    local plus the hinge on the global scores of a ``global_local`` head
    (:func:`tvrlib.losses.global_local_ranking_loss`)."""
    if cfg.loss == "global_local_ranking":  # CrossAttnGL eq. 4.18, on raw scores
        if not callable(getattr(model.head, "score_parts", None)):
            raise ValueError(
                f"loss='global_local_ranking' needs a head with local and global scores (score_parts: global_local), "
                f"not {type(model.head).__name__}; use loss='hinge' or 'infonce' for other heads"
            )
        local, glob = model.head.score_parts(text, video)
        return global_local_ranking_loss(local, glob, ids, margin=cfg.margin)
    infonce = cfg.loss == "infonce"
    extra = None
    if negatives is not None:
        pairs = video.index(negatives.row.to(video.frames.device))
        values = model.pair_logits(negatives.text, pairs) if infonce else model.head.score_pairs(negatives.text, pairs)
        extra = negatives.place(values)
    if infonce:
        logits = model.logits(text, video)
        reversed_t2v = None
        if cfg.reversed_negatives:  # each caption against its own video played backwards
            reversed_t2v = model.pair_logits(text, reorder_frames(video, "reverse"))[:, None]
        loss = symmetric_infonce(logits, ids, extra_v2t=extra, extra_t2v=reversed_t2v)
        if extra is not None and cfg.hard_negative_weight:
            loss = loss + cfg.hard_negative_weight * edit_contrast(logits.diagonal(), extra)
        return loss
    return hardest_negative_hinge(model.head.score(text, video), ids, margin=cfg.margin, extra_v2t=extra)


# --------------------------------------------------------------------------- the pieces of fit
@dataclass(frozen=True)
class _Budget:
    """Batch size and step counts of a run: ``steps_per_epoch`` full batches (capped by ``max_steps_per_epoch``)."""

    batch: int
    steps_per_epoch: int
    total: int
    warmup_steps: int

    @classmethod
    def of(cls, cfg: FitConfig, n: int) -> _Budget:
        batch = min(cfg.batch_size, n)
        steps_per_epoch = max(1, n // batch)
        if cfg.max_steps_per_epoch is not None:
            steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
        total = cfg.epochs * steps_per_epoch
        return cls(batch, steps_per_epoch, total, int(round(cfg.warmup * total)))


def _optimizer(model: RetrievalModel, cfg: FitConfig) -> torch.optim.Optimizer:
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return opt_cls(model.param_groups(cfg), betas=cfg.betas, eps=cfg.eps)


@dataclass
class _Run:
    """What a run has done so far (``last.pt`` carries it across an interruption, all but ``best_state``)."""

    history: list = field(default_factory=list)  # one dict per finished epoch
    steps: list = field(default_factory=list)  # one dict per optimiser step
    best_value: float | None = None
    best_epoch: int = -1
    best_state: dict | None = None  # the best epoch's weights, when this process trained it
    next_epoch: int = 0
    ref_value: float | None = None  # early stopping: the value of the last epoch that improved by > min_delta
    stale: int = 0  # early stopping: epochs since that epoch
    stopped_early: bool = False


class _Checkpoints:
    """``last.pt`` (after every epoch: everything needed to resume) and ``best.pt`` (the best epoch's weights)
    in ``folder``, each written atomically (:func:`tvrlib.atomic.write_atomic`)."""

    def __init__(self, folder: str | os.PathLike, cfg: FitConfig, write: bool = True):
        self.folder, self.cfg = Path(folder), cfg
        self.last, self.best = self.folder / "last.pt", self.folder / "best.pt"
        self.write = write  # False: a process that only reads (a distributed run's ranks > 0)

    def start(self, model: RetrievalModel, optimizer, scheduler, resume: bool) -> _Run:
        """A fresh run (an old ``last.pt`` is removed), or with ``resume`` the run saved in ``last.pt``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.last.exists():
            return _Run()
        if not resume:
            if self.write:
                self.last.unlink()  # a fresh run does not mix with an old one
            return _Run()
        state = torch.load(self.last, map_location="cpu", weights_only=False)
        now = self.cfg.as_dict()
        # a checkpoint written before a config field existed ran with that field's default
        saved = {**FitConfig().as_dict(), **state["config"]}
        if saved != now:
            diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
            raise ValueError(
                f"cannot resume from {self.last}: the config differs (saved, now): {diff}; "
                "use the same settings or another checkpoint_dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return _Run(
            state["history"],
            state["steps"],
            state["best_value"],
            state["best_epoch"],
            next_epoch=state["epoch"] + 1,
            ref_value=state.get("ref_value"),
            stale=state.get("stale", 0),
            stopped_early=state.get("stopped_early", False),
        )

    def save_best(self, weights: dict, epoch: int, value: float) -> None:
        if not self.write:
            return
        _save({"model": weights, "epoch": epoch, "value": value}, self.best)

    def save_last(self, model: RetrievalModel, optimizer, scheduler, epoch: int, run: _Run) -> None:
        if not self.write:
            return
        _save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "history": run.history,
                "steps": run.steps,
                "best_value": run.best_value,
                "best_epoch": run.best_epoch,
                "ref_value": run.ref_value,
                "stale": run.stale,
                "stopped_early": run.stopped_early,
                "config": self.cfg.as_dict(),
            },
            self.last,
        )

    def best_weights(self) -> dict | None:
        """The weights in ``best.pt`` (a resumed run whose best epoch came before the interruption)."""
        if not self.best.exists():
            return None
        return torch.load(self.best, map_location="cpu", weights_only=False)["model"]


def _save(obj, path: Path) -> None:
    write_atomic(path, lambda f: torch.save(obj, f))


def _step(
    cfg: FitConfig,
    model: RetrievalModel,
    optimizer,
    scheduler,
    text: TextInput,
    video: VideoInput,
    ids: torch.Tensor,
    negatives: HardNegatives | None = None,
    distributed=None,
) -> float:
    """One optimiser step: loss, backward, gradient clipping, step, schedule, temperature clamp.
    ``distributed``: this process's part of the global batch's loss, gradients averaged over the processes."""
    loss = (batch_loss if distributed is None else distributed.batch_loss)(cfg, model, text, video, ids, negatives)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    value = float(loss.detach()) if distributed is None else distributed.sync_gradients(model, loss)
    if cfg.clip_grad is not None:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
    optimizer.step()
    scheduler.step()
    clamp_logit_scale_(model.logit_scale)
    return value


def _group_lrs(optimizer) -> dict:
    out = {}
    for g in optimizer.param_groups:
        if g["name"] in ("head", "encoder", "text_tower", "logit_scale"):
            out[f"lr_{g['name']}"] = g["lr"]
    return out


def _train_epoch(
    cfg: FitConfig,
    budget: _Budget,
    model: RetrievalModel,
    train,
    optimizer,
    scheduler,
    epoch: int,
    steps: list,
    progress: bool,
    distributed=None,
) -> tuple[list[float], float]:
    """One epoch of steps in the epoch's own seeded order; appends a row per step to ``steps``.
    Returns the step losses and the seconds it took. ``distributed``: each process trains on its shard of every
    batch (the same order on every process); the losses are the global batch's."""
    rng = np.random.default_rng([cfg.seed, epoch])
    order = rng.permutation(len(train))
    model.train()
    t0 = time.perf_counter()
    losses = []
    with torch.random.fork_rng(devices=[]):
        seed = cfg.seed * 1_000_003 + epoch
        torch.manual_seed(seed if distributed is None else distributed.torch_seed(seed))
        bar = tqdm(
            range(budget.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False
        )
        for k in bar:
            idx = order[k * budget.batch : (k + 1) * budget.batch]
            own = idx if distributed is None else distributed.shard(idx)
            text, video, ids = train.batch(own, model, rng)
            negatives = train.hard_negatives(idx, model, rng, cfg.hard_negatives) if cfg.hard_negatives else None
            if distributed is not None:
                negatives = distributed.shard_negatives(negatives, len(idx))
            value = _step(cfg, model, optimizer, scheduler, text, video, ids, negatives, distributed)
            losses.append(value)
            steps.append(
                {
                    "epoch": epoch + 1,
                    "step": epoch * budget.steps_per_epoch + k + 1,
                    "loss": value,
                    **_group_lrs(optimizer),
                    "logit_scale": float(model.logit_scale.detach().exp()),
                }
            )
            bar.set_postfix(loss=f"{value:.3f}")
    return losses, time.perf_counter() - t0


def _better(value: float, best: float | None, metric: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` in ``metric``'s direction (None: no best yet)."""
    if best is None:
        return True
    return value < best - min_delta if metric in LOWER_IS_BETTER else value > best + min_delta


def _early_stopping(cfg: FitConfig, run: _Run, value: float) -> None:
    """Update ``run``'s early-stopping state after an epoch whose validation ``select_metric`` is ``value``."""
    if _better(value, run.ref_value, cfg.select_metric, cfg.min_delta):
        run.ref_value, run.stale = value, 0
    else:
        run.stale += 1
    run.stopped_early = cfg.patience is not None and run.stale >= cfg.patience


# --------------------------------------------------------------------------- fit
def fit(
    model: RetrievalModel | RetrievalHead,
    train,
    val,
    config: FitConfig | None = None,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    progress: bool = True,
    distributed=None,
    **overrides,
) -> FitResult:
    """Train ``model`` on ``train`` and keep the epoch that is best on ``val``.

    ``model``: a :class:`RetrievalModel` (or a bare head, wrapped with CLIP's initial temperature).
    ``train`` / ``val``: :class:`~tvrlib.training.FeatureSource` (frozen features),
    :class:`~tvrlib.training.TextTowerSource` (the text tower trains over cached frame features; ``model.encoder``
    a :func:`~tvrlib.training.text_tower_copy`) or :class:`~tvrlib.training.FrameSource` (end to end).
    ``config.hard_negatives=k``: ``k`` captions per training caption from ``train.negatives`` join the
    video-to-text side of the loss (:func:`batch_loss`).
    ``config``: a :class:`FitConfig`; keyword ``overrides`` replace its fields (``fit(..., epochs=3)``).
    ``checkpoint_dir``: where ``last.pt`` (after every epoch) and ``best.pt`` are written; with
    ``resume=True`` training continues after the last finished epoch found there (the config must
    match). ``stop_after_epoch=k``: return after ``k`` epochs (an interrupted run, resumed later with
    ``resume=True``; the schedule still spans ``config.epochs``).
    ``config.patience=p``: stop early once validation has not improved (by more than ``config.min_delta``)
    for ``p`` epochs; ``config.epochs`` is then the maximum, and the schedule spans it (module docstring).
    Returns a :class:`FitResult` whose model holds the best validation epoch's weights, with the number of
    epochs that ran (``epochs_run``) and whether early stopping ended the run (``stopped_early``).
    ``distributed``: a :class:`~tvrlib.training.distributed.Distributed` (``init_distributed()`` in every process of
    a torchrun launch): ``config.batch_size`` is the global batch, split over the processes; every process returns
    the same result; rank 0 validates, writes the checkpoints and shows the progress bar.
    """
    cfg = dataclasses.replace(config or FitConfig(), **overrides)
    if not isinstance(model, RetrievalModel):
        model = RetrievalModel(model)
    if cfg.hard_negatives and getattr(train, "negatives", None) is None:
        raise ValueError(
            f"hard_negatives={cfg.hard_negatives} needs a training source with a pool of negative captions "
            f"(source.negatives, a CaptionNegatives; {type(train).__name__} has none): tvrlib.experiment.run builds "
            "the synthetic benchmark's counterfactual captions; or set hard_negatives=0"
        )
    if distributed is not None and cfg.loss == "global_local_ranking":
        raise ValueError(
            "loss='global_local_ranking' runs in one process only (no sharded form yet); use torchrun "
            "with loss='hinge' or 'infonce', or train without distributed"
        )
    budget = _Budget.of(cfg, len(train))
    if distributed is not None:
        distributed.check_batch(budget.batch)
        distributed.broadcast_state(model)  # the same starting weights everywhere
        progress = progress and distributed.is_main
    optimizer = _optimizer(model, cfg)
    scheduler = warmup_cosine(optimizer, budget.total, budget.warmup_steps)
    writer = distributed is None or distributed.is_main
    ckpt = _Checkpoints(checkpoint_dir, cfg, write=writer) if checkpoint_dir is not None else None
    run = ckpt.start(model, optimizer, scheduler, resume) if ckpt is not None else _Run()

    for epoch in range(run.next_epoch, cfg.epochs):
        if run.stopped_early:
            break  # resumed from a run that early stopping had already ended
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break  # an interrupted run: resume later from checkpoint_dir
        losses, train_seconds = _train_epoch(
            cfg, budget, model, train, optimizer, scheduler, epoch, run.steps, progress, distributed
        )
        model.eval()
        t1 = time.perf_counter()
        metrics = validate(model, val) if distributed is None else distributed.on_main(validate, model, val)
        eval_seconds = time.perf_counter() - t1
        run.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                **{f"val_{m}": metrics[m] for m in METRICS},
                "logit_scale": float(model.logit_scale.detach().exp()),
                "train_seconds": train_seconds,
                "eval_seconds": eval_seconds,
                "steps": budget.steps_per_epoch,
            }
        )
        value = metrics[cfg.select_metric]
        if _better(value, run.best_value, cfg.select_metric):
            run.best_value, run.best_epoch = value, epoch + 1
            run.best_state = copy.deepcopy(model.state_dict())
            if ckpt is not None:
                ckpt.save_best(run.best_state, epoch, value)
        _early_stopping(cfg, run, value)
        if ckpt is not None:
            ckpt.save_last(model, optimizer, scheduler, epoch, run)

    best_state = run.best_state
    if best_state is None and ckpt is not None:
        best_state = ckpt.best_weights()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model,
        pd.DataFrame(run.history),
        pd.DataFrame(run.steps),
        run.best_epoch,
        float("nan") if run.best_value is None else float(run.best_value),
        cfg,
        epochs_run=len(run.history),
        stopped_early=run.stopped_early,
    )
