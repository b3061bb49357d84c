"""Retrieval heads, built by name: ``HEADS.build("meanP")``, ``HEADS.build("seqTransf", dim=512)``.

Every head lives in its own file (its docstring names the paper, the equations and the shapes)
and registers itself when this package is imported; :mod:`tvrlib.heads.base` holds the shared
interface (``score(text, video) -> [T, V]``).
"""
from ..registry import HEADS
from .base import DualEncoderHead, RetrievalHead, TextInput, VideoInput, score_chunked

from . import mean_pooling  # noqa: E402,F401  meanP (CLIP4Clip)
from . import lstm_pooling  # noqa: E402,F401  seqLSTM (CLIP4Clip)
from . import temporal_transformer  # noqa: E402,F401  seqTransf ± position embeddings (CLIP4Clip; seed 001 Table 5)
from . import tight_transformer  # noqa: E402,F401  tightTransf cross-encoder (CLIP4Clip)
from . import efficient  # noqa: E402,F401  memory-bounded evaluation, Gram-matrix path (issue 4)
from . import cross_modal_aggregation  # noqa: E402,F401  cross-modal attention aggregation (seed 000, eqs. 4.5-4.9)
from . import self_attention_aggregation  # noqa: E402,F401  text-agnostic attention pooling (seed 000 Table 2)
from . import topk_frames  # noqa: E402,F401  top-K frame selection (seed 001 Tables 4-5)
from . import xpool  # noqa: E402,F401  X-Pool text-conditioned pooling
