"""Evaluate a trained head on a split: what notebooks 03-04 report for every head.

* :func:`evaluate` -- t2v and v2t metrics with 95 % bootstrap CIs, and, on the synthetic test
  split, **per-factor twin accuracy** (order / direction / detail) with CIs;
* :func:`evaluation_rows` -- the tidy rows ``S.save`` writes to ``results/<profile>/``;
* frame-order tests (CLIP4Clip's ``--eval_frame_order``): :func:`reorder_frames` reverses or
  shuffles each video's valid frames, :func:`frame_order_test` re-evaluates a head on them;
* :func:`keep_uniform_frames` keeps ``k`` evenly spaced frames (how many frames does a head need?);
* :func:`sampled_frame_events` maps each sampled frame of a synthetic video to its event;
* :func:`reported_vs_reproduced` / :func:`claim_verdict` -- a paper's ablation rows beside ours
  and whether the *direction* of its claim reproduces.

Twin accuracy: for a query whose gold video has a twin (a video that differs in exactly one
factor), score 1 if the head ranks the gold above the twin, 0.5 on a tie (scores within
``TIE_TOLERANCE`` = 1e-6), 0 otherwise; chance is 50 %. Values are reported in percent.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .heads.base import RetrievalHead, TextInput, VideoInput
from .reporting import results_rows
from .training import similarity

FACTORS = ("order", "direction", "detail")


# --------------------------------------------------------------------------- twins
def twin_pair_scores(head: RetrievalHead, text: TextInput, video: VideoInput, gold, twin,
                     chunk: int = 512) -> np.ndarray:
    """``[n, 2]`` scores of each query ``text[i]`` against its gold video and its twin, without the full
    ``[T, V]`` grid (``2 n`` pairs: cheap even for a cross-encoder)."""
    gold, twin = torch.as_tensor(np.asarray(gold)), torch.as_tensor(np.asarray(twin))
    out = np.empty((len(text), 2))
    head.eval()
    with torch.no_grad():
        for i in range(0, len(text), chunk):
            t = text.index(slice(i, i + chunk))
            for col, which in enumerate((gold, twin)):
                v = video.index(which[i:i + chunk])
                if hasattr(head, "score_pairs"):
                    s = head.score_pairs(t.sentence, v.frames, v.mask)
                elif head.is_dual_encoder:
                    s = (torch.nn.functional.normalize(head.embed_text(t), dim=-1)
                         * torch.nn.functional.normalize(head.embed_video(v), dim=-1)).sum(-1)
                else:
                    s = torch.stack([head.score(t.index(slice(k, k + 1)), v.index(slice(k, k + 1)))[0, 0]
                                     for k in range(len(t))])
                out[i:i + len(t), col] = s.double().cpu().numpy()
    return out


TIE_TOLERANCE = 1e-6  # scores closer than this are a tie: float32 rounding, not a preference


def twin_outcomes(pair_scores: np.ndarray, tie_tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Per twin query: 1 if the gold (column 0) beats the twin (column 1), 0.5 on a tie, else 0."""
    pair_scores = np.array(pair_scores, dtype=np.float64)
    near = np.abs(pair_scores[:, 0] - pair_scores[:, 1]) <= tie_tolerance
    pair_scores[near, 1] = pair_scores[near, 0]
    n = len(pair_scores)
    return M.twin_accuracy(pair_scores, np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64))[1]


def twin_table(pair_scores: np.ndarray, factor_of: list[str], n_boot: int = 1000, seed: int = 0,
               tie_tolerance: float = TIE_TOLERANCE) -> pd.DataFrame:
    """Per-factor twin accuracy (percent) with a bootstrap 95 % CI from ``[n, 2]`` (gold, twin) scores.

    ``factor_of[i]`` is query ``i``'s factor. Rows: each factor present, then ``all``. Two scores within
    ``tie_tolerance`` count as a tie (0.5): an order-blind head that sums the same frames in another
    order differs only by float32 rounding (~1e-7) and must not "win" or "lose" by it.
    """
    per_query = twin_outcomes(pair_scores, tie_tolerance)
    factor_of = np.asarray(factor_of)
    rows = []
    for f in [*[f for f in FACTORS if f in set(factor_of)], "all"]:
        vals = per_query if f == "all" else per_query[factor_of == f]
        lo, hi = M.bootstrap_mean_ci(vals, n_boot=n_boot, seed=seed)
        rows.append({"factor": f, "accuracy": 100 * vals.mean(), "ci_lo": 100 * lo, "ci_hi": 100 * hi,
                     "ties": int(np.sum(vals == 0.5)), "n": int(vals.size)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- evaluate
@dataclass
class Evaluation:
    """One head on one split. ``sim`` is ``[num_texts, num_videos]`` over the evaluated gallery
    (``[num_queries, num_videos]`` when evaluated with ``v2t=False``)."""

    method: str
    t2v: dict
    v2t: dict
    twins: pd.DataFrame | None
    sim: torch.Tensor | None = field(repr=False, default=None)
    twin_scores: np.ndarray | None = field(repr=False, default=None)  # [n_twin_queries, 2]: gold, twin
    twin_factors: np.ndarray | None = field(repr=False, default=None)  # [n_twin_queries] factor of each
    num_videos: int = 0
    num_queries: int = 0
    seconds: float = 0.0


def evaluate(head: RetrievalHead, texts: TextInput, videos: VideoInput, data, *, method: str, n_boot: int = 1000,
             seed: int = 0, convention: str = "best_caption", gallery: int | None = None,
             keep_sim: bool = True, v2t: bool = True) -> Evaluation:
    """t2v (the split's queries) and v2t (all captions) metrics with CIs, and per-factor twin accuracy.

    ``texts``: every caption of the split (``S.texts(split)``); ``videos``: ``S.videos(split)``;
    ``data``: ``S.data(split)``. ``gallery=n`` evaluates retrieval on the first ``n`` videos and their
    captions only (for heads too slow for the whole ``T x V`` grid); twin accuracy always uses every
    twin query of the split (it needs only two scores per query).
    """
    t0 = time.perf_counter()
    sub = data if gallery is None else data.subset(gallery)
    if gallery is None:
        tx, vx = texts, videos
    else:
        keep = np.flatnonzero(np.asarray(data.text_to_video) < gallery)
        tx, vx = texts.index(torch.as_tensor(keep)), videos.index(slice(0, gallery))
    q = np.asarray(sub.query_index)
    if v2t:
        sim = similarity(head, tx, vx)
        sim_q = sim[torch.as_tensor(q)]
        r_v2t = M.with_ci(sim, sub.text_to_video, "v2t", convention=convention, n_boot=n_boot, seed=seed)
    else:
        sim = sim_q = similarity(head, tx.index(torch.as_tensor(q)), vx)
        r_v2t = {}
    r_t2v = M.with_ci(sim_q, sub.text_to_video[q], "t2v", n_boot=n_boot, seed=seed)
    twins = pair = factors = None
    twin_of = data.meta.get("twin_of_query") if hasattr(data, "meta") else None
    if twin_of is not None:
        twin_of = np.asarray(twin_of)
        rows = np.flatnonzero(twin_of >= 0)
        if rows.size:
            qidx = np.asarray(data.query_index)[rows]
            gold = np.asarray(data.text_to_video)[qidx]
            if gallery is None:
                s = (sim[torch.as_tensor(qidx)] if v2t else sim[torch.as_tensor(rows)]).double().numpy()
                pair = np.stack([s[np.arange(len(rows)), gold], s[np.arange(len(rows)), twin_of[rows]]], axis=1)
            else:
                pair = twin_pair_scores(head, texts.index(torch.as_tensor(qidx)), videos, gold, twin_of[rows])
            factors = np.asarray([data.meta["factor_of_query"][i] for i in rows])
            twins = twin_table(pair, factors, n_boot=n_boot, seed=seed)
    return Evaluation(method, r_t2v, r_v2t, twins, sim if keep_sim else None, pair, factors, len(vx), len(q),
                      time.perf_counter() - t0)


def twin_difference(a: Evaluation, b: Evaluation, factor: str = "all", n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95) -> dict:
    """Paired bootstrap of twin accuracy (percent) ``a - b`` over the same twin queries of one ``factor``
    (``"all"``: every twin query). Returns ``{"a", "b", "delta", "ci", "n"}``."""
    if a.twin_scores is None or b.twin_scores is None:
        raise ValueError("both evaluations need twin scores (evaluate on a split with twins)")
    sel = np.ones(len(a.twin_factors), dtype=bool) if factor == "all" else a.twin_factors == factor
    if not np.array_equal(a.twin_factors, b.twin_factors) or not sel.any():
        raise ValueError(f"the two evaluations do not share twin queries of factor {factor!r}")
    oa, ob = twin_outcomes(a.twin_scores)[sel], twin_outcomes(b.twin_scores)[sel]
    lo, hi = M.bootstrap_mean_ci(oa - ob, n_boot=n_boot, seed=seed, level=level)
    return {"a": 100 * oa.mean(), "b": 100 * ob.mean(), "delta": 100 * (oa.mean() - ob.mean()),
            "ci": (100 * lo, 100 * hi), "n": int(sel.sum())}


def evaluation_rows(experiment: str, ev: Evaluation, **extra) -> list[dict]:
    """Tidy rows (experiment, method, direction, metric, value, ci_lo, ci_hi, n, num_videos, ...) of an
    :class:`Evaluation`. ``num_videos`` is the size of the retrieval gallery the t2v/v2t rows were ranked in; twin rows
    (``direction="twin"``, value in percent) always cover every twin query of the split, counted in ``n``."""
    rows = results_rows(experiment, ev.method, "t2v", ev.t2v, num_videos=ev.num_videos, **extra)
    if ev.v2t:
        rows += results_rows(experiment, ev.method, "v2t", ev.v2t, num_videos=ev.num_videos, **extra)
    if ev.twins is not None:
        for r in ev.twins.itertuples():
            rows.append({"experiment": experiment, "method": ev.method, "direction": "twin",
                         "metric": f"twin_{r.factor}", "value": r.accuracy, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi,
                         "n": r.n, "num_videos": ev.num_videos, **extra})
    return rows


def summary_frame(evals: list[Evaluation], digits: int = 1) -> pd.DataFrame:
    """One row per head: t2v R@1/R@5/R@10/MnR and v2t R@1 with CIs, and the per-factor twin accuracy."""
    def cell(v, lo, hi):
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    rows = {}
    for ev in evals:
        row = {f"t2v {m}": cell(ev.t2v[m], ev.t2v[f"{m}_lo"], ev.t2v[f"{m}_hi"]) for m in ("R1", "R5", "R10", "MnR")}
        row["v2t R1"] = cell(ev.v2t["R1"], ev.v2t["R1_lo"], ev.v2t["R1_hi"]) if ev.v2t else "-"
        if ev.twins is not None:
            for r in ev.twins.itertuples():
                row[f"twin {r.factor}"] = cell(r.accuracy, r.ci_lo, r.ci_hi)
        row["videos"] = ev.num_videos
        rows[ev.method] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- frame order
def reorder_frames(video: VideoInput, mode: str, seed: int = 0) -> VideoInput:
    """``video`` with each clip's valid frames reversed (``"reverse"``) or shuffled (``"shuffle"``, a fixed
    permutation per clip from ``seed``); padding slots stay where they are. ``"original"`` returns it as is."""
    if mode == "original":
        return video
    if mode not in ("reverse", "shuffle"):
        raise ValueError(f"mode must be 'original', 'reverse' or 'shuffle', got {mode!r}")
    rng = np.random.default_rng(seed)
    V, n_frames = video.mask.shape
    src = torch.arange(n_frames).repeat(V, 1)
    mask = video.mask.cpu()
    for j in range(V):
        pos = torch.nonzero(mask[j]).flatten()
        new = pos.flip(0) if mode == "reverse" else pos[torch.as_tensor(rng.permutation(len(pos)))]
        src[j, pos] = new
    src = src.to(video.frames.device)
    frames = video.frames.gather(1, src[..., None].expand_as(video.frames))
    patches = None
    if video.patches is not None:
        patches = video.patches.gather(1, src[..., None, None].expand_as(video.patches))
    return VideoInput(frames, video.mask, patches)


def keep_uniform_frames(video: VideoInput, k: int) -> VideoInput:
    """``video`` with only ``k`` evenly spaced valid frames left unmasked per clip (``linspace`` over the valid ones)."""
    mask = torch.zeros_like(video.mask)
    for j in range(mask.shape[0]):
        pos = torch.nonzero(video.mask[j]).flatten()
        if len(pos):
            pick = np.unique(np.linspace(0, len(pos) - 1, min(k, len(pos))).round().astype(np.int64))
            mask[j, pos[pick]] = True
    return VideoInput(video.frames, mask, video.patches)


def frame_order_test(head: RetrievalHead, texts: TextInput, videos: VideoInput, data, *, method: str,
                     n_boot: int = 1000, seed: int = 0, gallery: int | None = None,
                     modes=("original", "reverse", "shuffle")) -> pd.DataFrame:
    """CLIP4Clip's frame-order evaluation: the same trained head on original, reversed and shuffled test frames.

    Rows per mode: t2v R@1 with CI, the paired-bootstrap change of R@1 against the original frames (CI),
    and the twin accuracy per factor.
    """
    evals = {m: evaluate(head, texts, reorder_frames(videos, m, seed), data, method=method, n_boot=n_boot,
                         seed=seed, gallery=gallery, v2t=False) for m in modes}
    base = evals[modes[0]]
    sub = data if gallery is None else data.subset(gallery)
    q = np.asarray(sub.query_index)
    gold = sub.text_to_video[q]
    rows = []
    for m, ev in evals.items():
        row = {"method": method, "frames": m, "R1": ev.t2v["R1"], "R1_lo": ev.t2v["R1_lo"], "R1_hi": ev.t2v["R1_hi"]}
        if m != modes[0]:
            c = M.compare(ev.sim, base.sim, gold, "t2v", metric="R1", n_boot=n_boot, seed=seed)
            row.update(dR1=c["delta"], dR1_lo=c["ci"][0], dR1_hi=c["ci"][1], p_value=c["p_value"])
        else:
            row.update(dR1=0.0, dR1_lo=0.0, dR1_hi=0.0, p_value=1.0)
        if ev.twins is not None:
            for r in ev.twins.itertuples():
                row[f"twin_{r.factor}"] = r.accuracy
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- synthetic benchmark: events
def sampled_frame_events(data, num_frames: int = 12, sampler: str = "uniform") -> np.ndarray:
    """``int [V, num_frames]``: the event (0, 1, ...) shown by each sampled frame of each synthetic video, or
    ``-1`` for a frame on the boundary between two events (it belongs to both). Needs ``meta["video_fields"]``."""
    from .synthetic.world import VideoSpec
    from .video import sample_indices

    fields = data.meta.get("video_fields")
    if fields is None:
        raise ValueError(f"{data.dataset}/{data.split} has no synthetic video specs (meta['video_fields'])")
    out = -np.ones((len(fields), num_frames), dtype=np.int64)
    for j, f in enumerate(fields):
        spec = VideoSpec.from_json(f["spec"])
        idx = sample_indices(spec.num_frames, num_frames, sampler)
        for e, (a, b) in enumerate(spec.bounds()):
            inside = (idx > a) & (idx < b)
            out[j, :len(idx)][inside] = e
    return out


# --------------------------------------------------------------------------- reported vs reproduced
def claim_verdict(comparison: dict, claimed_sign: int = 1, metric_lower_is_better: bool = False) -> str:
    """Whether the *direction* of a claim ("A beats B") reproduces, from :func:`tvrlib.metrics.compare` of A vs B.

    ``reproduces`` if the 95 % CI of the difference excludes 0 on the claimed side, ``opposite`` if it
    excludes 0 on the other side, ``inconclusive`` otherwise (the CI contains 0).
    """
    lo, hi = comparison["ci"]
    sign = -claimed_sign if metric_lower_is_better else claimed_sign
    if (lo > 0 and sign > 0) or (hi < 0 and sign < 0):
        return "reproduces"
    if (hi < 0 and sign > 0) or (lo > 0 and sign < 0):
        return "opposite"
    return "inconclusive"


def reported_vs_reproduced(reported: pd.DataFrame, ours: dict[str, dict], mapping: dict[str, str],
                           metrics=("R1", "R5", "R10", "MdR", "MnR"), digits: int = 1) -> pd.DataFrame:
    """A paper's rows beside ours. ``reported``: rows of a paper table (``method`` + metric columns);
    ``ours``: our label -> a metrics dict with CIs (``with_ci``); ``mapping``: paper method -> our label."""
    rows = []
    for paper_method, label in mapping.items():
        rep = reported[reported["method"] == paper_method]
        if rep.empty:
            raise KeyError(f"no row {paper_method!r} in the reported table; rows: {list(reported['method'])}")
        rep = rep.iloc[0]
        m = ours[label]
        row = {"paper row": paper_method, "ours": label}
        for k in metrics:
            row[f"{k} (paper)"] = rep[k]
        for k in metrics:
            row[f"{k} (ours)"] = f"{m[k]:.{digits}f} [{m[f'{k}_lo']:.{digits}f}, {m[f'{k}_hi']:.{digits}f}]"
        rows.append(row)
    return pd.DataFrame(rows)
