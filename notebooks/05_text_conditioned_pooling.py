# %% [markdown]
# # 05 · Text-conditioned pooling: X-Pool, cross-modal attention aggregation, top-K frames
#
# Mean pooling (notebook 03) turns a video into one vector *before* it sees the caption. A caption that describes
# only one event of a four-event video is then compared with an average in which that event is a quarter of the
# signal. **Text-conditioned pooling** lets the caption choose: it attends over the frames, with the caption as the
# query, and pools each video *once per caption*.
#
# **What you will learn here**
#
# * the **cross-modal attention aggregation** of CrossAttnGL ([docs/papers.md](../docs/papers.md); section 4.2,
#   eqs. 4.5–4.9) as the paper describes it, its two baselines from the paper's Table 2 (**Mean**, **Self-Att**),
#   **X-Pool**'s pooling block, and TopKTemporal's **top-K frames** (our reading of a paper that gives only tables);
# * why these heads are expensive to evaluate (one pooled video per caption–video pair: a `[T, V, D]` tensor) and
#   how to evaluate them in **bounded memory**, and for a linear attention pool **without any pooled vector** (the
#   Gram-matrix path);
# * how to compare trained heads honestly: one training protocol for every head (`tvrlib.experiment`), several
#   training seeds, early stopping on validation, paired confidence intervals, and verdicts that say what they mean;
# * where text-conditioned pooling helps on our benchmark and where it does not (our own hypotheses about captions
#   that describe one event), and what its attention looks at;
# * CrossAttnGL Table 2 and TopKTemporal Tables 4–5 beside our numbers, each claim judged once, here.
#
# **On real data:** `python -m tvrlib run-notebooks --profile msrvtt --out results/msrvtt/executed notebooks/05_text_conditioned_pooling.ipynb`
# (or `msrvtt-7k`, `msvd`, `lsmdc`, `didemo`, `activitynet`); the data, the weights and the exact commands are in
# `docs/reproduce-real-data.md`. Sections that need the synthetic benchmark print "skipped" there.

# %% tags=["parameters"]
profile = "quick"  # quick | full | msrvtt
dataset = None  # None: take it from the profile (also for clip_model, pretrained)
clip_model = None
pretrained = None
device = "auto"
seed = 0  # the first training seed (the others follow: seed + 1, ...) and the bootstrap seed
# the training protocol (tvrlib.experiment); None: the profile's, except where this notebook's quick budget differs
seeds = None  # training seeds per head; None: the profile's (quick 3, full 5)
batch_size = None  # captions per step; None: quick 64 (see section 6), otherwise the profile's
steps_per_epoch = None  # steps between two validation checks; None: quick 40, otherwise a full pass (0: a full pass)
max_epochs = None  # None: quick 8, otherwise the profile's
patience = None  # early-stopping patience in epochs; None: quick 2, otherwise the profile's
# the TopKTemporal Table 5 baseline row is CLIP4Clip (seqTransf); it is trained under the same protocol for that claim
baseline_head = "seqTransf"
browse_caption = None  # section 8: the caption (index into the test split's captions) the browser shows; None: the
# first single-event query
interactive = False  # section 8: True gives a caption box and live top-5 lists (needs a running kernel, not papermill)
# the heads trained and compared, by registered name: any name in HEADS.names() works (HEADS.describe() lists them).
# CrossAttnGL Table 2 needs meanP, self_attention_aggregation and cross_modal_aggregation; TopKTemporal Table 5
# needs a top-K head with and without temporal encoding (topK{K} and topK{K}-noTE, same K)
heads = ["meanP", "self_attention_aggregation", "cross_modal_aggregation", "xpool", "topK4", "topK4-noTE"]
Ks = [1, 2, 4, 6, 8, 10, 12]  # TopKTemporal Table 4; each K trains the registered head topK{K}
eval_max_bytes = 64 * 2**20  # working-memory budget of one block of (text, video) pairs
threads = 1  # torch threads; None: the session's default (up to 4). 1 is fastest on cores shared with other jobs
# (measured on the 2-core CI machine under load 8: a Self-Att training step 40 ms with 1 thread, 150 ms with 2)

# %%
import math
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import display
from torch import nn

from tvrlib import metrics as M
from tvrlib.diagnostics import has_video_specs
from tvrlib.evaluation import evaluate, evaluation_rows, summary_frame
from tvrlib.experiment import paired_difference, run, run_heads, seed_rows, setup, subset_runs, summarise_seeds
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.cross_modal_aggregation import CrossModalAggregation
from tvrlib.heads.gram import pooled_cosine_gram, pooled_cosine_materialised
from tvrlib.heads.mean_pooling import MeanPooling
from tvrlib.heads.scoring import block_shape
from tvrlib.heads.self_attention_aggregation import SelfAttentionAggregation
from tvrlib.heads.topk_frames import TopKFrames, top_k_mask
from tvrlib.heads.xpool import XPool
from tvrlib.paper_tables import load_paper_table, record_claim, record_hypothesis, save_claims
from tvrlib.partial_relevance import event_attention_mass, gold_frame_weights
from tvrlib.reporting import figure, results_rows, save_figure, show_source, versions
from tvrlib.synthetic.events import sampled_frame_events
from tvrlib.video import sample_frames

NB = "05_text_conditioned_pooling"
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)
B = setup(  # the session, the training settings, the shared protocol and the three splits' features
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
)
S, T = B.session, B.settings
# P: the shared protocol (CLIP's own temperature, the profile's budget) with this notebook's quick budget (section 6
# says why); a parameter that is set wins
P = B.budget(
    "sentence",
    reason="notebook 05's quick budget: interaction heads cost B^2 per step, 5 of them x the seeds in ~10 min",
    batch_size=batch_size,
    steps_per_epoch=steps_per_epoch,
    max_epochs=max_epochs,
    patience=patience,
)
train, val = B.train, B.val
test_src = B.test  # what tvrlib.experiment ranks: the t2v queries vs every video
test = S.data("test")
texts, videos = S.texts("test"), S.videos("test")  # every caption, every video of the test split
queries, gold = S.queries("test")  # the t2v queries and their gold videos
q_index = torch.as_tensor(test.query_index)
D, F_ = videos.frames.shape[-1], videos.frames.shape[1]
kind = np.array(test.meta.get("kind_of_query", ["video"] * len(gold)))
has_events = bool((kind == "event").any()) and has_video_specs(test)
print(
    f"test: {len(test.videos)} videos, {len(texts)} captions, {len(gold)} t2v queries "
    f"({int((kind == 'event').sum())} describe a single event); features D = {D}, {F_} frames per video"
)
print(P.describe())
per_epoch = min(len(train), (P.max_steps_per_epoch or len(train)) * P.batch_size)
print(
    f"an epoch here: {per_epoch:,} of the {len(train):,} training captions ({per_epoch / len(train):.0%} of a pass), "
    f"then a validation check on {len(val.query_index):,} validation queries"
)
print(
    f"temperature: starts from the CLIP encoder's own learned value, exp({P.logit_scale:.3f}) = "
    f"{math.exp(P.logit_scale):.1f}, as CLIP4Clip and X-Pool (and notebooks 03-04) do; earlier versions of this "
    f"notebook started from CLIP's initial ln(1/0.07), i.e. {1 / 0.07:.1f}."
)
versions().T

# %% [markdown]
# ## 1. CrossAttnGL: cross-modal attention aggregation (eqs. 4.5–4.9)
#
# The caption embedding $E_t$ is the **query**, the frame embeddings $E_{f_1}, \dots, E_{f_n}$ ($\mathrm{Set}_F$) give
# the **keys** and the **values**:
#
# $$Q_t = W_Q E_t \;(4.5), \qquad K_F = W_K\,\mathrm{Set}_F \;(4.6), \qquad V_F = W_V\,\mathrm{Set}_F \;(4.7), \qquad
# S = \mathrm{softmax}\!\Big(\frac{Q_t K_F^\top}{\sqrt{d_a}}\Big)\,V_F \;(4.8)$$
#
# and eq. 4.9 writes the video embedding as $E_V = S_1 E_{f_1} + \dots + S_n E_{f_n}$. The video embedding now
# depends on the caption: one pooled video per caption–video pair, scored by $\cos(E_t, E_V)$.
#
# **Eqs. 4.8 and 4.9 disagree.** Eq. 4.8 multiplies the softmax weights by the *values* $V_F$, which already gives a
# pooled vector; eq. 4.9 uses the same weights on the *raw* frames $E_f$. The text ("the attention scores are used to
# weight the value vectors") and the Model Settings (a $W_V$, an FC layer) side with 4.8, so **we pool the values and
# read the raw $E_f$ of 4.9 as a misprint** (docs/papers.md, errata). What `cross_modal_aggregation` computes:
#
# $$w_f = \mathrm{softmax}_f\Big(\frac{(W_Q E_t + b_Q)\cdot(W_K E_f)}{\sqrt{d_a}}\Big), \qquad
# E_V = \mathrm{Dropout}_{0.3}\Big(\mathrm{FC}\big(\textstyle\sum_f w_f\,(W_V E_f + b_V)\big)\Big), \qquad s = \cos(E_t, E_V)$$
#
# Its defaults and where each comes from (docs/papers.md has the full table):
#
# | setting | default | source |
# |---|---|---|
# | $W_Q, W_K, W_V$ | $d \times d_a$ with $d_a = d$ (512 on ViT-B/32, 128 on our tiny CLIP) | the paper (§4.2, Model Settings) |
# | their initialisation | random (PyTorch's default `nn.Linear` init), biases 0 | the paper ("randomly initialized ... bias values are set to 0"; no distribution named) |
# | what is pooled | the values $W_V E_f$ (eq. 4.8), not the raw $E_f$ of eq. 4.9 | the paper's text; 4.9 read as a misprint |
# | FC layer | one linear $d \to d$ with bias on the pooled value, identity weight and zero bias at the start | the paper (512 units); place and init from X-Pool |
# | dropout | 0.3 on the FC layer's output (training only) | the paper (0.3); placement from X-Pool |
# | LayerNorm, residual | none | the paper has none (X-Pool has both) |
# | score | cosine with the caption's raw $E_t$ | X-Pool; eq. 4.11 also takes $E_t$ |
#
# Two steps make evaluation cheap. The logit $(W_Q q)\cdot(W_K x_f)/\sqrt{d_a}$ equals
# $(W_K^\top W_Q q/\sqrt{d_a})\cdot x_f$: one vector per caption dotted with the frames directly. And the FC layer is
# affine while the weights sum to 1, so $\mathrm{FC}(\sum_f w_f v_f) = \sum_f w_f\,\mathrm{FC}(v_f)$: in eval mode
# (dropout off) the pooled video is a linear weighted sum of per-frame vectors, which section 5 scores without ever
# building it. Untrained, the random $W_V$ scrambles CLIP's joint space (the head is expected to start near chance); the variant
# `cross_modal_aggregation-identity` keeps our earlier reading (eq. 4.9 literally, no $W_V$/FC/dropout, $W_Q = W_K = I$).

# %%
show_source(CrossModalAggregation.encode_text)
show_source(CrossModalAggregation.value_vectors)

# %% [markdown]
# Shapes on a toy input (3 captions, 2 videos of 5 frames, the second with 2 padded frames). Checked by nbval:

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
toy_text = TextInput(torch.randn(3, 16, generator=g))
toy_video = VideoInput(torch.randn(2, 5, 16, generator=g), torch.tensor([[True] * 5, [True] * 3 + [False] * 2]))
torch.manual_seed(0)
cma = CrossModalAggregation(16).eval()  # the paper's reading: random W_Q/W_K/W_V, FC, dropout 0.3 (off in eval)
with torch.no_grad():
    w = cma.frame_weights(toy_text, toy_video)
    print(
        "weights [T, V, F]:",
        tuple(w.shape),
        "| pooled [T, V, D]:",
        tuple(cma.pool(toy_text, toy_video).shape),
        "| scores [T, V]:",
        tuple(cma.score(toy_text, toy_video).shape),
    )
    print("weights sum to 1 over the valid frames:", bool(torch.allclose(w.sum(-1), torch.ones(3, 2))))
    print("padded frames get weight 0:", bool((w[:, 1, 3:] == 0).all()))
    te, ve = cma.encode_text(toy_text), cma.encode_video(toy_video)
    print(
        "folded logits == eq. 4.8 computed literally:",
        bool(torch.allclose(cma.logits_encoded(te, ve), cma.textbook_logits(toy_text, toy_video), atol=1e-5)),
    )
    print(
        "eval mode: FC applied per frame (Gram path) == FC after pooling (materialised):",
        bool(torch.allclose(cma.score_encoded(te, ve, "gram"), cma.score_encoded(te, ve, "materialise"), atol=1e-5)),
    )
    cma.train()
    print(
        "training: dropout 0.3 makes two forward passes differ:",
        not torch.equal(cma.score(toy_text, toy_video), cma.score(toy_text, toy_video)),
    )
    cma.eval()

# %% [markdown]
# ## 2. The baselines of CrossAttnGL's Table 2: Mean and Self-Att
#
# * **Mean** is CLIP4Clip's meanP (notebook 03): the average of the L2-normalised frames. It has no parameters.
# * **Self-Att** "computes aggregation weights without utilizing textual semantic information". The paper gives no
#   equation. Table 2 ablates the aggregation step, so our reading keeps **everything** of the cross-modal head —
#   $W_K$, $W_V$, the FC layer, dropout 0.3, the same initialisation — and removes only the caption from the query:
#   $W_Q E_t + b_Q$ becomes one learned vector $q$ (what is left of eq. 4.5 without the caption, $b_Q$, which starts
#   at 0, so the weights start uniform). Its weights do not depend on the caption, so in eval mode it is a **dual
#   encoder**: every video is embedded once. The variant `self_attention_aggregation-identity` keeps our earlier
#   reading (the same change applied to `cross_modal_aggregation-identity`).
#
# So the Self-Att and Cross-modal rows differ **only** in whether the weights $w_f$ can see the caption. The check
# below builds a cross-modal head with $W_Q = 0$ and $b_Q = q$: it scores exactly like Self-Att. And "uniform
# attention is mean pooling" holds for the **identity** readings only (they pool the unit frames themselves); the
# paper's reading with uniform weights pools $\mathrm{FC}(W_V E_f)$, which is not meanP.

# %%
show_source(SelfAttentionAggregation.embed_video)

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    mean_scores = MeanPooling().score(toy_text, toy_video)
    uniform = HEADS.build("cross_modal_aggregation-identity", dim=16).eval()
    uniform.query.weight.zero_()  # every logit 0 -> uniform weights over the valid frames
    print(
        "cross_modal_aggregation-identity with uniform attention == mean pooling:",
        bool(torch.allclose(uniform.score(toy_text, toy_video), mean_scores, atol=1e-6)),
    )
    sa_identity = HEADS.build("self_attention_aggregation-identity", dim=16).eval()
    print(
        "self_attention_aggregation-identity at initialisation == mean pooling:",
        bool(torch.allclose(sa_identity.score(toy_text, toy_video), mean_scores, atol=1e-6)),
    )
    torch.manual_seed(0)
    sa = SelfAttentionAggregation(16).eval()  # the default: the cross-modal head's W_K, W_V, FC, dropout
    nn.init.normal_(sa.query)  # some learned q
    blind = CrossModalAggregation(16).eval()
    for part in ("key", "value", "fc"):
        getattr(blind, part).load_state_dict(getattr(sa, part).state_dict())
    blind.query.weight.zero_()  # no caption in the query ...
    blind.query.bias.copy_(sa.query)  # ... only b_Q = q
    print(
        "cross-modal with W_Q = 0, b_Q = q == Self-Att (same W_K, W_V, FC):",
        bool(torch.allclose(blind.score(toy_text, toy_video), sa.score(toy_text, toy_video), atol=1e-5)),
    )
    print("Self-Att is a dual encoder (one vector per video in eval mode):", sa.is_dual_encoder)

# %% [markdown]
# ## 3. X-Pool
#
# X-Pool's block adds more machinery around the same idea: one **shared LayerNorm** for caption and frames, query /
# key / value / output projections (all initialised to the **identity**), then LayerNorm, a **residual single linear
# layer** with dropout, and a last LayerNorm. The score is the cosine of the caption's raw embedding with the result.

# %%
show_source(XPool.pool_encoded)

# %%
# NBVAL_CHECK_OUTPUT
xp = XPool(16)
print(
    "projections start as the identity:",
    all(torch.equal(l.weight, torch.eye(16)) for l in (xp.q_proj, xp.k_proj, xp.v_proj, xp.out_proj, xp.linear)),
)
with torch.no_grad():
    print(
        "pooled [T, V, D]:",
        tuple(xp.eval().pool(toy_text, toy_video).shape),
        "| padded frames get weight 0:",
        bool((xp.frame_weights(toy_text, toy_video)[:, 1, 3:] == 0).all()),
    )
    te, ve = xp.encode_text(toy_text), xp.encode_video(toy_video)
    print(
        "moment path (section 5) == pool, then cosine:",
        bool(torch.allclose(xp.score_encoded(te, ve, "gram"), xp.score_encoded(te, ve, "materialise"), atol=1e-5)),
    )

# %% [markdown]
# ## 4. TopKTemporal: the caption's top-K frames
#
# TopKTemporal (Dong et al. 2026) gives only tables: Table 4 sweeps the number of selected frames K and Table 5 compares
# with and without temporal encoding. **Our reading** (documented in `tvrlib/heads/topk_frames.py`): the relevance of a
# frame is the cross-modal attention logit (eq. 4.8 before the softmax); each (caption, video) pair keeps its K most
# relevant frames, softmax over those, and pool them as the cross-modal head does (values $W_V x_f$, FC layer, dropout
# 0.3: the top-K head inherits the paper's reading). Its frames are L2-normalised first, and temporal encoding adds a
# learned position embedding to each (before keys and values), so the pooled video knows *when* things happened. With
# K = all frames the head is the cross-modal head again, on unit frames (checked below).

# %%
show_source(top_k_mask)

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    all_frames = TopKFrames(16, k=5, temporal=False).eval()
    all_frames.load_state_dict(cma.state_dict())
    unit_video = VideoInput(torch.nn.functional.normalize(toy_video.frames, dim=-1), toy_video.mask)
    print(
        "K = number of frames == the cross-modal head on unit frames:",
        bool(torch.allclose(all_frames.score(toy_text, toy_video), cma.score(toy_text, unit_video), atol=1e-6)),
    )
    torch.manual_seed(0)
    w2 = TopKFrames(16, k=2).eval().frame_weights(toy_text, toy_video)
    print("K = 2: non-zero weights per pair =", sorted(set((w2 > 0).sum(-1).flatten().tolist())))

# %% [markdown]
# ## 5. Evaluating every pair in bounded memory
#
# For `T` captions and `V` videos these heads produce `T × V` pooled vectors. X-Pool's reference evaluation builds
# them all at once: a `[V, T, D]` tensor, 2 GB for MSR-VTT's 1,000 × 1,000 × 512 (and out of memory on MSVD, whose
# 670 videos have about 40 captions each). Two remedies:
#
# 1. **blocks** (`tvrlib.heads.scoring`): encode each side once (frame keys, values; caption queries), then score
#    blocks of pairs whose working memory stays under a budget (`score_all(head, text, video, max_bytes=...)`);
# 2. **no pooled vector at all** when the pooled video is a linear attention-weighted sum of frame vectors $u_f$
#    followed by a cosine (eq. 4.9). With $p = \sum_f w_f u_f$:
#
# $$\cos(t, p) = \frac{\sum_f w_f\,(t\cdot u_f)}{\lVert t\rVert\,\sqrt{w^\top G\,w}}, \qquad G = U U^\top \in \mathbb{R}^{F\times F}$$
#
# The numerator needs the caption–frame dot products (one matrix product for all pairs), the norm needs each video's
# 12 × 12 **Gram matrix** of frames, computed once. Per pair we hold a few 12-vectors instead of a 512-vector.
#
# X-Pool's pooled vector goes through LayerNorm, a linear layer and another LayerNorm, so it is not a linear function
# of the frames. But a LayerNorm needs only the mean and the variance of its input, and the variance of
# $\sum_f w_f c_f$ is again a quadratic form $w^	op C w$ in the weights; the linear layer is linear. Nesting the same
# trick three times (`XPool.moment_side`: three small Gram matrices per video) scores X-Pool without any pooled vector
# too, in eval mode (dropout, active in training, breaks it, so training materialises the batch).

# %%
show_source(pooled_cosine_gram)
show_source(XPool.moment_side)

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(1)
t_, u_ = torch.randn(50, 64, generator=g), torch.randn(40, 12, 64, generator=g)
w_ = torch.softmax(3 * torch.randn(50, 40, 12, generator=g), -1)
print(
    "Gram path == materialising path:",
    bool(torch.allclose(pooled_cosine_gram(t_, w_, u_), pooled_cosine_materialised(t_, w_, u_), atol=1e-5)),
)
rows, big, big_xp = [], CrossModalAggregation(512).eval(), XPool(512).eval()
for name, per_pair in [
    ("materialise [T, V, D] at once", 4 * 512),
    ("blocks, materialising", big.pair_bytes(12, 512, "materialise")),
    ("blocks, Gram path", big.pair_bytes(12, 512, "gram")),
    ("X-Pool: blocks, materialising", big_xp.pair_bytes(12, 512, "materialise")),
    ("X-Pool: blocks, moment path", big_xp.pair_bytes(12, 512, "gram")),
]:
    whole = 1000 * 1000 * per_pair if "once" in name else 64 * 2**20
    tc, vc = block_shape(1000, 1000, per_pair, 64 * 2**20)
    rows.append(
        {
            "evaluation": name,
            "bytes per pair": per_pair,
            "pairs per block": 1000 * 1000 if "once" in name else tc * vc,
            "working memory (MiB), 1k x 1k x 512": round(whole / 2**20),
        }
    )
pd.DataFrame(rows).set_index("evaluation")

# %% [markdown]
# The benchmark `benchmarks/text_conditioned_eval.py` measures peak memory and time of all three at 1,000 × 1,000 ×
# 12 × 512 on a CPU (numbers in `docs/performance.md`). Both paths give the same scores; it is checked again on this
# run's trained heads in section 7.
#
# ## 6. Training the heads: one protocol, several seeds
#
# Every head is trained through `tvrlib.experiment` with **one protocol** (printed at the top): symmetric InfoNCE,
# the temperature starting from CLIP's own learned value, AdamW with warm-up and cosine decay, and **early
# stopping** on validation R@1 (the best validation epoch is kept). Each head is trained once per **training seed**
# (the seed fixes its initialisation and its batch order); the same seeds for every head, so that differences are
# paired. Mean pooling has no parameters: nothing to train, the same scores for every seed. CrossAttnGL trains with
# a hardest-negative hinge (eq. 4.20); we keep InfoNCE for every head, because Table 2 is an ablation in which all
# rows share the loss (notebook 03 compares the two losses).
#
# **The quick budget differs from notebooks 03–04** (the protocol line above says so): an interaction head scores
# B × B pairs per step, and five of them × three seeds must fit in about ten minutes on two CPU cores. So on `quick`
# this notebook uses batches of 64 captions, an "epoch" of 40 steps (a validation check every 2,560 captions, so
# that early stopping can act within a pass over the training captions; the setup cell prints the share), at most 8
# such epochs and patience 2. Every head here gets exactly this protocol; the `full` and `msrvtt` profiles use their
# own settings.

# %%
LABELS = {
    "meanP": "Mean (meanP)",
    "self_attention_aggregation": "Self-Att",
    "cross_modal_aggregation": "Cross-modal (CrossAttnGL)",
    "xpool": "X-Pool",
}  # table names; default: the registered name


def label_of(name):
    base, fixed = HEADS.spec(name)
    if base == "topk_frames":
        k, te = fixed.get("k", 4), fixed.get("temporal", True)
        return f"top-{k} frames (TopKTemporal)" if te else f"top-{k}, no temporal encoding"
    return LABELS.get(name, name)


labels = {name: label_of(name) for name in heads}
t0 = time.perf_counter()
runs = run_heads(P, heads, train, val, test_src, labels=labels)  # {label: HeadRuns}, one SeedRun per seed
train_seconds = time.perf_counter() - t0
# the heads later sections compare by role (None when `heads` lacks one: those comparisons are skipped, with a note)
MEAN, SELF, CROSS, XPOOL = (
    labels.get(n) for n in ("meanP", "self_attention_aggregation", "cross_modal_aggregation", "xpool")
)
topk = {(HEADS.spec(n)[1].get("k"), HEADS.spec(n)[1].get("temporal", True)): labels[n] for n in heads if n in labels}
topk = {key: lab for key, lab in topk.items() if key[0] is not None}
main_k = next((k for k, te in topk if te and (k, False) in topk), None)  # TopKTemporal Table 5: the same K, ± encoding
TOPK = topk.get((main_k, True), next((lab for (k, te), lab in topk.items() if te), None))
TOPK_NT = topk.get((main_k, False))


def have(what, needs):
    """Whether every head in ``needs`` ({registered name: its label, None if not trained}) is here; else a note."""
    missing = [name for name, label in needs.items() if label is None]
    if missing:
        print(f"skipped {what}: `heads` has no {', '.join(missing)}")
    return not missing


training = pd.DataFrame(seed_rows(runs))
trained_rows = training[training["epochs_run"] > 0]
per_head = trained_rows.groupby("head", sort=False).agg(
    epochs_run=("epochs_run", lambda x: "/".join(map(str, x))),
    best_epoch=("best_epoch", lambda x: "/".join(map(str, x))),
    stopped_early=("stopped_early", "sum"),
    val_R1_best=("best_val", "mean"),
    seconds=("seconds", "sum"),
)
print(f"seeds {', '.join(map(str, P.seeds))}; per head: epochs run and best epoch for each seed, in seed order")
display(per_head.round(1))
n_runs, n_stopped = len(trained_rows), int(trained_rows["stopped_early"].sum())
at_max = int((trained_rows["best_epoch"] == P.max_epochs).sum())
print(
    f"{n_stopped} of {n_runs} trained runs stopped early (no better val R@1 for {P.patience} epochs); "
    f"{at_max} of {n_runs} had their best validation epoch at the last allowed epoch ({P.max_epochs}), "
    + ("so they may still have been improving." if at_max else "so none was cut off while still improving.")
)

# %% [markdown]
# ## 7. Test results: mean ± spread over seeds; v2t and twins
#
# t2v on the test queries for every head and seed. Each cell is **mean ± standard deviation over the training seeds
# [min, max]**. Scores within the library's tie tolerance (`tvrlib.metrics.TIE_TOLERANCE`, relative to the score
# scale) count as tied everywhere — R@K, ranks and twin accuracy — so a head that cannot tell two videos apart gets
# the same credit whatever its float summation order.

# %%
summary = summarise_seeds(runs)
t2v_table = summary.pivot(index="head", columns="metric", values="cell").loc[
    list(runs), ["R1", "R5", "R10", "MdR", "MnR", "epochs_run"]
]
t2v_table

# %% [markdown]
# v2t (every test caption against every video, `best_caption` convention) and **twin accuracy** per factor (does the
# gold video beat its twin? chance and a tie are 50 %) for the head trained with the **first seed**; the t2v table
# above has every seed.

# %%
t0 = time.perf_counter()
first = {label: hr.runs[0].trained for label, hr in runs.items()}  # the first seed's trained heads
evals = {
    label: evaluate(h, texts, videos, test, method=label, n_boot=S.n_boot, seed=seed) for label, h in first.items()
}
eval_seconds = time.perf_counter() - t0
sims = {label: ev.sim[q_index] for label, ev in evals.items()}  # [queries, videos] per head, first seed
summary_frame(list(evals.values()))

# %%
tw_parts = [ev.twins.assign(head=label) for label, ev in evals.items() if ev.twins is not None]
tw = pd.concat(tw_parts) if tw_parts else pd.DataFrame()
if not len(tw):
    print("skipped: this dataset has no twins (a synthetic-benchmark feature)")
else:
    tw = tw[tw["factor"] != "all"]
    fig, ax = figure("05_twins", profile, width=8, height=3.2)
    order = list(evals)
    for i, f in enumerate(sorted(set(tw["factor"]))):
        part = tw[tw["factor"] == f].set_index("head").loc[order]
        x = np.arange(len(order)) + (i - 1) * 0.27
        ax.bar(
            x,
            part["accuracy"],
            width=0.27,
            label=f,
            yerr=np.clip([part["accuracy"] - part["ci_lo"], part["ci_hi"] - part["accuracy"]], 0, None),
            capsize=2,
        )
    ax.axhline(50, color="gray", lw=1, ls="--")
    ax.set_xticks(np.arange(len(order)), [o.replace(" (", "\n(") for o in order], fontsize=7)
    ax.set_ylabel("twin accuracy (%)")
    ax.legend(fontsize=8, ncol=3)
    save_figure(fig)

# %% [markdown]
# A caption-conditioned weighted sum is still a function of the *set* of frames: permute the frames and the weights
# follow them. So Mean, Self-Att, cross-modal and X-Pool tie on **direction** twins (the same frames in reverse order)
# by construction; only a position signal (the top-K head's temporal encoding) can separate them. Most order twins
# differ in their frames (event lengths differ), but some share the same set of sampled frames (notebook 00 counts
# them), so order twins are hard for a set function and sometimes impossible.
#
# **The Gram path on this run's features.** The first seed's cross-modal head and X-Pool, scored on the test queries
# by the Gram (moment) path and by the materialising path, in blocks of at most `eval_max_bytes`; compared with the
# scores `evaluate` computed (default path) and timed against meanP's single matrix product:

# %%
timing, check = {}, {}
for label, path in [(CROSS, "gram"), (CROSS, "materialise"), (XPOOL, "gram"), (XPOOL, "materialise")]:
    if label is None:
        continue
    t0 = time.perf_counter()
    s = score_all(first[label], queries, videos, max_bytes=eval_max_bytes, path=path)
    timing[f"{label}: {path}"] = time.perf_counter() - t0
    check[f"{label}: {path}"] = float((s - sims[label]).abs().max())
if not check:
    print("skipped the Gram-path check: `heads` has no cross_modal_aggregation, xpool")
mean_head = first[MEAN] if MEAN else HEADS.build("meanP")  # meanP has no parameters: trained or not, the same
t0 = time.perf_counter()
e_t, e_v = mean_head.embed_text(queries), mean_head.embed_video(videos)
timing["meanP: embed both sides"] = time.perf_counter() - t0
t0 = time.perf_counter()
_ = e_t @ e_v.T
timing["meanP: the matrix product"] = time.perf_counter() - t0
assert max(check.values(), default=0.0) < 1e-5, check  # guaranteed: every path computes the same scores
pd.DataFrame({"seconds": timing, "max |diff| vs evaluate()": pd.Series(check)}).round(6)

# %% [markdown]
# ## 8. Partial relevance: captions about one event — our own hypotheses
#
# About 15 % of the test queries describe a single event of their video ("a yellow circle disappears"). Such a
# caption also fits every other video with that event, so R@1 is low for every head (below its R@1 on whole-video
# captions in the table below); whether the gold video reaches the **top 10** is the informative number.
# Text-conditioned pooling *should* help there, because it can pool the gold video's frames of that event where mean
# pooling dilutes them. These are **our hypotheses, not a paper's
# claims**: no paper reports them, so they are judged *supported*, *contradicted* or *not significant* — never
# "reproduces" — and kept in their own table (`results/<profile>/hypotheses.csv`).
#
# Stated before the numbers below, each with **one primary metric chosen up front**: **R@10 for single-event
# captions** (R@1 is held down by captions that fit several videos, MnR is dominated by a few very bad ranks,
# MdR moves in whole ranks) and **R@1 for whole-video captions** (the suite's primary metric). Other metrics are shown,
# not voted. The verdict asks the paired CI over test queries *and* training seeds to exclude 0 and every seed to
# agree in sign.
#
# | | hypothesis | primary metric |
# |---|---|---|
# | H1 | the cross-modal head ranks the gold video higher than Mean on **single-event** captions | R@10 |
# | H2 | X-Pool ranks the gold video higher than Mean on single-event captions | R@10 |
# | H3 | the top-K head (with temporal encoding) ranks the gold video higher than Mean on single-event captions | R@10 |
# | H4 | the cross-modal head ranks the gold video higher than Self-Att on single-event captions (the caption, not just learned weights, is what helps) | R@10 |
# | H5–H8 | the same four comparisons on **whole-video** captions | R@1 |

# %%
HYPOTHESES = [  # (A, B, query kind, primary metric): "A beats B", as stated above
    (CROSS, MEAN, "event", "R10"),
    (XPOOL, MEAN, "event", "R10"),
    (TOPK, MEAN, "event", "R10"),
    (CROSS, SELF, "event", "R10"),
    (CROSS, MEAN, "video", "R1"),
    (XPOOL, MEAN, "video", "R1"),
    (TOPK, MEAN, "video", "R1"),
    (CROSS, SELF, "video", "R1"),
]
if has_events:
    by_kind = {k: {lab: subset_runs(hr, kind == k) for lab, hr in runs.items()} for k in ("event", "video")}
    kind_summary = pd.concat([summarise_seeds(by_kind[k]).assign(kind=k) for k in by_kind])
    kind_summary = kind_summary[kind_summary["metric"].isin(["R1", "R10", "MdR", "MnR"])]
    display(kind_summary.pivot(index="head", columns=["kind", "metric"], values="cell").loc[list(runs)])

# %%
hyp_rows, hyp_view = [], []
if has_events:
    for i, (a, b, which, metric) in enumerate(HYPOTHESES, 1):
        if a is None or b is None:
            print(f"H{i}: skipped, `heads` lacks one of its heads")
            continue
        A, B = by_kind[which][a], by_kind[which][b]
        d = paired_difference(A, B, metric, n_boot=S.n_boot, seed=seed)
        statement = f"H{i}: {a} beats {b} on {which} captions"
        hyp_rows.append(record_hypothesis(statement, d, notebook=NB, metric=metric))
        shown = {
            f"Δ{m} (shown)": np.mean([ra.metrics[m] - rb.metrics[m] for ra, rb in zip(A.runs, B.runs)])
            for m in ("R1", "R10", "MnR")
            if m != metric
        }
        hyp_view.append(
            {
                "hypothesis": statement,
                "metric": metric,
                "A": d["a"],
                "B": d["b"],
                "A - B": d["delta"],
                "95% CI": f"[{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]",
                "seeds agreeing": f"{hyp_rows[-1]['seeds_agreeing']}/{d['seeds']}",
                "verdict": hyp_rows[-1]["verdict"],
                **shown,
            }
        )
    display(pd.DataFrame(hyp_view).set_index("hypothesis").round(1))
    for h in hyp_view:
        print(
            f"{h['hypothesis']}: {h['metric']} {h['A']:.1f} vs {h['B']:.1f}, difference {h['A - B']:+.1f} "
            f"{h['95% CI']} ({h['seeds agreeing']} seeds on the hypothesis' side) -> {h['verdict']}."
        )
    print(
        f"{sum(h['verdict'] == 'supported' for h in hyp_view)} supported, "
        f"{sum(h['verdict'] == 'contradicted' for h in hyp_view)} contradicted, "
        f"{sum(h['verdict'] == 'not significant' for h in hyp_view)} not significant of {len(hyp_view)} hypotheses."
    )

# %% [markdown]
# The CI of each difference comes from `paired_difference`: a bootstrap that resamples the test queries (the gold
# videos, with all their captions of that kind, when a video has several) **and** the training seeds, so it covers
# test-query sampling and seed-to-seed variation of training. It does not cover other choices we held fixed (the
# benchmark's draw, the CLIP encoder, the protocol).
#
# **Where does the attention go?** For each single-event caption we read the weights that a head gives to its gold
# video's frames and sum those on the frames that show the described event (boundary frames excluded), for every
# training seed. Mean pooling gives the uniform share; a head that "looks at the right frames" gives more.

# %%
if has_events:
    ev_q = np.flatnonzero(kind == "event")
    event_idx = np.array([test.meta["sentence_fields"][test.query_index[i]]["event_index"] for i in ev_q])
    frame_events = sampled_frame_events(test, F_)[gold[ev_q]]  # [event queries, F]
    tq, vg = queries.index(torch.as_tensor(ev_q)), videos.index(torch.as_tensor(gold[ev_q]))
    gold_weights = {label: gold_frame_weights(h, tq, vg).numpy() for label, h in first.items()}  # first seed
    mass = {label: event_attention_mass(w, frame_events, event_idx) for label, w in gold_weights.items()}
    mass_seeds = {
        label: np.array(
            [100 * event_attention_mass(gold_frame_weights(r.trained, tq, vg).numpy(), frame_events, event_idx).mean()
             for r in hr.runs]
        )
        for label, hr in runs.items()
    }
    mass_table = pd.DataFrame(
        [
            {
                "head": label,
                "attention on the described event (%), mean over seeds": v.mean(),
                "std over seeds": v.std(ddof=1) if v.size > 1 else np.nan,
                "min": v.min(),
                "max": v.max(),
            }
            for label, v in mass_seeds.items()
        ]
    ).set_index("head")
    display(mass_table.round(1))
    share = mass_table["attention on the described event (%), mean over seeds"]
    ev_r10 = {lab: np.mean([r.metrics["R10"] for r in hr.runs]) for lab, hr in by_kind["event"].items()}
    if MEAN:
        odd = [h for h in share.index if h != MEAN and share[h] > share[MEAN] + 1 and ev_r10[h] < ev_r10[MEAN]]
        if odd:
            print(
                f"Surprise: {', '.join(odd)} put more of their attention on the described event than meanP's uniform "
                f"share ({', '.join(f'{share[h]:.0f} %' for h in odd)} vs {share[MEAN]:.0f} %), yet reach the gold video "
                f"in the top 10 less often on single-event captions (R@10 {', '.join(f'{ev_r10[h]:.1f}' for h in odd)} "
                f"vs {ev_r10[MEAN]:.1f}). Looking at the right frames is not enough here; we have not established why."
            )

# %% [markdown]
# **One example, drawn on the frames** (like CrossAttnGL's Figures 3 and 4). We show the single-event query at the
# *median* of the first seed's cross-modal head's attention share on its event — a typical case, not the best one. Frames of the
# described event are outlined; the curves are each head's weights over the 12 frames.

# %%
if has_events and have("the figure", {"cross_modal_aggregation": CROSS}):
    i = int(np.argsort(mass[CROSS])[len(ev_q) // 2])
    qi, vj = int(ev_q[i]), int(gold[ev_q[i]])
    frames, fmask = sample_frames(test.videos[vj].path, num_frames=F_, size=96)
    fig, axes = figure(
        "05_attention_on_frames",
        profile,
        width=12,
        height=4.6,
        nrows=2,
        ncols=F_,
        gridspec_kw={"height_ratios": [1, 1.6]},
    )
    for f in range(F_):
        ax = axes[0, f]
        ax.imshow(frames[f])
        ax.set_xticks([])
        ax.set_yticks([])
        on = frame_events[i, f] == event_idx[i]
        for side in ax.spines.values():
            side.set_color("crimson" if on else "lightgray")
            side.set_linewidth(3 if on else 1)
        ax.set_title(f"{f}: {gold_weights[CROSS][i, f]:.2f}", fontsize=7)
    gs = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    ax = fig.add_subplot(gs[1, :])
    for label in first:
        ax.plot(range(F_), gold_weights[label][i], marker="o", ms=3, label=label)
    for f in np.flatnonzero(frame_events[i] == event_idx[i]):
        ax.axvspan(f - 0.5, f + 0.5, color="crimson", alpha=0.08)
    ax.set_xticks(range(F_))
    ax.set_xlabel("frame")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7, ncol=3)
    fig.suptitle(
        f'"{test.texts[test.query_index[qi]]}" (event {event_idx[i]}; cross-modal weight above each frame)', fontsize=9
    )
    save_figure(fig)

# %% [markdown]
# ### Look: where each head's attention goes, for any caption
#
# The top 5 videos of the cross-modal head and of X-Pool for one caption (first training seed), each video's sampled
# frames with the head's **frame weights** drawn under them (the dashed line is the uniform weight 1/F): the gold
# video is framed green. In JupyterLab, set `interactive = True` in the parameters cell and type a caption about one
# event ("a red circle grows") to see which frames each head looks at; under papermill the figure below is drawn for
# `browse_caption` (by default the first single-event query).

# %%
from tvrlib import explore as E

if have("the browser", {"cross_modal_aggregation": CROSS, "xpool": XPOOL}):
    ev_queries = np.flatnonzero(kind == "event")
    shown = browse_caption if browse_caption is not None else int(test.query_index[ev_queries[0] if len(ev_queries) else 0])
    print(f'caption {shown}: "{test.texts[shown]}"')
    view = E.compare_heads(S, runs[CROSS], runs[XPOOL], shown, interactive=interactive, name=f"{NB}_browse")
    if interactive:
        display(view)  # the widget; the static figure is shown by the inline backend like every other figure

# %% [markdown]
# ## 9. CrossAttnGL, Table 2: Mean vs Self-Att vs Cross-modal
#
# The reported rows (MSR-VTT, ViT-B/32; the check marks were lost in extraction, rows assigned by order — see
# `data/paper_tables/README.md`):

# %%
# NBVAL_CHECK_OUTPUT
table2 = load_paper_table("000", "Table 2 (ablation)")
table2[["method", "R1", "R5", "R10", "MdR", "MnR"]]

# %% [markdown]
# **What the reported "Cross-modal" row is.** It is the *full* model: cross-modal aggregation **plus** the
# global-local similarity of §4.3 (it equals Table 3's "Local + Global" row), and its numbers equal the **MSVD** row of
# Table 1, not MSR-VTT, although the text says the ablations ran on MSR-VTT. (The Self-Att row's R@1, 45.3, also
# equals Table 1's MSR-VTT R@1.) Our cross-modal head scores by the cosine alone (§4.3 is not implemented), so it is
# not that row; the nearest reported setting would be Table 3's "global only" (44.8), which still uses a learned
# similarity vector.
#
# **Our decision: comparable, with that caveat, for the direction only.** Table 2 is an ablation of the aggregation
# step, and an ablation holds the other components fixed, so the *differences* between its rows measure what the
# aggregation does; our three heads likewise differ only in their aggregation (section 2: Self-Att is the
# cross-modal head with caption-blind weights) under one scoring (the cosine) and one protocol. We therefore compare
# the **direction** of each difference, never the levels (a synthetic benchmark and a tiny CLIP cannot be put on
# MSR-VTT's scale). The caveat goes into every Table 2 row of `claims.csv`: the paper does not say that its Mean and
# Self-Att rows used global-local similarity too; if they did not, its Cross-modal − Self-Att difference mixes §4.3
# into the aggregation, and ours tests the aggregation part only.
#
# Claims, with **R@1 as the one primary metric** (chosen before the numbers); MnR shown, not voted:

# %%
T2_CAVEAT = (
    "comparable for the direction only: the paper's Cross-modal row is the full model (with global-local "
    "similarity, = Table 1's MSVD row); ours scores by cosine, all three heads under one protocol"
)
claim_rows, claim_view = [], []


def judge(paper, table, claim, a, b, paper_rep, hr_a, hr_b, note):
    """One paper claim "a beats b" on R@1 (primary), judged once: a claims.csv row and a display row."""
    d = paired_difference(hr_a, hr_b, "R1", n_boot=S.n_boot, seed=seed)
    row = record_claim(
        paper, table, claim, d, notebook=NB, paper_difference=paper_rep.loc[a, "R1"] - paper_rep.loc[b, "R1"], note=note
    )
    claim_rows.append(row)
    mnr = np.mean([ra.metrics["MnR"] - rb.metrics["MnR"] for ra, rb in zip(hr_a.runs, hr_b.runs)])
    claim_view.append(
        {
            "paper": paper,
            "table": table,
            "claim": claim,
            "paper ΔR@1": row["paper_difference"],
            "ours ΔR@1": d["delta"],
            "95% CI": f"[{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]",
            "CI (queries only)": f"[{d['ci_queries'][0]:+.1f}, {d['ci_queries'][1]:+.1f}]",
            "seeds agreeing": f"{row['seeds_agreeing']}/{row['seeds']}",
            "verdict": row["verdict"],
            "paper ΔMnR (shown)": paper_rep.loc[a, "MnR"] - paper_rep.loc[b, "MnR"],
            "ours ΔMnR (shown)": mnr,
        }
    )
    return row


t2_map = {"mean aggregation": MEAN, "self-attention aggregation": SELF, "cross-modal aggregation": CROSS}
if have("CrossAttnGL Table 2", {"meanP": MEAN, "self_attention_aggregation": SELF, "cross_modal_aggregation": CROSS}):
    rep2 = table2.set_index("method")
    cells = summary.pivot(index="head", columns="metric", values="cell")
    display(
        pd.DataFrame(
            [
                {"paper row": p, "ours": o, **{f"{m} (paper)": rep2.loc[p, m] for m in ("R1", "MnR")},
                 **{f"{m} (ours, mean ± std [min, max])": cells.loc[o, m] for m in ("R1", "MnR")}}
                for p, o in t2_map.items()
            ]
        ).set_index("paper row")
    )
    for a, b in [
        ("self-attention aggregation", "mean aggregation"),
        ("cross-modal aggregation", "self-attention aggregation"),
        ("cross-modal aggregation", "mean aggregation"),
    ]:
        judge("CrossAttnGL", "Table 2", f"{a} beats {b}", a, b, rep2, runs[t2_map[a]], runs[t2_map[b]], T2_CAVEAT)
    display(pd.DataFrame([c for c in claim_view if c["table"] == "Table 2"]).set_index("claim").round(1))
    for c in claim_view:
        print(
            f"{c['claim']}: R@1 {c['ours ΔR@1']:+.1f} {c['95% CI']} (paper {c['paper ΔR@1']:+.1f}), "
            f"{c['seeds agreeing']} seeds on the paper's side -> {c['verdict']}."
        )

# %% [markdown]
# ## 10. TopKTemporal, Tables 4 and 5: how many frames, and does temporal encoding help?
#
# **Table 4** sweeps the number K of frames the caption keeps. Every K trains the head `topK{K}` under **the main
# protocol of section 6, with all its seeds** (the same seeds for every K, so differences are paired), so the K's are
# compared like with like and each verdict rests on as many seeds as the main comparisons. It is the most expensive
# part of this notebook (the time is printed at the end). The reported rows (no dataset is named in the caption;
# MSR-VTT t2v assumed):

# %%
# NBVAL_CHECK_OUTPUT
table4 = load_paper_table("001", "Table 4 (ablation)")
table4[["method", "R1", "R5", "R10", "MdR", "MnR"]]

# %%
t0 = time.perf_counter()
sweep = {k: run(P, f"topK{k}", train, val, test_src, label=f"K={k}", keep_heads=False) for k in Ks}
sweep_seconds = time.perf_counter() - t0
sweep_cells = summarise_seeds(sweep).pivot(index="head", columns="metric", values="cell")
sweep_note = f"the main protocol, {len(P.seeds)} seed(s) per K"
rep4 = table4.set_index("method")
display(
    pd.DataFrame(
        [
            {"K": k, "R@1 (paper)": rep4.loc[f"K={k}", "R1"] if f"K={k}" in rep4.index else np.nan,
             "R@1 (ours)": sweep_cells.loc[f"K={k}", "R1"], "MnR (paper)": rep4.loc[f"K={k}", "MnR"]
             if f"K={k}" in rep4.index else np.nan, "MnR (ours)": sweep_cells.loc[f"K={k}", "MnR"],
             "epochs run": sweep_cells.loc[f"K={k}", "epochs_run"]}
            for k in Ks
        ]
    ).set_index("K")
)


def r1_bar(hr):
    """The R@1 spread drawn for a K: min-max over seeds, or the query-bootstrap CI with one seed."""
    if len(hr) > 1:
        v = [r.metrics["R1"] for r in hr.runs]
        return min(v), max(v)
    return M.bootstrap_ci(hr.runs[0].ranks, n_boot=S.n_boot, seed=seed)["R1"]


fig, ax = figure("05_k_sweep", profile, width=6, height=3.2)
r1 = np.array([np.mean([r.metrics["R1"] for r in sweep[k].runs]) for k in Ks])
bars = np.array([r1_bar(sweep[k]) for k in Ks])
ax.errorbar(
    Ks,
    r1,
    yerr=np.clip([r1 - bars[:, 0], bars[:, 1] - r1], 0, None),
    marker="o",
    capsize=3,
    label="ours (synthetic, tiny CLIP)",
)
ax.set_xlabel("K (frames kept per caption)")
ax.set_ylabel("t2v R@1 (%), ours")
ax2 = ax.twinx()
paper_k = table4.assign(K=table4["method"].str[2:].astype(int))
ax2.plot(paper_k["K"], paper_k["R1"], color="gray", ls="--", marker="s", label="TopKTemporal (MSR-VTT)")
ax2.set_ylabel("R@1 (%), TopKTemporal", color="gray")
fig.legend(loc="upper right", bbox_to_anchor=(0.85, 0.95), fontsize=7)
save_figure(fig)
k_best_paper = int(paper_k.loc[paper_k["R1"].idxmax(), "K"])
k_top = Ks[int(np.argmax(r1))]
print(
    f"Our highest mean R@1 is at K={k_top} ({r1.max():.1f}); TopKTemporal's at K={k_best_paper}. "
    f"Ours ranges from {r1.min():.1f} to {r1.max():.1f} over the K's."
)

# %% [markdown]
# **Table 4's claim**, "R@1 peaks at K = 4", is judged as two claims on R@1: K = 4 beats K = 1 (keeping one frame loses
# information) and K = 4 beats K = 12 (keeping every frame dilutes the caption's frames).
#
# **Table 5** compares the baseline, the method without temporal encoding and with it. We judge two claims on R@1,
# with the main protocol's seeds:
#
# * *temporal encoding helps*: top-K with temporal encoding beats the same K without it (like with like: same K, same
#   protocol);
# * *the method without temporal encoding beats the baseline*. The baseline row is **CLIP4Clip** (44.5 R@1, the numbers
#   CLIP4Clip reports for its seqTransf head on the 9k split, and that CrossAttnGL's Table 1 labels CLIP4Clip-seqTransf).
#   So the baseline here is our `seqTransf` head (the `baseline_head` parameter), built as CLIP4Clip builds it
#   (starting from CLIP's text transformer) and **trained under the same protocol and seeds** as the top-K heads —
#   not zero-shot meanP. One difference remains and applies to both rows alike: the
#   paper fine-tunes CLIP end to end, we train heads on frozen features. The claims file says so in its reason column.

# %%
if have("TopKTemporal Table 4", {f"topK{k}": (f"K={k}" if k in sweep else None) for k in (k_best_paper, 1, 12)}):
    for b in (1, 12):
        judge(
            "TopKTemporal",
            "Table 4",
            f"K={k_best_paper} beats K={b}",
            f"K={k_best_paper}",
            f"K={b}",
            rep4,
            sweep[k_best_paper],
            sweep[b],
            sweep_note,
        )
table5 = load_paper_table("001", "Table 5 (ablation)").set_index("method")
base_runs = None  # the CLIP4Clip baseline of Table 5, trained only for that claim (saved with the other heads' seeds)
if have("TopKTemporal Table 5", {"topK{K}": TOPK, "topK{K}-noTE": TOPK_NT}):
    t0 = time.perf_counter()
    BASE = f"{baseline_head} (CLIP4Clip baseline)"
    # as CLIP4Clip builds it: seqTransf starts from CLIP's text transformer (heads that do not take init_from ignore it)
    BASE_KW = {"init_from": S.encoder.model}
    base_runs = run(P, baseline_head, train, val, test_src, label=BASE, keep_heads=False, head_kwargs=BASE_KW)
    base_seconds = time.perf_counter() - t0
    display(
        summarise_seeds({BASE: base_runs, TOPK_NT: runs[TOPK_NT], TOPK: runs[TOPK]})
        .pivot(index="head", columns="metric", values="cell")[["R1", "R5", "R10", "MnR", "epochs_run"]]
    )
    judge(
        "TopKTemporal",
        "Table 5",
        "with temporal encoding beats no temporal encoding",
        "with temporal encoding",
        "no temporal encoding",
        table5,
        runs[TOPK],
        runs[TOPK_NT],
        f"top-{main_k} with vs without a learned position embedding, same protocol",
    )
    judge(
        "TopKTemporal",
        "Table 5",
        "no temporal encoding beats the baseline",
        "no temporal encoding",
        "baseline",
        table5,
        runs[TOPK_NT],
        base_runs,
        f"the paper's baseline is CLIP4Clip (seqTransf); ours: the {baseline_head} head under the same protocol and "
        "seeds; the paper fine-tunes CLIP end to end for both rows, we train heads on frozen features",
    )
topk_view = pd.DataFrame([c for c in claim_view if c["paper"] == "TopKTemporal"])
if len(topk_view):
    display(topk_view.set_index(["table", "claim"]).round(1))
    for c in claim_view:
        if c["paper"] == "TopKTemporal":
            print(
                f"{c['table']}, {c['claim']}: R@1 {c['ours ΔR@1']:+.1f} {c['95% CI']} (paper {c['paper ΔR@1']:+.1f}), "
                f"{c['seeds agreeing']} seed(s) on the paper's side -> {c['verdict']}."
            )

# %% [markdown]
# **A check on the baseline comparison** (a diagnostic, not a claim). The baseline sees frame order (seqTransf adds
# position embeddings before its transformer) while the top-K head without temporal encoding does not. How much of
# the gap between them is order? We train the baseline once more without position embeddings (`<baseline>-noPE`,
# same protocol and seeds) and compare it with the top-K head without temporal encoding: both order-blind.

# %%
nope_name = f"{baseline_head}-noPE"
if "base_runs" in globals() and nope_name in HEADS.names():
    t0 = time.perf_counter()
    base_nope = run(
        P, nope_name, train, val, test_src, label=f"{nope_name} (order-blind baseline)", keep_heads=False,
        head_kwargs=BASE_KW,
    )
    base_seconds += time.perf_counter() - t0
    d_full = paired_difference(base_runs, runs[TOPK_NT], "R1", n_boot=S.n_boot, seed=seed)
    d_nope = paired_difference(base_nope, runs[TOPK_NT], "R1", n_boot=S.n_boot, seed=seed)
    d_pe = paired_difference(base_runs, base_nope, "R1", n_boot=S.n_boot, seed=seed)

    def ci(d):
        return f"{d['delta']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]"

    print(
        f"Test R@1, paired over queries and seeds: {baseline_head} - {TOPK_NT}: {ci(d_full)}; "
        f"{nope_name} - {TOPK_NT}: {ci(d_nope)}; {baseline_head} - {nope_name} (what its position embeddings add): "
        f"{ci(d_pe)}."
    )
    if d_full["ci"][0] <= 0:
        print("The baseline does not lead the top-K head without temporal encoding here; nothing to split.")
    else:
        share = d_pe["delta"] / d_full["delta"]
        print(
            f"Position embeddings give {d_pe['delta']:+.1f} of the baseline's {d_full['delta']:+.1f} R@1 lead "
            f"({share:.0%})"
            + (
                f"; the order-blind baseline still leads by {d_nope['delta']:+.1f} R@1 (CI excludes 0), so the rest of "
                "the gap is not about order: the two heads differ in architecture and initialisation (a transformer "
                f"over all frames that starts from CLIP's text layers, vs attention over the caption's top-{main_k} "
                "frames)."
                if d_nope["ci"][0] > 0
                else "; without them the two order-blind heads are not distinguishable (the CI includes 0 or favours "
                "top-K)."
            )
        )
elif "base_runs" in globals():
    print(f"skipped: no registered head {nope_name!r} to separate what frame order adds")

# %% [markdown]
# ## 11. Saving the results
#
# Tidy rows go to `results/<profile>/`: every head's t2v metrics per seed (the Table 5 baseline's too), the first
# seed's t2v, v2t and twin accuracies with CIs, the partial-relevance breakdown, the K sweep; the paper claims go to
# `claims.csv` (one row per claim, judged here and nowhere else) and our hypotheses to `hypotheses.csv`.

# %%
paths = [S.save("text_conditioned_pooling", [r for ev in evals.values() for r in evaluation_rows("text_conditioned_pooling", ev)])]
seeds_table = training if base_runs is None else pd.concat([training, pd.DataFrame(seed_rows({BASE: base_runs}))])
paths.append(
    S.save(
        "text_conditioned_pooling_seeds",
        seeds_table.assign(experiment="text_conditioned_pooling_seeds", protocol=P.describe()),
    )
)
k_rows = [
    r
    for k, hr in sweep.items()
    for run_k in hr.runs
    for r in results_rows(
        "text_conditioned_pooling_k_sweep", f"top-{k} frames", "t2v", run_k.metrics, k=k, seed=run_k.seed,
        epochs_run=run_k.epochs_run,
    )
]
paths.append(S.save("text_conditioned_pooling_k_sweep", k_rows))
if has_events:
    part = [
        {
            "experiment": "text_conditioned_pooling_partial",
            "method": r["head"],
            "direction": "t2v",
            "query_kind": r["kind"],
            "metric": r["metric"],
            "value": r["mean"],
            "std_over_seeds": r["std"],
            "seeds": r["seeds"],
        }
        for _, r in kind_summary.iterrows()
    ]
    part += [
        {
            "experiment": "text_conditioned_pooling_partial",
            "method": h,
            "direction": "t2v",
            "query_kind": "event",
            "metric": "attention_on_event",
            "value": r["attention on the described event (%), mean over seeds"],
            "std_over_seeds": r["std over seeds"],
            "seeds": len(P.seeds),
        }
        for h, r in mass_table.iterrows()
    ]
    paths.append(S.save("text_conditioned_pooling_partial", part))
saved = save_claims(claim_rows + hyp_rows, S.profile) if claim_rows or hyp_rows else {}
paths += list(saved.values())
print("\n".join(str(p.relative_to(p.parents[2])) for p in paths))

# %% [markdown]
# ## What we found
#
# Every sentence below is printed from this run's numbers.

# %%
t1 = summary[summary["metric"] == "R1"].set_index("head")
print(
    f"Test t2v R@1, mean ± std over {len(P.seeds)} training seeds ({len(gold)} queries, {len(test.videos)} videos): "
    + "; ".join(f"{h} {r['mean']:.1f} ± {r['std']:.1f}" for h, r in t1.iterrows())
    + "."
)
best = t1["mean"].idxmax()
print(f"Highest mean t2v R@1: {best} ({t1.loc[best, 'mean']:.1f}).")
for c in claim_view:
    print(
        f"[{c['paper']} {c['table']}] {c['claim']}: ours {c['ours ΔR@1']:+.1f} {c['95% CI']} R@1 "
        f"(paper {c['paper ΔR@1']:+.1f}), {c['seeds agreeing']} seeds agreeing -> {c['verdict']}."
    )
below_mean = [h for h in t1.index if MEAN and h != MEAN and runs[h].trained and t1.loc[h, "mean"] < t1.loc[MEAN, "mean"]]
if below_mean:
    random_wv = [h for h in below_mean if isinstance(first[h], (CrossModalAggregation, SelfAttentionAggregation))]
    print(
        f"Surprise: {len(below_mean)} trained head(s) end below parameter-free meanP ({t1.loc[MEAN, 'mean']:.1f} R@1): "
        + "; ".join(f"{h} {t1.loc[h, 'mean']:.1f}" for h in below_mean)
        + "."
        + (
            f" We have not established why. A candidate for {', '.join(random_wv)}: they start from the paper's random "
            "W_V, i.e. from chance (section 1), and must learn CLIP's joint space back within this protocol's budget; "
            "the identity reading (cross_modal_aggregation-identity) would test that, and is not run here."
            if random_wv
            else " We have not established why."
        )
    )
surprising = [c for c in claim_view if c["verdict"] == "opposite"]
split_baseline = "d_pe" in globals() and d_full["ci"][0] > 0
for c in surprising:
    if c["claim"] == "no temporal encoding beats the baseline" and split_baseline:
        print(
            f"Surprise: ours goes the other way for {c['paper']} {c['table']} '{c['claim']}' "
            f"({c['ours ΔR@1']:+.1f} R@1). Section 10 splits the gap: the baseline's position embeddings give "
            f"{d_pe['delta']:+.1f} of its {d_full['delta']:+.1f} lead; "
            + (
                f"the order-blind baseline still leads by {d_nope['delta']:+.1f} [{d_nope['ci'][0]:+.1f}, "
                f"{d_nope['ci'][1]:+.1f}], which we have not explained beyond the architectures differing."
                if d_nope["ci"][0] > 0
                else f"without them the order-blind baseline's {d_nope['delta']:+.1f} [{d_nope['ci'][0]:+.1f}, "
                f"{d_nope['ci'][1]:+.1f}] is not distinguishable from 0."
            )
        )
    else:
        print(
            f"Surprise: ours goes the other way for {c['paper']} {c['table']} '{c['claim']}'. We have no explanation "
            "beyond the differences listed with the claim (benchmark, tiny CLIP, frozen features, cosine scoring)."
        )
for h in hyp_view:
    print(f"[ours] {h['hypothesis']} ({h['metric']}): {h['A - B']:+.1f} {h['95% CI']} -> {h['verdict']}.")
if has_events:
    share = mass_table["attention on the described event (%), mean over seeds"]
    print(
        "Attention share on the described event (single-event captions, gold video, mean over seeds): "
        + "; ".join(f"{k} {v:.0f} %" for k, v in share.items())
        + "."
    )
tw_all = {label: ev.twins.set_index("factor")["accuracy"] for label, ev in evals.items() if ev.twins is not None}
if tw_all and all("direction" in t.index for t in tw_all.values()):
    print(
        "Direction-twin accuracy (first seed): "
        + "; ".join(f"{k} {t['direction']:.1f} %" for k, t in tw_all.items())
        + " (50 % = a tie: a set function of the frames cannot see direction)."
    )
print(f"K sweep ({sweep_note}): highest mean R@1 at K={k_top}; TopKTemporal reports K={k_best_paper}.")
if CROSS:
    print(
        f"Without pooled vectors (Gram / moment path) the trained heads' scores equal the materialised ones to "
        f"{max(check.values()):.0e}; cross-modal head on the test queries: Gram path "
        f"{timing[CROSS + ': gram']:.1f} s, materialising {timing[CROSS + ': materialise']:.1f} s, "
        f"meanP's matrix product {timing['meanP: the matrix product'] * 1000:.1f} ms."
    )
print(
    f"Time: training {train_seconds:.0f} s, evaluation {eval_seconds:.0f} s, K sweep {sweep_seconds:.0f} s"
    + (f", Table 5 baseline {base_seconds:.0f} s." if "base_seconds" in globals() else ".")
)
