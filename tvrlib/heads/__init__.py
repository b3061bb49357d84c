"""Retrieval heads, built by name: ``HEADS.build("meanP")``, ``HEADS.build("seqTransf", dim=512)``.

Every head lives in its own file (its docstring names the paper, the equations and the shapes)
and registers itself, with its named variants (``HEADS.build("seqTransf-noPE", dim=512)``), when
this package is imported; ``HEADS.names()`` lists every name, ``HEADS.describe()`` shows what each
variant fixes. Shared pieces:

* :mod:`tvrlib.heads.base` -- the interface (``score(text, video) -> [T, V]``, declared capabilities);
* :mod:`tvrlib.heads.scoring` -- :func:`score_all`, the one way to score a whole ``T x V`` grid;
* :mod:`tvrlib.heads.attention_pooling` -- text-conditioned attention pooling (kernels, base class);
* :mod:`tvrlib.heads.gram` -- the cosine of a pooled video without the pooled vector (Gram-matrix path).
"""

from ..registry import HEADS
from .base import DualEncoderHead, RetrievalHead, TextInput, VideoInput
from .scoring import DEFAULT_MAX_BYTES, score_all

# importing a head's module registers it (and its variants); this order is the order of HEADS.describe()
# isort: off
from . import mean_pooling  # noqa: F401  meanP (CLIP4Clip)
from . import lstm_pooling  # noqa: F401  seqLSTM (CLIP4Clip)
from . import temporal_transformer  # noqa: F401  seqTransf, seqTransf-noPE (CLIP4Clip; TopKTemporal Table 5)
from . import tight_transformer  # noqa: F401  tightTransf cross-encoder (CLIP4Clip)
from . import cross_modal_aggregation  # noqa: F401  cross-modal attention aggregation (CrossAttnGL eqs. 4.5-4.9)
from . import self_attention_aggregation  # noqa: F401  text-agnostic attention pooling (CrossAttnGL Table 2)
from . import topk_frames  # noqa: F401  top-K frames, topK{K}[-noTE] (TopKTemporal Tables 4-5)
from . import xpool  # noqa: F401  X-Pool text-conditioned pooling
from . import wti  # noqa: F401  wti, wti-uniform (DRL weighted token-wise interaction)
from . import ts2net  # noqa: F401  ts2net, ts2net-tokens, ts2net-noshift (TS2-Net token shift + selection)
from . import global_local  # noqa: F401  global_local[-local|-global] (CrossAttnGL eqs. 4.10-4.15, Table 3)
from . import etva  # noqa: F401  etva[-global|-fine|-text-vlad|-text-centres|-separate] (ETVA Tables 4-5)
from . import crosstvr  # noqa: F401  crosstvr[-spatial|-temporal|-unshared] stage-2 re-ranker (CrossTVR Tables 6, 9)
# isort: on

__all__ = ["HEADS", "TextInput", "VideoInput", "RetrievalHead", "DualEncoderHead", "score_all", "DEFAULT_MAX_BYTES"]
