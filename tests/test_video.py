"""Frame sampling: modes, padding and masks, resizing, and every kind of bad video file."""

import numpy as np
import pytest

from tvrlib.errors import VideoReadError
from tvrlib.synthetic.benchmark import write_video
from tvrlib.video import resize_center_crop, sample_frames, sample_indices


def _video(path, n=20, h=48, w=64):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, :, :, 0] = (i * 5) % 256  # frame index encoded in the red channel
    write_video(frames, path, fps=8)
    return path


def test_uniform_takes_first_and_last_frame():
    assert sample_indices(45, 12, "uniform").tolist() == list(range(0, 45, 4))
    idx = sample_indices(100, 12, "uniform")
    assert idx[0] == 0 and idx[-1] == 99 and len(idx) == 12


def test_segment_middle_and_random_stay_in_their_segments():
    mid = sample_indices(120, 12, "segment_middle")
    assert mid.tolist() == [4 + 10 * k for k in range(12)]
    rnd = sample_indices(120, 12, "random_in_segment", rng=np.random.default_rng(0))
    assert all(10 * k <= r < 10 * (k + 1) for k, r in enumerate(rnd))
    with pytest.raises(ValueError, match="rng"):
        sample_indices(120, 12, "random_in_segment")
    with pytest.raises(ValueError, match="unknown frame sampling mode"):
        sample_indices(120, 12, "every_other")


def test_sample_frames_shapes_and_content(tmp_path):
    p = _video(tmp_path / "v.mp4", n=45)
    frames, mask, idx = sample_frames(p, 12, size=32, return_indices=True)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8 and mask.all()
    assert idx.tolist() == list(range(0, 45, 4))
    assert abs(int(frames[3, 16, 16, 0]) - 60) <= 2  # frame 12 has red = 60 (lossless up to colour conversion)


def test_short_video_is_padded_and_masked(tmp_path):
    p = _video(tmp_path / "short.mp4", n=5)
    frames, mask = sample_frames(p, 12, size=32)
    assert mask.tolist() == [True] * 5 + [False] * 7
    assert (frames[5:] == 0).all() and frames[:5].any()


def test_resize_keeps_aspect_and_crops_centre():
    x = np.zeros((1, 40, 80, 3), np.uint8)
    x[:, :, 20:60] = 255  # a centred white band, half the width
    y = resize_center_crop(x, 20)
    assert y.shape == (1, 20, 20, 3) and (y[0, :, 2:18] > 200).all()


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(VideoReadError, match="not found: .*nothere.mp4"):
        sample_frames(tmp_path / "nothere.mp4")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 100)
    with pytest.raises(VideoReadError, match="notes.mp4"):
        sample_frames(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        sample_frames(p)


def test_truncated_file(tmp_path):
    p = _video(tmp_path / "full.mp4", n=40, h=64, w=64)
    t = tmp_path / "truncated.mp4"
    t.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    with pytest.raises(VideoReadError, match="truncated.mp4"):
        sample_frames(t)


def test_zero_frame_video(tmp_path):
    import av

    p = tmp_path / "zero.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=8)
        s.width = s.height = 32
    with pytest.raises(VideoReadError, match="zero.mp4"):
        sample_frames(p)


# ----------------------------------------------------------------------------- small and odd frame sizes
# decord 0.6 mis-sizes the RGB rows of some widths (8, 16, 24, 48, 72...): get_batch raises for a valid
# file. sample_frames must then decode with PyAV, and must keep decord's output where decord works.


def _patterned(n, h, w):
    """Red = 5 * frame index, green = a ramp over columns (shows misaligned rows), blue = 0."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[..., 0] = (np.arange(n) * 5 % 256)[:, None, None]
    frames[..., 1] = (np.arange(w) * 7 % 256)[None, None, :]
    return frames


def _write(path, frames, fps=8, container_options=None):
    """Lossless H.264 like ``write_video``, with optional muxer options (e.g. faststart) and any container."""
    import av

    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        s.options = {"qp": "0", "preset": "ultrafast"}
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


@pytest.mark.parametrize("h,w", [(48, 48), (17, 33), (30, 50), (48, 64), (64, 48), (24, 24)])
def test_small_and_odd_sizes_decode_to_the_right_content(tmp_path, h, w):
    from tvrlib.video import open_video, read_frames

    src = _patterned(20, h, w)
    p = tmp_path / f"v{h}x{w}.mp4"
    write_video(src, p, fps=8)
    frames, mask, idx = sample_frames(p, 6, size=16, return_indices=True)
    assert frames.shape == (6, 16, 16, 3) and mask.all() and idx.tolist() == [0, 3, 7, 11, 15, 19]
    red = frames[..., 0].astype(int)
    assert (np.abs(red - (idx * 5)[:, None, None]) <= 2).all()  # each frame is the one asked for
    assert (frames[..., 2] <= 2).all()
    got = read_frames(open_video(p), idx, p)  # full resolution: every pixel, rows aligned
    assert got.shape == (6, h, w, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - src[idx].astype(int)).max() <= 2


def test_decord_failure_falls_back_to_pyav(tmp_path, monkeypatch):
    import decord

    p = _video(tmp_path / "v.mp4", n=20, h=30, w=50)
    want, _ = sample_frames(p, 5, size=16)

    def broken(self, indices):
        raise decord.DECORDError("Check failed: from_size == to_size")

    monkeypatch.setattr(decord.VideoReader, "get_batch", broken)
    got, mask = sample_frames(p, 5, size=16)
    assert mask.all() and np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_decord_wrong_shape_falls_back_to_pyav(tmp_path, monkeypatch):
    import decord

    p = _video(tmp_path / "v.mp4", n=20, h=30, w=50)

    class Fake:
        def asnumpy(self):
            return np.zeros((5, 30, 50, 4), np.uint8)  # what decord's vr[i] gives for width 48

    monkeypatch.setattr(decord.VideoReader, "get_batch", lambda self, indices: Fake())
    frames, _, idx = sample_frames(p, 5, size=16, return_indices=True)
    assert (np.abs(frames[..., 0].astype(int) - (idx * 5)[:, None, None]) <= 2).all()


def test_decord_output_is_kept_where_decord_works(tmp_path, monkeypatch):
    import decord

    import tvrlib.video as video

    p = _video(tmp_path / "v.mp4", n=20, h=48, w=64)
    vr = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=1)
    direct = vr.get_batch(sample_indices(20, 6).tolist()).asnumpy()
    monkeypatch.setattr(video, "_pyav_frames", lambda *a: pytest.fail("PyAV used although decord works"))
    got = video.read_frames(video.open_video(p), sample_indices(20, 6), p)
    assert np.array_equal(got, direct)  # bit-identical: regression outputs do not move


def test_file_decord_cannot_open_is_read_with_pyav(tmp_path, monkeypatch):
    import decord

    from tvrlib.video import PyAVVideo, open_video

    def refuse(*a, **k):
        raise decord.DECORDError("cannot open")

    monkeypatch.setattr(decord, "VideoReader", refuse)
    mp4 = _video(tmp_path / "v.mp4", n=20, h=48, w=48)
    mkv = _write(tmp_path / "v.mkv", _patterned(13, 17, 33))  # Matroska stores no frame count: count by decoding
    for p, n in ((mp4, 20), (mkv, 13)):
        vr = open_video(p)
        assert isinstance(vr, PyAVVideo) and len(vr) == n
        frames, mask, idx = sample_frames(p, 4, size=16, return_indices=True)
        assert mask.all() and (np.abs(frames[..., 0].astype(int) - (idx * 5)[:, None, None]) <= 2).all()


# ----------------------------------------------------------------------------- still corrupt with the fallback


def test_random_bytes_small_width(tmp_path):
    p = tmp_path / "noise.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoReadError, match="noise.mp4.*corrupt"):
        sample_frames(p)


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_small_width_file(tmp_path, faststart):
    # moov at the end: nothing opens it; moov first (faststart): it opens, but frames are missing
    full = _write(
        tmp_path / "full.mp4",
        _patterned(40, 48, 48),
        container_options={"movflags": "faststart"} if faststart else None,
    )
    t = tmp_path / "cut48.mp4"
    t.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoReadError, match="cut48.mp4.*(corrupt|truncated)"):
        sample_frames(t)


def test_both_decoders_failing_names_the_file(tmp_path, monkeypatch):
    import decord

    import tvrlib.video as video

    p = _video(tmp_path / "both.mp4", n=10, h=30, w=50)

    def broken(self, indices):
        raise decord.DECORDError("boom")

    def broken_av(*a):
        raise ValueError("also boom")

    monkeypatch.setattr(decord.VideoReader, "get_batch", broken)
    monkeypatch.setattr(video, "_pyav_frames", broken_av)
    with pytest.raises(
        VideoReadError,
        match=r"decoding frames .* of .*both.mp4 failed \(decord: DECORDError; "
        r"PyAV: ValueError: also boom\).*truncated or corrupt",
    ):
        sample_frames(p, 4)
