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
#   colour and shape on held-out frames);
# * the feature **cache**: encode once, key by everything that changes the numbers, reuse;
# * **zero-shot retrieval** by mean pooling — the baseline every later notebook improves on.
#
# The real path is the same code with `clip_model="ViT-B-32", pretrained="openai"` (profile `msrvtt`).

# %% tags=["parameters"]
profile = "quick"
dataset = None
# None = the profile's model ("tvr-tiny" for quick/full) and weights (the tiny CLIP trained here)
clip_model = None
pretrained = None
device = "auto"
seed = 0

# %%
import json

import numpy as np
import pandas as pd

import tvrlib.session
from tvrlib import diagnostics as D
from tvrlib import metrics as M
from tvrlib.cache import FeatureCache, default_cache_dir
from tvrlib.encoders import CONFIG_DIR
from tvrlib.heads import HEADS
from tvrlib.pretrain import pretrain_history, render_still_frames, zero_shot_accuracy
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
# `tvr-tiny` is an ordinary open_clip model built from a small JSON config shipped in `tvrlib/model_configs/` and
# registered with open_clip (`open_clip.add_model_config`), so `open_clip.create_model("tvr-tiny")` works like
# `create_model("ViT-B-32")`. Its image tower is a small ResNet (timm's `resnet10t`, through open_clip's timm
# adapter) on 64×64 frames; the cells of its final 2×2 feature map, projected like the pooled embedding, are the
# "patch tokens". Its text tower is a 3-layer transformer with open_clip's own tokenizer. (We first tried a tiny ViT:
# trained from scratch on two CPU cores it learned colours at once but stayed at chance on shapes for the whole
# budget; a convolutional tower learns shapes in a few hundred steps. ViT-B/32 on the real path is unaffected.)

# %%
# NBVAL_CHECK_OUTPUT
cfg_json = json.loads((CONFIG_DIR / "tvr-tiny.json").read_text())
print(json.dumps(cfg_json, indent=1))

# %% [markdown]
# ### Pretraining
#
# CLIP is pretrained on image–text pairs; ours on the benchmark's (still frame, static description) pairs with
# open_clip's contrastive loss (`open_clip.loss.ClipLoss`), AdamW and a cosine schedule. The checkpoint is trained
# once (a few minutes on two CPU cores) and then reused: its file name encodes the benchmark config digest, the
# training settings and the seed. The history below is the one recorded when this checkpoint was trained.

# %%
enc = S.encoder  # trains the tiny CLIP first if no checkpoint exists yet
print(enc)
if S.settings["clip_model"] == "tvr-tiny" and S.settings["pretrained"] is None:
    from tvrlib.pretrain import ensure_tiny_clip

    record = pretrain_history(ensure_tiny_clip(S.settings["benchmark"]))
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
# ### How good is it? Zero-shot colour and shape on held-out frames
#
# Held-out stills show one main object (sometimes with a small distractor in a corner). For each frame we score the
# prompts "a {colour} {shape}" for all 7 × 4 = 28 combinations and take the best: the frame is right if both colour
# and shape are right. Chance is 1/28 ≈ 3.6 %. Our target is at least 90 %.

# %%
specs, descs, labels = B.load_stills(S.settings["benchmark"], "heldout")
cfg = B.load_config(S.settings["benchmark"])
held = render_still_frames(specs, cfg.frame_size, enc.image_size)
zs = zero_shot_accuracy(enc, held, labels)
print(
    f"zero-shot colour+shape accuracy on {zs['n']} held-out frames: {100 * zs['accuracy']:.1f} % "
    f"(colour {100 * zs['color_accuracy']:.1f} %, shape {100 * zs['shape_accuracy']:.1f} %; chance {100 / zs['num_classes']:.1f} %)"
)
assert zs["accuracy"] >= 0.90, "the tiny CLIP misses its quality target; see tvrlib/pretrain.py"

# %%
wrong = [i for i, (p, y) in enumerate(zip(zs["predictions"], labels)) if p != y][:8]
if wrong:
    frame_grid(
        [held[wrong]],
        col_labels=[f"{labels[i]}\n→ {zs['predictions'][i]}" for i in wrong],
        name="01_zero_shot_errors",
        profile=profile,
        cell=1.3,
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
# pays one-off warm-ups — the video decoder, thread pools, the first forward pass — and writes the entry), repeated
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
sim_all = head.score(S.texts("test"), S.videos("test"))
res = {
    "t2v": M.with_ci(sim_q, qgold, "t2v", n_boot=S.n_boot, seed=seed),
    "v2t": M.with_ci(sim_all, test.text_to_video, "v2t", "best_caption", n_boot=S.n_boot, seed=seed),
}
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
print(
    f"The tiny CLIP names colour and shape of held-out frames with {100 * zs['accuracy']:.1f} % accuracy (target 90 %)."
)
print(
    f"Zero-shot mean pooling: t2v R@1 {t['R1']:.1f} % [{t['R1_lo']:.1f}, {t['R1_hi']:.1f}], "
    f"R@5 {t['R5']:.1f} %, MdR {t['MdR']:.1f}; v2t R@1 {res['v2t']['R1']:.1f} %."
)
print(
    f"Queries describing the whole video: R@1 {res['t2v, video captions']['R1']:.1f} %; queries about a single "
    f"event: R@1 {res['t2v, event captions']['R1']:.1f} %."
)
