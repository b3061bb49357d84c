"""Pretrain the tiny CLIP (``tvr-tiny``) on the synthetic benchmark's still frames.

This is CLIP's image-text pretraining in miniature: (single frame, static
description) pairs, open_clip's own contrastive loss (:class:`open_clip.loss.ClipLoss`),
AdamW with the shared warm-up + cosine schedule (:func:`tvrlib.optim.warmup_cosine`) and CLIP's
temperature clamp (:func:`tvrlib.losses.clamp_logit_scale_`). The descriptions name colours, shapes, sizes,
positions and the background but never motion or order, so, as with real CLIP,
everything temporal must later be learned by the video modules.

The checkpoint is written atomically (:func:`tvrlib.atomic.write_atomic`) to ``data/models/``
under a name that encodes the benchmark config digest, the training settings and the seed, and
is reused on later runs; a JSON file beside it, written just before it, keeps the training history.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .atomic import write_atomic
from .encoders import TINY_MODEL, ClipEncoder, create_model, register_configs
from .losses import MAX_LOGIT_SCALE, clamp_logit_scale_
from .optim import warmup_cosine
from .paths import models_dir
from .synthetic.benchmark import STILL_GROUP, SyntheticConfig, load_config, load_stills, render_stills
from .synthetic.captions import canonical_position, still_description
from .synthetic.world import COLORS, SHAPES, StillSpec, _far, _near_corner
from .video import resize_center_crop


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    max_logit_scale: float = MAX_LOGIT_SCALE  # ln 100, the same float as the former float(np.log(100.0))
    init_logit_scale: float = float(np.log(1 / 0.07))  # CLIP's initial temperature
    # the share of still groups whose four stills differ only in where the main object is (instead of its shape or
    # colour): a batch then holds frames that only a position phrase tells apart, so the image tower must keep
    # position (see :func:`position_groups`). Added later: enters the checkpoint name only when set.
    position_groups: float = 0.0

    def name_fields(self) -> dict:
        """The settings that name a checkpoint: every field, except later additions left at their default (so
        that checkpoints trained before them keep their names)."""
        d = asdict(self)
        if d["position_groups"] == 0.0:
            d.pop("position_groups")
        return d


def render_still_frames(specs, frame_size: int, image_size: int, chunk: int = 1000) -> np.ndarray:
    """Stills rendered at the videos' frame size then resized like sampled video frames: ``uint8 [N, S, S, 3]``."""
    return np.concatenate(
        [
            resize_center_crop(render_stills(specs[i : i + chunk], frame_size), image_size)
            for i in range(0, len(specs), chunk)
        ]
    )


#: how each tiny config is pretrained when nothing else is asked (:func:`pretrain_config`). The default
#: ``tvr-tiny-attn`` gets a third of its still groups differing only in position and 6 epochs: with 3 epochs it had
#: learned position (56 %) at the cost of shape (47 %); with 6 it names colour, shape and position at >= 99.7 % on
#: held-out stills (docs/performance.md, benchmarks/tiny_clip_position.py)
PRETRAIN_DEFAULTS = {"tvr-tiny-attn": PretrainConfig(epochs=6, position_groups=1 / 3)}


def pretrain_config(model_name: str = TINY_MODEL) -> PretrainConfig:
    """The pretraining settings of tiny config ``model_name`` (:data:`PRETRAIN_DEFAULTS`, else the defaults)."""
    return PRETRAIN_DEFAULTS.get(model_name, PretrainConfig())


def checkpoint_path(
    cfg: SyntheticConfig, seed: int, pcfg: PretrainConfig | None = None, model_name: str = TINY_MODEL
) -> Path:
    pcfg = pcfg or pretrain_config(model_name)
    h = hashlib.sha256(json.dumps(pcfg.name_fields(), sort_keys=True).encode()).hexdigest()[:8]
    return models_dir() / f"{model_name}_{cfg.name}-{cfg.digest()}_pt{h}_seed{seed}.pt"


def position_groups(specs: list[StillSpec], texts: list[str], share: float, seed: int):
    """Turn a ``share`` of the still groups into groups that differ only in the main object's position.

    The stills come in groups of :data:`STILL_GROUP` (same scene, the main object's shape or colour varied). For
    every group ``g`` with ``(g * 0.618...) mod 1 < share`` (an even spread), the group's first scene is kept and
    its main object placed in ``STILL_GROUP`` different free cells of the 3 x 3 grid (far from the other objects,
    off the distractor's corner); each description then says where the main object is. Groups without enough free
    cells stay as they are. Deterministic in ``seed``. Returns new ``(specs, texts)`` of the same length.
    """
    if share <= 0:
        return specs, texts
    specs, texts = list(specs), list(texts)
    cells = [(r, c) for r in range(3) for c in range(3)]
    for g in range(len(specs) // STILL_GROUP):
        if (g * 0.6180339887) % 1.0 >= share:
            continue
        base = specs[g * STILL_GROUP]
        main, others = base.objects[0], base.objects[1:]
        corner = base.distractor[1] if base.distractor is not None else None
        free = [
            c
            for c in cells
            if all(_far(c, o.cell) for o in others) and not (corner is not None and _near_corner(c, corner))
        ]
        if len(free) < STILL_GROUP:
            continue
        rng = np.random.default_rng([seed, 7, g])
        for v, k in enumerate(rng.choice(len(free), STILL_GROUP, replace=False)):
            spec = replace(base, objects=(replace(main, cell=free[int(k)]), *others))
            specs[g * STILL_GROUP + v] = spec
            texts[g * STILL_GROUP + v] = still_description(spec, rng, main_position=True)
    return specs, texts


def ensure_tiny_clip(
    benchmark: str | SyntheticConfig = "quick",
    seed: int = 0,
    pcfg: PretrainConfig | None = None,
    progress: bool = True,
    model_name: str = TINY_MODEL,
) -> Path:
    """Path of the pretrained tiny-CLIP checkpoint for ``benchmark``; trains it first if it is missing. ``pcfg``:
    the pretraining settings (None: :func:`pretrain_config` of ``model_name``)."""
    cfg = load_config(benchmark) if isinstance(benchmark, str) else benchmark
    pcfg = pcfg or pretrain_config(model_name)
    path = checkpoint_path(cfg, seed, pcfg, model_name)
    if not path.exists():
        pretrain_tiny_clip(cfg, path, seed=seed, pcfg=pcfg, progress=progress, model_name=model_name)
    return path


def pretrain_history(path: Path) -> dict:
    """The training record (per-epoch loss, settings, time) stored beside a checkpoint."""
    return json.loads(Path(path).with_suffix(".json").read_text())


def pretrain_tiny_clip(
    cfg: SyntheticConfig,
    path: Path,
    seed: int = 0,
    pcfg: PretrainConfig | None = None,
    progress: bool = True,
    model_name: str | None = None,
) -> Path:
    import open_clip
    from open_clip.loss import ClipLoss
    from tqdm.auto import tqdm

    register_configs()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_name = model_name or TINY_MODEL
    pcfg = pcfg or pretrain_config(model_name)
    model = create_model(model_name)
    with torch.no_grad():
        model.logit_scale.fill_(pcfg.init_logit_scale)
    enc = ClipEncoder(model, open_clip.get_tokenizer(model_name), model_name, "training", torch.device("cpu"))
    specs, texts, _ = load_stills(cfg, "train")
    specs, texts = position_groups(specs, texts, pcfg.position_groups, seed)
    frames = torch.from_numpy(render_still_frames(specs, cfg.frame_size, enc.image_size))
    tokens = enc.tokenize(texts)
    n = len(frames)
    group = STILL_GROUP
    # a benchmark with fewer stills than one batch (the unit-test config ``tiny``) trains on all of them at once
    batch_size = min(pcfg.batch_size, n // group * group)
    if batch_size < group:
        raise ValueError(
            f"benchmark {cfg.name!r} has {n} training stills, fewer than one group of {group}; "
            "raise num_stills in its config"
        )
    if batch_size < pcfg.batch_size:
        warnings.warn(
            f"benchmark {cfg.name!r} has only {n} training stills: pretraining with batches of "
            f"{batch_size} instead of {pcfg.batch_size}",
            stacklevel=2,
        )
    steps_per_epoch = n // batch_size
    total = steps_per_epoch * pcfg.epochs
    decay = [p for nme, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in nme]
    no_decay = [p for nme, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in nme)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": pcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=pcfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warm = max(1, int(pcfg.warmup_fraction * total))
    sched = warmup_cosine(opt, total, warm, start_factor=0.01)
    loss_fn = ClipLoss()
    model.train()
    history, t0 = [], time.time()
    bar = tqdm(total=total, desc=f"pretraining {model_name}", disable=not progress)
    for epoch in range(pcfg.epochs):
        # whole groups (frames that differ only in the main object's shape, colour or position) go into one batch
        order = (rng.permutation(n // group)[:, None] * group + np.arange(group)[None, :]).reshape(-1)
        losses = []
        for s in range(steps_per_epoch):
            idx = torch.from_numpy(order[s * batch_size : (s + 1) * batch_size])
            img = enc.image_forward(enc.preprocess(frames[idx]), with_patches=False).cls
            txt = enc.text_forward(tokens[idx], with_words=False).sentence
            img, txt = torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)
            loss = loss_fn(img, txt, model.logit_scale.exp())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            clamp_logit_scale_(model.logit_scale, pcfg.max_logit_scale)
            losses.append(loss.item())
            bar.update(1)
        history.append(
            {"epoch": epoch + 1, "loss": float(np.mean(losses)), "logit_scale": float(model.logit_scale.detach().exp())}
        )
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
    bar.close()
    model.eval()
    state = model.state_dict()
    record = {
        "benchmark": cfg.name,
        "benchmark_digest": cfg.digest(),
        "seed": seed,
        "settings": asdict(pcfg),
        "num_pairs": n,
        "seconds": round(time.time() - t0, 1),
        "history": history,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    if batch_size != pcfg.batch_size:
        record["batch_size_used"] = batch_size
    text = json.dumps(record, indent=1).encode()
    # the history first, the checkpoint last: the checkpoint's existence is what ensure_tiny_clip checks
    write_atomic(path.with_suffix(".json"), lambda f: f.write(text))
    write_atomic(path, lambda f: torch.save(state, f))
    return path


def class_names() -> list[str]:
    return [f"{c} {s}" for c in COLORS for s in SHAPES]


@torch.no_grad()
def zero_shot_accuracy(encoder, frames: np.ndarray, labels: list[str], template: str = "a {}") -> dict:
    """Name the main object's colour and shape among all colour x shape classes.

    ``frames``: ``uint8 [N, S, S, 3]``; ``labels``: ``"<colour> <shape>"`` per frame.
    Returns overall, colour-only and shape-only accuracy (fractions) and the predictions.
    """
    names = class_names()
    text = torch.nn.functional.normalize(
        encoder.encode_text([template.format(c) for c in names], with_words=False).sentence, dim=-1
    )
    img = torch.nn.functional.normalize(encoder.encode_frames(frames, with_patches=False).cls, dim=-1)
    pred = [names[i] for i in (img @ text.T).argmax(dim=1).tolist()]
    both = np.mean([p == y for p, y in zip(pred, labels)])
    color = np.mean([p.split()[0] == y.split()[0] for p, y in zip(pred, labels)])
    shape = np.mean([p.split()[1] == y.split()[1] for p, y in zip(pred, labels)])
    return {
        "accuracy": float(both),
        "color_accuracy": float(color),
        "shape_accuracy": float(shape),
        "num_classes": len(names),
        "n": len(labels),
        "predictions": pred,
    }


@torch.no_grad()
def zero_shot_position_accuracy(encoder, frames: np.ndarray, specs: list[StillSpec]) -> dict:
    """Name where the main object is, among the 9 cells of the grid, with its colour and shape given.

    For each frame the prompts are ``"a <colour> <shape> <position>"`` for the 9 canonical position phrases
    (:func:`tvrlib.synthetic.captions.canonical_position`); chance is 1/9. Returns the accuracy, row and column
    accuracy (fractions) and ``n``.
    """
    cells = [(r, c) for r in range(3) for c in range(3)]
    img = torch.nn.functional.normalize(encoder.encode_frames(frames, with_patches=False).cls, dim=-1)
    names = sorted({s.objects[0].obj.name for s in specs})
    prompts = [f"a {n} {canonical_position(c)}" for n in names for c in cells]
    text = torch.nn.functional.normalize(encoder.encode_text(prompts, with_words=False).sentence, dim=-1)
    text = text.view(len(names), len(cells), -1)
    row = {n: i for i, n in enumerate(names)}
    hit = hit_r = hit_c = 0
    for i, s in enumerate(specs):
        k = int((text[row[s.objects[0].obj.name]] @ img[i]).argmax())
        pred, gold = cells[k], tuple(s.objects[0].cell)
        hit += pred == gold
        hit_r += pred[0] == gold[0]
        hit_c += pred[1] == gold[1]
    n = len(specs)
    return {"accuracy": hit / n, "row_accuracy": hit_r / n, "column_accuracy": hit_c / n, "n": n}
