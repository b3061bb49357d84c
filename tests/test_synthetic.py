"""The synthetic benchmark: deterministic, consistent, in the MSR-VTT format, with twins that differ in one factor."""

import json

import numpy as np
import pytest

from tvrlib.datasets import load_dataset
from tvrlib.errors import UnknownNameError
from tvrlib.synthetic import benchmark as B
from tvrlib.synthetic.world import VideoSpec, check_valid, render_video
from tvrlib.video import sample_frames, sample_indices


def test_configs_and_unknown_config():
    assert {"quick", "full", "tiny"} <= set(B.available_configs())
    with pytest.raises(UnknownNameError, match="known configs"):
        B.load_config("huge")


def test_plan_is_deterministic_and_valid():
    cfg = B.load_config("tiny")
    v1, t1 = B._plan(cfg)
    v2, t2 = B._plan(cfg)
    assert [v["spec"] for v in v1] == [v["spec"] for v in v2] and t1 == t2
    assert all(check_valid(v["spec"]) is None for v in v1)
    assert all(2 <= len(v["spec"].events) <= 4 for v in v1)
    assert all(v["spec"].num_frames == cfg.num_frames for v in v1)
    assert len([v for v in v1 if v["split"] == "test"]) == cfg.num_test
    other = B._plan(B.load_config("tiny", seed=1))[0]
    assert [v["spec"] for v in other] != [v["spec"] for v in v1]


def test_files_in_msrvtt_format(tiny_benchmark):
    ann = json.loads((tiny_benchmark / "MSRVTT_data.json").read_text())
    assert {"videos", "sentences", "twins", "info"} <= set(ann)
    assert all({"video_id", "split"} <= set(v) for v in ann["videos"])
    assert all({"video_id", "caption"} <= set(s) and s["caption"].strip() for s in ann["sentences"])
    header = (tiny_benchmark / "MSRVTT_JSFUSION_test.csv").read_text().splitlines()[0]
    assert header == "key,vid_key,video_id,sentence"
    assert (tiny_benchmark / "MSRVTT_train.csv").read_text().splitlines()[0] == "video_id"


def test_msrvtt_loader_reads_it(tiny_benchmark):
    test = load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny")
    train = load_dataset("synthetic", "train", root=tiny_benchmark, config="tiny")
    cfg = B.load_config("tiny")
    assert test.num_videos == cfg.num_test and len(test.query_index) == cfg.num_test
    assert len(test.texts) == cfg.num_test * cfg.captions_eval  # all captions kept for v2t
    assert not set(test.video_ids) & set(train.video_ids)
    assert all(v.path.exists() for v in test.videos)


def test_twins_differ_in_one_factor(tiny_benchmark):
    ann = json.loads((tiny_benchmark / "MSRVTT_data.json").read_text())
    specs = {v["video_id"]: VideoSpec.from_json(v["spec"]) for v in ann["videos"]}
    assert {t["factor"] for t in ann["twins"]} == set(B.FACTORS)
    for t in ann["twins"]:
        a, b = specs[t["video_id"]], specs[t["twin_id"]]
        assert a != b and a.background == b.background and a.initial == b.initial
        if t["factor"] == "direction":
            k = t["event_index"]
            assert [e.kind for e in a.events] == [e.kind for e in b.events]
            assert a.events[k].direction != b.events[k].direction
            assert all(x == y for i, (x, y) in enumerate(zip(a.events, b.events)) if i != k)
        elif t["factor"] == "order":
            k = t["event_index"]
            assert a.events[k] == b.events[k + 1] and a.events[k + 1] == b.events[k]
        else:
            assert a.events == b.events and a.distractor.obj.color != b.distractor.obj.color
            assert a.distractor.obj.shape == b.distractor.obj.shape


def test_direction_twin_has_same_frames_reversed(tiny_benchmark):
    """Under the default sampler a direction twin is the same multiset of decoded frames (order-blind = chance)."""
    ann = json.loads((tiny_benchmark / "MSRVTT_data.json").read_text())
    pairs = [t for t in ann["twins"] if t["factor"] == "direction"]
    assert pairs
    for t in pairs:
        a, _ = sample_frames(tiny_benchmark / "videos" / f"{t['video_id']}.mp4", 12, 64)
        b, _ = sample_frames(tiny_benchmark / "videos" / f"{t['twin_id']}.mp4", 12, 64)
        assert sorted(map(bytes, a)) == sorted(map(bytes, b))
        # and the frames of the reversed event come in reverse order
        spec = VideoSpec.from_json(next(v["spec"] for v in ann["videos"] if v["video_id"] == t["video_id"]))
        s, e = spec.bounds()[t["event_index"]]
        idx = sample_indices(spec.num_frames, 12).tolist()
        inside = [i for i, f in enumerate(idx) if s <= f <= e]
        assert np.array_equal(a[inside], b[inside][::-1])


def test_captions_mention_the_twin_factor(tiny_benchmark):
    test = load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny")
    ann = json.loads((tiny_benchmark / "MSRVTT_data.json").read_text())
    q = dict(
        zip(
            [test.video_ids[g] for g in test.text_to_video[test.query_index]], [test.texts[i] for i in test.query_index]
        )
    )
    for t in ann["twins"]:
        qa, qb = q[t["video_id"]], q[t["twin_id"]]
        assert qa != qb
        if t["factor"] == "detail":
            assert "small" in qa and "small" in qb


def test_rendering_is_deterministic():
    spec = B.sample_spec(np.random.default_rng(3), B.load_config("tiny"))
    assert np.array_equal(render_video(spec, 48), render_video(spec, 48))


def test_stills_have_no_motion_words_and_come_in_groups():
    cfg = B.load_config("tiny")
    items = B._stills(cfg, "stills", 16)
    words = {"moves", "then", "before", "after", "appears", "grows", "shrinks"}
    assert not any(w in words for i in items for w in i["text"].split())
    groups = [items[i : i + B.STILL_GROUP] for i in range(0, len(items), B.STILL_GROUP)]
    for g in groups:
        assert len({i["group"] for i in g}) == 1 and len({i["label"] for i in g}) == B.STILL_GROUP


def test_generation_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("TVR_GENERATED_DIR", str(tmp_path))
    cfg = B.load_config("tiny")

    def boom(*a, **k):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(B, "_stills", boom)
    with pytest.raises(RuntimeError):
        B.generate(cfg, workers=1, progress=False)
    assert not B.is_generated(cfg) and not list(tmp_path.iterdir())
