"""Real-format dataset loaders on tiny fixtures (tests/fixtures/real, see make_real_fixtures.py)."""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from tvrlib.datasets import registry
from tvrlib.datasets.base import RetrievalData
from tvrlib.datasets.files import carve_validation
from tvrlib.datasets.lsmdc import load_lsmdc
from tvrlib.datasets.msrvtt import load_msrvtt
from tvrlib.datasets.msvd import load_msvd
from tvrlib.datasets.paragraph import load_activitynet, load_didemo
from tvrlib.datasets.registry import load_dataset, register_dataset
from tvrlib.errors import AnnotationError, DatasetNotFoundError, UnknownNameError

_spec = importlib.util.spec_from_file_location(
    "make_real_fixtures", Path(__file__).parent / "fixtures" / "make_real_fixtures.py"
)
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
REAL = fx.ensure_fixtures()


def copy_of(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copytree(REAL / name, dst)
    return dst


def assert_consistent(d: RetrievalData) -> None:
    assert len(d.texts) == len(d.text_to_video)
    assert set(d.text_to_video.tolist()) == set(range(d.num_videos))  # every video has a text
    assert all(isinstance(t, str) and t == " ".join(t.split()) and t for t in d.texts)


# --------------------------------------------------------------------------------------
# video files
# --------------------------------------------------------------------------------------
def test_every_fixture_video_opens_with_decord():
    import decord

    videos = [p for p in fx.expected_files() if p.suffix in (".mp4", ".avi")]
    assert len(videos) == 31
    for p in videos:
        vr = decord.VideoReader(str(p))
        assert len(vr) > 0, p
        assert vr[len(vr) - 1].shape == (fx.H, fx.W, 3)


def test_fixtures_are_small_and_generator_is_idempotent():
    before = {p: p.read_bytes() for p in fx.expected_files()}
    fx.make_all()
    assert {p: p.read_bytes() for p in fx.expected_files()} == before
    assert sum(len(b) for b in before.values()) < 300_000


def test_loaded_video_paths_exist():
    loads = [
        load_msrvtt(REAL / "msrvtt", "test"),
        load_msrvtt(REAL / "msrvtt", "train", val_size=2),
        load_msvd(REAL / "msvd", "test"),
        load_lsmdc(REAL / "lsmdc", "train"),
        load_didemo(REAL / "didemo", "train"),
        load_activitynet(REAL / "activitynet", "test"),
    ]
    for d in loads:
        for v in d.videos:
            assert Path(v.path).is_file(), v


# --------------------------------------------------------------------------------------
# MSR-VTT
# --------------------------------------------------------------------------------------
def test_msrvtt_test_split_jsfusion():
    d = load_msrvtt(REAL / "msrvtt", "test", check_files=True)
    assert d.dataset == "msrvtt" and d.split == "test"
    assert d.video_ids == ["video7", "video5", "video6"]  # csv file order
    assert len(d.texts) == 9  # every json caption of the test videos, none appended
    assert d.meta["csv_sentences_added"] == []
    queries, gold = d.queries()
    assert gold.tolist() == [0, 1, 2]
    assert queries == [
        "a child dances to music",
        "a cat is lying on a couch",
        "a teacher writes on a board",
    ]  # whitespace-normalised match
    # video7 sits in videos/all/ (Frozen-in-Time layout) and is found by name
    assert d.videos[0].path == REAL / "msrvtt" / "videos" / "all" / "video7.mp4"
    assert len(d.meta["sentence_fields"]) == len(d.texts) and all(f == {} for f in d.meta["sentence_fields"])
    assert d.meta["video_fields"][0]["split"] == "test"
    assert_consistent(d)


def test_msrvtt_train_val_carve_out():
    root = REAL / "msrvtt"
    tr = load_msrvtt(root, "train", val_size=2)
    va = load_msrvtt(root, "val", val_size=2)
    ids9k = [f"video{i}" for i in range(5)]
    assert set(tr.video_ids).isdisjoint(va.video_ids)
    assert sorted(tr.video_ids + va.video_ids) == ids9k
    assert va.num_videos == 2 and tr.num_videos == 3
    # the documented rule: sorted ids, default_rng(0) permutation, first val_size
    perm = np.random.default_rng(0).permutation(5)
    assert set(va.video_ids) == {sorted(ids9k)[i] for i in perm[:2]}
    assert set(va.video_ids) == carve_validation(ids9k, 2)
    # deterministic across calls, and independent of file order
    assert load_msrvtt(root, "val", val_size=2).video_ids == va.video_ids
    assert carve_validation(ids9k[::-1], 2) == carve_validation(ids9k, 2)
    # training split: all captions, all queries
    assert len(tr.texts) == 3 * 3 and tr.query_index.tolist() == list(range(9))
    assert tr.meta["val_carve_out"]["seed"] == 0
    for d in (tr, va):
        assert_consistent(d)
        for i, t in enumerate(d.texts):
            assert t in fx.MSRVTT_CAPTIONS[d.video_ids[d.text_to_video[i]]]


def test_msrvtt_default_val_size_too_large_for_tiny_list():
    with pytest.raises(ValueError, match="val_size"):
        load_msrvtt(REAL / "msrvtt", "val")


def test_msrvtt_7k_and_val_csv(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    tr7 = load_msrvtt(root, "train", train_csv="MSRVTT_train.7k.csv", val_size=1)
    assert tr7.num_videos == 2 and set(tr7.video_ids) < {"video0", "video1", "video2"}
    (root / "my_val.csv").write_text("video_id\nvideo4\nvideo1\n")
    va = load_msrvtt(root, "val", val_csv="my_val.csv")
    tr = load_msrvtt(root, "train", val_csv="my_val.csv")
    assert va.video_ids == ["video4", "video1"]
    assert tr.video_ids == ["video0", "video2", "video3"]  # a val video is never a train video
    assert "val_carve_out" not in va.meta


def test_msrvtt_csv_sentence_not_in_json_is_appended(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    csv = root / "MSRVTT_JSFUSION_test.csv"
    csv.write_text(csv.read_text().replace("a cat is lying on a couch", "a grey cat naps on a couch"))
    d = load_msrvtt(root, "test")
    assert d.meta["csv_sentences_added"] == ["video5"]
    assert len(d.texts) == 10
    q, gold = d.queries()
    assert q[1] == "a grey cat naps on a couch" and gold[1] == 1
    assert d.meta["sen_ids"][d.query_index[1]] is None and d.meta["sentence_fields"][d.query_index[1]] == {}


def test_msrvtt_extra_json_fields_go_to_meta(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    data = json.loads((root / "MSRVTT_data.json").read_text())
    data["twins"] = [["video5", "video6"]]
    for s in data["sentences"]:
        s["kind"] = "base" if s["sen_id"] % 2 == 0 else "hard"
    data["videos"][5]["difficulty"] = 3
    (root / "bench.json").write_text(json.dumps(data))
    (root / "bench_test.csv").write_text("video_id\nvideo5\nvideo6\n")  # no sentence column
    d = load_msrvtt(root, "test", data_json="bench.json", test_csv="bench_test.csv", dataset_name="bench")
    assert d.dataset == "bench" and d.meta["twins"] == [["video5", "video6"]]
    assert "info" not in d.meta
    assert len(d.meta["sentence_fields"]) == len(d.texts) == 6
    assert {f["kind"] for f in d.meta["sentence_fields"]} == {"base", "hard"}
    for i, f in enumerate(d.meta["sentence_fields"]):
        assert f["kind"] == ("base" if d.meta["sen_ids"][i] % 2 == 0 else "hard")
    assert d.meta["video_fields"][0]["difficulty"] == 3
    assert d.query_index.tolist() == list(range(6))  # without a sentence column: all captions


def test_msrvtt_test_video_absent_from_json(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    with open(root / "MSRVTT_JSFUSION_test.csv", "a") as f:
        f.write("ret3,msr9999,video9999,a ghost video\n")
    with pytest.raises(AnnotationError, match="video9999"):
        load_msrvtt(root, "test")


def test_msrvtt_duplicate_id_in_split_file(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\nvideo1\nvideo3\n")
    with pytest.raises(AnnotationError, match="video1"):
        load_msrvtt(root, "train", val_size=1)


def test_msrvtt_empty_caption(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    data = json.loads((root / "MSRVTT_data.json").read_text())
    k = next(i for i, s in enumerate(data["sentences"]) if s["video_id"] == "video6")
    data["sentences"][k]["caption"] = " \t "
    (root / "MSRVTT_data.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as e:
        load_msrvtt(root, "test")
    assert "MSRVTT_data.json" in str(e.value) and "video6" in str(e.value)


def test_msrvtt_train_test_overlap_is_rejected(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    (root / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo2\nvideo5\n")
    with pytest.raises(AnnotationError, match="video5"):
        load_msrvtt(root, "train", val_size=1)


def test_msrvtt_missing_files(tmp_path):
    root = copy_of(tmp_path, "msrvtt")
    (root / "MSRVTT_data.json").unlink()
    with pytest.raises(DatasetNotFoundError) as e:
        load_msrvtt(root, "test")
    msg = str(e.value)
    assert "MSRVTT_data.json" in msg and str(root) in msg and "TVR_DATA_ROOT" in msg and "msrvtt_data.zip" in msg
    root2 = copy_of(tmp_path / "b", "msrvtt")
    (root2 / "videos" / "video5.mp4").unlink()
    d = load_msrvtt(root2, "test")  # not required at load time
    assert d.videos[1].path == root2 / "videos" / "video5.mp4"
    with pytest.raises(DatasetNotFoundError, match=r"1 of 3 video files.*video5\.mp4"):
        load_msrvtt(root2, "test", check_files=True)


def test_msrvtt_unknown_split():
    with pytest.raises(ValueError, match="train.*val.*test"):
        load_msrvtt(REAL / "msrvtt", "validation")


# --------------------------------------------------------------------------------------
# MSVD
# --------------------------------------------------------------------------------------
def test_msvd_splits():
    root = REAL / "msvd"
    ids = list(fx.MSVD_CAPTIONS)
    sizes = {"train": ids[:2], "val": ids[2:3], "test": ids[3:]}
    for split, expect in sizes.items():
        d = load_msvd(root, split, check_files=True)
        assert d.video_ids == expect
        n = sum(len(fx.MSVD_CAPTIONS[v]) for v in expect)
        assert len(d.texts) == n and d.query_index.tolist() == list(range(n))  # multi-caption
        assert d.meta["caption_count"] == [len(fx.MSVD_CAPTIONS[v]) for v in expect]
        assert d.videos[0].path == root / "YouTubeClips" / f"{expect[0]}.avi"
        assert_consistent(d)
    d = load_msvd(root, "test")
    assert d.texts[0] == "a baby is laughing" and d.text_to_video.tolist() == [0, 0, 1, 1, 1]


def test_msvd_bad_input(tmp_path):
    root = copy_of(tmp_path, "msvd")
    (root / "test_list.txt").write_text("-AwoiGR6c8M_10_14\nnot_a_video_1_2\n")
    with pytest.raises(AnnotationError, match="not_a_video_1_2"):
        load_msvd(root, "test")
    (root / "test_list.txt").write_text("-AwoiGR6c8M_10_14\n-DKuR5QKXeg_23_32\n-AwoiGR6c8M_10_14\n")
    with pytest.raises(AnnotationError, match="-AwoiGR6c8M_10_14"):
        load_msvd(root, "test")
    caps = pickle.loads((root / "raw-captions.pkl").read_bytes())
    caps["-7KMZQEsJW4_205_208"][1] = ["", "  "]
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(caps))
    with pytest.raises(AnnotationError) as e:
        load_msvd(root, "train")
    assert "raw-captions.pkl" in str(e.value) and "-7KMZQEsJW4_205_208" in str(e.value)
    (root / "val_list.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="val_list.txt"):
        load_msvd(root, "val")


# --------------------------------------------------------------------------------------
# LSMDC
# --------------------------------------------------------------------------------------
def test_lsmdc_splits():
    root = REAL / "lsmdc"
    tr = load_lsmdc(root, "train", check_files=True)
    assert tr.num_videos == 3 and len(tr.texts) == 4  # one clip id carries two sentences
    assert tr.text_to_video.tolist() == [0, 1, 1, 2]
    assert tr.query_index.tolist() == [0, 1, 2, 3]
    clip = "0001_American_Beauty_00.00.51.926-00.00.54.129"
    assert tr.videos[0].path == root / "videos" / "0001_American_Beauty" / f"{clip}.avi"
    assert tr.meta["times"][0] == ("00.00.51.926", "00.00.54.129", "00.00.51.000", "00.00.55.000")
    te = load_lsmdc(root, "test", check_files=True)
    assert te.num_videos == 2 and te.texts[1] == "The train moves through the night."
    assert load_lsmdc(root, "val").video_ids == ["1010_TITANIC_00.41.32.072-00.41.40.196"]
    for d in (tr, te):
        assert_consistent(d)


def test_lsmdc_video_found_by_name_anywhere(tmp_path):
    root = copy_of(tmp_path, "lsmdc")
    clip = "1004_Juno_00.00.32.849-00.00.35.458"
    (root / "videos" / "flat").mkdir()
    (root / "videos" / "1004_Juno" / f"{clip}.avi").rename(root / "videos" / "flat" / f"{clip}.avi")
    d = load_lsmdc(root, "test", check_files=True)
    assert d.videos[0].path == root / "videos" / "flat" / f"{clip}.avi"


def test_lsmdc_bad_input(tmp_path):
    root = copy_of(tmp_path, "lsmdc")
    f = root / "LSMDC16_challenge_1000_publictect.csv"
    good = f.read_text()
    f.write_text(good + "1004_Juno_00.01.00.000-00.01.02.000\t00.01.00.000\t00.01.02.000\tonly four\n")
    with pytest.raises(AnnotationError, match="line 3"):
        load_lsmdc(root, "test")
    f.write_text(good + "1004_Juno_00.01.00.000-00.01.02.000\ta\tb\tc\td\t  \n")
    with pytest.raises(AnnotationError) as e:
        load_lsmdc(root, "test")
    assert "LSMDC16_challenge_1000_publictect.csv" in str(e.value)
    assert "1004_Juno_00.01.00.000-00.01.02.000" in str(e.value)
    f.unlink()
    with pytest.raises(DatasetNotFoundError, match="LSMDC16_challenge_1000_publictect.csv"):
        load_lsmdc(root, "test")


# --------------------------------------------------------------------------------------
# DiDeMo
# --------------------------------------------------------------------------------------
def test_didemo_paragraphs_in_temporal_order():
    root = REAL / "didemo"
    d = load_didemo(root, "train", check_files=True)
    assert d.num_videos == 3 and len(d.texts) == 3
    assert d.text_to_video.tolist() == [0, 1, 2] and d.query_index.tolist() == [0, 1, 2]
    assert d.texts[0] == "a dog stands on the shore the dog jumps into the water the dog swims back"
    assert d.texts[1] == "the camera pans to the street a kid rides a red bike"
    assert d.meta["sentences"][0][0] == "a dog stands on the shore"
    assert d.meta["times"][0][0] == [[0, 0], [0, 1], [0, 0]]
    # the json names a .mov; the converted .mp4 with the same stem is found
    assert d.video_ids[0].endswith(".mov")
    assert d.videos[0].path == root / "videos" / "12090392@N02_13482799053_87ef417396.mp4"
    te = load_didemo(root, "test")
    assert te.texts == ["a bird lands on a branch the bird flies away", "a man opens a gift"]
    assert load_didemo(root, "val").num_videos == 1
    for x in (d, te):
        assert_consistent(x)


def test_didemo_split_list_and_bad_input(tmp_path):
    root = copy_of(tmp_path, "didemo")
    (root / "train_list.txt").write_text(
        "45781634@N00_3361052457_b7e85b0f5b.mp4\n12090392@N02_13482799053_87ef417396.mov\n"
    )
    d = load_didemo(root, "train")
    assert d.video_ids == ["45781634@N00_3361052457_b7e85b0f5b.mp4", "12090392@N02_13482799053_87ef417396.mov"]
    assert load_didemo(root, "train", use_list_files=False).num_videos == 3
    (root / "train_list.txt").write_text("99999999@N00_1_abc.mp4\n")
    with pytest.raises(AnnotationError, match="99999999@N00_1_abc.mp4"):
        load_didemo(root, "train")
    (root / "train_list.txt").unlink()
    data = json.loads((root / "test_data.json").read_text())
    data[2]["description"] = ""
    (root / "test_data.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as e:
        load_didemo(root, "test")
    assert "test_data.json" in str(e.value) and "90123456@N03_6412398745_f1e2d3c4b5.mp4" in str(e.value)


# --------------------------------------------------------------------------------------
# ActivityNet Captions
# --------------------------------------------------------------------------------------
def test_activitynet_splits_and_order():
    root = REAL / "activitynet"
    te = load_activitynet(root, "test", check_files=True)  # val_1.json
    assert te.video_ids == ["v_uqiMw7tQ1Cc", "v_bXdq2zI1Ms0"]
    assert te.texts[0] == (
        "A weight lifting tutorial is given. The coach helps the guy in red with the proper body placement."
    )
    assert te.texts[1] == "Two men put on harnesses. They climb to the top of the wall."  # sorted by time
    assert te.meta["timestamps"][1] == [[0.0, 33.0], [30.0, 73.1]]
    v2 = load_activitynet(root, "val_2")
    assert v2.texts[0] == "A man stands in a gym. He lifts a heavy barbell."
    tr = load_activitynet(root, "train", val_size=1, check_files=True)
    va = load_activitynet(root, "val", val_size=1, check_files=True)
    assert tr.num_videos == 3 and va.num_videos == 1
    assert set(tr.video_ids).isdisjoint(va.video_ids)
    assert set(tr.video_ids) | set(va.video_ids) == set(fx.ANET["train.json"])
    assert set(va.video_ids) == carve_validation(fx.ANET["train.json"], 1)
    assert load_activitynet(root, "val", val_size=1).video_ids == va.video_ids
    both = {**dict(zip(tr.video_ids, tr.texts)), **dict(zip(va.video_ids, va.texts))}
    assert both["v_ogQozSI5V8U"] == (
        "A man mixes flour in a bowl. He puts the pan in the oven. Finally he serves the cake."
    )
    # stored without the "v_" prefix (CLIP4Clip's naming) and still found
    if "v_nwznKOuZM7w" in tr.video_ids:
        assert tr.videos[tr.video_ids.index("v_nwznKOuZM7w")].path.name == "nwznKOuZM7w.mp4"
    for d in (te, v2, tr, va):
        assert_consistent(d)
        assert d.query_index.tolist() == list(range(d.num_videos))


def test_activitynet_bad_input(tmp_path):
    root = copy_of(tmp_path, "activitynet")
    text = (root / "val_1.json").read_text()
    dup = text.rstrip().rstrip("}") + ', "v_uqiMw7tQ1Cc": {"duration": 1, "timestamps": [[0, 1]], "sentences": ["x"]}}'
    (root / "val_1.json").write_text(dup)
    with pytest.raises(AnnotationError, match="v_uqiMw7tQ1Cc"):
        load_activitynet(root, "test")
    data = json.loads(text)
    data["v_bXdq2zI1Ms0"]["timestamps"].append([1.0, 2.0])
    (root / "val_1.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="v_bXdq2zI1Ms0"):
        load_activitynet(root, "test")
    data = json.loads(text)
    data["v_bXdq2zI1Ms0"]["sentences"][0] = " "
    (root / "val_1.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as e:
        load_activitynet(root, "test")
    assert "val_1.json" in str(e.value) and "v_bXdq2zI1Ms0" in str(e.value)
    with pytest.raises(ValueError, match="val_2"):
        load_activitynet(root, "val_3")


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
def test_registry_names_roots_and_env(monkeypatch, tmp_path):
    assert {"msrvtt", "msvd", "lsmdc", "didemo", "activitynet"} <= set(registry.DATASETS)
    assert set(registry.HOW_TO_GET) >= set(registry.DATASETS)
    assert registry.PROJECT_ROOT == Path(registry.__file__).resolve().parents[2]
    monkeypatch.delenv("TVR_DATA_ROOT", raising=False)
    assert registry.dataset_root("msrvtt") == registry.PROJECT_ROOT / "data" / "datasets" / "msrvtt"
    monkeypatch.setenv("TVR_DATA_ROOT", str(REAL))
    assert registry.dataset_root("msvd") == REAL / "msvd"
    d = load_dataset("msvd", "test")
    assert d.num_videos == 2
    d = load_dataset("msrvtt", "val", root=REAL / "msrvtt", val_size=2)
    assert d.num_videos == 2


def test_registry_errors(monkeypatch, tmp_path):
    with pytest.raises(UnknownNameError) as e:
        load_dataset("msr-vtt", "test")
    assert "msrvtt" in str(e.value) and "activitynet" in str(e.value)
    with pytest.raises(ValueError, match="train.*val.*test"):
        load_dataset("msrvtt", "dev", root=REAL / "msrvtt")
    monkeypatch.setenv("TVR_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("lsmdc", "test")
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "lsmdc") in msg and "TVR_DATA_ROOT" in msg
    assert "describingmovies" in msg and "LSMDC16_challenge_1000_publictect.csv" in msg
    (tmp_path / "nowhere" / "didemo").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("didemo", "train")
    msg = str(e.value)
    assert "train_data.json" in msg and str(tmp_path / "nowhere" / "didemo") in msg
    assert "LocalizingMoments" in msg and "TVR_DATA_ROOT" in msg


def test_register_dataset(monkeypatch, tmp_path):
    calls = []

    def loader(root, split, **opts):
        calls.append((Path(root), split, opts))
        return load_msrvtt(root, split, **opts)

    try:
        register_dataset("tiny_bench", loader, "data/datasets/tiny_bench", "made by a test", splits=["test"])
        monkeypatch.setenv("TVR_DATA_ROOT", str(tmp_path))
        assert registry.dataset_root("tiny_bench") == tmp_path / "tiny_bench"
        monkeypatch.delenv("TVR_DATA_ROOT")
        assert registry.dataset_root("tiny_bench") == registry.PROJECT_ROOT / "data" / "datasets" / "tiny_bench"
        d = load_dataset("tiny_bench", "test", root=REAL / "msrvtt")
        assert d.num_videos == 3 and calls[0][1] == "test"
        assert registry.HOW_TO_GET["tiny_bench"] == "made by a test"
        with pytest.raises(ValueError):
            load_dataset("tiny_bench", "train", root=REAL / "msrvtt")
        with pytest.raises(ValueError, match="built in"):
            register_dataset("msrvtt", loader)
    finally:
        registry.DATASETS.pop("tiny_bench", None)
        registry.HOW_TO_GET.pop("tiny_bench", None)
        registry.LAYOUT.pop("tiny_bench", None)
