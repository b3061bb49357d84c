"""Where :func:`tvrlib.training.fit` gets its pairs ``(caption i, video text_to_video[i])`` from.

Both sources offer ``len(source)`` (captions), ``source.text_to_video``, ``source.query_index``,
``subset(n_videos)``, ``batch(idx, model, rng) -> (TextInput, VideoInput, video ids [B])`` for a training
step and ``eval_inputs(model) -> (TextInput, VideoInput)`` of the whole split for validation.
"""

from __future__ import annotations

import numpy as np
import torch

from ..heads.base import TextInput, VideoInput
from .model import RetrievalModel


class FeatureSource:
    """Training pairs on cached frozen features: caption ``i`` and video ``text_to_video[i]``.

    ``texts``: :class:`TextInput` (``sentence [N, D]``), ``videos``: :class:`VideoInput`
    (``frames [V, F, D]``, ``mask [V, F]``), ``text_to_video int [N]``. ``query_index`` (default:
    every caption) selects the captions used as t2v queries when the source is used for validation.
    """

    def __init__(self, texts: TextInput, videos: VideoInput, text_to_video, query_index=None):
        self.texts, self.videos = texts, videos
        self.text_to_video = np.asarray(text_to_video, dtype=np.int64)
        if len(self.text_to_video) != len(texts):
            raise ValueError(f"{len(texts)} captions but {len(self.text_to_video)} text_to_video entries")
        if self.text_to_video.max(initial=-1) >= len(videos):
            raise ValueError(f"text_to_video points past the {len(videos)} videos")
        self.query_index = np.arange(len(texts)) if query_index is None else np.asarray(query_index, dtype=np.int64)

    @classmethod
    def from_session(cls, S, split: str) -> FeatureSource:
        """The cached features of ``split`` from a :class:`tvrlib.session.Session`."""
        d = S.data(split)
        return cls(S.texts(split), S.videos(split), d.text_to_video, d.query_index)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n_videos: int) -> FeatureSource:
        """The first ``n_videos`` videos and their captions (e.g. a cheaper validation set)."""
        keep = np.flatnonzero(self.text_to_video < n_videos)
        remap = -np.ones(len(self.texts), dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        q = remap[self.query_index]
        return FeatureSource(
            self.texts.index(torch.as_tensor(keep)),
            self.videos.index(slice(0, n_videos)),
            self.text_to_video[keep],
            q[q >= 0],
        )

    def batch(self, idx: np.ndarray, model: RetrievalModel, rng: np.random.Generator):
        vids = self.text_to_video[idx]
        return self.texts.index(torch.as_tensor(idx)), self.videos.index(torch.as_tensor(vids)), torch.as_tensor(vids)

    def eval_inputs(self, model: RetrievalModel):
        return self.texts, self.videos


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
