# %% [markdown]
# # 01 · Encoding with CLIP: frames, tokens, the tiny CLIP, the cache
#
# Every method in the four papers starts the same way: sample frames from the video, run each frame through CLIP's
# image encoder, run the caption through CLIP's text encoder. This notebook walks through that path.
#
# **What you will learn here**
#
# * the three frame samplers (CLIP4Clip's uniform, X-Pool's segment middles, random-in-segment for training), and
#   how short videos are padded **and masked**;
# * what CLIP gives back: per frame a CLS embedding `[D]` and patch tokens `[P, D]`; per caption a sentence (EOT)
#   embedding `[D]` and word tokens `[L, D]` with a mask;
# * the **tiny CLIP** this suite trains on the benchmark's still frames, and how good it is (zero-shot naming of
#   colour, shape and *position* on held-out frames);
# * two diagnostics that decide what later heads can learn: can the frame features tell *where* an object is (the
#   frames of two direction twins), and can the frozen text tower tell a direction from its opposite?
# * the feature **cache**: encode once, key by everything that changes the numbers, reuse;
# * **zero-shot retrieval** by mean pooling — the baseline every later notebook improves on.
#
# The real path is the same code with `clip_model="ViT-B-32", pretrained="openai"` (profile `msrvtt`).
#
# **On real data:** `python -m tvrlib run-notebooks --profile msrvtt --out results/msrvtt/executed notebooks/01_encoding_with_clip.ipynb`
# (or `msrvtt-7k`, `msvd`, `lsmdc`, `didemo`, `activitynet`); the data, the weights and the exact commands are in
# `docs/reproduce-real-data.md`. Sections that need the synthetic benchmark print "skipped" there.

# %% tags=["parameters"]
profile = "quick"
dataset = None
# None = the profile's model ("tvr-tiny-attn" for tiny/quick/full) and weights (the tiny CLIP trained here)
clip_model = None
pretrained = None
device = "auto"
seed = 0

# %%
import json

import numpy as np
import pandas as pd
from IPython.display import display

import tvrlib.session
from tvrlib import diagnostics as D
from tvrlib import metrics as M
from tvrlib.cache import FeatureCache, default_cache_dir
from tvrlib.encoders import CONFIG_DIR, TINY_MODELS
from tvrlib.heads import HEADS
from tvrlib.pretrain import (
    pretrain_config,
    pretrain_history,
    render_still_frames,
    zero_shot_accuracy,
    zero_shot_position_accuracy,
)
from tvrlib.reporting import figure, frame_grid, metrics_frame, save_figure, show_source
from tvrlib.synthetic import benchmark as B
from tvrlib.video import sample_frames, sample_indices

S = tvrlib.session.setup(
    profile, dataset=dataset, clip_model=clip_model, pretrained=pretrained, device=device, seed=seed
)
S.settings

# %% [markdown]
# ## 1. Sampling frames
#
# A clip of `n` frames gives `num_frames` frames. CLIP4Clip takes `linspace(0, n-1, num_frames)`; X-Pool cuts the
# clip into equal segments and takes each middle; for training, a random frame per segment adds variety. A clip
# shorter than `num_frames` gives all its frames, then zero frames whose **mask** is `False`. Every later module
# takes that mask as an explicit argument; padding is never guessed from zeros.

# %%
# NBVAL_CHECK_OUTPUT
rng = np.random.default_rng(seed)
pd.DataFrame(
    {
        mode: {f"n={n}": sample_indices(n, 12, mode, rng=rng).tolist() for n in (45, 100, 7)}
        for mode in ("uniform", "segment_middle", "random_in_segment")
    }
).T

# %%
show_source(sample_frames)

# %%
# NBVAL_CHECK_OUTPUT
test = S.data("test")
frames, mask = sample_frames(test.videos[0].path, num_frames=12, size=S.encoder.image_size)
print("frames:", frames.shape, frames.dtype, "  mask:", mask.astype(int))

# %% [markdown]
# ## 2. The tiny CLIP
#
# `tvr-tiny-attn` is an ordinary open_clip model built from a small JSON config shipped in `tvrlib/model_configs/` and
# registered with open_clip (`open_clip.add_model_config`), so `open_clip.create_model("tvr-tiny-attn")` works like
# `create_model("ViT-B-32")`. Its image tower is a small ResNet (timm's `resnet10t`, through open_clip's timm
# adapter) on 64×64 frames, ending in an **attention pool with position embeddings** (timm's `abs_attn`, the same
# idea as the attention pool that ends CLIP's own ResNets): a query token attends over the cells of the final 2×2
# feature map, each cell tagged with where it is. The pool's outputs at the cells are the "patch tokens". Its text
# tower is a 3-layer transformer with open_clip's own tokenizer.
#
# **Why an attention pool.** The suite's first tiny CLIP (`tvr-tiny`, still shipped) ended in a global *average*
# pool, which sums the cells wherever they are: its frame features could say *what* is in a frame but hardly *where*
# (position named zero-shot 20.5 % of the time, chance 11 %), so a red square at the top and one at the bottom got
# almost the same feature, and no temporal head could ever tell "moves up" from "moves down". We measured the
# alternatives (`benchmarks/tiny_clip_position.py`, table in `docs/performance.md`): trained from scratch on two CPU
# cores, a tiny ViT and CLIP's ResNet design learned colours but not shapes in 3 epochs; the ResNet trunk with an
# attention pool lost shape in 3 epochs and learned colour, shape and position in 6 (the budget used here). (ViT-B/32 on the real path keeps position in its patch tokens and
# its CLS token; it is unaffected.)

# %%
# NBVAL_CHECK_OUTPUT
tiny = S.settings["clip_model"] in TINY_MODELS and S.settings["pretrained"] is None
if tiny:
    cfg_json = json.loads((CONFIG_DIR / f"{S.settings['clip_model']}.json").read_text())
    print(json.dumps(cfg_json, indent=1))
else:
    print(f"{S.settings['clip_model']} with weights {S.settings['pretrained']!r}: not the tiny CLIP (open_clip's config)")

# %% [markdown]
# ### Pretraining
#
# CLIP is pretrained on image–text pairs; ours on the benchmark's (still frame, static description) pairs with
# open_clip's contrastive loss (`open_clip.loss.ClipLoss`), AdamW and a cosine schedule. Its batches hold groups of
# four stills that differ in one thing only, so that a batch cannot be solved by the easy attributes alone: in most
# groups the shape or the colour of the main object, and in a third of them **only where it is** (the descriptions
# then name its place, "… at the top left"). Without those position groups a contrastive batch is solved by colour and
# shape, and position is never asked for. The checkpoint is trained once (about 7 minutes on two CPU cores) and then
# reused: its file name encodes the model, the benchmark config digest, the training settings and the seed. The
# history below is the one recorded when this checkpoint was trained.

# %%
enc = S.encoder  # trains the tiny CLIP first if no checkpoint exists yet
print(enc)
if tiny:
    from tvrlib.pretrain import ensure_tiny_clip

    clip_benchmark = S.settings.get("clip_benchmark") or S.settings["benchmark"]
    record = pretrain_history(ensure_tiny_clip(clip_benchmark, model_name=S.settings["clip_model"]))
    print("pretraining settings:", pretrain_config(S.settings["clip_model"]))
    hist = pd.DataFrame(record["history"])
    fig, ax = figure("01_pretraining_loss", profile, width=5, height=3)
    ax.plot(hist["epoch"], hist["loss"], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("contrastive loss")
    save_figure(fig)
    print(f"{record['num_pairs']} pairs, {len(hist)} epochs, {record['seconds']:.0f} s when it was trained")

# %%
show_source(tvrlib.pretrain.pretrain_tiny_clip)

# %% [markdown]
# ### How good is it? Zero-shot colour, shape and position on held-out frames
#
# Held-out stills show one main object (sometimes with a small distractor in a corner). For each frame we score the
# prompts "a {colour} {shape}" for all 7 × 4 = 28 combinations and take the best: the frame is right if both colour
# and shape are right. Chance is 1/28 ≈ 3.6 %. Then, with colour and shape given, we score "a {colour} {shape} at the
# {place}" for the 9 cells of the grid ("at the top left", …, "in the middle"): the frame is right if the place is.
# Chance is 1/9 ≈ 11 %. Our target is at least 90 % for both. (The stills come from the benchmark named by the
# profile; the tiny CLIP of `tiny` was pretrained on `quick`'s stills.)

# %%
zs = pos = None
if tiny:  # the stills the tiny CLIP was pretrained on come from a synthetic benchmark, whatever the dataset
    specs, descs, labels = B.load_stills(clip_benchmark, "heldout")
    cfg = B.load_config(clip_benchmark)
    held = render_still_frames(specs, cfg.frame_size, enc.image_size)
    zs = zero_shot_accuracy(enc, held, labels)
    print(
        f"zero-shot colour+shape accuracy on {zs['n']} held-out frames: {100 * zs['accuracy']:.1f} % "
        f"(colour {100 * zs['color_accuracy']:.1f} %, shape {100 * zs['shape_accuracy']:.1f} %; "
        f"chance {100 / zs['num_classes']:.1f} %)"
    )
    pos = zero_shot_position_accuracy(enc, held, specs)
    print(
        f"zero-shot position accuracy (colour and shape given) on {pos['n']} held-out frames: "
        f"{100 * pos['accuracy']:.1f} % (row {100 * pos['row_accuracy']:.1f} %, column "
        f"{100 * pos['column_accuracy']:.1f} %; chance 11.1 %)"
    )
else:
    print("skipped: not the tiny CLIP (these stills test what it was pretrained on)")
if tiny and S.settings["dataset"] == "synthetic" and profile != "tiny":  # the tiny profile's few stills make these numbers noisy; quick and full check them
    assert zs["accuracy"] >= 0.90, "the tiny CLIP misses its colour+shape target; see tvrlib/pretrain.py"
    assert pos["accuracy"] >= 0.90, "the tiny CLIP misses its position target; see tvrlib/pretrain.py"

# %%
wrong = [i for i, (p, y) in enumerate(zip(zs["predictions"], labels)) if p != y][:8] if zs else []
if wrong:
    frame_grid(
        [held[wrong]],
        col_labels=[f"{labels[i]}\n→ {zs['predictions'][i]}" for i in wrong],
        name="01_zero_shot_errors",
        profile=profile,
        cell=1.3,
    )

# %% [markdown]
# ### Two diagnostics: does a frame feature say *where*, does a sentence embedding say *which way*?
#
# Later notebooks train heads on these frozen features to tell **direction twins** apart: two videos with the same
# objects, one moving left to right and the other right to left (notebook 00). They hold the same frames in another
# order, so a head can tell them apart only if (1) it sees frame order, (2) the frame features say where the moving
# object is, and (3) the caption's embedding says which way it moves. (1) is the head's business (notebook 04);
# (2) and (3) are the encoder's, and we measure them here.
#
# **Frames.** For each direction twin pair of the test split we take the sampled frame where the two videos' pixels
# differ most (the object on one side in one video, on the other side in its twin) and compute the cosine between the
# two frames' CLS features; about 200 random pairs of different videos (a draw of the same video twice is dropped)
# give the scale of "different". The suite's first tiny CLIP (average pool) gave a median twin cosine of 0.988 on
# the quick benchmark (measured by `benchmarks/tiny_clip_position.py`, `docs/performance.md`): its two frames were
# nearly the same feature.
#
# **A probe.** Cosines say the features *differ*; a probe asks whether the difference is *readable*. For every move
# event of the training split we take the features of the first and the last sampled frame inside the move, and fit
# a linear classifier (logistic regression) that names the direction (left, right, up, down; chance 25 %); it is
# scored on the moves of the test split. The probe is told when the move happens; a retrieval head is not, so this is
# an upper bound on what a head can read from two frames, not a promise that one will.
#
# **Text.** The cosine between a caption's sentence embedding and three edits of it: the direction flipped, the same
# meaning in other words, a colour changed. A text tower that reads direction puts the flip further away than the
# paraphrase. Ours was pretrained on still descriptions, which never mention motion.

# %%
if "twins" in test.meta:
    tfc = D.twin_frame_cosines(enc, test, "direction", S.num_frames)
    frame_diag = tfc.groupby("pair")["cosine"].describe()[["count", "25%", "50%", "75%"]].loc[["twin", "random"]]
    frame_diag.index = ["direction twins, their most different frames", "random pairs of videos, same frame index"]
    display(frame_diag.round(3))
else:
    tfc = None
    print("skipped: this dataset has no twins (a synthetic-benchmark feature)")
probe = None
if D.has_video_specs(test):  # the video specs say when each move happens (synthetic benchmark only)
    probe = D.direction_probe(  # the features come from the feature cache (section 4), encoded on a first run
        S.data("train"), S.video_features("train").frames, test, S.video_features("test").frames, S.num_frames
    )
    print(
        f"direction probe: {100 * probe['test_accuracy']:.1f} % on {probe['n_test']} test moves "
        f"({100 * probe['train_accuracy']:.1f} % on the {probe['n_train']} training moves it was fit on; chance 25 %)"
    )
CAPTION = "a red square slides from right to left"
text_diag = D.text_cosines(
    enc,
    CAPTION,
    {
        "direction flipped": "a red square slides from left to right",
        "paraphrase": "a red square crosses the screen from right to left",
        "colour changed": "a blue square slides from right to left",
    },
)
print(f'cosine to "{CAPTION}":')
text_diag.round(4)

# %%
if tfc is not None:
    twin_cos = tfc.loc[tfc["pair"] == "twin", "cosine"].median()
    rand_cos = tfc.loc[tfc["pair"] == "random", "cosine"].median()
    print(
        f"Frames: a direction twin's most different frames have median cosine {twin_cos:.3f} "
        f"(random pairs {rand_cos:.3f}; the former average-pool tower 0.988): "
        + (
            "the features do change with where the object is."
            if twin_cos < 0.95
            else "the features barely change with where the object is."
        )
    )
if probe is not None:
    print(
        f"Probe: a linear classifier names a move's direction from two of its frames in {100 * probe['test_accuracy']:.1f}"
        " % of test moves: "
        + (
            "the direction is in the frozen frame features, readable by a linear map once you know when to look."
            if probe["test_accuracy"] >= 0.8
            else "the frozen frame features carry little of it."
        )
    )
c = text_diag["cosine"]
print(
    f"Text: direction flip {c['direction flipped']:.4f}, paraphrase {c['paraphrase']:.4f}, colour change "
    f"{c['colour changed']:.4f}: "
    + (
        "the frozen text tower puts the flip at least as close as the paraphrase: its caption features barely tell "
        "a direction from its opposite."
        if c["direction flipped"] >= c["paraphrase"]
        else "the flip is further away than the paraphrase."
    )
)

# %% [markdown]
# ## 3. From frames and captions to features
#
# Per frame the image encoder returns the CLS embedding (after `ln_post` and the projection, `[D]`) and the patch
# tokens mapped into the same joint space (`[P, D]`, as TS2-Net uses them). Per caption the text encoder returns the
# embedding at the end-of-text token (`[D]`) and every word token mapped into the joint space (`[L, D]`, as DRL uses
# them) with a mask that is `True` on real tokens.

# %%
# NBVAL_CHECK_OUTPUT
f = enc.encode_frames(frames)
t = enc.encode_text([test.texts[0], "a red circle"])
pd.DataFrame(
    {
        "frames (CLS)": [tuple(f.cls.shape)],
        "patch tokens": [tuple(f.patches.shape)],
        "sentences (EOT)": [tuple(t.sentence.shape)],
        "word tokens": [tuple(t.words.shape)],
        "word mask (real tokens per caption)": [t.mask.sum(1).tolist()],
    }
).T

# %%
show_source(type(enc).text_forward)

# %% [markdown]
# Bad input is stopped with a message that names the thing and the fix:

# %%
# NBVAL_CHECK_OUTPUT
from tvrlib.errors import TVRError

for bad in (
    lambda: sample_frames("no/such/video.mp4"),
    lambda: enc.encode_text(["a red circle", "   "]),
    lambda: tvrlib.encoders.load_encoder("ViT-B-99"),
):
    try:
        bad()
    except TVRError as err:
        print(f"{type(err).__name__}: {str(err)[:110]}...")

# %% [markdown]
# ## 4. The cache
#
# Encoding every video of every split takes minutes on a CPU for `quick` (measured below) and hours for MSR-VTT with
# ViT-B/32, so features are stored on disk. The key is a hash of everything that changes them: the dataset and a
# fingerprint of its files, the encoder and a digest of its weights, the sampler, the number of frames and the frame
# size. Changing any of them gives a new key, so a stale entry is never used. Writes are atomic: tensors first, then a
# manifest with their checksum as the commit marker, each written to a temporary file and renamed.

# %%
# every split's features: encoded on the first run, read from the disk cache on every later one
feats = {split: S.video_features(split) for split in ("train", "val", "test")}
texts = {split: S.text_features(split) for split in ("train", "val", "test")}

# %% [markdown]
# What does the cache save? The call above cannot tell: on a first run it encodes, on a later one it loads, and which
# one it did depends on your disk. So we time both on purpose, on the first validation videos, with the encoder
# already in memory and a throw-away cache directory (the project's cache is left alone): a first encode (which also
# pays one-off warm-ups — the video decoder, thread pools, the first forward pass — and writes the entry; on a busy
# machine that extra cost can vanish in the noise), repeated
# encodes, then repeated loads of the entry (read the file, check its sha256, unpickle). Timing a load right after
# clearing the session's memory would be misleading: that also drops the loaded encoder and the datasets, and the
# "load" then includes reloading them.

# %%
timing = D.time_encode_and_load(enc, S.data("val").subset(40), S.num_frames, S.settings["sampler"], repeats=3)
enc_s, load_s = float(np.median(timing["encode"])), float(np.median(timing["load"]))
per_video = enc_s / timing["videos"]
n_all = sum(len(v) for v in feats.values())
print(
    f"{timing['videos']} videos x {S.num_frames} frames: first encode {timing['first']:.2f} s (with warm-ups and the "
    f"cache write), then encodes of {', '.join(f'{x:.2f}' for x in timing['encode'])} s; "
    f"loads from the cache of {', '.join(f'{x:.3f}' for x in timing['load'])} s ({timing['bytes'] / 1e6:.2f} MB)."
)
print(
    f"Median: encode {enc_s:.2f} s, load {load_s:.3f} s: the cached load is "
    + (f"{enc_s / load_s:.0f} times faster" if load_s < enc_s else f"{load_s / enc_s:.1f} times SLOWER")
    + f". At {per_video:.2f} s per video, encoding all {n_all} videos of the three splits would take about "
    f"{per_video * n_all / 60:.1f} min on this machine now."
)

# %%
# NBVAL_CHECK_OUTPUT
pd.DataFrame(
    {
        split: {"frames": tuple(v.frames.shape), "mask": tuple(v.mask.shape), "unreadable videos": len(v.failed)}
        for split, v in feats.items()
    }
).T

# %%
entries = FeatureCache(default_cache_dir()).entries()
entries[["key", "size", "committed"]].assign(
    kind=[p.get("kind") for p in entries["parts"]], split=[p.get("split") for p in entries["parts"]]
).head(10)

# %% [markdown]
# ## 5. Zero-shot retrieval with mean pooling
#
# The simplest video embedding: L2-normalise each frame embedding, average them over the valid frames, normalise
# again (CLIP4Clip's `meanP`). A caption's score against a video is the cosine between the two. No training: this is
# what the pretrained image–text model knows about videos on its own.

# %%
show_source(type(HEADS.build("meanP")))

# %%
head = HEADS.build("meanP")
queries, qgold = S.queries("test")
sim_q = head.score(queries, S.videos("test"))
# v2t as the dataset's protocol says: MSR-VTT 1k-A ranks the query sentences only, ours every caption (notebook 00)
if test.meta.get("v2t_texts", "all") == "queries":
    res_v2t = M.with_ci(sim_q, qgold, "v2t", "best_caption", n_boot=S.n_boot, seed=seed)
else:
    sim_all = head.score(S.texts("test"), S.videos("test"))
    res_v2t = M.with_ci(sim_all, test.text_to_video, "v2t", "best_caption", n_boot=S.n_boot, seed=seed)
res = {"t2v": M.with_ci(sim_q, qgold, "t2v", n_boot=S.n_boot, seed=seed), "v2t": res_v2t}
if "kind_of_query" in test.meta:  # whole-video vs single-event captions: a synthetic-benchmark label
    kinds = np.array(test.meta["kind_of_query"])
    for k in ("video", "event"):
        sel = kinds == k
        res[f"t2v, {k} captions"] = M.with_ci(sim_q[sel], qgold[sel], "t2v", n_boot=S.n_boot, seed=seed)
from tvrlib.reporting import results_rows

rows = [r for name, m in res.items() for r in results_rows("zero_shot", "meanP", name, m)]
S.save("zero_shot_meanP", rows)
metrics_frame(res)

# %% [markdown]
# ## What we found

# %%
t = res["t2v"]
if zs is not None:
    print(
        f"The tiny CLIP names colour and shape of held-out frames with {100 * zs['accuracy']:.1f} % accuracy and "
        f"the main object's place with {100 * pos['accuracy']:.1f} % (targets 90 %)."
    )
print(
    f"Zero-shot mean pooling: t2v R@1 {t['R1']:.1f} % [{t['R1_lo']:.1f}, {t['R1_hi']:.1f}], "
    f"R@5 {t['R5']:.1f} %, MdR {t['MdR']:.1f}; v2t R@1 {res['v2t']['R1']:.1f} %."
)
if "t2v, video captions" in res:
    print(
        f"Queries describing the whole video: R@1 {res['t2v, video captions']['R1']:.1f} %; queries about a single "
        f"event: R@1 {res['t2v, event captions']['R1']:.1f} %."
    )
if S.profile == "fixture":
    print("(fixture profile: a handful of real-format videos prove the code path; these numbers mean nothing)")
