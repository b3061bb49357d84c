"""Training a retrieval head: a model wrapper, two data sources, and one fit loop.

* :class:`RetrievalModel` -- a head (:mod:`tvrlib.heads`) plus CLIP's learnable log-temperature
  ``logit_scale`` (clamped to ``[0, ln 100]`` after every step, as CLIP4Clip does), plus the CLIP
  encoder itself when it is fine-tuned end to end.
* Two sources of training pairs ``(caption i, its video)``:

  - :class:`FeatureSource` -- **frozen features** (the default, fast): cached CLIP frame and caption
    embeddings; only the head (and the temperature) learn;
  - :class:`FrameSource` -- **end to end** (CLIP4Clip style): every step decodes the batch's videos
    (``random_in_segment`` frames: one random frame per segment, a training-time augmentation),
    tokenises its captions, and runs them through the CLIP image and text towers with gradients.

* :func:`fit` -- AdamW (or Adam), a lower learning rate for the pretrained encoder than for the new
  modules, linear warm-up then cosine decay (torch's schedulers, stepped every batch), gradient
  clipping, per-epoch seeding, a checkpoint after every epoch with exact resume, model selection on
  the **validation** split, a tqdm progress bar, and the history as pandas DataFrames.

Determinism: epoch ``e`` draws its batch order (and, end to end, its sampled frames) from
``numpy.random.default_rng([seed, e])`` and seeds torch (dropout) with ``seed * 1_000_003 + e``
inside :func:`torch.random.fork_rng`, so a run resumed from the checkpoint of epoch ``e`` continues
exactly as the uninterrupted run would (same weights, same metrics, on the same machine and thread
count).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .heads.base import RetrievalHead, TextInput, VideoInput, score_chunked
from .losses import MAX_LOGIT_SCALE, clamp_logit_scale_, hardest_negative_hinge, symmetric_infonce
from .metrics import METRICS, t2v

LOWER_IS_BETTER = {"MdR", "MnR"}


# --------------------------------------------------------------------------- configuration
@dataclass
class FitConfig:
    """Every knob of :func:`fit` (CLIP4Clip's MSR-VTT defaults where they apply, method card 1)."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-4  # new modules (the head)
    lr_encoder: float = 1e-7  # pretrained CLIP towers, and the temperature when fine-tuning (CLIP4Clip: 1e-4 * 1e-3)
    optimizer: str = "adamw"  # "adamw" or "adam"
    weight_decay: float = 0.2  # on weight matrices only; biases, norms and the temperature get none
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup: float = 0.1  # fraction of all steps with a linear warm-up, then cosine decay to 0
    clip_grad: float | None = 1.0  # max global gradient norm (None: no clipping)
    loss: str = "infonce"  # "infonce" (symmetric, temperature-scaled) or "hinge" (VSE++ hardest negative)
    margin: float = 0.2  # hinge margin
    seed: int = 0
    max_steps_per_epoch: int | None = None  # cap an epoch (e.g. a short end-to-end demo); None: every batch
    select_metric: str = "R1"  # validation t2v metric that picks the best epoch

    def __post_init__(self):
        if self.loss not in ("infonce", "hinge"):
            raise ValueError(f"loss must be 'infonce' or 'hinge', got {self.loss!r}")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.select_metric not in METRICS:
            raise ValueError(f"select_metric must be one of {METRICS}, got {self.select_metric!r}")
        self.betas = tuple(self.betas)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Training settings per run profile (notebook parameters left at ``None`` take these). ``msrvtt`` follows
#: CLIP4Clip's MSR-VTT recipe (method card 1); ``quick`` shrinks it to minutes on two CPU cores: a 10x higher
#: head learning rate for few epochs, 2 temporal layers instead of 4, a short end-to-end demo (30 steps of 16
#: pairs, encoder lr 5e-5), and a capped budget for the cross-encoder, whose every step costs ``B^2`` passes.
TRAINING_PROFILES: dict[str, dict] = {
    "quick": {"epochs": 5, "batch_size": 128, "lr": 1e-3, "lr_encoder": 5e-5, "temporal_layers": 2,
              "tight_batch_size": 32, "tight_steps": 60, "tight_val_videos": 50, "tight_gallery": 100,
              "e2e_epochs": 1, "e2e_steps": 30, "e2e_batch_size": 16, "e2e_val_videos": 100},
    "full": {"epochs": 10, "batch_size": 128, "lr": 1e-3, "lr_encoder": 5e-5, "temporal_layers": 4,
             "tight_batch_size": 32, "tight_steps": 0, "tight_val_videos": 100, "tight_gallery": 0,
             "e2e_epochs": 2, "e2e_steps": 0, "e2e_batch_size": 32, "e2e_val_videos": 0},
    "msrvtt": {"epochs": 5, "batch_size": 128, "lr": 1e-4, "lr_encoder": 1e-7, "temporal_layers": 4,
               "tight_batch_size": 128, "tight_steps": 0, "tight_val_videos": 0, "tight_gallery": 0,
               "e2e_epochs": 5, "e2e_steps": 0, "e2e_batch_size": 128, "e2e_val_videos": 0},
}


def training_defaults(profile: str, **overrides) -> dict:
    """The training settings of ``profile`` (see :data:`TRAINING_PROFILES`); overrides that are not ``None``
    replace them. The caps ``tight_steps``, ``tight_val_videos``, ``tight_gallery``, ``e2e_steps`` and
    ``e2e_val_videos`` mean "no cap" (every step, every video) when 0."""
    if profile not in TRAINING_PROFILES:
        from .errors import UnknownNameError

        raise UnknownNameError(f"no training settings for profile {profile!r}; known: {sorted(TRAINING_PROFILES)}")
    out = dict(TRAINING_PROFILES[profile])
    unknown = set(overrides) - set(out)
    if unknown:
        raise TypeError(f"unknown training settings {sorted(unknown)}; known: {sorted(out)}")
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


# --------------------------------------------------------------------------- model
class RetrievalModel(nn.Module):
    """A head, CLIP's learnable log-temperature and, for end-to-end training, the CLIP encoder.

    ``logits(text, video) -> [T, V]`` is what the losses see: ``exp(logit_scale) * score`` for heads
    that output cosines, the raw score for heads that output their own logits (``tightTransf``).
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
        return s * self.logit_scale.exp() if getattr(self.head, "uses_logit_scale", True) else s

    def param_groups(self, cfg: FitConfig) -> list[dict]:
        """Optimiser groups: encoder and head, each split into decayed weight matrices and the rest."""
        def split(params):
            params = [p for p in params if p.requires_grad]
            return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]

        groups = []
        if self.clip is not None:
            dec, no = split(self.clip.parameters())
            groups += [{"name": "encoder", "params": dec, "lr": cfg.lr_encoder, "weight_decay": cfg.weight_decay},
                       {"name": "encoder_no_decay", "params": no, "lr": cfg.lr_encoder, "weight_decay": 0.0}]
        dec, no = split(self.head.parameters())
        groups += [{"name": "head", "params": dec, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                   {"name": "head_no_decay", "params": no, "lr": cfg.lr, "weight_decay": 0.0},
                   {"name": "logit_scale", "params": [self.logit_scale],
                    "lr": cfg.lr_encoder if self.end_to_end else cfg.lr, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]


def finetunable_copy(encoder):
    """A deep copy of a :class:`~tvrlib.encoders.ClipEncoder` to fine-tune, so the session's encoder
    (and the feature cache keyed by its weights) is never modified. Its features are never cached."""
    enc = copy.deepcopy(encoder)
    enc.weights_id = f"{encoder.weights_id}+finetuned"
    for p in enc.model.parameters():
        p.requires_grad_(True)
    return enc


# --------------------------------------------------------------------------- data sources
class FeatureSource:
    """Training pairs on cached frozen features: caption ``i`` and video ``text_to_video[i]``.

    ``texts``: :class:`TextInput` (``sentence [N, D]``), ``videos``: :class:`VideoInput`
    (``frames [V, F, D]``, ``mask [V, F]``), ``text_to_video int [N]``. ``query_index`` (default:
    every caption) selects the captions used as t2v queries when the source is used for validation.
    """

    def __init__(self, texts: TextInput, videos: VideoInput, text_to_video, query_index=None):
        self.texts, self.videos = texts, videos
        self.text_to_video = np.asarray(text_to_video, dtype=np.int64)
        if len(self.text_to_video) != len(texts):
            raise ValueError(f"{len(texts)} captions but {len(self.text_to_video)} text_to_video entries")
        if self.text_to_video.max(initial=-1) >= len(videos):
            raise ValueError(f"text_to_video points past the {len(videos)} videos")
        self.query_index = np.arange(len(texts)) if query_index is None else np.asarray(query_index, dtype=np.int64)

    @classmethod
    def from_session(cls, S, split: str) -> "FeatureSource":
        """The cached features of ``split`` from a :class:`tvrlib.session.Session`."""
        d = S.data(split)
        return cls(S.texts(split), S.videos(split), d.text_to_video, d.query_index)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n_videos: int) -> "FeatureSource":
        """The first ``n_videos`` videos and their captions (e.g. a cheaper validation set)."""
        keep = np.flatnonzero(self.text_to_video < n_videos)
        remap = -np.ones(len(self.texts), dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        q = remap[self.query_index]
        return FeatureSource(self.texts.index(torch.as_tensor(keep)), self.videos.index(slice(0, n_videos)),
                             self.text_to_video[keep], q[q >= 0])

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        vids = self.text_to_video[idx]
        return self.texts.index(torch.as_tensor(idx)), self.videos.index(torch.as_tensor(vids)), torch.as_tensor(vids)

    def eval_inputs(self, model: RetrievalModel):
        return self.texts, self.videos


class FrameSource:
    """Training pairs decoded from the video files, for end-to-end fine-tuning of the CLIP towers.

    ``data`` is a :class:`~tvrlib.datasets.RetrievalData`. Each batch samples ``num_frames`` frames per
    video with ``train_sampler`` (``"random_in_segment"``: one random frame per segment) and encodes
    frames and captions with ``model.encoder`` *with* gradients. :meth:`eval_inputs` encodes the whole
    split with ``eval_sampler`` (``"uniform"``) and no gradients, never through the feature cache.
    """

    def __init__(self, data, num_frames: int = 12, train_sampler: str = "random_in_segment",
                 eval_sampler: str = "uniform"):
        self.data, self.num_frames = data, num_frames
        self.train_sampler, self.eval_sampler = train_sampler, eval_sampler
        self.text_to_video = np.asarray(data.text_to_video, dtype=np.int64)
        self.query_index = np.asarray(data.query_index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.data.texts)

    def subset(self, n_videos: int) -> "FrameSource":
        return FrameSource(self.data.subset(n_videos), self.num_frames, self.train_sampler, self.eval_sampler)

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        from .video import sample_frames

        enc = model.encoder
        if enc is None:
            raise ValueError("FrameSource trains end to end: build RetrievalModel(head, encoder=finetunable_copy(S.encoder))")
        vids = self.text_to_video[idx]
        uniq, inverse = np.unique(vids, return_inverse=True)
        frames, masks = [], []
        for j in uniq:
            fr, m = sample_frames(self.data.videos[j].path, self.num_frames, enc.image_size, self.train_sampler, rng=rng)
            frames.append(fr)
            masks.append(m)
        cls = enc.image_forward(enc.preprocess(np.concatenate(frames)), with_patches=False).cls
        cls = cls.view(len(uniq), self.num_frames, -1)
        mask = torch.from_numpy(np.stack(masks)).to(cls.device)
        inv = torch.as_tensor(inverse, device=cls.device)
        tokens = enc.tokenize([self.data.texts[i] for i in idx])
        sentence = enc.text_forward(tokens, with_words=False).sentence
        return TextInput(sentence), VideoInput(cls[inv], mask[inv]), torch.as_tensor(vids)

    @torch.no_grad()
    def eval_inputs(self, model: RetrievalModel):
        from .features import encode_texts, encode_videos

        enc = model.encoder
        v = encode_videos(enc, self.data, self.num_frames, self.eval_sampler, cache=False, progress=False)
        t = encode_texts(enc, self.data.texts, cache=False)
        return TextInput(t.sentence), VideoInput(v.frames, v.mask)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def similarity(head: RetrievalHead, text: TextInput, video: VideoInput, chunk: int = 256) -> torch.Tensor:
    """``[T, V]`` scores of every text against every video, in blocks (see :func:`score_chunked`)."""
    was_training = head.training
    try:
        return score_chunked(head, text, video, text_chunk=chunk, video_chunk=chunk)
    finally:
        head.train(was_training)


def validate(model: RetrievalModel, source) -> dict:
    """Text-to-video metrics of ``model`` on ``source``'s queries (R1, R5, R10, MdR, MnR)."""
    text, video = source.eval_inputs(model)
    q = torch.as_tensor(source.query_index)
    sim = similarity(model.head, text.index(q), video)
    return t2v(sim, source.text_to_video[source.query_index])


# --------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    """What :func:`fit` returns. ``model`` holds the weights of ``best_epoch`` (chosen on validation)."""

    model: RetrievalModel
    history: pd.DataFrame  # one row per epoch: train loss, val metrics, lr, temperature, seconds
    steps: pd.DataFrame  # one row per optimiser step: loss, lr, temperature
    best_epoch: int
    best_value: float
    config: FitConfig = field(repr=False, default=None)

    @property
    def head(self) -> RetrievalHead:
        return self.model.head


def _loss(cfg: FitConfig, model: RetrievalModel, text: TextInput, video: VideoInput, ids: torch.Tensor):
    if cfg.loss == "infonce":
        return symmetric_infonce(model.logits(text, video), ids)
    return hardest_negative_hinge(model.head.score(text, video), ids, margin=cfg.margin)


def _schedulers(optimizer, total_steps: int, warmup_steps: int):
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    if warmup_steps <= 0:
        return cosine
    warm = LinearLR(optimizer, start_factor=1.0 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warm, cosine], milestones=[warmup_steps])


def _group_lrs(optimizer) -> dict:
    out = {}
    for g in optimizer.param_groups:
        if g["name"] in ("head", "encoder", "logit_scale"):
            out[f"lr_{g['name']}"] = g["lr"]
    return out


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


def fit(model: RetrievalModel | RetrievalHead, train, val, config: FitConfig | None = None, *,
        checkpoint_dir: str | os.PathLike | None = None, resume: bool = False, stop_after_epoch: int | None = None,
        progress: bool = True, **overrides) -> FitResult:
    """Train ``model`` on ``train`` and keep the epoch that is best on ``val``.

    ``model``: a :class:`RetrievalModel` (or a bare head, wrapped with CLIP's initial temperature).
    ``train`` / ``val``: :class:`FeatureSource` (frozen features) or :class:`FrameSource` (end to end).
    ``config``: a :class:`FitConfig`; keyword ``overrides`` replace its fields (``fit(..., epochs=3)``).
    ``checkpoint_dir``: where ``last.pt`` (after every epoch) and ``best.pt`` are written; with
    ``resume=True`` training continues after the last finished epoch found there (the config must
    match). ``stop_after_epoch=k``: return after ``k`` epochs (an interrupted run, resumed later with
    ``resume=True``; the schedule still spans ``config.epochs``).
    Returns a :class:`FitResult` whose model holds the best validation epoch's weights.
    """
    cfg = dataclasses.replace(config or FitConfig(), **overrides)
    if not isinstance(model, RetrievalModel):
        model = RetrievalModel(model)
    from tqdm.auto import tqdm

    n = len(train)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // batch)
    if cfg.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total = cfg.epochs * steps_per_epoch
    warmup_steps = int(round(cfg.warmup * total))
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.param_groups(cfg), betas=cfg.betas, eps=cfg.eps)
    scheduler = _schedulers(optimizer, total, warmup_steps)

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    history, steps = [], []
    best_value, best_epoch, best_state, start_epoch = None, -1, None, 0
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        last = ckpt_dir / "last.pt"
        if resume and last.exists():
            state = torch.load(last, map_location="cpu", weights_only=False)
            if state["config"] != cfg.as_dict():
                diff = {k: (state["config"].get(k), v) for k, v in cfg.as_dict().items() if state["config"].get(k) != v}
                raise ValueError(f"cannot resume from {last}: the config differs (saved, now): {diff}; "
                                 "use the same settings or another checkpoint_dir")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history, steps = state["history"], state["steps"]
            best_value, best_epoch, start_epoch = state["best_value"], state["best_epoch"], state["epoch"] + 1
        elif not resume and last.exists():
            last.unlink()  # a fresh run does not mix with an old one

    for epoch in range(start_epoch, cfg.epochs):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break  # an interrupted run: resume later from checkpoint_dir
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(n)
        model.train()
        t0 = time.perf_counter()
        losses = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed * 1_000_003 + epoch)
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                       leave=False)
            for k in bar:
                idx = order[k * batch:(k + 1) * batch]
                text, video, ids = train.batch(idx, model, rng)
                loss = _loss(cfg, model, text, video, ids)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
                optimizer.step()
                scheduler.step()
                clamp_logit_scale_(model.logit_scale)
                value = float(loss.detach())
                losses.append(value)
                steps.append({"epoch": epoch + 1, "step": epoch * steps_per_epoch + k + 1, "loss": value,
                              **_group_lrs(optimizer), "logit_scale": float(model.logit_scale.detach().exp())})
                bar.set_postfix(loss=f"{value:.3f}")
        train_seconds = time.perf_counter() - t0
        model.eval()
        t1 = time.perf_counter()
        metrics = validate(model, val)
        eval_seconds = time.perf_counter() - t1
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
               **{f"val_{m}": metrics[m] for m in METRICS}, "logit_scale": float(model.logit_scale.detach().exp()),
               "train_seconds": train_seconds, "eval_seconds": eval_seconds, "steps": steps_per_epoch}
        history.append(row)
        value = metrics[cfg.select_metric]
        if _better(value, best_value, cfg.select_metric):
            best_value, best_epoch = value, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
            if ckpt_dir is not None:
                _atomic_save({"model": best_state, "epoch": epoch, "value": value}, ckpt_dir / "best.pt")
        if ckpt_dir is not None:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history, "steps": steps,
                          "best_value": best_value, "best_epoch": best_epoch, "config": cfg.as_dict()},
                         ckpt_dir / "last.pt")

    if best_state is None and ckpt_dir is not None and (ckpt_dir / "best.pt").exists():
        best_state = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=False)["model"]
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, pd.DataFrame(history), pd.DataFrame(steps), best_epoch,
                     float("nan") if best_value is None else float(best_value), cfg)


__all__ = ["TRAINING_PROFILES", "training_defaults", "FitConfig", "RetrievalModel", "FeatureSource", "FrameSource", "FitResult", "fit", "validate",
           "similarity", "finetunable_copy", "MAX_LOGIT_SCALE"]
