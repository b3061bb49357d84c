"""What training the text side buys: frozen text vs a trained text tower vs a trained text tower + hard negatives.

Usage: python benchmarks/text_regime.py [--heads seqTransf meanP] [--regimes NAME ...] [--seeds N] [--first-seed S]
       [--max-epochs E] [--hard-negatives K] [--lr-text LR] [--threads T] [--out CSV]

On the ``quick`` profile (``tvrlib.experiment.setup("quick")``: the embedded synthetic benchmark and the tiny CLIP,
whose text tower was pretrained on still-frame descriptions only), each head is trained under the shared quick
protocol with its text side in one of these regimes (``tvrlib.experiment.Protocol`` fields):

* ``frozen (quick)`` -- the quick protocol as the notebooks run it (cached caption features, its full budget);
* ``frozen`` -- the same with ``--max-epochs`` epochs (the budget of the rows below);
* ``frozen + HN`` -- plus ``--hard-negatives`` counterfactual captions per caption (frozen embeddings) as extra
  video-to-text negatives;
* ``text`` -- ``text_training=True``: CLIP's text tower trains with the head at ``--lr-text`` over the cached
  frame features (the image tower stays frozen);
* ``text + HN`` -- ``text_training=True`` and ``hard_negatives=K``;
* ``text + HN (order)`` -- the same with order swaps only (``hard_negative_factors=("order",)``): while frame features
  do not say where an object is, a direction flip's caption describes the same frame features as the true one.

A head without parameters (meanP) is trained only when its text side trains (frozen rows: zero-shot). Per regime it
prints test t2v R@1 and twin accuracy on order, direction and detail twins (``tvrlib.experiment.twin_runs``: 100 *
(2 - MnR of the gold among gold and twin), as notebook 04 computes it), the text tower's mean cosine between a
test caption and its direction flip (``cos_flip``) or order swap (``cos_swap``; 1: it cannot tell them apart; 300
counterfactual pairs of each, :mod:`tvrlib.synthetic.counterfactuals`), the share of training captions the trained
head and text tower score above their own minimal edit (direction flip, order swap; 1,000 of each) against their
own video (``edit_direction``, ``edit_order``; 50: the edit is not told apart), the epochs run and the seconds, as
the mean over ``--seeds`` training seeds (``--first-seed``, ``--first-seed + 1``, ...); one row per seed goes to
``--out``.
Direction twins hold the same frames in another order, so a temporal head tells them apart only if the frame features
say where the moving object is. The former tiny CLIP (``tvr-tiny``, average pool) did not; the default
``tvr-tiny-attn`` does (``tvrlib.diagnostics.direction_probe``: 96 % from two frames of a move), so what is left is
whether training makes a head read it (``--clip-model``/``--pretrained`` select another tower).

The budget is capped (``--max-epochs``, default 4) because a text-tower step costs a forward and backward pass of
the text transformer on every caption of the batch (about 0.15 s per batch of 128 captions on one CPU thread, more
with hard negatives) and encodes the validation captions every epoch; with frozen text an epoch takes a few seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

FACTORS = ("order", "direction", "detail")


def regimes(P, max_epochs: int, hard_negatives: int, lr_text: float | None) -> dict:
    """``{name: protocol}`` for every regime (see the module docstring)."""
    capped = dataclasses.replace(P, max_epochs=max_epochs)
    text = dataclasses.replace(capped, text_training=True, lr_text=lr_text or P.lr_text)
    return {
        "frozen (quick)": P,
        "frozen": capped,
        "frozen + HN": dataclasses.replace(capped, hard_negatives=hard_negatives),
        "text": text,
        "text + HN": dataclasses.replace(text, hard_negatives=hard_negatives),
        "text + HN (order)": dataclasses.replace(text, hard_negatives=hard_negatives, hard_negative_factors=("order",)),
    }


def minimal_pairs(data, encoder, per_factor: int = 300) -> dict:
    """``{factor: (tokens of true captions, tokens of their counterfactuals)}``: the first ``per_factor`` direction
    flips and order swaps of ``data``'s videos (:func:`tvrlib.synthetic.counterfactuals.counterfactual_table`)."""
    from tvrlib.synthetic.counterfactuals import counterfactual_table

    table = counterfactual_table(data)
    out = {}
    for factor in ("direction", "order"):
        t = table[table["factor"] == factor].head(per_factor)
        out[factor] = (encoder.tokenize(t["original"].tolist()), encoder.tokenize(t["caption"].tolist()))
    return out


def training_edits(data, encoder, per_factor: int = 1000) -> dict:
    """``{factor: (tokens of training captions, tokens of their minimal edits, video columns)}``: the first
    ``per_factor`` direction flips and order swaps of ``data``'s own captions
    (:func:`tvrlib.synthetic.counterfactuals.caption_counterfactual_table`, what the hard negatives are drawn from)."""
    from tvrlib.synthetic.counterfactuals import caption_counterfactual_table

    table = caption_counterfactual_table(data)
    out = {}
    for factor in ("direction", "order"):
        t = table[table["factor"] == factor].head(per_factor)
        out[factor] = (
            encoder.tokenize(t["original"].tolist()),
            encoder.tokenize(t["caption"].tolist()),
            torch.as_tensor(t["video"].to_numpy()),
        )
    return out


def edit_accuracies(head, encoder, edits: dict, videos) -> dict:
    """Per factor, the share of training captions the trained ``head`` scores above their own minimal edit against
    their own video (``videos``: the training split's cached frames): 50 % = the edit is not told apart, whatever
    the hard negatives asked for. Sentence embeddings only (enough for the heads this script trains)."""
    from tvrlib.heads import TextInput
    from tvrlib.heads.scoring import inference
    from tvrlib.training import text_tower_texts

    out = {}
    for factor, (true, false, vids) in edits.items():
        v = videos.index(vids)
        with inference(head):
            a = head.score_pairs(TextInput(text_tower_texts(encoder, true).sentence), v)
            b = head.score_pairs(TextInput(text_tower_texts(encoder, false).sentence), v)
        out[f"edit_{factor}"] = 100.0 * float((a > b).float().mean())
    return out


def pair_cosines(encoder, pairs: dict) -> dict:
    """Mean cosine between each true caption and its counterfactual through ``encoder``'s text tower (1: the text
    tower cannot tell them apart)."""
    from tvrlib.training import text_tower_texts

    out = {}
    for factor, (true, false) in pairs.items():
        a, b = text_tower_texts(encoder, true).sentence, text_tower_texts(encoder, false).sentence
        out[f"cos_{factor}"] = float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())
    return out


def summary_rows(runs, regime: str, head: str, n_boot: int = 1000) -> list[dict]:
    """One row per metric (t2v R@1; twin accuracy per factor): the mean over seeds, the seeds' std / min / max, and a
    95 % bootstrap CI of that mean that resamples the test videos (each query's value averaged over the seeds first;
    clustered by gold video, so a video's several queries move together)."""
    from tvrlib import experiment as X
    from tvrlib.metrics import bootstrap_mean_ci

    per_metric = {"R1": runs} | {f"twin_{f}": X.twin_runs(runs, f) for f in FACTORS}
    rows = []
    for metric, hr in per_metric.items():
        if metric == "R1":
            values = np.stack([100.0 * (r.ranks <= 1) for r in hr.runs])
        else:
            values = np.stack([100.0 * (2.0 - r.ranks) for r in hr.runs])  # 100 won, 50 tied, 0 lost
        gold = hr.runs[0].gold
        per_seed = values.mean(axis=1)
        clusters = np.unique(gold, return_inverse=True)[1]
        lo, hi = bootstrap_mean_ci(values.mean(axis=0), n_boot=n_boot, clusters=clusters)
        rows.append(
            {
                "regime": regime,
                "head": head,
                "metric": metric,
                "mean": float(per_seed.mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "std_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan"),
                "min_seed": float(per_seed.min()),
                "max_seed": float(per_seed.max()),
                "seeds": " ".join(str(r.seed) for r in hr.runs),
                "n_queries": int(values.shape[1]),
            }
        )
    return rows


def seed_rows(runs, regime: str, head: str, cosines, edits) -> list[dict]:
    """One row per seed: t2v R@1, twin accuracy per factor, the text tower's cosine between a caption and its
    direction flip / order swap (``cosines(seed_run)``), epochs run, best epoch, seconds."""
    from tvrlib import experiment as X

    twin = {f: {r.seed: 100.0 * (2.0 - r.metrics["MnR"]) for r in X.twin_runs(runs, f).runs} for f in FACTORS}
    return [
        {
            "regime": regime,
            "head": head,
            "seed": r.seed,
            "R1": r.metrics["R1"],
            **{f"twin_{f}": twin[f][r.seed] for f in FACTORS},
            **cosines(r),
            **edits(r),
            "epochs_run": r.epochs_run,
            "best_epoch": r.best_epoch,
            "seconds": r.seconds,
        }
        for r in runs.runs
    ]


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no dependency on tabulate)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", nargs="+", default=["seqTransf", "meanP"])
    ap.add_argument("--regimes", nargs="+", default=None, help="a subset of the regimes, by name")
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per head and regime")
    ap.add_argument("--first-seed", type=int, default=0, help="the seeds are first-seed, first-seed + 1, ...")
    ap.add_argument("--max-epochs", type=int, default=4)
    ap.add_argument("--hard-negatives", type=int, default=1, help="counterfactual captions per caption and step")
    ap.add_argument("--lr-text", type=float, default=None, help="text-tower learning rate (default: the protocol's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the protocol's)")
    ap.add_argument("--lr", type=float, default=None, help="head learning rate (default: the protocol's)")
    ap.add_argument(
        "--factors", nargs="+", default=None, help="counterfactual kinds of the hard negatives (direction, order)"
    )
    ap.add_argument(
        "--hn-weight", type=float, default=0.0, help="weight of each caption's contrast with its own edits alone"
    )
    ap.add_argument(
        "--reversed", action="store_true", help="each caption also against its own video with the frames reversed"
    )
    ap.add_argument("--clip-model", default=None, help="an open_clip config (default: the quick profile's tvr-tiny)")
    ap.add_argument("--pretrained", default=None, help="its weights file (default: the quick profile's)")
    ap.add_argument(
        "--train-benchmark",
        default=None,
        help="train on this synthetic config's training split instead (e.g. full: 6x quick's videos), encoded with "
        "the quick profile's tiny CLIP; validation and test stay quick's",
    )
    ap.add_argument("--out", type=Path, default=None, help="CSV (default results/quick/text_regime.csv)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from tvrlib import experiment as X
    from tvrlib.evaluation import evaluate
    from tvrlib.paths import results_dir

    out = args.out or results_dir("quick") / "text_regime.csv"
    B = X.setup("quick", seed=0, threads=args.threads, clip_model=args.clip_model, pretrained=args.pretrained)
    S = B.session
    train_data = S.data("train")
    if args.train_benchmark:
        from tvrlib.session import setup as session_setup
        from tvrlib.training import FeatureSource

        big = session_setup(args.train_benchmark, threads=args.threads)
        big.settings["clip_benchmark"] = "quick"  # the quick profile's image and text towers for every split
        if big.encoder.weights_id != S.encoder.weights_id:
            raise RuntimeError("the training benchmark must be encoded with the quick profile's tiny CLIP")
        B = dataclasses.replace(B, train=FeatureSource.from_session(big, "train"))
        train_data = big.data("train")
    P = dataclasses.replace(B.protocol, seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)))
    if args.patience is not None:
        P = dataclasses.replace(P, patience=args.patience or None)  # 0: no early stopping
    if args.lr is not None:
        P = dataclasses.replace(P, lr=args.lr)
    if args.reversed:
        P = dataclasses.replace(P, reversed_negatives=True)
    if args.hn_weight:
        P = dataclasses.replace(P, hard_negative_weight=args.hn_weight)
    if args.factors:
        P = dataclasses.replace(P, hard_negative_factors=tuple(args.factors))
    test, videos = S.data("test"), S.videos("test")

    def eval_fn(h, seed, texts=None):  # texts: the test captions through this seed's trained text tower
        return evaluate(h, S.texts("test") if texts is None else texts, videos, test, method="", n_boot=100, v2t=False)

    pairs = minimal_pairs(test, S.encoder)
    train_edits = training_edits(train_data, S.encoder)

    def edits(r):  # the run's trained head and its own text tower, on the training captions and their edits
        if r.trained is None:
            return {f"edit_{f}": float("nan") for f in train_edits}
        return edit_accuracies(r.trained, r.text_encoder or S.encoder, train_edits, B.train.videos)

    def cosines(r):  # the run's own trained text tower, or the frozen one
        return pair_cosines(r.text_encoder if r.text_encoder is not None else S.encoder, pairs)

    todo = regimes(P, args.max_epochs, args.hard_negatives, args.lr_text)
    if args.regimes:
        todo = {k: todo[k] for k in args.regimes}
    print(P.describe(), flush=True)
    rows, summary = [], []
    summary_out = out.with_name(out.stem + "_summary.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for head in args.heads:
        for name, protocol in todo.items():
            t0 = time.perf_counter()
            runs = X.run(protocol, head, B.train, B.val, B.test, test_eval_fn=eval_fn)
            bench = {"train_benchmark": args.train_benchmark or "quick"}
            new = [{**r, **bench} for r in seed_rows(runs, name, head, cosines, edits)]
            summary += [{**r, **bench} for r in summary_rows(runs, name, head)]
            del runs  # the trained heads and text towers
            rows += new
            last = pd.DataFrame(new)
            print(
                f"{head:10s} {name:15s} R@1 {last.R1.mean():5.1f}  order {last.twin_order.mean():5.1f}  "
                f"direction {last.twin_direction.mean():5.1f}  detail {last.twin_detail.mean():5.1f}  "
                f"cos flip {last.cos_direction.mean():.3f} swap {last.cos_order.mean():.3f}  "
                f"edits: direction {last.edit_direction.mean():5.1f} order {last.edit_order.mean():5.1f}  "
                f"epochs {last.epochs_run.mean():.1f}  {time.perf_counter() - t0:6.0f} s",
                flush=True,
            )
            pd.DataFrame(rows).to_csv(out, index=False)
            pd.DataFrame(summary).to_csv(summary_out, index=False)
    df = pd.DataFrame(rows)
    table = (
        df.groupby(["head", "regime"], sort=False)
        .agg(
            seeds=("seed", "size"),
            R1=("R1", "mean"),
            order=("twin_order", "mean"),
            direction=("twin_direction", "mean"),
            detail=("twin_detail", "mean"),
            cos_flip=("cos_direction", "mean"),
            cos_swap=("cos_order", "mean"),
            edit_dir=("edit_direction", "mean"),
            edit_order=("edit_order", "mean"),
            epochs=("epochs_run", "mean"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    rounded = ["R1", "order", "direction", "detail", "edit_dir", "edit_order"]
    table[rounded] = table[rounded].round(1)
    table[["epochs", "seconds"]] = table[["epochs", "seconds"]].round(0)
    table[["cos_flip", "cos_swap"]] = table[["cos_flip", "cos_swap"]].round(3)
    print()
    print(
        f"quick profile, {args.seeds} seed(s), text regimes at most {args.max_epochs} epochs, "
        f"hard negatives {args.hard_negatives} per caption, lr_text {todo.get('text', P).lr_text:g}, "
        f"{args.threads} thread(s), {np.round(time.perf_counter() - t_all):.0f} s in all; torch {torch.__version__}, "
        f"python {sys.version.split()[0]}"
    )
    print(markdown(table))
    print(f"rows per seed: {out}; mean over seeds with 95 % bootstrap CIs (test videos resampled): {summary_out}")


if __name__ == "__main__":
    main()
