"""The browser (tvrlib.explore): its ranking is the head's score order with the metrics' ranks, two heads share a
caption, the static figure draws one strip per shown video (weights only for heads that have them), videos play
inline, and bad input says what is wrong. Features are small random tensors on the tiny benchmark's test split."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tvrlib import explore as E  # noqa: E402
from tvrlib import metrics as M  # noqa: E402
from tvrlib.datasets import load_dataset  # noqa: E402
from tvrlib.datasets.base import RetrievalData, Video  # noqa: E402
from tvrlib.errors import UnknownNameError, VideoReadError  # noqa: E402
from tvrlib.heads import HEADS, TextInput, VideoInput, score_all  # noqa: E402

D, F_ = 8, 12
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def test_split(tiny_benchmark):
    return load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny")


def toy_gallery(data, seed: int = 0, encode_text=None) -> E.Gallery:
    """Random frame features; each caption near the mean of its gold video's frames."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(data.num_videos, F_, D, generator=g)
    mask = torch.ones(data.num_videos, F_, dtype=torch.bool)
    mask[1, 9:] = False
    texts = TextInput(frames.mean(1)[data.text_to_video] + 0.5 * torch.randn(len(data.texts), D, generator=g))
    return E.Gallery(data, texts, VideoInput(frames, mask), encode_text)


def xpool():
    torch.manual_seed(0)
    return HEADS.build("xpool", dim=D)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------------- ranking
def test_rank_table_is_the_score_order_with_the_metrics_ranks_under_ties_and_near_ties():
    tol = M.TIE_TOLERANCE
    # videos 1, 2 tie exactly; 3 is within the tolerance of them; 5 is above them by more than it; 0 is the gold
    s = np.array([0.5, 0.9, 0.9, 0.9 - 0.4 * tol, 0.2, 0.9 + 3 * tol, 0.1, 0.5 + 0.5 * tol])
    ids = [f"v{j}" for j in range(len(s))]
    t = E.rank_table(s, ids, caption="c", head="h", k=3, gold=0, twin=6)
    assert list(t.columns) == list(E.COLUMNS)
    assert list(t["video_index"]) == [5, 1, 2, 0, 6]  # top 3 in score order (exact tie: gallery order), gold, twin
    assert list(t["position"]) == [1, 2, 3, 6, 8] and list(t["in_top_k"]) == [True, True, True, False, False]
    expected = M.rank_of_gold(np.tile(s, (len(s), 1)), np.arange(len(s)))
    np.testing.assert_array_equal(t["rank"], expected[t["video_index"]])
    assert list(t["rank"][:3]) == [1.0, 3.0, 3.0]  # 1, 2 and 3 tie within the tolerance: ranks 2-4 averaged
    gold_row = t[t["is_gold"]].iloc[0]
    assert gold_row["rank"] == M.ranks_t2v(s[None], [0])[0] == 5.5  # 0 and 7 tie: the rank R@K counts
    assert t["is_twin"].sum() == 1 and t[t["is_twin"]]["video_id"].item() == "v6"
    # exact ties only: the near-tie splits off, the exact one stays
    t0 = E.rank_table(s, ids, k=3, gold=2, tie_tolerance=0.0)
    assert list(t0["rank"][:3]) == [1.0, 2.5, 2.5] and t0[t0["is_gold"]]["rank"].item() == 2.5
    # ranks never decrease down the score order
    full = E.rank_table(s, ids, k=len(s))
    assert np.all(np.diff(full["rank"]) >= 0) and np.all(np.diff(full["score"]) <= 0)


def test_browser_ranking_is_the_heads_score_order_and_its_gold_rank_is_the_metrics_rank(test_split):
    gal = toy_gallery(test_split)
    for head in ("meanP", xpool()):
        b = E.Browser(gal, head, k=5)
        grid = score_all(b.heads[next(iter(b.heads))], gal.texts, gal.videos)
        ranks = M.ranks_t2v(grid, test_split.text_to_video)
        for i in (0, 7, 50):
            t = b.table(i)
            top = t[t["in_top_k"]]
            row = grid[i].double().numpy()
            assert list(top["video_index"]) == list(np.argsort(-row, kind="stable")[:5])
            np.testing.assert_allclose(top["score"], row[top["video_index"]], atol=1e-6)  # float32 rounding apart
            own = b.scores(i)[next(iter(b.heads))]  # the scores the browser ranked
            assert t[t["is_gold"]]["rank"].item() == M.ranks_t2v(own[None], [test_split.text_to_video[i]])[0]
            assert t[t["is_gold"]]["rank"].item() == ranks[i]  # and the rank of the full evaluation
            assert t[t["is_gold"]]["video_index"].item() == test_split.text_to_video[i]


def test_two_heads_give_their_own_top_k_for_the_same_caption(test_split):
    gal = toy_gallery(test_split)
    x = xpool()
    b = E.Browser(gal, {"mean": "meanP", "xpool": x}, k=4)
    q = int(E.twin_queries(test_split, "order")["text_index"].iloc[0])
    t = b.table(q)
    assert list(dict.fromkeys(t["head"])) == ["mean", "xpool"]
    assert set(t["caption_index"]) == {q} and set(t["caption"]) == {test_split.texts[q]}
    for label, head in (("mean", HEADS.build("meanP")), ("xpool", x)):
        rows = t[(t["head"] == label) & t["in_top_k"]]
        row = score_all(head, gal.texts.index(slice(q, q + 1)), gal.videos)[0].double().numpy()
        assert list(rows["video_index"]) == list(np.argsort(-row, kind="stable")[:4])
        assert t[(t["head"] == label)]["is_twin"].sum() == 1  # the order twin is always shown
    assert t[t["head"] == "mean"]["frame_weights"].isna().all()
    w = t[t["head"] == "xpool"]["frame_weights"]
    assert all(len(r) == F_ and abs(sum(r) - 1) < 1e-5 for r in w)


def test_free_text_is_encoded_and_has_no_gold(test_split):
    seen = []

    def encode(captions):
        seen.extend(captions)
        return TextInput(torch.ones(len(captions), D))

    b = E.Browser(toy_gallery(test_split, encode_text=encode), "meanP", k=3)
    t = b.table("  a red   circle moves left ")
    assert seen == ["a red circle moves left"]
    assert len(t) == 3 and not t["is_gold"].any() and not t["is_twin"].any()
    assert set(t["caption_index"]) == {-1}


def test_twin_queries_lists_query_twins_by_factor(test_split):
    tq = E.twin_queries(test_split, "order")
    assert len(tq) > 0 and set(tq["factor"]) == {"order"}
    for r in tq.itertuples():
        assert test_split.text_to_video[r.text_index] == r.gold and test_split.video_ids[r.twin] == r.twin_id
    assert len(E.twin_queries(test_split)) >= len(tq)
    with pytest.raises(ValueError, match="factor 'colour'"):
        E.twin_queries(test_split, "colour")


# --------------------------------------------------------------------------------------------- drawing
def test_static_figure_headless_one_strip_per_shown_video_weights_only_for_heads_with_them(test_split):
    assert matplotlib.get_backend().lower() == "agg"
    gal = toy_gallery(test_split)
    b = E.Browser(gal, {"meanP": "meanP", "xpool": xpool()}, k=3, frame_size=32)
    q = int(E.twin_queries(test_split)["text_index"].iloc[0])
    t = b.table(q)
    fig = b.figure(q, t)
    strips = [a for a in fig.axes if a.get_label().startswith("strip ")]
    weights = [a for a in fig.axes if a.get_label().startswith("weights ")]
    assert len(strips) == len(t)
    assert len(weights) == (t["head"] == "xpool").sum()
    assert all(a.get_label().startswith("weights xpool ") for a in weights)
    assert all(len(a.patches) == F_ for a in weights)  # one bar per frame
    img = strips[0].images[0].get_array()
    assert img.shape[0] == 32 and img.shape[1] > F_ * 32  # a strip of F frames with gaps
    assert test_split.texts[q] in fig._suptitle.get_text().replace("\n", " ")
    # one head only, without weights: no weight axes at all
    fig2 = E.browse(gal, "meanP", q, k=2, frame_size=16)
    assert len([a for a in fig2.axes if a.get_label().startswith("strip ")]) == len(
        E.Browser(gal, "meanP", k=2).table(q)
    )
    assert not [a for a in fig2.axes if a.get_label().startswith("weights ")]


def test_compare_heads_draws_two_columns(test_split):
    gal = toy_gallery(test_split)
    fig = E.compare_heads(gal, "meanP", xpool(), 0, k=2, frame_size=16)
    heads = {a.get_label().split(" ")[1] for a in fig.axes if a.get_label().startswith("strip ")}
    assert heads == {"meanP", "XPool"}  # a name labels itself, a module by its class


def test_interactive_returns_a_widget_with_the_figure(test_split):
    import ipywidgets as W

    b = E.Browser(toy_gallery(test_split), "meanP", k=2, frame_size=16)
    w = b.show(0, interactive=True)
    assert isinstance(w, W.VBox)
    (pick, free), out = w.children[0].children, w.children[1]
    assert isinstance(out, W.Output) and set(b.last_table["caption_index"]) == {0}
    q = int(test_split.query_index[3])
    pick.value = q  # picking another of the split's queries redraws
    assert set(b.last_table["caption_index"]) == {q}
    free.value = "   "  # an empty caption is reported in the widget, not raised
    assert set(b.last_table["caption_index"]) == {q}
    assert isinstance(E.browse(b.gallery, "meanP", 0, k=2, frame_size=16), matplotlib.figure.Figure)


# --------------------------------------------------------------------------------------------- videos
def test_video_view_refers_to_the_file_and_plays_a_browser_copy_of_yuv444p(test_split):
    path = test_split.videos[0].path
    ok, why = E.browser_playable(path)
    assert not ok and "yuv444p" in why  # the benchmark's lossless yuv444p: not for browsers
    v = E.video_view(path, ["a caption"])
    assert v.path == path and v.copy and "<video" in v.html and path.name in v.html and "a caption" in v.html
    assert "data:video/mp4;base64," in v.html
    import io

    import av

    with av.open(io.BytesIO(E.browser_copy(path))) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt) == ("h264", "yuv420p") and c.streams.video[0].frames > 1
    ref = E.video_view(path, embed=False)
    assert "base64" not in ref.html and path.name in ref.video._repr_html_() and "may not play" in ref.note
    raw = E.video_view(path, copy="never")
    assert not raw.copy and raw.video.data == path.read_bytes()


def test_play_shows_a_split_video_with_its_captions_and_twins_side_by_side(test_split):
    v = E.play(test_split, test_split.video_ids[0])
    caps = [t for t, g in zip(test_split.texts, test_split.text_to_video) if g == 0]
    assert v.title == test_split.video_ids[0] and list(v.captions) == caps and len(caps) == 3
    pair = E.play_twins(test_split, "order")
    tq = E.twin_queries(test_split, "order").iloc[0]
    assert [x.title for x in pair.views] == [tq.gold_id, tq.twin_id]
    assert pair.data.count("<video") == 2


def test_missing_video_files_raise_errors_that_name_them(test_split, tmp_path):
    with pytest.raises(VideoReadError, match="not found: .*nope.mp4"):
        E.video_view(tmp_path / "nope.mp4")
    gone = RetrievalData(
        "toy",
        "test",
        [Video(f"v{j}", tmp_path / f"v{j}.mp4") for j in range(4)],
        ["a", "b", "c", "d"],
        [0, 1, 2, 3],
        [0, 1, 2, 3],
    )
    g = torch.Generator().manual_seed(0)
    gal = E.Gallery(
        gone,
        TextInput(torch.randn(4, D, generator=g)),
        VideoInput(torch.randn(4, F_, D, generator=g), torch.ones(4, F_, dtype=torch.bool)),
    )
    b = E.Browser(gal, "meanP", k=2)
    assert len(b.table(0)) >= 2  # ranking needs only the features
    with pytest.raises(VideoReadError, match=r"split 'test' of 'toy': no video file for v\d at .*make data"):
        b.figure(0)
    with pytest.raises(VideoReadError, match="no video file for v2"):
        E.play(gone, "v2")


# --------------------------------------------------------------------------------------------- bad input
def test_bad_input_names_the_thing_and_the_fix(test_split):
    gal = toy_gallery(test_split)
    b = E.Browser(gal, "meanP")
    n = len(test_split.texts)
    with pytest.raises(ValueError, match="caption is empty"):
        b.table("   ")
    with pytest.raises(IndexError, match=rf"caption index {n} is out of range: .* has {n} captions \(0 to {n - 1}\)"):
        b.table(n)
    with pytest.raises(IndexError, match="out of range"):
        b.table(-1)
    with pytest.raises(ValueError, match="no text encoder"):
        b.table("a red circle")
    with pytest.raises(UnknownNameError, match="unknown head 'meanp'.*meanP.*trained head"):
        E.Browser(gal, "meanp")
    with pytest.raises(TypeError, match="registered name"):
        E.Browser(gal, 3.5)
    with pytest.warns(UserWarning, match="untrained"):
        E.Browser(gal, "xpool")
    with pytest.raises(ValueError, match="k must be >= 1"):
        E.Browser(gal, "meanP", k=0)
