# %% [markdown]
# # 09 · CrossTVR: two-stage retrieval with a cross-attention re-ranker
#
# CrossTVR (seed 003; docs/papers.md §5) splits retrieval in two. **Stage 1** is any cheap head that scores every
# video (a dual encoder such as CLIP4Clip's mean pooling, TS2-Net, X-Pool): it keeps each caption's top $K = 15$
# videos. **Stage 2** is a *cross-encoder* that reads the caption's words and the frames' patch tokens together and
# re-scores only those $K$ pairs. Its cross attention is **decoupled**: learnable queries (with the caption) first look
# at each frame on its own (*spatial*), then at a few tokens per frame picked by a token selector, across all frames
# (*temporal*); the two passes **share their parameters**. The image encoder stays **frozen**, so its tokens are
# computed once and cached, and stage 2 is trained as binary matching on hard negatives drawn from stage 1.
#
# **What you will learn here**
#
# * why a cross-encoder only re-ranks a shortlist, and what a shortlist costs and allows (the gold video must be in
#   it);
# * the re-ranker in code: queries, per-frame spatial attention, the token selector, the temporal pass, one set of
#   weights for both, the matching head; training on hard negatives;
# * CrossTVR's ablations beside ours, each claim judged once with a paired CI over test queries and training seeds:
#   **Table 6** (spatial / temporal / both), **Table 8** (the re-ranker on three stage-1 heads, with the time it
#   adds), **Table 9** (shared vs separate parameters), the re-rank number $K$ (**Figure 4**, $K = 2 \dots 19$), and
#   dual softmax (**Tables 11–14**, transductive); why **Table 10** cannot be compared here;
# * what the queries look at in a frame, and what two stages cost as the gallery grows to 100,000 videos.
#
# Our copy of the paper prints the labels of eqs. (1)–(7) but not the formulas; the module docstring of
# `tvrlib/heads/crosstvr.py` numbers every step (`# step N`) and docs/papers.md §5 lists our readings.
#
# **On real data:** `python -m tvrlib run-notebooks --profile msrvtt --out results/msrvtt/executed notebooks/09_crosstvr_two_stage_reranking.ipynb`
# (or `msrvtt-7k`, `msvd`, `lsmdc`, `didemo`, `activitynet`); the data, the weights and the exact commands are in
# `docs/reproduce-real-data.md`. Sections that need the synthetic benchmark print "skipped" there.

# %% tags=["parameters"]
profile = "quick"  # quick | full | msrvtt
dataset = None  # None: take it from the profile (also for clip_model, pretrained)
clip_model = None
pretrained = None
device = "auto"
seed = 0  # the first training seed (the others follow: seed + 1, ...) and the bootstrap seed
# stage 1: the shared training protocol (tvrlib.experiment); None: the profile's, except this notebook's quick budget
seeds = None  # training seeds per head; None: the profile's (quick 3, full 5)
batch_size = None  # captions per step; None: quick 32 (notebook 07's budget), otherwise the profile's
steps_per_epoch = None  # steps between two validation checks; None: quick 40, otherwise a full pass (0: a full pass)
max_epochs = None  # None: quick 20, otherwise the profile's
patience = None  # early-stopping patience in epochs; None: quick 3, otherwise the profile's
val_videos = None  # validation videos used for model selection; None: quick 150, otherwise every one
# stage 2: the re-ranker and its training (section 3 says why quick is smaller)
rerank_k = 15  # K, the shortlist re-ranked at test time (the paper's)
sweep_k = 19  # the largest K of the Figure 4 sweep: every K from 2 to sweep_k, re-combined from one run
rr_layers = None  # query-transformer layers; None: quick 1, otherwise 2 (crosstvr's default)
rr_queries = None  # learnable queries; None: quick 4, otherwise 8
rr_mlp = None  # feed-forward width / D; None: quick 2, otherwise 4
rr_lr = None  # AdamW learning rate; None: quick 5e-4 (trained from scratch), otherwise 1e-4 (the paper's)
rr_steps = None  # steps per re-ranker epoch; None: quick 20, otherwise a full pass
rr_epochs = None  # at most; None: quick 8, otherwise 10
rr_patience = 2  # early stopping on validation R@1 of the re-ranked shortlist
rr_val_queries = None  # validation queries re-ranked after each epoch; None: quick 150 (evenly spaced), otherwise all
matching = "probability"  # what is added to the stage-1 score: "probability" (eq. 7's p) or "logit" (log-odds)
test_queries = None  # test queries re-ranked; None: quick 300 (a cross-encoder's budget), otherwise every one
caption = None  # section 7: the test caption (index into the split's captions) drawn; None: a detail-twin query
threads = 1  # torch threads; None: the session's default (up to 4). 1 is fastest on cores shared with other jobs

# %%
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import display

from tvrlib import metrics as M
from tvrlib.evaluation import evaluate_twins
from tvrlib.experiment import (
    HeadRuns,
    SeedRun,
    judge,
    paired_difference,
    run,
    seed_rows,
    setup,
    subset_runs,
    summarise_seeds,
    training_summary,
    twin_accuracy_over_seeds,
    twin_seed_rows,
)
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.crosstvr import CrossTVR, QueryTransformer
from tvrlib.paper_tables import load_paper_table, save_claims
from tvrlib.reporting import figure, save_figure, show_source, versions
from tvrlib.reranking import RerankConfig, combine, dual_softmax, rerank_runs, runs_at, shortlist, train_rerankers

NB = "09_crosstvr_two_stage_reranking"
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)
B = setup(  # the session, the training settings, the shared protocol, and the splits with word and patch tokens
    profile,
    dataset=dataset,
    clip_model=clip_model,
    pretrained=pretrained,
    device=device,
    seed=seed,
    threads=threads,
    seeds=seeds,
    batch_size=batch_size,
    max_epochs=max_epochs,
    patience=patience,
    words=True,  # the re-ranker reads the caption's word tokens
    patches=True,  # ... and each frame's patch tokens
)
S = B.session
light = B.light  # the profile's light budget (quick and its robustness twin quick_alt)
# notebook 07's quick budget for the token-level stage-1 heads
P = B.budget(
    "token",
    reason="notebook 07's quick budget for the token-level heads",
    batch_size=batch_size,
    steps_per_epoch=steps_per_epoch,
    max_epochs=max_epochs,
    patience=patience,
)
train, test_src = B.train, B.test
val = B.validation(val_videos)
test = S.data("test")
texts, videos = test_src.texts, test_src.videos  # every test caption with its word tokens; videos with patches
D, F_, n_patch = videos.frames.shape[-1], videos.frames.shape[1], videos.patches.shape[2]
if rerank_k > len(test.videos) or sweep_k > len(test.videos):  # a small gallery (the fixture profile)
    print(f"K capped at the gallery's {len(test.videos)} videos")
rerank_k = min(rerank_k, len(test.videos))
sweep_k = min(max(sweep_k, rerank_k), len(test.videos))
RR = {  # the re-ranker's size (every variant)
    "layers": rr_layers or (1 if light else 2),
    "queries": rr_queries or (4 if light else 8),
    "mlp_ratio": rr_mlp or (2.0 if light else 4.0),
}
RCFG = RerankConfig(
    epochs=rr_epochs or (8 if light else 10),
    batch_size=P.batch_size,
    lr=rr_lr or (5e-4 if light else 1e-4),
    k=rerank_k,
    patience=rr_patience,
    max_steps_per_epoch=rr_steps or (20 if light else None),
    val_queries=rr_val_queries or (150 if light else None),
    matching=matching,
)
n_test_q = len(test_src.query_index)
n_rr = min(test_queries or (300 if light else n_test_q), n_test_q)
picked = np.sort(np.random.default_rng(seed).choice(n_test_q, n_rr, replace=False))  # the re-ranked test queries
print(
    f"test: {len(test.videos)} videos, {len(texts)} captions, {n_test_q} t2v queries ({n_rr} re-ranked); D = {D}, "
    f"{F_} frames with {n_patch} patch tokens each; validation: {len(val.videos)} videos"
)
print("stage 1:", P.describe())
print(f"stage 2: re-ranker {RR}; {RCFG}")
versions().T

# %% [markdown]
# ## 1. Two stages on a toy
#
# Stage 1 gives a score $s_1$ for every (caption, video). The **shortlist** is each caption's top $K$ by $s_1$. The
# re-ranker scores only those $K$ pairs: a matching score $m$, and the final score of a shortlisted video is
# $s_1 + m$ (the paper "adds" them; eq. 7 calls the matching head's probability $p$ the matching score, so
# `matching = "probability"` adds $p \in (0, 1)$, and `"logit"` the log-odds). The shortlist is then lifted, by one
# constant per caption where needed, so that it ranks above every other video; every other video keeps its stage-1
# score **bit for bit**. Two consequences to keep in mind: a gold video outside the shortlist keeps its stage-1 rank
# whatever the re-ranker could have said, and with $K$ = every video and $m = 0$ the ranking is stage 1's. Checked by
# nbval on a 2 × 6 toy:

# %%
show_source(combine)

# %%
# NBVAL_CHECK_OUTPUT
s1 = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.1, 0.6, 0.3, 0.2, 0.5, 0.4]])
top = shortlist(s1, 3)
print("shortlists (top 3 by stage 1):", top.tolist())
m = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])  # the re-ranker strongly prefers caption 0's third video
final = combine(s1, top, m, weight=1.0, matching_kind="logit")
print("caption 0, order after re-ranking:", final[0].argsort(descending=True).tolist())
print("videos outside the shortlist keep their scores:", bool(torch.equal(final[0, 3:], s1[0, 3:].double())))
everything = combine(s1, shortlist(s1, 6), torch.zeros(2, 6), weight=1.0, matching_kind="logit")
print("K = all videos, m = 0 reproduces stage 1's order:", bool(torch.equal(everything.argsort(1, descending=True), s1.argsort(1, descending=True))))  # fmt: skip

# %% [markdown]
# ## 2. The re-ranker
#
# For one (caption, video) pair, on the frozen encoder's cached tokens (each frame's CLS and its patch tokens; the
# caption's word tokens):
#
# 1. **spatial text attention** (eqs. 1–3): $[Q; W]$ — learnable queries and the caption's tokens — pass through a
#    small query transformer (self-attention over queries and words, cross attention from the query positions to
#    the memory, a feed-forward block) with **each frame's tokens as a separate memory**; the query outputs are
#    averaged over the frames: the *spatially enhanced* queries $Q_s$;
# 2. **token selector** (eqs. 4–5): an MLP and a softmax score each token of a frame; the top $M = 4$ per frame are
#    kept (of ViT-B/32's 50 tokens in the paper; the tiny CLIP's frames have only 5, its CLS and 4 patch tokens, so
#    here the selector drops one token per frame and the "temporal only" ablation is weaker than the paper's);
# 3. **temporal text attention** (eq. 6): $[Q_s; W]$ pass through **the same module** with the selected tokens of
#    all frames (plus a learned frame position) as the memory;
# 4. **matching head** (eq. 7): a linear 2-way head on each query output, averaged: $p$ = softmax's "match".
#
# The spatial pass runs one copy of the caption per frame, which is the cost of a cross-encoder. Most of that work
# is the same for every frame (the first layer's input, and the text positions, which never look at the frame), so
# the library computes it once (`QueryTransformer.forward_per_memory`; equal to the per-frame copies, tested):

# %%
show_source(CrossTVR.itm_logits)
show_source(QueryTransformer.forward_per_memory)

# %% [markdown]
# The four variants of the ablations are registered heads. **Parameter sharing is real**: in `crosstvr` the
# temporal module *is* the spatial module (one set of weights); `crosstvr-unshared` has a second copy that starts
# equal (so before training it scores exactly as `crosstvr`, and only training separates them). Checked by nbval on a
# toy pair:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
toy_text = TextInput(torch.randn(2, 16, generator=g), torch.randn(2, 5, 16, generator=g), torch.ones(2, 5, dtype=torch.bool))
toy_video = VideoInput(torch.randn(2, 3, 16, generator=g), torch.ones(2, 3, dtype=torch.bool), torch.randn(2, 3, 4, 16, generator=g))
variants = {}
for name in ["crosstvr", "crosstvr-spatial", "crosstvr-temporal", "crosstvr-unshared"]:
    torch.manual_seed(0)
    variants[name] = HEADS.build(name, dim=16, queries=2, layers=1).eval()
for name, h in variants.items():
    print(f"{name:18s} parameters {sum(p.numel() for p in h.parameters()):6d} | one module for both passes: {h.parameters_shared}")
with torch.no_grad():
    same = torch.allclose(variants["crosstvr"].match_scores(toy_text, toy_video), variants["crosstvr-unshared"].match_scores(toy_text, toy_video))  # fmt: skip
print("unshared scores exactly as shared before training:", same)

# %% [markdown]
# ## 3. Training both stages
#
# **Stage 1.** Three heads, each trained through `tvrlib.experiment` under one protocol (printed at the top: notebook
# 07's quick budget for token-level heads), the same seeds, early stopping on validation R@1: CLIP4Clip's temporal
# transformer (`seqTransf`: the paper's CLIP4Clip row, 44.5 R@1 on MSR-VTT 9k, is CLIP4Clip's seqTransf result),
# TS2-Net (`ts2net`, the paper's stage 1) and X-Pool (`xpool`).
#
# **Stage 2** (`tvrlib.reranking.train_rerankers`): one re-ranker per stage-1 seed, trained on that seed's frozen
# stage 1. Per batch of captions and their videos: stage 1's in-batch similarities, one hard negative video per caption
# and one hard negative caption per video drawn from $\mathrm{softmax}(s_1 / 0.01)$ with every pair of the same video
# excluded (ALBEF's rule), then eq. 7's 2-way cross-entropy. The best epoch by validation R@1 of the **re-ranked**
# shortlist is kept (early stopping). The encoder is frozen and the features cached: training never writes them.
#
# **The quick budget for stage 2.** The paper starts its cross attention from BLIP-2 (32 queries, 12 layers of width
# 768) and trains on GPUs. Here every pair costs a pass through the re-ranker on one CPU thread, so on `quick` the
# re-ranker is small (1 layer, 4 queries, a 2× feed-forward), an epoch is 20 steps of 32 captions (each step scores
# up to 96 pairs) and the validation check re-ranks 150 evenly spaced validation queries, at most 8 epochs with
# patience 2, learning rate 5e-4 (trained from scratch; the paper's 1e-4
# fine-tunes BLIP-2's weights), and 300 random test queries are re-ranked (the same 300 for every head and seed; every
# stage-1 claim in this notebook is paired on those 300). Other profiles use the defaults (2 layers, 8 queries,
# 4×, lr 1e-4, full passes, every query). The cell after training says how the runs ended. Its `val_best` columns
# are mean best validation R@1: over every validation caption (750) for stage 1, over the 150 re-ranked validation
# queries for stage 2, so the two are not on the same queries; `seconds` are summed over seeds.
#
# | label | stage 1 | re-ranker | CrossTVR's row |
# |---|---|---|---|
# | CLIP4Clip, TS2-Net, X-Pool | `seqTransf`, `ts2net`, `xpool` | — | Table 8's stage-1 rows; Tables 6, 9 "baseline" (TS2-Net) |
# | TS2-Net + CrossTVR | `ts2net` | `crosstvr` | Table 6 full; Table 8; Table 9 "Sharing" |
# | TS2-Net + spatial only | `ts2net` | `crosstvr-spatial` | Table 6 "+ spatial" |
# | TS2-Net + temporal only | `ts2net` | `crosstvr-temporal` | Table 6 "+ temporal" |
# | TS2-Net + CrossTVR unshared | `ts2net` | `crosstvr-unshared` | Table 9 "Unsharing" |
# | CLIP4Clip + CrossTVR, X-Pool + CrossTVR | `seqTransf`, `xpool` | `crosstvr` | Table 8 |

# %%
STAGE1 = {"seqTransf": "CLIP4Clip", "ts2net": "TS2-Net", "xpool": "X-Pool"}
# as in notebook 07: the transformers start from CLIP's text layers; TS2-Net keeps k patches per frame
HEAD_KW = {"init_from": S.encoder.model, "k": 1 if light else 3}
SECOND = {  # label -> (stage-1 label, registered re-ranker)
    "TS2-Net + CrossTVR": ("TS2-Net", "crosstvr"),
    "TS2-Net + spatial only": ("TS2-Net", "crosstvr-spatial"),
    "TS2-Net + temporal only": ("TS2-Net", "crosstvr-temporal"),
    "TS2-Net + CrossTVR unshared": ("TS2-Net", "crosstvr-unshared"),
    "CLIP4Clip + CrossTVR": ("CLIP4Clip", "crosstvr"),
    "X-Pool + CrossTVR": ("X-Pool", "crosstvr"),
}


def twins_of(head, seed_):
    """Twin accuracy of each seed's trained head (2 scores per twin query)."""
    return evaluate_twins(head, texts, videos, test, method=head.__class__.__name__, n_boot=S.n_boot, seed=seed)


eval_fn = twins_of if "twin_of_query" in test.meta else None
t0 = time.perf_counter()
stage1 = {
    label: run(P, name, train, val, test_src, label=label, head_kwargs=HEAD_KW, test_eval_fn=eval_fn)
    for name, label in STAGE1.items()
}
stage1_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
trained = {
    label: train_rerankers(stage1[s1_label], name, train, val, config=RCFG, reranker_kwargs=RR)
    for label, (s1_label, name) in SECOND.items()
}
stage2_seconds = time.perf_counter() - t0
per_head, convergence = training_summary(stage1)
print("stage 1, per head: epochs run and best epoch for each seed, in seed order")
display(per_head.round(1))
print(convergence)
rr_rows = pd.DataFrame(
    [
        {"re-ranker": label, "seed": s, "epochs run": t.epochs_run, "best epoch": t.best_epoch,
         "stopped early": t.stopped_early, "val R@1 (re-ranked)": t.best_value, "seconds": t.seconds}
        for label, ts in trained.items() for s, t in ts.items()
    ]
)  # fmt: skip
rr_table = rr_rows.groupby("re-ranker", sort=False).agg(
    epochs_run=("epochs run", list),
    best_epoch=("best epoch", list),
    stopped_early=("stopped early", "sum"),
    val_best=("val R@1 (re-ranked)", "mean"),
    seconds=("seconds", "sum"),
)
print("stage 2, per re-ranker: epochs run and best epoch for each seed")
display(rr_table.round(1))
capped = int((~rr_rows["stopped early"] & (rr_rows["epochs run"] == RCFG.epochs)).sum())
print(
    f"{int(rr_rows['stopped early'].sum())} of {len(rr_rows)} re-ranker runs ended by early stopping (patience "
    f"{RCFG.patience}); {capped} ran to the epoch limit ({RCFG.epochs}). Training: stage 1 {stage1_seconds:.0f} s, "
    f"stage 2 {stage2_seconds:.0f} s."
)

# %% [markdown]
# ## 4. Test results
#
# Each stage-1 seed ranks the test queries; its re-ranker then re-scores the top `sweep_k` of the re-ranked queries
# once, and every smaller $K$ is re-combined from those scores (`runs_at`), nothing re-scored. The table: t2v on the
# re-ranked test queries, **mean ± standard deviation over the training seeds [min, max]**, $K$ = 15. The *shortlist
# recall* row says how often the gold video is in stage 1's top $K$ at all: no re-ranker can do better than that at
# R@1.

# %%
q_sel = picked
base = {label: subset_runs(hr, q_sel) for label, hr in stage1.items()}  # stage 1 on the re-ranked queries
t0 = time.perf_counter()
swept = {
    label: rerank_runs(stage1[s1_label], trained[label], test_src, k=sweep_k, matching=matching, queries=q_sel)
    for label, (s1_label, _) in SECOND.items()
}
rerank_seconds = time.perf_counter() - t0
two = {label: runs_at(hr, k=rerank_k, label=label) for label, hr in swept.items()}
results = {**base, **two}
summary = summarise_seeds(results)
display(summary.pivot(index="head", columns="metric", values="cell").loc[list(results), ["R1", "R5", "R10", "MdR", "MnR"]])
recall = {lab: np.mean([100 * np.mean(r.ranks <= rerank_k) for r in hr.runs]) for lab, hr in base.items()}
print(
    f"shortlist recall (gold in stage 1's top {rerank_k}, mean over seeds): "
    + ", ".join(f"{lab} {v:.1f} %" for lab, v in recall.items())
)

# %% [markdown]
# **Which matching score to add.** The paper adds "the matching score" to stage 1's cosine without a formula; eq. 7
# names the matching head's probability $p$ the matching score, which is what `matching = "probability"` adds; that
# choice was fixed from the paper's wording before any run, and this table does not change it. The alternative, the
# log-odds (BLIP-2 adds its ITM logit), is unbounded, so a few units of it override any cosine difference inside the
# shortlist; $p \in (0, 1)$ can too, where the stage-1 scores of a shortlist are closer than 1 (printed below). Both
# on the same runs (re-combined, nothing re-scored), mean R@1 over seeds:

# %%
alt = "logit" if matching == "probability" else "probability"
by_matching = pd.DataFrame(
    {
        matching: {lab: summary.query("head == @lab and metric == 'R1'")["mean"].iloc[0] for lab in two},
        alt: {lab: np.mean([r.metrics["R1"] for r in runs_at(hr, k=rerank_k, matching=alt).runs]) for lab, hr in swept.items()},  # fmt: skip
    }
)
by_matching.index.name = "R@1 (%)"
display(by_matching.round(1))
spread = {}
for label in SECOND:
    rec0 = swept[label].runs[0].evaluation.at(rerank_k)
    top_s1 = torch.gather(rec0.stage1, 1, rec0.shortlist)  # stage-1 scores of each shortlist
    spread[label] = float((top_s1.max(1).values - top_s1.min(1).values).median())
random_order = {lab: recall[SECOND[lab][0]] / rerank_k for lab in SECOND}
print(
    f"Median spread of the stage-1 scores within a shortlist (first seed, max - min over the top {rerank_k}): "
    + ", ".join(f"{k} {v:.3f}" for k, v in spread.items())
    + f". A random order of the shortlist would give R@1 = shortlist recall / {rerank_k}: "
    + ", ".join(f"{k} {v:.1f}" for k, v in random_order.items())
    + "."
)

# %% [markdown]
# **Twins.** Stage 1's twin accuracy per factor (mean over seeds), and the **re-ranker's matching score alone** on
# the same twin pairs (the gold video against its twin, one factor apart): does the cross-encoder see what stage 1
# misses? 50 % is chance or a tie.

# %%
if eval_fn is None:
    print("skipped: this dataset has no twins (a synthetic-benchmark feature)")
else:
    tw1 = twin_accuracy_over_seeds(stage1)
    rr_twin_rows = []
    for label, ts in trained.items():
        for s, t in ts.items():
            ev = evaluate_twins(t.reranker, texts, videos, test, method=label, n_boot=S.n_boot, seed=seed)
            for r in ev.twins.itertuples():
                rr_twin_rows.append({"head": f"{label} (matching score)", "seed": s, "factor": r.factor, "accuracy": r.accuracy})
    tw2 = pd.DataFrame(rr_twin_rows).pivot_table(index="head", columns="factor", values="accuracy", aggfunc="mean", sort=False)
    twins_table = pd.concat([tw1, tw2[tw1.columns]])
    display(twins_table.round(1).rename(columns=lambda f: f"{f} twins (%)"))
    print(
        f"The re-rankers' matching scores win {tw2['all'].min():.1f}-{tw2['all'].max():.1f} % of all twins (stage 1: "
        f"{tw1['all'].min():.1f}-{tw1['all'].max():.1f} %; 50 % is chance): on one-factor differences the matching "
        "score is " + ("close to a coin toss." if tw2["all"].max() < 55 else "better than chance.")
    )

# %% [markdown]
# **Is it the budget?** The quick budget stops most re-rankers after a few epochs of 20 steps. A separate benchmark
# (`python benchmarks/reranker_budget.py`, about 10 minutes, too long for this notebook) trains one re-ranker per size
# on the first seed's CLIP4Clip stage 1 for 8 epochs of 60 steps (480 steps: 3 times this notebook's maximum of 160,
# about 1.3 passes over the 12,000 training captions) **without early stopping**, and reports validation R@1 of the re-ranked shortlist after
# every epoch beside stage 1 alone on the same validation queries, then test R@1 (the same 300 queries) with the best
# validation epoch, and the matching score's twin accuracy. Its committed results:

# %%
from tvrlib.paths import PROJECT_ROOT  # noqa: E402

prior = -(np.log(1 / 3) / 3 + 2 / 3 * np.log(2 / 3))  # one positive and two negatives per caption: the label share
budget_csv = PROJECT_ROOT / "results" / "quick" / "rerank_budget.csv"
budget = pd.read_csv(budget_csv) if budget_csv.exists() and profile == "quick" else None
if budget is None:
    print(f"skipped: {budget_csv.relative_to(PROJECT_ROOT)} is missing or this is not the quick profile")
else:
    print(f"from {budget_csv.relative_to(PROJECT_ROOT)} (written {budget['when'].iloc[0]}, {budget['machine'].iloc[0]})")
    curve = budget[budget["kind"] == "epoch"].pivot(index="steps", columns="config", values="val_R1_reranked")
    curve["stage 1 alone"] = budget["val_R1_stage1"].iloc[0]
    display(curve.round(1))
    final = budget[budget["kind"] == "final"].set_index("config")
    cols = ["epoch", "val_R1_reranked", "val_R1_stage1", "test_R1_stage1", "test_R1_reranked"]
    cols += [c for c in final.columns if c.startswith("twin_")]
    display(final[cols].round(1))
    print(
        "Last training loss: "
        + ", ".join(f"{c} {f['train_loss']:.3f}" for c, f in final.iterrows())
        + f"; a matcher that only knows the label share (1 positive in 3 pairs) scores {prior:.3f}."
    )

# %% [markdown]
# **Is it the negatives?** Training the re-ranker needs negative pairs. The paper's recipe draws each caption's
# negative video (and each video's negative caption) from the batch at random, with probability proportional to
# $\exp(s / \tau)$, where $s$ is stage 1's similarity and $\tau$ a *sampling temperature*; it uses stage 1's own
# $\tau = 0.01$, which puts nearly all the probability on the most similar pairs. On this benchmark many videos have
# a twin that differs in one factor (order, direction or detail), so at 0.01 the negatives are the hardest pairs in
# the batch. A second run of the same benchmark (`python benchmarks/reranker_budget.py --configs light --temperatures
# 0.01 0.03 0.1 1 inf --out results/quick/rerank_negatives.csv`, about 25 minutes) trains the light re-ranker on the
# same stage 1 with the same 480 steps, once per $\tau$: a higher $\tau$ gives easier negatives, and `inf` draws
# them uniformly from the batch. The *label share* line is the training loss (2-way cross-entropy) of a matcher that
# always answers 1/3, the share of positives among its pairs (one positive, two negatives per caption): a loss near
# it means nothing was learned. $\tau$ is a training choice, so it is compared on **validation**; the test columns
# are shown for each row, not used to pick one. One training seed: a diagnostic, not a verdict. The verdicts in
# section 5 keep the paper's recipe.

# %%
neg_csv = PROJECT_ROOT / "results" / "quick" / "rerank_negatives.csv"
negs = pd.read_csv(neg_csv) if neg_csv.exists() and profile == "quick" else None
if negs is None:
    print(f"skipped: {neg_csv.relative_to(PROJECT_ROOT)} is missing or this is not the quick profile")
else:
    print(f"from {neg_csv.relative_to(PROJECT_ROOT)} (written {negs['when'].iloc[0]}, {negs['machine'].iloc[0]})")
    negs["τ"] = negs["temperature"].map(lambda t: "inf (uniform)" if np.isinf(t) else f"{t:g}")
    neg_curve = negs[negs["kind"] == "epoch"].pivot(index="steps", columns="τ", values="val_R1_reranked")
    neg_curve["stage 1 alone"] = negs["val_R1_stage1"].iloc[0]
    display(neg_curve.round(1))
    neg_final = negs[negs["kind"] == "final"].set_index("τ")
    cols = ["epoch", "train_loss", "val_R1_reranked", "val_R1_stage1", "test_R1_stage1", "test_R1_reranked"]
    cols += [c for c in neg_final.columns if c.startswith("twin_")]
    display(neg_final[cols].round(3))
    paper_tau = neg_final[neg_final["temperature"] == 0.01].iloc[0]
    best_val = neg_final["val_R1_reranked"].max()
    tied = neg_final[np.isclose(neg_final["val_R1_reranked"], best_val, rtol=0, atol=1e-9)]  # validation's own ties

    def listed(col, fmt="{:.1f}"):
        return ", ".join(fmt.format(v) for v in tied[col])

    print(
        f"On validation, τ = {', '.join(tied.index)} {'tie for' if len(tied) > 1 else 'gives'} the best re-ranked R@1, "
        f"{best_val:.1f}, against {tied['val_R1_stage1'].iloc[0]:.1f} for stage 1 alone and "
        f"{paper_tau['val_R1_reranked']:.1f} at the paper's 0.01"
        + (": validation does not separate them" if len(tied) > 1 else "")
        + (", nor them from stage 1" if np.isclose(best_val, tied["val_R1_stage1"].iloc[0]) else "")
        + f". Last training loss {listed('train_loss', '{:.3f}')} (0.01: {paper_tau['train_loss']:.3f}; the label "
        f"share alone: {prior:.3f}). On test (shown, not used to choose): {listed('test_R1_reranked')} re-ranked "
        f"against {tied['test_R1_stage1'].iloc[0]:.1f} for stage 1 (0.01: {paper_tau['test_R1_reranked']:.1f})"
        + (f"; matching-score twin accuracy {listed('twin_all')} % (0.01: {paper_tau['twin_all']:.1f} %)." if "twin_all" in tied else ".")
    )  # fmt: skip

# %% [markdown]
# **Our hypothesis, on three seeds (stated after the sweep).** With the longer budget, the sweep points at the
# negatives: (1) trained with negatives sampled at $\tau = 1$ instead of stage 1's 0.01, the re-ranker improves its
# stage 1, and (2) it beats the same re-ranker trained on the paper's negatives. These two are **post hoc**, unlike
# the suite's other hypotheses: $\tau = 1$ was picked after the one-seed sweep above, among the values that tie on
# validation (0.1, 1 and uniform), as the middle one; it is also the one with the best test R@1 of the three in that
# sweep (19.0, against 18.7 and 17.7), which we had seen. So seed 0 below repeats a run that guided the choice, and
# seeds 1 and 2 are new runs scored on the same 300 test queries; the cell also prints the verdict's numbers on seeds
# 1 and 2 alone. The same script (`python benchmarks/reranker_budget.py --configs light --temperatures 0.01 1 --seeds
# 0 1 2 --out results/quick/rerank_negatives_by_seed.csv --ranks-out results/quick/rerank_negatives_ranks.csv`, about
# 13 minutes) trains both re-rankers on the same stage 1 (one trained CLIP4Clip, seed 0) for 480 steps and keeps every
# test query's rank. Judged like every hypothesis of the suite: the paired difference over the 300 re-ranked test
# queries (resampled by video) and the re-ranker seeds, with every seed on one side. Stage 1 is one model, the same
# in every pair, so its own training-seed spread is not in these intervals. Validation, per seed, is shown too.

# %%
neg_ranks_csv = PROJECT_ROOT / "results" / "quick" / "rerank_negatives_ranks.csv"
hyp_rows = []
if not (neg_ranks_csv.exists() and profile == "quick"):
    print(f"skipped: {neg_ranks_csv.relative_to(PROJECT_ROOT)} is missing or this is not the quick profile")
else:
    nr = pd.read_csv(neg_ranks_csv)
    nr_seeds = sorted(int(x) for x in nr.loc[nr["variant"] != "stage 1", "seed"].unique())

    def from_ranks(part: pd.DataFrame, label: str, fixed: bool = False) -> HeadRuns:
        """Per-seed test ranks (one row per query) as the HeadRuns that judge() compares; ``fixed``: one model (stage
        1), the same ranks paired with every re-ranker seed."""
        out = HeadRuns("crosstvr", label, P)
        for sd in nr_seeds:
            g = (part if fixed else part[part["seed"] == sd]).sort_values("query")
            ranks_, gold_ = g["rank"].to_numpy(float), g["gold"].to_numpy()
            out.runs.append(SeedRun("crosstvr", label, sd, M.summarize(ranks_), ranks_, gold_, 0, 0, False, np.nan, 0.0))
        return out

    s1_fixed = from_ranks(nr[nr["variant"] == "stage 1"], "CLIP4Clip (stage 1, one model)", fixed=True)
    soft = from_ranks(nr[(nr["variant"] != "stage 1") & (nr["temperature"] == 1.0)], "+ CrossTVR, τ = 1")
    hard = from_ranks(nr[(nr["variant"] != "stage 1") & (nr["temperature"] == 0.01)], "+ CrossTVR, τ = 0.01")
    print(
        "test R@1 per re-ranker seed: "
        + "; ".join(f"{h.label} " + ", ".join(f"{r.metrics['R1']:.1f}" for r in h.runs) for h in (s1_fixed, hard, soft))
    )
    hyp_view = []
    for a_runs, b_runs, text in (
        (soft, s1_fixed, "post hoc: the re-ranker trained on negatives sampled at τ = 1 improves its stage 1 (CLIP4Clip)"),
        (soft, hard, "post hoc: negatives sampled at τ = 1 train a better re-ranker than the paper's τ = 0.01"),
    ):
        row, view = judge(
            a_runs, b_runs, notebook=NB, hypothesis=text, n_boot=S.n_boot, seed=seed,
            note="benchmarks/reranker_budget.py: light re-ranker, 480 steps, one stage-1 model; tau picked after a one-seed sweep",
        )  # fmt: skip
        hyp_rows.append(row)
        hyp_view.append(view)
    display(pd.DataFrame(hyp_view).set_index("hypothesis").round(2))
    by_seed_csv = PROJECT_ROOT / "results" / "quick" / "rerank_negatives_by_seed.csv"
    if by_seed_csv.exists():
        bs = pd.read_csv(by_seed_csv)
        bs = bs[bs["kind"] == "final"].set_index(["temperature", "seed"])
        print("validation (150 queries, 150 videos) and test, per re-ranker seed, at the best validation epoch:")
        display(bs[["epoch", "train_loss", "val_R1_reranked", "val_R1_stage1", "test_R1_reranked", "test_R1_stage1"]].round(2))
    new_seeds = [sd for sd in nr_seeds if sd != 0]  # the runs that did not guide the choice of tau
    if len(new_seeds) >= 2:

        def only(h: HeadRuns) -> HeadRuns:
            return HeadRuns(h.head, h.label, h.protocol, [r for r in h.runs if r.seed in new_seeds])

        for (a_runs, b_runs), v in zip(((soft, s1_fixed), (soft, hard)), hyp_view):
            d_new = paired_difference(only(a_runs), only(b_runs), n_boot=S.n_boot, seed=seed)
            lo, hi = d_new["ci"]
            v["new seeds"] = f"{d_new['delta']:+.1f} [{lo:+.1f}, {hi:+.1f}]" + (", CI reaches 0" if lo <= 0 <= hi else "")
            print(
                f"Seeds {', '.join(map(str, new_seeds))} alone, {v['hypothesis']}: {d_new['delta']:+.1f} R@1 "
                f"[{lo:+.1f}, {hi:+.1f}]" + (" (the CI reaches 0)" if lo <= 0 <= hi else "")
            )

# %% [markdown]
# ## 5. CrossTVR's ablations beside ours
#
# The reported rows (MSR-VTT 9k, t2v; Table 6 is the Large model, ViT-G/14; Tables 8 and 9 the Base model,
# ViT-B/32; row assignments uncertain where the OCR lost the check marks, see `data/paper_tables/README.md`):

# %%
# NBVAL_CHECK_OUTPUT
rep_all = load_paper_table("003")
shown_tables = ["Table 6 (ablation)", "Table 8 (ablation)", "Table 9 (ablation)", "Table 10 (appendix ablation)", "Table 11 (appendix, DSL)"]  # fmt: skip
rep_t2v = rep_all[rep_all["table"].isin(shown_tables) & (rep_all["direction"] == "t2v")]
rep_t2v[["table", "method", "backbone", "R1", "R5", "MnR", "extra"]]

# %% [markdown]
# Each claim "A beats B" is judged on **t2v R@1** (the one primary metric, chosen before the numbers), as the
# direction of the difference, with the paired 95 % CI over the re-ranked test queries *and* training seeds.
# *reproduces*: the CI lies on the paper's side of 0 and every seed agrees; *opposite*: on the other side and every
# seed agrees; otherwise *not significant*. Columns: A − B in R@1 points and its CI over queries *and* seeds; `CI
# (queries only)` resamples the queries alone; `seeds agreeing`: seeds whose own A − B lies on the paper's side (0/3
# with "not significant" means every seed went the other way, but the CI still reaches 0); ΔMnR (A − B in mean rank,
# positive = A worse) is shown, not voted. The caveats go into each claim's reason: a
# synthetic benchmark and a tiny frozen CLIP, a small re-ranker trained from scratch (the paper: BLIP-2's weights),
# `quick`'s budget, and for Table 6 the paper's Large model.
#
# **Table 10** (one vision encoder shared by both stages vs two) is **not judged**: in the paper stage 1 (TS2-Net)
# fine-tunes its own ViT-B/32 and stage 2 reads either that encoder or a second, frozen one. Here every head, stage 1
# included, reads the one frozen encoder's cache: we are always in the "sharing" configuration, and a second frozen
# encoder would be another model, not the paper's ablation. The paper itself reports 49.6 against 49.6 R@1.

# %%
CAVEAT = (
    "directions only (synthetic benchmark, tiny frozen CLIP, this notebook's budget); re-ranker small and trained "
    "from scratch (the paper: BLIP-2's weights, GPUs)"
)
rep = rep_t2v.set_index(["table", "method"])["R1"]
T6, T8, T9, T11 = "Table 6 (ablation)", "Table 8 (ablation)", "Table 9 (ablation)", "Table 11 (appendix, DSL)"
CLAIMS = [  # (table, claim, A, B, paper's A row, paper's B row, extra caveat)
    ("Table 6", "spatial text attention improves on the stage-1 baseline", "TS2-Net + spatial only", "TS2-Net",
     (T6, "baseline + spatial text attention"), (T6, "baseline (TS2-Net, first stage)"),
     "the paper's + rows are its Large model (ViT-G/14) and its baseline ViT-B/32, so its difference includes a "
     "backbone change; the spatial/temporal rows may be swapped (OCR)"),
    ("Table 6", "temporal text attention improves on the stage-1 baseline", "TS2-Net + temporal only", "TS2-Net",
     (T6, "baseline + temporal text attention"), (T6, "baseline (TS2-Net, first stage)"),
     "the paper's + rows are its Large model (ViT-G/14) and its baseline ViT-B/32, so its difference includes a "
     "backbone change; the spatial/temporal rows may be swapped (OCR)"),
    ("Table 6", "spatial + temporal beats spatial only", "TS2-Net + CrossTVR", "TS2-Net + spatial only",
     (T6, "spatial+temporal (full CrossTVR Large)"), (T6, "baseline + spatial text attention"),
     "the paper's rows are its Large model"),
    ("Table 6", "spatial + temporal beats temporal only", "TS2-Net + CrossTVR", "TS2-Net + temporal only",
     (T6, "spatial+temporal (full CrossTVR Large)"), (T6, "baseline + temporal text attention"),
     "the paper's rows are its Large model"),
    ("Table 8", "the re-ranker improves CLIP4Clip", "CLIP4Clip + CrossTVR", "CLIP4Clip",
     (T8, "CLIP4Clip+CrossTVR"), (T8, "CLIP4Clip"), ""),
    ("Table 8", "the re-ranker improves TS2-Net", "TS2-Net + CrossTVR", "TS2-Net",
     (T8, "TS2Net+CrossTVR"), (T8, "TS2Net"), ""),
    ("Table 8", "the re-ranker improves X-Pool", "X-Pool + CrossTVR", "X-Pool",
     (T8, "Xpool+CrossTVR"), (T8, "Xpool"), ""),
    ("Table 9", "sharing the spatial and temporal parameters beats separate ones", "TS2-Net + CrossTVR",
     "TS2-Net + CrossTVR unshared", (T9, "sharing parameters"), (T9, "unshared parameters"), ""),
]  # fmt: skip
missing = [(a, b) for *_, a, b, _c in CLAIMS for x in (a, b) if x not in rep.index]
assert not missing, f"paper rows not found: {missing}; tables: {sorted(rep_t2v['method'])}"
claim_rows, claim_view = [], []
for table, claim, a_lab, b_lab, pa, pb, extra in CLAIMS:
    row, view = judge(
        results[a_lab], results[b_lab], notebook=NB, paper="CrossTVR", table=table, claim=claim,
        paper_difference=rep.loc[pa] - rep.loc[pb], note="; ".join(x for x in (CAVEAT, extra) if x),
        n_boot=S.n_boot, seed=seed,
    )  # fmt: skip
    claim_rows.append(row)
    claim_view.append(view)
display(pd.DataFrame(claim_view).drop(columns=["paper"]).set_index(["table", "claim"]).round(1))

# %% [markdown]
# ## 6. The re-rank number K (Figure 4) and the time it costs (Table 8)
#
# The paper's Figure 4 plots R@5 and R@10 against $K = 2 \dots 19$ and picks $K = 15$. Ours, from the runs above
# (re-combined per $K$ = 0, 1, …, 19, mean over seeds with the seeds' range shaded; $K = 0$ is stage 1 alone; at
# $K = 1$ the re-ranker cannot change R@1, and a small change there comes from the tie rule):

# %%
K_GRID = list(range(0, sweep_k + 1))
sweep_rows = []
for label in ["TS2-Net + CrossTVR", "CLIP4Clip + CrossTVR", "X-Pool + CrossTVR"]:
    for k_ in K_GRID:
        for r in runs_at(swept[label], k=k_).runs:
            sweep_rows.append({"head": label, "K": k_, "seed": r.seed, **{m_: r.metrics[m_] for m_ in ("R1", "R5", "R10")}})
sweep = pd.DataFrame(sweep_rows)
fig, axes = figure("09_rerank_k_sweep", profile, width=11, height=3.4, ncols=3, layout="constrained")
for ax, metric in zip(axes, ["R1", "R5", "R10"]):
    for label, grp in sweep.groupby("head", sort=False):
        agg = grp.groupby("K")[metric].agg(["mean", "min", "max"])
        ax.plot(agg.index, agg["mean"], marker="o", ms=3, label=label)
        ax.fill_between(agg.index, agg["min"], agg["max"], alpha=0.15)
    ax.axvline(rerank_k, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("K (videos re-ranked per caption)")
    ax.set_title(f"t2v {metric} (%)", fontsize=9)
axes[0].legend(fontsize=7)
save_figure(fig)
best_k = sweep[sweep["head"] == "TS2-Net + CrossTVR"].groupby("K")["R1"].mean()
print(
    f"TS2-Net + CrossTVR, mean R@1 over seeds: K = 0 (stage 1) {best_k.loc[0]:.1f}, K = {rerank_k} "
    f"{best_k.loc[rerank_k]:.1f}, best K = {int(best_k.idxmax())} ({best_k.max():.1f})."
)

# %% [markdown]
# **Time per query.** Table 8 reports 7–12 s for one text against 1,000 videos (encoding included) and +0.15–0.21 s
# for re-ranking 15 of them; its hardware is not stated. Ours, measured in this run on the same cached features
# (stage 1: scoring the whole gallery for the test queries; stage 2: the re-ranker on $K$ = 15 pairs per query, one
# thread, the first seed's heads):

# %%
times = []
qt = texts.index(torch.as_tensor(np.asarray(test_src.query_index)[q_sel]))
for label, hr in stage1.items():
    t0 = time.perf_counter()
    s1_scores = score_all(hr.runs[0].trained, qt, videos)
    times.append({"head": label, "stage": "stage 1 (whole gallery)", "ms per query": 1e3 * (time.perf_counter() - t0) / len(q_sel)})  # fmt: skip
for label in SECOND:
    rec = runs_at(swept[label], k=rerank_k).runs[0].evaluation  # its seconds: the K = sweep_k pass scaled to K pairs
    times.append({"head": label, "stage": f"re-rank K = {rerank_k}", "ms per query": 1e3 * rec.seconds / len(q_sel)})
times = pd.DataFrame(times)
display(times.round(2))
print(
    f"Gallery: {len(test.videos)} videos. The re-ranking time is measured for K = {sweep_k} pairs per query and "
    f"scaled to K = {rerank_k} (the cost is linear in the pairs)."
)

# %% [markdown]
# **Dual softmax** (appendix Tables 11–14; method card 9): $S \odot \mathrm{softmax}(S / \tau)$ over the captions,
# $\tau = 0.01$, applied to the stage-1 scores before the shortlist (so it also chooses the top $K$). **Transductive**:
# every score is revised with a prior computed over all test queries together, which a deployed system answering one
# query at a time does not have. Reported for CrossTVR on MSR-VTT (Table 11, Base) and judged here on TS2-Net +
# CrossTVR, with and without DSL (same re-rankers, same queries):

# %%
show_source(dual_softmax)
dsl_label = "TS2-Net + CrossTVR + DSL (transductive)"
results[dsl_label] = runs_at(
    rerank_runs(stage1["TS2-Net"], trained["TS2-Net + CrossTVR"], test_src, k=rerank_k, matching=matching,
                dsl_temperature=0.01, queries=q_sel),
    k=rerank_k, label=dsl_label,
)  # fmt: skip
row, view = judge(
    results[dsl_label], results["TS2-Net + CrossTVR"], notebook=NB, paper="CrossTVR", table="Table 11",
    claim="dual softmax (transductive) improves CrossTVR",
    paper_difference=rep.loc[(T11, "CrossTVR (Base) + DSL")] - rep.loc[(T11, "CrossTVR (Base)")],
    note=CAVEAT + "; DSL is transductive (a prior over all test queries)", n_boot=S.n_boot, seed=seed,
)  # fmt: skip
claim_rows.append(row)
claim_view.append(view)
display(pd.DataFrame([view]).drop(columns=["paper"]).set_index(["table", "claim"]).round(1))
dsl_alone = rerank_runs(stage1["TS2-Net"], None, test_src, k=0, dsl_temperature=0.01, queries=q_sel)
dsl_r1 = np.mean([r.metrics["R1"] for r in dsl_alone.runs])
print(
    f"DSL on TS2-Net's stage 1 alone (no re-ranker, same queries): mean R@1 {dsl_r1:.1f} against "
    f"{np.mean([r.metrics['R1'] for r in base['TS2-Net'].runs]):.1f} without (shown, not judged). With the "
    "re-ranker, DSL also shrinks the stage-1 scores that p is added to, so the two effects are not separable here."
)

# %% [markdown]
# ## 7. What the queries look at
#
# The spatial pass's cross-attention weights of the first seed's trained `TS2-Net + CrossTVR` re-ranker, averaged over
# its queries (and heads), for one test caption and its gold video. Each frame's memory is its CLS token and its
# patch tokens; the tiny CLIP's 4 "patch" tokens are the 2 × 2 cells of its attention pool's feature map, so each
# frame is drawn with its four cells shaded by their weight and the CLS weight above it. The caption is a **detail
# twin** query where there is one (its twin video differs in one detail), the kind of query a frame-level view can
# miss.

# %%
rr0 = trained["TS2-Net + CrossTVR"][P.seeds[0]].reranker
data_texts = list(test.texts)
qi = np.asarray(test.query_index)
if caption is not None:
    ci = int(caption)
elif "twin_of_query" in test.meta and "twin_factor_of_query" in test.meta:
    factors_q = np.asarray(test.meta["twin_factor_of_query"], dtype=object)
    detail = [int(qi[j]) for j in range(len(qi)) if factors_q[j] == "detail"]
    ci = detail[0] if detail else int(qi[0])
else:
    ci = int(qi[0])
vid = int(test.text_to_video[ci])
with torch.no_grad():
    w_sp = rr0.spatial_attention(S.texts("test", with_words=True).index(torch.tensor([ci])), videos.index(torch.tensor([vid])))[0]
w_sp = w_sp.mean(1).numpy()  # [F, 1 + P]: mean over the queries
print(f"caption {ci}: {data_texts[ci]!r} (gold video {vid})")
grid = int(round(np.sqrt(n_patch)))
if grid * grid == n_patch and "path" in dir(test.videos[vid]):
    from tvrlib.video import sample_frames

    frames, fmask = sample_frames(test.videos[vid].path, num_frames=F_, size=96)
    fig, axes = figure("09_spatial_attention", profile, width=12, height=2.2, ncols=F_, layout="constrained")
    vmax = float(w_sp[:, 1:].max())
    for f, ax in enumerate(axes):
        ax.imshow(frames[f])
        cells = w_sp[f, 1:].reshape(grid, grid)
        im = ax.imshow(cells, cmap="magma", alpha=0.6, vmin=0, vmax=vmax, extent=(0, 96, 96, 0))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{f}: CLS {w_sp[f, 0]:.2f}", fontsize=7)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="patch weight (one scale for all frames)")
    save_figure(fig)
else:
    print("skipped the drawing: patch tokens are not a square grid here; the weights per frame [CLS, patches]:")
    display(pd.DataFrame(w_sp).round(2))
share_cls = float(w_sp[:, 0].mean())
uniform_w = 1 / (1 + n_patch)
print(
    f"Mean weight on the CLS token {share_cls:.2f} and on the {n_patch} patch tokens {1 - share_cls:.2f} "
    f"(uniform: {uniform_w:.2f} each); the largest single patch weight {float(w_sp[:, 1:].max()):.2f}"
    + (
        f", less than {1.5 * uniform_w:.2f} (1.5 x uniform): averaged over queries and heads the attention is spread "
        "almost evenly (single queries may still focus; this average cannot show it)."
        if float(w_sp[:, 1:].max()) < 1.5 * uniform_w
        else "."
    )
)

# %% [markdown]
# ## 8. Two stages at scale
#
# The target: a 100,000-video gallery, stage 1 searched exactly in blocks (and approximately with FAISS where
# it helps), then the re-ranker on the top 15, **≤ 20 ms per query end to end on two CPU cores**. That is a benchmark,
# not a notebook run (`python benchmarks/reranking.py --part scale`; synthetic features in quick's shapes, cached as
# memory-mapped files); this section draws its committed results (`results/quick/rerank_scale.csv`).

# %%
scale_csv = PROJECT_ROOT / "results" / "quick" / "rerank_scale.csv"  # committed by the benchmark, not this run
if not scale_csv.exists():
    print(f"skipped: {scale_csv} is missing; run `python benchmarks/reranking.py --part scale` to write it")
else:
    scale = pd.read_csv(scale_csv)
    print(f"benchmark run {scale['when'].iloc[0]} ({scale['machine'].iloc[0]}, {scale['threads'].iloc[0]} threads)")
    show = ["gallery", "method", "config", "stage1_ms_per_query", "rerank_ms_per_query", "end_to_end_ms_per_query",
            "meets_20ms", "recall_at_k", "search_peak_MiB", "rerank_peak_MiB", "gallery_disk_MiB"]  # fmt: skip
    display(scale[[c for c in show if c in scale.columns]].round(3))
    fig, axes = figure("09_scale", profile, width=11, height=3.4, ncols=2, layout="constrained")
    for (method, config), grp in scale.groupby(["method", "config"], sort=False):
        grp = grp.sort_values("gallery")
        axes[0].plot(grp["gallery"], grp["end_to_end_ms_per_query"], marker="o", label=f"{method}, {config} re-ranker")
    for method, grp in scale.groupby("method", sort=False):
        grp = grp.drop_duplicates("gallery").sort_values("gallery")
        axes[1].plot(grp["gallery"], grp["search_peak_MiB"], marker="o", label=f"{method} search")
    axes[1].legend(fontsize=7)
    axes[0].axhline(20, color="crimson", lw=0.8, ls="--")
    axes[0].set_ylabel("ms per query, end to end")
    axes[1].set_ylabel("peak memory of the search (MiB)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("gallery (videos)")
    axes[0].legend(fontsize=7)
    save_figure(fig)
    biggest = scale[scale["gallery"] == scale["gallery"].max()]
    for r in biggest.itertuples():
        print(
            f"{r.gallery:,} videos, {r.method} search, {r.config} re-ranker: {r.end_to_end_ms_per_query:.1f} ms per "
            f"query end to end ({'meets' if r.meets_20ms else 'misses'} 20 ms); the search's recall@15 against the "
            f"exact top 15: {r.recall_at_k:.2f} (not section 4's gold-in-shortlist recall)."
        )
    rr_spread = scale.groupby("config")["rerank_ms_per_query"].agg(["min", "max"])
    print(
        "The re-ranking time does not depend on the gallery size, yet it varies between rows: "
        + ", ".join(f"{c} {r['min']:.1f}-{r['max']:.1f} ms" for c, r in rr_spread.iterrows())
        + ". A row within that spread of 20 ms is at the limit, whichever side it falls."
    )

# %% [markdown]
# ## 9. Saving the results
#
# Per-seed test metrics of every head and two-stage system, the K sweep, the times and the twin accuracies go to
# `results/<profile>/crosstvr*.csv`; the claims to `claims.csv` (judged here and nowhere else).

# %%
paths = [S.save("crosstvr_seeds", pd.DataFrame(seed_rows(results)).assign(experiment="crosstvr_seeds", protocol=P.describe(), reranker=str(RR), rerank_config=str(RCFG)))]  # fmt: skip
paths.append(S.save("crosstvr_k_sweep", sweep.assign(experiment="crosstvr_k_sweep")))
paths.append(S.save("crosstvr_times", times.assign(experiment="crosstvr_times")))
paths.append(S.save("crosstvr_training", rr_rows.assign(experiment="crosstvr_training")))
if eval_fn is not None:
    tw_rows = twin_seed_rows("crosstvr_twins", stage1) + [
        {"experiment": "crosstvr_twins", **r} for r in rr_twin_rows
    ]
    paths.append(S.save("crosstvr_twins", tw_rows))
paths += list(save_claims(claim_rows + hyp_rows, S.profile).values())
print("\n".join(str(p.relative_to(p.parents[2])) for p in paths))

# %% [markdown]
# ## What we found
#
# Every sentence below is printed from this run's numbers.

# %%
r1 = summary[summary["metric"] == "R1"].set_index("head")
print(
    f"Test t2v R@1 on {n_rr} re-ranked queries, mean ± std over {len(P.seeds)} training seeds: "
    + "; ".join(f"{h} {r['mean']:.1f} ± {r['std']:.1f}" for h, r in r1.iterrows())
    + "."
)
for c in claim_view:
    print(
        f"[CrossTVR {c['table']}] {c['claim']}: ours {c['ours ΔR1']:+.1f} {c['95% CI']} R@1 "
        f"(paper {c['paper ΔR1']:+.1f}), {c['seeds agreeing']} seeds agreeing -> {c['verdict']}."
    )
for c in claim_view:
    if c["verdict"] == "opposite":
        print(
            f"Surprise: ours goes the other way for {c['table']} '{c['claim']}'. We have not established why; the "
            "differences named in the claim's reason (a small re-ranker trained from scratch, the quick budget) are "
            "candidate causes, and so are the paper's hard negatives: section 4 shows a re-ranker trained from scratch "
            "learning once its negatives are easier and its budget longer."
        )
for label in ["TS2-Net + CrossTVR", "CLIP4Clip + CrossTVR", "X-Pool + CrossTVR"]:
    by_k = sweep[sweep["head"] == label].groupby("K")["R1"].mean()
    print(
        f"{label}: mean R@1 {by_k.loc[0]:.1f} at K = 0 (stage 1), {by_k.loc[rerank_k]:.1f} at K = {rerank_k}, "
        f"{by_k.loc[sweep_k]:.1f} at K = {sweep_k}; best K = {int(by_k.idxmax())}."
    )
print(
    "With the log-odds added, R@1 is "
    + ", ".join(f"{k} {by_matching.loc[k, 'logit']:.1f}" for k in SECOND)
    + "; a random order of each shortlist would give "
    + ", ".join(f"{v:.1f}" for v in random_order.values())
    + ": compare the two to see how much the matching score's own order is worth inside the shortlist."
)
print(
    "Shortlist recall at K = 15 (the ceiling of any re-ranker): "
    + ", ".join(f"{lab} {v:.1f} %" for lab, v in recall.items()) + "."
)
print(
    f"Adding the {matching} vs the {alt}: mean R@1 "
    + "; ".join(f"{lab} {r[matching]:.1f} vs {r[alt]:.1f}" for lab, r in by_matching.iterrows()) + "."
)
ms = times.set_index(["head", "stage"])["ms per query"]
print(
    f"Time per query on this machine: stage 1 over {len(test.videos)} videos "
    + ", ".join(f"{h} {ms[(h, 'stage 1 (whole gallery)')]:.2f} ms" for h in STAGE1.values())
    + f"; re-ranking K = {rerank_k} with TS2-Net + CrossTVR {ms[('TS2-Net + CrossTVR', f're-rank K = {rerank_k}')]:.1f} ms."
)
if eval_fn is not None:
    print(
        f"Twins: the re-rankers' matching scores alone win {tw2['all'].min():.1f}-{tw2['all'].max():.1f} % of all twin "
        f"pairs (50 % is chance; stage 1 {tw1['all'].min():.1f}-{tw1['all'].max():.1f} %)."
    )
if budget is not None:
    for cfg_name, f in final.iterrows():
        print(
            f"Longer budget ({cfg_name} re-ranker, {int(f['steps'])} steps without early stopping, benchmark): best "
            f"validation R@1 {f['val_R1_reranked']:.1f} vs stage 1 {f['val_R1_stage1']:.1f}; test R@1 "
            f"{f['test_R1_reranked']:.1f} vs stage 1 {f['test_R1_stage1']:.1f}"
            + (f"; matching-score twin accuracy {f['twin_all']:.1f} %" if "twin_all" in f else "")
            + f"; last training loss {f['train_loss']:.3f} against {prior:.3f} for the label share alone."
        )
    near_prior = bool((final["train_loss"] > prior - 0.05).all())
    if (final["val_R1_reranked"] < final["val_R1_stage1"]).all():
        print(
            "Even with the longer budget no re-ranker beats stage 1 on validation"
            + (
                ", and the training loss stays within 0.05 of what the label share alone gives: trained from scratch "
                "on this benchmark, the cross-encoder has hardly learned to match"
                if near_prior
                else ""
            )
            + " (the paper starts its cross attention from BLIP-2's pretrained weights). Every verdict above carries "
            "this caveat; "
            + ("the negatives check below asks whether the hard negatives are why." if negs is not None else "why is not established here.")
        )
if negs is not None:
    print(
        f"Easier negatives (benchmark, light re-ranker, 480 steps, one training seed): on validation the best "
        f"re-ranked R@1 is {best_val:.1f} (τ = {', '.join(tied.index)}; stage 1 alone {tied['val_R1_stage1'].iloc[0]:.1f}, "
        f"the paper's 0.01 {paper_tau['val_R1_reranked']:.1f}); the last training loss falls to "
        f"{tied['train_loss'].min():.3f}-{tied['train_loss'].max():.3f} (0.01: {paper_tau['train_loss']:.3f}; label "
        f"share {prior:.3f}), and test R@1 is {tied['test_R1_reranked'].min():.1f}-{tied['test_R1_reranked'].max():.1f} "
        f"against {tied['test_R1_stage1'].iloc[0]:.1f} for stage 1 (0.01: {paper_tau['test_R1_reranked']:.1f}), "
        "shown, not used to choose" + ("; validation does not separate these temperatures from stage 1." if np.isclose(best_val, tied["val_R1_stage1"].iloc[0]) else ".")
    )  # fmt: skip
for v in hyp_view if hyp_rows else []:
    print(
        f"Our hypothesis (benchmark ranks, {len(nr_seeds)} re-ranker seeds, one stage-1 model): {v['hypothesis']}: "
        f"{v['ours ΔR1']:+.1f} R@1 {v['95% CI']}, {v['seeds agreeing']} seeds agreeing -> {v['verdict']}"
        + (f"; on the seeds that did not guide the choice alone: {v['new seeds']}." if "new seeds" in v else ".")
    )
s1_ms = max(ms[(h, "stage 1 (whole gallery)")] for h in STAGE1.values())
print(
    f"Re-ranking 15 videos costs {ms[('TS2-Net + CrossTVR', f're-rank K = {rerank_k}')] / s1_ms:.1f}x the slowest "
    "stage 1 here, where the paper adds about 2 % (0.15 s on 7-8 s): our stage 1 reads cached video features, the "
    "paper's 7-8 s include encoding the gallery."
)
print(f"Time: stage 1 training {stage1_seconds:.0f} s, stage 2 training {stage2_seconds:.0f} s, re-ranking {rerank_seconds:.0f} s.")
