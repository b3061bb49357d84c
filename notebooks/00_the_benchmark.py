# %% [markdown]
# # 00 · The benchmark: shapes that move, and captions that say how
#
# Text-video retrieval asks: given a sentence, which video does it describe (text-to-video, **t2v**), and given a
# video, which sentences describe it (video-to-text, **v2t**)? Real benchmarks (MSR-VTT, MSVD, LSMDC, DiDeMo,
# ActivityNet) need gigabytes of video and a GPU. This suite's default run needs neither: it uses a **synthetic
# benchmark** generated on your machine and a **tiny CLIP** trained on it (notebook 01).
#
# **What you will learn here**
#
# * what the synthetic videos contain: coloured shapes on a background, 2–4 consecutive *events* (appear,
#   disappear, move left/right/up/down, grow, shrink), sometimes a small *distractor* in a corner;
# * how captions are written: a grammar with paraphrases; some captions describe the whole video, some a single
#   event (*partial relevance*);
# * the **twins**: pairs of test videos that differ in exactly one factor — the **order** of two events, the
#   **direction** of a motion, or the colour of a small **detail** — so every method can be scored per factor
#   (is the gold video ranked above its twin? chance = 50 %);
# * why mean pooling is *provably* at chance on direction twins;
# * the (frame, static description) pairs used to pretrain the tiny CLIP.
#
# The benchmark is written to disk in the **MSR-VTT format** (`MSRVTT_data.json`, split csv files, mp4 videos), and
# read by the very loader that reads the real MSR-VTT.
#
# **On real data:** `python -m tvrlib run-notebooks --profile msrvtt --out results/msrvtt/executed notebooks/00_the_benchmark.ipynb`
# (or `msrvtt-7k`, `msvd`, `lsmdc`, `didemo`, `activitynet`); the data, the weights and the exact commands are in
# `docs/reproduce-real-data.md`. Sections that need the synthetic benchmark print "skipped" there.

# %% tags=["parameters"]
profile = "quick"  # quick | full: which synthetic config (data/synthetic/<name>.json)
# None = take the value from the profile
dataset = None
seed = 0

# %%
import json
from collections import Counter

import numpy as np
import pandas as pd
from IPython.display import display

import tvrlib.session
from tvrlib import diagnostics as D
from tvrlib.reporting import frame_grid, show_source, versions
from tvrlib.synthetic import benchmark as B
from tvrlib.synthetic import world as W
from tvrlib.video import sample_frames, sample_indices

S = tvrlib.session.setup(profile, dataset=dataset, seed=seed)
synthetic = S.settings["dataset"] == "synthetic"  # on real data this notebook shows the splits and a few videos
cfg = root = ann = None
if synthetic:
    cfg = B.load_config(S.settings["benchmark"])
    root = B.generate(cfg, progress=False)  # generated once, then reused (about 30 s for `quick`)
    ann = json.loads((root / "MSRVTT_data.json").read_text())
else:
    print(f"{S.settings['dataset']}: a real dataset. The sections about the synthetic world, twins and stills are skipped.")
versions().T

# %% [markdown]
# ## 1. The configuration
#
# Everything is deterministic from this config file and its seed: the same config gives the same videos, byte for
# byte. Each video has `intervals × frames_per_interval + 1` frames; event boundaries fall on multiples of
# `frames_per_interval`, so the default sampler (12 frames, `linspace(0, n-1, 12)`) takes the first and last frame of
# every event.

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    display(pd.Series({k: v for k, v in vars(cfg).items() if k != "description"}, name=cfg.name).to_frame())
else:
    print('skipped: a synthetic-benchmark feature')

# %% [markdown]
# ## 2. Splits, in the MSR-VTT format
#
# The generated folder holds exactly what MSR-VTT ships (`MSRVTT_data.json` with `videos`/`sentences`, a train csv,
# a validation csv and a JSFusion-style test csv with one query sentence per test video) plus the twins. Training
# uses `train`; **model selection uses `val`**; `test` is only for the final numbers.
#
# **How this compares with MSR-VTT 1k-A.** Our t2v on the test split uses one query caption per video, as 1k-A does
# (its 1,000 JSFusion query sentences for 1,000 videos). Our v2t does *not* follow 1k-A: each test video ranks
# **all** the captions of the split (several per video, printed below), while 1k-A papers rank only the 1,000 query
# sentences, one per video. Our v2t numbers are therefore not comparable with the v2t columns of 1k-A tables.

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for split in ("train", "val", "test"):
    d = S.data(split)
    rows.append(
        {
            "split": split,
            "videos": d.num_videos,
            "captions": len(d.texts),
            "t2v queries": len(d.query_index),
            "captions per video": len(d.texts) / d.num_videos,
        }
    )
splits = pd.DataFrame(rows).set_index("split")
splits

# %%
# NBVAL_CHECK_OUTPUT
te = splits.loc["test"]
print(
    f"test split: t2v ranks {int(te['videos'])} videos for each of {int(te['t2v queries'])} query captions "
    f"(one per video, as in 1k-A); v2t ranks all {int(te['captions'])} captions "
    f"({te['captions per video']:.0f} per video) for each video, where 1k-A's v2t ranks its 1,000 query "
    f"sentences only."
)

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    display(sorted(p.name for p in root.iterdir() if p.is_file()), len(list((root / "videos").glob("*.mp4"))))
else:
    print('skipped: the generated folder (synthetic benchmark)')

# %% [markdown]
# ## 3. The world: what a video can contain
#
# Seven object colours, four shapes, four backgrounds; objects sit on a 3×3 grid. An event involves one object.
# A *move* crosses the whole frame along a lane: the object is off-screen on the event's first and last frame.

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    pd.DataFrame(
        {
            "object colours": [", ".join(W.COLORS)],
            "shapes": [", ".join(W.SHAPES)],
            "backgrounds": [", ".join(W.BACKGROUNDS)],
            "events": [", ".join(W.EVENT_KINDS)],
            "directions": [", ".join(W.DIRECTIONS)],
        }
    ).T
else:
    print('skipped: the synthetic world')

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    test = S.data("test")
    kinds = Counter(e["kind"] for v in ann["videos"] for e in v["spec"]["events"])
    n_events = Counter(len(v["spec"]["events"]) for v in ann["videos"])
    with_distractor = np.mean([v["spec"]["distractor"] is not None for v in ann["videos"]])
    (
        pd.Series(kinds, name="events of each kind").to_frame().T,
        dict(sorted(n_events.items())),
        round(float(with_distractor), 3),
    )
else:
    print('skipped: event statistics (synthetic benchmark)')

# %% [markdown]
# ## 4. Looking at videos
#
# Each row is one test video sampled the way every model in this suite sees it: 12 frames, uniformly. The query
# caption is the row's label.

# %%
test = S.data("test")
path_of = {v.video_id: v.path for v in test.videos}  # wherever the loader found each file


def frames_of(video_id, size=96):
    path = path_of.get(video_id) or root / "videos" / f"{video_id}.mp4"  # a twin may be outside the test split
    return sample_frames(path, num_frames=12, size=size)[0]


picks = [i for i in (0, 5, 9) if i < len(test.query_index)]
qtexts, gold = [test.texts[i] for i in test.query_index], test.text_to_video[test.query_index]
labels = [f"{test.video_ids[gold[i]]}: {qtexts[i]}" for i in picks]
frame_grid(
    [frames_of(test.video_ids[gold[i]]) for i in picks],
    row_labels=labels,
    col_labels=[f"f{j}" for j in sample_indices(cfg.num_frames, 12)] if synthetic else None,
    name="00_videos",
    profile=profile,
)

# %% [markdown]
# ## 5. Captions: a grammar with paraphrases
#
# A *video* caption narrates every event in order with order words (`then`, `first … next … finally`, `before`,
# `after`); an *event* caption describes one event only — a partially relevant query, true of a part of the video.
# The first caption of each test video is its t2v query.

# %%
# NBVAL_CHECK_OUTPUT
caps = pd.DataFrame(
    {
        "video_id": [test.video_ids[j] for j in test.text_to_video],
        "kind": test.meta.get("kind_of_text", ["-"] * len(test.texts)),
        "caption": test.texts,
    }
)
with pd.option_context("display.max_colwidth", 200):
    display(caps.head(10))

# %%
# NBVAL_CHECK_OUTPUT
lengths = pd.Series([len(t.split()) for t in test.texts])
print(f"caption length in words: median {lengths.median():.0f}, max {lengths.max()}")
if "kind_of_query" in test.meta:
    qkinds = Counter(test.meta["kind_of_query"])
    print(f"t2v queries: {qkinds['video']} describe the whole video, {qkinds['event']} a single event")

# %% [markdown]
# ## 6. Twins: one factor apart
#
# A twin pair is two test videos that differ in **exactly one factor**:
#
# * **order** — two adjacent events swapped (`A appears, then B moves left` vs `B moves left, then A appears`);
# * **direction** — one motion reversed (left ↔ right, up ↔ down);
# * **detail** — the colour of the small distractor in the corner changes.
#
# Each twin's query caption mentions the factor. Per factor, a method is scored by how often the gold video
# outranks its twin for that query (ties count ½; chance = 50 %).

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    tw = pd.DataFrame(ann["twins"])
    display(tw.groupby("factor").size().rename("pairs").to_frame())
else:
    print('skipped: this dataset has no twins (a synthetic-benchmark feature)')

# %%
if synthetic:
    qi = {test.video_ids[g]: i for i, g in enumerate(gold)}
    rows, labels = [], []
    for factor in ("order", "direction", "detail"):
        t = tw[tw.factor == factor].iloc[0]
        for vid in (t.video_id, t.twin_id):
            rows.append(frames_of(vid))
            q = qtexts[qi[vid]]
            labels.append(f"{factor}: {vid}: {q}")
    frame_grid(rows, row_labels=labels, name="00_twins", profile=profile)
else:
    print('skipped: no twins')

# %% [markdown]
# **Watch a twin pair.** The two videos of the first order twin pair play below, each with its captions. The files are
# lossless H.264 in 4:4:4 colour (so that direction twins hold exactly the same frames), which browsers do not play
# reliably; what plays here is a 4:2:0 copy made for display (`tvrlib.explore.video_view`). Change `"order"` to
# `"direction"` or `"detail"` to watch the others.

# %%
if synthetic:
    from tvrlib import explore as E

    display(E.play_twins(test, "order", 0))
else:
    print('skipped: no twins')

# %% [markdown]
# ## 7. Why mean pooling cannot tell direction twins apart
#
# A moving object is off-screen on the first and last frame of its event and everything else is still while it moves,
# so reversing the motion reverses the frames of that event and leaves all other frames unchanged. With event
# boundaries on the sampling grid, the 12 sampled frames of a direction twin are **the same multiset** as the
# original's, in another order. Any method that ignores frame order (mean pooling, for one) gives both the same score
# (up to floating-point rounding, which the metrics absorb with a tie tolerance, notebook 02): a tie, so exactly 50 %.
# The videos are written losslessly (H.264 at qp 0, 4:4:4), so this holds for the decoded pixels, not just the
# rendered ones. We check it for every twin pair, of every factor:

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    def same_multiset(a, b):
        return sorted(map(bytes, a)) == sorted(map(bytes, b))


    checks = {
        f: [same_multiset(frames_of(r.video_id, 64), frames_of(r.twin_id, 64)) for r in tw[tw.factor == f].itertuples()]
        for f in ("direction", "order", "detail")
    }
    summary = pd.DataFrame({f: {"pairs": len(v), "same multiset of frames": int(sum(v))} for f, v in checks.items()}).T
    assert summary.loc["direction", "same multiset of frames"] == summary.loc["direction", "pairs"]
    display(summary)
else:
    print('skipped: no twins')

# %% [markdown]
# **Some order twins share their frames too.** Swapping two events usually changes what is on screen (swap
# `A appears` and `B moves left`, and the frames during B's move show A or not), but a moving object is on screen
# only during its own move (off-screen on the move's first and last frame, absent before and after). When *both*
# swapped events are moves, the swap merely exchanges two blocks of frames, and the twin holds the same multiset of
# frames as the original, exactly like a direction twin. Which order pairs share their frames, by the kinds of the
# two swapped events:

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    order_rows = tw[tw.factor == "order"]
    shared = dict(zip(zip(order_rows.video_id, order_rows.twin_id), checks["order"]))
    order_pairs = D.order_pairs_sharing_frames(ann["videos"], ann["twins"], lambda a, b: shared[(a, b)])
    by_kind = order_pairs.groupby("swapped")["same multiset of frames"].agg(pairs="size", same="sum")
    n_same, n_order = int(order_pairs["same multiset of frames"].sum()), len(order_pairs)
    mm = order_pairs[order_pairs.swapped == "move + move"]
    print(
        f"{n_same} of {n_order} order pairs hold the same multiset of frames; {int(mm['same multiset of frames'].sum())} "
        f"of the {len(mm)} pairs that swap two moves do, and "
        f"{int(order_pairs[order_pairs.swapped != 'move + move']['same multiset of frames'].sum())} of the "
        f"{n_order - len(mm)} that swap anything else."
    )
    display(by_kind.sort_values("same", ascending=False, kind="stable"))
else:
    print('skipped: no twins')

# %% [markdown]
# On these pairs an order-blind method ties as it does on direction twins, so its order-twin accuracy is pulled
# towards 50 % by them; a method that sees order can still win them.
#
# The generator's renderer, shown once here and reused everywhere:

# %%
if synthetic:
    display(show_source(W.render_frame))
else:
    print('skipped: the synthetic renderer')

# %% [markdown]
# ## 8. Stills: what the tiny CLIP is pretrained on
#
# CLIP learns from images and their captions, never from videos. Our tiny CLIP does the same on single frames with
# **static descriptions**: colours, shapes, sizes, positions and the background — no motion, no order words. So,
# as with the real CLIP, anything temporal has to be learned later by the video modules.

# %%
if synthetic:
    specs, descs, labels_ = B.load_stills(cfg, "train")
    from tvrlib.pretrain import render_still_frames

    ims = render_still_frames(specs[:8], cfg.frame_size, 96)
    frame_grid([ims], col_labels=[f"#{i}" for i in range(8)], name="00_stills", profile=profile, cell=1.2)
else:
    print('skipped: the stills of the synthetic benchmark')

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    motion_words = {"moves", "then", "before", "after", "appears", "disappears", "grows", "shrinks", "first", "finally"}
    assert not any(w in motion_words for d in descs for w in d.split())
    with pd.option_context("display.max_colwidth", 200):
        display(pd.DataFrame({"description": descs[:8], "main object": labels_[:8]}))
    print(
        f"{len(descs)} training stills, {cfg.num_stills_heldout} held-out stills; no description uses a motion or order word"
    )
else:
    print('skipped: the stills of the synthetic benchmark')

# %% [markdown]
# ## What we found
#
# The benchmark above was generated from `data/synthetic/<profile>.json` on this machine; its split sizes, caption
# kinds and twin counts are printed by this run. From the frame check of section 7:

# %%
# NBVAL_CHECK_OUTPUT
if synthetic:
    same = summary["same multiset of frames"]
    print(
        f"* Every direction twin pair ({same['direction']} of {summary.loc['direction', 'pairs']}) has the same multiset "
        "of sampled frames (checked, not assumed): order-blind methods tie on them and score exactly 50 % on direction "
        "twins in every later notebook."
    )
    n_mm = int(mm["same multiset of frames"].sum())
    print(
        f"* {same['order']} of {summary.loc['order', 'pairs']} order pairs also share their frames"
        + (
            f" ({n_mm} of them swap two moves, whose objects are on screen only while they move); order-blind methods "
            "tie on those too."
            if same["order"]
            else "."
        )
        + f" {same['detail']} of {summary.loc['detail', 'pairs']} detail pairs share their frames."
    )
    print(
        "* Whether a method separates the other order pairs and the detail pairs is an empirical question that "
        "notebooks 03-05 answer per method, with confidence intervals."
    )
else:
    print("fixture/real data: nothing synthetic to sum up; the splits and videos above are this dataset's")
