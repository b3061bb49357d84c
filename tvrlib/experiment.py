"""One training protocol for every head: train by name over several seeds, select on validation, test, compare.

Every notebook that trains and compares heads does it through this module, so that two numbers in two notebooks
were made the same way:

* :class:`Protocol` -- the recipe (loss, the temperature's starting value, optimiser, learning rates, batch, the
  maximum number of epochs and the early-stopping patience on validation, the training seeds), built from a run
  profile (:meth:`Protocol.from_profile`, :meth:`Protocol.from_session`). The temperature starts from **CLIP's own
  learned** ``logit_scale``, as CLIP4Clip and X-Pool do. Its text side: frozen caption features (the default), or
  ``text_training`` (CLIP's text tower trains over the cached frame features), with or without ``hard_negatives``
  (counterfactual captions as extra video-to-text negatives). A head's protocol differs from the shared one only where
  its paper differs, through :meth:`Protocol.replace`, which records every change with its reason;
  :meth:`Protocol.differences` says it in one line.
* :func:`setup` -- what a notebook that trains heads starts from (:class:`Bench`): the session, the training
  settings with the notebook's overrides, the protocol, and the feature sources of train, val and test.
* :func:`run` -- trains one registered head (:data:`tvrlib.heads.HEADS`) once per seed (``torch.manual_seed(seed)``
  before the head is built, ``FitConfig.seed = seed``), keeps each seed's best validation epoch (early stopping
  with the protocol's patience), and ranks the test queries: a :class:`HeadRuns` of per-seed :class:`SeedRun`
  (test metrics, per-query ranks for paired tests, epochs run, best epoch). :func:`run_heads` does it for a list.
* :func:`compare` -- trains a baseline and a candidate under the same protocol and seeds (the papers' baseline row
  is a *trained* head under the same recipe) and returns their :func:`paired_difference`.
* :func:`summarise_seeds` -- mean and spread over seeds (sample std, min, max) per head and metric;
  :func:`seed_rows` -- one tidy row per head and seed.
* :func:`paired_difference` -- the per-seed paired bootstrap of ``metric(a) - metric(b)`` over the test queries
  (:func:`tvrlib.metrics.paired_bootstrap`), and the mean difference over seeds with a CI from one bootstrap that
  resamples the test queries *and* the seeds (see its docstring for the variance it covers), and how many seeds
  have each sign. Verdicts on a difference: :func:`tvrlib.paper_tables.verdict`.

>>> B = setup("quick", seed=0, max_epochs=None)   # session, settings, protocol, feature sources (a notebook's start)
>>> S, P, train, val, test = B.session, B.protocol, B.train, B.val, B.test
>>> P = Protocol.from_session(S)                                  # the profile's protocol, CLIP's temperature
>>> xp = P.replace(head_options={"dropout": 0.3}, reason="X-Pool's dropout")
>>> mean, seq = run(P, "meanP", train, val, test), run(P, "seqTransf", train, val, test)
>>> summarise_seeds([mean, seq]); d = paired_difference(seq, mean, "R1"); verdict(d, direction=+1)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .evaluation import EVAL_CHUNK
from .heads import HEADS, score_all
from .heads.base import RetrievalHead
from .metrics import LOWER_IS_BETTER, METRICS
from .profiles import training_settings
from .training import FitConfig, RetrievalModel, fit
from .twins import twin_outcomes

__all__ = [
    "Change",
    "Protocol",
    "SeedRun",
    "HeadRuns",
    "Comparison",
    "run",
    "run_heads",
    "compare",
    "summarise_seeds",
    "seed_rows",
    "paired_difference",
    "rank_on",
    "twin_runs",
    "judge",
    "training_summary",
    "twin_accuracy_over_seeds",
    "twin_seed_rows",
]

_BOOT_CHUNK_ELEMS = 1 << 22  # bootstrap weights held at once


# --------------------------------------------------------------------------- the protocol
@dataclass(frozen=True)
class Change:
    """One recorded difference from the shared protocol: ``field`` went from ``old`` to ``new`` because ``reason``."""

    field: str
    old: Any
    new: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.field} {_fmt(self.old)} -> {_fmt(self.new)} ({self.reason})"


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}" if v else "{}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


@dataclass(frozen=True)
class Protocol:
    """The one training recipe of a comparison (every field is a :class:`~tvrlib.training.FitConfig` knob, except
    ``max_epochs`` -> ``epochs``, ``seeds``, ``logit_scale``, ``temporal_layers``, ``head_options`` and
    ``text_training``).

    ``logit_scale``: the temperature's starting log-value; :meth:`from_profile` / :meth:`from_session` set CLIP's
    own (``S.encoder.model.logit_scale.item()``). ``max_epochs``: the budget (and the span of the warm-up/cosine
    schedule); ``patience``: stop once validation ``select_metric`` has not improved by more than ``min_delta`` for
    that many epochs (None: run every epoch). ``seeds``: one training run per seed. ``temporal_layers``: the
    ``layers`` of every head that takes it. ``head_options``: keyword arguments every head of this protocol must
    accept (a paper's own setting, e.g. X-Pool's dropout: set it with :meth:`replace`). ``changes``: what
    :meth:`replace` changed and why.

    The text side (:func:`run` builds the sources and the model for it): ``text_training=False`` (the default)
    trains on cached frozen caption features; ``True`` trains CLIP's text tower with the head at ``lr_text`` over
    the cached frozen frame features (:class:`~tvrlib.training.TextTowerSource`,
    :func:`~tvrlib.training.text_tower_copy`; CLIP4Clip and X-Pool fine-tune the text encoder).
    ``hard_negatives=k`` (0: off): per training caption and step, ``k`` minimal edits of *that caption* that make
    it false of its video (:func:`tvrlib.synthetic.counterfactuals.caption_counterfactual_table`: one move's
    direction flipped, or two adjacent events swapped, every other word kept) join the video-to-text side of the
    loss; with frozen text they are the frozen text tower's embeddings, with
    ``text_training`` the training text tower encodes them. Synthetic data only (an error on real data).
    ``hard_negative_factors``: which changes make them (``"direction"``, ``"order"``); ``hard_negative_weight``
    (> 0): also that weight times the contrast of each true caption with its own edits alone
    (:func:`tvrlib.losses.edit_contrast`). ``reversed_negatives``: each caption's text-to-video softmax also holds
    its own video with the frames reversed (any dataset; a negative only an order-aware head can separate).
    """

    max_epochs: int
    patience: int | None
    seeds: tuple[int, ...]
    batch_size: int
    lr: float
    logit_scale: float
    loss: str = "infonce"
    margin: float = 0.2
    min_delta: float = 0.0
    select_metric: str = "R1"
    lr_encoder: float = 1e-7
    optimizer: str = "adamw"
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup: float = 0.1
    clip_grad: float | None = 1.0
    max_steps_per_epoch: int | None = None
    temporal_layers: int | None = None
    head_options: tuple[tuple[str, Any], ...] = ()
    text_training: bool = False
    lr_text: float = 3e-4
    hard_negatives: int = 0
    hard_negative_factors: tuple[str, ...] = ("direction", "order")
    hard_negative_weight: float = 0.0
    reversed_negatives: bool = False
    profile: str | None = None
    changes: tuple[Change, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "hard_negative_factors", tuple(self.hard_negative_factors))
        opts = self.head_options
        if isinstance(opts, Mapping):
            opts = opts.items()
        object.__setattr__(self, "head_options", tuple(sorted((str(k), v) for k, v in opts)))
        if not self.seeds:
            raise ValueError("a protocol needs at least one training seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"the seeds must be distinct, got {self.seeds}")
        if int(self.max_epochs) != self.max_epochs or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {self.max_epochs!r}")
        if not math.isfinite(self.logit_scale):
            raise ValueError(f"logit_scale must be a finite log-temperature, got {self.logit_scale!r}")
        unknown = set(self.hard_negative_factors) - {"direction", "order"}
        if unknown or not self.hard_negative_factors:
            raise ValueError(
                f"hard_negative_factors must be some of 'direction', 'order', got {self.hard_negative_factors}"
            )
        if not isinstance(self.text_training, bool):
            raise TypeError(f"text_training must be True or False, got {self.text_training!r}")
        self.fit_config(self.seeds[0])  # FitConfig checks loss, optimiser, metric, patience, text knobs

    # -- building ------------------------------------------------------------------------------------------------
    @classmethod
    def from_profile(
        cls, profile: str, *, logit_scale: float, seed: int = 0, settings: Mapping | None = None, **overrides
    ) -> Protocol:
        """The protocol of run profile ``profile`` (:func:`tvrlib.profiles.training_settings`: ``max_epochs``,
        ``patience``, ``seeds`` -- a count: seeds ``seed, seed + 1, ...`` --, ``batch_size``, ``lr``,
        ``lr_encoder``, ``temporal_layers``). ``logit_scale``: the temperature's starting log-value, CLIP's own
        (``S.encoder.model.logit_scale.item()``). ``settings``: a notebook's training settings if already read
        (``training_settings(profile, max_epochs=..., ...)``). ``overrides`` that are not None set other fields (the
        protocol as stated up front, not a recorded change: use :meth:`replace` for a head that differs);
        ``patience=0`` turns early stopping off (every one of ``max_epochs`` epochs runs)."""
        T = dict(settings) if settings is not None else training_settings(profile)
        base = {
            "max_epochs": T["max_epochs"],
            "patience": T["patience"] or None,
            "seeds": tuple(range(seed, seed + int(T["seeds"]))),
            "batch_size": T["batch_size"],
            "lr": T["lr"],
            "lr_encoder": T["lr_encoder"],
            "temporal_layers": T.get("temporal_layers"),
            "logit_scale": float(logit_scale),
            "profile": profile,
        }
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown protocol fields {sorted(unknown)}")
        base.update({k: v for k, v in overrides.items() if v is not None})
        base["patience"] = base["patience"] or None  # 0: no early stopping (None means "the profile's value")
        return cls(**base)

    @classmethod
    def from_session(cls, S, *, settings: Mapping | None = None, **overrides) -> Protocol:
        """:meth:`from_profile` for a :class:`tvrlib.session.Session`: its profile, its seed as the first training
        seed, and the temperature of its CLIP encoder (``S.encoder.model.logit_scale``) as the starting value."""
        return cls.from_profile(
            S.profile,
            logit_scale=float(S.encoder.model.logit_scale.item()),
            seed=S.seed,
            settings=settings,
            **overrides,
        )

    def replace(self, *, reason: str, **changes) -> Protocol:
        """A copy with ``changes``, each recorded with ``reason`` (required: why this head's paper differs).

        ``head_options`` is merged into the current options. A change to the current value records nothing."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("Protocol.replace needs a reason: say where the head's paper differs from the protocol")
        if "changes" in changes:
            raise TypeError("changes are recorded by replace itself")
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown protocol fields {sorted(unknown)}; fields: {sorted(names - {'changes'})}")
        new_values, recorded = {}, []
        for name, value in changes.items():
            old = getattr(self, name)
            if name == "head_options":
                merged = {**dict(old), **dict(value)}
                value = tuple(sorted(merged.items()))
                if value == old:
                    continue
                recorded.append(Change(name, dict(old), merged, reason.strip()))
            else:
                if name == "seeds":
                    value = tuple(value)
                if value == old:
                    continue
                recorded.append(Change(name, old, value, reason.strip()))
            new_values[name] = value
        return dataclasses.replace(self, **new_values, changes=self.changes + tuple(recorded))

    # -- using -----------------------------------------------------------------------------------------------------
    def fit_config(self, seed: int) -> FitConfig:
        """The :class:`~tvrlib.training.FitConfig` of the run with training seed ``seed``."""
        return FitConfig(
            epochs=int(self.max_epochs),
            batch_size=self.batch_size,
            lr=self.lr,
            lr_encoder=self.lr_encoder,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            betas=self.betas,
            eps=self.eps,
            warmup=self.warmup,
            clip_grad=self.clip_grad,
            loss=self.loss,
            margin=self.margin,
            seed=int(seed),
            max_steps_per_epoch=self.max_steps_per_epoch,
            select_metric=self.select_metric,
            patience=self.patience,
            min_delta=self.min_delta,
            lr_text=self.lr_text,
            hard_negatives=int(self.hard_negatives),
            hard_negative_weight=float(self.hard_negative_weight),
            reversed_negatives=bool(self.reversed_negatives),
        )

    def head_kwargs(self, name: str, dim: int, extra: Mapping | None = None) -> dict:
        """The keyword arguments that build registered head ``name``: the shared ``dim``, ``temporal_layers`` and
        ``extra`` (e.g. ``init_from``) where it takes them, and every one of ``head_options`` (an error if not)."""
        shared = {"dim": dim}
        if self.temporal_layers is not None:
            shared["layers"] = int(self.temporal_layers)
        shared.update(extra or {})
        kwargs = HEADS.accepted_kwargs(name, **shared)
        own = dict(self.head_options)
        if own:
            taken = HEADS.accepted_kwargs(name, **own)
            refused = sorted(set(own) - set(taken))
            if refused:
                raise TypeError(f"head {name!r} does not take the protocol's head_options {refused}")
            kwargs.update(own)
        return kwargs

    def differences(self) -> str:
        """One line: what differs from the shared protocol and why (empty when nothing does)."""
        if not self.changes:
            return ""
        return "differs from the protocol: " + "; ".join(str(c) for c in self.changes)

    def describe(self) -> str:
        """The protocol in one line (for a notebook to print above its comparisons)."""
        pat = f"early stopping after {self.patience} epochs without a better val {self.select_metric}"
        if self.patience is None:
            pat = f"every epoch, best val {self.select_metric} kept"
        line = (
            f"{self.loss}, temperature from exp({self.logit_scale:.3f}) = {math.exp(self.logit_scale):.1f}, "
            f"{self.optimizer} lr {self.lr:g}, batch {self.batch_size}, at most {self.max_epochs} epochs "
            f"({pat}; warm-up + cosine over the maximum), seeds {', '.join(map(str, self.seeds))}"
        )
        if self.head_options:
            line += ", head options " + _fmt(dict(self.head_options))
        if self.text_training:
            line += f", text tower trained at lr {self.lr_text:g} over cached frame features (image tower frozen)"
        if self.hard_negatives:
            which = "training" if self.text_training else "frozen"
            line += (
                f", {self.hard_negatives} counterfactual caption(s) ({'/'.join(self.hard_negative_factors)}) per "
                f"caption as extra video-to-text negatives ({which} text tower)"
            )
            if self.hard_negative_weight:
                line += f", plus {self.hard_negative_weight:g} x their contrast with the true caption alone"
        if self.reversed_negatives:
            line += ", each caption also against its own video with the frames reversed (t2v)"
        if self.changes:
            line += "; " + self.differences()
        return ("protocol" + (f" ({self.profile})" if self.profile else "") + ": ") + line

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["head_options"] = dict(self.head_options)
        d["changes"] = [str(c) for c in self.changes]
        return d


# --------------------------------------------------------------------------- results of runs
#: the notebooks' budgets on a light profile (``settings["light"]``: quick and quick_alt), which train every head
#: several times on two CPU cores: captions per step, steps between validation checks, epochs at most, patience
QUICK_BUDGETS = {
    "sentence": {"batch_size": 64, "steps": 40, "epochs": 8, "patience": 2},  # notebook 05 (and 10, its heads)
    "global_local": {"batch_size": 32, "steps": 40, "epochs": 10, "patience": 3},  # notebook 06
    "token": {"batch_size": 32, "steps": 40, "epochs": 20, "patience": 3},  # notebook 07 (and 08, 09)
}
#: validation videos used for model selection on a light profile (every one elsewhere)
QUICK_VAL_VIDEOS = 150


@dataclass
class Bench:
    """What a notebook that trains and compares heads starts from (:func:`setup`)."""

    session: Any  # tvrlib.session.Session: the profile, the data, the CLIP encoder, results
    settings: dict  # the profile's training settings with the notebook's overrides
    protocol: Protocol  # the one recipe every head is trained with
    train: Any  # FeatureSource of the training split (cached CLIP features)
    val: Any  # ... of the validation split (model selection)
    test: Any  # ... of the test split (what run() ranks: the t2v queries vs every test video)

    @property
    def light(self) -> bool:
        """Whether the profile asks for the notebooks' light budget (quick and its robustness twin quick_alt)."""
        return bool(self.settings["light"])

    def budget(
        self,
        name: str,
        *,
        reason: str,
        batch_size: int | None = None,
        steps_per_epoch: int | None = None,
        max_epochs: int | None = None,
        patience: int | None = None,
    ) -> Protocol:
        """The protocol a notebook trains with. On a light profile: the quick budget ``QUICK_BUDGETS[name]``, where a
        notebook parameter that is set wins, recorded with ``reason`` (why this notebook's budget). Elsewhere: the
        profile's protocol (``batch_size`` / ``max_epochs`` / ``patience`` already went to :func:`setup`), with
        ``steps_per_epoch`` applied when set (0 or None: a full pass)."""
        if name not in QUICK_BUDGETS:
            raise ValueError(f"unknown budget {name!r}; budgets: {sorted(QUICK_BUDGETS)}")
        if self.light:
            q = QUICK_BUDGETS[name]
            return self.protocol.replace(
                batch_size=batch_size or q["batch_size"],
                max_steps_per_epoch=steps_per_epoch if steps_per_epoch is not None else q["steps"],
                max_epochs=max_epochs or q["epochs"],
                patience=patience or q["patience"],
                reason=reason,
            )
        if steps_per_epoch:
            return self.protocol.replace(
                max_steps_per_epoch=steps_per_epoch, reason="the notebook's steps_per_epoch parameter"
            )
        return self.protocol

    def validation(self, n_videos: int | None = None) -> Any:
        """The validation source for model selection: its first ``n_videos`` videos (None: ``QUICK_VAL_VIDEOS`` on a
        light profile, every one elsewhere)."""
        n = n_videos or (QUICK_VAL_VIDEOS if self.light else None)
        return self.val.subset(n) if n and n < len(self.val.videos) else self.val


def setup(
    profile: str,
    *,
    dataset: str | None = None,
    clip_model: str | None = None,
    pretrained: str | None = None,
    device: str = "auto",
    seed: int = 0,
    threads: int | None = None,
    text_training: bool | None = None,
    lr_text: float | None = None,
    hard_negatives: int | None = None,
    words: bool = False,
    patches: bool = False,
    **training,
) -> Bench:
    """The start of every notebook that trains heads: the session (:func:`tvrlib.session.setup`), the training
    settings (:func:`tvrlib.profiles.training_settings`; ``training`` overrides that are None keep the profile's),
    the shared :class:`Protocol` (:meth:`Protocol.from_session`) and the feature sources of the three splits.
    ``text_training``, ``lr_text``, ``hard_negatives``: the protocol's text side (None: its defaults, frozen text
    without hard negatives); :func:`run` builds the sources and the model they need. ``words`` / ``patches``: the
    sources also carry the captions' word tokens / the frames' patch tokens (what the token-level heads ``wti``,
    ``ts2net``, ``global_local`` read; without them those heads fall back to the sentence / raise)."""
    from .session import setup as session_setup
    from .training import FeatureSource

    S = session_setup(
        profile,
        dataset=dataset,
        clip_model=clip_model,
        pretrained=pretrained,
        device=device,
        seed=seed,
        threads=threads,
    )
    T = training_settings(profile, **training)
    text = {"text_training": text_training, "lr_text": lr_text, "hard_negatives": hard_negatives}
    return Bench(
        session=S,
        settings=T,
        protocol=Protocol.from_session(S, settings=T, **text),
        train=FeatureSource.from_session(S, "train", words, patches),
        val=FeatureSource.from_session(S, "val", words, patches),
        test=FeatureSource.from_session(S, "test", words, patches),
    )


@dataclass
class SeedRun:
    """One head trained with one seed and ranked on the test queries."""

    head: str  # registered name
    label: str  # how tables name it
    seed: int
    metrics: dict  # test t2v: R1, R5, R10, MdR, MnR, n
    ranks: np.ndarray = field(repr=False)  # [Q] test t2v rank of each query (query order of the test source)
    gold: np.ndarray = field(repr=False)  # [Q] gold video of each query (the clusters of a clustered bootstrap)
    epochs_run: int  # 0: nothing to train (no parameters; the temperature alone cannot reorder scores)
    best_epoch: int  # 0 when nothing was trained
    stopped_early: bool
    best_val: float  # the selection metric on validation at best_epoch (NaN when nothing was trained)
    seconds: float
    history: pd.DataFrame | None = field(repr=False, default=None)
    trained: RetrievalHead | None = field(repr=False, default=None)
    evaluation: Any = field(repr=False, default=None)  # what test_eval_fn returned, if given
    # the trained CLIP text tower (Protocol.text_training; None: frozen text, the session's cached caption features)
    text_encoder: Any = field(repr=False, default=None)


@dataclass
class HeadRuns:
    """One head under one protocol, one :class:`SeedRun` per seed of the protocol."""

    head: str
    label: str
    protocol: Protocol = field(repr=False)
    runs: list[SeedRun] = field(default_factory=list)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(r.seed for r in self.runs)

    @property
    def trained(self) -> bool:
        return any(r.epochs_run > 0 for r in self.runs)

    def by_seed(self) -> dict[int, SeedRun]:
        return {r.seed: r for r in self.runs}

    def ranks(self) -> np.ndarray:
        """``[seeds, Q]`` test ranks."""
        return np.stack([r.ranks for r in self.runs])

    def table(self) -> pd.DataFrame:
        """One row per seed: test metrics, epochs run, best epoch, whether early stopping ended the run."""
        return pd.DataFrame(seed_rows(self)).set_index("seed")

    def note(self) -> str:
        """One line for the notebook: the label and how its protocol differs (empty when it does not)."""
        diff = self.protocol.differences()
        return f"{self.label}: {diff}" if diff else ""

    def __iter__(self):
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


def query_scores(head: RetrievalHead, test, texts=None) -> tuple[torch.Tensor, np.ndarray]:
    """The scores ``[Q, V]`` of ``test``'s t2v queries against its videos exactly as :func:`run` ranks them
    (``score_all``, ``chunk=EVAL_CHUNK``, eval mode, no gradients) and their gold videos ``[Q]``; ``texts``: every
    test caption's features (default: ``test.texts``). Post-processing and re-ranking start from these scores."""
    q = np.asarray(test.query_index)
    gold = np.asarray(test.text_to_video)[q]
    texts = test.texts if texts is None else texts
    head.eval()
    with torch.no_grad():
        sim = score_all(head, texts.index(torch.as_tensor(q)), test.videos, chunk=EVAL_CHUNK)
    return sim, gold


def _test_ranks(head: RetrievalHead, test, texts=None) -> tuple[np.ndarray, np.ndarray]:
    """t2v ranks of ``test``'s queries; ``texts``: every test caption's features (default: ``test.texts``)."""
    sim, gold = query_scores(head, test, texts)
    return M.ranks_t2v(sim, gold), gold


def _device_of(source) -> torch.device | None:
    videos = getattr(source, "videos", None)
    frames = getattr(videos, "frames", None)
    return frames.device if isinstance(frames, torch.Tensor) else None


def _text_tower_source(source):
    """``source`` with its captions for a training text tower (a :class:`~tvrlib.training.TextTowerSource`)."""
    from .training import TextTowerSource

    return source if isinstance(source, TextTowerSource) else TextTowerSource.from_features(source)


def _counterfactual_negatives(protocol: Protocol, train):
    """The pool of hard negatives of ``train``: minimal false edits of its captions (encoded by the frozen text
    tower when the text side is frozen, as token ids when it trains)."""
    from .features import encode_texts
    from .heads.base import TextInput
    from .synthetic.counterfactuals import caption_counterfactual_table
    from .training import CaptionNegatives

    data, encoder = getattr(train, "data", None), getattr(train, "encoder", None)
    if data is None or encoder is None:
        raise ValueError(
            "hard_negatives needs the training split's captions, video specs and encoder: build the training "
            "FeatureSource with FeatureSource.from_session(S, 'train') (or tvrlib.experiment.setup)"
        )
    table = caption_counterfactual_table(data, factors=protocol.hard_negative_factors)
    if table.empty:
        raise ValueError(f"{data.dataset}/{data.split}: no caption has a counterfactual edit; set hard_negatives=0")
    captions, video_of, caption_of = table["caption"].tolist(), table["video"].to_numpy(), table["text"].to_numpy()
    if protocol.text_training:
        return CaptionNegatives(captions, video_of, tokens=encoder.tokenize(captions), caption_of=caption_of)
    with_words = train.texts.words is not None
    f = encode_texts(encoder, captions, with_words=with_words)  # the frozen (session) encoder: its cache is valid
    texts = TextInput(f.sentence, f.words, f.mask if with_words else None)
    return CaptionNegatives(captions, video_of, texts=texts, caption_of=caption_of)


def _regime_sources(protocol: Protocol, train, val, test):
    """The sources :func:`run` trains, validates and tests with under ``protocol``'s text side."""
    negatives = _counterfactual_negatives(protocol, train) if protocol.hard_negatives else None
    if protocol.text_training:
        train, val, test = _text_tower_source(train), _text_tower_source(val), _text_tower_source(test)
    if negatives is not None:
        train = train.with_negatives(negatives)
    return train, val, test


def _takes_texts(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: let the call say
    return any(p.name == "texts" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def run(
    protocol: Protocol,
    head: str,
    train,
    val,
    test,
    *,
    label: str | None = None,
    head_kwargs: Mapping | None = None,
    test_eval_fn: Callable[..., Any] | None = None,
    keep_heads: bool = True,
    progress: bool = False,
) -> HeadRuns:
    """Train registered head ``head`` once per seed of ``protocol`` and rank ``test``'s queries with each.

    ``train`` / ``val`` / ``test``: :class:`~tvrlib.training.FeatureSource` (e.g. ``FeatureSource.from_session(S,
    split)``; a capped head passes ``val.subset(n)`` / ``test.subset(n)``). ``head_kwargs``: shared build settings
    (e.g. ``init_from``) that heads take where they accept them; ``dim`` comes from the features. Per seed:
    ``torch.manual_seed(seed)``, build the head, :func:`~tvrlib.training.fit` it with ``protocol.fit_config(seed)``
    and CLIP's temperature ``protocol.logit_scale`` (best validation epoch, early stopping), then t2v ranks of the
    test queries. A head without parameters is not trained (``epochs_run = 0``): on frozen features only the
    temperature would move, and it cannot reorder the scores. ``test_eval_fn(trained_head, seed)``, if given, runs
    after each seed (e.g. :func:`tvrlib.evaluation.evaluate` for v2t and twins); its result is kept in
    ``SeedRun.evaluation``. ``keep_heads=False`` drops the trained heads (memory).

    The protocol's text side: with ``text_training`` each seed trains its own copy of the sources' CLIP text tower
    (:func:`~tvrlib.training.text_tower_copy`; the image tower and the cached frame features are untouched), every
    head is trained (a head without parameters too: its text side learns), validation and test captions are
    re-encoded by that tower, and ``test_eval_fn`` is called as ``test_eval_fn(trained_head, seed, texts=...)``
    with every test caption's features from that tower (it must take ``texts`` and evaluate with them, not with
    ``S.texts("test")``); ``SeedRun.text_encoder`` keeps the trained tower. With ``hard_negatives`` the training
    source carries the minimal false edits of the training captions (:func:`_regime_sources`).
    """
    from .training import text_tower_copy

    label = label or head
    dim = int(train.videos.frames.shape[-1])
    kwargs = protocol.head_kwargs(head, dim, head_kwargs)
    device = _device_of(train)
    if protocol.text_training and test_eval_fn is not None and not _takes_texts(test_eval_fn):
        raise TypeError(
            "with text_training the test captions are re-encoded by each seed's trained text tower: give "
            "test_eval_fn a `texts` argument, test_eval_fn(head, seed, texts), and evaluate with those texts "
            "instead of the session's cached S.texts('test')"
        )
    encoder = getattr(train, "encoder", None)
    if protocol.text_training and encoder is None:
        raise ValueError("text_training needs the encoder behind the features: FeatureSource.from_session(S, split)")
    train, val, test = _regime_sources(protocol, train, val, test)
    out = HeadRuns(head, label, protocol)
    for seed in protocol.seeds:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        module = HEADS.build(head, **kwargs)
        if device is not None:
            module = module.to(device)
        tower = text_tower_copy(encoder) if protocol.text_training else None
        if tower is not None or any(p.requires_grad for p in module.parameters()):
            model = RetrievalModel(module, encoder=tower, logit_scale=protocol.logit_scale)
            if device is not None:
                model = model.to(device)
            res = fit(model, train, val, protocol.fit_config(seed), progress=progress)
            trained, history = res.head, res.history
            epochs, best, stopped, best_val = res.epochs_run, res.best_epoch, res.stopped_early, res.best_value
        else:
            trained, history, epochs, best, stopped, best_val = module, None, 0, 0, False, float("nan")
        trained.eval()
        texts = test.texts_of(tower) if tower is not None else None
        ranks, gold = _test_ranks(trained, test, texts)
        evaluation = None
        if test_eval_fn is not None:
            evaluation = test_eval_fn(trained, seed) if tower is None else test_eval_fn(trained, seed, texts=texts)
        out.runs.append(
            SeedRun(
                head,
                label,
                seed,
                M.summarize(ranks),
                ranks,
                gold,
                int(epochs),
                int(best),
                bool(stopped),
                float(best_val),
                time.perf_counter() - t0,
                history,
                trained if keep_heads else None,
                evaluation,
                text_encoder=tower if keep_heads else None,
            )
        )
    return out


def run_heads(
    protocol: Protocol,
    heads: Iterable[str],
    train,
    val,
    test,
    *,
    protocols: Mapping[str, Protocol] | None = None,
    labels: Mapping[str, str] | None = None,
    **kwargs,
) -> dict[str, HeadRuns]:
    """:func:`run` for each registered name in ``heads``: ``{label: HeadRuns}``. ``protocols[name]`` replaces
    ``protocol`` for that head (made with :meth:`Protocol.replace`, so the difference is recorded; its seeds must be
    the protocol's). ``labels[name]``: the table name (default: the registered name)."""
    protocols, labels = dict(protocols or {}), dict(labels or {})
    unknown = set(protocols) - set(heads)
    if unknown:
        raise KeyError(f"protocols for heads that are not run: {sorted(unknown)}")
    out = {}
    for name in heads:
        p = protocols.get(name, protocol)
        if p.seeds != protocol.seeds:
            raise ValueError(
                f"{name}: its protocol's seeds {p.seeds} differ from {protocol.seeds}; paired tests need both"
            )
        lab = labels.get(name, name)
        out[lab] = run(p, name, train, val, test, label=lab, **kwargs)
    return out


@dataclass
class Comparison:
    """A baseline and a candidate under the same protocol and seeds, and ``diff = candidate - baseline``."""

    baseline: HeadRuns
    candidate: HeadRuns
    diff: dict

    def summary(self) -> pd.DataFrame:
        return summarise_seeds([self.baseline, self.candidate])


def compare(
    protocol: Protocol,
    train,
    val,
    test,
    *,
    baseline: str | HeadRuns,
    candidate: str | HeadRuns,
    metric: str = "R1",
    candidate_protocol: Protocol | None = None,
    baseline_protocol: Protocol | None = None,
    n_boot: int = 1000,
    boot_seed: int = 0,
    level: float = 0.95,
    **kwargs,
) -> Comparison:
    """Train ``baseline`` and ``candidate`` (registered names, or :class:`HeadRuns` already run) under ``protocol``
    with the same seeds, and their :func:`paired_difference` (candidate - baseline) on ``metric``.

    This is how a paper's baseline row is compared: with the matching head *trained* under the same recipe
    (e.g. ``compare(P, train, val, test, baseline="meanP", candidate="seqTransf")``), never with zero-shot. A head
    whose paper trains it differently gets ``candidate_protocol`` / ``baseline_protocol`` (from
    :meth:`Protocol.replace`); the seeds must stay the same. ``kwargs`` go to :func:`run`.
    """

    def get(x, p):
        if isinstance(x, HeadRuns):
            return x
        return run(p or protocol, x, train, val, test, **kwargs)

    for p in (candidate_protocol, baseline_protocol):
        if p is not None and p.seeds != protocol.seeds:
            raise ValueError(f"a head's protocol has seeds {p.seeds}, the comparison {protocol.seeds}")
    b, c = get(baseline, baseline_protocol), get(candidate, candidate_protocol)
    return Comparison(b, c, paired_difference(c, b, metric, n_boot=n_boot, seed=boot_seed, level=level))


# --------------------------------------------------------------------------- summaries over seeds
def _as_head_runs(results) -> list[HeadRuns]:
    if isinstance(results, HeadRuns):
        return [results]
    if isinstance(results, Comparison):
        return [results.baseline, results.candidate]
    if isinstance(results, Mapping):
        return list(results.values())
    return list(results)


def seed_rows(results) -> list[dict]:
    """One row per head and seed: head, label, seed, the test metrics, epochs_run, best_epoch, stopped_early,
    best_val, seconds (``results``: a :class:`HeadRuns`, a list or a dict of them)."""
    rows = []
    for hr in _as_head_runs(results):
        for r in hr.runs:
            rows.append(
                {
                    "head": r.label,
                    "registered": r.head,
                    "seed": r.seed,
                    **{m: r.metrics[m] for m in METRICS},
                    "n": r.metrics.get("n"),
                    "epochs_run": r.epochs_run,
                    "best_epoch": r.best_epoch,
                    "stopped_early": r.stopped_early,
                    "best_val": r.best_val,
                    "seconds": r.seconds,
                }
            )
    return rows


def summarise_seeds(results, metrics=METRICS, digits: int = 1) -> pd.DataFrame:
    """Mean and spread over training seeds, one row per head and metric.

    Columns: ``head, metric, mean, std, min, max, seeds, cell``; ``std`` is the sample standard deviation over
    seeds (ddof 1; NaN with one seed), ``cell`` the display string ``"mean ± std [min, max]"``. The rows with
    ``metric`` ``epochs_run`` and ``best_epoch`` say how long each head trained (0: nothing to train).
    """
    rows = []
    for hr in _as_head_runs(results):
        values = {m: np.array([r.metrics[m] for r in hr.runs], dtype=float) for m in metrics}
        values["epochs_run"] = np.array([r.epochs_run for r in hr.runs], dtype=float)
        values["best_epoch"] = np.array([r.best_epoch for r in hr.runs], dtype=float)
        for m, v in values.items():
            std = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
            mean = float(v.mean())
            rows.append(
                {
                    "head": hr.label,
                    "metric": m,
                    "mean": mean,
                    "std": std,
                    "min": float(v.min()),
                    "max": float(v.max()),
                    "seeds": int(v.size),
                    "cell": f"{mean:.{digits}f} ± {std:.{digits}f} [{v.min():.{digits}f}, {v.max():.{digits}f}]",
                }
            )
    return pd.DataFrame(rows, columns=["head", "metric", "mean", "std", "min", "max", "seeds", "cell"])


# --------------------------------------------------------------------------- paired differences over seeds
def _weights(rng: np.random.Generator, b: int, n_units: int, unit_of: np.ndarray | None) -> np.ndarray:
    """``[b, Q]`` integer bootstrap weights: how often each query is drawn (with ``unit_of``: each query gets the
    count of its cluster, so a cluster's queries are drawn together)."""
    draws = rng.integers(0, n_units, size=(b, n_units))
    flat = (draws + n_units * np.arange(b)[:, None]).ravel()
    counts = np.bincount(flat, minlength=b * n_units).reshape(b, n_units)
    return counts if unit_of is None else counts[:, unit_of]


def _weighted_stat(metric: str, ranks: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``metric`` of ``ranks`` [Q] under each row of integer weights ``w`` [B, Q] (the statistic of the resample
    that holds query ``i`` ``w[b, i]`` times): the same values as indexing, without building the resamples."""
    total = w.sum(axis=1)
    if metric in ("R1", "R5", "R10"):
        k = int(metric[1:])
        return 100.0 * (w * (ranks <= k)).sum(axis=1) / total
    if metric == "MnR":
        return (w * ranks).sum(axis=1) / total
    if metric == "MdR":
        order = np.argsort(ranks, kind="stable")
        sorted_ranks, cw = ranks[order], np.cumsum(w[:, order], axis=1)
        lo = np.argmax(cw > ((total - 1) // 2)[:, None], axis=1)  # positions (N-1)//2 and N//2 of the resample
        hi = np.argmax(cw > (total // 2)[:, None], axis=1)
        return 0.5 * (sorted_ranks[lo] + sorted_ranks[hi])
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def _takes_clusters() -> bool:
    return "clusters" in inspect.signature(M.paired_bootstrap).parameters


def paired_difference(
    a,
    b,
    metric: str = "R1",
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    clusters: str | np.ndarray | None = "auto",
) -> dict:
    """``metric(a) - metric(b)`` on the same test queries, per training seed and averaged over seeds.

    ``a``, ``b``: :class:`HeadRuns` with the same seeds and the same test queries (paired by seed). For MdR/MnR a
    negative difference means *a* is better (``lower_is_better`` says so).

    * ``per_seed``: for each seed, :func:`tvrlib.metrics.paired_bootstrap` of the two heads' ranks (delta, CI,
      p-value over test queries, with ``clusters`` when that function takes it).
    * ``delta``: the mean of the per-seed deltas.
    * ``ci``: a percentile bootstrap CI of that mean which covers **test-query sampling and training-seed
      variation**: each replicate resamples the test queries once (the same resample for every seed and both
      heads) and resamples the seeds with replacement, and averages the per-seed differences of that resample
      over the drawn seeds. It treats the seeds as a sample of possible training runs; with few seeds its seed
      part is coarse, which is why a verdict also asks every seed to agree in sign.
    * ``ci_queries``: the same replicates with the seeds held fixed (the plain average over our seeds): test-query
      sampling only, conditional on these training runs.
    * ``seeds_positive`` / ``seeds_negative`` / ``seeds_zero``: how many per-seed deltas have each sign;
      ``seeds_same_sign``: how many share the sign of ``delta``.

    ``clusters``: the unit that is resampled. ``"auto"``: the gold video of each query when some video has
    several queries (captions of one video are correlated: resample videos with all their captions), else the
    queries themselves; ``None``: queries; an array ``[Q]``: explicit cluster labels.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    A, B = _as_head_runs(a), _as_head_runs(b)
    if len(A) != 1 or len(B) != 1:
        raise TypeError("paired_difference compares two HeadRuns")
    A, B = A[0], B[0]
    if set(A.seeds) != set(B.seeds):
        raise ValueError(f"{A.label} ran seeds {A.seeds} and {B.label} seeds {B.seeds}: a paired test needs the same")
    seeds = sorted(A.seeds)
    ra_by, rb_by = A.by_seed(), B.by_seed()
    gold = ra_by[seeds[0]].gold
    for s in seeds:
        for r in (ra_by[s], rb_by[s]):
            if r.ranks.shape != gold.shape or not np.array_equal(r.gold, gold):
                raise ValueError(f"{A.label} and {B.label} were not ranked on the same test queries (seed {s})")
    Ra = np.stack([ra_by[s].ranks for s in seeds]).astype(np.float64)
    Rb = np.stack([rb_by[s].ranks for s in seeds]).astype(np.float64)
    S, Q = Ra.shape

    if isinstance(clusters, str):
        if clusters != "auto":
            raise ValueError(f"clusters must be 'auto', None or an array of labels, got {clusters!r}")
        labels = gold if np.unique(gold).size < gold.size else None
    else:
        labels = None if clusters is None else np.asarray(clusters)
        if labels is not None and labels.shape != (Q,):
            raise ValueError(f"clusters must have one label per test query ({Q}), got shape {labels.shape}")
    unit_of = None if labels is None else np.unique(labels, return_inverse=True)[1].ravel()
    n_units = Q if unit_of is None else int(unit_of.max()) + 1

    kw = {"clusters": labels} if (labels is not None and _takes_clusters()) else {}
    per_seed = []
    for i, s in enumerate(seeds):
        p = M.paired_bootstrap(Ra[i], Rb[i], metric=metric, n_boot=n_boot, seed=seed, level=level, **kw)
        per_seed.append(
            {
                "seed": s,
                "a": p["a"],
                "b": p["b"],
                "delta": p["delta"],
                "ci_lo": p["ci"][0],
                "ci_hi": p["ci"][1],
                "p_value": p["p_value"],
            }
        )
    deltas = np.array([r["delta"] for r in per_seed])

    rng = np.random.default_rng([seed, 7])
    seed_rng = np.random.default_rng([seed, 11])
    fixed, pooled = np.empty(n_boot), np.empty(n_boot)
    chunk = max(1, _BOOT_CHUNK_ELEMS // Q)
    for b0 in range(0, n_boot, chunk):
        nb = min(n_boot, b0 + chunk) - b0
        w = _weights(rng, nb, n_units, unit_of)
        D = np.stack([_weighted_stat(metric, Ra[i], w) - _weighted_stat(metric, Rb[i], w) for i in range(S)], 1)
        drawn = seed_rng.integers(0, S, size=(nb, S))
        mult = np.bincount((drawn + S * np.arange(nb)[:, None]).ravel(), minlength=nb * S).reshape(nb, S)
        fixed[b0 : b0 + nb] = D.mean(axis=1)
        pooled[b0 : b0 + nb] = (D * mult).sum(axis=1) / S
    delta = float(deltas.mean())
    sign = np.sign(deltas)
    return {
        "metric": metric,
        "lower_is_better": metric in LOWER_IS_BETTER,
        "a_label": A.label,
        "b_label": B.label,
        "a": float(np.mean([r["a"] for r in per_seed])),
        "b": float(np.mean([r["b"] for r in per_seed])),
        "delta": delta,
        "ci": _percentile(pooled, level),
        "ci_queries": _percentile(fixed, level),
        "level": level,
        "seeds": S,
        "seed_ids": seeds,
        "per_seed_delta": [float(d) for d in deltas],
        "per_seed": pd.DataFrame(per_seed),
        "seeds_positive": int(np.sum(sign > 0)),
        "seeds_negative": int(np.sum(sign < 0)),
        "seeds_zero": int(np.sum(sign == 0)),
        "seeds_same_sign": int(np.sum(sign == np.sign(delta))) if delta != 0 else int(np.sum(sign == 0)),
        "n": Q,
        "resampled": "queries" if labels is None else f"{n_units} clusters (videos) of queries",
        "n_boot": int(n_boot),
        "variance": (
            "test-query sampling and training-seed variation (queries and seeds resampled); "
            "ci_queries: test-query sampling only, seeds fixed"
        ),
    }


# --------------------------------------------------------------------------- what a notebook shows of its runs
def training_summary(results) -> tuple[pd.DataFrame, str]:
    """Per trained head: epochs run and best epoch of each seed (in seed order), how many runs stopped early, the
    mean best validation value and the seconds of all seeds; and one sentence on convergence (how many runs stopped
    early, how many had their best validation epoch at the last allowed one and may still have been improving)."""
    rows = pd.DataFrame(seed_rows(results))
    rows = rows[rows["epochs_run"] > 0]
    if not len(rows):
        return pd.DataFrame(), "No head here has parameters to train."
    table = rows.groupby("head", sort=False).agg(
        epochs_run=("epochs_run", lambda x: "/".join(map(str, x))),
        best_epoch=("best_epoch", lambda x: "/".join(map(str, x))),
        stopped_early=("stopped_early", "sum"),
        val_best=("best_val", "mean"),
        seconds=("seconds", "sum"),
    )
    limit = {hr.label: hr.protocol.max_epochs for hr in _as_head_runs(results)}
    at_max = rows[rows["best_epoch"] == rows["head"].map(limit)]
    by_limit = rows[(rows["epochs_run"] == rows["head"].map(limit)) & ~rows["stopped_early"].astype(bool)]
    n = len(rows)
    heads = lambda r: ", ".join(dict.fromkeys(r["head"]))  # noqa: E731
    text = (
        f"{int(rows['stopped_early'].sum())} of {n} trained runs stopped early (their patience ran out); "
        f"{len(by_limit)} of {n} were ended by the epoch limit with patience left"
        + (f" ({heads(by_limit)})" if len(by_limit) else "")
        + f"; {len(at_max)} of {n} had their best validation epoch at the last allowed epoch"
        + (
            f" ({heads(at_max)}), so those may still have been improving."
            if len(at_max)
            else ", so none was cut off at its best."
        )
    )
    return table, text


def twin_seed_rows(experiment: str, results) -> list[dict]:
    """Tidy rows of twin accuracy (%) per head, factor and seed (:func:`twin_runs`; the runs need ``test_eval_fn``
    with twins): ``experiment, method, factor, seed, twin_accuracy, n`` (``n``: the twin queries of the factor)."""
    out = []
    for hr in _as_head_runs(results):
        factors = [*dict.fromkeys(hr.runs[0].evaluation.twin_factors), "all"]
        for f in factors:
            for r in twin_runs(hr, f).runs:
                out.append(
                    {
                        "experiment": experiment,
                        "method": hr.label,
                        "factor": f,
                        "seed": r.seed,
                        "twin_accuracy": 100 * (2 - r.metrics["MnR"]),
                        "n": len(r.ranks),
                    }
                )
    return out


def twin_accuracy_over_seeds(results, factors=None) -> pd.DataFrame:
    """Twin accuracy (%) per head (rows) and factor (columns): mean over seeds of :func:`twin_seed_rows` (the runs
    need ``test_eval_fn`` with twins). ``factors``: default every factor of the first run, then ``"all"``."""
    rows = pd.DataFrame(twin_seed_rows("", results))
    table = rows.pivot_table(index="method", columns="factor", values="twin_accuracy", aggfunc="mean", sort=False)
    heads = [hr.label for hr in _as_head_runs(results)]
    table = table.loc[heads, list(factors) if factors is not None else list(dict.fromkeys(rows["factor"]))]
    return table.rename_axis(index=None, columns=None)  # the same frame as before: heads x factors, no axis names


# --------------------------------------------------------------------------- verdicts of a notebook
def judge(
    a: HeadRuns,
    b: HeadRuns,
    *,
    notebook: str,
    metric: str = "R1",
    paper: str | None = None,
    table: str = "",
    claim: str | None = None,
    paper_difference: float = float("nan"),
    hypothesis: str | None = None,
    note: str = "",
    shown: tuple[str, ...] = ("MnR",),
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict, dict]:
    """One statement "``a`` beats ``b`` on ``metric``" judged once: ``(row, view)``.

    A paper's claim (``paper``, ``table``, ``claim``, ``paper_difference``: the paper's A - B on ``metric``) gets a
    :func:`tvrlib.paper_tables.record_claim` row (verdict ``reproduces`` / ``opposite`` / ``not significant``); our
    own ``hypothesis`` a :func:`~tvrlib.paper_tables.record_hypothesis` row (``supported`` / ``contradicted`` / ``not
    significant``). Both rest on :func:`paired_difference` (test queries and training seeds resampled). ``view``:
    the display row (the difference with its CI, the CI over queries alone, seeds agreeing, the verdict, and the
    seed-mean differences of the ``shown`` metrics, which are not voted). Save the rows with
    :func:`tvrlib.paper_tables.save_claims`."""
    from .paper_tables import record_claim, record_hypothesis

    if (hypothesis is None) == (claim is None):
        raise ValueError("judge one statement: a paper's claim (paper=, claim=) or our hypothesis (hypothesis=)")
    d = paired_difference(a, b, metric, n_boot=n_boot, seed=seed)
    if claim is not None:
        if not paper:
            raise ValueError("a paper claim names its paper")
        row = record_claim(
            paper, table, claim, d, notebook=notebook, paper_difference=paper_difference, metric=metric, note=note
        )
        view = {"paper": paper, "table": table, "claim": claim, f"paper Δ{metric}": row["paper_difference"]}
    else:
        row = record_hypothesis(hypothesis, d, notebook=notebook, metric=metric, note=note)
        view = {"hypothesis": hypothesis, "metric": metric}
    view.update(
        {
            "A": a.label,
            "B": b.label,
            f"ours Δ{metric}": d["delta"],
            "95% CI": f"[{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]",
            "CI (queries only)": f"[{d['ci_queries'][0]:+.1f}, {d['ci_queries'][1]:+.1f}]",
            "seeds agreeing": f"{row['seeds_agreeing']}/{d['seeds']}",
            "verdict": row["verdict"],
        }
    )
    for m in shown:
        if m != metric:
            view[f"ours Δ{m} (shown)"] = float(
                np.mean([ra.metrics[m] - rb.metrics[m] for ra, rb in zip(a.runs, b.runs)])
            )
    return row, view


# --------------------------------------------------------------------------- notebook 05: query subsets
def subset_runs(results: HeadRuns, select, *, label: str | None = None) -> HeadRuns:
    """``results`` restricted to some of the test queries (e.g. notebook 05's captions about a single event).

    ``select``: a bool mask ``[Q]`` or query indices into each seed's ranks. Every :class:`SeedRun` keeps its
    training facts and gets the ranks, gold videos and metrics of the selected queries, so :func:`summarise_seeds`
    and :func:`paired_difference` work on the subset as on the whole (with ``clusters="auto"`` the subset's captions
    of one video are resampled together). ``label``: the subset's table name (default: the head's label).
    """
    first = results.runs[0].ranks if results.runs else np.empty(0)
    idx = np.asarray(select)
    if idx.dtype == bool:
        if idx.shape != first.shape:
            raise ValueError(f"a query mask must have one entry per test query ({first.shape[0]}), got {idx.shape}")
        idx = np.flatnonzero(idx)
    if idx.size == 0:
        raise ValueError("no test query selected")
    runs = [
        dataclasses.replace(
            r, label=label or r.label, metrics=M.summarize(r.ranks[idx]), ranks=r.ranks[idx], gold=r.gold[idx]
        )
        for r in results.runs
    ]
    return HeadRuns(results.head, label or results.label, results.protocol, runs)


# --------------------------------------------------------------------------- notebooks 03-04 (nb-b): re-ranking
def rank_on(results, test, *, label: str | None = None) -> HeadRuns:
    """The same trained heads (one per seed, kept by :func:`run` with ``keep_heads=True``) ranked on another test
    source, e.g. the capped gallery a cross-encoder is ranked on (``test.subset(n)``), so that a cheap head and
    an expensive one are paired on the same queries. Nothing is retrained: epochs, best epoch and validation
    values are the original runs'; ``metrics``, ``ranks``, ``gold`` and ``seconds`` (ranking only) are new, and
    ``evaluation`` is dropped. ``label``: the new runs' label (default: the same). Runs that trained the text tower
    (``SeedRun.text_encoder``) rank with ``test``'s captions re-encoded by their own tower."""
    (hr,) = _as_head_runs(results)
    out = HeadRuns(hr.head, label or hr.label, hr.protocol)
    for r in hr.runs:
        if r.trained is None:
            raise ValueError(f"{hr.label}, seed {r.seed}: the trained head was not kept (run(..., keep_heads=True))")
        t0 = time.perf_counter()
        if r.text_encoder is not None:
            src = _text_tower_source(test)
            ranks, gold = _test_ranks(r.trained, src, src.texts_of(r.text_encoder))
        else:
            ranks, gold = _test_ranks(r.trained, test)
        out.runs.append(
            dataclasses.replace(
                r,
                label=out.label,
                metrics=M.summarize(ranks),
                ranks=ranks,
                gold=gold,
                seconds=time.perf_counter() - t0,
                evaluation=None,
            )
        )
    return out


def twin_runs(results, factor: str = "all", *, label: str | None = None) -> HeadRuns:
    """Each seed's twin queries of ``factor`` (``"all"``: every twin query) as a ranking of two videos, the gold
    and its twin: rank 1 when the gold scores above its twin, 1.5 when they tie (within
    :data:`tvrlib.metrics.TIE_TOLERANCE`), 2 when the twin wins. So ``MnR = 2 - twin accuracy / 100`` exactly, and
    ``paired_difference(twin_runs(a, f), twin_runs(b, f), "MnR")`` is the paired twin-accuracy difference over
    seeds and twin queries, times ``-1/100`` (a lower MnR: more twins won), with the verdict machinery of any metric.
    Needs each :class:`SeedRun`'s ``evaluation`` to be a :class:`tvrlib.evaluation.Evaluation` with twin scores
    (``run(..., test_eval_fn=lambda h, s: evaluate(h, ...))``); ``gold`` is each twin query's gold video (the
    cluster of a clustered bootstrap when a video has several)."""
    (hr,) = _as_head_runs(results)
    out = HeadRuns(hr.head, label or f"{hr.label} ({factor} twins)", hr.protocol)
    for r in hr.runs:
        ev = r.evaluation
        if getattr(ev, "twin_scores", None) is None:
            raise ValueError(f"{hr.label}, seed {r.seed}: no twin scores (run with test_eval_fn=evaluate on twins)")
        factors = np.asarray(ev.twin_factors)
        sel = np.ones(len(factors), dtype=bool) if factor == "all" else factors == factor
        if not sel.any():
            raise ValueError(f"no twin queries of factor {factor!r}")
        ranks = 2.0 - twin_outcomes(ev.twin_scores)[sel]
        gold = np.asarray(ev.twin_videos)[sel]
        out.runs.append(
            dataclasses.replace(r, label=out.label, metrics=M.summarize(ranks), ranks=ranks, gold=gold, evaluation=None)
        )
    return out
