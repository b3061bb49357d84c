# %% [markdown]
# # 03 · Mean pooling and training
#
# The simplest way to turn CLIP into a video retriever is CLIP4Clip's **mean pooling** (`meanP`): embed every
# frame with CLIP's image tower, average the frame embeddings, and compare the average with the caption's
# embedding by cosine. It has **no parameters**. Whatever it gains from training comes from changing CLIP itself.
#
# **What you will learn here**
#
# * mean pooling (CLIP4Clip eqs. 4–5) and the two properties that follow from its formula: frame order and padding
#   frames cannot change a score;
# * how good zero-shot mean pooling is on our benchmark, and why it ties *exactly* on direction twins;
# * the two training losses of the papers we follow, side by side: CLIP's **symmetric InfoNCE** with a learnable
#   temperature, and VSE++'s **hardest-negative hinge** (the ranking loss of CrossAttnGL
#   ([docs/papers.md](../docs/papers.md)), its eqs. 4.16–4.20), both masked so that two captions of one video are
#   never each other's negatives;
# * the fit loop (`tvrlib.training.fit`): two learning rates, warm-up + cosine, clipping, checkpoints, resume,
#   model selection on the validation split, learning curves;
# * **frozen features vs end-to-end**: on cached CLIP features mean pooling has nothing to learn, so CLIP4Clip
#   fine-tunes CLIP's towers. We do a short end-to-end run on the tiny CLIP;
# * **which frames matter**: how much each frame adds to a mean-pooled score, and how many frames mean pooling needs.

# %% tags=["parameters"]
profile = "quick"  # quick | full | msrvtt
dataset = None  # None: take it from the profile (also clip_model and pretrained)
clip_model = None
pretrained = None
device = "auto"
seed = 0
epochs = None  # frozen-feature training epochs (None: the profile value, quick 5)
batch_size = None  # captions per step (None: 128)
lr = None  # learning rate of new modules (None: quick 1e-3; CLIP4Clip 1e-4 on msrvtt)
lr_encoder = None  # learning rate of the CLIP towers end to end (None: quick 5e-5; CLIP4Clip 1e-7 on msrvtt)
e2e_epochs = None  # end-to-end fine-tuning epochs (None: quick 1)
e2e_steps = None  # cap on steps per end-to-end epoch (None: quick 30, 0 for a full epoch)
e2e_batch_size = None  # pairs per end-to-end step (None: quick 16)
e2e_val_videos = None  # validation videos for end-to-end model selection (None: quick 100, 0 for all)
margin = 0.2  # hinge margin (VSE++, CrossAttnGL)

# %%
import time

import numpy as np
import pandas as pd
import seaborn as sns
import torch

import tvrlib.session
from tvrlib import metrics as M
from tvrlib.evaluation import evaluate, evaluation_rows, summary_frame
from tvrlib.frame_order import keep_uniform_frames
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all
from tvrlib.heads.mean_pooling import frame_contributions, masked_mean_pool
from tvrlib.losses import hardest_negative_hinge, symmetric_infonce
from tvrlib.profiles import training_settings
from tvrlib.reporting import figure, save_figure, show_source, versions
from tvrlib.synthetic.events import sampled_frame_events
from tvrlib.training import FeatureSource, FitConfig, FrameSource, RetrievalModel, finetunable_copy, fit

pd.set_option("display.width", 200)
S = tvrlib.session.setup(
    profile, dataset=dataset, clip_model=clip_model, pretrained=pretrained, device=device, seed=seed
)
T = training_settings(
    profile,
    epochs=epochs,
    batch_size=batch_size,
    lr=lr,
    lr_encoder=lr_encoder,
    e2e_epochs=e2e_epochs,
    e2e_steps=e2e_steps,
    e2e_batch_size=e2e_batch_size,
    e2e_val_videos=e2e_val_videos,
)
train, val = FeatureSource.from_session(S, "train"), FeatureSource.from_session(S, "val")
test = S.data("test")
texts, videos = S.texts("test"), S.videos("test")  # every caption and every video of the test split
queries, gold = S.queries("test")  # the t2v queries and their gold videos
clip_temperature = S.encoder.model.logit_scale.item()  # CLIP's learned log-temperature, the starting point

# %%
# NBVAL_CHECK_OUTPUT
for split, src in (("train", train), ("val", val)):
    print(f"{split}: {len(src.videos)} videos, {len(src)} captions, frames {tuple(src.videos.frames.shape)}")
print(f"test: {len(videos)} videos, {len(texts)} captions, {len(gold)} t2v queries")

# %%
pd.DataFrame({"setting": list(T), "value": [str(v) for v in T.values()]}).set_index("setting").T

# %%
versions().T

# %% [markdown]
# ## 1. Mean pooling
#
# Each of the `F` frames of a video gives a CLIP embedding `z_f` (a `D`-vector). Mean pooling (CLIP4Clip eqs. 4–5)
# normalises each frame, averages over the **valid** frames (the mask marks padding of short clips), and normalises
# again:
#
# $$\hat v_f = z_f / \lVert z_f \rVert, \qquad v = \frac{\sum_f m_f \hat v_f}{\max(1, \sum_f m_f)}, \qquad
# s(t, v) = \frac{t^\top v}{\lVert t \rVert \lVert v \rVert}.$$
#
# A sum does not care about the order of its terms, and a masked frame is multiplied by `m_f = 0`. So **frame order
# and padding cannot change a mean-pooled score**, for any weights. We sum in float64 so that even the rounding is
# the same in any order.

# %%
show_source(masked_mean_pool)

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
toy_text = TextInput(torch.randn(3, 8, generator=g))
toy = VideoInput(torch.randn(2, 5, 8, generator=g), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
meanP = HEADS.build("meanP")
shuffled = VideoInput(toy.frames[:, [3, 0, 2, 1, 4]], toy.mask)  # padding stays last
padded = VideoInput(
    torch.cat([toy.frames, 99 * torch.ones(2, 3, 8)], 1), torch.cat([toy.mask, torch.zeros(2, 3, dtype=torch.bool)], 1)
)
print("scores [3 texts, 2 videos]:\n", meanP.score(toy_text, toy).numpy().round(4))
print("same scores with shuffled frames:", torch.equal(meanP.score(toy_text, toy), meanP.score(toy_text, shuffled)))
print(
    "same scores with 3 extra padding frames:", torch.equal(meanP.score(toy_text, toy), meanP.score(toy_text, padded))
)

# %% [markdown]
# ## 2. Zero-shot mean pooling on the test split
#
# The tiny CLIP was pretrained on single frames with descriptions of what is *visible* (colours, shapes, positions).
# Our captions also say what *happens* (moves left, then grows…). Zero-shot, mean pooling can only match the static
# content.
#
# Each t2v query is one caption, ranked against all test videos. For v2t every video is ranked against all
# captions. The brackets are 95 % bootstrap intervals over queries (notebook 02). The **twin** columns ask whether the
# gold video outranks its twin, which differs in one factor (chance = 50 %).

# %%
zero_shot = evaluate(meanP, texts, videos, test, method="meanP zero-shot", n_boot=S.n_boot, seed=seed)
summary_frame([zero_shot]).T

# %% [markdown]
# A **direction twin** reverses one moving object. On our benchmark its sampled frames are the same *set* of images
# as the original's, in another order, so mean pooling must score the two exactly alike: a tie counts ½ and the
# accuracy is exactly 50 %. This holds for any weights, so we assert it.

# %%
tw = zero_shot.twins.set_index("factor")
assert tw.loc["direction", "accuracy"] == 50.0 and tw.loc["direction", "ties"] == tw.loc["direction", "n"]
tw.round(1)

# %% [markdown]
# ## 3. Two losses
#
# A training batch holds `B` (caption, video) pairs. The head scores every caption against every video of the batch,
# giving `S` of shape `[B, B]` with the positives on the diagonal.
#
# **Symmetric InfoNCE** (CLIP; CLIP4Clip's `CrossEn` on `S` and `Sᵀ`) is a softmax classification in both
# directions, on logits `exp(τ)·S`. The temperature `τ` is learned and clamped to `τ ≤ ln 100` after every step, as
# CLIP4Clip does:
#
# $$L = \tfrac12\Big[\tfrac1B\sum_i -\log \frac{e^{\ell_{ii}}}{\sum_j e^{\ell_{ij}}} +
# \tfrac1B\sum_j -\log \frac{e^{\ell_{jj}}}{\sum_i e^{\ell_{ij}}}\Big], \qquad \ell = e^{\tau} S.$$
#
# **Hardest-negative hinge** (VSE++; CrossAttnGL's ranking loss, eqs. 4.16–4.20) keeps, for every caption and
# every video, only the most offending negative. It asks the positive to beat it by a margin `α` (CrossAttnGL's α;
# VSE++ uses 0.2):
#
# $$V' = \arg\max_{r \ne v} s(r, T)\ (4.16), \quad T' = \arg\max_{w \ne T} s(V, w)\ (4.17), \quad
# L = \sum [\alpha - s(V,T) + s(V',T)]_+ + [\alpha - s(V,T) + s(V,T')]_+\ (4.20).$$
#
# **Two captions of one video in a batch** are a correct match, not a negative. Our training split has 8 captions
# per video, so a batch of 128 captions usually holds such pairs. Both losses take the batch's video ids and drop those
# entries. With distinct videos our InfoNCE equals `open_clip.loss.ClipLoss` (a unit test checks it).

# %%
show_source(symmetric_infonce)
show_source(hardest_negative_hinge)

# %%
# NBVAL_CHECK_OUTPUT
# captions 0 and 2 describe the same video (id 7): S[0, 2] and S[2, 0] are correct matches, not negatives
S_toy = torch.tensor(
    [[0.80, 0.20, 0.79, 0.10], [0.30, 0.70, 0.20, 0.40], [0.81, 0.10, 0.82, 0.20], [0.10, 0.45, 0.30, 0.60]]
)
ids = torch.tensor([7, 3, 7, 5])
pd.DataFrame(
    {
        "InfoNCE (exp(tau)=100)": [symmetric_infonce(100 * S_toy).item(), symmetric_infonce(100 * S_toy, ids).item()],
        "hinge (margin 0.2)": [hardest_negative_hinge(S_toy).item(), hardest_negative_hinge(S_toy, ids).item()],
    },
    index=["ids ignored", "masked by video id"],
).round(4)

# %% [markdown]
# Without the ids, captions 0 and 2 are pushed away from a copy of their own video, which they match almost as well
# as their own. That is a false negative, and it dominates both unmasked losses. With the ids only genuine negatives
# remain, such as video 1 for caption 3: it comes within the margin of caption 3's own video.
#
# ## 4. The fit loop
#
# `fit` trains a `RetrievalModel` (a head plus CLIP's temperature, plus CLIP's towers when fine-tuning end to end).
# It uses AdamW with one learning rate for pretrained weights and another for new modules, a linear warm-up then
# cosine decay (torch's schedulers), gradient clipping, a checkpoint after every epoch (resume continues exactly where
# an interrupted run stopped; a unit test checks the weights are identical), and keeps the epoch that is best on the
# **validation** split. The test split is never looked at during training.

# %%
show_source(FitConfig)
show_source(fit)

# %% [markdown]
# ### Training mean pooling on frozen features changes nothing
#
# On cached CLIP features mean pooling's only trainable number is the temperature. A temperature rescales every score
# of a caption alike and cannot reorder them, so the ranking, and every metric, stays exactly the zero-shot one:

# %%
torch.manual_seed(seed)
frozen_meanP = fit(
    RetrievalModel(HEADS.build("meanP"), logit_scale=clip_temperature),
    train,
    val,
    epochs=1,
    batch_size=T["batch_size"],
    lr=T["lr"],
    seed=seed,
    progress=False,
)
print("trainable parameters:", [n for n, _ in frozen_meanP.model.named_parameters()])
same = torch.equal(score_all(frozen_meanP.head, queries, videos), score_all(meanP, queries, videos))
assert same  # guaranteed: only the temperature moved
print(
    f"temperature exp(tau): {np.exp(clip_temperature):.2f} -> {frozen_meanP.model.logit_scale.exp().item():.2f}; "
    f"test scores unchanged: {same}"
)

# %% [markdown]
# ## 5. The losses side by side
#
# To compare the losses we need a head that *can* learn on frozen features. We use CLIP4Clip's `seqLSTM` (an LSTM
# over the frames plus a residual, then mean pooling; notebook 04 takes it apart). Everything else is identical:
# same features, epochs, batch, learning-rate schedule and seed. Each run keeps its best validation epoch. We do not
# tune either loss for this comparison. The hinge runs at the learning rate chosen for InfoNCE, and VSE++ trained its
# hinge with other settings (Adam, lr 2e-4).

# %%
cfg = FitConfig(epochs=T["epochs"], batch_size=T["batch_size"], lr=T["lr"], seed=seed)
runs = {}
for loss in ("infonce", "hinge"):
    torch.manual_seed(seed)
    head = HEADS.build("seqLSTM", dim=videos.frames.shape[-1])
    runs[loss] = fit(
        RetrievalModel(head, logit_scale=clip_temperature), train, val, cfg, loss=loss, margin=margin, progress=False
    )
history = pd.concat([r.history.assign(objective=k) for k, r in runs.items()])
history[["objective", "epoch", "train_loss", "val_R1", "val_R5", "val_MnR", "logit_scale", "train_seconds"]].round(2)

# %%
steps = pd.concat([r.steps.assign(objective=k) for k, r in runs.items()])
steps["relative loss"] = steps["loss"] / steps.groupby("objective")["loss"].transform("first")
fig, axes = figure("03_learning_curves", profile, width=10, height=3.5, ncols=2)
sns.lineplot(data=steps, x="step", y="relative loss", hue="objective", ax=axes[0])
axes[0].set_title("training loss / its first value")
sns.lineplot(data=history, x="epoch", y="val_R1", hue="objective", marker="o", ax=axes[1])
axes[1].set_title("validation t2v R@1 (%)")
save_figure(fig)

# %%
loss_evals = [
    evaluate(runs[k].head, texts, videos, test, method=f"seqLSTM + {k}", n_boot=S.n_boot, seed=seed) for k in runs
]
q = torch.as_tensor(test.query_index)
loss_cmp = M.compare(loss_evals[0].sim[q], loss_evals[1].sim[q], gold, "t2v", metric="R1", n_boot=S.n_boot, seed=seed)
summary_frame([zero_shot, *loss_evals]).T

# %% [markdown]
# ## 6. End to end: fine-tuning CLIP's towers (CLIP4Clip)
#
# CLIP4Clip trains mean pooling by fine-tuning CLIP itself, with a learning rate 1000× lower than that of new
# modules. Every step decodes the batch's videos (`random_in_segment`: one random frame per segment, an augmentation),
# runs the frames through the image tower and the captions through the text tower **with gradients**, mean-pools,
# and applies the InfoNCE loss. This is far costlier than training on cached features. Here it is a short
# demonstration (the settings table above gives its budget) on a copy of the tiny CLIP. The session's encoder and the
# feature cache are never modified. After training, the test split is re-encoded with the fine-tuned towers.

# %%
show_source(FrameSource.batch)

# %%
torch.manual_seed(seed)
e2e_model = RetrievalModel(HEADS.build("meanP"), encoder=finetunable_copy(S.encoder), logit_scale=clip_temperature)
e2e_val = FrameSource(S.data("val"), S.num_frames)
if T["e2e_val_videos"]:
    e2e_val = e2e_val.subset(T["e2e_val_videos"])
e2e = fit(
    e2e_model,
    FrameSource(S.data("train"), S.num_frames),
    e2e_val,
    epochs=T["e2e_epochs"],
    batch_size=T["e2e_batch_size"],
    lr=T["lr"],
    lr_encoder=T["lr_encoder"],
    max_steps_per_epoch=T["e2e_steps"] or None,
    seed=seed,
    progress=False,
)
e2e_step_seconds = e2e.history["train_seconds"].sum() / e2e.history["steps"].sum()
e2e.history.round(3)

# %%
t0 = time.perf_counter()
e2e_texts, e2e_videos = FrameSource(test, S.num_frames).eval_inputs(e2e.model)  # the test split, re-encoded
e2e_encode_seconds = time.perf_counter() - t0
finetuned = evaluate(e2e.head, e2e_texts, e2e_videos, test, method="meanP end-to-end", n_boot=S.n_boot, seed=seed)
e2e_cmp = M.compare(finetuned.sim[q], zero_shot.sim[q], gold, "t2v", metric="R1", n_boot=S.n_boot, seed=seed)
ft = finetuned.twins.set_index("factor")
assert ft.loc["direction", "accuracy"] == 50.0  # still mean pooling: still blind to direction
summary_frame([zero_shot, finetuned]).T

# %% [markdown]
# ## 7. Which frames matter?
#
# Mean pooling's cosine splits exactly into one term per frame:
# `s = Σ_f ⟨t̂, v̂_f⟩ / (n ‖m‖)` with `m` the mean of the normalised frames. Every frame enters with the **same
# weight**. Some captions describe a single event (*"a red circle moves to the left"*). For those, the frames of
# that event are the evidence, and the other frames dilute it. Below: the per-frame contributions for a few such
# queries with the zero-shot tiny CLIP (dashed lines mark the described event), then, over all single-event queries,
# the caption's cosine with frames inside vs outside the event it describes.

# %%
show_source(frame_contributions)

# %%
kind = np.array(test.meta.get("kind_of_query", ["video"] * len(gold)))
has_events = bool((kind == "event").any()) and "video_fields" in test.meta
if has_events:
    events = sampled_frame_events(test, S.num_frames)  # [V, F]: event of each sampled frame
    fields = test.meta["sentence_fields"]
    ev_q = np.flatnonzero(kind == "event")
    ev_idx = np.array([fields[test.query_index[i]]["event_index"] for i in ev_q])
    g_ev = gold[ev_q]
    contrib = frame_contributions(queries.sentence[ev_q], videos.frames[g_ev], videos.mask[g_ev]).numpy()
    unit = torch.nn.functional.normalize(videos.frames[g_ev], dim=-1)
    cos = (unit @ torch.nn.functional.normalize(queries.sentence[ev_q], dim=-1)[:, :, None]).squeeze(-1).numpy()
    inside = events[g_ev] == ev_idx[:, None]
    outside = (events[g_ev] >= 0) & ~inside
    frame_table = pd.DataFrame(
        {
            "frames": ["inside the described event", "in the other events"],
            "mean cosine with the caption": [cos[inside].mean(), cos[outside].mean()],
            "share of the frames": [
                inside.sum() / (inside.sum() + outside.sum()),
                outside.sum() / (inside.sum() + outside.sum()),
            ],
            "share of the score": [
                contrib[inside].sum() / contrib[inside | outside].sum(),
                contrib[outside].sum() / contrib[inside | outside].sum(),
            ],
        }
    )
    fig, ax = figure("03_frame_contributions", profile, width=8, height=3.2)
    show = slice(0, 6)
    sns.heatmap(contrib[show], cmap="viridis", ax=ax, cbar_kws={"label": "contribution to the score"})
    for r, row_in in enumerate(inside[show]):
        cols = np.flatnonzero(row_in)
        if cols.size:
            ax.plot([cols[0], cols[0]], [r, r + 1], "w--")
            ax.plot([cols[-1] + 1, cols[-1] + 1], [r, r + 1], "w--")
    ax.set_xlabel("sampled frame")
    ax.set_ylabel("single-event query")
    save_figure(fig)

# %%
frame_table.round(3) if has_events else "no single-event queries in this dataset"

# %% [markdown]
# **How many frames does mean pooling need?** We keep `k` evenly spaced frames of every test video (masking the rest)
# and score again with the same heads: zero-shot and end-to-end fine-tuned mean pooling.

# %%
k_rows = []
for name, head, vids, txt in (
    ("zero-shot", meanP, videos, queries),
    ("end-to-end", e2e.head, e2e_videos, e2e_texts.index(q)),
):
    for k in sorted({1, 2, 3, 4, 6, S.num_frames}):
        r = M.with_ci(score_all(head, txt, keep_uniform_frames(vids, k)), gold, "t2v", n_boot=S.n_boot, seed=seed)
        k_rows.append({"meanP": name, "frames kept": k, "R1": r["R1"], "R1_lo": r["R1_lo"], "R1_hi": r["R1_hi"]})
k_table = pd.DataFrame(k_rows)
fig, ax = figure("03_frames_kept", profile, width=6, height=3.2)
for name, part in k_table.groupby("meanP"):
    ax.errorbar(
        part["frames kept"],
        part["R1"],
        yerr=[part["R1"] - part["R1_lo"], part["R1_hi"] - part["R1"]],
        marker="o",
        capsize=3,
        label=name,
    )
ax.set_xlabel("frames kept per video")
ax.set_ylabel("test t2v R@1 (%)")
ax.legend(title="meanP")
save_figure(fig)

# %% [markdown]
# ## Results
#
# Every head's t2v and v2t metrics with CIs and its per-factor twin accuracy go to
# `results/<profile>/mean_pooling_and_training.csv`; the frames-kept curve and the learning curves go beside it.

# %%
budget = {
    "meanP zero-shot": "none",
    "meanP frozen (temperature only)": "1 epoch",
    "seqLSTM + infonce": f"{T['epochs']} epochs",
    "seqLSTM + hinge": f"{T['epochs']} epochs",
    "meanP end-to-end": f"{len(e2e.steps)} steps x {T['e2e_batch_size']}",
}
frozen_eval = evaluate(
    frozen_meanP.head, texts, videos, test, method="meanP frozen (temperature only)", n_boot=S.n_boot, seed=seed
)
rows = []
for ev in (zero_shot, frozen_eval, *loss_evals, finetuned):
    rows += evaluation_rows("mean_pooling_and_training", ev, budget=budget[ev.method], seed=seed)
paths = [
    S.save("mean_pooling_and_training", rows),
    S.save("mean_pooling_frames_kept", k_table.assign(experiment="mean_pooling_frames_kept", seed=seed)),
    S.save("mean_pooling_learning_curves", history.assign(experiment="mean_pooling_learning_curves", seed=seed)),
]
print("\n".join(p.name for p in paths))


# %% [markdown]
# ## What we found

# %%
def fmt(d, m="R1"):
    return f"{d[m]:.1f} % [{d[m + '_lo']:.1f}, {d[m + '_hi']:.1f}]"


zs, ftw = zero_shot.twins.set_index("factor"), finetuned.twins.set_index("factor")
best_loss = "infonce" if loss_cmp["delta"] > 0 else "hinge"
print(
    f"Zero-shot mean pooling: t2v R@1 {fmt(zero_shot.t2v)}, v2t R@1 {fmt(zero_shot.v2t)}; twins: order "
    f"{zs.loc['order', 'accuracy']:.1f} %, direction {zs.loc['direction', 'accuracy']:.1f} % (an exact tie, as "
    f"guaranteed), detail {zs.loc['detail', 'accuracy']:.1f} %."
)
print("Training meanP on frozen features moved only the temperature, and the test ranking stayed identical.")
print(
    f"Losses on seqLSTM ({T['epochs']} epochs each): InfoNCE t2v R@1 {fmt(loss_evals[0].t2v)} vs hinge "
    f"{fmt(loss_evals[1].t2v)}; paired difference {loss_cmp['delta']:+.1f} points, 95 % CI "
    f"[{loss_cmp['ci'][0]:+.1f}, {loss_cmp['ci'][1]:+.1f}]"
    + (
        f" (a clear win for {best_loss} on this run)."
        if loss_cmp["ci"][0] > 0 or loss_cmp["ci"][1] < 0
        else " (no clear winner on this run)."
    )
    + f" Best validation epochs: InfoNCE {runs['infonce'].best_epoch}, hinge {runs['hinge'].best_epoch} of "
    f"{T['epochs']} (validation R@1 by epoch: InfoNCE {runs['infonce'].history['val_R1'].round(1).tolist()}, "
    f"hinge {runs['hinge'].history['val_R1'].round(1).tolist()})."
)
print(
    f"End-to-end fine-tuning ({len(e2e.steps)} steps of {T['e2e_batch_size']} pairs, {e2e_step_seconds:.1f} s per "
    f"step here): t2v R@1 {fmt(zero_shot.t2v)} -> {fmt(finetuned.t2v)} (paired difference "
    f"{e2e_cmp['delta']:+.1f} points, 95 % CI [{e2e_cmp['ci'][0]:+.1f}, {e2e_cmp['ci'][1]:+.1f}]); MnR "
    f"{zero_shot.t2v['MnR']:.1f} -> {finetuned.t2v['MnR']:.1f}. Direction twins stay at "
    f"{ftw.loc['direction', 'accuracy']:.1f} %: fine-tuning the towers cannot give mean pooling a sense of order."
)
if has_events:
    ins, out = frame_table.iloc[0], frame_table.iloc[1]
    print(
        f"Single-event captions match the frames of their event better (mean cosine "
        f"{ins['mean cosine with the caption']:.3f}) than the other frames ({out['mean cosine with the caption']:.3f}), "
        f"but those frames are {100 * ins['share of the frames']:.0f} % of the frames and give "
        f"{100 * ins['share of the score']:.0f} % of the mean-pooled score: averaging dilutes the evidence."
    )
zk = k_table[k_table["meanP"] == "zero-shot"].set_index("frames kept")["R1"]
print(
    f"Frames kept (zero-shot): R@1 {zk.iloc[0]:.1f} % with 1 frame, {zk.loc[S.num_frames]:.1f} % with all "
    f"{S.num_frames}."
)
