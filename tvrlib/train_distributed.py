"""Train one head on a run profile's cached CLIP features, in one process or in several through torchrun.

::

    torchrun --nproc_per_node 2 -m tvrlib.train_distributed --profile tiny --head seqTransf   # 2 processes
    python -m tvrlib.train_distributed --profile tiny --head seqTransf                       # the same run, 1 process

The recipe is the shared protocol's (:meth:`tvrlib.experiment.Protocol.from_session`: the profile's training settings,
CLIP's temperature, the head built by name with the protocol's settings, ``torch.manual_seed(seed)`` before it), for
one training seed, on frozen caption and frame features (the default text side; ``--head meanP`` trains the
temperature alone). ``--batch-size`` is the *global* batch: under torchrun each of the ``N`` processes takes
``batch / N`` pairs of every batch, the contrastive loss sees the gathered global batch and the gradients are averaged
(:mod:`tvrlib.training.distributed`), so the run takes the single-process run's steps. GPUs: one process per GPU
(``nccl``); CPUs: ``gloo`` (``--device cpu``).

Rank 0 (or the single process) writes to ``--out`` (default ``build/train/<profile>/<head>-seed<seed>/``):
``head.pt`` (the trained head's state dict, best validation epoch), ``model.pt`` (the same with the temperature),
``history.csv`` (one row per epoch: train loss, validation metrics), ``steps.csv`` (one row per step) and
``run.json`` (protocol, config, processes, best epoch, seconds). ``--checkpoints`` also keeps ``last.pt`` / ``best.pt``
in ``<out>/checkpoints`` (``--resume`` continues from there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import TVRError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m tvrlib.train_distributed",
        description="Train one head on a profile's cached features, in 1 process or N (torchrun).",
    )
    ap.add_argument("--profile", default="quick", help="run profile (tvrlib.profiles): its data, CLIP and budget")
    ap.add_argument("--head", required=True, help="registered head name (tvrlib.heads.HEADS), e.g. meanP, seqTransf")
    ap.add_argument("--seed", type=int, default=0, help="training seed (and the session's seed)")
    ap.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the profile's max_epochs)")
    ap.add_argument("--batch-size", type=int, default=None, help="GLOBAL batch, a multiple of the processes")
    ap.add_argument("--lr", type=float, default=None, help="head learning rate (default: the profile's)")
    ap.add_argument("--patience", type=int, default=None, help="early-stopping patience (0: off)")
    ap.add_argument("--out", default=None, help="output folder (default build/train/<profile>/<head>-seed<seed>)")
    ap.add_argument("--device", default="auto", help="auto (a GPU per process when there are GPUs), cpu or cuda")
    ap.add_argument("--backend", default=None, help="process-group backend (default: nccl on GPUs, gloo on CPUs)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: cores / N)")
    ap.add_argument("--checkpoints", action="store_true", help="keep last.pt/best.pt in <out>/checkpoints")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    ap.add_argument("--progress", action="store_true", help="a progress bar (rank 0)")
    return ap.parse_args(argv)


def default_out(profile: str, head: str, seed: int) -> Path:
    from .paths import PROJECT_ROOT

    return PROJECT_ROOT / "build" / "train" / profile / f"{head}-seed{seed}"


def _on_device(source, device):
    from .training import FeatureSource

    return FeatureSource(
        source.texts.to(device),
        source.videos.to(device),
        source.text_to_video,
        source.query_index,
        data=source.data,
        encoder=source.encoder,
    )


def train(a: argparse.Namespace, distributed=None) -> dict | None:
    """The run of ``a`` (:func:`parse_args`) in this process; rank 0 writes the outputs and returns what ``run.json``
    holds (other ranks return None)."""
    import torch

    from .atomic import write_atomic
    from .encoders import resolve_device
    from .experiment import setup
    from .heads import HEADS
    from .training import RetrievalModel, fit

    d = distributed
    main = d is None or d.is_main
    device = d.device if d is not None else resolve_device(a.device)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", d.world_size if d is not None else 1))
    threads = a.threads or max(1, (os.cpu_count() or 1) // max(local, 1))
    training = {"max_epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "patience": a.patience}
    bench = None

    def load():
        nonlocal bench
        bench = setup(a.profile, device=str(device), seed=a.seed, threads=threads, **training)

    if d is not None:
        d.on_main(load)  # rank 0 first (it fills the feature cache); if it fails, every rank stops with its error
    if bench is None:
        load()
    P = bench.protocol
    cfg = P.fit_config(a.seed)
    train_src, val_src = _on_device(bench.train, device), _on_device(bench.val, device)
    if d is not None:
        d.check_batch(min(cfg.batch_size, len(train_src)))  # before any work: a clear error on every rank
    dim = int(train_src.videos.frames.shape[-1])
    kwargs = P.head_kwargs(a.head, dim)
    torch.manual_seed(a.seed)
    model = RetrievalModel(HEADS.build(a.head, **kwargs), logit_scale=P.logit_scale).to(device)
    out = Path(a.out) if a.out else default_out(a.profile, a.head, a.seed)
    t0 = time.perf_counter()
    res = fit(
        model,
        train_src,
        val_src,
        cfg,
        checkpoint_dir=out / "checkpoints" if a.checkpoints else None,
        resume=a.resume,
        progress=a.progress,
        distributed=d,
    )
    seconds = time.perf_counter() - t0
    if not main:
        return None
    cpu = lambda sd: {k: v.detach().cpu() for k, v in sd.items()}  # noqa: E731
    write_atomic(out / "head.pt", lambda f: torch.save(cpu(res.head.state_dict()), f))
    write_atomic(out / "model.pt", lambda f: torch.save(cpu(res.model.state_dict()), f))
    write_atomic(out / "history.csv", lambda f: f.write(res.history.to_csv(index=False).encode()))
    write_atomic(out / "steps.csv", lambda f: f.write(res.steps.to_csv(index=False).encode()))
    summary = {
        "profile": a.profile,
        "head": a.head,
        "head_kwargs": {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))},
        "seed": a.seed,
        "processes": 1 if d is None else d.world_size,
        "backend": None if d is None else torch.distributed.get_backend(),
        "device": str(device),
        "best_epoch": res.best_epoch,
        "best_value": res.best_value,
        "select_metric": cfg.select_metric,
        "epochs_run": res.epochs_run,
        "stopped_early": res.stopped_early,
        "train_seconds": seconds,
        "config": cfg.as_dict(),
        "protocol": P.as_dict(),
    }
    write_atomic(out / "run.json", lambda f: f.write(json.dumps(summary, indent=2, default=str).encode()))
    print(
        f"{a.head} on {a.profile}, {summary['processes']} process(es): best epoch {res.best_epoch} "
        f"(val {cfg.select_metric} {res.best_value:.2f}), {res.epochs_run} epoch(s) in {seconds:.1f} s -> {out}",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    from .training.distributed import DistributedLaunchError, init_distributed, launch_env

    try:
        env = launch_env()
        d = init_distributed(a.device, a.backend) if env is not None else None
    except DistributedLaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        train(a, d)
    except (TVRError, ValueError) as err:
        rank = "" if d is None else f"rank {d.rank}: "
        print(f"error: {rank}{err}", file=sys.stderr)
        return 2
    finally:
        if d is not None:
            d.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
