"""How many training videos does a temporal head need to learn which way a thing moves? (issue 14)

Usage: python benchmarks/direction_readout.py [--heads seqTransf seqLSTM seqTransf-noPE] [--sizes 596 1500 0]
       [--train-benchmark full] [--epochs 60] [--threads 1] [--out CSV]

Direction twins stay at chance for every head trained on the ``quick`` profile, though a linear probe reads a move's
direction from two of its frames (``tvrlib.diagnostics.direction_probe``). This script asks the next question with
the answer given: :func:`tvrlib.diagnostics.direction_readout` trains a head's video side plus a linear layer with
direction labels (the one move of every training video that has exactly one; left / right / up / down, chance 25 %)
and scores it on the quick test split's such videos. The frame features are the quick profile's tiny CLIP
(``tvr-tiny-attn``, pretrained on the quick stills) for both splits; the training videos come from the
``--train-benchmark`` config (default ``full``: 9,000 training videos, 3,670 of them with one move, against 1,500
and 596 in ``quick``), so the training set can grow beyond what ``quick`` has. ``--sizes``: the first N single-move
training videos (0: all). The full benchmark is generated and its training videos encoded on the first run (about
2.5 + 6 minutes on 2 CPU cores; both are cached).

One row per head and size to ``--out`` (default ``results/quick/direction_readout.csv``): train and test accuracy,
the number of examples, seconds; plus one row for the linear probe fit on the same training split.
"""

from __future__ import annotations

import argparse

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heads", nargs="+", default=["seqTransf", "seqLSTM", "seqTransf-noPE"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[596, 1500, 0])
    ap.add_argument("--train-benchmark", default="full", help="the synthetic config whose training videos are used")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--layers", type=int, default=2, help="transformer layers (the quick protocol's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from tvrlib import diagnostics as D
    from tvrlib.paths import results_dir
    from tvrlib.session import setup

    quick = setup("quick", threads=args.threads)
    big = setup(args.train_benchmark, threads=args.threads)
    big.settings["clip_benchmark"] = "quick"  # the quick profile's tiny CLIP for both splits
    if big.encoder.weights_id != quick.encoder.weights_id:
        raise RuntimeError("the two sessions must use the same image tower")
    train, train_frames = big.data("train"), big.video_features("train").frames
    test, test_frames = quick.data("test"), quick.video_features("test").frames

    rows = []
    probe = D.direction_probe(train, train_frames, test, test_frames, quick.num_frames)
    rows.append({"head": "linear probe (two frames inside the move)", "n_train": probe["n_train"], **probe})
    print(rows[-1], flush=True)
    for head in args.heads:
        opts = {"layers": args.layers} if head.startswith("seqTransf") else None
        for n in args.sizes:
            r = D.direction_readout(
                head, train, train_frames, test, test_frames, n_train=n or None, head_options=opts, epochs=args.epochs
            )
            rows.append({"head": head, **r})
            print(head, {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
    df = pd.DataFrame(rows).assign(
        train_benchmark=args.train_benchmark, test_benchmark="quick", epochs=args.epochs, threads=args.threads
    )
    out = args.out or results_dir("quick") / "direction_readout.csv"
    df.to_csv(out, index=False)
    print(f"wrote {out}")
    print(df[["head", "n_train", "train_accuracy", "test_accuracy", "seconds"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
