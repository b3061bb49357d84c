"""CLIP encoders through open_clip: per frame the CLS embedding and the patch tokens,
per caption the sentence (EOT) embedding and the word tokens with their mask.

Any open_clip model name works. Two paths use the same code:

* the **embedded default** ``clip_model="tvr-tiny-attn"`` (or another of :data:`TINY_MODELS`): a small
  open_clip config shipped in ``tvrlib/model_configs/`` and registered with open_clip, pretrained on the synthetic
  benchmark's (frame, static description) pairs by :mod:`tvrlib.pretrain`. This module only
  *loads* a checkpoint (``pretrained=<file>``); :func:`tvrlib.models.get_encoder` is the call
  that also trains it when it is missing;
* the **real path** ``clip_model="ViT-B-32", pretrained="openai"`` (or a local weights
  file). Without network access the weights must already be on disk; if they are not,
  :class:`~tvrlib.errors.WeightsNotFoundError` says what to download and where to put it.

Shapes (``D`` = joint embedding size, ``P`` = patches per frame, ``L`` = context length):

* ``encode_frames(uint8 [N, S, S, 3]) -> FrameFeatures(cls [N, D], patches [N, P, D])``
* ``encode_text(list[str]) -> TextFeatures(sentence [T, D], words [T, L, D], mask bool [T, L])``

Patch and word tokens are mapped into the joint space the same way the pooled
embeddings are (``ln_post``/``ln_final`` then the projection), as TS2-Net and DRL do.
For a CNN image tower with a global average pool (open_clip's timm adapter) the "patches"
are the cells of the final feature map passed through the same projection as the
pooled feature, so the CLS embedding is exactly their mean; with timm's attention pool
(``timm_pool: "abs_attn"``) they are the pool's outputs at the cells. For CLIP's ResNet design
(open_clip's ModifiedResNet, which ends in an attention pool with position embeddings)
they are the attention pool's outputs at the cells, and the CLS embedding is its output
at the mean token.
No output is L2-normalised here; heads normalise where their paper does.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import AnnotationError, UnknownNameError, WeightsNotFoundError
from .paths import models_dir

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
#: the embedded default: the tiny CLIP whose image tower keeps where things are (an attention pool with position
#: embeddings over a ResNet trunk, pretrained with still groups that differ only in position; issue 14)
TINY_MODEL = "tvr-tiny-attn"
#: every tiny config shipped in ``model_configs/``: no downloadable weights, pretrained here (:mod:`tvrlib.pretrain`).
#: ``tvr-tiny`` (global average pool, position-blind) is the former default, kept as the "before" picture
TINY_MODELS = ("tvr-tiny-attn", "tvr-tiny", "tvr-tiny-rn", "tvr-tiny-vit")
_registered = False


def register_configs() -> None:
    """Register tvrlib's model configs (:data:`TINY_MODELS`) with open_clip (idempotent)."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


@dataclass
class FrameFeatures:
    cls: torch.Tensor  # [N, D]
    patches: torch.Tensor | None  # [N, P, D]


@dataclass
class TextFeatures:
    sentence: torch.Tensor  # [T, D]
    words: torch.Tensor | None  # [T, L, D]
    mask: torch.Tensor  # bool [T, L]
    tokens: torch.Tensor  # int [T, L]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ClipEncoder:
    """An open_clip model in eval mode with token-level outputs.

    Build with :func:`load_encoder`. ``weights_id`` identifies the weights (a file digest,
    ``"openai"`` for a named pretrained tag, or ``"random-init-seed<k>"``) and goes
    into every feature-cache key.
    """

    def __init__(self, model, tokenizer, model_name: str, weights_id: str, device: torch.device):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.weights_id = weights_id
        self.device = device
        visual = model.visual
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        pp = getattr(visual, "preprocess_cfg", None) or {}
        import open_clip

        self.mean = torch.tensor(pp.get("mean", open_clip.OPENAI_DATASET_MEAN), dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(pp.get("std", open_clip.OPENAI_DATASET_STD), dtype=torch.float32).view(1, 3, 1, 1)
        self.context_length = int(getattr(tokenizer, "context_length", None) or model.context_length)
        self.embed_dim = int(
            model.text_projection.shape[1]
            if not isinstance(model.text_projection, torch.nn.Linear)
            else model.text_projection.out_features
        )

    def __repr__(self) -> str:
        return (
            f"ClipEncoder({self.model_name!r}, weights={self.weights_id!r}, image_size={self.image_size}, "
            f"embed_dim={self.embed_dim}, context_length={self.context_length}, device={self.device})"
        )

    @property
    def cache_parts(self) -> dict:
        return {"encoder": self.model_name, "weights": self.weights_id, "image_size": self.image_size}

    # -- images -------------------------------------------------------------------------------------
    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``uint8 [N, S, S, 3]`` -> normalised ``float [N, 3, S, S]`` on the encoder's device."""
        x = torch.as_tensor(frames)
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [N, H, W, 3], got {tuple(x.shape)} {x.dtype}")
        if x.shape[1] != self.image_size or x.shape[2] != self.image_size:
            raise ValueError(
                f"frames are {x.shape[1]}x{x.shape[2]} but {self.model_name} expects "
                f"{self.image_size}x{self.image_size}; sample them with size={self.image_size}"
            )
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return ((x - self.mean) / self.std).to(self.device)

    def image_forward(self, pixels: torch.Tensor, with_patches: bool = True) -> FrameFeatures:
        """Forward normalised pixels ``[N, 3, S, S]`` (keeps gradients; used by fine-tuning)."""
        visual = self.model.visual
        if hasattr(visual, "attnpool"):  # open_clip's ModifiedResNet (CLIP's RN towers): an attention pool
            fmap = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(pixels)))))
            tokens = _attention_pool_tokens(visual.attnpool, fmap)  # [N, 1 + h*w, D]
            return FrameFeatures(tokens[:, 0], tokens[:, 1:] if with_patches else None)
        if hasattr(visual, "trunk"):  # open_clip's TimmModel (a CNN tower)
            fmap = visual.trunk.forward_features(pixels)  # [N, C, h, w]
            pooled = visual.head(visual.trunk.forward_head(fmap))  # the tower's pool, then its projection
            pool = getattr(visual.head, "pool", None)
            if not with_patches:
                patches = None
            elif pool is not None and hasattr(pool, "pool_type"):  # timm's attention pool: its outputs at the cells
                old = pool.pool_type
                pool.pool_type = ""
                try:
                    patches = visual.head(visual.trunk.forward_head(fmap)).flatten(2).transpose(1, 2)
                finally:
                    pool.pool_type = old
            else:  # a global average pool: tokens = the projected feature-map cells
                patches = visual.head(fmap.flatten(2).transpose(1, 2))
            return FrameFeatures(pooled, patches)
        old = visual.output_tokens
        visual.output_tokens = True
        try:
            pooled, tokens = visual(pixels)
        finally:
            visual.output_tokens = old
        patches = None
        if with_patches:
            patches = tokens @ visual.proj if visual.proj is not None else tokens
        return FrameFeatures(pooled, patches)

    @torch.no_grad()
    def encode_frames(self, frames, with_patches: bool = True, batch_size: int = 256) -> FrameFeatures:
        outs = [
            self.image_forward(self.preprocess(frames[i : i + batch_size]), with_patches)
            for i in range(0, len(frames), batch_size)
        ]
        cls = torch.cat([o.cls for o in outs]).float().cpu()
        patches = torch.cat([o.patches for o in outs]).float().cpu() if with_patches else None
        return FrameFeatures(cls, patches)

    # -- text ---------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids ``[T, L]``; empty captions raise, over-long ones are truncated with a warning."""
        if isinstance(texts, str):
            texts = [texts]
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise AnnotationError(f"caption {i} is empty or not a string ({t!r}); remove it or give it text")
        encode = getattr(self.tokenizer, "encode", None)
        if encode is not None:
            too_long = [(i, len(encode(t)) + 2) for i, t in enumerate(texts)]
            too_long = [(i, n) for i, n in too_long if n > self.context_length]
            if too_long:
                i, n = too_long[0]
                warnings.warn(
                    f"{len(too_long)} caption(s) exceed the context length {self.context_length} and are "
                    f"truncated (first: caption {i}, {n} tokens: {texts[i][:60]!r}...)",
                    stacklevel=2,
                )
        return self.tokenizer(texts, context_length=self.context_length)

    def token_strings(self, text: str) -> list[str]:
        """The caption's tokens as the text tower sees them, one string per word-token position (start and end
        tokens included, padding excluded): the labels of ``words[i, :n]`` from ``encode_text(..., with_words=True)``.
        BPE pieces are shown without their end-of-word mark; a tokenizer without a decoder gives the token ids."""
        ids = [int(i) for i in self.tokenize([text])[0] if int(i) != 0]
        decoder = getattr(self.tokenizer, "decoder", None)
        if decoder is None:
            return [str(i) for i in ids]
        return [decoder.get(i, str(i)).replace("</w>", "") for i in ids]

    def set_max_words(self, max_words: int | None) -> None:
        """Truncate captions to ``max_words`` tokens (start and end tokens included), as CLIP4Clip's ``max_words``
        does (32 on MSR-VTT, 64 for paragraphs); None or more than the model's context: the model's context. The
        feature cache keys text features by this length, so entries of two settings never mix."""
        native = int(getattr(self.tokenizer, "context_length", None) or self.model.context_length)
        if max_words is not None and max_words < 3:
            raise ValueError(f"max_words={max_words}: a caption needs its start and end tokens and a word")
        self.context_length = native if max_words is None else min(int(max_words), native)

    def text_forward(self, tokens: torch.Tensor, with_words: bool = True) -> TextFeatures:
        """Forward token ids ``[T, L]`` (keeps gradients; used by fine-tuning)."""
        m = self.model
        tokens = tokens.to(self.device)
        if hasattr(m, "token_embedding"):  # open_clip.CLIP: the text tower lives on the model itself
            eot = tokens.argmax(dim=-1)  # the EOT token has the largest id in CLIP's vocabulary
            # the mask is causal, so no position up to a caption's EOT sees the padding after it: running only the
            # first n = (last EOT + 1) positions gives the same outputs there, at a fraction of the cost (captions
            # are much shorter than the context); words past n are padding (masked out) and come back as zeros
            full, n = tokens.shape[1], int(eot.max()) + 1 if len(tokens) else tokens.shape[1]
            x = m.token_embedding(tokens[:, :n]) + m.positional_embedding[:n]
            mask = m.attn_mask[:n, :n] if m.attn_mask is not None else None
            x = m.ln_final(m.transformer(x, attn_mask=mask))
            pooled = x[torch.arange(x.shape[0], device=x.device), eot]
            proj = m.text_projection
            project = (lambda t: proj(t)) if isinstance(proj, torch.nn.Linear) else (lambda t: t @ proj)
            sentence, words = project(pooled), None
            if with_words:
                words = torch.nn.functional.pad(project(x), (0, 0, 0, full - n))
        else:  # CustomTextCLIP: a separate text tower that can return tokens
            old = m.text.output_tokens
            m.text.output_tokens = True
            try:
                sentence, words = m.text(tokens)
            finally:
                m.text.output_tokens = old
            words = words if with_words else None
        return TextFeatures(sentence, words, tokens != 0, tokens)

    @torch.no_grad()
    def encode_text(self, texts: list[str], with_words: bool = True, batch_size: int = 512) -> TextFeatures:
        tokens = self.tokenize(texts)
        outs = [self.text_forward(tokens[i : i + batch_size], with_words) for i in range(0, len(tokens), batch_size)]
        return TextFeatures(
            torch.cat([o.sentence for o in outs]).float().cpu(),
            torch.cat([o.words for o in outs]).float().cpu() if with_words else None,
            tokens != 0,
            tokens,
        )


def _attention_pool_tokens(pool, fmap: torch.Tensor) -> torch.Tensor:
    """Every output of CLIP's attention pool (``open_clip.modified_resnet.AttentionPool2d``), ``[N, 1 + h*w, D]``.

    The pool runs one attention over the mean token and the ``h*w`` cells of the feature map, each with its
    position embedding, and keeps the mean token's output as the image embedding (index 0 here, exactly the
    pool's own output). The cells' outputs (indices 1..) are the "patch" tokens: in the joint space, through the
    same projections, and position-aware through the embeddings.
    """
    import torch.nn.functional as F

    x = fmap.flatten(2).permute(2, 0, 1)  # [h*w, N, C]
    x = torch.cat([x.mean(dim=0, keepdim=True), x]) + pool.positional_embedding[:, None, :].to(x.dtype)
    out, _ = F.multi_head_attention_forward(
        query=x,
        key=x,
        value=x,
        embed_dim_to_check=x.shape[-1],
        num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        training=pool.training,
        need_weights=False,
    )
    return out.transpose(0, 1)


def create_model(name: str, pretrained: str | None = None):
    """``open_clip.create_model`` without its root-logger warning about random weights (we warn ourselves).

    The bare model (random weights unless ``pretrained`` names open_clip weights); used by
    :func:`load_encoder` and by :mod:`tvrlib.pretrain`, which trains the tiny CLIP from it."""
    import logging

    import open_clip

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return open_clip.create_model(name, pretrained=pretrained)
    finally:
        root.setLevel(level)


def _weights_help(model_name: str, pretrained: str) -> str:
    local = models_dir() / f"{model_name}-{pretrained}.pt"
    return (
        f"Pretrained weights {pretrained!r} for {model_name!r} are not available on this machine, and "
        f"weights cannot be downloaded at run time here. Either (1) on a machine with internet run "
        f"`python -c \"import open_clip; open_clip.create_model('{model_name}', pretrained='{pretrained}')\"` "
        f"and copy the Hugging Face cache (~/.cache/huggingface/hub) to this machine, or (2) download the "
        f"weights file (for ViT-B-32/openai: the OpenAI CLIP release 'ViT-B-32.pt', or open_clip's "
        f"'timm/vit_base_patch32_clip_224.openai' open_clip_pytorch_model.bin) and put it at {local} "
        f"or pass pretrained='/path/to/file'."
    )


def _tiny_checkpoint_help(missing: str, model: str = TINY_MODEL) -> str:
    found = sorted(p.name for p in models_dir().glob(f"{model}_*.pt"))
    there = f" Checkpoints there now: {found[:3]}." if found else ""
    return (
        f"{missing} The tiny CLIP ({model!r}) has no downloadable weights: it is pretrained here on the "
        f"synthetic benchmark by `make data` (i.e. `python -m tvrlib prepare --profile quick`), which writes "
        f"its checkpoint to {models_dir()}/{model}_<benchmark>-<digest>_pt<settings>_seed<k>.pt.{there} "
        f"Pass that file as pretrained=..., or call tvrlib.models.get_encoder({model!r}, benchmark=...), "
        f"which trains the checkpoint first when it is missing."
    )


def load_encoder(
    clip_model: str = TINY_MODEL, pretrained: str | os.PathLike | None = None, device: str = "auto", seed: int = 0
) -> ClipEncoder:
    """Build a :class:`ClipEncoder` from weights that exist (this function never trains).

    * ``pretrained=<path>``: a local weights file (open_clip checkpoint or state dict), e.g. the
      tiny CLIP's checkpoint from :func:`tvrlib.pretrain.ensure_tiny_clip`;
    * ``pretrained=<tag>`` (e.g. ``"openai"``): open_clip's named weights, offline only;
    * ``pretrained=None``: random initialisation (for timing), with a warning; not allowed for
      the tiny configs (:data:`TINY_MODELS`), whose weights only exist once trained (use
      :func:`tvrlib.models.get_encoder`).
    """
    import open_clip

    from .cache import file_digest

    register_configs()
    if clip_model not in open_clip.list_models():
        raise UnknownNameError(
            f"unknown CLIP model {clip_model!r}; use {TINY_MODEL!r} (the embedded default) or "
            f"an open_clip name such as 'ViT-B-32' (open_clip knows {len(open_clip.list_models())}"
            " models: open_clip.list_models())"
        )
    dev = resolve_device(device)
    tokenizer = open_clip.get_tokenizer(clip_model)
    if clip_model in TINY_MODELS and pretrained is None:
        raise WeightsNotFoundError(
            _tiny_checkpoint_help("No checkpoint given for the tiny CLIP (pretrained=None).", clip_model)
        )
    if pretrained is None:
        warnings.warn(
            f"{clip_model} with random weights (pretrained=None): fine for timing, meaningless for retrieval",
            stacklevel=2,
        )
        torch.manual_seed(seed)
        model = create_model(clip_model)
        return ClipEncoder(model, tokenizer, clip_model, f"random-init-seed{seed}", dev)
    p = Path(pretrained)
    if not p.exists():
        cand = models_dir() / f"{clip_model}-{pretrained}.pt"
        if cand.exists():
            p = cand
    if p.exists():
        model = create_model(clip_model)
        state = torch.load(p, map_location="cpu", weights_only=False)
        if isinstance(state, torch.jit.ScriptModule):
            state = state.state_dict()
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise WeightsNotFoundError(
                f"{p} does not hold {clip_model} weights: {len(missing)} missing tensors "
                f"(first: {missing[:3]}); check the model name matches the file"
            )
        return ClipEncoder(model, tokenizer, clip_model, "file-" + file_digest(p)[:16], dev)
    if os.sep in str(pretrained) or str(pretrained).endswith((".pt", ".bin", ".safetensors", ".pth")):
        if clip_model in TINY_MODELS:
            raise WeightsNotFoundError(
                _tiny_checkpoint_help(f"weights file not found: {pretrained} (a tiny-CLIP checkpoint).", clip_model)
            )
        raise WeightsNotFoundError(f"weights file not found: {pretrained}. " + _weights_help(clip_model, "openai"))
    tags = open_clip.list_pretrained_tags_by_model(clip_model)
    if str(pretrained) not in tags:
        raise UnknownNameError(f"{clip_model!r} has no pretrained tag {str(pretrained)!r}; known tags: {tags}")
    import huggingface_hub.constants as hf_constants

    old = hf_constants.HF_HUB_OFFLINE
    if not os.environ.get("TVR_ALLOW_DOWNLOAD"):
        hf_constants.HF_HUB_OFFLINE = True  # fail fast instead of retrying a network that is not there
    try:
        model = create_model(clip_model, str(pretrained))
    except Exception as err:
        raise WeightsNotFoundError(_weights_help(clip_model, str(pretrained)) + f" (open_clip said: {err})") from err
    finally:
        hf_constants.HF_HUB_OFFLINE = old
    return ClipEncoder(model, tokenizer, clip_model, f"{pretrained}", dev)
