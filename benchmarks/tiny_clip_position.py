"""Does a tiny CLIP see where things are? Zero-shot colour, shape and position on held-out stills, and how far
apart its frame features put the two videos of a twin pair (issue 14).

Usage: python benchmarks/tiny_clip_position.py [--benchmark quick] [--variant NAME ...] [--threads K] [--probe]

Variants (pretrained on the benchmark's stills if their checkpoint is missing; minutes each on 2 CPU cores):

* ``cnn``: the former default ``tvr-tiny`` (a ResNet tower ending in a global average pool), shape/colour groups only;
* ``vit``: ``tvr-tiny-vit`` (a small ViT with position embeddings and a CLS token), the same groups;
* ``vit-pos``: ``tvr-tiny-vit`` with a third of the still groups varied in position instead
  (``PretrainConfig.position_groups``);
* ``vit-pos-long``: the same, twice the pretraining epochs;
* ``rn`` / ``rn-pos``: ``tvr-tiny-rn``, CLIP's own ResNet design in miniature (open_clip's ModifiedResNet: a
  3 x 3 feature map at 96 px, pooled by attention with position embeddings), without / with the position groups;
* ``attn-pos``: ``tvr-tiny-attn``, the same ResNet trunk with timm's attention pool (absolute position embeddings)
  instead of the global average, with the position groups (``attn-pos-long``: twice the epochs, the default tiny
  CLIP since issue 14).

Prints one markdown table (one row per variant): zero-shot accuracy on the held-out stills (colour x shape among
28 classes; position among 9 cells with colour and shape given; chance 1/9), the median frame cosine of direction
and order twin pairs at the frame where they differ most, and of random pairs, and the text cosines of a direction
flip, a paraphrase and a colour change. ``--probe``: also :func:`tvrlib.diagnostics.direction_probe` (a linear
classifier naming a move's direction from two of its frames; fit on the train split's moves, scored on the test
split's; the features are encoded once into the feature cache).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from tvrlib.datasets import load_dataset
from tvrlib.diagnostics import direction_probe, text_cosines, twin_frame_cosines
from tvrlib.encoders import load_encoder
from tvrlib.features import encode_videos
from tvrlib.pretrain import (
    PretrainConfig,
    ensure_tiny_clip,
    pretrain_history,
    render_still_frames,
    zero_shot_accuracy,
    zero_shot_position_accuracy,
)
from tvrlib.synthetic.benchmark import load_config, load_stills

VARIANTS = {
    "cnn": ("tvr-tiny", PretrainConfig()),
    "vit": ("tvr-tiny-vit", PretrainConfig()),
    "vit-pos": ("tvr-tiny-vit", PretrainConfig(position_groups=1 / 3)),
    "vit-pos-long": ("tvr-tiny-vit", PretrainConfig(position_groups=1 / 3, epochs=6)),
    "rn": ("tvr-tiny-rn", PretrainConfig()),
    "rn-pos": ("tvr-tiny-rn", PretrainConfig(position_groups=1 / 3)),
    "attn-pos": ("tvr-tiny-attn", PretrainConfig(position_groups=1 / 3)),
    "attn-pos-long": ("tvr-tiny-attn", PretrainConfig(position_groups=1 / 3, epochs=6)),
}
CAPTION = "a red square slides from right to left"
TEXT_VARIANTS = {
    "direction flipped": "a red square slides from left to right",
    "paraphrase": "a red square crosses the screen from right to left",
    "colour changed": "a blue square slides from right to left",
}


def measure(name: str, benchmark: str, probe: bool = False) -> dict:
    model_name, pcfg = VARIANTS[name]
    cfg = load_config(benchmark)
    t = time.perf_counter()
    path = ensure_tiny_clip(cfg, seed=0, pcfg=pcfg, progress=False, model_name=model_name)
    seconds = pretrain_history(path)["seconds"]
    enc = load_encoder(model_name, path)
    specs, _, labels = load_stills(cfg, "heldout")
    held = render_still_frames(specs, cfg.frame_size, enc.image_size)
    zs = zero_shot_accuracy(enc, held, labels)
    pos = zero_shot_position_accuracy(enc, held, specs)
    test = load_dataset("synthetic", "test", config=benchmark)
    row = {
        "variant": name,
        "model": model_name,
        "pretrain s": seconds,
        "colour": 100 * zs["color_accuracy"],
        "shape": 100 * zs["shape_accuracy"],
        "position": 100 * pos["accuracy"],
        "position row": 100 * pos["row_accuracy"],
        "position column": 100 * pos["column_accuracy"],
    }
    for factor in ("direction", "order"):
        tw = twin_frame_cosines(enc, test, factor)
        row[f"{factor} twins: frame cosine (median)"] = float(tw.loc[tw["pair"] == "twin", "cosine"].median())
        if factor == "direction":
            row["random pairs: frame cosine (median)"] = float(tw.loc[tw["pair"] == "random", "cosine"].median())
    if probe:  # a move's direction from two of its frames (the train split's moves fit it, the test split's score it)
        train = load_dataset("synthetic", "train", config=benchmark)
        p = direction_probe(
            train,
            encode_videos(enc, train, progress=False).frames,
            test,
            encode_videos(enc, test, progress=False).frames,
        )
        row["direction probe (test moves)"] = 100 * p["test_accuracy"]
    tc = text_cosines(enc, CAPTION, TEXT_VARIANTS)["cosine"]
    row.update({f"text: {k}": float(v) for k, v in tc.items()})
    row["measure s"] = time.perf_counter() - t
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmark", default="quick")
    ap.add_argument("--variant", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe", action="store_true", help="also the direction probe (encodes the train split once)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.variant:
        rows.append(measure(name, args.benchmark, args.probe))
        print(pd.DataFrame(rows[-1:]).T.to_string(), flush=True)
    table = pd.DataFrame(rows).set_index("variant")
    print(table.T.round(3).to_string())


if __name__ == "__main__":
    main()
