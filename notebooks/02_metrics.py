# %% [markdown]
# # 02 · Metrics: what R@1, MdR and MnR mean, and how sure we are
#
# Every table in text-video retrieval reports **R@1, R@5, R@10** (recall at K, in percent), **MdR** (median rank)
# and **MnR** (mean rank), for text-to-video (t2v) and video-to-text (v2t). They look simple; the details are where
# repositories disagree.
#
# **What you will learn here**
#
# * how a similarity matrix `sim [num_texts, num_videos]` becomes ranks, and ranks become R@K, MdR, MnR;
# * **ties**: why a rank can be 1.5, and how CLIP4Clip's way of finding the gold's rank over-counts tied scores;
# * **several captions per video**: t2v per caption, and the two v2t conventions (`best_caption` and CLIP4Clip's
#   `max_group`), which agree on R@1 and can differ on the rest;
# * **confidence intervals**: bootstrapping the queries, and a **paired** test for "is method A better than B?"
#   on the same queries.

# %% tags=["parameters"]
profile = "quick"
dataset = None
clip_model = None
pretrained = None
device = "auto"
seed = 0

# %%
import numpy as np
import pandas as pd

import tvrlib.session
from tvrlib import metrics as M
from tvrlib.heads import HEADS
from tvrlib.reporting import figure, metrics_frame, save_figure, show_source

S = tvrlib.session.setup(
    profile, dataset=dataset, clip_model=clip_model, pretrained=pretrained, device=device, seed=seed
)

# %% [markdown]
# ## 1. From scores to ranks
#
# Row *i* of `sim` holds text *i*'s score against every video; `text_to_video[i]` is its gold video. The gold's
# **rank** is 1 + the number of videos scored strictly higher. R@K is the percentage of queries whose rank is ≤ K;
# MdR and MnR are the median and mean rank (lower is better).

# %%
# NBVAL_CHECK_OUTPUT
sim = np.array(
    [
        [0.9, 0.1, 0.3, 0.2],  # text 0 -> gold video 0: rank 1
        [0.8, 0.7, 0.1, 0.0],  # text 1 -> gold video 1: rank 2
        [0.5, 0.6, 0.4, 0.9],  # text 2 -> gold video 2: rank 4
        [0.1, 0.2, 0.3, 0.95],
    ]
)  # text 3 -> gold video 3: rank 1
gold = np.array([0, 1, 2, 3])
print("ranks:", M.ranks_t2v(sim, gold))
M.t2v(sim, gold)

# %%
show_source(M.rank_of_gold)

# %% [markdown]
# ## 2. Ties
#
# When the gold video's score equals another video's score, which comes first? Sorting breaks the tie arbitrarily,
# so the metric would depend on the sort algorithm. CLIP4Clip locates the gold by subtracting it from the sorted row
# and looking for zeros, which returns *every* tied position and so over-counts tied rows (its issue #80). We use
# the **average rank**: rank = 1 + #strictly higher + #other tied / 2. A gold tied with one other video at the top
# gets rank 1.5 — it is not counted as a hit at R@1, and an all-equal row of N scores gets (N+1)/2, the rank a coin
# flip would give on average.

# %%
# NBVAL_CHECK_OUTPUT
tied = np.array(
    [
        [0.5, 0.5, 0.1, 0.0],  # gold 0 tied with video 1 at the top -> 1.5
        [0.3, 0.3, 0.3, 0.3],  # all equal -> (4 + 1) / 2 = 2.5
        [0.1, 0.2, 0.9, 0.2],
    ]
)  # no tie -> 1
print("ranks:", M.ranks_t2v(tied, np.array([0, 1, 2])))
M.t2v(tied, np.array([0, 1, 2]))

# %% [markdown]
# ## 3. Several captions per video
#
# Each video in our test split has 5 captions (MSVD has about 40). **t2v** treats every caption as its own query.
# For **v2t** a video has several correct answers, and two conventions exist:
#
# * `best_caption` (VSE++, SGRAF, Collaborative Experts): the video's rank is the rank of its best-placed caption
#   among *all* texts (other gold captions above it are not errors);
# * `max_group` (CLIP4Clip): score each video's *caption group* by its best caption, then rank the groups.
#
# They always agree on R@1 (both ask whether a gold caption is the top text) but can disagree below the top:

# %%
# NBVAL_CHECK_OUTPUT
#                 v0    v1    v2
sim3 = np.array(
    [
        [0.9, 0.2, 0.5],  # caption of v0
        [0.8, 0.1, 0.4],  # caption of v0
        [0.7, 0.3, 0.35],  # caption of v0
        [0.1, 0.9, 0.2],  # caption of v1
        [0.2, 0.1, 0.3],  # caption of v2
        [0.3, 0.2, 0.1],
    ]
)  # caption of v1
t2v_gold = np.array([0, 0, 0, 1, 2, 1])
for c in M.CONVENTIONS:
    print(f"{c:>12}: rank of each video = {M.ranks_v2t(sim3, t2v_gold, convention=c)}")
pd.DataFrame({c: M.v2t(sim3, t2v_gold, convention=c) for c in M.CONVENTIONS}).T

# %% [markdown]
# Video 2's captions are outscored by three captions of video 0, so under `best_caption` its rank is 4; under
# `max_group` video 0's three captions count once, as one group, so its rank is 2.
#
# ## 4. Zero-shot mean pooling on our test split
#
# To have real numbers to bootstrap, we score the test split with the tiny CLIP and **mean pooling** (average the
# frame embeddings; notebook 03 explains it). Each query is one caption; each video is 12 frames.

# %%
head = HEADS.build("meanP")
queries, qgold = S.queries("test")
videos = S.videos("test")
sim_q = head.score(queries, videos)  # [1000 queries, 1000 videos]
sim_all = head.score(S.texts("test"), videos)  # [5000 captions, 1000 videos]
test = S.data("test")
res = {
    "t2v": M.with_ci(sim_q, qgold, "t2v", n_boot=S.n_boot, seed=seed),
    "v2t (best_caption)": M.with_ci(sim_all, test.text_to_video, "v2t", "best_caption", n_boot=S.n_boot, seed=seed),
    "v2t (max_group)": M.with_ci(sim_all, test.text_to_video, "v2t", "max_group", n_boot=S.n_boot, seed=seed),
}
metrics_frame(res)

# %% [markdown]
# ## 5. How wide is a confidence interval?
#
# The bracketed numbers are **95 % bootstrap intervals**: resample the queries with replacement many times,
# recompute the metric each time, keep the middle 95 %. The interval narrows like 1/√(number of queries). MSR-VTT's
# 1k-A test set has 1,000 queries, so an R@1 near 40 % carries roughly ±3 points of sampling noise: differences of a
# point or two between papers are inside that noise.

# %%
ranks = M.ranks_t2v(sim_q, qgold)
rng = np.random.default_rng(seed)
rows = []
for n in (100, 250, 500, 1000):
    sub = ranks[rng.permutation(len(ranks))[:n]]
    lo, hi = M.bootstrap_ci(sub, n_boot=S.n_boot, seed=seed)["R1"]
    rows.append({"queries": n, "R1": M.summarize(sub)["R1"], "CI width": hi - lo})
widths = pd.DataFrame(rows)
fig, ax = figure("02_ci_width", profile, width=5, height=3)
ax.plot(widths["queries"], widths["CI width"], marker="o")
ax.set_xlabel("number of queries")
ax.set_ylabel("width of the 95% CI of R@1 (points)")
save_figure(fig)
widths.round(1)

# %% [markdown]
# ## 6. Is A better than B? A paired test
#
# Two methods scored on the **same** queries should be compared pair-wise: resample queries once and recompute both
# methods' metric on the same resample. The spread of the *difference* is much smaller than the two separate
# intervals suggest, because both methods find the same queries easy or hard.
#
# Here B is mean pooling over a single frame (the middle one, all other frames masked out) — a "one frame is enough"
# baseline, scored with the same head and a different mask.

# %%
one = videos.mask.clone()
one[:] = False
one[:, S.num_frames // 2] = True
from tvrlib.heads.base import VideoInput

sim_one = head.score(queries, VideoInput(videos.frames, one))
cmp = M.compare(sim_q, sim_one, qgold, "t2v", metric="R1", n_boot=S.n_boot, seed=seed)
pd.Series({k: (np.round(v, 2) if not isinstance(v, str) else v) for k, v in cmp.items()})

# %%
show_source(M.paired_bootstrap)

# %% [markdown]
# ## 7. Twins: per-factor accuracy
#
# For each twin query we ask one question: is the gold video scored above its twin? Ties count ½, so a method that
# cannot see the difference scores exactly 50 %. The interval is a bootstrap over twin queries.

# %%
twin_of = test.meta["twin_of_query"]
factors = np.array(test.meta["factor_of_query"])
rows = []
for f in ("order", "direction", "detail"):
    sel = factors == f
    acc, per = M.twin_accuracy(sim_q[sel], qgold[sel], twin_of[sel])
    lo, hi = M.bootstrap_mean_ci(per, n_boot=S.n_boot, seed=seed)
    rows.append(
        {"factor": f, "twin queries": int(sel.sum()), "accuracy %": 100 * acc, "CI lo": 100 * lo, "CI hi": 100 * hi}
    )
twins = pd.DataFrame(rows).set_index("factor")
assert twins.loc["direction", "accuracy %"] == 50.0  # guaranteed: same multiset of frames, mean pooling ties
twins.round(1)

# %% [markdown]
# ## What we found

# %%
t = res["t2v"]
print(
    f"Zero-shot mean pooling on {int(t['n'])} test queries: t2v R@1 = {t['R1']:.1f} % "
    f"(95 % CI {t['R1_lo']:.1f}-{t['R1_hi']:.1f}), MdR {t['MdR']:.1f}, MnR {t['MnR']:.1f}."
)
print(
    f"The two v2t conventions agree on R@1 ({res['v2t (best_caption)']['R1']:.1f} vs {res['v2t (max_group)']['R1']:.1f}) "
    f"and differ on MnR ({res['v2t (best_caption)']['MnR']:.1f} vs {res['v2t (max_group)']['MnR']:.1f})."
)
print(
    f"All 12 frames vs the middle frame only: R@1 difference {cmp['delta']:+.1f} points, "
    f"95 % CI [{cmp['ci'][0]:+.1f}, {cmp['ci'][1]:+.1f}], paired-bootstrap p = {cmp['p_value']:.3f}."
)
print(
    f"Twin accuracy of mean pooling: order {twins.loc['order', 'accuracy %']:.1f} %, direction "
    f"{twins.loc['direction', 'accuracy %']:.1f} % (a guaranteed tie), detail {twins.loc['detail', 'accuracy %']:.1f} %."
)
