"""Training a retrieval head: a config, a model wrapper, two data sources, and one fit loop.

* :class:`FitConfig` (:mod:`.config`) -- every knob of :func:`fit`; a run profile's training budget
  comes from :func:`tvrlib.profiles.training_settings`.
* :class:`RetrievalModel` (:mod:`.model`) -- a head (:mod:`tvrlib.heads`) plus CLIP's learnable
  log-temperature ``logit_scale`` (clamped to ``[0, ln 100]`` after every step, as CLIP4Clip does), plus
  the CLIP encoder itself when it is fine-tuned end to end (:func:`finetunable_copy`).
* Three sources of training pairs ``(caption i, its video)`` (:mod:`.sources`):

  - :class:`FeatureSource` -- **frozen features** (the default, fast): cached CLIP frame and caption
    embeddings; only the head (and the temperature) learn;
  - :class:`TextTowerSource` -- **text tower**: cached frozen frame features, captions through CLIP's text tower,
    which trains with the head at ``FitConfig.lr_text`` (:func:`text_tower_copy`: the image tower is frozen);
  - :class:`FrameSource` -- **end to end** (CLIP4Clip style): every step decodes the batch's videos
    (``random_in_segment`` frames: one random frame per segment, a training-time augmentation),
    tokenises its captions, and runs them through the CLIP image and text towers with gradients.

  A source may carry a pool of negative captions (:class:`CaptionNegatives`, e.g. counterfactual captions):
  ``FitConfig.hard_negatives=k`` adds ``k`` of them per caption to the video-to-text side of the loss.

* :func:`fit` (:mod:`.loop`) -- AdamW (or Adam), a lower learning rate for the pretrained encoder than
  for the new modules, linear warm-up then cosine decay (:func:`tvrlib.optim.warmup_cosine`, stepped every
  batch), gradient clipping, per-epoch seeding, a checkpoint after every epoch with exact resume, model
  selection on the **validation** split (:func:`validate`), optional early stopping (``FitConfig.patience``:
  ``epochs`` is then the maximum, and the schedule spans it), a tqdm progress bar, and the history as
  pandas DataFrames (:class:`FitResult`, with ``epochs_run`` and ``stopped_early``).

* :mod:`.distributed` -- several processes (torchrun, gloo on CPUs, nccl on GPUs):
  :func:`~tvrlib.training.distributed.init_distributed` gives a :class:`~tvrlib.training.distributed.Distributed` to
  pass as ``fit(..., distributed=)``; each process trains on its shard of every global batch with the contrastive
  loss on the gathered batch (:func:`~tvrlib.training.distributed.all_gather_with_grad`) and averaged gradients, the
  single-process run's steps; ``torchrun ... -m tvrlib.train_distributed`` is the command line. Import it from
  ``tvrlib.training.distributed`` (its names are not re-exported here).

Notebooks train and compare heads through :mod:`tvrlib.experiment` (one protocol, several seeds), which calls
:func:`fit`.
"""

from .config import FitConfig
from .loop import FitResult, fit, validate
from .model import RetrievalModel, finetunable_copy, text_tower_copy
from .sources import CaptionNegatives, FeatureSource, FrameSource, HardNegatives, TextTowerSource, text_tower_texts

__all__ = [
    "FitConfig",
    "RetrievalModel",
    "finetunable_copy",
    "text_tower_copy",
    "FeatureSource",
    "TextTowerSource",
    "FrameSource",
    "CaptionNegatives",
    "HardNegatives",
    "text_tower_texts",
    "FitResult",
    "fit",
    "validate",
]
