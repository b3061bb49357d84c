"""Two-stage retrieval (CrossTVR, docs/papers.md §5): a cheap stage-1 head ranks the gallery, a cross-encoder
re-scores each caption's top K videos.

Paper: CrossTVR §3.3 (training) and §3.4 (inference), ``../shared/seeds/003_7fc3eb177733b376.txt``; method_cards.md
cards 5a (BLIP-2: re-rank the top k by ITM + ITC), 5b (ALBEF: hard negatives drawn from the in-batch similarity
distribution, same-id entries excluded) and 9 (dual softmax, DSL). The re-ranker is
:class:`tvrlib.heads.crosstvr.CrossTVR` (``HEADS.build("crosstvr", dim=D)`` and its variants); any head with
``score_pairs`` can stand in (e.g. ``tightTransf``).

Inference (§3.4):

* :func:`shortlist` -- each caption's top ``K`` videos by the stage-1 scores ``[T, V]`` (K = 15 in the paper);
* :func:`rerank_top_k` / :func:`rerank` -- the re-ranker's matching score ``m`` (:func:`pair_scores`) for the ``T K``
  shortlisted pairs only, in batches under a memory budget. The final score of a shortlisted video is
  ``s1 + weight * m`` (the paper "adds" the two; ``matching="probability"`` adds eq. 7's ``p = sigmoid(m)`` instead of
  the log-odds ``m``), lifted by one per-caption constant where needed so that the whole shortlist ranks above the
  rest; every other video keeps its stage-1 score **bit for bit**, so the rest keep their stage-1 order (and a gold
  video outside the shortlist keeps its stage-1 rank). :class:`Reranked` keeps the shortlist and the matching scores,
  so smaller K (the paper's Figure 4 sweep, K = 2 ... 19) and other weights are re-combined without re-scoring
  (:meth:`Reranked.at`).
* :func:`dual_softmax` -- CAMoE's DSL as a post-processing step (card 9, the paper's appendix Tables 11-14).
  **Transductive**: each score is revised with a prior computed over all test captions together.

Training (§3.3), :func:`train_reranker`: the stage-1 head is frozen (its scores are computed without gradients and
its weights never reach the optimiser) and the features are the cached outputs of the frozen CLIP encoder (the
re-ranker only reads them). Per batch of ``B`` captions and their videos: the stage-1 similarity of the batch
``[B, B]``, then :func:`hard_negatives` draws one negative video per caption and one negative caption per video from
``softmax(s1 / temperature)`` with every entry of the same video excluded (ALBEF, card 5b: never another caption of
the positive's video), and the 2-way cross-entropy of eq. 7 over the ``B`` positives and up to ``2B`` negatives
(:func:`matching_loss`). AdamW, warm-up then cosine (:func:`tvrlib.optim.warmup_cosine`), a few epochs, and the best
epoch by validation R@1 of the *re-ranked* shortlist (early stopping with ``patience``).

Notebooks (notebook 09) compare per seed through :mod:`tvrlib.experiment`: :func:`train_rerankers` trains one
re-ranker per seed of a stage-1 :class:`~tvrlib.experiment.HeadRuns` (on that seed's trained stage-1 head),
:func:`rerank_runs` ranks the test queries with them as a :class:`~tvrlib.experiment.HeadRuns` (so
:func:`~tvrlib.experiment.paired_difference` and :func:`~tvrlib.experiment.judge` pair it with the stage-1 runs),
and :func:`runs_at` derives the runs of a smaller K from the kept :class:`Reranked` records.

>>> base = run(P, "ts2net", train, val, test)                                  # stage 1, one head per seed
>>> rr = train_rerankers(base, "crosstvr", train, val, config=RerankConfig(epochs=3))
>>> two = rerank_runs(base, rr, test, k=19)                                    # K = 19, kept for the sweep
>>> at15 = runs_at(two, k=15); judge(at15, base, notebook="09", paper="CrossTVR", table="Table 8", ...)
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import metrics as M
from .evaluation import EVAL_CHUNK
from .experiment import HeadRuns, query_scores
from .heads import DEFAULT_MAX_BYTES, HEADS, score_all
from .heads.base import RetrievalHead, TextInput, VideoInput
from .heads.crosstvr import CrossTVR
from .heads.scoring import inference
from .optim import warmup_cosine

__all__ = [
    "shortlist",
    "combine",
    "Reranked",
    "pair_scores",
    "rerank_top_k",
    "rerank",
    "NegativePairs",
    "hard_negatives",
    "matching_loss",
    "RerankConfig",
    "RerankTraining",
    "train_reranker",
    "dual_softmax",
    "train_rerankers",
    "rerank_runs",
    "runs_at",
    "LIFT_GAP",
]

#: how far (at least) the lowest shortlisted score is lifted above the best score outside the shortlist: far above
#: :data:`tvrlib.metrics.TIE_TOLERANCE` times any realistic score scale, so a lifted video never ties the rest
LIFT_GAP = 1.0
MATCHING = ("logit", "probability")


# --------------------------------------------------------------------------- inference
def shortlist(stage1_scores: torch.Tensor, k: int) -> torch.Tensor:
    """The top ``k`` videos of each caption, ``long [T, k]``, best first, from ``stage1_scores [T, V]``.

    A stable sort: equal scores keep their column order (the lower video index first), so the shortlist is
    deterministic. ``k`` is capped at ``V``."""
    s = torch.as_tensor(stage1_scores)
    if s.ndim != 2:
        raise ValueError(f"stage1_scores must be [T, V], got shape {tuple(s.shape)}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(int(k), s.shape[1])
    return torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]


def combine(
    stage1: torch.Tensor,
    top: torch.Tensor,
    matching: torch.Tensor,
    *,
    k: int | None = None,
    weight: float = 1.0,
    matching_kind: str = "logit",
) -> torch.Tensor:
    """Final scores ``float64 [T, V]``: the first ``k`` (default all) shortlisted videos ``top [T, K]`` of each caption
    get ``stage1 + weight * m`` (``matching [T, K]``: log-odds; ``matching_kind="probability"``: ``sigmoid(m)``,
    eq. 7's ``p``), plus one constant per caption where needed to rank the shortlist at least :data:`LIFT_GAP` above
    every other video (it changes no order inside the shortlist); every other entry is ``stage1`` unchanged."""
    if matching_kind not in MATCHING:
        raise ValueError(f"matching must be one of {MATCHING}, got {matching_kind!r}")
    s1 = torch.as_tensor(stage1).detach().to("cpu", torch.float64)
    k = top.shape[1] if k is None else int(k)
    if k > top.shape[1]:
        raise ValueError(f"k={k} but only {top.shape[1]} videos per caption were re-scored")
    top = top[:, :k].cpu()
    m = matching[:, :k].detach().to("cpu", torch.float64)
    if matching_kind == "probability":
        m = torch.sigmoid(m)
    out = s1.clone()
    if k == 0:
        return out
    combined = s1.gather(1, top) + weight * m  # CrossTVR §3.4: cosine + matching score
    rest = s1.scatter(1, top, float("-inf")).amax(1)  # the best score outside the shortlist (-inf: none)
    lift = (rest + LIFT_GAP - combined.amin(1)).clamp_min(0)
    lift = torch.where(torch.isfinite(lift), lift, torch.zeros_like(lift))  # nothing outside: no lift
    return out.scatter(1, top, combined + lift[:, None])


@dataclass
class Reranked:
    """One re-ranking of ``T`` captions over ``V`` videos: the final ``scores [T, V]`` (float64), the ``stage1`` scores
    it started from ``[T, V]``, the ``shortlist [T, K]`` and the re-ranker's ``matching`` scores of those pairs
    ``[T, K]`` (log-odds), how they were combined, and the seconds the re-ranker took (``pairs`` forward passes)."""

    scores: torch.Tensor = field(repr=False)
    stage1: torch.Tensor = field(repr=False)
    shortlist: torch.Tensor = field(repr=False)
    matching: torch.Tensor = field(repr=False)
    k: int
    weight: float
    matching_kind: str
    seconds: float
    pairs: int
    tie_tolerance: float | None = None  # ranks: the metrics' rule (None) or exact ties (0.0, after dual softmax)

    @property
    def seconds_per_query(self) -> float:
        return self.seconds / max(1, self.stage1.shape[0])

    def at(self, k: int | None = None, *, weight: float | None = None, matching_kind: str | None = None) -> Reranked:
        """The same re-ranking with the top ``k <= K`` only (and/or another ``weight`` / ``matching_kind``), from the
        kept matching scores: nothing is re-scored (the shortlist of a smaller K is a prefix of this one)."""
        k = self.k if k is None else int(k)
        weight = self.weight if weight is None else weight
        kind = self.matching_kind if matching_kind is None else matching_kind
        scores = combine(self.stage1, self.shortlist, self.matching, k=k, weight=weight, matching_kind=kind)
        return dataclasses.replace(
            self,
            scores=scores,
            shortlist=self.shortlist[:, :k],
            matching=self.matching[:, :k],
            k=k,
            weight=weight,
            matching_kind=kind,
            seconds=self.seconds * k / max(1, self.k),
            pairs=self.stage1.shape[0] * k,
        )


def pair_scores(reranker: RetrievalHead, text: TextInput, video: VideoInput) -> torch.Tensor:
    """The re-ranker's scores of ``N`` aligned pairs ``[N]``: :meth:`CrossTVR.match_scores` (batched) for CrossTVR,
    ``score_pairs`` for any other head."""
    if isinstance(reranker, CrossTVR):
        return reranker.match_scores(text, video)
    return reranker.score_pairs(text, video)


def _word_counts(texts: TextInput) -> torch.Tensor:
    """Each caption's word-token count ``[T]`` (1 without word tokens: the sentence alone; the padded width without
    a mask). The cache pads word tokens to the split's longest caption; CrossTVR cuts that padding per batch."""
    if texts.words is None:
        return torch.ones(len(texts), dtype=torch.long)
    if texts.word_mask is None:
        return torch.full((len(texts),), texts.words.shape[1], dtype=torch.long)
    return texts.word_mask.sum(1).clamp(min=1)


def _pair_bytes(reranker: RetrievalHead, videos: VideoInput, words: int) -> int:
    """One pair's working memory under the re-ranker's ``pair_bytes`` for a caption of ``words`` word tokens."""
    f, d = videos.frames.shape[1], videos.frames.shape[2]
    if isinstance(reranker, CrossTVR):
        patches = 0 if videos.patches is None else videos.patches.shape[2]
        return reranker.pair_bytes(f, d, words=int(words), patches=patches)
    return reranker.pair_bytes(f, d)


def _query_batches(reranker: RetrievalHead, texts: TextInput, videos: VideoInput, k: int, max_bytes: int):
    """Batches of caption rows (``LongTensor`` s) for :func:`rerank_top_k`: captions in order of their word count
    (a batch is padded to its longest caption, so similar lengths waste the least), each batch as many captions as
    fit ``max_bytes`` at that batch's longest caption (from the re-ranker's ``pair_bytes``; at least one)."""
    lengths = _word_counts(texts)
    order = torch.argsort(lengths, stable=True)
    T, i = len(texts), 0
    while i < T:
        n = 1
        while i + n < T and (n + 1) * k * _pair_bytes(reranker, videos, int(lengths[order[i + n]])) <= max_bytes:
            n += 1  # grow the batch while its longest caption's pairs fit the budget
        yield order[i : i + n]
        i += n


def rerank_top_k(
    stage1_scores: torch.Tensor,
    reranker: RetrievalHead,
    texts: TextInput,
    videos: VideoInput,
    k: int = 15,
    *,
    weight: float = 1.0,
    matching: str = "logit",
    max_bytes: int = DEFAULT_MAX_BYTES,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> Reranked:
    """Re-rank each caption's top ``k`` stage-1 videos with ``reranker`` (CrossTVR §3.4): a :class:`Reranked`.

    ``stage1_scores [T, V]``: caption ``i`` (``texts`` row ``i``) against video ``j`` (``videos`` row ``j``), e.g.
    ``score_all(stage1_head, texts, videos)``. Only the ``T k`` shortlisted pairs are scored (:func:`pair_scores`),
    in eval mode without gradients, whole captions per batch, as many as fit ``max_bytes`` (from the re-ranker's
    ``pair_bytes``). ``weight``, ``matching``: see :func:`combine`. ``k = 0``: the stage-1 scores (as float64)."""
    s1 = torch.as_tensor(stage1_scores).detach().cpu()
    T, V = s1.shape
    if len(texts) != T or len(videos) != V:
        raise ValueError(f"stage1_scores is [{T}, {V}] but there are {len(texts)} texts and {len(videos)} videos")
    if matching not in MATCHING:
        raise ValueError(f"matching must be one of {MATCHING}, got {matching!r}")
    top = shortlist(s1, k)
    k = top.shape[1]
    m = torch.zeros(T, k)
    t0 = time.perf_counter()
    if k > 0:
        with inference(reranker):
            batches = _query_batches(reranker, texts, videos, k, max_bytes)
            for rows in tqdm(batches, disable=not progress, desc="re-ranking"):
                n = len(rows)
                tq = texts.index(rows)
                ti = torch.arange(n).repeat_interleave(k)
                vi = top[rows].reshape(-1)
                pairs = pair_scores(reranker, tq.index(ti).to(device), videos.index(vi).to(device))
                m[rows] = pairs.float().cpu().view(n, k)
    seconds = time.perf_counter() - t0
    scores = combine(s1, top, m, weight=weight, matching_kind=matching)
    return Reranked(scores, s1, top, m, k, float(weight), matching, seconds, T * k)


def rerank(
    stage1_scores: torch.Tensor,
    reranker: RetrievalHead,
    texts: TextInput,
    videos: VideoInput,
    k: int = 15,
    **kwargs,
) -> torch.Tensor:
    """The final scores ``float64 [T, V]`` of :func:`rerank_top_k` (same arguments)."""
    return rerank_top_k(stage1_scores, reranker, texts, videos, k, **kwargs).scores


#: dual softmax's scores are ranked with exact ties: its values are ``cos * exp(-gap / tau)``, far below the metrics'
#: absolute tolerance (1e-5 for scores below 1) wherever another caption wins a video, so that tolerance would tie
#: most of a row; the rounding it guards against is relative, and it is relative here (``S * P`` rounds with ``S P``)
DSL_TIE_TOLERANCE = 0.0


def dual_softmax(sim: torch.Tensor, temperature: float = 0.01, dim: int = 0) -> torch.Tensor:
    """CAMoE's dual softmax (DSL, card 9) at inference: ``sim * softmax(sim / temperature, dim)``.

    **Transductive**: with ``dim=0`` (the default, text-to-video) the prior of caption ``i`` for video ``j`` is a
    softmax over *all test captions* in column ``j``, so a caption's scores depend on the other test queries (a video
    that another caption matches better is down-weighted). Not a property of the model alone: report it as a
    post-processing step (CrossTVR's starred rows, appendix Tables 11-14). ``sim [T, V]``: cosine-like scores
    (CLIP-ViP's inference form is ``cos * softmax(100 cos, dim 0)``, i.e. ``temperature = 0.01``); ``dim=1`` gives the
    prior over videos (a video-to-text DSL). Same shape and dtype as ``sim``."""
    s = torch.as_tensor(sim)
    if s.ndim != 2:
        raise ValueError(f"sim must be [T, V], got shape {tuple(s.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return s * torch.softmax(s / temperature, dim=dim)


dual_softmax.transductive = True  # uses every test query at once (see the docstring)


# --------------------------------------------------------------------------- hard negatives
@dataclass
class NegativePairs:
    """One negative video per caption and one negative caption per video of a batch (CrossTVR §3.3, card 5b):
    ``video[i]``: the column of the negative video of caption ``i``; ``text[i]``: the row of the negative caption of
    caption ``i``'s video. ``-1`` where none exists (every candidate shows the same video)."""

    video: np.ndarray  # int64 [T]
    text: np.ndarray  # int64 [T]


def _gumbel_choice(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from ``softmax(logits)`` (``-inf``: never), ``-1`` for a row that is all ``-inf``."""
    g = logits + rng.gumbel(size=logits.shape)
    pick = np.argmax(g, axis=1)
    return np.where(np.isfinite(logits).any(1), pick, -1).astype(np.int64)


def hard_negatives(
    stage1_sim,
    text_to_video,
    rng: np.random.Generator,
    *,
    video_ids=None,
    temperature: float = 0.01,
) -> NegativePairs:
    """Draw hard negatives from the stage-1 similarity distribution (CrossTVR §3.3; ALBEF, card 5b).

    ``stage1_sim [T, V]``: stage-1 scores of captions against candidate videos (in training: a batch's captions
    against the batch's videos); ``text_to_video [T]``: the column of each caption's own video; ``video_ids [V]``
    (default ``arange(V)``): which video each column shows (a batch can hold one video twice, for two of its
    captions). For caption ``i``: a negative video drawn from ``softmax(sim[i] / temperature)`` over the columns that
    show another video; for the video of caption ``i`` (column ``c = text_to_video[i]``): a negative caption drawn
    from ``softmax(sim[:, c] / temperature)`` over the captions of other videos. So a negative never shows the
    positive's video and is never another caption of it (ALBEF zeroes same-id entries; BLIP-2 only the diagonal,
    card 5b's pitfall). ``temperature``: the stage-1 model's (CLIP's learned 0.01 for a cosine head; 1 for a head
    that outputs logits); ``float("inf")`` draws uniformly among the allowed ones (random in-batch negatives).
    Exact sampling with the Gumbel-max trick on ``rng``."""
    s = torch.as_tensor(stage1_sim).detach().to("cpu", torch.float64).numpy()
    if s.ndim != 2:
        raise ValueError(f"stage1_sim must be [T, V], got shape {s.shape}")
    T, V = s.shape
    pos = np.asarray(text_to_video, dtype=np.int64)
    if pos.shape != (T,) or (T and (pos.min() < 0 or pos.max() >= V)):
        raise ValueError(f"text_to_video must hold {T} column indices in [0, {V}), got {pos!r}")
    ids = np.arange(V) if video_ids is None else np.asarray(video_ids).reshape(-1)
    if ids.shape != (V,):
        raise ValueError(f"video_ids must have one id per column ({V}), got shape {ids.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if np.isnan(s).any():
        raise ValueError("stage1_sim holds NaN")
    own = ids[pos]  # [T] the video each caption shows
    logits = s / temperature
    same_video = own[:, None] == ids[None, :]  # [T, V]: columns that show caption i's own video
    video = _gumbel_choice(np.where(same_video, -np.inf, logits), rng)
    col = logits[:, pos].T  # [T, T]: row i = the scores of every caption against caption i's video
    same_caption_video = own[:, None] == own[None, :]  # captions of caption i's video
    text = _gumbel_choice(np.where(same_caption_video, -np.inf, col), rng)
    return NegativePairs(video, text)


def matching_loss(reranker: RetrievalHead, text: TextInput, video: VideoInput, labels: torch.Tensor) -> torch.Tensor:
    """CrossTVR eq. 7: the mean 2-way cross-entropy of the re-ranker's matching logits ``[N, 2]`` (``itm_logits``)
    against ``labels long [N]`` (1: the caption describes the video, 0: a negative pair). A re-ranker without
    ``itm_logits`` (one matching score ``s`` per pair, ``score_pairs``) is read as the logits ``(0, s)`` (binary
    cross-entropy)."""
    if isinstance(reranker, CrossTVR):
        logits = reranker.itm_logits(text, video)
    else:
        s = reranker.score_pairs(text, video)
        logits = torch.stack([torch.zeros_like(s), s], 1)
    return F.cross_entropy(logits, labels.to(logits.device))


# --------------------------------------------------------------------------- training
@dataclass
class RerankConfig:
    """Knobs of :func:`train_reranker`. The paper (§4.1): Adam, lr 1e-4, cosine schedule with warm-up, batch 128,
    K = 15; epochs are not stated. ``temperature``: the stage-1 similarities' sampling temperature
    (:func:`hard_negatives`). ``k``: the validation shortlist. ``val_queries``: validate on ``n`` evenly spaced query
    captions only (:func:`validation_queries`; None: all). ``patience`` / ``min_delta``: early stopping on validation
    ``select_metric`` as in :func:`tvrlib.training.fit` (None: every epoch runs). ``weight`` / ``matching``: how
    validation combines the scores (:func:`combine`)."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup: float = 0.1
    clip_grad: float | None = 1.0
    temperature: float = 0.01
    k: int = 15
    val_queries: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    select_metric: str = "R1"
    max_steps_per_epoch: int | None = None
    weight: float = 1.0
    matching: str = "logit"
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self):
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (negatives come from the batch), got {self.batch_size!r}")
        if self.select_metric not in M.METRICS:
            raise ValueError(f"select_metric must be one of {M.METRICS}, got {self.select_metric!r}")
        if self.patience is not None and (int(self.patience) != self.patience or self.patience < 1):
            raise ValueError(f"patience must be None or a positive number of epochs, got {self.patience!r}")
        if self.matching not in MATCHING:
            raise ValueError(f"matching must be one of {MATCHING}, got {self.matching!r}")
        self.betas = tuple(self.betas)


@dataclass
class RerankTraining:
    """What :func:`train_reranker` returns: the re-ranker with its best epoch's weights (eval mode), one history row
    per epoch (train loss, validation metrics of the re-ranked shortlist, lr, seconds), the best epoch and its
    validation value, how many epochs ran, whether early stopping ended the run."""

    reranker: RetrievalHead
    history: pd.DataFrame
    best_epoch: int
    best_value: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    config: RerankConfig = field(repr=False)
    name: str = "crosstvr"


def validation_queries(n_queries: int, n: int | None) -> np.ndarray:
    """Positions of the validation queries :func:`train_reranker` validates on: all (``n`` None or >= ``n_queries``)
    or ``n`` evenly spaced over them (a split lists a video's captions together, so the first ``n`` would cover few
    videos)."""
    if n is None or n >= n_queries:
        return np.arange(n_queries)
    if n < 1:
        raise ValueError(f"val_queries must be None or >= 1, got {n!r}")
    return np.unique(np.linspace(0, n_queries - 1, int(n)).round().astype(np.int64))


def _stage1_scorers(stage1, train, val, val_pos: np.ndarray, device):
    """``(in-batch scorer (idx, vids) -> [B, B], validation scores [Qv, Vv])`` from a frozen stage-1 head or from
    precomputed ``(train [N_train, V_train], val [Qv or N_val, V_val])`` score matrices; ``val_pos``: the validation
    queries used (positions in ``val.query_index``)."""
    val_q = np.asarray(val.query_index)[val_pos]
    if isinstance(stage1, RetrievalHead):
        val_scores = score_all(stage1, val.texts.index(torch.as_tensor(val_q)), val.videos, chunk=EVAL_CHUNK)

        def batch(idx, vids):
            t, v = train.texts.index(torch.as_tensor(idx)), train.videos.index(torch.as_tensor(vids))
            return score_all(stage1, t, v, device=device)

        return batch, val_scores
    if not (isinstance(stage1, (tuple, list)) and len(stage1) == 2):
        raise TypeError("stage1 must be a trained RetrievalHead or a pair (train_scores, val_scores) of [T, V] tensors")
    tr, va = (torch.as_tensor(x).detach().cpu() for x in stage1)
    if tr.shape != (len(train), len(train.videos)):
        raise ValueError(f"train stage-1 scores must be [{len(train)}, {len(train.videos)}], got {tuple(tr.shape)}")
    if va.shape == (len(val), len(val.videos)):
        va = va[torch.as_tensor(np.asarray(val.query_index))]
    elif va.shape != (len(val.query_index), len(val.videos)):
        raise ValueError(
            f"val stage-1 scores must be [{len(val)} captions or {len(val.query_index)} queries, {len(val.videos)}], "
            f"got {tuple(va.shape)}"
        )
    va = va[torch.as_tensor(val_pos)]

    def batch(idx, vids):
        return tr[torch.as_tensor(idx)][:, torch.as_tensor(vids)]

    return batch, va


def _param_groups(reranker: torch.nn.Module, cfg: RerankConfig) -> list[dict]:
    """Weight matrices decay; biases, norms, the learnable queries and the frame positions do not."""
    decay, no = [], []
    for name, p in reranker.named_parameters():
        if not p.requires_grad:
            continue
        embedding = name.startswith(("query_tokens", "frame_positions"))
        (decay if p.ndim >= 2 and not embedding else no).append(p)
    return [
        g
        for g in ({"params": decay, "weight_decay": cfg.weight_decay}, {"params": no, "weight_decay": 0.0})
        if g["params"]
    ]


def _batch_pairs(train, idx: np.ndarray, neg: NegativePairs):
    """The ``B`` positives, then (caption, negative video), then (negative caption, video): texts, videos, labels."""
    vids = train.text_to_video[idx]
    has_v, has_t = np.flatnonzero(neg.video >= 0), np.flatnonzero(neg.text >= 0)
    t_idx = np.concatenate([idx, idx[has_v], idx[neg.text[has_t]]])
    v_idx = np.concatenate([vids, vids[neg.video[has_v]], vids[has_t]])
    labels = torch.cat([torch.ones(len(idx)), torch.zeros(len(has_v) + len(has_t))]).long()
    return train.texts.index(torch.as_tensor(t_idx)), train.videos.index(torch.as_tensor(v_idx)), labels


def _validate(reranker, val_scores, val, val_q, cfg: RerankConfig, device) -> dict:
    texts = val.texts.index(torch.as_tensor(val_q))
    rec = rerank_top_k(
        val_scores, reranker, texts, val.videos, cfg.k, weight=cfg.weight, matching=cfg.matching,
        max_bytes=cfg.max_bytes, device=device,
    )  # fmt: skip
    return M.t2v(rec.scores, np.asarray(val.text_to_video)[val_q])


def train_reranker(
    reranker: RetrievalHead,
    stage1,
    train,
    val,
    config: RerankConfig | None = None,
    seed: int = 0,
    *,
    progress: bool = False,
) -> RerankTraining:
    """Train ``reranker`` (a :class:`~tvrlib.heads.crosstvr.CrossTVR`, or any head with ``score_pairs``) as CrossTVR's
    stage 2 (§3.3): matching loss on hard negatives drawn from the frozen stage 1's in-batch similarities.

    ``stage1``: the trained stage-1 head (frozen: scored without gradients, never optimised; its train/eval modes are
    restored), or precomputed scores ``(train [len(train), V_train], val [queries or captions, V_val])``.
    ``train`` / ``val``: :class:`~tvrlib.training.FeatureSource` with the re-ranker's inputs (CrossTVR needs
    ``with_patches=True``, and reads word tokens when present); the features are read, never written.
    ``config``: :class:`RerankConfig`. ``seed``: epoch ``e`` shuffles and samples negatives with
    ``numpy.random.default_rng([seed, e])`` and seeds torch with ``seed * 1_000_003 + e`` inside
    :func:`torch.random.fork_rng` (the perturbed top-k, dropout), as :func:`tvrlib.training.fit` does. Validation
    after each epoch: t2v metrics of the re-ranked top ``config.k`` of the validation queries; the best epoch's weights
    (strictly better ``select_metric``) are restored at the end."""
    cfg = config or RerankConfig()
    device = next(reranker.parameters()).device
    val_pos = validation_queries(len(val.query_index), cfg.val_queries)
    val_q = np.asarray(val.query_index)[val_pos]
    batch_sim, val_scores = _stage1_scorers(stage1, train, val, val_pos, device)
    n = len(train)
    batch = min(cfg.batch_size, n)
    steps = max(1, n // batch)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)
    total = cfg.epochs * steps
    opt = torch.optim.AdamW(_param_groups(reranker, cfg), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    sched = warmup_cosine(opt, total, int(round(cfg.warmup * total)))
    lower = cfg.select_metric in M.LOWER_IS_BETTER
    history, best_state, best_value, best_epoch = [], None, None, 0
    ref, stale, stopped = None, 0, False
    t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(n)
        losses = []
        reranker.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + epoch)
            for s in tqdm(range(steps), disable=not progress, desc=f"epoch {epoch}"):
                idx = order[s * batch : (s + 1) * batch]
                vids = train.text_to_video[idx]
                sim = batch_sim(idx, vids)  # frozen stage 1, [B, B], no gradients
                neg = hard_negatives(sim, np.arange(len(idx)), rng, video_ids=vids, temperature=cfg.temperature)
                texts, videos, labels = _batch_pairs(train, idx, neg)
                loss = matching_loss(reranker, texts.to(device), videos.to(device), labels)  # eq. 7
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad is not None:
                    torch.nn.utils.clip_grad_norm_(reranker.parameters(), cfg.clip_grad)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
        val_metrics = _validate(reranker, val_scores, val, val_q, cfg, device)
        value = float(val_metrics[cfg.select_metric])
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                **{f"val_{k}": float(v) for k, v in val_metrics.items() if k != "n"},
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
        )
        if best_value is None or (value < best_value if lower else value > best_value):
            best_value, best_epoch = value, epoch
            best_state = copy.deepcopy(reranker.state_dict())
        if cfg.patience is not None:
            if ref is None or (ref - value if lower else value - ref) > cfg.min_delta:
                ref, stale = value, 0
            else:
                stale += 1
                if stale >= cfg.patience and epoch < cfg.epochs:
                    stopped = True
                    break
    reranker.load_state_dict(best_state)
    reranker.eval()
    return RerankTraining(
        reranker,
        pd.DataFrame(history),
        best_epoch,
        float(best_value),
        len(history),
        stopped,
        time.perf_counter() - t_start,
        cfg,
        type(reranker).__name__,
    )


# --------------------------------------------------------------------------- per-seed runs for the notebooks
def train_rerankers(
    stage1_runs: HeadRuns,
    reranker: str,
    train,
    val,
    *,
    config: RerankConfig | None = None,
    reranker_kwargs: Mapping | None = None,
    progress: bool = False,
) -> dict[int, RerankTraining]:
    """One re-ranker per seed of ``stage1_runs`` (kept trained heads: ``run(..., keep_heads=True)``): per seed,
    ``torch.manual_seed(seed)``, ``HEADS.build(reranker, dim=D, **reranker_kwargs)``, :func:`train_reranker` on that
    seed's trained stage-1 head with ``seed``. ``{seed: RerankTraining}``."""
    out = {}
    dim = int(train.videos.frames.shape[-1])
    for r in stage1_runs.runs:
        if r.trained is None:
            raise ValueError(f"{stage1_runs.label}, seed {r.seed}: the trained head was not kept (keep_heads=True)")
        if r.text_encoder is not None:
            raise ValueError(f"{stage1_runs.label}, seed {r.seed}: re-ranking a text-tower run is not supported")
        torch.manual_seed(r.seed)
        module = HEADS.build(reranker, **{"dim": dim, **dict(reranker_kwargs or {})})
        device = next(r.trained.parameters(), torch.empty(0)).device
        res = train_reranker(module.to(device), r.trained, train, val, config, r.seed, progress=progress)
        out[r.seed] = dataclasses.replace(res, name=reranker)
    return out


def rerank_runs(
    stage1_runs: HeadRuns,
    trainings: Mapping[int, RerankTraining] | None,
    test,
    *,
    k: int = 15,
    label: str | None = None,
    weight: float = 1.0,
    matching: str = "logit",
    dsl_temperature: float | None = None,
    queries=None,
    keep: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: bool = False,
) -> HeadRuns:
    """The test queries of ``test`` ranked by stage 1 + re-ranker, one :class:`~tvrlib.experiment.SeedRun` per seed
    of ``stage1_runs`` (paired with it by seed and query: :func:`~tvrlib.experiment.paired_difference` works).

    Per seed: the stage-1 test scores exactly as :func:`tvrlib.experiment.run` ranks them (``score_all`` of that
    seed's trained head on the query captions, ``chunk=EVAL_CHUNK``), optionally revised by :func:`dual_softmax` at
    ``dsl_temperature`` (**transductive**; before the shortlist, so DSL also picks the top K), then
    :func:`rerank_top_k` with that seed's re-ranker (``trainings[seed]``). ``k=0`` (``trainings`` may be None):
    stage 1 alone (with DSL if asked). ``queries``: re-rank only these test queries (indices into
    ``test.query_index``, or a bool mask over them; a cross-encoder's budget): stage 1 and DSL still see every test
    query, the runs hold the selected queries only, and they pair with ``subset_runs(stage1_runs, queries)``
    (:func:`tvrlib.experiment.subset_runs`). DSL's scores are ranked with exact ties (:data:`DSL_TIE_TOLERANCE`).
    The runs' training facts (epochs, best epoch, validation value, history) are the re-ranker's; ``seconds`` adds
    its training to the test re-ranking. ``keep``: keep each seed's re-ranker
    (``trained``) and its :class:`Reranked` record (``evaluation``; :func:`runs_at` needs it)."""
    suffix = f"+{next(iter(trainings.values())).name}" if (k and trainings) else ""
    suffix += "+DSL" if dsl_temperature else ""
    out = HeadRuns(f"{stage1_runs.head}{suffix}", label or f"{stage1_runs.label}{suffix}", stage1_runs.protocol)
    q = np.asarray(test.query_index)
    sel = np.arange(len(q)) if queries is None else np.asarray(queries)
    if sel.dtype == bool:
        if sel.shape != q.shape:
            raise ValueError(f"a query mask must have one entry per test query ({len(q)}), got {sel.shape}")
        sel = np.flatnonzero(sel)
    if sel.size == 0 or sel.min() < 0 or sel.max() >= len(q):
        raise ValueError(f"queries must select test queries in [0, {len(q)}), got {sel.size} indices")
    gold = np.asarray(test.text_to_video)[q][sel]
    texts = test.texts.index(torch.as_tensor(q))
    chosen = torch.as_tensor(sel)
    for r in stage1_runs.runs:
        if r.trained is None:
            raise ValueError(f"{stage1_runs.label}, seed {r.seed}: the trained head was not kept (keep_heads=True)")
        if k and (trainings is None or r.seed not in trainings):
            raise ValueError(f"no trained re-ranker for seed {r.seed} (train_rerankers over the same stage-1 runs)")
        tr = trainings[r.seed] if k else None
        t0 = time.perf_counter()
        s1, _ = query_scores(r.trained, test)
        if dsl_temperature:
            s1 = dual_softmax(s1, dsl_temperature)  # transductive: every test query at once
        rec = rerank_top_k(
            s1[chosen], tr.reranker if tr else None, texts.index(chosen), test.videos, k, weight=weight,
            matching=matching, max_bytes=max_bytes, progress=progress,
        )  # fmt: skip
        if dsl_temperature:
            rec = dataclasses.replace(rec, tie_tolerance=DSL_TIE_TOLERANCE)
        ranks = M.ranks_t2v(rec.scores, gold, tie_tolerance=rec.tie_tolerance)
        seconds = time.perf_counter() - t0
        out.runs.append(
            dataclasses.replace(
                r,
                head=out.head,
                label=out.label,
                metrics=M.summarize(ranks),
                ranks=ranks,
                gold=gold,
                epochs_run=tr.epochs_run if tr else r.epochs_run,
                best_epoch=tr.best_epoch if tr else r.best_epoch,
                stopped_early=tr.stopped_early if tr else r.stopped_early,
                best_val=tr.best_value if tr else r.best_val,
                seconds=seconds + (tr.seconds if tr else 0.0),
                history=tr.history if tr else r.history,
                trained=(tr.reranker if tr else r.trained) if keep else None,
                evaluation=rec if keep else None,
                text_encoder=None,
            )
        )
    return out


def runs_at(
    results: HeadRuns,
    *,
    k: int | None = None,
    weight: float | None = None,
    matching: str | None = None,
    label: str | None = None,
) -> HeadRuns:
    """``results`` (from :func:`rerank_runs` with ``keep=True``) re-combined at another ``k <= K`` (the paper's
    Figure 4 sweep), ``weight`` or ``matching`` from each seed's kept :class:`Reranked` record: nothing is re-scored.
    ``label``: default ``"<label> K=<k>"``."""
    k_label = k if k is not None else "same"
    out = HeadRuns(results.head, label or f"{results.label} K={k_label}", results.protocol)
    for r in results.runs:
        if not isinstance(r.evaluation, Reranked):
            raise ValueError(f"{results.label}, seed {r.seed}: no Reranked record kept (rerank_runs(..., keep=True))")
        rec = r.evaluation.at(k, weight=weight, matching_kind=matching)
        ranks = M.ranks_t2v(rec.scores, r.gold, tie_tolerance=rec.tie_tolerance)
        out.runs.append(
            dataclasses.replace(r, label=out.label, metrics=M.summarize(ranks), ranks=ranks, evaluation=rec)
        )
    return out
