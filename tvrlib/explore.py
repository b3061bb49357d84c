"""Look at what a head ranks first: a caption, the top-5 videos as strips of frames, scores, ranks, frame weights.

Students learn retrieval by looking. This module is the logic behind the notebooks' browsers; a notebook calls it
and narrates. Three layers, each usable alone:

* **ranking** (pure): :func:`rank_table` turns one caption's scores ``[V]`` into a tidy table, one row per shown
  video: ``caption, caption_index, head, position, rank, video_index, video_id, score, is_gold, is_twin,
  in_top_k``. ``position`` is the place in the head's score order (highest first; exact ties keep the gallery
  order), ``rank`` the rank :mod:`tvrlib.metrics` gives that video if it were the gold (average rank over ties
  within :data:`tvrlib.metrics.TIE_TOLERANCE`), so the rank shown for the gold *is* the rank R@K counts. When
  the gold (or its twin) is not in the top ``k`` its row is added with ``in_top_k = False``.
* **drawing**: :func:`draw_ranking` draws such a table as a static matplotlib figure: one strip of sampled frames
  per row, one column per head (two heads side by side), the gold and its twin framed, and, for heads that pool
  with attention (``head.has_frame_weights``), the frame weights as bars under the frames.
* **browsing**: :class:`Browser` (or :func:`browse`) puts both together on a :class:`Gallery` (a split's data,
  its cached features and a text encoder for free text). ``browse(S, heads, caption)`` returns the static figure
  (what papermill and CI execute: the caption comes from the notebook's parameters cell); with
  ``interactive=True`` it returns an ipywidgets browser (a caption picker and a text box) that redraws the same
  figure and table. Nothing is detected: interactivity is asked for.

Captions are either an ``int`` (the index of one of the split's captions, ``data.texts``: its gold video is
marked) or a ``str`` (free text, encoded with the gallery's text encoder, ``S.encoder.encode_text``; no gold).
:func:`twin_queries` lists the t2v queries whose gold video has a twin (the synthetic test split), e.g. to pick an
order twin's caption.

**Playing videos.** :func:`video_view` / :func:`play` show a video in the notebook as an HTML5 ``<video>``
(``IPython.display.Video``) with its captions beside it; :func:`play_twins` shows a twin pair side by side. The
synthetic benchmark is written as lossless H.264 in **yuv444p** (qp 0, so the High 4:4:4 Predictive profile
whatever the chroma: ties between direction twins are exact only when decoding is lossless;
:func:`tvrlib.synthetic.benchmark.write_video`). Browsers do not play that reliably: HTML5 video is made for
4:2:0 in the Baseline/Main/High profiles, and 4:4:4 files are reported to show a black box in Chrome, Firefox
and Edge on Windows while some Linux and Android builds play them. :func:`browser_playable` says whether a file
is safe to show, and :func:`video_view` embeds, by default, a display copy re-encoded in memory to H.264 yuv420p
(High profile, lossy, for the eye only; the files on disk are untouched).
"""

from __future__ import annotations

import html
import io
import os
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .errors import UnknownNameError, VideoReadError
from .heads import HEADS, score_all
from .heads.base import RetrievalHead, TextInput, VideoInput
from .heads.scoring import inference

__all__ = [
    "COLUMNS",
    "rank_table",
    "twin_queries",
    "resolve_heads",
    "head_frame_weights",
    "Query",
    "Gallery",
    "Browser",
    "browse",
    "compare_heads",
    "draw_ranking",
    "browser_playable",
    "browser_copy",
    "VideoView",
    "video_view",
    "play",
    "play_twins",
]

#: The columns of :func:`rank_table`, in order (the browser adds ``frame_weights``).
COLUMNS = (
    "caption",
    "caption_index",
    "head",
    "position",
    "rank",
    "video_index",
    "video_id",
    "score",
    "is_gold",
    "is_twin",
    "in_top_k",
)

#: Videos shown per caption and head unless told otherwise.
TOP_K = 5


# --------------------------------------------------------------------------------------------- ranking (pure)
def rank_table(
    scores,
    video_ids: Sequence[str],
    *,
    caption: str = "",
    head: str = "",
    k: int = TOP_K,
    gold: int | None = None,
    twin: int | None = None,
    caption_index: int = -1,
    tie_tolerance: float | None = None,
) -> pd.DataFrame:
    """The top ``k`` videos of one caption's ``scores [V]`` (higher = better), as a tidy table (:data:`COLUMNS`).

    Rows follow the head's score order (``position`` 1, 2, ...; exact ties keep the gallery order, so the table
    is deterministic). ``rank`` is :func:`tvrlib.metrics.rank_of_gold` of each shown video (the average rank over
    the scores within ``tie_tolerance * max(1, |score|)`` of its own; ``None``: :data:`tvrlib.metrics.TIE_TOLERANCE`),
    so the gold's ``rank`` equals its t2v rank in the metrics, ``x.5`` on ties included. ``gold`` / ``twin``
    (video indices, ``None`` or ``-1``: none) are marked; when either is outside the top ``k`` its row is appended
    (``in_top_k = False``, ``position`` its place in the full order).
    """
    s = scores.detach().cpu().double().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores, float)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be one caption's scores [V] over a non-empty gallery, got shape {s.shape}")
    if len(video_ids) != s.size:
        raise ValueError(f"{s.size} scores but {len(video_ids)} video ids; pass one id per video (column)")
    if np.isnan(s).any():
        first = int(np.flatnonzero(np.isnan(s))[0])
        raise ValueError(
            f"head {head!r} gave NaN scores for caption {caption!r} (first: video {first}); "
            "check its features for zero-norm embeddings"
        )
    if int(k) < 1:
        raise ValueError(f"k must be >= 1 (videos to show), got {k}")
    gold = None if gold is None or int(gold) < 0 else int(gold)
    twin = None if twin is None or int(twin) < 0 else int(twin)
    for name, j in (("gold", gold), ("twin", twin)):
        if j is not None and j >= s.size:
            raise ValueError(f"{name} video index {j} is out of range: the gallery has {s.size} videos")
    order = np.argsort(-s, kind="stable")  # the head's score order; exact ties: gallery order
    place = np.empty(s.size, dtype=np.int64)
    place[order] = np.arange(1, s.size + 1)
    shown = list(order[: min(int(k), s.size)])
    shown += [j for j in (gold, twin) if j is not None and j not in shown]
    shown_arr = np.asarray(shown, dtype=np.int64)
    ranks = M.rank_of_gold(np.broadcast_to(s, (len(shown), s.size)), shown_arr, tie_tolerance=tie_tolerance)
    return pd.DataFrame(
        {
            "caption": caption,
            "caption_index": int(caption_index),
            "head": head,
            "position": place[shown_arr],
            "rank": ranks,
            "video_index": shown_arr,
            "video_id": [video_ids[j] for j in shown],
            "score": s[shown_arr],
            "is_gold": [j == gold for j in shown],
            "is_twin": [j == twin for j in shown],
            "in_top_k": place[shown_arr] <= int(k),
        },
        columns=list(COLUMNS),
    )


def twin_queries(data, factor: str | None = None) -> pd.DataFrame:
    """The t2v queries of ``data`` whose gold video has a twin: one row each, ``text_index`` (pass it as the
    browser's caption), ``caption``, ``factor``, ``kind``, ``gold``/``gold_id``, ``twin``/``twin_id``.

    ``factor`` (``"order"``, ``"direction"``, ``"detail"``; ``None``: all) keeps one factor. Needs the synthetic
    benchmark's twin metadata (``meta["twin_of_query"]``, ``meta["factor_of_query"]``: its test split).
    """
    meta = data.meta
    if "twin_of_query" not in meta:
        raise ValueError(
            f"split {data.split!r} of {data.dataset!r} has no twins (meta['twin_of_query']); twins exist in the "
            "synthetic benchmark's test split: load_dataset('synthetic', 'test')"
        )
    q = np.asarray(data.query_index)
    gold = np.asarray(data.text_to_video)[q]
    twin = np.asarray(meta["twin_of_query"])
    factors = np.asarray(meta.get("factor_of_query", [""] * len(q)), dtype=object)
    kinds = np.asarray(meta.get("kind_of_query", [""] * len(q)), dtype=object)
    keep = twin >= 0
    if factor is not None:
        known = sorted({f for f in factors if f})
        if factor not in known:
            raise ValueError(f"no twin queries of factor {factor!r} in split {data.split!r}; factors: {known}")
        keep &= factors == factor
    ids = data.video_ids
    return pd.DataFrame(
        {
            "text_index": q[keep],
            "caption": [data.texts[i] for i in q[keep]],
            "factor": factors[keep],
            "kind": kinds[keep],
            "gold": gold[keep],
            "gold_id": [ids[j] for j in gold[keep]],
            "twin": twin[keep],
            "twin_id": [ids[j] for j in twin[keep]],
        }
    ).reset_index(drop=True)


def _twin_of_video(data) -> np.ndarray:
    """``[V]`` the twin column of each video (``-1``: none), from the per-query twin metadata."""
    out = -np.ones(data.num_videos, dtype=np.int64)
    if "twin_of_query" in data.meta:
        gold = np.asarray(data.text_to_video)[np.asarray(data.query_index)]
        twin = np.asarray(data.meta["twin_of_query"])
        has = twin >= 0
        out[gold[has]] = twin[has]
    return out


# --------------------------------------------------------------------------------------------- heads
def _head_kind_error(spec: Any) -> TypeError:
    return TypeError(
        f"cannot use {type(spec).__name__} as a head: pass a registered name (HEADS.names()), a RetrievalHead "
        "module, or a run of tvrlib.experiment.run (HeadRuns or SeedRun, trained with keep_heads=True)"
    )


def _resolve_one(spec: Any, dim: int) -> tuple[str, RetrievalHead]:
    if isinstance(spec, str):
        if spec not in HEADS:
            raise UnknownNameError(
                f"unknown head {spec!r}; registered heads: {', '.join(HEADS.names())}. Or pass a trained head "
                "(a RetrievalHead, or runs[name] from tvrlib.experiment.run)"
            )
        torch.manual_seed(0)
        head = HEADS.build(spec, **HEADS.accepted_kwargs(spec, dim=dim))
        if any(p.requires_grad for p in head.parameters()):
            warnings.warn(
                f"head {spec!r} was built by name, so it is untrained (random weights) and its ranking shows "
                f"nothing it learned; pass the trained head instead, e.g. runs[{spec!r}] from tvrlib.experiment.run",
                stacklevel=3,
            )
        return spec, head
    if isinstance(spec, RetrievalHead):
        return type(spec).__name__, spec
    if hasattr(spec, "runs") and hasattr(spec, "label"):  # tvrlib.experiment.HeadRuns: its first seed
        if not spec.runs:
            raise ValueError(f"{spec.label}: the run holds no trained seeds")
        return _resolve_one(spec.runs[0], dim)
    if hasattr(spec, "trained") and hasattr(spec, "label"):  # tvrlib.experiment.SeedRun
        if spec.trained is None:
            raise ValueError(
                f"{spec.label} (seed {spec.seed}): the run kept no trained head; run it with keep_heads=True"
            )
        return f"{spec.label} (seed {spec.seed})", spec.trained
    raise _head_kind_error(spec)


def resolve_heads(heads: Any, dim: int) -> dict[str, RetrievalHead]:
    """``{label: head}`` from one head or several: a registered name (built untrained, with a warning when it
    has parameters), a :class:`~tvrlib.heads.base.RetrievalHead`, a run of :func:`tvrlib.experiment.run`
    (its first seed's trained head), a list of those, or a mapping ``{label: head}``. ``dim``: the features'."""
    if isinstance(heads, Mapping):
        items = [(str(label), _resolve_one(h, dim)[1]) for label, h in heads.items()]
    else:
        specs = [heads] if isinstance(heads, str) or not isinstance(heads, Sequence) else list(heads)
        items = [_resolve_one(h, dim) for h in specs]
    if not items:
        raise ValueError("no heads given: pass a head name, a trained head, or a list of them")
    out: dict[str, RetrievalHead] = {}
    for label, head in items:
        name, n = label, 2
        while name in out:
            name, n = f"{label} #{n}", n + 1
        out[name] = head
    return out


def head_frame_weights(head: RetrievalHead, text: TextInput, video: VideoInput) -> torch.Tensor:
    """``[V, F]`` weights ``head`` gives the frames of each video of ``video`` for the one caption ``text``
    (``head.has_frame_weights``), without gradients and in eval mode (its modes are restored)."""
    with inference(head):
        return head.frame_weights(text, video)[0].float().cpu()


# --------------------------------------------------------------------------------------------- the gallery
@dataclass(frozen=True)
class Query:
    """A resolved caption: its text features ``[1, D]``, text, index in the split (``-1``: free text), gold and
    twin video (``None`` when unknown)."""

    text: TextInput
    caption: str
    index: int = -1
    gold: int | None = None
    twin: int | None = None

    @property
    def source(self) -> str:
        return "free text" if self.index < 0 else f"caption {self.index}"


@dataclass
class Gallery:
    """What a browser searches: one split's :class:`~tvrlib.datasets.RetrievalData`, its text features (one per
    ``data.texts``) and video features (one per ``data.videos``), a text encoder for free text
    (``list[str] -> TextInput``; ``None``: split captions only) and the frame sampler the features used (the
    frames drawn are the frames encoded). :meth:`from_session` builds it from a notebook's session."""

    data: Any
    texts: TextInput
    videos: VideoInput
    encode_text: Callable[[list[str]], TextInput] | None = None
    sampler: str = "uniform"
    _frames: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if len(self.texts) != len(self.data.texts):
            raise ValueError(f"{len(self.texts)} text features for the split's {len(self.data.texts)} captions")
        if len(self.videos) != self.data.num_videos:
            raise ValueError(f"{len(self.videos)} video features for the split's {self.data.num_videos} videos")
        self.twin_of_video = _twin_of_video(self.data)

    @classmethod
    def from_session(cls, S, split: str = "test") -> Gallery:
        """``S.data(split)``, ``S.texts(split)``, ``S.videos(split)``; free text through ``S.encoder``."""

        def encode(captions: list[str]) -> TextInput:
            return TextInput(S.encoder.encode_text(captions, with_words=False).sentence)

        return cls(S.data(split), S.texts(split), S.videos(split), encode, S.settings.get("sampler", "uniform"))

    @property
    def num_frames(self) -> int:
        return int(self.videos.frames.shape[1])

    @property
    def dim(self) -> int:
        return int(self.videos.frames.shape[-1])

    def where(self) -> str:
        return f"split {self.data.split!r} of {self.data.dataset!r}"

    def query(self, caption: int | str) -> Query:
        """Resolve a caption: an index into ``data.texts`` (its gold video and twin are known) or free text."""
        n = len(self.data.texts)
        if isinstance(caption, (int, np.integer)) and not isinstance(caption, bool):
            i = int(caption)
            if not 0 <= i < n:
                raise IndexError(
                    f"caption index {i} is out of range: {self.where()} has {n} captions (0 to {n - 1}); pick one "
                    "of them, or pass the caption as text"
                )
            gold = int(self.data.text_to_video[i])
            twin = int(self.twin_of_video[gold])
            return Query(self.texts.index(slice(i, i + 1)), self.data.texts[i], i, gold, twin if twin >= 0 else None)
        if isinstance(caption, str):
            text = " ".join(caption.split())
            if not text:
                raise ValueError(
                    f"the caption is empty: type a caption (free text), or pass the index of one of the {n} "
                    f"captions of {self.where()}"
                )
            if self.encode_text is None:
                raise ValueError(
                    f"this gallery has no text encoder, so free text ({text!r}) cannot be encoded: build it with "
                    "Gallery.from_session(S, split), or pass the index of one of the split's captions"
                )
            t = self.encode_text([text])
            return Query(TextInput(t.sentence[:1].float().cpu()), text)
        raise TypeError(f"a caption is an int (index into the split's captions) or a str, got {type(caption).__name__}")

    def check_videos(self, indices: Sequence[int]) -> None:
        """Raise :class:`~tvrlib.errors.VideoReadError` naming the first video of ``indices`` with no file."""
        missing = [j for j in indices if not Path(self.data.videos[j].path).exists()]
        if missing:
            v = self.data.videos[missing[0]]
            raise VideoReadError(
                f"{self.where()}: no video file for {v.video_id} at {v.path} ({len(missing)} of the "
                f"{len(indices)} videos to draw are missing). Generate the synthetic benchmark (make data, or "
                "python -m tvrlib prepare --profile <profile>), or for real data put the videos where the README "
                "('Real data') says"
            )

    def frames(self, j: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """``(uint8 [F, size, size, 3], bool [F])`` the frames of video ``j`` that its features were computed from."""
        from .video import sample_frames

        key = (int(j), int(size))
        if key not in self._frames:
            self.check_videos([int(j)])
            self._frames[key] = sample_frames(self.data.videos[j].path, self.num_frames, size, mode=self.sampler)
        return self._frames[key]


# --------------------------------------------------------------------------------------------- the browser
class Browser:
    """Top-``k`` videos of a caption under one or more heads (two: side by side), on a :class:`Gallery`.

    ``table(caption)`` is the tidy ranking (:func:`rank_table` per head, plus ``frame_weights``: the head's
    weights over the frames of each shown video, ``None`` for heads without), ``figure(caption)`` draws it
    (:func:`draw_ranking`), ``widget(caption)`` is the interactive browser; ``show(caption, interactive)`` picks.
    """

    def __init__(
        self,
        gallery: Gallery,
        heads: Any,
        *,
        k: int = TOP_K,
        frame_size: int = 64,
        name: str | None = None,
        profile: str = "quick",
        tie_tolerance: float | None = None,
    ):
        if int(k) < 1:
            raise ValueError(f"k must be >= 1 (videos to show), got {k}")
        self.gallery, self.k, self.frame_size = gallery, int(k), int(frame_size)
        self.heads = resolve_heads(heads, gallery.dim)
        self.name, self.profile, self.tie_tolerance = name, profile, tie_tolerance
        self.last_table: pd.DataFrame | None = None  # what the widget shows now

    def scores(self, caption: int | str | Query) -> dict[str, torch.Tensor]:
        """``{head: [V]}`` scores of the caption against every video of the gallery (:func:`score_all`)."""
        q = caption if isinstance(caption, Query) else self.gallery.query(caption)
        return {label: score_all(h, q.text, self.gallery.videos)[0] for label, h in self.heads.items()}

    def table(self, caption: int | str | Query) -> pd.DataFrame:
        q = caption if isinstance(caption, Query) else self.gallery.query(caption)
        ids = self.gallery.data.video_ids
        parts = []
        for label, s in self.scores(q).items():
            t = rank_table(
                s,
                ids,
                caption=q.caption,
                head=label,
                k=self.k,
                gold=q.gold,
                twin=q.twin,
                caption_index=q.index,
                tie_tolerance=self.tie_tolerance,
            )
            head = self.heads[label]
            if head.has_frame_weights:
                idx = torch.tensor(t["video_index"].tolist())
                w = head_frame_weights(head, q.text, self.gallery.videos.index(idx))
                t["frame_weights"] = [tuple(float(x) for x in row) for row in w]
            else:
                t["frame_weights"] = None
            parts.append(t)
        return pd.concat(parts, ignore_index=True)

    def figure(self, caption: int | str | Query, table: pd.DataFrame | None = None):
        q = caption if isinstance(caption, Query) else self.gallery.query(caption)
        table = self.table(q) if table is None else table
        self.gallery.check_videos(sorted(set(table["video_index"])))
        where = f"{q.source} of {self.gallery.where()}" if q.index >= 0 else "free text (no gold video)"
        return draw_ranking(
            table,
            lambda j: self.gallery.frames(j, self.frame_size),
            title=f"\u201c{q.caption}\u201d  ({where})",
            name=self.name,
            profile=self.profile,
        )

    def widget(self, caption: int | str = 0):
        """An ipywidgets browser: a picker of the split's t2v queries and a free-text box; each choice redraws
        the figure and the table below (errors, e.g. an empty caption, are printed there)."""
        import ipywidgets as W
        import matplotlib.pyplot as plt
        from IPython.display import display

        data = self.gallery.data
        options = [(f"{data.video_ids[data.text_to_video[i]]}: {data.texts[i]}", int(i)) for i in data.query_index]
        pick = W.Dropdown(options=options, description="caption", layout=W.Layout(width="60%"))
        free = W.Text(
            placeholder="or type a caption and press Enter",
            continuous_update=False,
            layout=W.Layout(width="40%"),
        )
        out = W.Output()

        def render(c):
            with out:
                out.clear_output(wait=True)
                try:
                    q = self.gallery.query(c)
                    table = self.table(q)
                    fig = self.figure(q, table)
                    self.last_table = table
                    display(fig)
                    plt.close(fig)
                    display(table.drop(columns=["caption", "frame_weights"]).round({"score": 4}))
                except (ValueError, IndexError, TypeError, OSError) as err:
                    print(f"{type(err).__name__}: {err}")

        if isinstance(caption, (int, np.integer)) and int(caption) in set(data.query_index.tolist()):
            pick.value = int(caption)
        pick.observe(lambda change: render(change["new"]), names="value")
        free.observe(lambda change: render(change["new"]), names="value")
        render(caption)
        return W.VBox([W.HBox([pick, free]), out])

    def show(self, caption: int | str = 0, interactive: bool = False):
        """The static figure (``interactive=False``: what an executed notebook keeps) or the widget."""
        return self.widget(caption) if interactive else self.figure(caption)


def _gallery(source: Any, split: str) -> tuple[Gallery, str]:
    if isinstance(source, Gallery):
        return source, "quick"
    if hasattr(source, "data") and hasattr(source, "encoder"):  # tvrlib.session.Session
        return Gallery.from_session(source, split), getattr(source, "profile", "quick")
    raise TypeError(f"browse needs a session (tvrlib.session.setup) or a Gallery, got {type(source).__name__}")


def browse(
    source: Any,
    heads: Any,
    caption: int | str = 0,
    *,
    split: str = "test",
    k: int = TOP_K,
    interactive: bool = False,
    frame_size: int = 64,
    name: str | None = None,
    profile: str | None = None,
):
    """The top-``k`` videos of ``caption`` under ``heads`` on ``split`` of ``source`` (a session or a
    :class:`Gallery`): a static figure, or with ``interactive=True`` the ipywidgets browser.

    ``heads``: a name, a trained head, a run of :func:`tvrlib.experiment.run`, a list or ``{label: head}``
    (:func:`resolve_heads`); two heads are drawn side by side. ``name``: save the figure as
    ``results/<profile>/figures/<name>.png``.
    """
    gallery, default_profile = _gallery(source, split)
    b = Browser(gallery, heads, k=k, frame_size=frame_size, name=name, profile=profile or default_profile)
    return b.show(caption, interactive=interactive)


def compare_heads(source: Any, head_a: Any, head_b: Any, caption: int | str = 0, **kwargs):
    """:func:`browse` with two heads side by side on the same caption (e.g. meanP vs seqTransf on an order twin's
    caption, :func:`twin_queries`)."""
    return browse(source, [head_a, head_b], caption, **kwargs)


# --------------------------------------------------------------------------------------------- drawing
def _strip(frames: np.ndarray, mask: np.ndarray, gap: int = 2) -> np.ndarray:
    """``uint8 [F, H, W, 3]`` -> one image ``[H, F * (W + gap) - gap, 3]``, white gaps, padding slots grey."""
    f, h, w, _ = frames.shape
    out = np.full((h, f * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i in range(f):
        out[:, i * (w + gap) : i * (w + gap) + w] = frames[i] if mask[i] else 200
    return out


def draw_ranking(
    table: pd.DataFrame,
    frames_of: Callable[[int], tuple[np.ndarray, np.ndarray]],
    *,
    title: str | None = None,
    name: str | None = None,
    profile: str = "quick",
    cell: float = 0.42,
):
    """Draw a ranking table (:meth:`Browser.table`) as a figure; returns it (saved when ``name`` is given).

    One column per head (in the table's order), one strip of sampled frames per row (``frames_of(video_index) ->
    (uint8 [F, H, W, 3], bool [F])``), titled with the position, video id, score and metrics rank; the gold is
    framed green, its twin orange. Rows with ``frame_weights`` (heads with attention over frames) get the weights
    as bars under the frames, with the uniform weight ``1 / #valid frames`` dashed. Axes are labelled
    ``"strip <head> <video_id>"`` and ``"weights <head> <video_id>"``.
    """
    import matplotlib.pyplot as plt  # noqa: F401  (the backend is the caller's: Agg headless, inline in notebooks)

    from .reporting import figure, save_figure

    if table.empty:
        raise ValueError("the ranking table is empty: nothing to draw")
    heads = list(dict.fromkeys(table["head"]))
    per_head = [table[table["head"] == h].reset_index(drop=True) for h in heads]
    has_w = ["frame_weights" in t and t["frame_weights"].notna().any() for t in per_head]
    any_w = any(has_w)
    n_rows = max(len(t) for t in per_head)
    top_k = [int(t["in_top_k"].sum()) for t in per_head]
    f0, m0 = frames_of(int(per_head[0]["video_index"].iloc[0]))
    n_frames, h, w = f0.shape[:3]
    gap = max(1, w // 32)
    wmax = max(
        (max(row) for t, hw in zip(per_head, has_w) if hw for row in t["frame_weights"] if row is not None),
        default=1.0,
    )
    strip_in = cell * n_frames
    row_in = cell + 0.32 + (0.42 if any_w else 0.0)
    width = len(heads) * (strip_in + 0.3) + 0.3
    fig, ax0 = figure(name, profile, width=width, height=n_rows * row_in + 0.9)
    ax0.remove()
    unit = 2 if any_w else 1
    ratios = [1.0, 0.35] * n_rows if any_w else [1.0] * n_rows
    grid = fig.add_gridspec(unit * n_rows, len(heads), height_ratios=ratios)
    colours = {"gold": "#009E73", "twin": "#E69F00"}
    for c, (head, t) in enumerate(zip(heads, per_head)):
        for r, row in enumerate(t.itertuples(index=False)):
            frames, mask = frames_of(int(row.video_index))
            ax = fig.add_subplot(grid[unit * r, c])
            ax.set_label(f"strip {head} {row.video_id}")
            ax.imshow(_strip(frames, mask, gap), interpolation="nearest")
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
            tag = " \u00b7 gold" if row.is_gold else " \u00b7 twin" if row.is_twin else ""
            where = f"{row.position}." if row.in_top_k else f"(#{row.position}, below the top {top_k[c]})"
            info = f"{where} {row.video_id}   score {row.score:.4f}   rank {row.rank:g}{tag}"
            ax.set_title(info, loc="left", fontsize=8, pad=3, fontweight="bold" if row.is_gold else "normal")
            if r == 0:
                ax.text(0.5, 1.0, f"{head}\n\n", transform=ax.transAxes, ha="center", va="bottom", fontsize=11)
            edge = colours["gold"] if row.is_gold else colours["twin"] if row.is_twin else None
            for s in ax.spines.values():
                s.set_visible(edge is not None)
                if edge is not None:
                    s.set_edgecolor(edge)
                    s.set_linewidth(2.5)
            weights = getattr(row, "frame_weights", None) if has_w[c] else None
            if weights is not None:
                wax = fig.add_subplot(grid[unit * r + 1, c], sharex=ax)
                wax.set_label(f"weights {head} {row.video_id}")
                x = np.arange(n_frames) * (w + gap) + (w - 1) / 2
                wax.bar(x, weights, width=0.8 * w, color="#0072B2")
                wax.axhline(1.0 / max(1, int(np.sum(mask))), color="0.4", lw=0.8, ls="--")
                wax.set_ylim(0, wmax * 1.05)
                wax.set_yticks([0, round(wmax, 2)])
                wax.tick_params(labelsize=6, length=0, pad=1)
                wax.set_xticks([])
                wax.grid(False)
                for s in wax.spines.values():
                    s.set_visible(False)
    if title:
        fig.suptitle(textwrap.fill(title, max(40, int(width * 11))), fontsize=10)  # ~11 characters an inch
    fig.tight_layout()
    save_figure(fig)
    return fig


# --------------------------------------------------------------------------------------------- playing videos
#: (codec, pixel format) pairs that every mainstream browser plays in an HTML5 ``<video>``
_BROWSER_SAFE = {("h264", "yuv420p"), ("h264", "yuvj420p"), ("vp8", "yuv420p"), ("vp9", "yuv420p"), ("av1", "yuv420p")}
_H264_SAFE_PROFILES = {"Baseline", "Constrained Baseline", "Main", "High"}


def _video_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoReadError(
            f"video file not found: {path}. Generate the synthetic benchmark (make data, or python -m tvrlib prepare "
            "--profile <profile>), or for real data put the videos where the README ('Real data') says"
        )
    return path


def browser_playable(path) -> tuple[bool, str]:
    """``(playable, why)``: whether browsers play the file in an HTML5 ``<video>`` (H.264 in 4:2:0 with the
    Baseline/Main/High profile, or VP8/VP9/AV1 in 4:2:0), and a short description of its stream."""
    import av

    path = _video_path(path)
    with av.open(str(path)) as c:
        if not c.streams.video:
            return False, f"{path.name} has no video stream"
        cc = c.streams.video[0].codec_context
        codec, pix, profile = cc.name, cc.pix_fmt, cc.profile
    what = f"{codec} ({profile}), {pix}"
    ok = (codec, pix) in _BROWSER_SAFE and (codec != "h264" or profile in _H264_SAFE_PROFILES)
    if ok:
        return True, what
    return False, f"{what}: not reliably played by browsers (a black box in some); a 4:2:0 copy plays everywhere"


def browser_copy(path) -> bytes:
    """An mp4 (H.264, yuv420p, near-lossless, one encoder thread: the same bytes on every run of one build) of
    the video at ``path``, made in memory for display; odd widths/heights lose their last pixel row/column."""
    import av

    path = _video_path(path)
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        rate = stream.average_rate or 8
        frames = [f.to_ndarray(format="rgb24") for f in src.decode(stream)]
    if not frames:
        raise VideoReadError(f"video has no frames: {path}. Re-download or re-generate it.")
    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "12", "preset": "veryfast", "threads": "1", "profile": "high"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")
            for packet in st.encode(frame):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return buf.getvalue()


@dataclass
class VideoView:
    """One video for a notebook: an HTML5 ``<video>`` (``IPython.display.Video``) with a title and captions
    beside it. ``path`` is the file shown; ``copy``: the ``<video>`` plays an in-memory 4:2:0 copy of it
    (:func:`browser_copy`); ``playable``/``why``: :func:`browser_playable` of the file itself."""

    path: Path
    video: Any  # IPython.display.Video
    title: str
    captions: tuple[str, ...] = ()
    playable: bool = True
    why: str = ""
    copy: bool = False
    note: str = ""

    def _repr_html_(self) -> str:
        caps = "".join(f"<li>{html.escape(c)}</li>" for c in self.captions)
        note = f"<div style='color:#a33;font-size:85%'>{html.escape(self.note)}</div>" if self.note else ""
        return (
            f"<div style='display:flex;gap:12px;align-items:flex-start;margin:4px 0' "
            f"data-path='{html.escape(str(self.path))}'>"
            f"<div>{self.video._repr_html_()}</div>"
            f"<div><b>{html.escape(self.title)}</b> <code>{html.escape(self.path.name)}</code>{note}"
            f"<ul style='margin:4px 0;padding-left:18px'>{caps}</ul></div></div>"
        )

    @property
    def html(self) -> str:
        return self._repr_html_()


def video_view(
    path,
    captions: Sequence[str] = (),
    *,
    title: str | None = None,
    width: int = 288,
    embed: bool = True,
    copy: str = "auto",
    autoplay: bool = True,
) -> VideoView:
    """A :class:`VideoView` of the video file ``path`` with ``captions`` beside it.

    ``embed=True``: the video's bytes go into the notebook (it plays wherever the notebook is opened; a few
    tens of kB for a synthetic video). ``copy``: ``"auto"`` embeds a 4:2:0 H.264 copy (:func:`browser_copy`)
    when browsers cannot play the file itself (:func:`browser_playable`; the synthetic benchmark's yuv444p),
    ``"always"`` / ``"never"`` force it. ``embed=False`` refers to the file by its path relative to the working
    directory (no copy is possible; a note says when browsers may not play it). ``width`` in pixels (small
    videos are scaled up without smoothing); muted, looped and, with ``autoplay``, playing on display.
    """
    from IPython.display import Video

    if copy not in ("auto", "always", "never"):
        raise ValueError(f"copy must be 'auto', 'always' or 'never', got {copy!r}")
    path = _video_path(path)
    playable, why = browser_playable(path)
    attrs = "controls loop muted playsinline" + (" autoplay" if autoplay else "")
    attrs += " style='image-rendering:pixelated'"
    note = ""
    use_copy = embed and (copy == "always" or (copy == "auto" and not playable))
    if embed:
        data = browser_copy(path) if use_copy else path.read_bytes()
        video = Video(data=data, embed=True, mimetype="video/mp4", width=width, html_attributes=attrs)
    else:
        try:
            src = os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            src = str(path)
        video = Video(url=Path(src).as_posix(), embed=False, width=width, html_attributes=attrs)
        if not playable:
            note = f"browsers may not play this file ({why}); use embed=True for a playable copy"
    return VideoView(path, video, title or path.stem, tuple(captions), playable, why, use_copy, note)


def _video_index(data, video: int | str) -> int:
    if isinstance(video, str):
        ids = data.video_ids
        if video not in ids:
            raise KeyError(f"no video {video!r} in split {data.split!r} of {data.dataset!r} ({len(ids)} videos)")
        return ids.index(video)
    j = int(video)
    if not 0 <= j < data.num_videos:
        raise IndexError(
            f"video index {j} is out of range: split {data.split!r} of {data.dataset!r} has {data.num_videos} videos"
        )
    return j


def play(data, video: int | str, **kwargs) -> VideoView:
    """A :class:`VideoView` of a video of a split (``data``: :class:`~tvrlib.datasets.RetrievalData`; ``video``:
    its index or id) with every caption of that video beside it (keyword arguments: :func:`video_view`)."""
    j = _video_index(data, video)
    caps = [t for t, g in zip(data.texts, data.text_to_video) if int(g) == j]
    v = data.videos[j]
    if not Path(v.path).exists():
        raise VideoReadError(
            f"split {data.split!r} of {data.dataset!r}: no video file for {v.video_id} at {v.path}. Generate the "
            "synthetic benchmark (make data, or python -m tvrlib prepare --profile <profile>), or for real data "
            "put the videos where the README ('Real data') says"
        )
    return video_view(v.path, caps, title=kwargs.pop("title", v.video_id), **kwargs)


def play_twins(data, factor: str = "order", which: int = 0, **kwargs):
    """The ``which``-th twin pair of ``factor`` (:func:`twin_queries`) side by side, each video with its captions:
    an ``IPython.display.HTML`` (keyword arguments: :func:`video_view`)."""
    from IPython.display import HTML

    pairs = twin_queries(data, factor)
    if not 0 <= which < len(pairs):
        raise IndexError(f"twin pair {which} is out of range: {len(pairs)} query twin pairs of factor {factor!r}")
    p = pairs.iloc[which]
    views = [play(data, int(p.gold), **kwargs), play(data, int(p.twin), **kwargs)]
    head = f"<b>{html.escape(factor)} twins</b>: {html.escape(p.gold_id)} and {html.escape(p.twin_id)}"
    body = "".join(f"<div style='flex:1'>{v.html}</div>" for v in views)
    out = HTML(f"<div>{head}<div style='display:flex;gap:24px'>{body}</div></div>")
    out.views = views
    return out
