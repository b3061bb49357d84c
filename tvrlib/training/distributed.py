"""Training on several processes (several GPUs, or CPU processes with gloo) through torch's own launcher.

``torchrun --nproc_per_node N -m tvrlib.train_distributed --profile quick --head seqTransf`` starts ``N`` processes;
each calls :func:`init_distributed` (which reads torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``: :func:`launch_env`) and runs :func:`tvrlib.training.fit` with
``distributed=`` the :class:`Distributed` it returns. The run is the single-process run with the same global batch,
split over the processes:

* **Batches** (:func:`shard`, :class:`GlobalBatchSampler`): every process draws the epoch's order from the same seed
  (``numpy.random.default_rng([seed, epoch])``, as :func:`~tvrlib.training.fit` does) and takes its own contiguous
  ``B / N`` slice of each global batch of ``B`` pairs, so the union over the processes of one step's batches is the
  single-process batch, in the same order (rank 0 holds its first ``B / N`` pairs). ``B`` must be a multiple of ``N``.
* **The global contrastive batch** (:meth:`Distributed.batch_loss`): each process embeds its own pairs, then
  :func:`all_gather_with_grad` gathers every process's embeddings (a dual-encoder head: the normalised text and video
  embeddings, as CLIP4Clip's ``AllGather`` does; an interaction head: the head's inputs, the CLIP features), and the
  loss puts the process's captions against *all* ``B`` videos (text-to-video rows) and its videos against all ``B``
  captions (video-to-text rows). Same-video masking uses the gathered video ids.
* **Gradients** (:meth:`Distributed.sync_gradients`): an explicit all-reduce that averages the gradients of every
  parameter (what DDP does; :class:`~tvrlib.training.RetrievalModel` has no ``forward`` for DDP to wrap), before
  gradient clipping, so every process takes the same optimiser step and the weights stay equal everywhere.
* **Validation, checkpoints, stopping**: rank 0 validates and broadcasts the metrics (:meth:`Distributed.on_main`),
  so every process selects the same best epoch and stops early at the same epoch; only rank 0 writes checkpoints
  (every process reads them to resume).

**The gradient scale, derived.** Let the global loss be ``L`` (symmetric InfoNCE: the mean over the ``B`` caption
rows plus the mean over the ``B`` video rows, halved). Process ``r`` computes ``L_r`` = the same expression over its
own ``b = B / N`` rows of each direction, each a mean over ``b``; then ``L = (1/N) sum_r L_r`` exactly (the hinge, a
sum, takes ``L_r = N * its rows' sum``). ``L_s`` depends on process ``r``'s embeddings ``e_r`` only through the
gathered copy ``E_r`` (slot ``r`` of the gathered tensor) when ``s != r``, and directly too when ``s = r``.
:func:`all_gather_with_grad`'s backward all-reduces (sums) the gradient that reaches the gathered tensor and hands
process ``r`` its slot: ``sum_s dL_s/dE_r``. So process ``r``'s backward yields
``g_r = (dL_r/de_r|direct + sum_s dL_s/dE_r) de_r/dtheta + dL_r/dtheta|direct`` (the last: the temperature, the weights
of an interaction head applied to gathered inputs), and the average that :meth:`~Distributed.sync_gradients` takes is
``(1/N) sum_r g_r = d/dtheta [(1/N) sum_s L_s] = dL/dtheta``: exactly the single-process gradient, for the embedding
path and the temperature alike, with no factor ``N`` anywhere (tested against a single-process computation).

The alternative, CLIP4Clip's ``AllGather`` (``all_gather_with_grad(x, sum_grads=False)``: the backward hands each
process only its own slot of its own gradient) with every process computing the whole ``B x B`` loss ``L``, gives
``g_r = dL/dE_r de_r/dtheta + dL/dtheta|direct``, whose average is ``(1/N)`` x the embedding-path gradient plus the
full temperature gradient. Multiplying the loss by ``N`` fixes the first and makes the second ``N`` times too large,
so no single loss factor makes it exact while the temperature (or any weight applied after the gather) trains; Adam is
nearly blind to a common scale, but not to this mixed one, nor is gradient clipping.

Heads with dropout train correctly but not bit-identically to one process (each process draws its own masks, seeded
by rank); :class:`~tvrlib.training.FrameSource` draws its frames per process, so it too differs from one process in
its random draws. Caption hard negatives are drawn for the global batch on every process (the same draws as one
process) and each keeps its own rows; with a :class:`~tvrlib.training.TextTowerSource` every process then encodes all
of them (correct, ``N`` times the work of that part).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..errors import TVRError
from ..frame_order import reorder_frames
from ..heads.base import DualEncoderHead, TextInput, VideoInput
from ..losses import _extra
from .sources import HardNegatives

#: what torchrun sets in each process it starts (``LOCAL_WORLD_SIZE`` too, optional here)
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

_HOW = (
    "launch with torchrun, which sets them all: `torchrun --nproc_per_node N -m tvrlib.train_distributed ...`; "
    "launching each process by hand, set RANK (0..N-1), WORLD_SIZE (N), LOCAL_RANK (the process's index on its "
    "machine), MASTER_ADDR (rank 0's host, e.g. 127.0.0.1) and MASTER_PORT (a free port) in every process"
)


class DistributedLaunchError(TVRError, RuntimeError):
    """A process was launched for distributed training with a missing or inconsistent environment."""


# --------------------------------------------------------------------------- the launch environment
@dataclass(frozen=True)
class LaunchEnv:
    """Where this process sits in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int


def launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """This process's :class:`LaunchEnv` from torchrun's variables (``environ``: default ``os.environ``), or None
    when none of ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` is set (a plain single-process run). Raises
    :class:`DistributedLaunchError`, naming what to set, when some are set and others missing or invalid."""
    env = os.environ if environ is None else environ
    if not any(v in env for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
        return None
    missing = [v for v in TORCHRUN_VARS if not str(env.get(v, "")).strip()]
    if missing:
        present = {v: env[v] for v in TORCHRUN_VARS if str(env.get(v, "")).strip()}
        raise DistributedLaunchError(
            f"distributed launch: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            f"(found {present}); set {', '.join(missing)}, or {_HOW}"
        )

    def integer(name: str) -> int:
        try:
            return int(env[name])
        except ValueError:
            raise DistributedLaunchError(f"{name} must be an integer, got {env[name]!r}; {_HOW}") from None

    rank, world, local = integer("RANK"), integer("WORLD_SIZE"), integer("LOCAL_RANK")
    local_world = integer("LOCAL_WORLD_SIZE") if str(env.get("LOCAL_WORLD_SIZE", "")).strip() else world
    port = integer("MASTER_PORT")
    if world < 1:
        raise DistributedLaunchError(f"WORLD_SIZE must be >= 1, got {world}")
    if not 0 <= rank < world:
        raise DistributedLaunchError(f"RANK must be in 0..WORLD_SIZE-1 = 0..{world - 1}, got {rank}")
    if not 0 <= local < max(local_world, 1):
        raise DistributedLaunchError(f"LOCAL_RANK must be in 0..{local_world - 1}, got {local}")
    if not 0 < port < 65536:
        raise DistributedLaunchError(f"MASTER_PORT must be a TCP port (1..65535), got {port}")
    return LaunchEnv(rank, world, local, local_world, str(env["MASTER_ADDR"]).strip(), port)


def process_device(env: LaunchEnv, device: str | torch.device = "auto") -> torch.device:
    """The device of process ``env``: ``"auto"`` is ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU;
    ``"cuda"`` is ``cuda:LOCAL_RANK``; anything else as given."""
    dev = str(device)
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cuda":
        count = torch.cuda.device_count()
        if env.local_rank >= count:
            raise DistributedLaunchError(
                f"LOCAL_RANK {env.local_rank} has no GPU: this machine has {count}; start at most {count} processes "
                f"per machine (torchrun --nproc_per_node {max(count, 1)}), or train on the CPU (--device cpu, gloo)"
            )
        return torch.device("cuda", env.local_rank)
    return torch.device(dev)


def init_distributed(
    device: str | torch.device = "auto",
    backend: str | None = None,
    *,
    timeout_s: float = 600.0,
    environ: Mapping[str, str] | None = None,
) -> Distributed | None:
    """Join the process group of a torchrun launch: a :class:`Distributed` (pass it as ``fit(..., distributed=)``),
    or None when the process was not launched for distributed training (:func:`launch_env`).

    ``device``: see :func:`process_device`; a GPU process becomes that GPU's (``torch.cuda.set_device``).
    ``backend``: default ``"nccl"`` on CUDA and ``"gloo"`` on the CPU. Call :meth:`Distributed.close` at the end."""
    env = launch_env(environ)
    if env is None:
        return None
    if not dist.is_available():
        raise DistributedLaunchError("this torch build has no torch.distributed; train in one process")
    dev = process_device(env, device)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        host = f"[{env.master_addr}]" if ":" in env.master_addr else env.master_addr
        dist.init_process_group(
            backend,
            init_method=f"tcp://{host}:{env.master_port}",
            rank=env.rank,
            world_size=env.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return Distributed(dev)


# --------------------------------------------------------------------------- batches
def shard(idx: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Process ``rank``'s contiguous ``len(idx) / world_size`` slice of the global batch ``idx``."""
    n = len(idx)
    if n % world_size:
        raise ValueError(
            f"a global batch of {n} pairs cannot be split evenly over {world_size} processes; "
            f"use a batch_size that is a multiple of {world_size}"
        )
    b = n // world_size
    return idx[rank * b : (rank + 1) * b]


class GlobalBatchSampler:
    """Each process's share of every global batch of an epoch, DistributedSampler-style but by batch.

    The epoch's order is ``numpy.random.default_rng([seed, epoch]).permutation(n)`` on every process (what
    :func:`~tvrlib.training.fit` draws; :meth:`set_epoch` picks the epoch), cut into ``steps_per_epoch`` global
    batches of ``batch_size`` (the tail that does not fill one is dropped, as in ``fit``), and each global batch into
    ``world_size`` contiguous shards (:func:`shard`): iterating yields this ``rank``'s ``batch_size / world_size``
    indices per step. Over the ranks, one step's shards are exactly the global batch, each pair once."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        self.n, self.batch = int(n), min(int(batch_size), int(n))
        if self.batch % world_size:
            raise ValueError(
                f"batch_size {self.batch} is not a multiple of world_size {world_size}: each process takes "
                f"batch_size / world_size pairs of every global batch"
            )
        self.rank, self.world_size, self.seed = rank, world_size, seed
        steps = max(1, self.n // self.batch)
        self.steps = steps if steps_per_epoch is None else min(steps, steps_per_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> list[np.ndarray]:
        """The epoch's global batches (what one process would train on)."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return [order[k * self.batch : (k + 1) * self.batch] for k in range(self.steps)]

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for idx in self.global_batches():
            yield shard(idx, self.rank, self.world_size)


# --------------------------------------------------------------------------- the gather
class _AllGather(torch.autograd.Function):
    """All-gather along dim 0 whose backward hands this process the gradient of its own slot, summed over every
    process's loss (``sum_grads``) or from its own loss only (CLIP4Clip's ``AllGather``)."""

    @staticmethod
    def forward(ctx, x, sum_grads, group):
        rank, world = dist.get_rank(group), dist.get_world_size(group)
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x, group=group)
        parts[rank] = x  # the local slot holds the tensor itself
        ctx.rank, ctx.n, ctx.sum_grads, ctx.group = rank, x.shape[0], sum_grads, group
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        if ctx.sum_grads:
            grad = grad.clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None, None


def all_gather_with_grad(x: torch.Tensor, *, sum_grads: bool = True, group=None) -> torch.Tensor:
    """Every process's ``x [n, ...]`` concatenated in rank order ``[world_size * n, ...]``, differentiable with
    respect to the local ``x`` (it sits in slot ``rank``).

    ``sum_grads=True`` (the exact gradient, module docstring): the backward sums, over the processes, the gradient
    that reaches the gathered tensor, and returns this process's slot of the sum -- the gradient of the sum of every
    process's loss with respect to ``x``. ``sum_grads=False``: only this process's own loss's gradient of its slot
    (CLIP4Clip's ``AllGather``; kept to show, in the tests, what it misses). Every process must call it with the same
    shape, and with gradients every process must run the backward (the sum is a collective). Without gradients it is a
    plain all-gather."""
    if dist.get_world_size(group) == 1:
        return x
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _gather_plain(x, group)
    return _AllGather.apply(x, sum_grads, group)


def _gather_plain(x: torch.Tensor, group=None) -> torch.Tensor:
    world = dist.get_world_size(group)
    if world == 1:
        return x
    bool_ = x.dtype == torch.bool
    y = (x.to(torch.uint8) if bool_ else x).contiguous()
    parts = [torch.empty_like(y) for _ in range(world)]
    dist.all_gather(parts, y, group=group)
    out = torch.cat(parts)
    return out.to(torch.bool) if bool_ else out


def _gather_opt(t: torch.Tensor | None, group) -> torch.Tensor | None:
    return None if t is None else all_gather_with_grad(t, group=group)


# --------------------------------------------------------------------------- the losses of a shard
def _same_video(video_ids: torch.Tensor, offset: int, b: int) -> torch.Tensor:
    """``bool [b, B]``: True where global row ``offset + i`` and column ``j != offset + i`` show the same video."""
    rows = torch.arange(offset, offset + b, device=video_ids.device)
    same = video_ids[rows][:, None] == video_ids[None, :]
    same[torch.arange(b, device=video_ids.device), rows] = False
    return same


def _check_shard(t2v: torch.Tensor, v2t: torch.Tensor, video_ids: torch.Tensor, offset: int) -> int:
    if t2v.ndim != 2 or t2v.shape != v2t.shape:
        raise ValueError(f"t2v and v2t must both be [b, B], got {tuple(t2v.shape)} and {tuple(v2t.shape)}")
    b, B = t2v.shape
    if video_ids.shape != (B,):
        raise ValueError(f"video_ids must hold the global batch's {B} ids, got shape {tuple(video_ids.shape)}")
    if not 0 <= offset <= B - b:
        raise ValueError(f"offset {offset} puts the shard's {b} rows outside the global batch of {B}")
    return b


def sharded_infonce(
    t2v: torch.Tensor,
    v2t: torch.Tensor,
    video_ids: torch.Tensor,
    offset: int,
    extra_v2t: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
    extra_t2v: torch.Tensor | None = None,
) -> torch.Tensor:
    """One process's part of :func:`tvrlib.losses.symmetric_infonce` on a global batch of ``B`` pairs.

    ``t2v [b, B]``: logits of the process's captions (global rows ``offset .. offset + b - 1``) against every video;
    ``v2t [b, B]``: logits of its videos (the same rows) against every caption; ``video_ids [B]``: the global batch's
    ids (same-video entries leave both softmaxes); ``extra_v2t`` / ``extra_mask`` / ``extra_t2v``: as in
    ``symmetric_infonce``, for the shard's rows. Each direction is a mean over the ``b`` rows, so the mean of the
    processes' values is the global loss; with ``b = B`` and ``offset = 0`` it is ``symmetric_infonce(t2v, ids)``."""
    b = _check_shard(t2v, v2t, video_ids, offset)
    same = _same_video(video_ids, offset, b)
    target = torch.arange(offset, offset + b, device=t2v.device)
    t2v, v2t = t2v.masked_fill(same, float("-inf")), v2t.masked_fill(same, float("-inf"))
    extra = _extra(extra_v2t, extra_mask, b)
    if extra is not None:
        v2t = torch.cat([v2t, extra.to(v2t.dtype)], dim=1)
    extra = _extra(extra_t2v, None, b)
    if extra is not None:
        t2v = torch.cat([t2v, extra.to(t2v.dtype)], dim=1)
    return 0.5 * (F.cross_entropy(t2v, target) + F.cross_entropy(v2t, target))


def sharded_hinge_sum(
    t2v: torch.Tensor,
    v2t: torch.Tensor,
    video_ids: torch.Tensor,
    offset: int,
    margin: float = 0.2,
    extra_v2t: torch.Tensor | None = None,
    extra_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One process's part of :func:`tvrlib.losses.hardest_negative_hinge` (``reduction="sum"``) on raw scores laid
    out as in :func:`sharded_infonce`: the sum of its captions' and its videos' costs (the processes' values add up to
    the global loss)."""
    b = _check_shard(t2v, v2t, video_ids, offset)
    rows = torch.arange(b, device=t2v.device)
    not_negative = _same_video(video_ids, offset, b)
    not_negative[rows, rows + offset] = True
    pos_t, pos_v = t2v[rows, rows + offset], v2t[rows, rows + offset]
    hardest_video = t2v.masked_fill(not_negative, float("-inf")).max(dim=1).values
    hardest_text = v2t.masked_fill(not_negative, float("-inf")).max(dim=1).values
    extra = _extra(extra_v2t, extra_mask, b)
    if extra is not None:
        hardest_text = torch.maximum(hardest_text, extra.to(v2t.dtype).max(dim=1).values)
    return ((margin - pos_t + hardest_video).clamp(min=0) + (margin - pos_v + hardest_text).clamp(min=0)).sum()


# --------------------------------------------------------------------------- the process group's side of fit
class Distributed:
    """This process's side of a distributed :func:`~tvrlib.training.fit` (``fit(..., distributed=d)``), over an
    initialised default process group (:func:`init_distributed` makes one from torchrun's environment).

    ``device``: where this process's model and data live (CUDA tensors need ``nccl``, or ``gloo`` on one GPU)."""

    def __init__(self, device: str | torch.device = "cpu", group=None):
        if not (dist.is_available() and dist.is_initialized()):
            raise DistributedLaunchError(
                "no process group: call tvrlib.training.init_distributed() in each process (or "
                f"torch.distributed.init_process_group) before building Distributed; {_HOW}"
            )
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, device={self.device})"

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes checkpoints and outputs."""
        return self.rank == 0

    # -- batches ----------------------------------------------------------------------------------------------
    def check_batch(self, batch: int) -> None:
        """Raise unless a global batch of ``batch`` pairs splits evenly over the processes."""
        if batch % self.world_size:
            raise ValueError(
                f"the global batch ({batch} pairs: min(batch_size, len(train))) must be a multiple of the "
                f"{self.world_size} processes, each of which takes batch / {self.world_size} of every batch; "
                f"set batch_size to a multiple of {self.world_size}"
            )

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This process's slice of the global batch ``idx`` (:func:`shard`)."""
        return shard(idx, self.rank, self.world_size)

    def shard_negatives(self, negatives: HardNegatives | None, batch: int) -> HardNegatives | None:
        """The hard negatives of this process's rows of a global batch of ``batch`` rows (None when it has none)."""
        if negatives is None:
            return None
        b = batch // self.world_size
        lo = self.rank * b
        keep = (negatives.row >= lo) & (negatives.row < lo + b)
        if not bool(keep.any()):
            return None
        pick = torch.nonzero(keep).flatten()
        return HardNegatives(
            negatives.text.index(pick.to(negatives.text.sentence.device)),
            negatives.row[pick] - lo,
            negatives.slot[pick],
            (b, negatives.shape[1]),
        )

    def torch_seed(self, seed: int) -> int:
        """The torch seed of this process in a step seeded ``seed`` in one process (dropout): rank 0 keeps it."""
        return int(seed) + self.rank * 1_000_000_007

    # -- the loss ---------------------------------------------------------------------------------------------
    def gather(self, x: torch.Tensor, *, sum_grads: bool = True) -> torch.Tensor:
        """:func:`all_gather_with_grad` over this group."""
        return all_gather_with_grad(x, sum_grads=sum_grads, group=self.group)

    def gather_text(self, text: TextInput) -> TextInput:
        return TextInput(
            self.gather(text.sentence), _gather_opt(text.words, self.group), _gather_opt(text.word_mask, self.group)
        )

    def gather_video(self, video: VideoInput) -> VideoInput:
        return VideoInput(self.gather(video.frames), self.gather(video.mask), _gather_opt(video.patches, self.group))

    def scores(self, model, text: TextInput, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw scores of this process's pairs against the global batch: ``(t2v [b, B], v2t [b, B])``.

        A plain dual encoder (a :class:`~tvrlib.heads.DualEncoderHead` that keeps its cosine ``score``) embeds its
        own captions and videos and gathers the normalised embeddings; any other head gathers its inputs (the CLIP
        features) and scores the process's captions against every video and every caption against its videos."""
        head = model.head
        if isinstance(head, DualEncoderHead) and type(head).score is DualEncoderHead.score:
            t = F.normalize(head.embed_text(text), dim=-1)
            v = F.normalize(head.embed_video(video), dim=-1)
            return t @ self.gather(v).T, v @ self.gather(t).T
        return head.score(text, self.gather_video(video)), head.score(self.gather_text(text), video).T

    def batch_loss(self, cfg, model, text: TextInput, video: VideoInput, ids: torch.Tensor, negatives=None):
        """This process's part ``L_r`` of :func:`tvrlib.training.loop.batch_loss` on the global batch: the mean over
        the processes of ``L_r`` is the single-process loss, and with :meth:`sync_gradients` so is the gradient
        (module docstring). ``text`` / ``video`` / ``ids``: this process's shard; ``negatives``: its rows' hard
        negatives (:meth:`shard_negatives`)."""
        b = len(ids)
        offset = self.rank * b
        all_ids = _gather_plain(torch.as_tensor(ids, device=self.device), self.group)
        t2v, v2t = self.scores(model, text, video)
        all_ids = all_ids.to(t2v.device)
        infonce = cfg.loss == "infonce"
        extra = None
        if negatives is not None:
            pairs = video.index(negatives.row.to(video.frames.device))
            score = model.pair_logits if infonce else model.head.score_pairs
            values = score(negatives.text, pairs)
            extra = negatives.place(values)
        if not infonce:
            return self.world_size * sharded_hinge_sum(t2v, v2t, all_ids, offset, cfg.margin, extra)
        if model.head.uses_logit_scale:
            scale = model.logit_scale.exp()
            t2v, v2t = t2v * scale, v2t * scale
        reversed_t2v = None
        if cfg.reversed_negatives:
            reversed_t2v = model.pair_logits(text, reorder_frames(video, "reverse"))[:, None]
        loss = sharded_infonce(t2v, v2t, all_ids, offset, extra_v2t=extra, extra_t2v=reversed_t2v)
        if cfg.hard_negatives and cfg.hard_negative_weight:
            rows = torch.arange(b, device=t2v.device)
            loss = loss + cfg.hard_negative_weight * self._edit_contrast(t2v[rows, rows + offset], extra)
        return loss

    def _edit_contrast(self, positive: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """This process's part of :func:`tvrlib.losses.edit_contrast` (a mean over the global batch's rows that have
        an extra negative): ``world_size`` x its rows' sum / the global count of such rows."""
        total = positive.sum() * 0.0
        count = torch.zeros((), dtype=torch.float64, device=positive.device)
        ext = _extra(extra, None, positive.shape[0])
        if ext is not None:
            has = torch.isfinite(ext).any(dim=1)
            if bool(has.any()):
                both = torch.cat([positive[:, None], ext.to(positive.dtype)], dim=1)[has]
                total = -(both[:, 0] - torch.logsumexp(both, dim=1)).sum()
                count = count + float(has.sum())
        dist.all_reduce(count, op=dist.ReduceOp.SUM, group=self.group)  # every process, with or without extras
        if count.item() == 0:
            return total
        return total * (self.world_size / count.item())

    # -- gradients and state ----------------------------------------------------------------------------------
    def sync_gradients(self, model: torch.nn.Module, loss: torch.Tensor) -> float:
        """Average the gradients of ``model``'s trainable parameters over the processes (an all-reduce, as DDP does)
        and return the global loss, the mean of the processes' ``loss``. A parameter with no gradient on any process
        keeps none (the optimiser skips it, as in one process); one that has a gradient somewhere gets zeros where
        it has none."""
        params = [p for p in model.parameters() if p.requires_grad]
        flags = [float(p.grad is not None) for p in params] + [float(loss.detach())]
        flags = torch.tensor(flags, dtype=torch.float64, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.SUM, group=self.group)
        used = [p for p, f in zip(params, flags[:-1].tolist(), strict=True) if f > 0]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        by_dtype: dict = {}
        for p in used:
            by_dtype.setdefault((p.grad.dtype, p.grad.device), []).append(p)
        for group in by_dtype.values():
            flat = torch.cat([p.grad.reshape(-1) for p in group])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)
            flat /= self.world_size
            start = 0
            for p in group:
                n = p.grad.numel()
                p.grad.copy_(flat[start : start + n].view_as(p.grad))
                start += n
        return float(flags[-1]) / self.world_size

    def broadcast_state(self, model: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every process's ``model`` (the same starting weights)."""
        with torch.no_grad():
            for t in model.state_dict().values():
                if isinstance(t, torch.Tensor):
                    dist.broadcast(t, src=0, group=self.group)

    def on_main(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` run on rank 0 and its result sent to every process (e.g. validation metrics); an
        exception on rank 0 is raised on every process."""
        box = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn(*args, **kwargs))
            except Exception as err:  # every process must leave the broadcast
                failure = err
                box[0] = ("error", f"{type(err).__name__}: {err}")
        dist.broadcast_object_list(box, src=0, group=self.group)
        status, value = box[0]
        if status == "error":
            if self.is_main:
                raise failure
            raise RuntimeError(f"rank 0 failed, so this process stops too: {value}")
        return value

    def barrier(self) -> None:
        if self.device.type == "cuda" and dist.get_backend(self.group) == "nccl":
            dist.barrier(group=self.group, device_ids=[self.device.index or 0])
        else:
            dist.barrier(group=self.group)

    def close(self) -> None:
        """Leave and destroy the process group."""
        if dist.is_initialized():
            dist.destroy_process_group()
