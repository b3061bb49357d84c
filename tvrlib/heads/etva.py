"""ETVA: a multi-expert video encoder, a global (mixture-of-experts) alignment and a fine-grained alignment through
NetVLAD cluster centres shared by the text and the video.

Paper: ETVA, "Efficient Text-video Aligner" (docs/papers.md §4; ``../shared/seeds/002_18bad4545f4bdb5c.txt``, an OCR
of a Chinese paper). Only the abstract, the table captions and the tables are legible there: no equation, no
hyper-parameter. The abstract names the parts (an ALBERT text encoder, a multi-expert video encoder, a global
alignment module "aggregating and transforming features", a fine-grained alignment module built on a "shared
clustering centre mechanism"); the conclusion cites NetVLAD; Tables 4-5 ablate the two alignments and the VLAD
encoding. The design is T2VLAD's (card 6) with MEE's experts and gated units (card 7), so the steps below come from
those cards, and the code marks each line with its step, ``# step N``:

1. **experts** (video side), from the cached CLIP features; every token is L2-normalised first:

   * ``appearance``: the frame CLS embeddings, averaged over the valid frames, L2-normalised (CLIP4Clip's meanP);
   * ``motion``: the differences ``d_f = v_f - v_prev(f)`` of consecutive *valid* frames (``prev(f)``: the last
     valid frame before ``f``; a hole is skipped, a padded frame never enters a difference), pooled as
     ``[mean_f d_f ; mean_f |d_f|]`` (``2 D``): the signed mean telescopes to ``(v_last - v_first) / (n - 1)``, the
     net change (direction: it flips when the clip is reversed), the absolute mean says how much each channel moves;
   * ``detail``: the patch tokens (``video.patches``), averaged over the patches of each frame, then over the valid
     frames, L2-normalised.

2. **gated embedding units** (card 7's GEU, one per expert and side): ``y = W1 x + b1``,
   ``z = y * sigmoid(W2 y + b2)``, ``u = z / ||z||``. The text's input to each of its units is the caption's
   sentence embedding (CLIP's EOT token; with ALBERT, the masked mean of its token states).
3. **expert weights** from the text (MEE): ``w(t) = softmax(W_g t + b_g)`` over the head's experts, so they sum to
   one. An expert a video lacks (MEE's missing modality: ``motion`` needs two valid frames, every expert needs one
   valid frame) is dropped for that pair and the weights are renormalised over the others:
   ``w_tve = w_te a_ve / sum_e' w_te' a_ve'``.
4. **global alignment**: ``s_glob(t, v) = sum_e w_tve cos(u_e(t), u_e(v))`` (0 for a video with no valid frame).
5. **NetVLAD** (card 6) over a set of tokens ``x_i`` (L2-normalised, ``mask`` explicit) with ``K`` centres ``c_k``
   and ``G`` ghost clusters: ``a_ik = softmax_k(w_k . x_i + b_k)`` over the ``K + G`` clusters, **exactly 0 for a
   padded token**; ``V_k = sum_i a_ik (x_i - c_k)`` over the ``K`` real clusters (the ghosts soak up assignment
   mass and are dropped); intra-normalisation ``V_k / ||V_k||``, then the flattened ``[K D]`` vector is
   L2-normalised. Text tokens: the caption's word tokens; video tokens: the frame CLS embeddings
   (``vlad_tokens="frames"``) or the frames and their patches (``"frames+patches"``).
6. **shared centres**: ONE NetVLAD module (the assignment layer ``w_k, b_k`` and the centres ``c_k``) encodes both
   modalities, so a cluster means the same thing for words and frames; ``self.text_vlad`` and ``self.video_vlad``
   are the same module (one set of tensors: gradients from both sides accumulate into it).
7. **fine-grained alignment**: ``s_fine(t, v) = <VLAD(words of t), VLAD(tokens of v)>``. Each cluster block is a unit
   vector and the whole is re-normalised, so this dot product *is* the mean over the clusters of the per-cluster
   cosine (card 6, T2VLAD's local score; exactly so when no cluster is empty, and a soft assignment leaves a cluster
   empty only for an empty side). It is one matrix product over the grid.
8. ``s = (1 - fine_weight) s_glob + fine_weight s_fine``, ``fine_weight = 0.5`` (T2VLAD: 0.5 global + 0.5 local; the
   paper gives no weight). A cosine-like score: training multiplies it by CLIP's temperature.

Variants (the rows of ETVA's ablation tables; the labels are garbled in our copy, docs/papers.md §4):

* ``etva-global`` (``branches="global"``): step 4 only, Table 4's "w/o fine-grained alignment";
* ``etva-fine`` (``branches="fine"``): step 7 only, Table 4's "w/o global alignment";
* ``etva-text-vlad`` (``video_vlad="global"``): Table 5's ``text`` row read as "VLAD encoding on the text only":
  the video is not clustered; its pooled frame vector (step 1's appearance input, in the token space where the
  centres live) stands in as one token that belongs to every cluster, so its block ``k`` is
  ``(v - c_k) / ||v - c_k||`` (the assignment cancels in the intra-normalisation);
* ``etva-text-centres`` (``centres="text"``): the other reading of Table 5's ``text`` row, T2VLAD's port (card 6,
  ``freeze=True``): one set of centres, learned from the text only (the video side uses them with the gradient
  stopped). Its scores equal ``etva``'s for the same weights; only training differs. Nothing trainable comes before
  the video's VLAD here (T2VLAD has a projection and a transformer there), so the video descriptors move only with
  the centres the text trains;
* ``etva-separate`` (``centres="separate"``): Table 5's ``separate`` row, one NetVLAD module per modality;
* ``etva``: Table 4's and Table 5's full model (both alignments, shared centres).

Every variant has the same parameters and the same ``state_dict`` keys (``text_vlad.*`` and ``video_vlad.*`` hold
the same tensors when the centres are shared), so weights move between variants: loading ``etva``'s state into
``etva-separate`` gives its two copies the shared values and the same scores.

Our readings where the paper is silent:

* **CLIP features, not ALBERT or the paper's expert networks.** The head receives CLIP word tokens and the cached
  CLIP frame and patch embeddings; the experts are views of those (appearance, motion from frame differences,
  spatial detail from patches), not separate networks (I3D, audio, ...). :func:`albert_text_features` gives the
  paper's ALBERT text side where ``transformers`` and the weights are installed (build the head with
  ``text_dim=768``: word tokens then pass a linear layer into the video's ``D``-dim space before the VLAD).
* **What is shared.** The paper shares "cluster centres"; in NetVLAD the assignment ``w_k, b_k`` is initialised
  from the centres (``w_k = 2 alpha c_k``, card 6) and together they define a cluster, so both are shared. T2VLAD's
  port shares only the assignment projection (separate centre tensors, card 6); ``etva-separate`` shares neither.
* **No BatchNorm.** MEE's gate and the loupe/T2VLAD assignment use BatchNorm; card 6's pitfall (single-sample
  evaluation depends on running statistics) and chunk-independent scoring rule it out here.
* **Padding comes from the masks only.** The public NetVLADs do not mask (card 6's pitfall: padding gets
  assignments); here padded words, frames and patches get assignment exactly 0 and enter no expert, whatever they
  hold (NaN included).
* **Defaults**: ``K = 9`` clusters and ``G = 1`` ghost (T2VLAD's MSR-VTT config), expert size ``= D``; centres
  ``~ N(0, 1/D)``, the assignment a plain linear layer (loupe.py's initialisation, without its BatchNorm).
* **Without patches** (``video.patches is None``) the ``detail`` expert cannot be computed, and the head raises
  (rather than dropping the expert, which would change what ``etva`` means with how the data was loaded): load
  ``S.videos(split, with_patches=True)``, or build the head with ``experts=("appearance", "motion")``.
* Without word tokens (``text.words is None``) the sentence embedding is the caption's only token (``L = 1``).

Only ``motion`` sees the order of the frames (nothing else uses a position), and nothing sees the order of the words.

Cost: per caption ``O(L D (K + G) + E (D_t D_e + D_e^2))``, per video ``O(F P D + F D (K + G) + E (D D_e + D_e^2))``
(each side is encoded once by :func:`tvrlib.heads.score_all`). Per pair the work is dot products only: steps 3-4
are ``sum_e (w_te u_e(t)) . (a_ve u_e(v)) / sum_e w_te a_ve``, i.e. two matrix products over the grid on the
concatenated weighted expert vectors (``[T, E D_e] x [E D_e, V]``, ``[T, E] x [E, V]``), and step 7 is a third
(``[T, K D] x [K D, V]``): ``O(T V (E D_e + K D))`` and a few floats per pair (:meth:`pair_bytes`), so a block is
usually the whole grid.
``score_all``'s ``path`` is ignored (one evaluation path). Unlike ``wti`` and ``global_local`` the head takes no
``max_words``: nothing per pair grows with the words or the frames.

Shapes: ``text.sentence [T, D_t]``, ``text.words [T, L, D_t]`` + ``text.word_mask bool [T, L]`` (float16 words are
computed in the sentence's precision); ``video.frames [V, F, D]`` + ``video.mask bool [V, F]``, ``video.patches
[V, F, P, D]`` (for ``detail`` / ``"frames+patches"``) -> scores ``[T, V]``; :meth:`score_parts` -> ``(global
[T, V] | None, fine [T, V] | None)``; :meth:`expert_weights` -> ``[T, E]``; :meth:`cluster_assignments` ->
``(words [T, L, K], frames [V, F, K])``; :meth:`vlad_descriptors` -> ``(text [T, K D], video [V, K D])``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsNotFoundError
from ..registry import HEADS
from .base import TextInput, VideoInput
from .mean_pooling import masked_frames
from .scoring import Encoded, EncodedInteractionHead
from .wti import text_tokens

__all__ = [
    "EfficientTextVideoAligner",
    "NetVLAD",
    "GatedEmbeddingUnit",
    "shared_centre_vlad",
    "frame_differences",
    "albert_text_features",
    "EXPERTS",
    "BRANCHES",
    "CENTRES",
]

EXPERTS = ("appearance", "motion", "detail")
BRANCHES = ("both", "global", "fine")
CENTRES = ("shared", "separate", "text")
VIDEO_VLAD = ("tokens", "global")
VLAD_TOKENS = ("frames", "frames+patches")


def _zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x [..., D]`` with exactly 0 where ``mask [...]`` is False (whatever was there, NaN included)."""
    return torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``x [N, M, D]`` over the ``M`` entries where ``mask [N, M]`` is True -> ``[N, D]`` (0 if none)."""
    return _zero_padding(x, mask).sum(1) / mask.sum(1, keepdim=True).clamp_min(1).to(x.dtype)


def frame_differences(frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Differences of consecutive valid frames (step 1, ``motion``): ``frames [V, F, D]``, ``mask bool [V, F]`` ->
    ``(d [V, F, D], d_mask bool [V, F])`` with ``d_f = frames_f - frames_prev(f)``, ``prev(f)`` the last valid frame
    before ``f`` (holes are skipped). ``d_mask`` is True where ``f`` is valid and has a valid frame before it; elsewhere
    ``d`` is exactly 0, so a padded frame never enters a difference."""
    v, f, _ = frames.shape
    pos = torch.arange(f, device=frames.device).expand(v, f)
    last = torch.where(mask, pos, torch.full_like(pos, -1)).cummax(1).values  # the last valid index <= f
    prev = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], 1)  # the last valid index < f
    d_mask = mask & (prev >= 0)
    x = masked_frames(frames, mask)
    before = torch.gather(x, 1, prev.clamp_min(0)[..., None].expand_as(x))
    return _zero_padding(x - before, d_mask), d_mask


class GatedEmbeddingUnit(nn.Module):
    """MEE's gated embedding unit (card 7), without its BatchNorm: ``x [..., in_dim]`` -> unit ``[..., out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)  # y = W1 x + b1
        self.gate = nn.Linear(out_dim, out_dim)  # context gating: W2 y + b2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)  # step 2
        return F.normalize(y * torch.sigmoid(self.gate(y)), dim=-1)  # step 2: gate, then L2


class NetVLAD(nn.Module):
    """NetVLAD with ghost clusters and explicit masks (card 6; step 5): ``tokens [N, M, D]`` + ``mask bool [N, M]``
    -> ``[N, K D]``, each of the ``K`` blocks a unit vector (or 0 for an empty cluster), the whole L2-normalised.

    ``assignment``: the linear layer ``w_k . x + b_k`` over ``K + G`` clusters; ``centres [K, D]``: the ``c_k``.
    ``detach=True`` uses both without their gradient (T2VLAD's ``freeze=True``, for ``centres="text"``).
    """

    def __init__(self, dim: int, clusters: int = 9, ghost_clusters: int = 0):
        super().__init__()
        if clusters < 1 or ghost_clusters < 0:
            raise ValueError(f"NetVLAD needs clusters >= 1 and ghost_clusters >= 0, got {clusters}, {ghost_clusters}")
        self.dim, self.clusters, self.ghost_clusters = dim, clusters, ghost_clusters
        self.assignment = nn.Linear(dim, clusters + ghost_clusters)  # w_k, b_k
        self.centres = nn.Parameter(torch.randn(clusters, dim) / math.sqrt(dim))  # c_k (loupe.py's scale)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, clusters={self.clusters}, ghost_clusters={self.ghost_clusters}"

    def assign(self, tokens: torch.Tensor, mask: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """Soft assignments ``[N, M, K + G]`` (the ghosts last): a softmax over the clusters for a valid token,
        exactly 0 for a padded one."""
        return self._assign(_zero_padding(tokens, mask), mask, detach)

    def _assign(self, x: torch.Tensor, mask: torch.Tensor, detach: bool) -> torch.Tensor:
        """:meth:`assign` of tokens ``x`` that are already 0 on padding."""
        w, b = self.assignment.weight, self.assignment.bias
        if detach:
            w, b = w.detach(), b.detach()
        a = torch.softmax(F.linear(x, w, b), dim=-1)  # step 5: a_ik
        return _zero_padding(a, mask)  # step 5: padded tokens belong to no cluster

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, detach: bool = False) -> torch.Tensor:
        x = _zero_padding(tokens, mask)
        a = self._assign(x, mask, detach)[..., : self.clusters]  # step 5: the ghost clusters are dropped
        c = self.centres.detach() if detach else self.centres
        v = torch.einsum("nmk,nmd->nkd", a, x) - a.sum(1)[..., None] * c  # step 5: sum_i a_ik (x_i - c_k)
        v = F.normalize(v, dim=-1)  # step 5: intra-normalisation
        return F.normalize(v.flatten(1), dim=-1)  # step 5: overall L2


def shared_centre_vlad(
    vlad: NetVLAD, words: torch.Tensor, word_mask: torch.Tensor, video_tokens: torch.Tensor, video_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both modalities through ONE NetVLAD (step 6): ``words [T, L, D]`` + ``word_mask [T, L]``, ``video_tokens
    [V, M, D]`` + ``video_mask [V, M]`` -> ``(text [T, K D], video [V, K D])``, whose dot products are the
    fine-grained scores (step 7). Tokens are L2-normalised here."""
    t = vlad(F.normalize(words, dim=-1), word_mask)
    return t, vlad(F.normalize(video_tokens, dim=-1), video_mask)


@HEADS.register("etva")
class EfficientTextVideoAligner(EncodedInteractionHead):
    """ETVA (seed 002): multi-expert video encoder, global MEE alignment, fine-grained shared-centre VLAD alignment.

    ``dim``: ``D`` (video tokens, the VLAD space); ``text_dim``: ``D_t`` (default ``D``; 768 for ALBERT);
    ``expert_dim``: ``D_e`` (default ``D``); ``experts``: a subset of ``EXPERTS``; ``clusters``,
    ``ghost_clusters``: ``K``, ``G``; ``fine_weight``: the weight of the fine-grained score (step 8);
    ``branches``: ``"both"`` / ``"global"`` / ``"fine"`` (Table 4); ``centres``: ``"shared"`` / ``"separate"`` /
    ``"text"`` (Table 5); ``video_vlad``: ``"tokens"`` / ``"global"`` (Table 5's ``text`` row, our first reading);
    ``vlad_tokens``: ``"frames"`` / ``"frames+patches"``.
    """

    block_by_memory = True  # score_all keeps its blocks within the memory budget (scoring.py)

    def __init__(
        self,
        dim: int = 512,
        text_dim: int | None = None,
        expert_dim: int | None = None,
        experts: Sequence[str] = EXPERTS,
        clusters: int = 9,
        ghost_clusters: int = 1,
        fine_weight: float = 0.5,
        branches: str = "both",
        centres: str = "shared",
        video_vlad: str = "tokens",
        vlad_tokens: str = "frames",
    ):
        super().__init__()
        experts = tuple(experts)
        for name, value, allowed in (
            ("branches", branches, BRANCHES),
            ("centres", centres, CENTRES),
            ("video_vlad", video_vlad, VIDEO_VLAD),
            ("vlad_tokens", vlad_tokens, VLAD_TOKENS),
        ):
            if value not in allowed:
                raise ValueError(f"etva: {name} must be one of {allowed}, got {value!r}")
        if not experts or len(set(experts)) != len(experts) or not set(experts) <= set(EXPERTS):
            raise ValueError(f"etva: experts must be distinct names from {EXPERTS}, got {experts!r}")
        if not 0.0 <= fine_weight <= 1.0:
            raise ValueError(f"etva: fine_weight must be in [0, 1], got {fine_weight}")
        text_dim, expert_dim = text_dim or dim, expert_dim or dim
        self.dim, self.text_dim, self.expert_dim, self.experts = dim, text_dim, expert_dim, experts
        self.fine_weight, self.branches, self.centres, self.video_vlad_mode = fine_weight, branches, centres, video_vlad
        self.vlad_tokens = vlad_tokens
        in_dims = {"appearance": dim, "motion": 2 * dim, "detail": dim}
        self.text_units = nn.ModuleDict({e: GatedEmbeddingUnit(text_dim, expert_dim) for e in experts})  # step 2
        self.video_units = nn.ModuleDict({e: GatedEmbeddingUnit(in_dims[e], expert_dim) for e in experts})  # step 2
        self.expert_gate = nn.Linear(text_dim, len(experts))  # step 3: w(t)
        self.word_proj = nn.Identity() if text_dim == dim else nn.Linear(text_dim, dim)  # words into the VLAD space
        self.text_vlad = NetVLAD(dim, clusters, ghost_clusters)  # step 5
        # step 6: shared centres are ONE module under two names (same tensors, same state_dict keys as "separate")
        self.video_vlad = NetVLAD(dim, clusters, ghost_clusters) if centres == "separate" else self.text_vlad

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, text_dim={self.text_dim}, expert_dim={self.expert_dim}, experts={self.experts}, "
            f"fine_weight={self.fine_weight}, branches={self.branches!r}, centres={self.centres!r}, "
            f"video_vlad={self.video_vlad_mode!r}, vlad_tokens={self.vlad_tokens!r}"
        )

    @property
    def uses_global(self) -> bool:
        return self.branches in ("both", "global")

    @property
    def uses_fine(self) -> bool:
        return self.branches in ("both", "fine")

    # -- tokens ------------------------------------------------------------------------
    def word_tokens(self, text: TextInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit word tokens in the VLAD space ``[T, L, D]`` (0 on padding) and ``word_mask [T, L]``."""
        words, mask = text_tokens(text)  # 0 on padding
        if isinstance(self.word_proj, nn.Identity):  # F.normalize keeps the padding's zeros
            return F.normalize(words, dim=-1), mask
        return _zero_padding(F.normalize(self.word_proj(words), dim=-1), mask), mask

    def _raw_patches(self, video: VideoInput) -> torch.Tensor:
        """``video.patches`` checked and in the frames' dtype ``[V, F, P, D]`` (not normalised, padding untouched)."""
        if video.patches is None:
            raise ValueError(
                "etva's detail expert (and vlad_tokens='frames+patches') reads patch tokens, but video.patches is "
                "None: load the videos with S.videos(split, with_patches=True) (or tvrlib.features.encode_videos(..., "
                "with_patches=True)), or build the head without it: experts=('appearance', 'motion')"
            )
        v, f, d = video.frames.shape
        if video.patches.ndim != 4 or video.patches.shape[:2] != (v, f) or video.patches.shape[3] != d:
            raise ValueError(
                f"video.patches must be [V, F, P, D] = [{v}, {f}, P, {d}], got {tuple(video.patches.shape)}"
            )
        return video.patches.to(video.frames.dtype)

    def _patches(self, video: VideoInput) -> torch.Tensor:
        """Unit patch tokens ``[V, F, P, D]``, 0 in padded frames."""
        patches = F.normalize(self._raw_patches(video), dim=-1)
        return torch.where(
            video.mask[..., None, None], patches, torch.zeros((), dtype=patches.dtype, device=patches.device)
        )

    def _patch_means(self, video: VideoInput) -> torch.Tensor:
        """Step 1 (``detail``): the mean of each frame's unit patch tokens ``[V, F, D]`` (0 in padded frames), as
        one weighted sum per frame with weights ``1 / (P max(||x_p||, eps))`` (F.normalize's eps): no normalised
        copy of every patch (a 300 MB float32 tensor per 256 videos at P = 49, D = 512)."""
        patches = self._raw_patches(video)
        v, f, p, d = patches.shape
        inv = 1 / (p * torch.linalg.vector_norm(patches, dim=-1).clamp_min(1e-12))  # [V, F, P]
        per_frame = (inv.view(v * f, 1, p) @ patches.view(v * f, p, d)).view(v, f, d)  # per frame: no leak
        return _zero_padding(per_frame, video.mask)  # padded frames (whatever they hold, NaN included): 0

    def video_tokens(self, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """The video's VLAD tokens ``[V, M, D]`` (unit, 0 on padding) and their mask ``[V, M]``: the frames
        (``M = F``), the frames and their patches (``M = F (1 + P)``), or for ``video_vlad="global"`` the pooled
        frame vector as one token (``M = 1``, valid when the video has a valid frame)."""
        frames = F.normalize(masked_frames(video.frames, video.mask), dim=-1)
        if self.video_vlad_mode == "global":
            return F.normalize(_masked_mean(frames, video.mask), dim=-1)[:, None], video.mask.any(1, keepdim=True)
        if self.vlad_tokens == "frames":
            return frames, video.mask
        patches = self._patches(video)
        v, f, p, d = patches.shape
        tokens = torch.cat([frames[:, :, None], patches], 2).reshape(v, f * (1 + p), d)
        return tokens, video.mask[:, :, None].expand(v, f, 1 + p).reshape(v, f * (1 + p))

    # -- experts -----------------------------------------------------------------------
    def expert_inputs(self, video: VideoInput) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Step 1: ``{expert: [V, D_in]}`` pooled over the valid frames, and ``available [V, E]`` (float 0/1)."""
        frames = F.normalize(masked_frames(video.frames, video.mask), dim=-1)
        has_frame = video.mask.any(1)
        inputs, available = {}, []
        for e in self.experts:
            if e == "appearance":
                inputs[e] = F.normalize(_masked_mean(frames, video.mask), dim=-1)  # step 1: meanP
                available.append(has_frame)
            elif e == "motion":
                d, d_mask = frame_differences(frames, video.mask)  # step 1: consecutive valid frames
                inputs[e] = torch.cat([_masked_mean(d, d_mask), _masked_mean(d.abs(), d_mask)], -1)  # [mean; mean|.|]
                available.append(d_mask.any(1))  # two valid frames
            else:
                per_frame = self._patch_means(video)  # step 1: the mean unit patch of each frame
                inputs[e] = F.normalize(_masked_mean(per_frame, video.mask), dim=-1)
                available.append(has_frame)
        return inputs, torch.stack(available, 1).to(frames.dtype)

    def expert_weights(self, text: TextInput) -> torch.Tensor:
        """Step 3: the caption's expert weights ``[T, E]`` (a softmax over ``self.experts``: each row sums to 1)."""
        return torch.softmax(self.expert_gate(F.normalize(text.sentence, dim=-1)), dim=-1)

    # -- per side ----------------------------------------------------------------------
    def encode_text(self, text: TextInput) -> Encoded:
        side = {}
        if self.uses_global:
            sentence = F.normalize(text.sentence, dim=-1)
            units = torch.stack([self.text_units[e](sentence) for e in self.experts], 1)  # step 2 [T, E, De]
            side["weights"] = self.expert_weights(text)  # step 3 [T, E]
            side["weighted"] = (side["weights"][..., None] * units).flatten(1)  # [w_te u_te]_e [T, E De]
        if self.uses_fine:
            side["vlad"] = self.text_vlad(*self.word_tokens(text))  # steps 5-6 [T, K D]
        return Encoded(side)

    def encode_video(self, video: VideoInput) -> Encoded:
        side = {}
        if self.uses_global:
            inputs, available = self.expert_inputs(video)  # step 1
            units = torch.stack([self.video_units[e](inputs[e]) for e in self.experts], 1)  # step 2 [V, E, De]
            side["available"] = available  # [V, E]
            side["experts"] = (available[..., None] * units).flatten(1)  # [a_ve u_ve]_e [V, E De]
        if self.uses_fine:
            side["vlad"] = self.video_vlad(*self.video_tokens(video), detach=self.centres == "text")  # steps 5-6
        return Encoded(side)

    # -- per pair ----------------------------------------------------------------------
    def parts_encoded(self, te: Encoded, ve: Encoded) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(s_glob [t, v] | None, s_fine [t, v] | None)`` of a block (steps 4 and 7)."""
        glob = fine = None
        if self.uses_global:
            mixed = te["weighted"] @ ve["experts"].T  # sum_e w_te a_ve cos(u_e(t), u_e(v)): unit u, one product
            total = te["weights"] @ ve["available"].T  # step 3: sum_e w_te a_ve
            zero = torch.zeros((), dtype=mixed.dtype, device=mixed.device)
            glob = torch.where(total > 0, mixed / total.clamp_min(1e-30), zero)  # step 4, renormalised over a_ve
        if self.uses_fine:
            fine = te["vlad"] @ ve["vlad"].T  # step 7: the mean per-cluster cosine
        return glob, fine

    def score_encoded(self, te: Encoded, ve: Encoded, path: str | None = None) -> torch.Tensor:
        glob, fine = self.parts_encoded(te, ve)
        if fine is None:
            return glob
        if glob is None:
            return fine
        return (1 - self.fine_weight) * glob + self.fine_weight * fine  # step 8

    def pair_bytes(self, num_frames: int, dim: int, path: str | None = None) -> int:
        return 4 * 6  # one float each: the mixture, its weight total, s_glob, s_fine, the weighted sum, a temporary

    # -- whole inputs (figures and checks) ---------------------------------------------
    def score_parts(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(s_glob [T, V] | None, s_fine [T, V] | None)``: the two alignments before step 8 (None: not in the
        variant)."""
        return self.parts_encoded(self.encode_text(text), self.encode_video(video))

    def vlad_descriptors(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(text [T, K D], video [V, K D])``: the descriptors whose dot products are ``s_fine`` (step 7)."""
        return self.text_vlad(*self.word_tokens(text)), self.video_vlad(*self.video_tokens(video))

    def cluster_assignments(self, text: TextInput, video: VideoInput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(words [T, L, K], frames [V, F, K])``: which words and which frames fall in which (real) cluster, for
        the figure; 0 on padding. A row sums to 1 minus what went to the ghost clusters. With
        ``vlad_tokens="frames+patches"`` these are the frame (CLS) tokens' assignments; with ``video_vlad="global"``
        the frames are not clustered when scoring, and these are the assignments the video's layer would give."""
        k = self.text_vlad.clusters
        words, word_mask = self.word_tokens(text)
        frames = F.normalize(masked_frames(video.frames, video.mask), dim=-1)
        return (
            self.text_vlad.assign(words, word_mask)[..., :k],
            self.video_vlad.assign(frames, video.mask)[..., :k],
        )


HEADS.register_variant("etva-global", "etva", branches="global")  # Table 4: w/o fine-grained alignment
HEADS.register_variant("etva-fine", "etva", branches="fine")  # Table 4: w/o global alignment
HEADS.register_variant("etva-text-vlad", "etva", video_vlad="global")  # Table 5 "text": VLAD on the text only
HEADS.register_variant("etva-text-centres", "etva", centres="text")  # Table 5 "text": centres learned from text
HEADS.register_variant("etva-separate", "etva", centres="separate")  # Table 5 "separate": a NetVLAD per modality


# --------------------------------------------------------------------------- the paper's text encoder
def _albert_help(model_name: str, what: str) -> str:
    home = os.environ.get("HF_HOME", "~/.cache/huggingface (HF_HOME is not set)")
    try:
        from huggingface_hub.constants import HF_HUB_CACHE as hub
    except ImportError:  # huggingface_hub comes with transformers
        hub = os.path.join(os.environ.get("HF_HOME", "~/.cache/huggingface"), "hub")
    return (
        f"ALBERT text features ({model_name!r}, ETVA's text encoder) are not available: {what}. This machine is "
        f"offline, so nothing is downloaded at run time. On a machine with internet: `pip install transformers "
        f"sentencepiece` and `huggingface-cli download {model_name}`, then copy the Hugging Face cache "
        f"(HF_HOME={home}; the hub cache {hub}, folder models--{model_name.replace('/', '--')}) to the same place "
        f"here, or pass model_name='/path/to/{model_name}' (a folder with config.json, the weights and spiece.model). "
        f"The head then needs text_dim=768. Without ALBERT, ETVA here uses CLIP word tokens "
        f"(S.texts(split, with_words=True))."
    )


def albert_text_features(
    captions: Sequence[str],
    model_name: str = "albert-base-v2",
    device: str = "cpu",
    batch_size: int = 64,
    max_length: int = 32,
) -> TextInput:
    """The paper's text side: ALBERT's last hidden states as word tokens -> :class:`TextInput` with ``words [N, L,
    768]`` (float32, ``L = max_length``), ``word_mask bool [N, L]`` (the tokenizer's attention mask: real tokens,
    ``[CLS]`` and ``[SEP]`` included) and ``sentence [N, 768]`` (the masked mean of the tokens; ALBERT's pooler is
    trained for sentence order, not similarity). Build the head with ``text_dim=768``.

    Uses ``transformers`` if it is installed and the weights are in the local Hugging Face cache (never downloads
    unless ``TVR_ALLOW_DOWNLOAD`` is set); otherwise raises :class:`~tvrlib.errors.WeightsNotFoundError` saying
    what to download and where to put it. ``transformers`` is not a tvrlib dependency.
    """
    try:
        import transformers
    except ImportError as err:
        raise WeightsNotFoundError(
            _albert_help(model_name, "the `transformers` package is not installed (it is not a tvrlib dependency)")
        ) from err
    local_only = not os.environ.get("TVR_ALLOW_DOWNLOAD")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_name, local_files_only=local_only)
        model = transformers.AutoModel.from_pretrained(model_name, local_files_only=local_only)
    except (OSError, ValueError, ImportError) as err:
        raise WeightsNotFoundError(
            _albert_help(model_name, "its tokenizer or weights are not in the local Hugging Face cache")
            + f" (transformers said: {err})"
        ) from err
    model = model.eval().to(device)
    words, masks = [], []
    with torch.no_grad():
        for i in range(0, len(captions), batch_size):
            enc = tokenizer(
                list(captions[i : i + batch_size]),
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            out = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
            words.append(out.last_hidden_state.float().cpu())
            masks.append(enc["attention_mask"].bool().cpu())
    words_t, mask_t = torch.cat(words), torch.cat(masks)
    return TextInput(_masked_mean(words_t, mask_t), _zero_padding(words_t, mask_t), mask_t)
