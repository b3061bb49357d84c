"""Inference post-processing of a score matrix (method_cards.md card 9): CAMoE's dual softmax and QB-Norm.

Both revise the test scores ``[T, V]`` (``T`` query captions, ``V`` gallery videos) of a trained head *after* it has
scored them; neither trains anything. They differ in **what information they use**, which is what a table must say
next to their numbers (a ``transductive`` method reads the other test queries, something a deployed search engine
that answers one query at a time does not have):

* **Dual softmax, DSL** (CAMoE, ``docs/papers.md`` "CAMoE dual softmax"; card 9; CrossTVR's appendix Tables 11-14):
  ``S' = S * softmax(S / tau, dim 0)`` with ``tau = 0.01`` at inference (CLIP-ViP's ``cos * softmax(100 cos)``): a
  video that another test caption matches better is down-weighted for this one. It is
  :func:`tvrlib.reranking.dual_softmax` (re-exported here, not redefined), ``transductive = True``: it uses **all
  test queries** together. For video-to-text the true dual prior is over the other axis (:func:`dual_softmax_v2t`,
  ``softmax(S / tau, dim 1)``); CLIP-ViP reuses the t2v ``S'`` instead (card 9's pitfall). Its values are tiny
  wherever another caption wins the column (the prior is ``exp(-100 * gap)``), so many of them would fall inside the
  absolute tie tolerance of :mod:`tvrlib.metrics` (``1e-5`` for scores below 1) and rank as ties (on a 1000 x 1000
  toy with CLIP-like cosines, 82 % of the revised scores were below 1e-5 and the MnR moved from 143.8 to 201.6).
  DSL scores are therefore ranked with exact ties (``tie_tolerance``:
  :data:`tvrlib.reranking.DSL_TIE_TOLERANCE` = 0), as :func:`tvrlib.reranking.rerank_runs` ranks them.
* **QB-Norm with (dynamic) inverted softmax** (Bogolin et al., CVPR 2022, ``docs/papers.md`` "QB-Norm"; card 9): a
  *querybank* of ``B`` **training** captions scored against the test gallery, ``bank [B, V]``, estimates how
  "popular" (a hub) each gallery video is, and a video's score is divided by its popularity. Inverted softmax (IS,
  :func:`inverted_softmax`)::

      s_hat(q, g) = exp(beta s(q, g)) / sum_{b in bank} exp(beta s(b, g)),   beta = 20 on cosines

  Dynamic IS (DIS, :func:`qb_norm`): the *activation set* is the gallery videos that are the top-``k`` (``k = 1``)
  of some bank caption; only test queries whose raw top-1 video is in the activation set are normalised, the other
  rows keep their raw scores. ``transductive = False``: nothing is shared between test queries (the bank is made of
  training captions), but it does use the **training captions (querybank) and the test gallery** (the activation set
  and a query's top-1 are taken over the whole gallery).

Pitfalls handled here (card 9): the reference code exponentiates ``beta * s`` directly, which overflows for logits
(``exp(20 * 100 cos)``); here everything is computed in float64 and in log space, ``log s_hat = beta s -
logsumexp_b(beta s_b)``, which is finite for any finite scores. The reference also overwrites its input array in
place; nothing here modifies an input. Normalised and raw rows of DIS are on different scales, so a DIS matrix is
valid **only for ranking within a row** (text-to-video); its columns (video-to-text) and its values mean nothing.

Per seed, for the notebooks: :func:`postprocessed_runs` ranks the test queries of a :class:`~tvrlib.experiment.HeadRuns`
(kept trained heads) with a method applied, paired by seed and query with the raw runs
(:func:`~tvrlib.experiment.paired_difference`). :data:`POSTPROCESSORS` names the methods (``"dsl"``, ``"is"``,
``"qbnorm"``) with one call signature, :func:`apply`.

>>> base = run(P, "meanP", train, val, test)                             # one trained head per seed
>>> dsl = postprocessed_runs(base, "dsl", test)                          # transductive: all test queries
>>> qb = postprocessed_runs(base, "qbnorm", test, bank_texts=train.texts)  # querybank: the training captions
>>> paired_difference(qb, base, "R1")
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import metrics as M
from .errors import UnknownNameError
from .evaluation import EVAL_CHUNK
from .experiment import HeadRuns, query_scores
from .heads import score_all
from .heads.base import TextInput
from .reranking import DSL_TIE_TOLERANCE, dual_softmax, shortlist

__all__ = [
    "dual_softmax",
    "dual_softmax_v2t",
    "inverted_softmax",
    "activated_rows",
    "qb_norm",
    "PostProcessor",
    "POSTPROCESSORS",
    "apply",
    "postprocessed_runs",
    "DSL_TEMPERATURE",
    "QB_BETA",
    "BANK_CHUNK",
]

#: CLIP-ViP's inference temperature of the dual softmax (``softmax(100 cos)``), card 9
DSL_TEMPERATURE = 0.01
#: QB-Norm's inverse temperature for cosine similarities, card 9
QB_BETA = 20.0
#: bank rows turned into float64 at once when the log normaliser is accumulated (bounded memory for a large bank)
BANK_CHUNK = 4096


# --------------------------------------------------------------------------- dual softmax (CAMoE), v2t
def dual_softmax_v2t(sim: torch.Tensor, temperature: float = DSL_TEMPERATURE) -> torch.Tensor:
    """The dual softmax for **video-to-text** ranking: ``sim * softmax(sim / temperature, dim 1)``, the prior of
    caption ``i`` for video ``j`` taken over all test *videos* in row ``i`` (card 9: the true dual prior for v2t).

    ``sim [T, V]`` (same orientation as for t2v; rank each column). **Transductive**: uses the whole test gallery
    for each caption. :func:`tvrlib.reranking.dual_softmax` with ``dim=1``; same shape and dtype as ``sim``."""
    return dual_softmax(sim, temperature, dim=1)


dual_softmax_v2t.transductive = True  # uses every test video at once


def _dsl(scores: torch.Tensor, temperature: float = DSL_TEMPERATURE, *, direction: str = "t2v") -> torch.Tensor:
    """:func:`dual_softmax` (``direction="t2v"``, prior over the queries) or :func:`dual_softmax_v2t`
    (``"v2t"``), computed in the dtype of ``scores`` (bit for bit what :func:`tvrlib.reranking.rerank_runs`
    ranks), returned as ``float64 [T, V]`` on the CPU."""
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction must be 't2v' or 'v2t', got {direction!r}")
    s = torch.as_tensor(scores).detach()
    out = dual_softmax(s, temperature) if direction == "t2v" else dual_softmax_v2t(s, temperature)
    return out.to("cpu", torch.float64)


# --------------------------------------------------------------------------- QB-Norm: (dynamic) inverted softmax
def _as_float64(x, name: str) -> torch.Tensor:
    """``x`` as a float64 CPU tensor ``[N, V]`` (a new tensor whenever a conversion happens; never written to)."""
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D score matrix [N, V], got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has NaN or infinite entries: QB-Norm needs finite (cosine) similarities")
    return t


def _check_pair(scores, bank, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    s, b = _as_float64(scores, "scores"), _as_float64(bank, "bank")
    if s.shape[1] != b.shape[1]:
        raise ValueError(
            f"scores are [T, V] = {tuple(s.shape)} but the querybank is {tuple(b.shape)}: the bank must be scored "
            f"against the same {s.shape[1]} gallery videos (bank [B, V])"
        )
    if s.shape[1] == 0:
        raise ValueError("the gallery is empty (V = 0)")
    if b.shape[0] == 0:
        raise ValueError("the querybank is empty (B = 0): score some training captions against the test gallery")
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return s, b


def _log_normaliser(bank: torch.Tensor, beta: float) -> torch.Tensor:
    """``logsumexp_b(beta * bank[b, g])`` per gallery video, ``float64 [V]``, over :data:`BANK_CHUNK` bank rows at
    a time (a running ``logaddexp``: no ``exp`` of a large number is ever formed)."""
    c = torch.full((bank.shape[1],), float("-inf"), dtype=torch.float64)
    for i in range(0, bank.shape[0], BANK_CHUNK):
        block = bank[i : i + BANK_CHUNK].to(torch.float64)
        c = torch.logaddexp(c, torch.logsumexp(beta * block, dim=0))
    return c


def inverted_softmax(scores: torch.Tensor, bank: torch.Tensor, beta: float = QB_BETA) -> torch.Tensor:
    """QB-Norm's inverted softmax on every row, **in log space**: ``float64 [T, V]``.

    ``scores [T, V]``: the test queries against the test gallery; ``bank [B, V]``: the querybank (training captions)
    against the **same** gallery; both cosine-like (``beta = 20`` is the paper's value for cosines; numpy or torch,
    any float dtype; never modified). Returns

        ``log s_hat(q, g) = beta * s(q, g) - logsumexp_{b in bank}(beta * s(b, g))``

    i.e. the log of card 9's ``exp(beta s(q, g)) / sum_b exp(beta s(b, g))``; ``torch.exp`` of the result is that
    formula. The log is strictly increasing, so every row ranks its videos exactly as the exp form does; and it is
    the form to rank with in tvrlib: the exp form's values are about ``1 / B`` (they would fall inside the absolute
    tie tolerance of :mod:`tvrlib.metrics` for a large bank) and its ``exp`` overflows for logits, while the log form
    is finite for any finite scores (float64 throughout, the bank's normaliser accumulated by ``logaddexp``).

    A per-video constant added to both the scores and the bank cancels (``log s_hat`` is unchanged): a "hub" video
    that every bank caption scores high is pushed down every row. ``transductive = False``: a row depends on its own
    query, the bank and its column only."""
    s, b = _check_pair(scores, bank, beta)
    return beta * s - _log_normaliser(b, beta)[None, :]


def _activated(s: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`activated_rows` on checked float64 inputs."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer (the bank captions' top-k), got {k!r}")
    active = torch.zeros(s.shape[1], dtype=torch.bool)
    active[shortlist(b, int(k)).reshape(-1)] = True
    return active[shortlist(s, 1)[:, 0]]


inverted_softmax.transductive = False  # the querybank is training captions; no other test query is read


def activated_rows(scores: torch.Tensor, bank: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The test queries that dynamic inverted softmax normalises, ``bool [T]`` (QB-Norm's DIS, card 9).

    The *activation set* is every gallery video that is among the top ``k`` of at least one bank caption
    (``bank [B, V]``); query ``i`` of ``scores [T, V]`` is normalised when its raw top-1 video is in that set. Top-k
    and top-1 are stable (:func:`tvrlib.reranking.shortlist`: among equal scores the lower video index wins; the
    reference's ``argsort`` breaks such ties arbitrarily)."""
    s, b = _check_pair(scores, bank, QB_BETA)
    return _activated(s, b, k)


def qb_norm(
    scores: torch.Tensor,
    bank: torch.Tensor,
    beta: float = QB_BETA,
    k: int = 1,
    dynamic: bool = True,
) -> torch.Tensor:
    """QB-Norm (Bogolin et al., CVPR 2022; card 9): ``float64 [T, V]`` scores for **text-to-video ranking only**.

    ``scores [T, V]``: the test queries against the test gallery; ``bank [B, V]``: the querybank, **training**
    captions scored against the same gallery by the same head (cosine-like; numpy or torch; never modified).

    ``dynamic=True`` (DIS, the paper's default): the rows of :func:`activated_rows` (``k``: the bank captions' top-k
    that make the activation set, ``k = 1`` in the paper) get :func:`inverted_softmax` (log space, ``beta``); every
    other row keeps its raw scores, bit for bit (as float64). ``dynamic=False``: inverted softmax on every row.

    **Only row-wise ranking is valid**: a normalised row holds ``log s_hat`` values and a raw row cosines, two
    different scales, so compare scores within one row only (t2v ranks, :func:`tvrlib.metrics.ranks_t2v`); columns
    (v2t) and values across rows mean nothing. Each row ranks exactly as the reference's (whose raw rows hold
    ``exp(beta s)``, the same order as ``s``). ``transductive = False``: no other test query is read; it uses the
    training captions (querybank) and the whole test gallery (activation set, a query's top-1)."""
    s, b = _check_pair(scores, bank, beta)
    rows = _activated(s, b, k) if dynamic else torch.ones(s.shape[0], dtype=torch.bool)
    normalised = beta * s - _log_normaliser(b, beta)[None, :]  # inverted_softmax of the checked inputs
    return torch.where(rows[:, None], normalised, s)  # a new tensor: s (possibly the caller's float64) is untouched


qb_norm.transductive = False  # the querybank is training captions; no other test query is read


def _dynamic_qb_norm(scores: torch.Tensor, bank: torch.Tensor, beta: float = QB_BETA, k: int = 1) -> torch.Tensor:
    """:func:`qb_norm` with ``dynamic=True`` (the ``"qbnorm"`` entry; ``"is"`` is the non-dynamic one)."""
    return qb_norm(scores, bank, beta, k, dynamic=True)


# --------------------------------------------------------------------------- by name
@dataclass(frozen=True)
class PostProcessor:
    """A post-processing method by name: ``fn(scores, [bank,] **options) -> float64 [T, V]``, what it reads
    (``uses``, one line), whether that includes the other test queries (``transductive``), whether it needs a
    querybank (``needs_bank``), and its source (``paper``)."""

    name: str
    fn: Callable[..., torch.Tensor]
    transductive: bool
    uses: str
    needs_bank: bool
    paper: str
    tie_tolerance: float | None = None  # how its scores are ranked: the metrics' rule (None) or exact (DSL)

    def __call__(self, scores: torch.Tensor, *, bank: torch.Tensor | None = None, **options) -> torch.Tensor:
        """The revised scores ``float64 [T, V]`` of ``scores [T, V]`` (``bank [B, V]``: the querybank, required
        exactly when ``needs_bank``); ``options``: the method's own (``temperature``, ``direction`` for DSL; ``beta``,
        ``k`` for QB-Norm)."""
        if self.needs_bank and bank is None:
            raise ValueError(
                f"{self.name!r} needs a querybank: bank [B, V], training captions scored against the test gallery"
            )
        if not self.needs_bank and bank is not None:
            raise ValueError(f"{self.name!r} uses no querybank ({self.uses}); do not pass bank")
        return self.fn(scores, bank, **options) if self.needs_bank else self.fn(scores, **options)


_BANK_USES = "training captions (querybank) and the test gallery"

#: name -> :class:`PostProcessor`: ``"dsl"`` (CAMoE's dual softmax), ``"is"`` (inverted softmax on every row),
#: ``"qbnorm"`` (QB-Norm's dynamic inverted softmax)
POSTPROCESSORS: dict[str, PostProcessor] = {
    "dsl": PostProcessor(
        "dsl",
        _dsl,
        bool(dual_softmax.transductive),
        "all test queries",
        False,
        "CAMoE (card 9)",
        tie_tolerance=DSL_TIE_TOLERANCE,
    ),
    "is": PostProcessor(
        "is",
        inverted_softmax,
        bool(inverted_softmax.transductive),
        _BANK_USES,
        True,
        "QB-Norm, Bogolin et al. CVPR 2022 (card 9)",
    ),
    "qbnorm": PostProcessor(
        "qbnorm",
        _dynamic_qb_norm,
        bool(qb_norm.transductive),
        _BANK_USES,
        True,
        "QB-Norm, Bogolin et al. CVPR 2022 (card 9)",
    ),
}


def _method(name: str) -> PostProcessor:
    if name not in POSTPROCESSORS:
        raise UnknownNameError(f"unknown post-processing {name!r}; known: {sorted(POSTPROCESSORS)}")
    return POSTPROCESSORS[name]


def apply(name: str, scores: torch.Tensor, *, bank: torch.Tensor | None = None, **options) -> torch.Tensor:
    """``POSTPROCESSORS[name](scores, bank=bank, **options)``: ``scores [T, V]`` -> ``float64 [T, V]``."""
    return _method(name)(scores, bank=bank, **options)


# --------------------------------------------------------------------------- per-seed runs for the notebooks
def postprocessed_runs(
    runs: HeadRuns,
    method: str,
    test,
    *,
    bank_texts: TextInput | None = None,
    label: str | None = None,
    **options,
) -> HeadRuns:
    """The test queries of ``test`` ranked (t2v) by each seed's trained head with ``method`` applied to its scores,
    one :class:`~tvrlib.experiment.SeedRun` per seed of ``runs``, paired with them by seed and query
    (:func:`~tvrlib.experiment.paired_difference` works).

    ``runs``: a :class:`~tvrlib.experiment.HeadRuns` with its trained heads kept (``run(..., keep_heads=True)``);
    ``method``: a name of :data:`POSTPROCESSORS`; ``options``: its options (e.g. ``temperature=0.01`` for ``"dsl"``,
    ``beta=20.0, k=1`` for ``"qbnorm"``). ``test``: the :class:`~tvrlib.training.FeatureSource` the runs were ranked
    on. ``bank_texts``: for ``"qbnorm"`` / ``"is"``, the querybank captions (:class:`~tvrlib.heads.TextInput` of
    **training** captions, e.g. ``train.texts`` or a subset ``train.texts.index(idx)``; a source with ``.texts`` is
    taken as its captions): each seed's own head scores them against the test gallery, ``[B, V]``.

    Per seed: the test scores exactly as :func:`tvrlib.experiment.run` ranks them (``score_all`` of the trained head
    on the query captions ``test.query_index``, ``chunk=EVAL_CHUNK``; DSL is then bit for bit
    ``rerank_runs(runs, None, test, k=0, dsl_temperature=...)``), the bank scores, the method, and
    :func:`tvrlib.metrics.ranks_t2v`. Training facts (epochs, best epoch, validation value, history, the trained
    head) are the seed's; ``seconds``: the scoring and post-processing only; ``evaluation`` is dropped. ``label``:
    default ``"<runs.label> + <method>"``; the head is ``"<runs.head>+<method>"``. Runs that trained the text tower
    are refused (their test and bank captions would need re-encoding by each seed's tower)."""
    proc = _method(method)
    if bank_texts is not None and not isinstance(bank_texts, TextInput):
        bank_texts = getattr(bank_texts, "texts", bank_texts)
    if proc.needs_bank:
        if bank_texts is None:
            raise ValueError(
                f"{method!r} needs a querybank: pass bank_texts=train.texts (training captions; a subset with "
                f"train.texts.index(idx))"
            )
        if not isinstance(bank_texts, TextInput):
            raise TypeError(f"bank_texts must be a TextInput of training captions, got {type(bank_texts).__name__}")
        d_bank, d_test = bank_texts.sentence.shape[-1], test.texts.sentence.shape[-1]
        if d_bank != d_test:
            raise ValueError(f"bank_texts have {d_bank}-d features but the test captions {d_test}-d: same encoder?")
    elif bank_texts is not None:
        raise ValueError(f"{method!r} uses no querybank ({proc.uses}); do not pass bank_texts")
    if not runs.runs:
        raise ValueError(f"{runs.label}: no seed runs to post-process")
    out = HeadRuns(f"{runs.head}+{method}", label or f"{runs.label} + {method}", runs.protocol)
    for r in runs.runs:
        if r.trained is None:
            raise ValueError(f"{runs.label}, seed {r.seed}: the trained head was not kept (run(..., keep_heads=True))")
        if r.text_encoder is not None:
            raise ValueError(
                f"{runs.label}, seed {r.seed}: post-processing a text-tower run is not supported (its test and bank "
                "captions would need re-encoding by that seed's tower)"
            )
        t0 = time.perf_counter()
        scores, gold = query_scores(r.trained, test)  # exactly as tvrlib.experiment.run ranks them
        bank = score_all(r.trained, bank_texts, test.videos, chunk=EVAL_CHUNK) if proc.needs_bank else None
        revised = proc(scores, bank=bank, **options)
        ranks = M.ranks_t2v(revised, gold, tie_tolerance=proc.tie_tolerance)
        out.runs.append(
            dataclasses.replace(
                r,
                head=out.head,
                label=out.label,
                metrics=M.summarize(ranks),
                ranks=ranks,
                gold=gold,
                seconds=time.perf_counter() - t0,
                evaluation=None,
            )
        )
    return out
