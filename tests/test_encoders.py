"""Encoders and feature encoding: shapes, masks, bad captions, missing weights, caching."""
import warnings

import numpy as np
import open_clip
import pytest
import torch

from tvrlib.cache import FeatureCache
from tvrlib.datasets import load_dataset
from tvrlib.encoders import load_encoder, register_configs
from tvrlib.errors import AnnotationError, UnknownNameError, VideoReadError, WeightsNotFoundError
from tvrlib.features import encode_texts, encode_videos


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    register_configs()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny-random.pt"
    torch.save(open_clip.create_model("tvr-tiny").state_dict(), path)
    return load_encoder("tvr-tiny", pretrained=str(path), device="cpu")


def test_shapes(enc):
    D = enc.embed_dim
    f = enc.encode_frames(np.zeros((3, enc.image_size, enc.image_size, 3), np.uint8))
    assert f.cls.shape == (3, D) and f.patches.shape == (3, (enc.image_size // 32) ** 2, D)  # resnet: stride 32
    assert torch.allclose(f.cls, f.patches.mean(1), atol=1e-5)  # pooled = mean of the projected cells
    t = enc.encode_text(["a red circle", "an orange square moves to the left"])
    assert t.sentence.shape == (2, D) and t.words.shape == (2, enc.context_length, D)
    assert t.mask.dtype == torch.bool and t.mask.sum(1).tolist() == [5, 9]  # SOT + words + EOT


def test_sentence_embedding_is_the_eot_word_token(enc):
    t = enc.encode_text(["a blue diamond grows"])
    eot = int(t.mask.sum()) - 1
    assert torch.allclose(t.sentence[0], t.words[0, eot], atol=1e-5)
    ref = enc.model.encode_text(enc.tokenize(["a blue diamond grows"]))
    assert torch.allclose(t.sentence, ref, atol=1e-5)


def test_patch_tokens_match_open_clip_pooled_path(enc):
    x = np.random.default_rng(0).integers(0, 255, (2, enc.image_size, enc.image_size, 3), dtype=np.uint8)
    f = enc.encode_frames(x)
    ref = enc.model.encode_image(enc.preprocess(x))
    assert torch.allclose(f.cls, ref, atol=1e-5)


def test_empty_and_whitespace_captions_are_rejected(enc):
    for bad in ("", "   ", "\n"):
        with pytest.raises(AnnotationError, match="caption 1 is empty"):
            enc.encode_text(["a red circle", bad])


def test_long_caption_is_truncated_with_a_warning(enc):
    with pytest.warns(UserWarning, match="exceed the context length"):
        t = enc.encode_text(["a red circle " * 40])
    assert t.mask.all()


def test_wrong_frame_size_is_rejected(enc):
    with pytest.raises(ValueError, match="sample them with size="):
        enc.encode_frames(np.zeros((1, 224, 224, 3), np.uint8))


def test_unknown_model_and_missing_weights():
    with pytest.raises(UnknownNameError, match="unknown CLIP model"):
        load_encoder("ViT-Q-99")
    with pytest.raises(WeightsNotFoundError, match="weights file not found"):
        load_encoder("tvr-tiny", pretrained="/no/such/weights.pt")
    with pytest.raises(UnknownNameError, match="no pretrained tag"):
        load_encoder("ViT-B-32", pretrained="not-a-tag")


def test_missing_pretrained_weights_offline_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    monkeypatch.setenv("TVR_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("TVR_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(WeightsNotFoundError, match="ViT-B-32-openai.pt"):
        load_encoder("ViT-B-32", pretrained="openai", device="cpu")


def test_encode_videos_cached_and_keyed(enc, tiny_benchmark, tmp_path):
    data = load_dataset("synthetic", "val", root=tiny_benchmark, config="tiny")
    cache = FeatureCache(tmp_path / "cache")
    a = encode_videos(enc, data, 12, cache=cache, progress=False)
    assert a.frames.shape == (data.num_videos, 12, enc.embed_dim) and a.mask.all()
    n = len(cache.entries())
    b = encode_videos(enc, data, 12, cache=cache, progress=False)
    assert torch.equal(a.frames, b.frames) and len(cache.entries()) == n  # reused, not recomputed
    c = encode_videos(enc, data, 6, cache=cache, progress=False)  # another frame count: another key
    assert c.frames.shape[1] == 6 and len(cache.entries()) == n + 1
    t = encode_texts(enc, data.texts, cache=cache)
    assert t.sentence.shape == (len(data.texts), enc.embed_dim)


def test_unreadable_video_raises_or_is_skipped(enc, tiny_benchmark, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_benchmark, root)
    data = load_dataset("synthetic", "val", root=root, config="tiny")
    bad = data.videos[1]
    bad.path.write_bytes(b"garbage")
    with pytest.raises(VideoReadError, match=bad.video_id):
        encode_videos(enc, data, 12, cache=False, progress=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        f = encode_videos(enc, data, 12, cache=False, progress=False, on_error="skip")
    assert bad.video_id in f.failed and not f.mask[1].any() and f.mask[0].all()
