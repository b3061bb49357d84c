"""Encoders and feature encoding: shapes, masks, bad captions, missing weights, caching; the tiny CLIP's
pretraining (schedule, clamp, checkpoint name and bytes) and :func:`tvrlib.models.get_encoder`."""

import warnings

import numpy as np
import pytest
import torch

from tvrlib.cache import FeatureCache
from tvrlib.datasets import load_dataset
from tvrlib.encoders import TINY_MODEL, create_model, load_encoder, register_configs
from tvrlib.errors import AnnotationError, UnknownNameError, VideoReadError, WeightsNotFoundError
from tvrlib.features import encode_texts, encode_videos


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


def test_text_forward_over_the_captions_length_equals_the_full_context(enc):
    # text_forward runs only up to the batch's last EOT (the mask is causal): the same sentence embeddings and word
    # tokens as open_clip's full-context pass, with gradients, and zeros for the padding past the longest caption
    caps = ["a red square slides from right to left while a blue circle waits", "a green triangle"]
    tokens = enc.tokenize(caps)
    out = enc.text_forward(tokens, with_words=True)
    m = enc.model
    x = m.ln_final(m.transformer(m.token_embedding(tokens) + m.positional_embedding, attn_mask=m.attn_mask))
    words = x @ m.text_projection
    assert out.words.shape == words.shape and out.sentence.requires_grad
    assert torch.allclose(out.sentence, m.encode_text(tokens), atol=1e-5)
    assert torch.allclose(out.words[out.mask], words[out.mask], atol=1e-5)
    n = int(tokens.argmax(-1).max()) + 1  # past the longest caption's EOT: zeros
    assert n < tokens.shape[1] and out.words[:, n:].abs().max() == 0


def test_max_words_truncates_as_clip4clip_and_keys_the_cache(tmp_path):
    register_configs()
    torch.manual_seed(0)
    path = tmp_path / "tiny-random.pt"
    torch.save(create_model("tvr-tiny").state_dict(), path)
    e = load_encoder("tvr-tiny", pretrained=str(path), device="cpu")
    short, long = "a green triangle", "a red square slides from right to left while a blue circle waits"
    full = e.encode_text([short, long])
    native = e.context_length
    e.set_max_words(8)
    assert e.context_length == 8
    with pytest.warns(UserWarning, match="exceed the context length 8"):
        cut = e.encode_text([short, long])
    assert cut.tokens.shape == (2, 8) and cut.words.shape == (2, 8, e.embed_dim)
    assert int(cut.tokens[1].argmax()) == 7 and cut.mask[1].all()  # the end token closes the truncated caption
    assert torch.allclose(cut.sentence[0], full.sentence[0], atol=1e-5)  # a short caption: the same embedding
    assert not torch.allclose(cut.sentence[1], full.sentence[1], atol=1e-3)  # a long one: its first 6 words only
    e.set_max_words(10_000)
    assert e.context_length == native  # never longer than the model's context
    with pytest.raises(ValueError, match="max_words=2"):
        e.set_max_words(2)
    e.set_max_words(None)
    keys = []
    for n in (None, 8):
        e.set_max_words(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encode_texts(e, [short, long], cache=FeatureCache(tmp_path / "cache"))
        keys.append({k for k, _ in FeatureCache(tmp_path / "cache").entries()[["key", "size"]].values})
    assert len(keys[1]) == 2  # a second entry: the two lengths never share one


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


def test_missing_tiny_checkpoint_names_the_file_and_the_command(monkeypatch, tmp_path):
    """The low level never trains: a missing tiny-CLIP checkpoint is an error that says how to make it."""
    monkeypatch.setenv("TVR_MODELS_DIR", str(tmp_path / "models"))
    missing = tmp_path / "models" / "tvr-tiny_quick-0123_pt33e4ca12_seed0.pt"
    with pytest.raises(WeightsNotFoundError) as e:
        load_encoder("tvr-tiny", pretrained=missing, device="cpu")
    msg = str(e.value)
    assert str(missing) in msg and "make data" in msg and "python -m tvrlib prepare --profile quick" in msg
    assert "ViT-B-32" not in msg  # not the real path's advice
    with pytest.raises(WeightsNotFoundError, match="pretrained=None") as e:
        load_encoder("tvr-tiny", device="cpu")
    assert "python -m tvrlib prepare --profile quick" in str(e.value) and "get_encoder" in str(e.value)


def test_get_encoder_ensures_the_tiny_checkpoint_then_loads_it(monkeypatch, tmp_path):
    import tvrlib.pretrain
    from tvrlib.models import get_encoder

    register_configs()
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    torch.save(create_model(TINY_MODEL).state_dict(), ckpt)
    calls = []

    def fake_ensure(benchmark, seed=0, **kw):
        calls.append((benchmark, seed))
        return ckpt

    monkeypatch.setattr(tvrlib.pretrain, "ensure_tiny_clip", fake_ensure)
    enc = get_encoder(TINY_MODEL, device="cpu", benchmark="tiny", seed=3)
    assert calls == [("tiny", 3)] and enc.weights_id.startswith("file-")
    assert enc.weights_id == load_encoder(TINY_MODEL, ckpt, device="cpu").weights_id
    enc = get_encoder(TINY_MODEL, str(ckpt), device="cpu")  # a given checkpoint is loaded as it is
    assert len(calls) == 1 and enc.weights_id.startswith("file-")


def test_encoders_module_does_not_train():
    import ast
    from pathlib import Path

    import tvrlib.encoders

    tree = ast.parse(Path(tvrlib.encoders.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"pretrain", "models", "tvrlib.pretrain", "tvrlib.models"}
    assert not hasattr(tvrlib.encoders, "available_models") and not hasattr(tvrlib.encoders, "normalize")


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


# ------------------------------------------------------------------------------ the tiny CLIP's pretraining
def _former_pretrain_schedule(opt, total, warm):
    """The schedule pretrain.py built by hand before it used tvrlib.optim.warmup_cosine."""
    return torch.optim.lr_scheduler.SequentialLR(
        opt,
        [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warm),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm)),
        ],
        milestones=[warm],
    )


def _lr_sequence(make, total, warm):
    params = [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.AdamW(
        [{"params": params[:1], "weight_decay": 0.1}, {"params": params[1:], "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt, total, warm)
        out = [[g["lr"] for g in opt.param_groups]]
        for _ in range(total):
            opt.step()
            sched.step()
            out.append([g["lr"] for g in opt.param_groups])
    return out


@pytest.mark.parametrize("total", [1, 2, 7, 20, 39, 40, 41, 117, 351])
def test_pretrain_schedule_is_the_former_one_exactly(total):
    from tvrlib.optim import warmup_cosine
    from tvrlib.pretrain import PretrainConfig

    warm = max(1, int(PretrainConfig().warmup_fraction * total))
    shared = _lr_sequence(lambda o, t, w: warmup_cosine(o, t, w, start_factor=0.01), total, warm)
    assert shared == _lr_sequence(_former_pretrain_schedule, total, warm)  # float equality, every step


def test_pretrain_settings_and_checkpoint_name_are_unchanged():
    import hashlib
    import json
    from dataclasses import asdict

    from tvrlib.losses import MAX_LOGIT_SCALE
    from tvrlib.pretrain import PretrainConfig

    pcfg = PretrainConfig()
    assert pcfg.max_logit_scale == MAX_LOGIT_SCALE == float(np.log(100.0))  # the same float, bit for bit
    # the settings hash in the checkpoint's file name: existing checkpoints keep being found
    assert hashlib.sha256(json.dumps(pcfg.name_fields(), sort_keys=True).encode()).hexdigest()[:8] == "33e4ca12"
    assert set(asdict(pcfg)) - set(pcfg.name_fields()) == {"position_groups"}  # a later addition, at its default


def test_pretraining_is_reproducible_to_the_byte_and_written_atomically(
    tiny_benchmark, monkeypatch, tmp_path, one_thread
):
    from tvrlib.pretrain import PretrainConfig, ensure_tiny_clip, pretrain_history
    from tvrlib.synthetic.benchmark import load_config

    monkeypatch.setenv("TVR_GENERATED_DIR", str(tiny_benchmark.parent))
    pcfg = PretrainConfig(epochs=1, batch_size=16)
    paths = []
    for run in ("a", "b"):
        monkeypatch.setenv("TVR_MODELS_DIR", str(tmp_path / run))
        paths.append(ensure_tiny_clip(load_config("tiny"), seed=0, pcfg=pcfg, progress=False))
        assert sorted(p.name for p in (tmp_path / run).iterdir()) == sorted(
            [paths[-1].name, paths[-1].with_suffix(".json").name]
        )
    a, b = paths
    assert a.name == b.name and a.read_bytes() == b.read_bytes()  # no temp name or pid inside the file
    assert pretrain_history(a)["history"] == pretrain_history(b)["history"]
    enc = load_encoder(TINY_MODEL, a, device="cpu")
    assert enc.weights_id == load_encoder(TINY_MODEL, b, device="cpu").weights_id
    assert ensure_tiny_clip(load_config("tiny"), seed=0, pcfg=pcfg, progress=False) == b  # reused, not retrained


def test_pretraining_a_benchmark_smaller_than_a_batch_uses_one_batch(tiny_benchmark, monkeypatch, tmp_path, one_thread):
    """``prepare --profile tiny``: 64 stills, batches of 128 would mean zero steps and a NaN loss history."""
    import json

    from tvrlib.pretrain import PretrainConfig, ensure_tiny_clip, pretrain_history
    from tvrlib.synthetic.benchmark import load_config

    monkeypatch.setenv("TVR_GENERATED_DIR", str(tiny_benchmark.parent))
    monkeypatch.setenv("TVR_MODELS_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="batches of 64 instead of 128"):
        path = ensure_tiny_clip(load_config("tiny"), pcfg=PretrainConfig(epochs=1, batch_size=128), progress=False)
    record = pretrain_history(path)
    assert record["batch_size_used"] == 64 and np.isfinite(record["history"][0]["loss"])
    json.loads(path.with_suffix(".json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the history"))


def test_token_strings_label_every_word_token_position(enc):
    """One label per valid word-token position of encode_text(with_words=True), start and end tokens included."""
    caption = "a red square moves to the left"
    labels = enc.token_strings(caption)
    feats = enc.encode_text([caption], with_words=True)
    assert len(labels) == int(feats.mask[0].sum())
    assert labels[0] == "<start_of_text>" and labels[-1] == "<end_of_text>"
    assert labels[1:-1] == caption.split()
