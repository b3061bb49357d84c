"""Retrieval heads, built by name: ``HEADS.build("meanP")``, ``HEADS.build("seqTransf", dim=512)``.

Every head lives in its own file (its docstring names the paper, the equations and the shapes)
and registers itself when this package is imported; :mod:`tvrlib.heads.base` holds the shared
interface (``score(text, video) -> [T, V]``).
"""
from ..registry import HEADS
from .base import DualEncoderHead, RetrievalHead, TextInput, VideoInput, score_chunked

from . import mean_pooling  # noqa: E402,F401  meanP (CLIP4Clip)
