"""Tests for tvrlib.cache: keys, round trips, atomic writes, corruption handling."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

from tvrlib import cache as cache_mod
from tvrlib.cache import (
    CacheMissError,
    FeatureCache,
    cache_key,
    default_cache_dir,
    file_digest,
    tree_digest,
)
from tvrlib.errors import CacheError, TVRError

PARTS = dict(
    dataset="msrvtt",
    config="c0ffee",
    split="test",
    encoder="ViT-B/32",
    weights="abc123",
    sampler="uniform",
    num_frames=12,
    size=224,
    kind="video",
    dtype="float16",
)


def _features(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "frames": torch.randn(3, 12, 512, generator=g).half(),
        "patches": torch.randn(3, 12, 4, 8, generator=g),
        "mask": torch.tensor([[True, False], [True, True]]),
        "ids": torch.arange(5, dtype=torch.int64),
        "scalar": torch.tensor(3.5, dtype=torch.float64),
    }


class Counter:
    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        return _features(self.seed)


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        assert torch.equal(a[name], b[name]), name


# ---------------------------------------------------------------- keys


def test_key_is_stable_and_order_independent():
    k = cache_key(**PARTS)
    assert len(k) == 20 and all(c in "0123456789abcdef" for c in k)
    reordered = dict(reversed(list(PARTS.items())))
    assert cache_key(**reordered) == k
    # nested dicts are canonical too; tuples equal lists; Path equals its str
    assert cache_key(a={"x": 1, "y": 2}) == cache_key(a={"y": 2, "x": 1})
    assert cache_key(size=(224, 224)) == cache_key(size=[224, 224])
    assert cache_key(p=Path("a/b.pt")) == cache_key(p=str(Path("a/b.pt")))
    # known value (sha256 of the compact sorted JSON): guards the canonical form,
    # since changing it would silently orphan every existing cache entry
    assert cache_key(b=(1, 2), a=1) == "8baa73198470c7bb4c3c"


@pytest.mark.parametrize(
    "name, value",
    [
        ("num_frames", 8),
        ("weights", "abc124"),
        ("split", "val"),
        ("kind", "text"),
        ("dtype", "float32"),
        ("size", 336),
        ("encoder", "ViT-B/16"),
    ],
)
def test_key_changes_with_any_part(name, value):
    changed = dict(PARTS, **{name: value})
    assert cache_key(**changed) != cache_key(**PARTS)


def test_key_distinguishes_types_and_extra_parts():
    assert cache_key(a=1) != cache_key(a="1")
    assert cache_key(a=1) != cache_key(a=1.0)
    assert cache_key(a=1) != cache_key(a=True)
    assert cache_key(a=None) != cache_key(a="None")
    assert cache_key(**PARTS) != cache_key(**PARTS, extra=None)


@pytest.mark.parametrize("bad", [torch.zeros(2), object(), {1, 2}, b"bytes", [1, torch.ones(1)], {"w": object()}])
def test_non_json_parts_raise_type_error_naming_the_key(bad):
    with pytest.raises(TypeError, match="weights"):
        cache_key(dataset="msrvtt", weights=bad)


def test_non_string_nested_dict_key_and_empty_parts():
    with pytest.raises(TypeError, match="cfg"):
        cache_key(cfg={1: "a"})
    with pytest.raises(ValueError):
        cache_key()
    with pytest.raises(ValueError, match="lr"):
        cache_key(lr=float("nan"))


def test_file_and_tree_digest(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"hello" * 1000)
    b.write_bytes(b"world")
    assert file_digest(a) == file_digest(a, chunk=7)
    assert file_digest(a) != file_digest(b)
    assert tree_digest([a, b]) == tree_digest([b, a])
    before = tree_digest([a, b])
    b.write_bytes(b"World")
    assert tree_digest([a, b]) != before
    d = tmp_path / "cfg"
    (d / "sub").mkdir(parents=True)
    (d / "x.yaml").write_text("x: 1\n")
    (d / "sub" / "y.yaml").write_text("y: 2\n")
    t1 = tree_digest([d])
    (d / "sub" / "y.yaml").write_text("y: 3\n")
    assert tree_digest([d]) != t1
    with pytest.raises(FileNotFoundError):
        tree_digest([tmp_path / "missing"])


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("TVR_CACHE_DIR", raising=False)
    expected = Path(cache_mod.__file__).resolve().parent.parent / "data" / "cache"
    assert default_cache_dir() == expected
    monkeypatch.setenv("TVR_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert FeatureCache().root == tmp_path / "elsewhere"


# ---------------------------------------------------------------- round trip


def test_round_trip_preserves_values_dtypes_shapes(tmp_path):
    c = FeatureCache(tmp_path / "cache")  # created on demand
    key = cache_key(**PARTS)
    assert not c.has(key)
    feats = _features()
    c.save(key, feats, PARTS)
    assert c.has(key)
    assert c.path_for(key).exists() and c.manifest_path_for(key).exists()
    _assert_same(c.load(key), feats)
    manifest = json.loads(c.manifest_path_for(key).read_text())
    assert manifest["parts"] == PARTS
    assert manifest["tensors"]["frames"] == {"shape": [3, 12, 512], "dtype": "float16"}
    assert manifest["sha256"] == file_digest(c.path_for(key))


def test_save_stores_views_compactly_and_rejects_bad_input(tmp_path):
    c = FeatureCache(tmp_path)
    big = torch.zeros(1000, 100)
    key = cache_key(**PARTS)
    c.save(key, {"row": big[3]}, PARTS)
    assert c.load(key)["row"].shape == (100,)
    assert c.path_for(key).stat().st_size < 100_000  # not the whole 400 kB storage
    with pytest.raises(ValueError, match="hash"):
        c.save(key, {"x": torch.zeros(1)}, dict(PARTS, num_frames=8))
    with pytest.raises(TypeError, match="x"):
        c.save(key, {"x": [1, 2]}, PARTS)
    with pytest.raises(ValueError):
        c.path_for("../../etc/passwd")


def test_missing_key_raises_cache_miss(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    with pytest.raises(CacheMissError) as info:
        c.load(key)
    assert isinstance(info.value, CacheError)
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, TVRError)
    assert key in str(info.value)


def test_get_or_compute_computes_once_then_reuses(tmp_path):
    c = FeatureCache(tmp_path)
    compute = Counter()
    first = c.get_or_compute(PARTS, compute, desc="test videos")
    second = c.get_or_compute(dict(reversed(list(PARTS.items()))), compute)
    assert compute.calls == 1
    _assert_same(first, second)
    _assert_same(first, _features())
    # a fresh cache object on the same directory also hits
    FeatureCache(tmp_path).get_or_compute(PARTS, compute)
    assert compute.calls == 1


@pytest.mark.parametrize("name, value", [("num_frames", 8), ("weights", "def456")])
def test_changed_part_never_uses_stale_entry(tmp_path, name, value):
    c = FeatureCache(tmp_path)
    old = Counter(seed=0)
    c.get_or_compute(PARTS, old)
    new = Counter(seed=1)
    got = c.get_or_compute(dict(PARTS, **{name: value}), new)
    assert new.calls == 1
    _assert_same(got, _features(1))
    assert len(c.entries()) == 2


# ---------------------------------------------------------------- corruption


def _flip_bytes(path: Path, offset_from_end: int = 40) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) - offset_from_end
    data[i] ^= 0xFF
    data[i + 1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_tensor_file_is_recomputed_with_warning(tmp_path):
    c = FeatureCache(tmp_path)
    compute = Counter()
    c.get_or_compute(PARTS, compute)
    key = cache_key(**PARTS)
    tpath = c.path_for(key)
    _flip_bytes(tpath)

    with pytest.raises(CacheError, match="delete") as info:
        c.load(key)
    assert str(tpath) in str(info.value)
    assert not isinstance(info.value, CacheMissError)

    with pytest.warns(RuntimeWarning, match=tpath.name):
        got = c.get_or_compute(PARTS, compute)
    assert compute.calls == 2
    _assert_same(got, _features())
    _assert_same(c.load(key), _features())  # overwritten with a good entry


def test_truncated_tensor_file_is_never_valid(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    c.save(key, _features(), PARTS)
    tpath = c.path_for(key)
    tpath.write_bytes(tpath.read_bytes()[: tpath.stat().st_size // 2])
    assert not c.has(key)
    with pytest.raises(CacheError, match=tpath.name):
        c.load(key)
    compute = Counter()
    with pytest.warns(RuntimeWarning):
        c.get_or_compute(PARTS, compute)
    assert compute.calls == 1


def test_manifest_whose_parts_do_not_match_key_is_rejected(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    c.save(key, _features(), PARTS)
    mpath = c.manifest_path_for(key)
    manifest = json.loads(mpath.read_text())
    manifest["parts"]["num_frames"] = 8  # as if an entry were renamed or hand-edited
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match=mpath.name):
        c.load(key)
    assert not c.has(key)
    compute = Counter()
    with pytest.warns(RuntimeWarning, match=mpath.name):
        c.get_or_compute(PARTS, compute)
    assert compute.calls == 1
    assert c.has(key)


def test_entry_copied_under_another_key_is_rejected(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    other = cache_key(**dict(PARTS, num_frames=8))
    c.save(key, _features(), PARTS)
    c.path_for(other).write_bytes(c.path_for(key).read_bytes())
    c.manifest_path_for(other).write_bytes(c.manifest_path_for(key).read_bytes())
    with pytest.raises(CacheError):
        c.load(other)


def test_unreadable_manifest_is_rejected(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    c.save(key, _features(), PARTS)
    c.manifest_path_for(key).write_text("{not json")
    with pytest.raises(CacheError, match="delete"):
        c.load(key)


# ---------------------------------------------------------------- interrupted writes


def test_exception_inside_torch_save_leaves_no_entry(tmp_path, monkeypatch):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(max(1, f.tell() // 2))  # part of the bytes reached the temp file
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(RuntimeError, match="mid-write"):
        c.get_or_compute(PARTS, Counter())
    monkeypatch.undo()

    assert not c.has(key)
    assert not c.path_for(key).exists()
    assert not c.manifest_path_for(key).exists()
    compute = Counter()
    got = c.get_or_compute(PARTS, compute)
    assert compute.calls == 1
    _assert_same(got, _features())


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_os_replace_failure_leaves_no_valid_entry(tmp_path, monkeypatch, fail_on_call):
    """Fail the rename of the tensor file (1) or of the manifest (2), after the temp file is written."""
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    # an older, valid entry under the same key must not survive half-overwritten
    c.save(key, _features(seed=5), PARTS)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst, *args, **kwargs):
        calls.append((src, dst))
        assert Path(src).stat().st_size > 0  # the temp file was fully written
        if len(calls) == fail_on_call:
            raise OSError("simulated crash before rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="simulated"):
        c.save(key, _features(seed=1), PARTS)
    monkeypatch.undo()

    assert not c.has(key)
    with pytest.raises(CacheError):
        c.load(key)
    assert not list(tmp_path.glob(".*.tmp"))  # temp file cleaned up on failure
    compute = Counter(seed=1)
    got = c.get_or_compute(PARTS, compute)
    assert compute.calls == 1
    _assert_same(got, _features(1))


def test_leftover_temp_files_and_orphan_tensors_are_ignored(tmp_path):
    c = FeatureCache(tmp_path)
    key = cache_key(**PARTS)
    # what a killed process could leave: a temp file and a tensor file without manifest
    (tmp_path / f".{key}.pt.abc123.tmp").write_bytes(b"partial")
    torch.save(_features(), c.path_for(key))
    assert not c.has(key)
    with pytest.raises(CacheMissError):
        c.load(key)
    df = c.entries()
    assert list(df["committed"]) == [False]
    compute = Counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an uncommitted entry is a plain miss
        c.get_or_compute(PARTS, compute)
    assert compute.calls == 1
    assert c.has(key)


def test_get_or_compute_returns_features_when_cache_dir_unwritable(tmp_path, monkeypatch):
    c = FeatureCache(tmp_path)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod, "write_atomic", no_space)
    with pytest.warns(RuntimeWarning, match="not cached"):
        got = c.get_or_compute(PARTS, Counter())
    _assert_same(got, _features())


# ---------------------------------------------------------------- housekeeping


def test_entries_delete_clear(tmp_path):
    c = FeatureCache(tmp_path / "c")
    assert list(c.entries().columns[:4]) == ["key", "parts", "size", "created"]
    assert len(c.entries()) == 0
    video = dict(PARTS)
    text = dict(PARTS, kind="text")
    c.get_or_compute(video, Counter())
    c.get_or_compute(text, lambda: {"sent": torch.ones(4, 512), "mask": torch.ones(4, 32, dtype=torch.bool)})
    df = c.entries()
    assert len(df) == 2
    assert set(df["key"]) == {cache_key(**video), cache_key(**text)}
    row = df.set_index("key").loc[cache_key(**text)]
    assert row["parts"]["kind"] == "text"
    assert row["size"] > 0
    assert row["created"].year >= 2024
    assert "sent" in row["tensors"]
    assert df["committed"].all()

    other = tmp_path / "c" / "notes.txt"
    other.write_text("not ours")
    (tmp_path / "c" / f".{cache_key(**video)}.pt.zz.tmp").write_bytes(b"x")

    assert c.delete(cache_key(**video))
    assert not c.delete(cache_key(**video))
    assert not c.has(cache_key(**video))
    assert len(c.entries()) == 1

    assert c.clear() == 3  # text entry (2 files) + leftover temp
    assert len(c.entries()) == 0
    assert other.exists()  # clear only removes cache files
    assert FeatureCache(tmp_path / "never-created").clear() == 0
