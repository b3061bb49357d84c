"""Generate the synthetic text-video retrieval benchmark (deterministic from a config and its seed).

``generate(config)`` writes, under ``data/generated/synthetic-<name>/``:

* ``videos/<video_id>.mp4``  H.264, lossless (qp 0, yuv444p), so identical rendered
  frames decode to identical pixels (needed for the direction-twin guarantee);
* ``MSRVTT_data.json``       the MSR-VTT annotation format (``videos`` with
  ``video_id``/``split``, ``sentences`` with ``video_id``/``caption``) plus
  ``twins`` (pairs of test videos differing in one factor) and each video's
  event ``spec``;
* ``MSRVTT_train.csv``, ``MSRVTT_val.csv`` (a ``video_id`` column) and
  ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``: one query per
  test video), so the real MSR-VTT loader reads the benchmark unchanged;
* ``stills.json``            (single frame spec, static description) pairs for
  pretraining the tiny CLIP, and a held-out set for its zero-shot check.

The whole folder is written into a temporary sibling and renamed at the end:
an interrupted run never leaves a folder that looks complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import UnknownNameError
from ..paths import data_dir, generated_dir
from . import captions as cap
from .world import (
    BACKGROUNDS,
    COLORS,
    CORNERS,
    DIRECTIONS,
    OPPOSITE,
    SHAPES,
    Distractor,
    Event,
    Initial,
    Obj,
    StillSpec,
    VideoSpec,
    _far,
    _near_corner,
    adjacent_swaps,
    check_valid,
    render_still,
    render_video,
)

GENERATOR_VERSION = 3
FACTORS = ("order", "direction", "detail")
SPLIT_CODES = {"train": 1, "val": 2, "test": 3, "stills": 4, "stills_heldout": 5}


@dataclass(frozen=True)
class SyntheticConfig:
    name: str
    seed: int = 0
    frame_size: int = 96
    fps: int = 8
    frames_per_interval: int = 4
    intervals: int = 11
    num_train: int = 1500
    num_val: int = 300
    num_test: int = 1000
    twin_fraction: float = 0.45
    captions_train: int = 8
    captions_eval: int = 5
    distractor_prob: float = 0.5
    query_event_caption_prob: float = 0.3
    num_stills: int = 16000
    num_stills_heldout: int = 1000
    description: str = ""

    def digest(self) -> str:
        d = asdict(self)
        d.pop("description")
        d["generator_version"] = GENERATOR_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def num_frames(self) -> int:
        return self.intervals * self.frames_per_interval + 1


def available_configs() -> list[str]:
    return sorted(p.stem for p in (data_dir() / "synthetic").glob("*.json"))


def load_config(name_or_path: str | Path, **overrides) -> SyntheticConfig:
    """Read ``data/synthetic/<name>.json`` (or a path); keyword overrides replace fields."""
    p = Path(name_or_path)
    if not p.suffix:
        p = data_dir() / "synthetic" / f"{name_or_path}.json"
    if not p.exists():
        raise UnknownNameError(
            f"no synthetic-benchmark config {str(name_or_path)!r} (looked for {p}); "
            f"known configs: {available_configs()}"
        )
    raw = json.loads(p.read_text())
    known = {f.name for f in fields(SyntheticConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{p}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    raw.update(overrides)
    return SyntheticConfig(**raw)


def benchmark_dir(cfg: SyntheticConfig) -> Path:
    return generated_dir() / f"synthetic-{cfg.name}-seed{cfg.seed}"


# ----------------------------------------------------------------------------- sampling specs


def _split_intervals(total: int, n: int, rng) -> list[int]:
    base = [total // n] * n
    for i in rng.permutation(n)[: total - sum(base)]:
        base[i] += 1
    return base


def _new_obj(rng, used_colors: set[str]) -> Obj | None:
    free = [c for c in COLORS if c not in used_colors]
    if not free:
        return None
    return Obj(str(rng.choice(free)), str(rng.choice(SHAPES)))


def _free_cells(static_cells, distractor_corner) -> list[tuple[int, int]]:
    cells = [(r, c) for r in range(3) for c in range(3)]
    return [
        c
        for c in cells
        if all(_far(c, s) for s in static_cells) and not (distractor_corner and _near_corner(c, distractor_corner))
    ]


def sample_spec(rng: np.random.Generator, cfg: SyntheticConfig, max_tries: int = 1000) -> VideoSpec:
    """Draw a random, physically consistent video spec."""
    for _ in range(max_tries):
        spec = _try_sample(rng, cfg)
        if spec is not None and check_valid(spec) is None:
            return spec
    raise RuntimeError("could not sample a valid video spec; the config is too constrained")


def _try_sample(rng, cfg: SyntheticConfig) -> VideoSpec | None:
    n = int(rng.choice([2, 3, 4], p=[0.4, 0.4, 0.2]))
    durations = _split_intervals(cfg.intervals, n, rng)
    corner = str(rng.choice(CORNERS)) if rng.random() < cfg.distractor_prob else None
    used_colors: set[str] = set()
    static: dict[Obj, tuple[tuple[int, int], str]] = {}
    initial = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15]))):
        cells = _free_cells([c for c, _ in static.values()], corner)
        obj = _new_obj(rng, used_colors)
        if not cells or obj is None:
            break
        cell, size = cells[int(rng.integers(len(cells)))], str(rng.choice(["medium", "large"]))
        initial.append(Initial(obj, cell, size))
        static[obj] = (cell, size)
        used_colors.add(obj.color)
    events = []
    for k in range(n):
        options = {"move": 1.2}
        if len(static) < 2 and _free_cells([c for c, _ in static.values()], corner):
            options["appear"] = 1.0
        if static:
            options["disappear"] = 0.6
        if any(s == "medium" for _, s in static.values()):
            options["grow"] = 0.8
        if any(s == "large" for _, s in static.values()):
            options["shrink"] = 0.8
        kinds = list(options)
        w = np.array([options[x] for x in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        if kind in ("appear", "move"):
            obj = _new_obj(rng, used_colors)
            if obj is None:
                return None
            used_colors.add(obj.color)
            if kind == "move":
                events.append(
                    Event(
                        "move",
                        obj,
                        direction=str(rng.choice(DIRECTIONS)),
                        lane=int(rng.integers(3)),
                        intervals=durations[k],
                    )
                )
            else:
                cells = _free_cells([c for c, _ in static.values()], corner)
                cell, size = cells[int(rng.integers(len(cells)))], str(rng.choice(["medium", "large"]))
                events.append(Event("appear", obj, cell=cell, size=size, intervals=durations[k]))
                static[obj] = (cell, size)
        else:
            want = {"disappear": None, "grow": "medium", "shrink": "large"}[kind]
            cands = [o for o, (_, s) in static.items() if want is None or s == want]
            obj = cands[int(rng.integers(len(cands)))]
            cell, size = static[obj]
            events.append(Event(kind, obj, cell=cell, size=size, intervals=durations[k]))
            if kind == "disappear":
                del static[obj]
            else:
                static[obj] = (cell, "large" if kind == "grow" else "medium")
    # every initial object must take part in some event (no unexplained scenery)
    if any(all(e.obj != i.obj for e in events) for i in initial):
        return None
    distractor = None
    if corner is not None:
        obj = _new_obj(rng, used_colors)
        if obj is None:
            return None
        if rng.random() < 0.5:
            run = tuple(range(n))
        else:
            a = int(rng.integers(n))
            b = int(rng.integers(a, n))
            run = tuple(range(a, b + 1))
        distractor = Distractor(obj, corner, run)
    spec = VideoSpec(
        str(rng.choice(list(BACKGROUNDS))), tuple(initial), tuple(events), distractor, cfg.frames_per_interval
    )
    if distractor is not None and check_valid(spec) is not None:  # visibility at a move edge: show it throughout
        spec = spec.with_events(events, Distractor(distractor.obj, corner, tuple(range(n))))
    return spec


# ----------------------------------------------------------------------------- twins


def make_twin(spec: VideoSpec, factor: str, rng: np.random.Generator) -> tuple[VideoSpec, dict] | None:
    """A spec that differs from ``spec`` in exactly one factor, or ``None`` if ``spec`` has no such twin."""
    if factor == "direction":
        moves = [k for k, e in enumerate(spec.events) if e.kind == "move"]
        if not moves:
            return None
        k = moves[int(rng.integers(len(moves)))]
        ev = list(spec.events)
        e = ev[k]
        ev[k] = Event("move", e.obj, direction=OPPOSITE[e.direction], lane=e.lane, intervals=e.intervals)
        twin = spec.with_events(ev)
        info = {"event_index": k}
    elif factor == "order":
        if spec.distractor is not None and len(spec.distractor.events) != len(spec.events):
            return None
        cands = [(k, ev) for k, ev in adjacent_swaps(spec) if check_valid(spec.with_events(ev)) is None]
        if not cands:
            return None
        k, ev = cands[int(rng.integers(len(cands)))]
        twin = spec.with_events(ev)
        info = {"event_index": k}
    elif factor == "detail":
        d = spec.distractor
        if d is None:
            return None
        used = {e.obj.color for e in spec.events} | {i.obj.color for i in spec.initial} | {d.obj.color}
        free = [c for c in COLORS if c not in used]
        if not free:
            return None
        twin = spec.with_events(spec.events, Distractor(Obj(str(rng.choice(free)), d.obj.shape), d.corner, d.events))
        info = {"attribute": "color"}
    else:
        raise UnknownNameError(f"unknown twin factor {factor!r}; known: {FACTORS}")
    if check_valid(twin) is not None or twin == spec:
        return None
    return twin, info


# ----------------------------------------------------------------------------- captions per video


def _captions(spec: VideoSpec, n: int, rng, query_kind: str | None = None, factor: str | None = None) -> list[dict]:
    """``n`` captions; the first is the query when ``query_kind`` is given."""
    out = []
    if query_kind == "video":
        out.append(
            {
                "caption": cap.video_caption(spec, rng, mention_distractor=True if factor == "detail" else None),
                "kind": "video",
                "event_index": -1,
            }
        )
    elif query_kind == "event":
        k = int(rng.integers(len(spec.events)))
        out.append({"caption": cap.event_caption(spec, k, rng), "kind": "event", "event_index": k})
    k = int(rng.integers(len(spec.events)))
    while len(out) < n:
        if len(out) % 2 == 0:
            out.append({"caption": cap.video_caption(spec, rng), "kind": "video", "event_index": -1})
        else:
            out.append({"caption": cap.event_caption(spec, k, rng), "kind": "event", "event_index": k})
            k = (k + 1) % len(spec.events)
    return out


def _plan(cfg: SyntheticConfig) -> tuple[list[dict], list[dict]]:
    """Every video's (id, split, spec, captions) and the twin pairs, without rendering."""
    videos, twins = [], []

    def add(split, spec, caps):
        vid = f"video{len(videos)}"
        videos.append({"video_id": vid, "split": split, "spec": spec, "captions": caps})
        return vid

    for split, num in (("train", cfg.num_train), ("val", cfg.num_val)):
        for i in range(num):
            rng = np.random.default_rng([cfg.seed, SPLIT_CODES[split], i])
            spec = sample_spec(rng, cfg)
            add(split, spec, _captions(spec, cfg.captions_train if split == "train" else cfg.captions_eval, rng))
    n_pairs = int(round(cfg.num_test * cfg.twin_fraction / 2))
    i = 0
    while len([v for v in videos if v["split"] == "test"]) < cfg.num_test:
        rng = np.random.default_rng([cfg.seed, SPLIT_CODES["test"], i])
        i += 1
        n_test = len([v for v in videos if v["split"] == "test"])
        pair_no = len(twins)
        if pair_no < n_pairs and n_test + 2 <= cfg.num_test:
            factor = FACTORS[pair_no % len(FACTORS)]
            spec = sample_spec(rng, cfg)
            made = make_twin(spec, factor, rng)
            if made is None:
                continue  # draw another base video for this factor
            twin, info = made
            a = add("test", spec, _captions(spec, cfg.captions_eval, rng, "video", factor))
            b = add("test", twin, _captions(twin, cfg.captions_eval, rng, "video", factor))
            twins.append({"video_id": a, "twin_id": b, "factor": factor, **info})
        else:
            spec = sample_spec(rng, cfg)
            kind = "event" if rng.random() < cfg.query_event_caption_prob else "video"
            add("test", spec, _captions(spec, cfg.captions_eval, rng, kind))
    return videos, twins


STILL_GROUP = 4  # training stills come in groups that differ only in the main object's shape or colour


def _stills(cfg: SyntheticConfig, split: str, num: int) -> list[dict]:
    """Still frames with static descriptions.

    Training stills come in groups of ``STILL_GROUP`` that are identical except for the main object's shape (or,
    for half of the groups, its colour). Batches are built from whole groups, so a contrastive batch always holds
    frames that only the shape (or colour) word tells apart; without them, colour, position and background
    already identify a frame in a random batch and the model never needs to look at shapes.
    Held-out stills are independent single-object frames.
    """
    out = []
    cells = [(r, c) for r in range(3) for c in range(3)]
    grouped = split != "stills_heldout"
    for g in range(num // STILL_GROUP if grouped else num):
        rng = np.random.default_rng([cfg.seed, SPLIT_CODES[split], g])
        corner = str(rng.choice(CORNERS)) if rng.random() < 0.4 else None
        n_obj = 1 if not grouped else int(rng.choice([1, 2], p=[0.6, 0.4]))
        colors = [str(c) for c in rng.permutation(list(COLORS))]
        placed: list[tuple[tuple[int, int], str, str]] = []  # (cell, size, shape)
        for j in range(n_obj):
            free = [c for c in cells if all(_far(c, o[0]) for o in placed) and not (corner and _near_corner(c, corner))]
            if not free:
                break
            size = ("large" if n_obj > 1 else str(rng.choice(["medium", "large"]))) if j == 0 else "medium"
            placed.append((free[int(rng.integers(len(free)))], size, str(rng.choice(SHAPES))))
        n_used = len(placed)
        distractor = (Obj(colors[n_used + STILL_GROUP], str(rng.choice(SHAPES))), corner) if corner else None
        background = str(rng.choice(list(BACKGROUNDS)))
        vary = "shape" if rng.random() < 0.5 else "color"
        variants = range(STILL_GROUP) if grouped else [0]
        for v in variants:
            main_color = colors[0] if vary == "shape" or not grouped else [colors[0], *colors[n_used : n_used + 3]][v]
            main_shape = SHAPES[(SHAPES.index(placed[0][2]) + v) % len(SHAPES)] if vary == "shape" else placed[0][2]
            objs = [Initial(Obj(main_color, main_shape), placed[0][0], placed[0][1])]
            objs += [Initial(Obj(colors[j], shape), cell, size) for j, (cell, size, shape) in enumerate(placed[1:], 1)]
            spec = StillSpec(background, tuple(objs), distractor)
            out.append(
                {
                    "spec": _still_to_json(spec),
                    "text": cap.still_description(spec, rng),
                    "label": objs[0].obj.name,
                    "group": g,
                }
            )
    return out


def _still_to_json(s: StillSpec) -> dict:
    return {
        "background": s.background,
        "objects": [
            {"color": o.obj.color, "shape": o.obj.shape, "cell": list(o.cell), "size": o.size} for o in s.objects
        ],
        "distractor": None
        if s.distractor is None
        else {"color": s.distractor[0].color, "shape": s.distractor[0].shape, "corner": s.distractor[1]},
    }


def still_from_json(d: dict) -> StillSpec:
    dis = d["distractor"]
    return StillSpec(
        d["background"],
        tuple(Initial(Obj(o["color"], o["shape"]), tuple(o["cell"]), o["size"]) for o in d["objects"]),
        None if dis is None else (Obj(dis["color"], dis["shape"]), dis["corner"]),
    )


# ----------------------------------------------------------------------------- writing


def write_video(frames: np.ndarray, path: Path, fps: int) -> None:
    """Write ``uint8 [F, H, W, 3]`` frames as lossless H.264 (qp 0, yuv444p) mp4."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _render_and_write(args) -> None:
    spec_json, path, size, fps = args
    write_video(render_video(VideoSpec.from_json(spec_json), size), Path(path), fps)


def is_generated(cfg: SyntheticConfig) -> bool:
    marker = benchmark_dir(cfg) / "DONE"
    return marker.exists() and marker.read_text().strip() == cfg.digest()


def generate(
    cfg: SyntheticConfig | str, *, workers: int | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Generate the benchmark for ``cfg`` (a config or its name); reuse it if already complete."""
    if isinstance(cfg, str):
        cfg = load_config(cfg)
    out = benchmark_dir(cfg)
    if is_generated(cfg) and not force:
        return out
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "videos").mkdir(parents=True)
    try:
        _write_all(cfg, tmp, workers, progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _write_all(cfg: SyntheticConfig, tmp: Path, workers: int | None, progress: bool) -> None:
    videos, twins = _plan(cfg)
    jobs = [
        (v["spec"].to_json(), str(tmp / "videos" / f"{v['video_id']}.mp4"), cfg.frame_size, cfg.fps) for v in videos
    ]
    workers = workers or min(4, os.cpu_count() or 1)
    from tqdm.auto import tqdm

    if workers > 1:
        import multiprocessing as mp
        from multiprocessing import get_context

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with get_context(method).Pool(workers) as pool:
            for _ in tqdm(
                pool.imap_unordered(_render_and_write, jobs, chunksize=16),
                total=len(jobs),
                desc=f"rendering synthetic-{cfg.name}",
                disable=not progress,
            ):
                pass
    else:
        for j in tqdm(jobs, desc=f"rendering synthetic-{cfg.name}", disable=not progress):
            _render_and_write(j)
    split_name = {"train": "train", "val": "validate", "test": "test"}
    ann = {
        "info": {
            "dataset": "synthetic",
            "config": asdict(cfg),
            "config_digest": cfg.digest(),
            "generator_version": GENERATOR_VERSION,
            "num_frames": cfg.num_frames,
            "fps": cfg.fps,
        },
        "videos": [
            {
                "video_id": v["video_id"],
                "split": split_name[v["split"]],
                "id": int(v["video_id"][5:]),
                "spec": v["spec"].to_json(),
            }
            for v in videos
        ],
        "sentences": [
            {
                "video_id": v["video_id"],
                "caption": c["caption"],
                "sen_id": sid,
                "kind": c["kind"],
                "event_index": c["event_index"],
            }
            for sid, (v, c) in enumerate((v, c) for v in videos for c in v["captions"])
        ],
        "twins": twins,
    }
    (tmp / "MSRVTT_data.json").write_text(json.dumps(ann))
    for split, fname in (("train", "MSRVTT_train.csv"), ("val", "MSRVTT_val.csv")):
        with open(tmp / fname, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["video_id"])
            w.writerows([v["video_id"]] for v in videos if v["split"] == split)
    with open(tmp / "MSRVTT_JSFUSION_test.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        for i, v in enumerate(v for v in videos if v["split"] == "test"):
            w.writerow([f"ret{i}", f"syn{v['video_id'][5:]}", v["video_id"], v["captions"][0]["caption"]])
    stills = {
        "train": _stills(cfg, "stills", cfg.num_stills),
        "heldout": _stills(cfg, "stills_heldout", cfg.num_stills_heldout),
    }
    (tmp / "stills.json").write_text(json.dumps(stills))
    (tmp / "DONE").write_text(cfg.digest())


def load_stills(cfg: SyntheticConfig | str, split: str = "train") -> tuple[list[StillSpec], list[str], list[str]]:
    """``(specs, descriptions, main-object labels)`` of the pretraining stills (``train``/``heldout``)."""
    if isinstance(cfg, str):
        cfg = load_config(cfg)
    path = generate(cfg, progress=False) / "stills.json"
    items = json.loads(path.read_text())[split]
    return [still_from_json(i["spec"]) for i in items], [i["text"] for i in items], [i["label"] for i in items]


def render_stills(specs: list[StillSpec], size: int) -> np.ndarray:
    """``uint8 [N, size, size, 3]`` renders of still specs."""
    return np.stack([render_still(s, size) for s in specs])
