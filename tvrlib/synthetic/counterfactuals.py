"""Counterfactual captions: a synthetic video described with one fact changed (caption-level hard negatives).

For a video spec (:class:`~tvrlib.synthetic.world.VideoSpec`) two kinds of change make a caption that is false of
the video but shares every word-level cue a bag of objects and colours could use:

* ``direction`` -- one move event's direction reversed (as a direction twin, :func:`~.benchmark.make_twin`);
* ``order`` -- two consecutive events of different objects swapped (as an order twin), kept only when the swapped
  event sequence is physically consistent (:func:`~.world.check_valid` on the events alone: a counterfactual is
  never rendered, so the distractor's timing, which captions do not state, is left out of the check).

Each counterfactual is rendered together with the matching true caption of the original video from the *same*
choices (templates, place phrases, connectives, background and distractor phrases), so the pair differs exactly in
the changed fact: a direction flip swaps one clause for the same template in the opposite direction ("slides from
right to left" <-> "slides from left to right"), an order swap exchanges two clauses (articles follow the new
order: the first mention of an object says "a"). Everything is drawn from ``numpy.random.default_rng`` seeded with
a seed, the video id, the change and the paraphrase number: deterministic, computed from the stored specs, and the
generated benchmark files are not changed.

Hard negatives made this way are our own addition, measured in ``benchmarks/text_regime.py``, not a paper's method.

* :func:`counterfactual_changes` -- the changes a spec admits;
* :func:`counterfactual_pair` -- (true caption, counterfactual caption) of one change;
* :func:`counterfactual_table` -- every counterfactual caption of a loaded split, one row each.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import captions as cap
from .world import OPPOSITE, Event, VideoSpec, adjacent_swaps, check_valid

CHANGES = ("direction", "order")
_CHANGE_CODE = {"direction": 1, "order": 2}


@dataclass(frozen=True)
class Counterfactual:
    """One change of a video spec: ``factor`` (``"direction"``: move ``event_index`` reversed; ``"order"``: events
    ``event_index`` and ``event_index + 1`` swapped) and the changed ``spec``."""

    factor: str
    event_index: int
    spec: VideoSpec


def counterfactual_changes(spec: VideoSpec, factors=CHANGES) -> list[Counterfactual]:
    """Every direction flip (one per move event) and every valid order swap (one per pair of consecutive events of
    different objects whose swap is physically consistent) of ``spec``."""
    unknown = set(factors) - set(CHANGES)
    if unknown:
        raise ValueError(f"unknown counterfactual factors {sorted(unknown)}; known: {CHANGES}")
    out = []
    if "direction" in factors:
        for k, e in enumerate(spec.events):
            if e.kind == "move":
                ev = list(spec.events)
                ev[k] = dataclasses.replace(e, direction=OPPOSITE[e.direction])
                out.append(Counterfactual("direction", k, spec.with_events(ev)))
    if "order" in factors:
        for k, ev in adjacent_swaps(spec):
            swapped = spec.with_events(ev)
            if check_valid(dataclasses.replace(swapped, distractor=None)) is None:
                out.append(Counterfactual("order", k, swapped))
    return out


def _clause(e: Event, article: str, template: int, place: str | None) -> str:
    text = cap.EVENT_TEMPLATES[cap._event_key(e)][template].format(o=cap.noun_phrase(article, e.obj.name))
    return text if place is None else f"{text} {place}"


def _clauses(events, plan: list[tuple[int, str | None]], slot_of: list[int]) -> list[str]:
    """The clauses of ``events`` in order; event ``i`` uses the choices ``plan[slot_of[i]]``; articles follow the
    order (the first mention of an object: "a", later ones: "the")."""
    seen, out = set(), []
    for i, e in enumerate(events):
        template, place = plan[slot_of[i]]
        out.append(_clause(e, "the" if e.obj in seen else "a", template, place))
        seen.add(e.obj)
    return out


@dataclass(frozen=True)
class CaptionPair:
    """A true caption of a video and its counterfactual, rendered from the same choices, with the event clauses each
    was joined from (``true_clauses[i]``: event ``i`` of the original; ``false_clauses[i]``: event ``i`` of the
    counterfactual spec)."""

    true: str
    false: str
    true_clauses: tuple[str, ...]
    false_clauses: tuple[str, ...]


def counterfactual_pair(spec: VideoSpec, change: Counterfactual, rng: np.random.Generator) -> CaptionPair:
    """The true caption of ``spec`` and the counterfactual caption of ``change``, rendered from the same choices
    drawn from ``rng``: they differ exactly in the changed direction or in the order of the two swapped events."""
    plan = []
    for e in spec.events:  # per event of the original: its template and (an appearance's) place phrase
        template = int(rng.integers(len(cap.EVENT_TEMPLATES[cap._event_key(e)])))
        place = cap.position_phrase(e.cell, rng) if e.kind == "appear" and rng.random() < 0.5 else None
        plan.append((template, place))
    join_seed = int(rng.integers(2**31))
    tail = ""
    if rng.random() < 0.3:
        tail += f" on a {spec.background} background"
    if spec.distractor is not None and rng.random() < 0.3:
        tail += " " + cap.distractor_phrase(spec, rng)
    n = len(spec.events)
    slot_of = list(range(n))
    if change.factor == "order":
        k = change.event_index
        slot_of[k], slot_of[k + 1] = k + 1, k  # the swapped events keep their own choices
    true = _clauses(spec.events, plan, list(range(n)))
    false = _clauses(change.spec.events, plan, slot_of)
    # the same connectives for both: _join draws its style from an identically seeded generator
    return CaptionPair(
        cap._join(true, np.random.default_rng(join_seed)) + tail,
        cap._join(false, np.random.default_rng(join_seed)) + tail,
        tuple(true),
        tuple(false),
    )


def _video_specs(data) -> list[VideoSpec]:
    fields = data.meta.get("video_fields") if hasattr(data, "meta") else None
    if not fields or any("spec" not in f for f in fields):
        raise ValueError(
            f"{getattr(data, 'dataset', '?')}/{getattr(data, 'split', '?')} has no synthetic video specs "
            "(meta['video_fields'][j]['spec']): counterfactual captions (hard negatives) exist only for the "
            "synthetic benchmark; set hard_negatives=0 for this dataset"
        )
    return [VideoSpec.from_json(f["spec"]) for f in fields]


def counterfactual_table(data, *, paraphrases: int = 1, factors=CHANGES, seed: int = 0) -> pd.DataFrame:
    """Every counterfactual caption of the videos of ``data`` (a loaded synthetic split): one row per video, change
    and paraphrase, with columns ``video`` (column in the split), ``video_id``, ``factor``, ``event_index``,
    ``paraphrase``, ``caption`` (false of the video) and ``original`` (the true caption it was rendered with).

    ``paraphrases``: renderings per change (different templates and connectives); ``seed``: mixed with the video id
    into each rendering's generator. A video without moves and without a valid swap has no row. Data without
    synthetic specs (real data) raises ``ValueError``."""
    if paraphrases < 1:
        raise ValueError(f"paraphrases must be >= 1, got {paraphrases}")
    specs = _video_specs(data)
    rows = []
    for j, (vid, spec) in enumerate(zip(data.video_ids, specs, strict=True)):
        key = zlib.crc32(str(vid).encode())
        for c, change in enumerate(counterfactual_changes(spec, factors)):
            for p in range(paraphrases):
                rng = np.random.default_rng([seed, key, _CHANGE_CODE[change.factor], c, p])
                pair = counterfactual_pair(spec, change, rng)
                if pair.true == pair.false:  # never expected: the change is always visible in the text
                    continue
                rows.append(
                    {
                        "video": j,
                        "video_id": vid,
                        "factor": change.factor,
                        "event_index": change.event_index,
                        "paraphrase": p,
                        "caption": pair.false,
                        "original": pair.true,
                    }
                )
    columns = ["video", "video_id", "factor", "event_index", "paraphrase", "caption", "original"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------ edits of the captions a split actually holds
def _place_phrases(cell) -> list[str]:
    """Every phrase :func:`~.captions.position_phrase` can render for ``cell`` (longest first)."""
    r, c = cell
    if (r, c) == (1, 1):
        return ["in the center", "in the middle"]
    if r == 1:
        return [f"on the {cap.COLS[c]}"]
    if c == 1:
        return [f"at the {cap.ROWS[r]}"]
    return [f"in the {cap.ROWS[r]} {cap.COLS[c]} corner", f"at the {cap.ROWS[r]} {cap.COLS[c]}"]


def _find_clause(caption: str, e: Event, start: int) -> tuple[int, int, int, str] | None:
    """The first clause of event ``e`` in ``caption`` at or after ``start``: ``(begin, end, template, article)``,
    ``end`` past an appearance's place phrase when one follows; None when the caption does not describe ``e``."""
    best = None
    for t, template in enumerate(cap.EVENT_TEMPLATES[cap._event_key(e)]):
        for article in ("a", "the"):
            text = template.format(o=cap.noun_phrase(article, e.obj.name))
            i = caption.find(text, start)
            while i > 0 and caption[i - 1].isalnum():  # only whole words
                i = caption.find(text, i + 1)
            if i < 0 or (i + len(text) < len(caption) and caption[i + len(text)].isalnum()):
                continue
            if best is None or (i, -len(text)) < (best[0], -(best[1] - best[0])):
                best = (i, i + len(text), t, article)
    if best is not None and e.kind == "appear":
        for place in _place_phrases(e.cell):
            if caption.startswith(" " + place, best[1]):
                best = (best[0], best[1] + 1 + len(place), best[2], best[3])
                break
    return best


def clause_spans(caption: str, spec: VideoSpec, kind: str) -> dict[int, tuple[int, int, int, str]]:
    """Where ``caption`` (a caption of ``spec`` as the benchmark writes it; ``kind``: ``"video"`` for a caption of
    every event in order, ``"event"`` for a caption of one event) states each event: ``{event index: (begin, end,
    template index, article)}``. A video caption in which some event is not found gives ``{}``."""
    if kind == "event":
        for k, e in enumerate(spec.events):
            found = _find_clause(caption, e, 0)
            if found is not None and found[0] == 0:
                return {k: found}
        return {}
    spans, pos = {}, 0
    for k, e in enumerate(spec.events):
        found = _find_clause(caption, e, pos)
        if found is None:
            return {}
        spans[k], pos = found, found[1]
    return spans


def caption_counterfactuals(caption: str, spec: VideoSpec, kind: str, factors=CHANGES) -> list[tuple[str, int, str]]:
    """Minimal edits of a caption the benchmark holds that make it false of its video: ``(factor, event index,
    edited caption)``. ``direction``: one move's clause in the opposite direction with the same template
    ("slides from right to left" -> "slides from left to right"); ``order``: two adjacent clauses exchanged where
    the swapped events are physically consistent (whole-video captions only; the events are of different objects,
    so no article changes). Everything else in the caption -- wording, connectives, background and distractor
    phrases -- is kept, so the edit is the only difference (unlike :func:`counterfactual_pair`, which renders a
    fresh pair). An event caption whose flipped move also happens in the video is left out: it would be true."""
    spans = clause_spans(caption, spec, kind)
    out = []
    if "direction" in factors:
        for k, (b, e, t, article) in spans.items():
            ev = spec.events[k]
            if ev.kind != "move":
                continue
            flipped = dataclasses.replace(ev, direction=OPPOSITE[ev.direction])
            if kind == "event" and flipped in spec.events:
                continue
            text = cap.EVENT_TEMPLATES[cap._event_key(flipped)][t].format(o=cap.noun_phrase(article, ev.obj.name))
            out.append(("direction", k, caption[:b] + text + caption[e:]))
    if "order" in factors and kind == "video" and spans:
        for change in counterfactual_changes(spec, ("order",)):
            k = change.event_index
            (b1, e1, *_), (b2, e2, *_) = spans[k], spans[k + 1]
            out.append(("order", k, caption[:b1] + caption[b2:e2] + caption[e1:b2] + caption[b1:e1] + caption[e2:]))
    return out


def caption_counterfactual_table(data, *, factors=CHANGES) -> pd.DataFrame:
    """Every minimal edit (:func:`caption_counterfactuals`) of every caption of ``data`` (a loaded synthetic split):
    one row each, with ``text`` (the caption's index in the split), ``video`` (its column), ``video_id``,
    ``factor``, ``event_index``, ``caption`` (the edit, false of the video) and ``original`` (the caption itself).
    Data without synthetic specs raises ``ValueError``."""
    specs = _video_specs(data)
    kinds = data.meta.get("kind_of_text") or ["video"] * len(data.texts)
    rows = []
    for i, (caption, j) in enumerate(zip(data.texts, data.text_to_video, strict=True)):
        for factor, k, edited in caption_counterfactuals(caption, specs[j], kinds[i], factors):
            rows.append(
                {
                    "text": i,
                    "video": int(j),
                    "video_id": data.video_ids[j],
                    "factor": factor,
                    "event_index": k,
                    "caption": edited,
                    "original": caption,
                }
            )
    columns = ["text", "video", "video_id", "factor", "event_index", "caption", "original"]
    return pd.DataFrame(rows, columns=columns)
