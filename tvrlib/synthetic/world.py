"""The synthetic world: coloured shapes on backgrounds, events, and a frame renderer.

A video is a fixed-length clip of ``num_frames = intervals * frames_per_interval + 1``
frames (default 11 * 4 + 1 = 45). Its timeline is cut into 2-4 consecutive
*events*; event boundaries fall on multiples of ``frames_per_interval``, so the
default uniform sampler (12 frames at ``linspace(0, num_frames - 1, 12)``) takes
the first and last frame of every event and frames placed symmetrically inside it.

Events (one object each):

* ``appear``    a new static object fades in at a grid cell;
* ``disappear`` a visible static object fades out;
* ``grow`` / ``shrink``  a visible static object changes size (medium <-> large);
* ``move``      a new object crosses the whole frame (left, right, up or down)
  along a lane; it is off-screen on the event's first and last frame.

Because a moving object is off-screen at both ends of its event and everything
else is still during it, reversing a move's direction reverses that event's
frames and leaves every other frame unchanged: a *direction twin* is the same
multiset of frames in another order, so any order-blind method (mean pooling)
scores the two twins identically.

A small *distractor* (a small shape in a corner) is visible during a run of
events (or the whole clip); a *detail twin* changes its colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 220, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 15),
    "gray": (110, 110, 110),
    "brown": (100, 70, 40),
    "teal": (20, 100, 100),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = {"small": 0.07, "medium": 0.13, "large": 0.20}  # half-extent as a fraction of the frame side
CELL_CENTRES = (0.22, 0.5, 0.78)  # grid coordinates (fraction of the frame side)
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
CORNER_CELL = {"top left": (0, 0), "top right": (0, 2), "bottom left": (2, 0), "bottom right": (2, 2)}
DIRECTIONS = ("left", "right", "up", "down")
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
EVENT_KINDS = ("appear", "disappear", "move", "grow", "shrink")


@dataclass(frozen=True)
class Obj:
    color: str
    shape: str

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Event:
    kind: str  # one of EVENT_KINDS
    obj: Obj
    cell: tuple[int, int] | None = None  # appear: where; disappear/grow/shrink: where the object is
    size: str = "medium"  # appear: size it appears with
    direction: str | None = None  # move
    lane: int = 1  # move: row (left/right) or column (up/down) index
    intervals: int = 1  # duration in sampling intervals

    def to_json(self) -> dict:
        d = {"kind": self.kind, "color": self.obj.color, "shape": self.obj.shape, "intervals": self.intervals}
        if self.kind == "move":
            d.update(direction=self.direction, lane=self.lane)
        else:
            d.update(cell=list(self.cell), size=self.size)
        return d

    @staticmethod
    def from_json(d: dict) -> Event:
        return Event(
            kind=d["kind"],
            obj=Obj(d["color"], d["shape"]),
            cell=tuple(d["cell"]) if d.get("cell") is not None else None,
            size=d.get("size", "medium"),
            direction=d.get("direction"),
            lane=d.get("lane", 1),
            intervals=d["intervals"],
        )


@dataclass(frozen=True)
class Distractor:
    obj: Obj
    corner: str
    events: tuple[int, ...]  # indices of the events during which it is visible

    def to_json(self) -> dict:
        return {"color": self.obj.color, "shape": self.obj.shape, "corner": self.corner, "events": list(self.events)}

    @staticmethod
    def from_json(d: dict | None) -> Distractor | None:
        if d is None:
            return None
        return Distractor(Obj(d["color"], d["shape"]), d["corner"], tuple(d["events"]))


@dataclass(frozen=True)
class Initial:
    """A static object visible from the first frame."""

    obj: Obj
    cell: tuple[int, int]
    size: str


@dataclass(frozen=True)
class VideoSpec:
    background: str
    initial: tuple[Initial, ...]
    events: tuple[Event, ...]
    distractor: Distractor | None = None
    frames_per_interval: int = 4

    @property
    def num_frames(self) -> int:
        return sum(e.intervals for e in self.events) * self.frames_per_interval + 1

    def bounds(self) -> list[tuple[int, int]]:
        """``[(first_frame, last_frame)]`` of each event (consecutive events share a boundary frame)."""
        out, s = [], 0
        for e in self.events:
            n = e.intervals * self.frames_per_interval
            out.append((s, s + n))
            s += n
        return out

    def to_json(self) -> dict:
        return {
            "background": self.background,
            "initial": [
                {"color": i.obj.color, "shape": i.obj.shape, "cell": list(i.cell), "size": i.size} for i in self.initial
            ],
            "events": [e.to_json() for e in self.events],
            "distractor": None if self.distractor is None else self.distractor.to_json(),
            "frames_per_interval": self.frames_per_interval,
        }

    @staticmethod
    def from_json(d: dict) -> VideoSpec:
        return VideoSpec(
            d["background"],
            tuple(Initial(Obj(i["color"], i["shape"]), tuple(i["cell"]), i["size"]) for i in d["initial"]),
            tuple(Event.from_json(e) for e in d["events"]),
            Distractor.from_json(d["distractor"]),
            d["frames_per_interval"],
        )

    def with_events(self, events, distractor=None) -> VideoSpec:
        return replace(self, events=tuple(events), distractor=distractor if distractor is not None else self.distractor)


# ----------------------------------------------------------------------------- validity


def check_valid(spec: VideoSpec) -> str | None:
    """Return ``None`` if the event sequence is physically consistent, else the reason."""
    static: dict[Obj, tuple[tuple[int, int], str]] = {}
    used: set[Obj] = set()
    for ini in spec.initial:
        if ini.obj in used or any(c == ini.cell for c, _ in static.values()):
            return "initial objects collide"
        static[ini.obj] = (ini.cell, ini.size)
        used.add(ini.obj)
    for k, e in enumerate(spec.events):
        if e.kind in ("appear", "move"):
            if e.obj in used:
                return f"event {k}: {e.obj.name} was already used"
            used.add(e.obj)
            if e.kind == "appear":
                if any(not _far(c, e.cell) for c, _ in static.values()):
                    return f"event {k}: cell {e.cell} is too close to another object"
                if spec.distractor is not None and _near_corner(e.cell, spec.distractor.corner):
                    return f"event {k}: cell {e.cell} is the distractor's corner"
                static[e.obj] = (e.cell, e.size)
        else:
            if e.obj not in static:
                return f"event {k}: {e.obj.name} is not visible"
            cell, size = static[e.obj]
            if e.cell != cell:
                return f"event {k}: {e.obj.name} is at {cell}, not {e.cell}"
            if e.kind == "disappear":
                del static[e.obj]
            elif e.kind == "grow":
                if size != "medium":
                    return f"event {k}: {e.obj.name} is already large"
                static[e.obj] = (cell, "large")
            elif e.kind == "shrink":
                if size != "large":
                    return f"event {k}: {e.obj.name} is already medium"
                static[e.obj] = (cell, "medium")
    if spec.distractor is not None:
        d = spec.distractor
        if d.obj in used:
            return "distractor equals a main object"
        run = d.events
        if list(run) != list(range(run[0], run[-1] + 1)):
            return "distractor visibility must be a contiguous run of events"
        # a visibility change must not sit at the edge of a move event (see module docstring)
        kinds = [e.kind for e in spec.events]
        if run[0] > 0 and "move" in (kinds[run[0] - 1], kinds[run[0]]):
            return "distractor appears at the edge of a move event"
        if run[-1] < len(kinds) - 1 and "move" in (kinds[run[-1]], kinds[run[-1] + 1]):
            return "distractor disappears at the edge of a move event"
        for ini in spec.initial:
            if _near_corner(ini.cell, d.corner):
                return "an initial object sits in the distractor's corner"
    return None


def adjacent_swaps(spec: VideoSpec):
    """Every ``(k, events)`` with events ``k`` and ``k + 1`` of ``spec`` swapped, where the two are about different
    objects (swapping two events of one object would not change what a caption can say). Validity is the caller's
    to check (:func:`check_valid`): an order twin and a counterfactual caption use different rules."""
    for k in range(len(spec.events) - 1):
        a, b = spec.events[k], spec.events[k + 1]
        if a.obj == b.obj:
            continue
        ev = list(spec.events)
        ev[k], ev[k + 1] = b, a
        yield k, ev


def _far(a, b) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= 2


def _near_corner(cell, corner) -> bool:
    return tuple(cell) == CORNER_CELL[corner]


# ----------------------------------------------------------------------------- rendering


def _shape_mask(shape: str, cx: float, cy: float, r: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        s = 0.85 * r
        return (np.abs(dx) <= s) & (np.abs(dy) <= s)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.15 * r
    if shape == "triangle":  # pointing up; apex at cy - r, base at cy + 0.8 r
        top, base = cy - r, cy + 0.8 * r
        frac = (dy - (top - cy)) / (base - top)  # 0 at apex, 1 at base
        return (dy >= top - cy) & (dy <= base - cy) & (np.abs(dx) <= frac * r)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _paint(img: np.ndarray, obj: Obj, cx: float, cy: float, r: float, alpha: float, grid) -> None:
    if alpha <= 0:
        return
    m = _shape_mask(obj.shape, cx, cy, r, *grid)
    if not m.any():
        return
    col = np.asarray(COLORS[obj.color], dtype=np.float32)
    if alpha >= 1:
        img[m] = col
    else:
        img[m] = img[m] * (1 - alpha) + col * alpha


def _cell_xy(cell, size: int) -> tuple[float, float]:
    return CELL_CENTRES[cell[1]] * size, CELL_CENTRES[cell[0]] * size


def _corner_xy(corner: str, size: int) -> tuple[float, float]:
    r, c = CORNER_CELL[corner]
    f = {0: 0.1, 2: 0.9}
    return f[c] * size, f[r] * size


def _move_xy(e: Event, p: float, size: int) -> tuple[float, float]:
    r = SIZES["medium"] * size
    lo, hi = -r - 2.0, size + r + 2.0  # off-screen at both ends
    lane = CELL_CENTRES[e.lane] * size
    start, end = {"right": (lo, hi), "left": (hi, lo), "down": (lo, hi), "up": (hi, lo)}[e.direction]
    t = start + (end - start) * p
    return (t, lane) if e.direction in ("left", "right") else (lane, t)


def frame_owner(spec: VideoSpec, f: int) -> int:
    """The event that owns frame ``f``: interior frames their event, a boundary frame the later event."""
    for k, (_, e) in enumerate(spec.bounds()):
        if f < e or k == len(spec.events) - 1:
            return k
    raise AssertionError


def render_frame(spec: VideoSpec, f: int, size: int) -> np.ndarray:
    """Render frame ``f`` of ``spec`` as ``uint8 [size, size, 3]``."""
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # (yy, xx) pixel centres
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = BACKGROUNDS[spec.background]
    bounds = spec.bounds()
    # static objects: (cell, size, alpha) at frame f
    state: dict[Obj, list] = {i.obj: [i.cell, SIZES[i.size], 1.0] for i in spec.initial}
    mover = None
    for e, (s, t) in zip(spec.events, bounds):
        if f < s:
            break
        p = min(1.0, (f - s) / (t - s))
        if e.kind == "appear":
            state[e.obj] = [e.cell, SIZES[e.size], p]
        elif e.kind == "disappear":
            state[e.obj][2] = 1.0 - p
        elif e.kind in ("grow", "shrink"):
            a, b = ("medium", "large") if e.kind == "grow" else ("large", "medium")
            state[e.obj][1] = SIZES[a] + (SIZES[b] - SIZES[a]) * p
        elif e.kind == "move" and p < 1.0:
            mover = (e, p)
    for obj, (cell, rel, alpha) in state.items():
        cx, cy = _cell_xy(cell, size)
        _paint(img, obj, cx, cy, rel * size, alpha, grid)
    if mover is not None:
        e, p = mover
        cx, cy = _move_xy(e, p, size)
        _paint(img, e.obj, cx, cy, SIZES["medium"] * size, 1.0, grid)
    d = spec.distractor
    if d is not None and frame_owner(spec, f) in d.events:
        cx, cy = _corner_xy(d.corner, size)
        _paint(img, d.obj, cx, cy, SIZES["small"] * size, 1.0, grid)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(spec: VideoSpec, size: int) -> np.ndarray:
    """All frames of ``spec``: ``uint8 [num_frames, size, size, 3]``."""
    return np.stack([render_frame(spec, f, size) for f in range(spec.num_frames)])


@dataclass(frozen=True)
class StillSpec:
    """A single frame for pretraining the tiny CLIP: objects, no motion."""

    background: str
    objects: tuple[Initial, ...]  # first = main object (the largest or equal largest)
    distractor: tuple[Obj, str] | None = None  # (object, corner)
    extra: dict = field(default_factory=dict, compare=False)


def render_still(spec: StillSpec, size: int) -> np.ndarray:
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = BACKGROUNDS[spec.background]
    for o in spec.objects:
        cx, cy = _cell_xy(o.cell, size)
        _paint(img, o.obj, cx, cy, SIZES[o.size] * size, 1.0, grid)
    if spec.distractor is not None:
        obj, corner = spec.distractor
        cx, cy = _corner_xy(corner, size)
        _paint(img, obj, cx, cy, SIZES["small"] * size, 1.0, grid)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
