"""Shared pieces of the head tests (imported as ``from helpers import ...``: pytest puts this folder on the path)."""

from __future__ import annotations

import torch
from torch import nn

from tvrlib.heads import TextInput, VideoInput


def perturb(head: nn.Module, scale: float = 0.3, seed: int = 1) -> nn.Module:
    """Move every parameter off its initialisation, deterministically (a shared module is moved once); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return head.eval()


def masked_token_inputs(T: int, V: int, L: int, F: int, P: int, D: int, seed: int = 0) -> tuple[TextInput, VideoInput]:
    """Random captions with word tokens and videos with patch tokens, with every kind of padding explicit in the
    masks: caption 1 is short, caption 2 a single token, caption 4 has holes; video 1 is a short clip, video 2 has a
    single valid frame, video 3 has holes, video 4 starts with padding. Needs ``T >= 5`` and ``V >= 5``."""
    g = torch.Generator().manual_seed(seed)
    word_mask = torch.ones(T, L, dtype=torch.bool)
    word_mask[1, 3:] = False  # a short caption
    word_mask[2, 1:] = False  # a single token
    word_mask[4, [2, 5]] = False  # holes
    text = TextInput(torch.randn(T, D, generator=g), torch.randn(T, L, D, generator=g), word_mask)
    mask = torch.ones(V, F, dtype=torch.bool)
    mask[1, 4:] = False  # a short clip
    mask[2, 1:] = False  # a single valid frame
    mask[3, [1, 3]] = False  # holes
    mask[4, :2] = False  # padding at the start
    video = VideoInput(torch.randn(V, F, D, generator=g), mask, torch.randn(V, F, P, D, generator=g))
    return text, video
