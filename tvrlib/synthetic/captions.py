"""A small caption grammar with paraphrases for the synthetic benchmark.

Three kinds of text:

* **video captions** describe every event in order ("a red circle appears, then
  a blue square moves to the left"), sometimes with the background and the
  distractor; order words (then / before / after / first ... finally) carry the
  event order, which is what an *order twin* changes;
* **event captions** describe a single event ("the red circle gets bigger"):
  partially relevant queries, true of one part of the video only;
* **still descriptions** describe one frame (colours, shapes, sizes, positions,
  background) with no motion or order words; they pretrain the tiny CLIP.

Every choice is drawn from the ``rng`` passed in, so captions are deterministic.
"""

from __future__ import annotations

import numpy as np

from .world import COLS, ROWS, Event, Obj, StillSpec, VideoSpec

EVENT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "appear": ("{o} appears", "{o} fades in", "{o} shows up", "{o} comes into view"),
    "disappear": ("{o} disappears", "{o} fades out", "{o} vanishes", "{o} goes away"),
    "grow": ("{o} grows", "{o} gets bigger", "{o} expands", "{o} becomes larger"),
    "shrink": ("{o} shrinks", "{o} gets smaller", "{o} contracts", "{o} becomes smaller"),
    "move-left": (
        "{o} moves to the left",
        "{o} slides from right to left",
        "{o} crosses the screen from right to left",
        "{o} travels leftward",
    ),
    "move-right": (
        "{o} moves to the right",
        "{o} slides from left to right",
        "{o} crosses the screen from left to right",
        "{o} travels rightward",
    ),
    "move-up": (
        "{o} moves up",
        "{o} rises from the bottom to the top",
        "{o} crosses the screen from bottom to top",
        "{o} travels upward",
    ),
    "move-down": (
        "{o} moves down",
        "{o} falls from the top to the bottom",
        "{o} crosses the screen from top to bottom",
        "{o} travels downward",
    ),
}
SIZE_WORDS = {"medium": ("medium", "medium-sized", "mid-sized"), "large": ("large", "big")}


def position_phrase(cell, rng: np.random.Generator) -> str:
    r, c = cell
    if (r, c) == (1, 1):
        return str(rng.choice(["in the center", "in the middle"]))
    if r == 1:
        return f"on the {COLS[c]}"
    if c == 1:
        return f"at the {ROWS[r]}"
    return str(rng.choice([f"in the {ROWS[r]} {COLS[c]} corner", f"at the {ROWS[r]} {COLS[c]}"]))


def canonical_position(cell) -> str:
    """One fixed phrase per grid cell (for zero-shot prompts): ``"in the center"``, ``"on the left"``,
    ``"at the top"``, ``"in the top left corner"``."""
    r, c = cell
    if (r, c) == (1, 1):
        return "in the center"
    if r == 1:
        return f"on the {COLS[c]}"
    if c == 1:
        return f"at the {ROWS[r]}"
    return f"in the {ROWS[r]} {COLS[c]} corner"


def _event_key(e: Event) -> str:
    return f"move-{e.direction}" if e.kind == "move" else e.kind


def noun_phrase(article: str, words: str) -> str:
    """``"a red circle"``, ``"an orange square"``, ``"the white diamond"``."""
    if article == "a" and words[:1] in "aeiou":
        article = "an"
    return f"{article} {words}"


def event_clause(e: Event, article: str, rng: np.random.Generator, with_place: bool = False) -> str:
    clause = str(rng.choice(EVENT_TEMPLATES[_event_key(e)])).format(o=noun_phrase(article, e.obj.name))
    if with_place and e.kind == "appear" and rng.random() < 0.5:
        clause += " " + position_phrase(e.cell, rng)
    return clause


def _join(clauses: list[str], rng: np.random.Generator) -> str:
    n = len(clauses)
    style = int(rng.integers(0, 3 if n == 2 else 2))
    if style == 0:
        return (
            clauses[0]
            + "".join(f", then {c}" for c in clauses[1:-1])
            + (f", and finally {clauses[-1]}" if n > 2 else f", then {clauses[-1]}")
        )
    if style == 1:
        mid = "".join(f", next {c}" for c in clauses[1:-1])
        return (
            f"first {clauses[0]}{mid}, and finally {clauses[-1]}" if n > 2 else f"first {clauses[0]}, then {clauses[1]}"
        )
    # two events only: before / after
    return f"{clauses[0]} before {clauses[1]}" if rng.random() < 0.5 else f"after {clauses[0]}, {clauses[1]}"


def distractor_phrase(spec: VideoSpec, rng: np.random.Generator) -> str:
    d = spec.distractor
    where = f"in the {d.corner} corner"
    if len(d.events) == len(spec.events):
        return str(rng.choice([f"while a small {d.obj.name} sits {where}", f"with a small {d.obj.name} {where}"]))
    return str(
        rng.choice(
            [f"while a small {d.obj.name} briefly shows {where}", f"and a small {d.obj.name} is {where} for a while"]
        )
    )


def video_caption(
    spec: VideoSpec,
    rng: np.random.Generator,
    *,
    mention_distractor: bool | None = None,
    mention_background: bool | None = None,
) -> str:
    """A caption describing every event of ``spec`` in order."""
    seen: set[Obj] = set()
    clauses = []
    for e in spec.events:
        article = "the" if e.obj in seen else "a"
        seen.add(e.obj)
        clauses.append(event_clause(e, article, rng, with_place=True))
    text = _join(clauses, rng)
    if mention_background is None:
        mention_background = rng.random() < 0.3
    if mention_background:
        text += f" on a {spec.background} background"
    if mention_distractor is None:
        mention_distractor = rng.random() < 0.3
    if mention_distractor and spec.distractor is not None:
        text += " " + distractor_phrase(spec, rng)
    return text


def event_caption(spec: VideoSpec, k: int, rng: np.random.Generator) -> str:
    """A caption describing only event ``k`` (a partially relevant query)."""
    return event_clause(spec.events[k], str(rng.choice(["a", "the"])), rng, with_place=True)


def still_description(spec: StillSpec, rng: np.random.Generator, *, main_position: bool = False) -> str:
    """A static description of one frame: no motion or order words. ``main_position``: always say where the main
    (first) object is (pretraining groups that differ only in that position need it to tell them apart)."""
    phrases = []
    for j, o in enumerate(spec.objects):
        size = "" if rng.random() < 0.35 else str(rng.choice(SIZE_WORDS[o.size])) + " "
        phrase = noun_phrase("a", f"{size}{o.obj.name}")
        if rng.random() < 0.75 or (main_position and j == 0):
            phrase += " " + position_phrase(o.cell, rng)
        phrases.append(phrase)
    text = " and ".join(phrases)
    if spec.distractor is not None and rng.random() < 0.6:
        obj, corner = spec.distractor
        text += f" and a small {obj.name} in the {corner} corner"
    if rng.random() < 0.6:
        text += str(rng.choice([f" on a {spec.background} background", f", {spec.background} background"]))
    if rng.random() < 0.2:
        text = str(rng.choice(["there is ", "a picture of ", "we see "])) + text
    return text
