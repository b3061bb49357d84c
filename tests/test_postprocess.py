"""Inference post-processing (method_cards.md card 9): CAMoE's dual softmax and QB-Norm's (dynamic) inverted softmax
as functions, by name, and applied per seed to trained runs, on small random score matrices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import perturb

from tvrlib import metrics as M
from tvrlib import postprocess as PP
from tvrlib.errors import UnknownNameError
from tvrlib.experiment import HeadRuns, Protocol, SeedRun, paired_difference
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.postprocess import (
    POSTPROCESSORS,
    activated_rows,
    apply,
    dual_softmax,
    dual_softmax_v2t,
    inverted_softmax,
    postprocessed_runs,
    qb_norm,
)
from tvrlib.reranking import dual_softmax as reranking_dual_softmax
from tvrlib.reranking import rerank_runs
from tvrlib.training import FeatureSource

D = 16
SEEDS = range(6)

pytestmark = pytest.mark.usefixtures("one_thread")


def cosines(rows: int, cols: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """A ``[rows, cols]`` matrix of cosines between random unit vectors (values in [-1, 1], float64 by default)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.normalize(torch.randn(rows, 8, generator=g, dtype=torch.float64), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(cols, 8, generator=g, dtype=torch.float64), dim=-1)
    return (a @ b.T).to(dtype)


def row_orders(x: torch.Tensor) -> torch.Tensor:
    """Each row's videos, best first (stable: equal scores keep their column order)."""
    return torch.sort(x, dim=1, descending=True, stable=True).indices


# --------------------------------------------------------------------------- inverted softmax
@pytest.mark.parametrize("seed", SEEDS)
def test_inverted_softmax_is_the_log_of_the_exp_formula(seed):
    s, bank = cosines(5, 7, seed), cosines(11, 7, seed + 100)
    beta = 20.0
    expected = torch.exp(beta * s) / torch.exp(beta * bank).sum(0, keepdim=True)  # card 9, small inputs: no overflow
    out = inverted_softmax(s, bank, beta)
    assert out.dtype == torch.float64 and out.shape == (5, 7)
    assert torch.allclose(torch.exp(out), expected, rtol=1e-12, atol=0)
    assert torch.equal(row_orders(out), row_orders(expected))  # the log form ranks every row as the exp form
    # one entry by hand
    s00 = float(s[0, 0])
    by_hand = np.exp(beta * s00) / np.sum(np.exp(beta * bank[:, 0].numpy()))
    assert float(torch.exp(out[0, 0])) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_per_video_offset_shared_by_queries_and_bank_cancels(seed):
    s, bank = cosines(6, 9, seed), cosines(13, 9, seed + 100)
    offset = torch.linspace(-0.5, 0.5, 9, dtype=torch.float64)[
        torch.randperm(9, generator=torch.Generator().manual_seed(seed))
    ]
    moved = inverted_softmax(s + offset, bank + offset)
    assert torch.allclose(moved, inverted_softmax(s, bank), atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_bank_that_scores_every_video_alike_changes_no_ranking(seed):
    s = cosines(6, 9, seed)
    flat_bank = cosines(13, 1, seed + 100).expand(13, 9)  # each bank caption: one value for every video
    out = inverted_softmax(s, flat_bank)
    assert torch.equal(row_orders(out), row_orders(s))
    assert torch.allclose(out - 20.0 * s, (out - 20.0 * s)[:1, :1].expand_as(out), atol=1e-12)  # a constant shift


def test_a_hub_video_is_pushed_down():
    """Video 0 is a hub: every bank caption scores it high. A query whose gold (video 1) is just below the hub ranks
    the gold first after inverted softmax, and the hub falls in every row."""
    g = torch.Generator().manual_seed(0)
    s = 0.2 * torch.rand(4, 5, generator=g, dtype=torch.float64)
    s[:, 0], s[:, 1] = 0.62, 0.60  # the hub is every query's raw top-1, the gold a close second
    bank = 0.2 * torch.rand(30, 5, generator=g, dtype=torch.float64)
    bank[:, 0] = 0.55  # popular with every training caption
    raw_rank_of_hub = (s > s[:, :1]).sum(1) + 1
    out = qb_norm(s, bank, dynamic=False)
    assert (raw_rank_of_hub == 1).all()
    assert (out.argmax(1) == 1).all()
    assert ((out > out[:, :1]).sum(1) + 1 > raw_rank_of_hub).all()
    assert (M.ranks_t2v(out, np.ones(4, dtype=int)) == 1).all() and (M.ranks_t2v(s, np.ones(4, dtype=int)) == 2).all()


def test_large_scores_never_overflow():
    s, bank = cosines(6, 9, 0) * 100, cosines(50, 9, 1) * 100  # logits: exp(20 * 100) is inf in float64
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(20.0 * bank.numpy())).all()  # the naive formula would overflow
    for out in (inverted_softmax(s, bank), qb_norm(s, bank), qb_norm(s, bank, dynamic=False)):
        assert torch.isfinite(out).all()
    # beta * (100 s) = (100 beta) * s: the same values as a sharper beta on the cosines, to float rounding
    assert torch.allclose(inverted_softmax(s, bank), inverted_softmax(s / 100, bank / 100, beta=2000.0), rtol=1e-9)
    half = inverted_softmax(s.half(), bank.float())  # any float dtype in, float64 out
    assert half.dtype == torch.float64 and torch.isfinite(half).all()


def test_a_large_bank_is_accumulated_in_chunks(monkeypatch):
    s, bank = cosines(4, 6, 2), cosines(23, 6, 3)
    whole = inverted_softmax(s, bank)
    monkeypatch.setattr(PP, "BANK_CHUNK", 5)
    assert torch.allclose(inverted_softmax(s, bank), whole, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- dynamic inverted softmax
def dis_case(seed: int):
    """Scores and a bank whose captions' top-1 videos cover only videos 0-3 of 8, with some queries whose top-1 is
    outside that set."""
    s, bank = cosines(12, 8, seed), cosines(20, 8, seed + 100)
    bank[:, 4:] -= 3.0  # no bank caption has its top-1 among videos 4-7
    s[::3, 5] = 2.0  # every third query's raw top-1 is video 5 (outside the activation set)
    return s, bank


@pytest.mark.parametrize("seed", SEEDS)
def test_dis_normalises_activated_rows_and_keeps_the_others_bit_for_bit(seed):
    s, bank = dis_case(seed)
    rows = activated_rows(s, bank)
    top1 = s.argmax(1)
    bank_top1 = set(bank.argmax(1).tolist())
    assert bank_top1 <= {0, 1, 2, 3}
    assert rows.tolist() == [int(t) in bank_top1 for t in top1]
    assert not rows[::3].any() and rows.any()  # both kinds of rows occur
    out = qb_norm(s, bank)
    assert torch.equal(out[~rows], s[~rows])  # raw rows: exactly the raw scores
    assert torch.equal(out[rows], inverted_softmax(s, bank)[rows])  # the others: inverted softmax
    assert torch.equal(qb_norm(s, bank, dynamic=False), inverted_softmax(s, bank))
    assert torch.equal(apply("qbnorm", s, bank=bank), out) and torch.equal(
        apply("is", s, bank=bank), qb_norm(s, bank, dynamic=False)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_larger_k_activates_more_rows(seed):
    s, bank = dis_case(seed)
    counts = [int(activated_rows(s, bank, k).sum()) for k in (1, 2, 4, 8)]
    assert counts == sorted(counts) and counts[-1] == len(s)  # k = V: every video is active, every row normalised
    assert torch.equal(qb_norm(s, bank, k=8), inverted_softmax(s, bank))


def test_top1_ties_are_broken_by_the_lower_video_index():
    s = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7]], dtype=torch.float64)
    bank = torch.tensor([[0.1, 0.9, 0.0], [0.1, 0.9, 0.0]], dtype=torch.float64)  # activation set: video 1
    assert activated_rows(s, bank).tolist() == [False, True]


def test_no_input_is_modified_in_place():
    s, bank = dis_case(0)
    for x, y in [(s, bank), (s.float(), bank.float()), (s.numpy(), bank.numpy())]:
        before = [torch.as_tensor(t).clone() for t in (x, y)]
        for name in POSTPROCESSORS:
            out = apply(name, x, bank=None if name == "dsl" else y)
            out.add_(1.0)  # the result is a new tensor: writing to it cannot reach the inputs
        qb_norm(x, y, k=2)
        activated_rows(x, y)
        assert all(torch.equal(torch.as_tensor(t), b) for t, b in zip((x, y), before))


def test_inverted_softmax_errors_are_clear():
    s, bank = cosines(3, 4, 0), cosines(5, 4, 1)
    with pytest.raises(ValueError, match="same 4 gallery videos"):
        inverted_softmax(s, cosines(5, 3, 1))
    with pytest.raises(ValueError, match="2-D"):
        qb_norm(s[0], bank)
    with pytest.raises(ValueError, match="querybank is empty"):
        inverted_softmax(s, bank[:0])
    nan = s.clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        qb_norm(nan, bank)
    with pytest.raises(ValueError, match="beta"):
        inverted_softmax(s, bank, beta=0.0)
    for k in (0, 1.5, -2):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            qb_norm(s, bank, k=k)


# --------------------------------------------------------------------------- dual softmax and the registry
def test_dual_softmax_is_reused_from_reranking_and_its_v2t_dual_is_over_videos():
    assert dual_softmax is reranking_dual_softmax  # re-exported, not redefined
    s = cosines(4, 5, 0)
    assert torch.equal(dual_softmax_v2t(s, 0.1), s * torch.softmax(s / 0.1, dim=1))
    assert torch.allclose(
        dual_softmax_v2t(s, 0.1), dual_softmax(s.T, 0.1).T, rtol=1e-12, atol=0
    )  # v2t on S == t2v on S transposed
    assert torch.equal(apply("dsl", s, direction="v2t", temperature=0.1), dual_softmax_v2t(s, 0.1))
    f32 = s.float()
    out = apply("dsl", f32)  # computed in the input's dtype (as rerank_runs does), returned as float64
    assert out.dtype == torch.float64 and torch.equal(out, dual_softmax(f32, 0.01).double())
    with pytest.raises(ValueError, match="direction"):
        apply("dsl", s, direction="both")


def test_the_registry_says_what_each_method_uses():
    assert set(POSTPROCESSORS) == {"dsl", "is", "qbnorm"}
    assert POSTPROCESSORS["dsl"].transductive is True and POSTPROCESSORS["dsl"].uses == "all test queries"
    assert dual_softmax.transductive is True and dual_softmax_v2t.transductive is True
    for name in ("is", "qbnorm"):
        p = POSTPROCESSORS[name]
        assert p.transductive is False and p.needs_bank
        assert p.uses == "training captions (querybank) and the test gallery"
    assert inverted_softmax.transductive is False and qb_norm.transductive is False
    s, bank = cosines(3, 4, 0), cosines(5, 4, 1)
    with pytest.raises(ValueError, match="'qbnorm' needs a querybank"):
        apply("qbnorm", s)
    with pytest.raises(ValueError, match="'dsl' uses no querybank"):
        apply("dsl", s, bank=bank)
    with pytest.raises(UnknownNameError, match="known: \\['dsl', 'is', 'qbnorm'\\]"):
        apply("qb-norm", s, bank=bank)
    with pytest.raises(TypeError):
        apply("qbnorm", s, bank=bank, dynamic=False)  # the non-dynamic variant is "is"


# --------------------------------------------------------------------------- per-seed runs
def toy(n: int, captions: int, seed: int) -> FeatureSource:
    """``n`` videos with ``captions`` captions each; caption features near their video's mean frame."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(n, 3, D, generator=g)
    t2v = np.repeat(np.arange(n), captions)
    sentence = frames.mean(1)[t2v] + 0.8 * torch.randn(len(t2v), D, generator=g)
    return FeatureSource(TextInput(sentence), VideoInput(frames, torch.ones(n, 3, dtype=torch.bool)), t2v)


@pytest.fixture(scope="module")
def bench():
    """Stage-1 runs of two seeds (kept perturbed seqTransf heads, ranked as run() ranks), a test and a train source."""
    test, train = toy(8, 2, seed=0), toy(10, 3, seed=1)
    protocol = Protocol(max_epochs=1, patience=None, seeds=(0, 1), batch_size=4, lr=1e-3, logit_scale=2.0)
    q = np.asarray(test.query_index)
    gold = test.text_to_video[q]
    base = HeadRuns("seqTransf", "seqTransf", protocol)
    for seed in protocol.seeds:
        torch.manual_seed(seed)
        head = perturb(HEADS.build("seqTransf", dim=D, layers=1), seed=seed)
        ranks = M.ranks_t2v(score_all(head, test.texts.index(torch.as_tensor(q)), test.videos, chunk=256), gold)
        base.runs.append(SeedRun("seqTransf", "seqTransf", seed, M.summarize(ranks), ranks, gold, 3, 2, False, 0.5,
                                 1.0, trained=head))  # fmt: skip
    return base, test, train


def test_dsl_runs_equal_rerank_runs_without_a_reranker(bench):
    base, test, _ = bench
    dsl = postprocessed_runs(base, "dsl", test, temperature=0.01)
    ref = rerank_runs(base, None, test, k=0, dsl_temperature=0.01)
    assert dsl.label == "seqTransf + dsl" and dsl.head == "seqTransf+dsl" and dsl.seeds == base.seeds
    for a, b, r in zip(dsl.runs, ref.runs, base.runs):
        assert np.array_equal(a.ranks, b.ranks) and np.array_equal(a.gold, r.gold)
        assert (a.epochs_run, a.best_epoch, a.best_val, a.trained) == (
            r.epochs_run,
            r.best_epoch,
            r.best_val,
            r.trained,
        )
        assert a.metrics == M.summarize(a.ranks)
    d = paired_difference(dsl, base, "R1", n_boot=20)
    assert d["seeds"] == 2 and d["n"] == len(test.query_index) and d["a_label"] == "seqTransf + dsl"


def test_qbnorm_runs_rank_the_scores_of_each_seeds_head(bench):
    base, test, train = bench
    qb = postprocessed_runs(base, "qbnorm", test, bank_texts=train.texts, label="QB", beta=10.0)
    as_source = postprocessed_runs(base, "qbnorm", test, bank_texts=train, beta=10.0)  # a source: its captions
    plain = postprocessed_runs(base, "is", test, bank_texts=train.texts)
    q = np.asarray(test.query_index)
    gold = test.text_to_video[q]
    for r, a, b, c in zip(base.runs, qb.runs, as_source.runs, plain.runs):
        s = score_all(r.trained, test.texts.index(torch.as_tensor(q)), test.videos, chunk=256)
        bank = score_all(r.trained, train.texts, test.videos, chunk=256)
        assert np.array_equal(a.ranks, M.ranks_t2v(qb_norm(s, bank, beta=10.0), gold))
        assert np.array_equal(c.ranks, M.ranks_t2v(inverted_softmax(s, bank), gold))
        assert np.array_equal(a.ranks, b.ranks) and a.label == "QB" and b.label == "seqTransf + qbnorm"
    assert paired_difference(qb, base, "MnR", n_boot=20)["seeds"] == 2


def test_postprocessed_runs_errors_are_clear(bench):
    base, test, train = bench
    with pytest.raises(ValueError, match="needs a querybank: pass bank_texts"):
        postprocessed_runs(base, "qbnorm", test)
    with pytest.raises(ValueError, match="uses no querybank"):
        postprocessed_runs(base, "dsl", test, bank_texts=train.texts)
    wrong = TextInput(torch.randn(4, D + 1))
    with pytest.raises(ValueError, match="17-d features but the test captions 16-d"):
        postprocessed_runs(base, "qbnorm", test, bank_texts=wrong)
    with pytest.raises(UnknownNameError):
        postprocessed_runs(base, "camoe", test)
    dropped = HeadRuns(base.head, base.label, base.protocol, [dataclasses.replace(base.runs[0], trained=None)])
    with pytest.raises(ValueError, match="seed 0: the trained head was not kept"):
        postprocessed_runs(dropped, "dsl", test)
    tower = HeadRuns(base.head, base.label, base.protocol, [dataclasses.replace(base.runs[0], text_encoder=object())])
    with pytest.raises(ValueError, match="text-tower run is not supported"):
        postprocessed_runs(tower, "dsl", test)
