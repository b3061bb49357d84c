"""Training on several processes (:mod:`tvrlib.training.distributed`): 2 gloo processes on the CPU against 1 process.

One module fixture starts the 2 processes once (``torch.multiprocessing``; starting Python with torch and the heads
costs seconds on a loaded machine) and runs every distributed computation in them: the all-gather on its own, one
step's loss and gradients for several heads and losses, and short ``fit`` runs. Each process saves what it got; the
tests compare it with the same computation in this (single) process: the gradients of the global batch, the weights
after the same steps of the same seed, the validation history. The launch environment, the sampler and the sharded
losses are checked without processes.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
import traceback

import numpy as np
import pytest
import torch

from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.losses import hardest_negative_hinge, symmetric_infonce
from tvrlib.training import FeatureSource, FitConfig, HardNegatives, RetrievalModel, fit, loop
from tvrlib.training.distributed import (
    DistributedLaunchError,
    GlobalBatchSampler,
    launch_env,
    shard,
    sharded_hinge_sum,
    sharded_infonce,
)

pytestmark = pytest.mark.usefixtures("one_thread")

WORLD = 2
D, F_ = 16, 4
B = 8  # the global batch of the gradient checks (two captions of video 0 in it)
IDS = torch.tensor([0, 1, 2, 0, 3, 4, 5, 6])
TIMEOUT_S = 120  # a hung collective fails the fixture instead of the whole run


# --------------------------------------------------------------------------- what both sides build
def head(name: str):
    torch.manual_seed(0)
    kw = {"dim": D}
    if name in ("seqTransf", "tightTransf"):
        kw.update(layers=1, heads=2)
    return HEADS.build(name, **kw)


def global_batch(seed: int = 0):
    """Text, video (both leaves with gradients: stand-ins for a training tower's outputs), ids and hard negatives."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(B, F_, D, generator=g)
    frames[IDS == 0] = frames[0].clone()  # rows 0 and 3 are two captions of the same video
    mask = torch.ones(B, F_, dtype=torch.bool)
    mask[1, 2:] = False
    sentence = frames.mean(1) + 0.7 * torch.randn(B, D, generator=g)
    neg_text = torch.randn(5, D, generator=g)
    rows, slots = torch.tensor([0, 0, 2, 5, 7]), torch.tensor([0, 1, 0, 0, 0])  # rank 0 has 3, rank 1 has 2
    return sentence, frames, mask, (neg_text, rows, slots)


SCENARIOS = {
    "seqTransf-infonce": ("seqTransf", {}),
    "seqTransf-hinge": ("seqTransf", {"loss": "hinge"}),
    "meanP-infonce": ("meanP", {}),  # no head weights: the temperature and the inputs only
    "tightTransf-infonce": ("tightTransf", {}),  # an interaction head: gathered inputs
    "xpool-infonce": ("xpool", {}),
    "seqTransf-negatives": (
        "seqTransf",
        {"hard_negatives": 2, "hard_negative_weight": 0.5, "reversed_negatives": True},
    ),
    "seqTransf-hinge-negatives": ("seqTransf", {"loss": "hinge", "hard_negatives": 2}),
}


def scenario_inputs(name: str, rank: int | None = None):
    """The model, config and inputs of a scenario: the whole global batch (``rank=None``) or one rank's shard."""
    head_name, kw = SCENARIOS[name]
    cfg = FitConfig(**kw)
    model = RetrievalModel(head(head_name), logit_scale=math.log(20.0))
    sentence, frames, mask, (neg_text, rows, slots) = global_batch()
    idx = np.arange(B) if rank is None else shard(np.arange(B), rank, WORLD)
    sel = torch.as_tensor(idx)
    s = sentence[sel].clone().requires_grad_(True)
    f = frames[sel].clone().requires_grad_(True)
    negatives = None
    if cfg.hard_negatives:
        negatives = HardNegatives(TextInput(neg_text), rows, slots, (B, 2))
    return model, cfg, TextInput(s), VideoInput(f, mask[sel]), IDS[sel], negatives


def tiny_source(seed: int, n_videos: int = 24, captions: int = 2) -> FeatureSource:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n_videos, F_, D, generator=g)
    mask = torch.ones(n_videos, F_, dtype=torch.bool)
    mask[::4, 3:] = False
    t2v = np.repeat(np.arange(n_videos), captions)
    sentence = frames.mean(1)[t2v] + 0.7 * torch.randn(len(t2v), D, generator=g)
    return FeatureSource(TextInput(sentence), VideoInput(frames, mask), t2v)


def fit_model(name: str) -> RetrievalModel:
    return RetrievalModel(head(name))


def comparable(state: dict) -> dict:
    """The weights to compare between runs: all but attention's key bias (``in_proj_bias[D:2D]``). Its true gradient
    is exactly 0 (a bias added to every key shifts all of a query's logits alike, and the softmax ignores that), so
    it trains on float32 rounding noise, which Adam scales up to steps of ~lr * 1e-3 that differ between any two
    summation orders -- two single-process runs on different thread counts alike. It changes no score either way."""
    out = dict(state)
    for k, v in state.items():
        if k.endswith("attn.in_proj_bias"):
            out[k] = torch.cat([v[:D], v[2 * D :]])
    return out


FIT = {"epochs": 3, "batch_size": 16, "lr": 3e-3, "warmup": 0.2, "seed": 3, "progress": False}


# --------------------------------------------------------------------------- the 2 processes
def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from tvrlib.training.distributed import all_gather_with_grad, init_distributed

    d = init_distributed("cpu", timeout_s=TIMEOUT_S)
    results = {"rank": rank, "world_size": d.world_size, "backend": torch.distributed.get_backend()}
    try:
        # 1. the gather alone: each rank weighs the gathered tensor with its own weights
        x = (torch.arange(6.0).view(2, 3) + 10 * rank).requires_grad_(True)
        w = torch.arange(12.0).view(4, 3) * (rank + 1)
        y = all_gather_with_grad(x)
        (w * y).sum().backward()
        results["gather"] = {"y": y.detach(), "grad": x.grad.clone()}
        x2 = x.detach().clone().requires_grad_(True)
        (w * all_gather_with_grad(x2, sum_grads=False)).sum().backward()
        results["gather_own"] = x2.grad.clone()

        # 2. one step's loss and gradients: this rank's shard, gradients averaged over the ranks
        grads = {}
        for name in SCENARIOS:
            model, cfg, text, video, ids, negatives = scenario_inputs(name, rank)
            model.train()
            model.head.eval()  # X-Pool's dropout: compare the same function
            negatives = d.shard_negatives(negatives, B)
            loss = d.batch_loss(cfg, model, text, video, ids, negatives)
            loss.backward()
            value = d.sync_gradients(model, loss)
            grads[name] = {
                "loss": value,
                "params": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                "sentence": text.sentence.grad.clone(),
                "frames": video.frames.grad.clone(),
            }
        # CLIP4Clip's AllGather: the whole B x B loss on every rank, each rank's own slot of its own gradient
        model, cfg, text, video, ids, _ = scenario_inputs("seqTransf-infonce", rank)
        h = model.head
        t = torch.nn.functional.normalize(h.embed_text(text), dim=-1)
        v = torch.nn.functional.normalize(h.embed_video(video), dim=-1)
        T, V = d.gather(t, sum_grads=False), d.gather(v, sum_grads=False)
        loss = symmetric_infonce(model.logit_scale.exp() * T @ V.T, IDS)
        loss.backward()
        d.sync_gradients(model, loss)
        grads["clip4clip"] = {n: p.grad.clone() for n, p in model.named_parameters()}
        results["grads"] = grads

        # 3. fit on 2 processes: batch 16 = 2 x 8, rank 0 validates and writes the checkpoints
        ckpt = os.path.join(out, "ckpt")
        src = tiny_source(0)
        res = fit(fit_model("seqTransf"), src, src.subset(12), distributed=d, checkpoint_dir=ckpt, **FIT)
        results["fit"] = {
            "state": {k: v.clone() for k, v in res.model.state_dict().items()},
            "history": res.history,
            "steps": res.steps,
            "best_epoch": res.best_epoch,
        }
        # interrupted after epoch 1 and resumed from rank 0's checkpoint: the uninterrupted run
        again = os.path.join(out, "again")
        fit(fit_model("seqTransf"), src, src.subset(12), distributed=d, checkpoint_dir=again, stop_after_epoch=1, **FIT)
        resumed = fit(
            fit_model("seqTransf"), src, src.subset(12), distributed=d, checkpoint_dir=again, resume=True, **FIT
        )
        results["resumed"] = {k: v.clone() for k, v in resumed.model.state_dict().items()}
        src = tiny_source(1)
        hinge = fit(fit_model("seqLSTM"), src, src.subset(12), distributed=d, loss="hinge", **FIT)
        results["fit_hinge"] = {k: v.clone() for k, v in hinge.model.state_dict().items()}
        try:
            fit(fit_model("seqTransf"), src, src, distributed=d, **{**FIT, "batch_size": 15})
        except ValueError as err:
            results["odd_batch_error"] = str(err)
        d.barrier()
    except Exception:
        results["error"] = traceback.format_exc()
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    d.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """What each of the 2 gloo processes computed (a list indexed by rank), and the seconds they took."""
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("distributed")
    t0 = time.perf_counter()
    ctx = mp.start_processes(_worker, args=(free_port(), str(out)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            pytest.fail(f"the {WORLD} processes did not finish in {TIMEOUT_S} s")
    results = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for r in results:
        assert "error" not in r, f"rank {r['rank']} failed:\n{r['error']}"
    print(f"{WORLD} processes: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return results, out


# --------------------------------------------------------------------------- launch environment (no processes)
def test_no_torchrun_variables_mean_a_single_process_run():
    assert launch_env({}) is None
    assert launch_env({"PATH": "/bin"}) is None


def test_a_launch_without_master_addr_names_what_to_set():
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_PORT": "29500"}
    with pytest.raises(DistributedLaunchError, match="MASTER_ADDR is not set.*torchrun --nproc_per_node"):
        launch_env(env)
    with pytest.raises(DistributedLaunchError, match="RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set"):
        launch_env({"WORLD_SIZE": "2"})


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"RANK": "2"}, "RANK must be in 0..WORLD_SIZE-1 = 0..1, got 2"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT must be a TCP port"),
    ],
)
def test_inconsistent_launch_variables_are_refused(bad, match):
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert launch_env(env).rank == 1
    with pytest.raises(DistributedLaunchError, match=match):
        launch_env({**env, **bad})


def test_a_distributed_object_needs_a_process_group():
    from tvrlib.training.distributed import Distributed

    with pytest.raises(DistributedLaunchError, match="no process group"):
        Distributed()


# --------------------------------------------------------------------------- the sampler (no processes)
@pytest.mark.parametrize("world", [1, 2, 4])
def test_the_shards_of_a_step_are_the_single_process_batch_each_pair_once(world):
    n, batch, seed = 50, 8, 7
    for epoch in range(3):
        samplers = [GlobalBatchSampler(n, batch, rank=r, world_size=world, seed=seed) for r in range(world)]
        for s in samplers:
            s.set_epoch(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(n)  # what fit draws for the epoch
        steps = list(zip(*samplers, strict=True))
        assert len(steps) == n // batch == len(samplers[0])
        for k, shards in enumerate(steps):
            assert all(len(s) == batch // world for s in shards)
            assert np.array_equal(np.concatenate(shards), order[k * batch : (k + 1) * batch])  # same pairs, order
        seen = np.concatenate([np.concatenate(s) for s in steps])
        assert len(np.unique(seen)) == len(seen) == (n // batch) * batch  # every pair at most once an epoch
    e0, e1 = GlobalBatchSampler(n, batch, seed=seed), GlobalBatchSampler(n, batch, seed=seed)
    e1.set_epoch(1)
    assert not np.array_equal(np.concatenate(list(e0)), np.concatenate(list(e1)))  # reshuffled every epoch


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ValueError, match="multiple of world_size 2"):
        GlobalBatchSampler(50, 9, world_size=2)
    with pytest.raises(ValueError, match="multiple of 4"):
        shard(np.arange(6), 0, 4)


# --------------------------------------------------------------------------- the sharded losses (no processes)
def test_the_shards_of_the_losses_add_up_to_the_global_losses():
    g = torch.Generator().manual_seed(0)
    logits = 5 * torch.randn(B, B, generator=g)
    extra = torch.randn(B, 2, generator=g)
    extra_mask = torch.rand(B, 2, generator=g) > 0.3
    rev = torch.randn(B, 1, generator=g)
    whole = symmetric_infonce(logits, IDS, extra_v2t=extra, extra_mask=extra_mask, extra_t2v=rev)
    assert torch.allclose(sharded_infonce(logits, logits.T, IDS, 0, extra, extra_mask, rev), whole, atol=1e-6)
    for world in (2, 4):
        b = B // world
        parts = [
            sharded_infonce(
                logits[r * b : (r + 1) * b],
                logits.T[r * b : (r + 1) * b],
                IDS,
                r * b,
                extra[r * b : (r + 1) * b],
                extra_mask[r * b : (r + 1) * b],
                rev[r * b : (r + 1) * b],
            )
            for r in range(world)
        ]
        assert torch.allclose(torch.stack(parts).mean(), whole, atol=1e-6)
        hinge = [
            sharded_hinge_sum(logits[r * b : (r + 1) * b], logits.T[r * b : (r + 1) * b], IDS, r * b, 0.2)
            for r in range(world)
        ]
        assert torch.allclose(torch.stack(hinge).sum(), hardest_negative_hinge(logits, IDS, 0.2), atol=1e-5)


# --------------------------------------------------------------------------- 2 processes vs 1
def test_the_processes_joined_one_gloo_group(two_ranks):
    results, _ = two_ranks
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["world_size"] == WORLD and r["backend"] == "gloo" for r in results)


def test_the_gather_concatenates_in_rank_order_and_sums_the_gradient_of_every_rank(two_ranks):
    results, _ = two_ranks
    x = [torch.arange(6.0).view(2, 3) + 10 * r for r in range(WORLD)]
    w = [torch.arange(12.0).view(4, 3) * (r + 1) for r in range(WORLD)]
    for r, res in enumerate(results):
        assert torch.equal(res["gather"]["y"], torch.cat(x))
        # d/dx_r of sum_s <w_s, gather(x)> = sum_s (slot r of w_s)
        assert torch.equal(res["gather"]["grad"], sum(ws[2 * r : 2 * r + 2] for ws in w))
        assert torch.equal(res["gather_own"], w[r][2 * r : 2 * r + 2])  # CLIP4Clip's: its own loss only


def single_process_gradients(name: str):
    model, cfg, text, video, ids, negatives = scenario_inputs(name)
    model.train()
    model.head.eval()
    loss = loop.batch_loss(cfg, model, text, video, ids, negatives)
    loss.backward()
    params = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), params, text.sentence.grad, video.frames.grad


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5) -> bool:
    return bool(torch.allclose(a, b, rtol=rtol, atol=rtol * max(float(b.abs().max()), 1e-3)))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_processes_compute_the_gradient_of_the_global_batch(two_ranks, name):
    """The loss and every parameter gradient equal one process's on the whole batch (after averaging); the gradient
    reaching each rank's inputs is the world size times its rows of one process's (it is not averaged)."""
    results, _ = two_ranks
    loss, params, sentence, frames = single_process_gradients(name)
    assert params, "the scenario trains something"
    b = B // WORLD
    for r, res in enumerate(results):
        got = res["grads"][name]
        assert got["loss"] == pytest.approx(loss, rel=1e-5)
        assert set(got["params"]) == set(params)
        for n, g in params.items():
            assert close(got["params"][n], g), (name, r, n, (got["params"][n] - g).abs().max())
        assert close(got["sentence"], WORLD * sentence[r * b : (r + 1) * b])
        assert close(got["frames"], WORLD * frames[r * b : (r + 1) * b])


def test_clip4clips_gather_scales_the_embedding_path_by_one_over_the_world_size(two_ranks):
    """The derivation in tvrlib.training.distributed: with each rank's own slot of its own gradient and the whole
    loss on every rank, the averaged gradient of the head's weights is 1/N of the true one while the temperature's is
    the true one, so no single loss factor can make both right."""
    results, _ = two_ranks
    _, params, _, _ = single_process_gradients("seqTransf-infonce")
    for res in results:
        got = res["grads"]["clip4clip"]
        assert close(got["logit_scale"], params["logit_scale"])
        for n, g in params.items():
            if n != "logit_scale":
                assert close(got[n], g / WORLD), n


def test_two_processes_train_like_one_process_with_the_same_global_batch(two_ranks):
    results, out = two_ranks
    src = tiny_source(0)
    one = fit(fit_model("seqTransf"), src, src.subset(12), **FIT)
    want = comparable(one.model.state_dict())
    scores = score_all(one.head, src.texts, src.videos)
    for res in results:
        got = res["fit"]
        assert got["best_epoch"] == one.best_epoch
        mine = comparable(got["state"])
        for k, v in want.items():
            assert close(mine[k], v), (k, (mine[k] - v).abs().max())
        trained = fit_model("seqTransf")
        trained.load_state_dict(got["state"])
        assert close(score_all(trained.head, src.texts, src.videos), scores)  # the key bias included
        assert np.allclose(got["steps"]["loss"], one.steps["loss"], rtol=1e-5)
        cols = [c for c in one.history.columns if c.startswith("val_")]
        assert got["history"][cols].equals(one.history[cols])  # rank 0's validation, broadcast to every rank
    last = torch.load(out / "ckpt" / "last.pt", weights_only=False)  # rank 0 wrote the checkpoints
    assert last["epoch"] == FIT["epochs"] - 1 and len(last["history"]) == FIT["epochs"]


def test_a_resumed_distributed_run_is_the_uninterrupted_one(two_ranks):
    results, _ = two_ranks
    for res in results:
        for k, v in res["fit"]["state"].items():
            assert torch.equal(res["resumed"][k], v), k


def test_two_processes_train_a_hinge_loss_like_one_process(two_ranks):
    results, _ = two_ranks
    src = tiny_source(1)
    one = fit(fit_model("seqLSTM"), src, src.subset(12), loss="hinge", **FIT)
    for res in results:
        for k, v in one.model.state_dict().items():
            assert close(res["fit_hinge"][k], v), k


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(two_ranks):
    results, _ = two_ranks
    for res in results:
        assert "must be a multiple of the 2 processes" in res["odd_batch_error"]


def test_the_command_line_names_what_a_wrong_launch_misses(monkeypatch, capsys):
    from tvrlib import train_distributed
    from tvrlib.training.distributed import TORCHRUN_VARS

    for name in (*TORCHRUN_VARS, "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    assert train_distributed.main(["--profile", "tiny", "--head", "meanP"]) == 2
    err = capsys.readouterr().err
    assert "MASTER_ADDR is not set" in err and "torchrun --nproc_per_node" in err
