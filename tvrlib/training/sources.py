"""Where :func:`tvrlib.training.fit` gets its pairs ``(caption i, its video text_to_video[i])`` from.

Every source offers ``len(source)`` (captions), ``source.text_to_video``, ``source.query_index``,
``subset(n_videos)``, ``batch(idx, model, rng) -> (TextInput, VideoInput, video ids [B])`` for a training
step and ``eval_inputs(model) -> (TextInput, VideoInput)`` of the whole split for validation.

* :class:`FeatureSource` -- cached frozen caption and frame features (only the head learns);
* :class:`TextTowerSource` -- cached frozen frame features, captions through the text tower being trained
  (:func:`~tvrlib.training.text_tower_copy`);
* :class:`FrameSource` -- decoded frames and captions through both towers (end to end).

Caption-level hard negatives: a source whose ``negatives`` is a :class:`CaptionNegatives` pool (extra captions,
each a hard negative of one video) also offers ``hard_negatives(idx, model, rng, k) -> HardNegatives``: up to
``k`` of the pool's captions for each batch row's video, drawn with the epoch's ``rng``, encoded the way the
source encodes its captions (cached frozen embeddings, or the training text tower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..datasets.base import first_videos
from ..heads.base import TextInput, VideoInput
from .model import RetrievalModel

TEXT_CHUNK = 512  # captions per text-tower forward when a whole split is encoded


@dataclass
class HardNegatives:
    """The extra negative captions of one batch: ``text [M]`` and, for each, its batch ``row`` (whose video it is a
    negative of) and ``slot`` in ``0..k-1``; ``shape = (B, k)``. A row may have fewer than ``k`` (a small pool)."""

    text: TextInput
    row: torch.Tensor  # long [M]
    slot: torch.Tensor  # long [M]
    shape: tuple[int, int]

    def place(self, values: torch.Tensor) -> torch.Tensor:
        """``values [M]`` (one per negative) laid out as ``[B, k]``, ``-inf`` where a row has no negative."""
        B, k = self.shape
        out = values.new_full((B * k,), float("-inf"))
        flat = (self.row * k + self.slot).to(values.device)
        return out.index_put((flat,), values).view(B, k)


@dataclass
class CaptionNegatives:
    """A pool of negative captions: ``captions[m]`` is a hard negative of video ``video_of[m]`` (a column of the
    source's split), e.g. its counterfactual captions (:func:`tvrlib.synthetic.counterfactuals.counterfactual_table`).
    ``caption_of`` (optional): the training caption each negative belongs to (a minimal edit of that caption,
    :func:`tvrlib.synthetic.counterfactuals.caption_counterfactual_table`); then a batch row draws the negatives of
    its own caption instead of any of its video's. ``texts``: their frozen CLIP embeddings (for
    :class:`FeatureSource`); ``tokens``: their token ids ``[M, L]`` (for :class:`TextTowerSource`). A source needs
    the one it encodes with."""

    captions: list[str]
    video_of: np.ndarray
    texts: TextInput | None = None
    tokens: torch.Tensor | None = None
    caption_of: np.ndarray | None = None

    def __post_init__(self):
        self.video_of = np.asarray(self.video_of, dtype=np.int64)
        if len(self.video_of) != len(self.captions):
            raise ValueError(f"{len(self.captions)} negative captions but {len(self.video_of)} video_of entries")
        if self.caption_of is not None:
            self.caption_of = np.asarray(self.caption_of, dtype=np.int64)
            if len(self.caption_of) != len(self.captions):
                raise ValueError(
                    f"{len(self.captions)} negative captions but {len(self.caption_of)} caption_of entries"
                )
        key = self.video_of if self.caption_of is None else self.caption_of
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(key.max(initial=-1) + 2))
        self._of_key = [order[bounds[v] : bounds[v + 1]] for v in range(len(bounds) - 1)]

    def __len__(self) -> int:
        return len(self.captions)

    def of_key(self, key: int) -> np.ndarray:
        """The pool indices of the negatives of caption ``key`` (with ``caption_of``) or else of video ``key``."""
        return self._of_key[key] if 0 <= key < len(self._of_key) else np.empty(0, dtype=np.int64)

    def sample(
        self, vids: np.ndarray, k: int, rng: np.random.Generator, captions: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``k`` distinct negatives of each batch row -- of its caption ``captions[b]`` when the pool is keyed
        by caption, else of its video ``vids[b]`` --, drawn with ``rng``: ``(pool index, row, slot)``, each ``[M]``
        (all of them when there are at most ``k``, in a random order)."""
        if self.caption_of is not None and captions is None:
            raise ValueError("this pool holds edits of single captions (caption_of): sample(..., captions=idx)")
        keys = np.asarray(vids) if self.caption_of is None else np.asarray(captions)
        pool, rows, slots = [], [], []
        for b, v in enumerate(keys):
            own = self.of_key(int(v))
            if own.size == 0:
                continue
            pick = rng.choice(own, size=min(k, own.size), replace=False)
            pool.append(pick)
            rows.append(np.full(pick.size, b))
            slots.append(np.arange(pick.size))
        if not pool:
            return (np.empty(0, dtype=np.int64),) * 3
        return np.concatenate(pool), np.concatenate(rows), np.concatenate(slots)

    def subset(self, n_videos: int, text_to_video=None) -> CaptionNegatives:
        """The negatives of the first ``n_videos`` videos (the pool of :meth:`FeatureSource.subset`); a pool keyed
        by caption needs the source's ``text_to_video`` to renumber its captions as the subset does."""
        keep = np.flatnonzero(self.video_of < n_videos)
        pick = torch.as_tensor(keep)
        caption_of = None
        if self.caption_of is not None:
            if text_to_video is None:
                raise ValueError("a pool keyed by caption needs text_to_video to follow subset(n_videos)")
            _, caption_of = first_videos(text_to_video, self.caption_of[keep], n_videos)  # all kept, renumbered
        return CaptionNegatives(
            [self.captions[i] for i in keep],
            self.video_of[keep],
            None if self.texts is None else self.texts.index(pick),
            None if self.tokens is None else self.tokens[pick],
            caption_of,
        )


def _hard_negatives(negatives, idx, vids, rng, k, encode) -> HardNegatives | None:
    """Draw up to ``k`` negatives per batch row from ``negatives`` and encode them with ``encode(pool_index)``
    (None when no video of the batch has one)."""
    if negatives is None:
        raise ValueError(
            "hard negatives need a pool of negative captions on the training source (source.negatives); "
            "tvrlib.experiment.run builds the synthetic benchmark's counterfactual captions, or set hard_negatives=0"
        )
    pool, rows, slots = negatives.sample(vids, k, rng, captions=idx)
    if pool.size == 0:
        return None  # no video of this batch has a negative
    return HardNegatives(encode(pool), torch.as_tensor(rows), torch.as_tensor(slots), (len(idx), int(k)))


class FeatureSource:
    """Training pairs on cached frozen features: caption ``i`` and video ``text_to_video[i]``.

    ``texts``: :class:`TextInput` (``sentence [N, D]``), ``videos``: :class:`VideoInput`
    (``frames [V, F, D]``, ``mask [V, F]``), ``text_to_video int [N]``. ``query_index`` (default:
    every caption) selects the captions used as t2v queries when the source is used for validation.
    ``data`` (a :class:`~tvrlib.datasets.RetrievalData`: the captions and the split's metadata) and ``encoder``
    (the :class:`~tvrlib.encoders.ClipEncoder` that made the features) are where the features came from;
    :meth:`from_session` sets them, and :class:`TextTowerSource` and the counterfactual captions need them.
    ``negatives``: a :class:`CaptionNegatives` pool with frozen ``texts`` (for ``FitConfig.hard_negatives``).
    """

    def __init__(
        self,
        texts: TextInput,
        videos: VideoInput,
        text_to_video,
        query_index=None,
        *,
        data=None,
        encoder=None,
        negatives: CaptionNegatives | None = None,
    ):
        self.texts, self.videos = texts, videos
        self.text_to_video = np.asarray(text_to_video, dtype=np.int64)
        if len(self.text_to_video) != len(texts):
            raise ValueError(f"{len(texts)} captions but {len(self.text_to_video)} text_to_video entries")
        if self.text_to_video.max(initial=-1) >= len(videos):
            raise ValueError(f"text_to_video points past the {len(videos)} videos")
        self.query_index = np.arange(len(texts)) if query_index is None else np.asarray(query_index, dtype=np.int64)
        self.data, self.encoder, self.negatives = data, encoder, negatives
        if negatives is not None and negatives.texts is None:
            raise ValueError("a FeatureSource's negatives need their frozen embeddings (CaptionNegatives.texts)")

    @classmethod
    def from_session(cls, S, split: str, with_words: bool = False, with_patches: bool = False) -> FeatureSource:
        """The cached features of ``split`` from a :class:`tvrlib.session.Session`; ``with_words`` / ``with_patches``:
        also the word tokens of the captions / the patch tokens of the frames (the token-level heads read them)."""
        d = S.data(split)
        texts, videos = S.texts(split, with_words=with_words), S.videos(split, with_patches=with_patches)
        return cls(texts, videos, d.text_to_video, d.query_index, data=d, encoder=S.encoder)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n_videos: int) -> FeatureSource:
        """The first ``n_videos`` videos and their captions (e.g. a cheaper validation set)."""
        keep, query_index = first_videos(self.text_to_video, self.query_index, n_videos)
        return FeatureSource(
            self.texts.index(torch.as_tensor(keep)),
            self.videos.index(slice(0, n_videos)),
            self.text_to_video[keep],
            query_index,
            data=None if self.data is None else self.data.subset(n_videos),
            encoder=self.encoder,
            negatives=None if self.negatives is None else self.negatives.subset(n_videos, self.text_to_video),
        )

    def with_negatives(self, negatives: CaptionNegatives | None) -> FeatureSource:
        """The same source with another pool of negative captions."""
        return FeatureSource(
            self.texts,
            self.videos,
            self.text_to_video,
            self.query_index,
            data=self.data,
            encoder=self.encoder,
            negatives=negatives,
        )

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        vids = self.text_to_video[idx]
        return self.texts.index(torch.as_tensor(idx)), self.videos.index(torch.as_tensor(vids)), torch.as_tensor(vids)

    def hard_negatives(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator, k: int):
        """Up to ``k`` negatives per batch row (:class:`HardNegatives`), their frozen embeddings from the pool."""
        texts = None if self.negatives is None else self.negatives.texts
        return _hard_negatives(
            self.negatives, idx, self.text_to_video[idx], rng, k, lambda pool: texts.index(torch.as_tensor(pool))
        )

    def eval_inputs(self, model: RetrievalModel):
        return self.texts, self.videos


def text_tower_texts(encoder, tokens: torch.Tensor, with_words: bool = False) -> TextInput:
    """``tokens [N, L]`` through ``encoder``'s text tower without gradients, in chunks: :class:`TextInput`
    (``sentence [N, D]``, with ``words [N, L, D]`` and ``word_mask [N, L]`` when ``with_words``). Never cached."""
    with torch.no_grad():
        outs = [encoder.text_forward(tokens[i : i + TEXT_CHUNK], with_words) for i in range(0, len(tokens), TEXT_CHUNK)]
    sentence = torch.cat([o.sentence for o in outs]).float()
    if not with_words:
        return TextInput(sentence)
    return TextInput(sentence, torch.cat([o.words for o in outs]).float(), torch.cat([o.mask for o in outs]))


class TextTowerSource:
    """Training pairs on cached frozen frame features whose captions go through the CLIP text tower being trained.

    ``tokens``: the captions' token ids ``[N, L]``; ``videos``: :class:`VideoInput` (cached, never re-encoded);
    ``text_to_video int [N]``; ``query_index`` as in :class:`FeatureSource`; ``with_words``: also the word tokens
    (for token-level heads). ``batch`` runs ``model.encoder.text_forward`` on the batch's tokens *with* gradients;
    :meth:`eval_inputs` encodes every caption with the current text tower and no gradients, never through the
    feature cache. ``model.encoder`` must be a :func:`~tvrlib.training.text_tower_copy`. ``negatives``: a
    :class:`CaptionNegatives` pool with ``tokens`` (encoded by the training text tower too).
    Build it from a :class:`FeatureSource` with :meth:`from_features`.
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        videos: VideoInput,
        text_to_video,
        query_index=None,
        *,
        with_words: bool = False,
        negatives: CaptionNegatives | None = None,
    ):
        self.tokens, self.videos, self.with_words = tokens, videos, with_words
        self.text_to_video = np.asarray(text_to_video, dtype=np.int64)
        if len(self.text_to_video) != len(tokens):
            raise ValueError(f"{len(tokens)} captions but {len(self.text_to_video)} text_to_video entries")
        if self.text_to_video.max(initial=-1) >= len(videos):
            raise ValueError(f"text_to_video points past the {len(videos)} videos")
        self.query_index = np.arange(len(tokens)) if query_index is None else np.asarray(query_index, dtype=np.int64)
        if negatives is not None and negatives.tokens is None:
            raise ValueError("a TextTowerSource's negatives need their token ids (CaptionNegatives.tokens)")
        self.negatives = negatives

    @classmethod
    def from_features(cls, source: FeatureSource, negatives: CaptionNegatives | None = None) -> TextTowerSource:
        """The same split as ``source`` (its cached frame features, its captions ``source.data.texts`` tokenised by
        ``source.encoder``), its captions to be encoded by the training text tower."""
        if source.data is None or source.encoder is None:
            raise ValueError(
                "training the text tower needs the captions and the encoder behind the features: build the "
                "FeatureSource with FeatureSource.from_session(S, split) (it sets data= and encoder=)"
            )
        return cls(
            source.encoder.tokenize(list(source.data.texts)),
            source.videos,
            source.text_to_video,
            source.query_index,
            with_words=source.texts.words is not None,
            negatives=negatives,
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, n_videos: int) -> TextTowerSource:
        """The first ``n_videos`` videos and their captions."""
        keep, query_index = first_videos(self.text_to_video, self.query_index, n_videos)
        return TextTowerSource(
            self.tokens[torch.as_tensor(keep)],
            self.videos.index(slice(0, n_videos)),
            self.text_to_video[keep],
            query_index,
            with_words=self.with_words,
            negatives=None if self.negatives is None else self.negatives.subset(n_videos, self.text_to_video),
        )

    def with_negatives(self, negatives: CaptionNegatives | None) -> TextTowerSource:
        """The same source with another pool of negative captions."""
        return TextTowerSource(
            self.tokens,
            self.videos,
            self.text_to_video,
            self.query_index,
            with_words=self.with_words,
            negatives=negatives,
        )

    @staticmethod
    def _encoder(model: RetrievalModel):
        if model.encoder is None or not model.text_tower:
            raise ValueError(
                "TextTowerSource trains the text tower alone: build RetrievalModel(head, "
                "encoder=text_tower_copy(S.encoder))"
            )
        return model.encoder

    def _encode(self, model: RetrievalModel, tokens: torch.Tensor) -> TextInput:
        f = self._encoder(model).text_forward(tokens, with_words=self.with_words)
        return TextInput(f.sentence, f.words, f.mask if self.with_words else None)

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        vids = self.text_to_video[idx]
        text = self._encode(model, self.tokens[torch.as_tensor(idx)])
        return text, self.videos.index(torch.as_tensor(vids)), torch.as_tensor(vids)

    def hard_negatives(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator, k: int):
        """Up to ``k`` negatives per batch row (:class:`HardNegatives`), through the training text tower."""
        tokens = None if self.negatives is None else self.negatives.tokens
        return _hard_negatives(
            self.negatives,
            idx,
            self.text_to_video[idx],
            rng,
            k,
            lambda pool: self._encode(model, tokens[torch.as_tensor(pool)]),
        )

    def texts_of(self, encoder) -> TextInput:
        """Every caption through ``encoder``'s text tower, no gradients (:func:`text_tower_texts`)."""
        return text_tower_texts(encoder, self.tokens, self.with_words)

    def eval_inputs(self, model: RetrievalModel):
        return self.texts_of(self._encoder(model)), self.videos


class FrameSource:
    """Training pairs decoded from the video files, for end-to-end fine-tuning of the CLIP towers.

    ``data`` is a :class:`~tvrlib.datasets.RetrievalData`. Each batch samples ``num_frames`` frames per
    video with ``train_sampler`` (``"random_in_segment"``: one random frame per segment) and encodes
    frames and captions with ``model.encoder`` *with* gradients. :meth:`eval_inputs` encodes the whole
    split with ``eval_sampler`` (``"uniform"``) and no gradients, never through the feature cache.
    """

    def __init__(
        self, data, num_frames: int = 12, train_sampler: str = "random_in_segment", eval_sampler: str = "uniform"
    ):
        self.data, self.num_frames = data, num_frames
        self.train_sampler, self.eval_sampler = train_sampler, eval_sampler
        self.text_to_video = np.asarray(data.text_to_video, dtype=np.int64)
        self.query_index = np.asarray(data.query_index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.data.texts)

    def subset(self, n_videos: int) -> FrameSource:
        return FrameSource(self.data.subset(n_videos), self.num_frames, self.train_sampler, self.eval_sampler)

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        from ..video import sample_frames

        enc = model.encoder
        if enc is None:
            raise ValueError(
                "FrameSource trains end to end: build RetrievalModel(head, encoder=finetunable_copy(S.encoder))"
            )
        vids = self.text_to_video[idx]
        uniq, inverse = np.unique(vids, return_inverse=True)
        frames, masks = [], []
        for j in uniq:
            fr, m = sample_frames(
                self.data.videos[j].path, self.num_frames, enc.image_size, self.train_sampler, rng=rng
            )
            frames.append(fr)
            masks.append(m)
        cls = enc.image_forward(enc.preprocess(np.concatenate(frames)), with_patches=False).cls
        cls = cls.view(len(uniq), self.num_frames, -1)
        mask = torch.from_numpy(np.stack(masks)).to(cls.device)
        inv = torch.as_tensor(inverse, device=cls.device)
        tokens = enc.tokenize([self.data.texts[i] for i in idx])
        sentence = enc.text_forward(tokens, with_words=False).sentence
        return TextInput(sentence), VideoInput(cls[inv], mask[inv]), torch.as_tensor(vids)

    @torch.no_grad()
    def eval_inputs(self, model: RetrievalModel):
        from ..features import encode_texts, encode_videos

        enc = model.encoder
        v = encode_videos(enc, self.data, self.num_frames, self.eval_sampler, cache=False, progress=False)
        t = encode_texts(enc, self.data.texts, cache=False)
        return TextInput(t.sentence), VideoInput(v.frames, v.mask)
