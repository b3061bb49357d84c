"""Issue 14, the image side: pretraining groups that differ only in position, zero-shot position accuracy, and
the diagnostics that show whether frame features (and captions) carry what a twin changes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from tvrlib.diagnostics import text_cosines, twin_frame_cosines
from tvrlib.pretrain import (
    PretrainConfig,
    checkpoint_path,
    position_groups,
    pretrain_config,
    zero_shot_position_accuracy,
)
from tvrlib.synthetic.benchmark import STILL_GROUP, load_config, load_stills
from tvrlib.synthetic.captions import canonical_position

CELLS = [(r, c) for r in range(3) for c in range(3)]


def test_position_groups_vary_only_the_main_objects_cell_and_say_where_it_is(tiny_benchmark):
    specs, texts, _ = load_stills(load_config("tiny"), "train")
    same_specs, same_texts = position_groups(specs, texts, 0.0, seed=0)
    assert same_specs == specs and same_texts == texts  # share 0: the stills as generated
    new_specs, new_texts = position_groups(specs, texts, 1.0, seed=0)
    assert len(new_specs) == len(specs) and new_specs != specs
    changed = 0
    for g in range(len(specs) // STILL_GROUP):
        group = new_specs[g * STILL_GROUP : (g + 1) * STILL_GROUP]
        if group == specs[g * STILL_GROUP : (g + 1) * STILL_GROUP]:
            continue  # too few free cells: left as it was
        changed += 1
        cells = [s.objects[0].cell for s in group]
        assert len(set(cells)) == STILL_GROUP  # four different places
        for s in group:  # nothing else differs
            assert s.background == group[0].background and s.distractor == group[0].distractor
            assert s.objects[0].obj == group[0].objects[0].obj and s.objects[1:] == group[0].objects[1:]
        for s, t in zip(group, new_texts[g * STILL_GROUP : (g + 1) * STILL_GROUP]):
            r, c = s.objects[0].cell
            if (r, c) == (1, 1):
                assert "center" in t or "middle" in t, t
            else:
                words = {["top", "", "bottom"][r], ["left", "", "right"][c]} - {""}
                assert all(w in t for w in words), (t, (r, c))
    assert changed > 0
    assert position_groups(specs, texts, 1.0, seed=0) == (new_specs, new_texts)  # deterministic


def test_the_default_pretraining_keeps_its_checkpoint_name_and_position_groups_change_it():
    cfg, pcfg = load_config("tiny"), PretrainConfig()
    old = {k: v for k, v in asdict(pcfg).items() if k != "position_groups"}  # the fields before the addition
    h = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:8]
    assert checkpoint_path(cfg, 0, pcfg, "tvr-tiny").name == f"tvr-tiny_tiny-{cfg.digest()}_pt{h}_seed0.pt"
    assert checkpoint_path(cfg, 0, PretrainConfig(position_groups=0.3)).name != checkpoint_path(cfg, 0, pcfg).name
    assert checkpoint_path(cfg, 0, pcfg, "tvr-tiny-vit").name.startswith("tvr-tiny-vit_tiny-")
    # the default tiny CLIP is pretrained with its own settings (position groups, 6 epochs) unless told otherwise
    assert pretrain_config("tvr-tiny-attn") == PretrainConfig(epochs=6, position_groups=1 / 3)
    assert pretrain_config("tvr-tiny") == pcfg
    attn = checkpoint_path(cfg, 0, model_name="tvr-tiny-attn")
    assert (
        attn
        == checkpoint_path(cfg, 0, pretrain_config("tvr-tiny-attn"), "tvr-tiny-attn")
        != checkpoint_path(cfg, 0, pcfg, "tvr-tiny-attn")
    )


class _PositionEncoder:
    """A fake encoder that sees only position: a frame's feature is where its brightest pixel block is, a prompt's
    is the cell its position phrase names (so zero-shot position accuracy must be 1, and 1/9-ish if scrambled)."""

    image_size = 6

    def __init__(self, scramble=False):
        self.scramble = scramble

    def encode_frames(self, frames, with_patches=False):
        x = torch.as_tensor(frames).float().mean(-1)  # [N, 6, 6]
        cells = x.view(len(x), 3, 2, 3, 2).mean((2, 4)).flatten(1)  # [N, 9]
        return type("F", (), {"cls": torch.nn.functional.one_hot(cells.argmax(1), 9).float()})

    def encode_text(self, texts, with_words=False):
        phrases = [canonical_position(c) for c in CELLS]
        idx = [next(i for i, p in enumerate(phrases) if t.endswith(p)) for t in texts]
        if self.scramble:
            idx = [(i + 1) % 9 for i in idx]
        return type("T", (), {"sentence": torch.nn.functional.one_hot(torch.tensor(idx), 9).float()})


def test_zero_shot_position_accuracy_names_the_cell():
    from tvrlib.synthetic.world import Initial, Obj, StillSpec

    specs, frames = [], []
    for k, cell in enumerate(CELLS * 2):
        specs.append(StillSpec("black", (Initial(Obj(["red", "blue"][k % 2], "circle"), cell, "medium"),)))
        img = np.zeros((6, 6, 3), np.uint8)
        img[2 * cell[0] : 2 * cell[0] + 2, 2 * cell[1] : 2 * cell[1] + 2] = 255
        frames.append(img)
    frames = np.stack(frames)
    right = zero_shot_position_accuracy(_PositionEncoder(), frames, specs)
    assert right == {"accuracy": 1.0, "row_accuracy": 1.0, "column_accuracy": 1.0, "n": 18}
    wrong = zero_shot_position_accuracy(_PositionEncoder(scramble=True), frames, specs)
    assert wrong["accuracy"] == 0.0


class _PixelEncoder:
    """Frame features = the frame's pixels: twins whose frames differ get cosines below 1."""

    image_size = 32

    def encode_frames(self, frames, with_patches=False):
        return type("F", (), {"cls": torch.as_tensor(frames).float().flatten(1)})


def test_twin_frame_cosines_compare_the_most_different_frame_of_each_pair(tiny_benchmark):
    from tvrlib.datasets import load_dataset

    test = load_dataset("synthetic", "test", root=tiny_benchmark, config="tiny")
    out = twin_frame_cosines(_PixelEncoder(), test, "direction", n_random=10)
    twins = out[out["pair"] == "twin"]
    n_direction = sum(t["factor"] == "direction" for t in test.meta["twins"])
    assert len(twins) == n_direction and (out["pair"] == "random").sum() <= 10
    assert (twins["pixel_difference"] > 0).all()  # a direction twin differs somewhere
    assert (twins["cosine"] < 1 - 1e-6).all() and out["cosine"].between(-1, 1 + 1e-6).all()
    with pytest.raises(ValueError, match="no 'nope' twin pairs"):
        twin_frame_cosines(_PixelEncoder(), test, "nope")


def test_text_cosines_is_one_row_per_variant():
    class Enc:
        def encode_text(self, texts, with_words=False):
            return type("T", (), {"sentence": torch.tensor([[1.0, 0], [1, 0], [0, 1]])[: len(texts)]})

    t = text_cosines(Enc(), "a", {"same": "a", "other": "b"})
    assert isinstance(t, pd.DataFrame) and list(t.index) == ["same", "other"]
    assert t.loc["same", "cosine"] == pytest.approx(1.0) and t.loc["other", "cosine"] == pytest.approx(0.0)


@pytest.mark.parametrize("name, cells", [("tvr-tiny-attn", 4), ("tvr-tiny-rn", 9), ("tvr-tiny-vit", 64)])
def test_position_aware_towers_give_the_models_own_embedding_and_one_token_per_cell(name, cells):
    import open_clip

    from tvrlib.encoders import ClipEncoder, create_model, register_configs

    register_configs()
    torch.manual_seed(0)
    model = create_model(name).eval()
    enc = ClipEncoder(model, open_clip.get_tokenizer(name), name, "test", torch.device("cpu"))
    frames = np.random.default_rng(0).integers(0, 256, (2, enc.image_size, enc.image_size, 3), dtype=np.uint8)
    out = enc.encode_frames(frames)
    with torch.no_grad():
        ref = model.encode_image(enc.preprocess(frames))
    torch.testing.assert_close(out.cls, ref)  # the CLS embedding is exactly open_clip's image embedding
    assert out.patches.shape == (2, cells, enc.embed_dim)
