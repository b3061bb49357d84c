"""Tests for tvrlib.metrics: ranks with ties, t2v/v2t conventions, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tvrlib import metrics as M


def naive_ranks(sim: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Plain-Python reference for the average-tie rule."""
    out = []
    for i, row in enumerate(np.asarray(sim, dtype=float)):
        g = row[gold[i]]
        higher = sum(1 for j, x in enumerate(row) if x > g)
        tied = sum(1 for j, x in enumerate(row) if x == g and j != gold[i])
        out.append(1 + higher + tied / 2)
    return np.array(out)


def naive_best_caption(sim: np.ndarray, t2v: np.ndarray) -> np.ndarray:
    out = []
    for j in range(sim.shape[1]):
        col = sim[:, j]
        best = max(col[t] for t in range(len(t2v)) if t2v[t] == j)
        rivals = [col[t] for t in range(len(t2v)) if t2v[t] != j]
        out.append(1 + sum(x > best for x in rivals) + sum(x == best for x in rivals) / 2)
    return np.array(out)


def naive_max_group(sim: np.ndarray, t2v: np.ndarray) -> np.ndarray:
    v = sim.shape[1]
    group = np.array([[sim[t2v == g, j].max() for j in range(v)] for g in range(v)])
    return naive_ranks(group.T, np.arange(v))


def random_multi_caption(rng, num_videos=40, max_caps=4, decimals=1):
    caps = rng.integers(1, max_caps + 1, size=num_videos)
    t2v = np.repeat(np.arange(num_videos), caps)
    rng.shuffle(t2v)
    sim = np.round(rng.normal(size=(t2v.size, num_videos)), decimals)  # rounding injects ties
    return sim, t2v


# --------------------------------------------------------------------------- #
# ranks and summaries
# --------------------------------------------------------------------------- #
def test_perfect_diagonal():
    sim = np.eye(20) + 0.01 * np.arange(20)  # distinct off-diagonal values, diagonal wins
    res = M.t2v(sim, np.arange(20))
    assert res["R1"] == 100.0 and res["R5"] == 100.0 and res["R10"] == 100.0
    assert res["MdR"] == 1.0 and res["MnR"] == 1.0 and res["n"] == 20
    assert all(type(res[k]) is float for k in M.METRICS)


def test_hand_computed_example():
    sim = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # gold 2: one higher -> 2
            [0.2, 0.8, 0.1, 0.0],  # gold 1: top -> 1
            [0.7, 0.6, 0.5, 0.4],  # gold 3: three higher -> 4
        ]
    )
    ranks = M.rank_of_gold(sim, [2, 1, 3])
    np.testing.assert_array_equal(ranks, [2.0, 1.0, 4.0])
    res = M.summarize(ranks)
    assert res["R1"] == pytest.approx(100 / 3)
    assert res["R5"] == 100.0
    assert res["MdR"] == 2.0
    assert res["MnR"] == pytest.approx(7 / 3)


def test_all_equal_row_gives_mean_rank():
    for n in (1, 2, 10):
        assert M.rank_of_gold(np.zeros((1, n)), [0])[0] == (n + 1) / 2
    assert M.rank_of_gold(np.full((1, 10), 0.3), [7])[0] == 5.5


def test_tie_at_top_is_not_a_hit_at_1():
    # Gold (column 0) tied with exactly one other at the top. CLIP4Clip's
    # "subtract and find zero" ranking would emit two ranks (1 and 2) for this
    # one query (CLIP4Clip issue #80); we emit a single rank 1.5.
    sim = np.array([[0.9, 0.9, 0.1, 0.0], [0.1, 0.8, 0.2, 0.3]])
    ranks = M.rank_of_gold(sim, [0, 1])
    np.testing.assert_array_equal(ranks, [1.5, 1.0])
    res = M.summarize(ranks)
    assert res["n"] == 2  # one rank per query, no over-counting
    assert res["R1"] == 50.0
    assert res["R5"] == 100.0


def test_ties_below_gold_do_not_matter():
    sim = np.array([[0.9, 0.1, 0.1, 0.1]])
    assert M.rank_of_gold(sim, [0])[0] == 1.0


def test_chunked_equals_naive_with_ties():
    rng = np.random.default_rng(0)
    sim = np.round(rng.normal(size=(300, 50)), 1)
    gold = rng.integers(0, 50, size=300)
    ref = naive_ranks(sim, gold)
    for chunk in (1, 7, 64, 1024):
        np.testing.assert_array_equal(M.rank_of_gold(sim, gold, chunk_size=chunk), ref)
    assert np.any(ref % 1 == 0.5)  # the data really has ties at the gold


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(1)
    sim = np.round(rng.normal(size=(64, 30)), 1).astype(np.float32)
    gold = rng.integers(0, 30, size=64)
    ref = M.t2v(sim, gold)
    assert M.t2v(torch.from_numpy(sim), torch.from_numpy(gold)) == ref
    np.testing.assert_array_equal(M.ranks_t2v(torch.from_numpy(sim), gold), M.ranks_t2v(sim, gold))
    half = torch.from_numpy(sim).to(torch.bfloat16)
    np.testing.assert_array_equal(M.ranks_t2v(half, gold), M.ranks_t2v(half.float().numpy(), gold))
    t2v_idx = np.arange(30).repeat(2)[:60]
    sim2 = sim[:60]
    for conv in M.CONVENTIONS:
        assert M.v2t(torch.from_numpy(sim2), torch.from_numpy(t2v_idx), conv) == M.v2t(sim2, t2v_idx, conv)
    if torch.cuda.is_available():
        assert M.t2v(torch.from_numpy(sim).cuda(), gold) == ref


def test_multi_caption_t2v():
    # 2 videos, 4 captions: captions 0,1 -> video 0; captions 2,3 -> video 1
    sim = np.array(
        [
            [0.9, 0.1],  # rank 1
            [0.2, 0.8],  # rank 2
            [0.3, 0.7],  # rank 1
            [0.5, 0.5],  # tie -> 1.5
        ]
    )
    res = M.t2v(sim, [0, 0, 1, 1])
    assert res["n"] == 4
    np.testing.assert_array_equal(M.ranks_t2v(sim, [0, 0, 1, 1]), [1, 2, 1, 1.5])
    assert res["R1"] == 50.0 and res["MnR"] == pytest.approx(5.5 / 4)


def test_extra_distractor_videos_allowed_in_t2v():
    sim = np.array([[0.9, 0.1, 0.95]])  # video 2 has no caption, still a competitor
    assert M.ranks_t2v(sim, [0])[0] == 2.0


# --------------------------------------------------------------------------- #
# video-to-text conventions
# --------------------------------------------------------------------------- #
def _conventions_example():
    # texts: t0 -> v0, t1..t6 -> v1, t7 -> v2
    t2v = np.array([0, 1, 1, 1, 1, 1, 1, 2])
    sim = np.array(
        [
            # v0    v1    v2
            [0.50, 0.10, 0.20],  # t0
            [0.90, 0.90, 0.10],  # t1
            [0.85, 0.20, 0.11],  # t2
            [0.80, 0.20, 0.12],  # t3
            [0.75, 0.20, 0.13],  # t4
            [0.70, 0.20, 0.14],  # t5
            [0.65, 0.20, 0.15],  # t6
            [0.10, 0.30, 0.80],  # t7
        ]
    )
    return sim, t2v


def test_v2t_conventions_differ_on_hand_example():
    sim, t2v = _conventions_example()
    best = M.ranks_v2t(sim, t2v, "best_caption")
    group = M.ranks_v2t(sim, t2v, "max_group")
    # v0: six captions of v1 beat its only caption -> 7; as one group -> 2
    np.testing.assert_array_equal(best, [7, 1, 1])
    np.testing.assert_array_equal(group, [2, 1, 1])
    rb, rg = M.v2t(sim, t2v, "best_caption"), M.v2t(sim, t2v, "max_group")
    assert rb["R1"] == rg["R1"] == pytest.approx(200 / 3)
    assert rb["R5"] == pytest.approx(200 / 3) and rg["R5"] == 100.0
    assert rb["MnR"] == 3.0 and rg["MnR"] == pytest.approx(4 / 3)
    assert M.v2t(sim, t2v) == rb  # default convention


def test_best_caption_ignores_other_gold_captions_and_averages_rival_ties():
    t2v = np.array([0, 0, 0, 1, 2])
    col = np.array([0.9, 0.7, 0.7, 0.7, 0.95])  # best gold 0.9; rival 0.95 above, 0.7 below
    sim = np.stack([col, np.zeros(5), np.zeros(5)], axis=1)
    sim[3, 1] = sim[4, 2] = 1.0
    assert M.ranks_v2t(sim, t2v, "best_caption")[0] == 2.0
    sim[0, 0] = 0.95  # now tied with the rival caption
    assert M.ranks_v2t(sim, t2v, "best_caption")[0] == 1.5
    assert M.ranks_v2t(sim, t2v, "max_group")[0] == 1.5


def test_v2t_conventions_match_naive_and_share_r1_on_random_data():
    rng = np.random.default_rng(2)
    for _ in range(5):
        sim, t2v = random_multi_caption(rng)
        best = M.ranks_v2t(sim, t2v, "best_caption", chunk_size=7)
        group = M.ranks_v2t(sim, t2v, "max_group", chunk_size=7)
        np.testing.assert_array_equal(best, naive_best_caption(sim, t2v))
        np.testing.assert_array_equal(group, naive_max_group(sim, t2v))
        np.testing.assert_array_equal(best <= 1, group <= 1)
        assert M.v2t(sim, t2v, "best_caption")["R1"] == M.v2t(sim, t2v, "max_group")["R1"]
        assert np.all(group <= best)  # a group is counted once, each rival caption separately


def test_one_caption_per_video_conventions_identical_and_equal_transposed_t2v():
    rng = np.random.default_rng(3)
    n = 50
    sim = np.round(rng.normal(size=(n, n)), 1)
    perm = rng.permutation(n)  # text i describes video perm[i]
    best = M.ranks_v2t(sim, perm, "best_caption")
    group = M.ranks_v2t(sim, perm, "max_group")
    np.testing.assert_array_equal(best, group)
    np.testing.assert_array_equal(best, M.ranks_t2v(sim.T, np.argsort(perm)))
    assert M.v2t(sim, perm, "best_caption") == M.v2t(sim, perm, "max_group") == M.t2v(sim.T, np.argsort(perm))


# --------------------------------------------------------------------------- #
# bootstrap
# --------------------------------------------------------------------------- #
def _fake_ranks(rng, n):
    return rng.integers(1, 30, size=n).astype(float)


def test_bootstrap_ci_contains_point_and_narrows():
    rng = np.random.default_rng(4)
    small, large = _fake_ranks(rng, 100), _fake_ranks(rng, 5000)
    ci_small = M.bootstrap_ci(small, n_boot=300, seed=0)
    ci_large = M.bootstrap_ci(large, n_boot=300, seed=0)
    point = M.summarize(small)
    for m in M.METRICS:
        lo, hi = ci_small[m]
        assert lo <= point[m] <= hi
        assert isinstance(lo, float) and isinstance(hi, float)
    for m in ("R1", "R5", "R10", "MnR"):
        assert ci_large[m][1] - ci_large[m][0] < ci_small[m][1] - ci_small[m][0]


def test_bootstrap_deterministic_under_seed():
    ranks = _fake_ranks(np.random.default_rng(5), 200)
    assert M.bootstrap_ci(ranks, n_boot=200, seed=7) == M.bootstrap_ci(ranks, n_boot=200, seed=7)
    assert M.bootstrap_ci(ranks, n_boot=200, seed=7) != M.bootstrap_ci(ranks, n_boot=200, seed=8)
    assert M.paired_bootstrap(ranks, ranks[::-1], n_boot=200, seed=3) == M.paired_bootstrap(
        ranks, ranks[::-1], n_boot=200, seed=3
    )


def test_paired_bootstrap_identical_inputs():
    ranks = _fake_ranks(np.random.default_rng(6), 300)
    for metric in M.METRICS:
        res = M.paired_bootstrap(ranks, ranks.copy(), metric=metric, n_boot=200)
        assert res["delta"] == 0.0 and res["p_value"] == 1.0 and res["ci"] == (0.0, 0.0)


def test_paired_bootstrap_detects_clearly_better_method():
    rng = np.random.default_rng(7)
    n = 300
    b = _fake_ranks(rng, n)
    a = np.where(rng.random(n) < 0.5, 1.0, b)  # a fixes half of b's queries
    res = M.paired_bootstrap(a, b, metric="R1", n_boot=500, seed=0)
    assert res["delta"] > 0 and res["ci"][0] > 0 and res["p_value"] < 0.05
    res = M.paired_bootstrap(a, b, metric="MnR", n_boot=500, seed=0)
    assert res["delta"] < 0 and res["ci"][1] < 0 and res["p_value"] < 0.05


def test_compare_and_with_ci():
    rng = np.random.default_rng(8)
    sim, t2v = random_multi_caption(rng, num_videos=60)
    good = sim.copy()
    good[np.arange(t2v.size), t2v] += 3.0
    res = M.compare(good, sim, t2v, direction="t2v", metric="R1", n_boot=300)
    assert res["delta"] > 0 and res["p_value"] < 0.05
    res = M.compare(good, sim, t2v, direction="v2t", convention="max_group", metric="MnR", n_boot=300)
    assert res["delta"] < 0
    out = M.with_ci(sim, t2v, direction="v2t", convention="max_group", n_boot=200, seed=1)
    for m in M.METRICS:
        assert out[f"{m}_lo"] <= out[m] <= out[f"{m}_hi"]
    assert out["n"] == 60


def test_lower_is_better_names_the_rank_metrics():
    assert M.LOWER_IS_BETTER == {"MdR", "MnR"} and M.LOWER_IS_BETTER < set(M.METRICS)


# --------------------------------------------------------------------------- #
# twin accuracy
# --------------------------------------------------------------------------- #
def test_twin_accuracy_counts_ties_as_half():
    sim = np.array(
        [
            [0.9, 0.1, 0.0],  # gold 0 beats twin 1 -> 1
            [0.5, 0.5, 0.0],  # gold 1 ties twin 0 -> 0.5
            [0.2, 0.3, 0.1],  # gold 2 loses to twin 1 -> 0
            [0.0, 0.0, 1.0],  # no twin -> skipped
        ]
    )
    mean, per_query = M.twin_accuracy(sim, [0, 1, 2, 2], [1, 0, 1, -1])
    np.testing.assert_array_equal(per_query, [1.0, 0.5, 0.0])
    assert mean == 0.5 and isinstance(mean, float)
    t_mean, t_pq = M.twin_accuracy(torch.from_numpy(sim), torch.tensor([0, 1, 2, 2]), [1, 0, 1, -1])
    assert t_mean == mean and np.array_equal(t_pq, per_query)
    lo, hi = M.bootstrap_mean_ci(per_query, n_boot=200, seed=0)
    assert 0.0 <= lo <= mean <= hi <= 1.0
    assert M.bootstrap_mean_ci(per_query, n_boot=200, seed=0) == (lo, hi)


def test_twin_accuracy_errors():
    sim = np.zeros((2, 3))
    with pytest.raises(ValueError, match="no query has a twin"):
        M.twin_accuracy(sim, [0, 1], [-1, -1])
    with pytest.raises(ValueError, match="own twin"):
        M.twin_accuracy(sim, [0, 1], [0, -1])
    with pytest.raises(ValueError, match="twin_of"):
        M.twin_accuracy(sim, [0, 1], [3, -1])


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #
def test_bad_shapes_and_indices():
    sim = np.zeros((3, 4))
    with pytest.raises(ValueError, match="2-D"):
        M.t2v(np.zeros(4), [0])
    with pytest.raises(ValueError, match="text_to_video has 2 entries but sim has 3 rows"):
        M.t2v(sim, [0, 1])
    with pytest.raises(ValueError, match=r"text_to_video\[1\] = 4 is out of range"):
        M.t2v(sim, [0, 4, 1])
    with pytest.raises(ValueError, match=r"gold\[0\] = -1"):
        M.rank_of_gold(sim, [-1, 0, 0])
    with pytest.raises(ValueError, match="integer"):
        M.t2v(sim, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="same length|same queries"):
        M.paired_bootstrap([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="same shape"):
        M.compare(np.zeros((3, 4)), np.zeros((3, 3)), [0, 1, 2])


def test_nan_raises_naming_row():
    sim = np.random.default_rng(9).normal(size=(5, 4))
    sim[3, 2] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        M.t2v(sim, [0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match="row 3"):
        M.rank_of_gold(torch.from_numpy(sim), [0, 1, 2, 3, 0], chunk_size=2)
    with pytest.raises(ValueError, match=r"video \(column\) 2"):
        M.v2t(sim, [0, 1, 2, 3, 0])


def test_unknown_convention_direction_metric_and_uncaptioned_videos():
    sim, t2v = _conventions_example()
    with pytest.raises(ValueError, match="best_caption, max_group"):
        M.v2t(sim, t2v, convention="mean")
    with pytest.raises(ValueError, match="t2v, v2t"):
        M.with_ci(sim, t2v, direction="both")
    with pytest.raises(ValueError, match="R1, R5, R10, MdR, MnR"):
        M.paired_bootstrap([1, 2], [1, 2], metric="R3")
    extra = np.concatenate([sim, np.zeros((8, 2))], axis=1)  # videos 3, 4 have no caption
    for conv in M.CONVENTIONS:
        with pytest.raises(ValueError, match="2 of 5 videos have none"):
            M.v2t(extra, t2v, conv)
    M.t2v(extra, t2v)  # fine for text-to-video


def test_summarize_rejects_bad_ranks():
    with pytest.raises(ValueError, match="empty"):
        M.summarize([])
    with pytest.raises(ValueError, match=">= 1"):
        M.summarize([0.0, 2.0])
