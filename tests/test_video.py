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
