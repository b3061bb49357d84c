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


# --------------------------------------------------------------------------- #
# tie tolerance
# --------------------------------------------------------------------------- #
def _twin_benchmark(seed=0, num_pairs=60, frames=12, dim=256):
    """Videos 2i and 2i+1 hold the same frames in another order (direction twins); one caption per video,
    close to its video's mean frame. Returns the [T, V] cosines built two ways:

    * float64, each video pooled with a permutation-invariant sum (its frames sorted per dimension), so a
      video and its twin get bitwise identical pooled vectors and tie exactly;
    * float32, each video's frames summed one by one in a random order of their own, then normalised and
      scored in float32: the same numbers up to float32 rounding, a different rounding for each twin.
    """
    rng = np.random.default_rng(seed)
    nv = 2 * num_pairs
    f = rng.normal(size=(nv, frames, dim))
    for v in range(1, nv, 2):
        f[v] = f[v - 1][rng.permutation(frames)]
    gold = np.arange(nv)
    pooled64 = np.sort(f, axis=1).sum(axis=1)
    text = pooled64[gold] / frames + 0.4 * rng.normal(size=(nv, dim))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    sim64 = text @ (pooled64 / np.linalg.norm(pooled64, axis=1, keepdims=True)).T
    f32 = f.astype(np.float32)
    order = np.argsort(rng.random((nv, frames)), axis=1)
    pooled32 = np.zeros((nv, dim), dtype=np.float32)
    for j in range(frames):
        pooled32 += f32[np.arange(nv), order[:, j]]
    pooled32 /= np.linalg.norm(pooled32, axis=1, keepdims=True)
    sim32 = text.astype(np.float32) @ pooled32.T
    twin = gold ^ 1  # 0 <-> 1, 2 <-> 3, ...
    return sim64, sim32, gold, twin


def test_same_scores_in_float64_and_float32_with_shuffled_summation_give_identical_metrics():
    sim64, sim32, gold, twin = _twin_benchmark()
    assert sim32.dtype == np.float32
    gap = np.abs(sim32.astype(np.float64) - sim64)
    assert 0 < gap.max() < M.TIE_TOLERANCE / 10  # the two differ by rounding only
    twin_gap = np.abs(sim32[gold, gold].astype(np.float64) - sim32[gold, twin])
    assert np.count_nonzero(twin_gap) > len(gold) // 4  # float32: many twins no longer tie exactly
    assert np.all(sim64[gold, gold] == sim64[gold, twin])  # float64 canonical sum: every twin ties exactly

    r64, r32 = M.ranks_t2v(sim64, gold), M.ranks_t2v(sim32, gold)
    np.testing.assert_array_equal(r64, r32)
    assert np.all(r64 >= 1.5)  # the twin always ties the gold: never an R@1 hit, in either dtype
    assert M.t2v(sim64, gold) == M.t2v(sim32, gold)
    assert M.with_ci(sim64, gold, n_boot=200) == M.with_ci(sim32, gold, n_boot=200)
    for conv in M.CONVENTIONS:
        np.testing.assert_array_equal(M.ranks_v2t(sim64, gold, conv), M.ranks_v2t(sim32, gold, conv))
        assert M.v2t(sim64, gold, conv) == M.v2t(sim32, gold, conv)
    a64, per64 = M.twin_accuracy(sim64, gold, twin)
    a32, per32 = M.twin_accuracy(sim32, gold, twin)
    assert a64 == a32 == 0.5 and np.array_equal(per64, per32)
    assert M.compare(sim64, sim32, gold, n_boot=100)["delta"] == 0.0
    # torch float32 input (another code path to float64) agrees too
    np.testing.assert_array_equal(M.ranks_t2v(torch.from_numpy(sim32), gold), r64)

    # exact equality (the old rule) lets float32 rounding decide: R@1 and twin accuracy move by luck
    exact32 = M.ranks_t2v(sim32, gold, tie_tolerance=0)
    np.testing.assert_array_equal(M.ranks_t2v(sim64, gold, tie_tolerance=0), r64)
    moved = exact32 != r64
    assert moved.any() and np.all(np.abs(exact32[moved] - r64[moved]) == 0.5)  # the twin counted 0 or 1, not 0.5
    assert M.summarize(exact32)["R1"] > 0.0 == M.summarize(r64)["R1"]
    assert M.twin_accuracy(sim32, gold, twin, tie_tolerance=0)[0] != 0.5


def test_tie_within_tolerance_is_half_a_rank_and_a_real_difference_is_not():
    tol = M.TIE_TOLERANCE
    assert tol == 1e-5
    for g in (0.5, -0.3, 0.0):  # cosines: an absolute tolerance
        assert M.rank_of_gold([[g, g + 0.5 * tol, 0.1 + g - 1]], [0])[0] == 1.5
        assert M.rank_of_gold([[g, g - 0.5 * tol, g - 1]], [0])[0] == 1.5
        assert M.rank_of_gold([[g, g + 10 * tol, g - 1]], [0])[0] == 2.0
        assert M.rank_of_gold([[g, g - 10 * tol, g - 1]], [0])[0] == 1.0
        assert M.rank_of_gold([[g, g + 10 * tol]], [0], tie_tolerance=1e-3)[0] == 1.5  # the override
    # a larger score scale (logits): relative to |gold|
    assert M.rank_of_gold([[100.0, 100.0 + 50 * tol]], [0])[0] == 1.5
    assert M.rank_of_gold([[100.0, 100.0 + 200 * tol]], [0])[0] == 2.0
    assert M.rank_of_gold([[-100.0, -100.0 + 50 * tol]], [0])[0] == 1.5
    # exact equality on request, and the old behaviour on exactly tied data either way
    assert M.rank_of_gold([[0.5, 0.5 + 0.5 * tol]], [0], tie_tolerance=0)[0] == 2.0
    assert M.rank_of_gold([[0.5, 0.5, 0.5]], [1], tie_tolerance=0)[0] == 2.0
    # a block of near-ties counts every member once: gold + 3 within tolerance -> (4 + 1) / 2
    assert M.rank_of_gold([[0.2, 0.2 + tol / 3, 0.2 - tol / 2, 0.2 + tol / 4, 0.9]], [0])[0] == 1 + 1 + 1.5
    # infinite scores: exact ties only
    assert M.rank_of_gold([[np.inf, np.inf, 1.0]], [0])[0] == 1.5
    assert M.rank_of_gold([[1.0, np.inf, -np.inf]], [0])[0] == 2.0


def test_v2t_conventions_use_the_tolerance():
    tol = M.TIE_TOLERANCE
    t2v = np.array([0, 0, 1, 2])
    sim = np.array(
        [
            [0.5, 0.0, 0.0],  # best gold caption of video 0
            [0.3, 0.0, 0.0],
            [0.5 + tol / 2, 1.0, 0.0],  # rival within tolerance of it
            [0.5 - 3 * tol, 0.0, 1.0],  # rival clearly below
        ]
    )
    for conv in M.CONVENTIONS:
        assert M.ranks_v2t(sim, t2v, conv)[0] == 1.5
        assert M.ranks_v2t(sim, t2v, conv, tie_tolerance=0)[0] == 2.0
        assert M.ranks_v2t(sim, t2v, conv, tie_tolerance=1e-4)[0] == 2.0  # both rivals tie now
        assert M.v2t(sim, t2v, conv, tie_tolerance=0)["R1"] == M.v2t(sim, t2v, conv)["R1"]


def test_chunked_tolerance_equals_naive():
    rng = np.random.default_rng(11)
    tol = 1e-3
    base = np.round(rng.normal(size=(200, 40)), 2)
    sim = base + rng.uniform(-0.4, 0.4, size=base.shape) * tol  # perturb each value inside its tie band
    gold = rng.integers(0, 40, size=200)

    def naive(s, gd):
        out = []
        for i, row in enumerate(s):
            g = row[gd[i]]
            d = tol * max(1.0, abs(g))
            out.append(1 + sum(x > g + d for x in row) + sum(abs(x - g) <= d for x in row) / 2 - 0.5)
        return np.array(out)

    for chunk in (1, 13, 1024):
        ranks = M.rank_of_gold(sim, gold, chunk_size=chunk, tie_tolerance=tol)
        np.testing.assert_array_equal(ranks, naive(sim, gold))
        np.testing.assert_array_equal(ranks, M.rank_of_gold(base, gold, tie_tolerance=0))  # == exact ties of base


def test_twin_accuracy_is_the_twin_share_of_the_rank_for_any_tolerance(monkeypatch):
    from tvrlib import twins

    assert twins.TIE_TOLERANCE is M.TIE_TOLERANCE
    rng = np.random.default_rng(12)
    g = rng.normal(size=400) * rng.choice([1.0, 50.0], size=400)  # cosine-like and logit-like scales
    gaps = rng.choice([0.0, 0.3, 0.9, 1.1, 3.0], size=400) * rng.choice([-1, 1], size=400)
    for tol in (1e-5, 1e-3, 0.0):
        pair = np.stack([g, g + gaps * tol * np.maximum(1.0, np.abs(g))], axis=1)
        ranks = M.rank_of_gold(pair, np.zeros(400, dtype=np.int64), tie_tolerance=tol)
        out = twins.twin_outcomes(pair, tie_tolerance=tol)
        np.testing.assert_array_equal(out, 2.0 - ranks)  # win 1 <-> rank 1, tie 0.5 <-> 1.5, loss 0 <-> 2
        acc, per = M.twin_accuracy(pair, np.zeros(400, dtype=np.int64), np.ones(400, dtype=np.int64), tie_tolerance=tol)
        np.testing.assert_array_equal(per, out)
        if tol:
            assert set(np.unique(out)) == {0.0, 0.5, 1.0}
            # the module constant is read at call time: changing it changes ranks and twins alike
            monkeypatch.setattr(M, "TIE_TOLERANCE", tol)
            np.testing.assert_array_equal(M.rank_of_gold(pair, np.zeros(400, dtype=np.int64)), ranks)
            np.testing.assert_array_equal(twins.twin_outcomes(pair), out)
            monkeypatch.undo()


def test_bad_tie_tolerance():
    for bad in (-1e-6, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="tie_tolerance"):
            M.rank_of_gold([[0.1, 0.2]], [0], tie_tolerance=bad)
    with pytest.raises(ValueError, match="tie_tolerance"):
        M.twin_accuracy(np.zeros((1, 2)), [0], [1], tie_tolerance=-1)


# --------------------------------------------------------------------------- #
# clustered bootstrap
# --------------------------------------------------------------------------- #
def _naive_bootstrap(values, metrics, n_boot, seed, clusters=None):
    """Reference: build each replicate's queries explicitly (one chunk of draws: small inputs only)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    if clusters is None:
        idx = rng.integers(0, values.size, size=(n_boot, values.size))
        return {m: np.array([M._stat(m, values[i]) for i in idx]) for m in metrics}
    _, first, inv = np.unique(clusters, return_index=True, return_inverse=True)
    members = [np.flatnonzero(inv == c) for c in np.argsort(first)]  # clusters numbered by first appearance
    draws = rng.integers(0, len(members), size=(n_boot, len(members)))
    reps = [values[np.concatenate([members[c] for c in row])] for row in draws]
    return {m: np.array([M._stat(m, r) for r in reps]) for m in metrics}


def _ci(stats, level=0.95):
    return {m: M._percentile_ci(v, level) for m, v in stats.items()}


def test_clustered_bootstrap_equals_explicit_cluster_resampling():
    rng = np.random.default_rng(13)
    for trial in range(4):
        sizes = rng.integers(1, 6, size=rng.integers(5, 30))
        clusters = rng.permutation(np.repeat(rng.permutation(1000)[: sizes.size], sizes))  # arbitrary labels
        ranks = rng.integers(1, 15, size=clusters.size) + 0.5 * rng.integers(0, 2, size=clusters.size)
        got = M.bootstrap_ci(ranks, n_boot=300, seed=trial, clusters=clusters)
        assert got == _ci(_naive_bootstrap(ranks, M.METRICS, 300, trial, clusters))
        other = rng.permutation(ranks)
        for metric in M.METRICS:
            res = M.paired_bootstrap(ranks, other, metric, n_boot=300, seed=trial, clusters=clusters)
            sa = _naive_bootstrap(ranks, (metric,), 300, trial, clusters)[metric]
            sb = _naive_bootstrap(other, (metric,), 300, trial, clusters)[metric]
            assert res["ci"] == M._percentile_ci(sa - sb, 0.95)
        vals = rng.normal(size=clusters.size)
        lo, hi = M.bootstrap_mean_ci(vals, n_boot=300, seed=trial, clusters=clusters)
        ref = _naive_bootstrap(vals, ("MnR",), 300, trial, clusters)["MnR"]  # MnR is the plain mean
        assert (lo, hi) == pytest.approx(M._percentile_ci(ref, 0.95), rel=1e-12)


def test_one_query_per_cluster_is_bit_identical_to_query_resampling():
    rng = np.random.default_rng(14)
    ranks, other = _fake_ranks(rng, 500), _fake_ranks(rng, 500)
    labels = rng.permutation(10_000)[:500]  # distinct labels in any order: every cluster one query
    plain = M.bootstrap_ci(ranks, n_boot=400, seed=3)
    assert plain == _ci(_naive_bootstrap(ranks, M.METRICS, 400, 3))  # the query bootstrap as it always was
    assert M.bootstrap_ci(ranks, n_boot=400, seed=3, clusters=labels) == plain
    for metric in M.METRICS:
        assert M.paired_bootstrap(ranks, other, metric, n_boot=400, seed=3, clusters=labels) == M.paired_bootstrap(
            ranks, other, metric, n_boot=400, seed=3
        )
    assert M.bootstrap_mean_ci(ranks, n_boot=400, seed=3, clusters=labels) == M.bootstrap_mean_ci(ranks, 400, 3)
    # with_ci / compare on a single-query split: "auto" clusters change nothing, bit for bit
    sim = rng.normal(size=(300, 300))
    sim_b = sim + rng.normal(size=sim.shape)
    gold = rng.permutation(300)
    for direction in M.DIRECTIONS:
        assert M.with_ci(sim, gold, direction, n_boot=300, seed=5) == M.with_ci(
            sim, gold, direction, n_boot=300, seed=5, clusters=None
        )
        assert M.compare(sim, sim_b, gold, direction, n_boot=300, seed=5) == M.compare(
            sim, sim_b, gold, direction, n_boot=300, seed=5, clusters=None
        )


def _width(ci, m):
    return ci[m][1] - ci[m][0]


def test_duplicated_captions_do_not_shrink_the_clustered_ci():
    # The same 400 single-caption results, each caption repeated k = 4 times (a video with 4 identical
    # captions): no new information. Resampling captions treats the copies as independent and the CI shrinks
    # by about sqrt(4) = 2; resampling videos (clusters) keeps the single-caption width.
    rng = np.random.default_rng(15)
    k, nv = 4, 400
    single = _fake_ranks(rng, nv)
    video = rng.permutation(np.repeat(np.arange(nv), k))  # captions of one video scattered over the split
    dup = single[video]
    ci_single = M.bootstrap_ci(single, n_boot=1000, seed=0)
    ci_clustered = M.bootstrap_ci(dup, n_boot=1000, seed=0, clusters=video)
    ci_captions = M.bootstrap_ci(dup, n_boot=1000, seed=0)
    for m in ("R1", "R5", "R10", "MnR"):
        assert 0.8 < _width(ci_clustered, m) / _width(ci_single, m) < 1.25, m
        assert _width(ci_captions, m) / _width(ci_single, m) < 0.65, m
    # in video order the cluster draws are the single-caption draws: the same CI exactly
    assert M.bootstrap_ci(np.repeat(single, k), n_boot=1000, seed=0, clusters=np.repeat(np.arange(nv), k)) == ci_single

    # the paired test likewise
    better = np.where(rng.random(nv) < 0.1, 1.0, single)
    p_single = M.paired_bootstrap(better, single, "R1", n_boot=1000, seed=0)
    p_clustered = M.paired_bootstrap(better[video], dup, "R1", n_boot=1000, seed=0, clusters=video)
    p_captions = M.paired_bootstrap(better[video], dup, "R1", n_boot=1000, seed=0)
    assert p_clustered["delta"] == p_captions["delta"] == pytest.approx(p_single["delta"])
    w_single, w_cl, w_cap = (p["ci"][1] - p["ci"][0] for p in (p_single, p_clustered, p_captions))
    assert 0.8 < w_cl / w_single < 1.25 and w_cap / w_single < 0.65

    # and the mean of per-query values (twin accuracy)
    vals = rng.choice([0.0, 0.5, 1.0], size=nv)
    lo, hi = M.bootstrap_mean_ci(vals, n_boot=1000, seed=0)
    lo_c, hi_c = M.bootstrap_mean_ci(vals[video], n_boot=1000, seed=0, clusters=video)
    lo_q, hi_q = M.bootstrap_mean_ci(vals[video], n_boot=1000, seed=0)
    assert 0.8 < (hi_c - lo_c) / (hi - lo) < 1.25 and (hi_q - lo_q) / (hi - lo) < 0.65


def test_with_ci_and_compare_cluster_multi_caption_t2v_by_gold_video():
    rng = np.random.default_rng(16)
    sim, t2v = random_multi_caption(rng, num_videos=80, max_caps=5)
    other = sim + rng.normal(size=sim.shape)
    auto = M.with_ci(sim, t2v, "t2v", n_boot=300, seed=2)
    assert auto == M.with_ci(sim, t2v, "t2v", n_boot=300, seed=2, clusters=t2v)
    assert auto != M.with_ci(sim, t2v, "t2v", n_boot=300, seed=2, clusters=None)
    assert M.with_ci(torch.from_numpy(sim), torch.from_numpy(t2v), n_boot=300, seed=2) == auto
    cmp = M.compare(sim, other, t2v, "t2v", "best_caption", "R5", n_boot=300, seed=2)
    assert cmp == M.compare(sim, other, t2v, "t2v", "best_caption", "R5", n_boot=300, seed=2, clusters=t2v)
    assert cmp != M.compare(sim, other, t2v, "t2v", "best_caption", "R5", n_boot=300, seed=2, clusters=None)
    # v2t: one query per video already, "auto" does not cluster
    assert M.with_ci(sim, t2v, "v2t", n_boot=300, seed=2) == M.with_ci(
        sim, t2v, "v2t", n_boot=300, seed=2, clusters=None
    )


def test_bad_clusters():
    with pytest.raises(ValueError, match="one label per query"):
        M.bootstrap_ci([1.0, 2.0, 3.0], clusters=[0, 1])
    with pytest.raises(ValueError, match="integer labels"):
        M.bootstrap_ci([1.0, 2.0], clusters=[0.0, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        M.paired_bootstrap([1.0, 2.0], [1.0, 2.0], clusters=[[0, 1]])
    with pytest.raises(ValueError, match="'auto'"):
        M.with_ci(np.eye(3), [0, 1, 2], clusters="video")
