"""Partial relevance: captions that describe one event of a multi-event video.

A text-conditioned head (CrossAttnGL section 4.2, X-Pool, TopKTemporal; papers in docs/papers.md)
pools each video *for* the caption, so a caption about one event can focus on that event's frames,
where mean pooling dilutes it with every other event. The synthetic benchmark marks each test query as
``"video"`` (describes every event) or ``"event"`` (describes one event, ``event_index``),
and :func:`tvrlib.synthetic.events.sampled_frame_events` tells which event each sampled frame shows.

* :func:`kind_table`        t2v metrics with bootstrap CIs per query kind and head;
* :func:`kind_comparison`   paired bootstrap of two heads on the queries of one kind;
* :func:`gold_frame_weights` each query's attention weights over its gold video's frames ``[Q, F]``;
* :func:`event_attention_mass` the share of that attention on the described event's frames.

Shapes: ``sim [Q, V]`` (queries x videos), ``gold [Q]``, ``kind [Q]`` (strings),
``weights [Q, F]``, ``frame_events int [Q, F]`` (``-1``: boundary frame), ``event_index [Q]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .heads.base import RetrievalHead, TextInput, VideoInput

KINDS = ("video", "event")


def kind_table(
    sims: dict[str, torch.Tensor], gold, kind, n_boot: int = 1000, seed: int = 0, metrics=("R1", "R10", "MdR", "MnR")
) -> pd.DataFrame:
    """One row per (head, query kind): the t2v metrics and their 95 % bootstrap CIs over that kind's queries."""
    gold, kind = np.asarray(gold), np.asarray(kind)
    rows = []
    for name, sim in sims.items():
        ranks = M.ranks_t2v(sim, gold)
        for k in KINDS:
            r = ranks[kind == k]
            if r.size == 0:
                continue
            summ, ci = M.summarize(r), M.bootstrap_ci(r, n_boot=n_boot, seed=seed)
            row = {"head": name, "kind": k, "n": int(r.size)}
            for m in metrics:
                row.update({m: summ[m], f"{m}_lo": ci[m][0], f"{m}_hi": ci[m][1]})
            rows.append(row)
    return pd.DataFrame(rows)


def kind_comparison(
    sim_a: torch.Tensor,
    sim_b: torch.Tensor,
    gold,
    kind,
    which: str,
    metric: str = "MnR",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """:func:`tvrlib.metrics.paired_bootstrap` of head A vs head B on the queries of kind ``which``."""
    sel = np.asarray(kind) == which
    gold = np.asarray(gold)
    ra, rb = M.ranks_t2v(sim_a, gold)[sel], M.ranks_t2v(sim_b, gold)[sel]
    return M.paired_bootstrap(ra, rb, metric=metric, n_boot=n_boot, seed=seed)


@torch.no_grad()
def gold_frame_weights(head: RetrievalHead, text: TextInput, video: VideoInput, chunk: int = 256) -> torch.Tensor:
    """``[Q, F]`` weights that ``head`` gives to the frames of video ``q`` when pooling it for caption ``q``.

    ``text`` and ``video`` are paired (caption ``q`` with its gold video ``q``). Heads that pool with
    attention (``head.has_frame_weights``; ``frame_weights(text, video) -> [T, V, F]``) give the diagonal
    pairs (for Self-Att, whose weights do not depend on the caption, its caption-independent weights);
    others (mean pooling) the uniform weights over valid frames.
    """
    head.eval()
    if not head.has_frame_weights:
        m = video.mask.float()
        return m / m.sum(1, keepdim=True).clamp_min(1)
    out = []
    for i in range(0, len(text), chunk):
        w = head.frame_weights(text.index(slice(i, i + chunk)), video.index(slice(i, i + chunk)))
        out.append(torch.diagonal(w, dim1=0, dim2=1).T)  # [chunk, F]
    return torch.cat(out)


def event_attention_mass(weights, frame_events, event_index) -> np.ndarray:
    """Per query, the summed weight on the frames that show the described event (boundary frames excluded)."""
    w = np.asarray(weights, dtype=np.float64)
    on_event = np.asarray(frame_events) == np.asarray(event_index)[:, None]
    return (w * on_event).sum(1)
