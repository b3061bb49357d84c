"""The datasets tvrlib knows out of the box: loader, splits, where to get the files, expected layout.

Importing :mod:`tvrlib.datasets` imports this module, which registers them with
:func:`tvrlib.datasets.registry.register_dataset` (the real datasets as built in, so a user's
``register_dataset`` cannot replace them by accident; ``synthetic`` as an ordinary entry).
"""

from __future__ import annotations

from ..paths import generated_dir
from ..synthetic.benchmark import available_configs
from .lsmdc import LSMDC_SPLITS, load_lsmdc
from .msrvtt import MSRVTT_SPLITS, load_msrvtt
from .msvd import MSVD_SPLITS, load_msvd
from .paragraph import ACTIVITYNET_SPLITS, DIDEMO_SPLITS, load_activitynet, load_didemo
from .registry import register_dataset
from .synthetic import SYNTHETIC_SPLITS, load_synthetic

__all__ = ["BUILTIN"]

# name -> (loader, splits, how to get it, expected layout)
BUILTIN = {
    "msrvtt": (
        load_msrvtt,
        MSRVTT_SPLITS,
        "annotations: CLIP4Clip's msrvtt_data.zip "
        "(https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msrvtt_data.zip; "
        "MSRVTT_data.json, MSRVTT_train.9k.csv, MSRVTT_train.7k.csv, MSRVTT_JSFUSION_test.csv). "
        "Videos: the Frozen-in-Time mirror https://www.robots.ox.ac.uk/~maxbain/frozen-in-time/data/MSRVTT.zip "
        "(as referenced in CLIP4Clip's README; it unpacks to MSRVTT/videos/all/video*.mp4). "
        "See CLIP4Clip's README, section Data Preparation.",
        "  msrvtt/MSRVTT_data.json\n  msrvtt/MSRVTT_train.9k.csv   (or MSRVTT_train.7k.csv, train_csv=...)\n"
        "  msrvtt/MSRVTT_JSFUSION_test.csv\n  msrvtt/videos/video0.mp4 ... video9999.mp4 "
        "(sub-folders such as videos/all/ are fine)",
    ),
    "msvd": (
        load_msvd,
        MSVD_SPLITS,
        "raw videos (YouTubeClips.tar) from the UT Austin page "
        "https://www.cs.utexas.edu/users/ml/clamp/videoDescription/ ; splits and raw-captions.pkl from "
        "collaborative-experts (albanie/collaborative-experts, misc/datasets/msvd) or CLIP4Clip's "
        "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msvd_data.zip . "
        "See CLIP4Clip's README, section Data Preparation.",
        "  msvd/train_list.txt  msvd/val_list.txt  msvd/test_list.txt\n  msvd/raw-captions.pkl\n"
        "  msvd/YouTubeClips/<video id>.avi",
    ),
    "lsmdc": (
        load_lsmdc,
        LSMDC_SPLITS,
        "request access from MPII (LSMDC challenge, https://sites.google.com/site/describingmovies/download ; "
        "registration and a signed agreement are required). The 1000-clip test file is "
        "LSMDC16_challenge_1000_publictect.csv from the same (protected) download area. "
        "See CLIP4Clip's README, section Data Preparation.",
        "  lsmdc/LSMDC16_annos_training.csv\n  lsmdc/LSMDC16_annos_val.csv\n"
        "  lsmdc/LSMDC16_challenge_1000_publictect.csv\n  lsmdc/videos/<movie>/<clip id>.avi",
    ),
    "didemo": (
        load_didemo,
        DIDEMO_SPLITS,
        "annotations (train_data.json, val_data.json, test_data.json) and the video download "
        "instructions are in https://github.com/LisaAnne/LocalizingMoments ; the split lists used by "
        "CLIP4Clip come from collaborative-experts (misc/datasets/didemo). "
        "See CLIP4Clip's README, section Data Preparation.",
        "  didemo/train_data.json  didemo/val_data.json  didemo/test_data.json\n"
        "  didemo/{train,val,test}_list.txt   (optional)\n"
        "  didemo/videos/<video field of the json>  (or the same stem with .mp4)",
    ),
    "activitynet": (
        load_activitynet,
        ACTIVITYNET_SPLITS,
        "captions (train.json, val_1.json, val_2.json) from the ActivityNet Captions page "
        "https://cs.stanford.edu/people/ranjaykrishna/densevid/ (captions.zip); videos from the "
        "ActivityNet download page http://activity-net.org/download.html (YouTube videos; the page "
        "explains how to request copies).",
        "  activitynet/train.json  activitynet/val_1.json  [activitynet/val_2.json]\n"
        "  activitynet/videos/v_<youtube id>.mp4   (.mkv/.webm, or without the v_ prefix)",
    ),
}

for _name, (_loader, _splits, _how, _layout) in BUILTIN.items():
    register_dataset(_name, _loader, None, _how, splits=_splits, layout=_layout, overwrite=True, builtin=True)
del _name, _loader, _splits, _how, _layout

register_dataset(
    "synthetic",
    load_synthetic,
    default_root=generated_dir,
    how_to_get="Nothing to download: the synthetic benchmark is generated on first use from "
    f"data/synthetic/<config>.json (configs: {available_configs()}); "
    "`make data` generates the default one.",
    splits=SYNTHETIC_SPLITS,
    overwrite=True,
)
