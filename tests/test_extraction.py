"""Feature extraction at real scale (:func:`tvrlib.features.extract_videos`, ``python -m tvrlib extract``).

Chunked, resumable, DataLoader-decoded extraction must give the one-go path's cache entry to the bit; an
interrupted run (an exception, a killed process, a torn chunk file) leaves only complete chunks, and a re-run
encodes only the videos of the missing chunks; a chunk is never reused for other settings or other files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tvrlib.cache import FeatureCache, cache_key
from tvrlib.datasets import load_dataset
from tvrlib.encoders import FrameFeatures
from tvrlib.errors import VideoReadError
from tvrlib.features import encode_videos, extract_videos, video_parts
from tvrlib.video import sample_frames

pytestmark = pytest.mark.usefixtures("one_thread")


class FakeEncoder:
    """A deterministic stand-in for :class:`~tvrlib.encoders.ClipEncoder` (no open_clip): per-channel statistics."""

    image_size, embed_dim = 32, 8
    cache_parts = {"encoder": "fake-stats", "weights": "none", "image_size": 32}

    def encode_frames(self, frames, with_patches=True, batch_size=256):
        x = torch.from_numpy(np.ascontiguousarray(frames)).float()  # [N, S, S, 3]
        cls = torch.cat([x.mean((1, 2)), x.std((1, 2)), x.amax((1, 2))[:, :2]], dim=1)
        patches = x.unfold(1, 16, 16).unfold(2, 16, 16).mean((-1, -2)).flatten(1, 2).repeat(1, 1, 3)[..., :8]
        return FrameFeatures(cls, patches if with_patches else None)


class Interrupted(Exception):
    pass


class Counting:
    """Wraps an encoder: counts ``encode_frames`` calls and frames, raises :class:`Interrupted` after ``fail_after``."""

    def __init__(self, enc, fail_after: int | None = None) -> None:
        self.enc, self.fail_after, self.calls, self.frames = enc, fail_after, 0, 0

    def __getattr__(self, name):
        return getattr(self.enc, name)

    def encode_frames(self, frames, **kw):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise Interrupted(f"stopped after {self.calls} batches")
        self.calls += 1
        self.frames += len(frames)
        return self.enc.encode_frames(frames, **kw)


@pytest.fixture()
def data12(tiny_benchmark):
    return load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny").subset(12)


@pytest.fixture()
def copy12(tiny_benchmark, tmp_path):
    """The first 12 test videos of a private copy of the tiny benchmark (its files may be damaged)."""
    root = tmp_path / "copy"
    shutil.copytree(tiny_benchmark, root)
    return load_dataset("synthetic", "test", root=root, config="tiny").subset(12)


def reference(enc, data, num_frames=12, mode="uniform", with_patches=False, seed=0, batch_videos=2):
    """The one-go loop that encode_videos ran before chunks (sequential decoding, batches of ``batch_videos``)."""
    rng = np.random.default_rng(seed)
    V = data.num_videos
    frames, mask = torch.zeros(V, num_frames, enc.embed_dim), torch.zeros(V, num_frames, dtype=torch.bool)
    failed, patches = torch.zeros(V, dtype=torch.bool), None
    for start in range(0, V, batch_videos):
        batch, rows = [], []
        for j in range(start, min(V, start + batch_videos)):
            try:
                fr, m = sample_frames(data.videos[j].path, num_frames, enc.image_size, mode, rng=rng)
            except VideoReadError:
                failed[j] = True
                continue
            batch.append(fr)
            rows.append((j, torch.from_numpy(m)))
        if not batch:
            continue
        f = enc.encode_frames(np.concatenate(batch), with_patches=with_patches)
        cls = f.cls.view(len(batch), num_frames, -1)
        for b, (j, m) in enumerate(rows):
            frames[j], mask[j] = cls[b] * m[:, None], m
        if with_patches:
            p = f.patches.view(len(batch), num_frames, f.patches.shape[1], -1).half()
            if patches is None:
                patches = torch.zeros(V, num_frames, p.shape[2], p.shape[3], dtype=torch.float16)
            for b, (j, m) in enumerate(rows):
                patches[j] = p[b] * m[:, None, None]
    out = {"frames": frames, "mask": mask, "failed": failed}
    if patches is not None:
        out["patches"] = patches
    return out


def assert_identical(tensors: dict, ref: dict) -> None:
    assert set(tensors) == set(ref)
    for name in ref:
        assert tensors[name].dtype == ref[name].dtype and torch.equal(tensors[name], ref[name]), name


def partial_entries(cache: FeatureCache) -> list:
    """The committed chunk entries of every partial area of ``cache``."""
    areas = cache.root / "partial"
    if not areas.is_dir():
        return []
    return [k for d in areas.iterdir() for k in FeatureCache(d).entries().query("committed")["key"]]


KW = dict(batch_videos=2, chunk_videos=4, progress=False)  # 12 videos: 3 chunks of 2 batches


# ----------------------------------------------------------------------------------------------- same result
@pytest.mark.parametrize("with_patches", [False, True])
def test_chunked_extraction_is_the_one_go_entry_to_the_bit(enc, data12, tmp_path, with_patches):
    cache = FeatureCache(tmp_path / "c")
    f, stats = extract_videos(enc, data12, 12, cache=cache, with_patches=with_patches, **KW)
    key = cache_key(**video_parts(enc, data12, 12, with_patches=with_patches))
    assert stats.key == key and stats.chunks == 3 and stats.videos_encoded == 12 and stats.frames == 12 * 12
    assert list(cache.entries()["key"]) == [key]  # one entry, the same key as before; chunks removed
    assert not (cache.root / "partial").exists()
    ref = reference(enc, data12, with_patches=with_patches)
    assert_identical(cache.load(key), ref)
    assert torch.equal(f.frames, ref["frames"]) and f.video_ids == data12.video_ids
    # one go (a single chunk) writes the same tensors under the same key
    one = FeatureCache(tmp_path / "one")
    encode_videos(enc, data12, 12, cache=one, with_patches=with_patches, batch_videos=2, progress=False)
    assert_identical(one.load(key), ref)
    again, stats = extract_videos(enc, data12, 12, cache=cache, with_patches=with_patches, **KW)
    assert stats.cache_hit and stats.frames == 0 and torch.equal(again.frames, f.frames)


def test_two_decode_workers_give_the_same_entry(enc, data12, tmp_path):
    a, b = FeatureCache(tmp_path / "a"), FeatureCache(tmp_path / "b")
    extract_videos(enc, data12, 12, cache=a, num_workers=0, **KW)
    extract_videos(enc, data12, 12, cache=b, num_workers=2, **KW)
    key = cache_key(**video_parts(enc, data12, 12))
    assert_identical(b.load(key), a.load(key))
    assert_identical(a.load(key), reference(enc, data12))


# ----------------------------------------------------------------------------------------------- interruption
def test_interrupted_extraction_resumes_with_only_the_missing_videos(enc, data12, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    key = cache_key(**video_parts(enc, data12, 12, with_patches=True))
    first = Counting(enc, fail_after=3)  # chunk 0 (batches 1-2) done, stopped inside chunk 1
    with pytest.raises(Interrupted):
        extract_videos(first, data12, 12, cache=cache, with_patches=True, **KW)
    assert not cache.has(key) and len(partial_entries(cache)) == 1  # only the complete chunk
    again = Counting(enc)
    _, stats = extract_videos(again, data12, 12, cache=cache, with_patches=True, **KW)
    assert again.calls == 4 and again.frames == 8 * 12  # chunks 1 and 2 only
    assert (stats.chunks_reused, stats.videos_reused, stats.videos_encoded) == (1, 4, 8)
    assert_identical(cache.load(key), reference(enc, data12, with_patches=True))
    assert not (cache.root / "partial").exists()


def test_random_sampler_resumes_with_the_same_random_draws(enc, data12, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    mode, kw = "random_in_segment", dict(KW, seed=3)
    with pytest.raises(Interrupted):
        extract_videos(Counting(enc, fail_after=5), data12, 12, mode, cache=cache, **kw)
    assert len(partial_entries(cache)) == 2
    again = Counting(enc)
    with pytest.warns(UserWarning, match="draws its frames in video order"):
        extract_videos(again, data12, 12, mode, cache=cache, num_workers=2, **kw)
    assert again.calls == 2  # the last chunk only, with the generator state saved after chunk 1
    key = cache_key(**video_parts(enc, data12, 12, mode, seed=3))
    assert_identical(cache.load(key), reference(enc, data12, mode=mode, seed=3))


def test_a_killed_extraction_continues_where_it_stopped(tiny_benchmark, data12, tmp_path):
    """SIGKILL while chunk 1 is being encoded: chunk 0 is on disk, nothing else reads as valid."""
    cache, mark = FeatureCache(tmp_path / "c"), tmp_path / "in-chunk-1"
    script = textwrap.dedent(
        f"""
        import sys, time, pathlib
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_extraction import FakeEncoder
        from tvrlib.cache import FeatureCache
        from tvrlib.datasets import load_dataset
        from tvrlib.features import extract_videos

        class Hang(FakeEncoder):
            calls = 0
            def encode_frames(self, frames, **kw):
                Hang.calls += 1
                if Hang.calls == 3:  # the first batch of chunk 1
                    pathlib.Path({str(mark)!r}).write_text("x")
                    time.sleep(300)
                return super().encode_frames(frames, **kw)

        data = load_dataset("synthetic", "test", root={str(tiny_benchmark)!r}, config="tiny").subset(12)
        extract_videos(Hang(), data, 12, cache=FeatureCache({str(cache.root)!r}), batch_videos=2,
                       chunk_videos=4, progress=False)
        """
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the extraction never reached chunk 1"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    enc = FakeEncoder()
    key = cache_key(**video_parts(enc, data12, 12))
    assert not cache.has(key) and len(partial_entries(cache)) == 1
    again = Counting(enc)
    extract_videos(again, data12, 12, cache=cache, **KW)
    assert again.calls == 4
    assert_identical(cache.load(key), reference(enc, data12))


def _chunk_files(cache: FeatureCache) -> list[Path]:
    return sorted((cache.root / "partial").rglob("*.pt"))


def test_a_torn_chunk_is_never_read(data12, tmp_path, monkeypatch):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    key = cache_key(**video_parts(enc, data12, 12))
    with pytest.raises(Interrupted):
        extract_videos(Counting(enc, fail_after=3), data12, 12, cache=cache, **KW)
    (chunk0,) = _chunk_files(cache)
    # a kill during the next chunk's write leaves a temp file and, at worst, a tensor file without a manifest
    (chunk0.parent / f".{'0' * 20}.pt.abc.tmp").write_bytes(b"half a chunk")
    (chunk0.parent / f"{'1' * 20}.pt").write_bytes(chunk0.read_bytes()[:100])
    # ... and chunk 0 itself is truncated on disk afterwards: its checksum no longer matches
    chunk0.write_bytes(chunk0.read_bytes()[:-40])
    again = Counting(enc)
    with pytest.warns(RuntimeWarning, match="re-encoding chunk 0"):
        extract_videos(again, data12, 12, cache=cache, **KW)
    assert again.calls == 6  # nothing reused
    assert_identical(cache.load(key), reference(enc, data12))
    assert not (cache.root / "partial").exists()  # leftovers removed with the area


def test_an_exception_inside_a_chunk_write_leaves_no_readable_chunk(data12, tmp_path, monkeypatch):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    real_save, saves = torch.save, []

    def half_save(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:  # chunk 1: half the bytes, then the process "dies"
            f.write(b"\x80\x02half")
            raise Interrupted("killed while writing chunk 1")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(Interrupted):
        extract_videos(enc, data12, 12, cache=cache, **KW)
    monkeypatch.setattr(torch, "save", real_save)
    assert len(partial_entries(cache)) == 1 and len(_chunk_files(cache)) == 1
    again = Counting(enc)
    extract_videos(again, data12, 12, cache=cache, **KW)
    assert again.calls == 4
    assert_identical(cache.load(cache_key(**video_parts(enc, data12, 12))), reference(enc, data12))


def test_a_chunk_is_never_reused_for_other_settings_or_other_files(copy12, tmp_path):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    with pytest.raises(Interrupted):
        extract_videos(Counting(enc, fail_after=5), copy12, 12, cache=cache, **KW)
    # another frame count or sampler: another partial area, nothing reused
    for kw in (dict(num_frames=6), dict(mode="segment_middle")):
        other = Counting(enc)
        extract_videos(other, copy12, cache=cache, **kw, **KW)
        assert other.calls == 6
    # chunks 0 and 1 swapped on disk: each manifest records the other's key, so both are rejected
    a, b = _chunk_files(cache)
    for suffix in (".pt", ".json"):
        tmp = a.with_suffix(".swap")
        a.with_suffix(suffix).rename(tmp)
        b.with_suffix(suffix).rename(a.with_suffix(suffix))
        tmp.rename(b.with_suffix(suffix))
    swapped = Counting(enc)
    with pytest.warns(RuntimeWarning, match="re-encoding chunk"):
        extract_videos(swapped, copy12, 12, cache=cache, **KW)
    assert swapped.calls == 6
    # a video of chunk 0 is replaced on disk (another size): chunk 0 no longer matches
    cache.clear()
    with pytest.raises(Interrupted):
        extract_videos(Counting(enc, fail_after=3), copy12, 12, cache=cache, **KW)
    src, dst = copy12.videos[11].path, copy12.videos[1].path
    assert src.stat().st_size != dst.stat().st_size
    shutil.copy(src, dst)
    fresh = Counting(enc)
    extract_videos(fresh, copy12, 12, cache=cache, **KW)
    assert fresh.calls == 6
    assert_identical(cache.load(cache_key(**video_parts(enc, copy12, 12))), reference(enc, copy12))


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_bad_video_names_the_file_after_saving_the_chunks_before_it(copy12, tmp_path, damage):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    bad = copy12.videos[9]  # chunk 2
    good = bad.path.read_bytes()
    if damage == "corrupt":
        bad.path.write_bytes(good[: len(good) // 3])
    else:
        bad.path.unlink()
    with pytest.raises(VideoReadError) as err:
        extract_videos(enc, copy12, 12, cache=cache, **KW)
    msg = str(err.value)
    assert bad.video_id in msg and str(bad.path) in msg and "synthetic/test" in msg and "run again" in msg
    assert len(partial_entries(cache)) == 2
    bad.path.write_bytes(good)  # fixed: the chunks before it are reused
    again = Counting(enc)
    extract_videos(again, copy12, 12, cache=cache, **KW)
    assert again.calls == 2
    assert_identical(cache.load(cache_key(**video_parts(enc, copy12, 12))), reference(enc, copy12))


def test_skipped_videos_match_the_one_go_path(copy12, tmp_path):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    for j in (2, 3, 5):  # chunk 0 loses both videos of its second batch; chunk 1 one video
        copy12.videos[j].path.write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = encode_videos(enc, copy12, 12, cache=cache, on_error="skip", with_patches=True, **KW)
    said = [str(w.message) for w in caught]
    assert sum("skipping video" in m for m in said) == 3 and any("3 video(s)" in m for m in said)
    assert set(f.failed) == {copy12.videos[j].video_id for j in (2, 3, 5)}
    key = cache_key(**video_parts(enc, copy12, 12, with_patches=True, on_error="skip"))
    assert_identical(cache.load(key), reference(enc, copy12, with_patches=True))


def test_a_chunk_whose_every_video_failed_has_zero_patches(copy12, tmp_path):
    enc, cache = FakeEncoder(), FeatureCache(tmp_path / "c")
    for j in range(4, 8):  # all of chunk 1
        copy12.videos[j].path.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = encode_videos(enc, copy12, 12, cache=cache, on_error="skip", with_patches=True, **KW)
    ref = reference(enc, copy12, with_patches=True)
    assert torch.equal(f.patches, ref["patches"]) and not f.patches[4:8].any() and f.patches[:4].any()


# ----------------------------------------------------------------------------------------------- command line
def test_cli_extract_encodes_the_profiles_splits_into_the_cache(enc, tiny_benchmark, tmp_path, monkeypatch, capsys):
    import tvrlib.session
    from tvrlib.__main__ import main
    from tvrlib.profiles import get_profile

    data = load_dataset("synthetic", "val", root=tiny_benchmark, config="tiny")
    session = tvrlib.session.Session(get_profile("tiny"))
    session._cache["encoder"] = enc
    session._cache[("data", "val")] = data
    monkeypatch.setattr(tvrlib.session, "setup", lambda profile, **kw: session)
    monkeypatch.setenv("TVR_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["extract", "--profile", "tiny", "--split", "val", "--chunk", "2", "--batch", "2", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "synthetic/val: 8 of 8 videos encoded" in out and "frames/s" in out
    key = cache_key(**video_parts(enc, data, 12, "uniform"))
    assert list(FeatureCache(tmp_path / "cache").entries()["key"]) == [key]
    assert torch.equal(session.video_features("val").frames, reference(enc, data)["frames"])  # what notebooks read
    assert main(argv) == 0 and "already in the feature cache" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--profile", "nope"], "unknown profile 'nope'; known profiles: ["),
        (["--profile", "tiny", "--split", "dev"], "unknown split(s) ['dev'] for profile 'tiny'"),
        (["--profile", "tiny", "--workers", "-1"], "--workers must be >= 0"),
    ],
)
def test_cli_extract_rejects_unknown_names_with_the_valid_ones(argv, expected, capsys):
    from tvrlib.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["extract", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    if "split" in expected:
        assert "valid splits: ['train', 'val', 'test']" in err


def test_clear_removes_partial_areas_and_only_the_cache_files_in_them(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    parts = {"kind": "chunk", "i": 0}
    area = cache.partial(cache_key(kind="area"))
    area.save(cache_key(**parts), {"x": torch.ones(2)}, parts)
    assert area.root == cache.root / "partial" / cache_key(kind="area") and area.has(cache_key(**parts))
    assert cache.clear() == 2 and not (cache.root / "partial").exists()
    area.save(cache_key(**parts), {"x": torch.ones(2)}, parts)
    (area.root / "notes.txt").write_text("not ours")
    assert cache.drop_partial(cache_key(kind="area")) == 2 and (area.root / "notes.txt").exists()
    with pytest.raises(ValueError, match="not a cache key"):
        cache.partial("../elsewhere")
