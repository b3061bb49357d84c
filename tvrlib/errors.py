"""Errors raised by tvrlib.

Every error names the thing that is wrong (a file, a video id, a dataset name,
missing weights) and says what to do about it. Catch ``TVRError`` to catch all.
"""

from __future__ import annotations


class TVRError(Exception):
    """Base class for every error raised on purpose by tvrlib."""


class DatasetNotFoundError(TVRError, FileNotFoundError):
    """A dataset's files are missing; the message says where to get them and where to put them."""


class UnknownNameError(TVRError, KeyError):
    """An unknown dataset, head, profile or model name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


class AnnotationError(TVRError, ValueError):
    """An annotation file is inconsistent (unknown video id, duplicate ids, empty caption...)."""


class VideoReadError(TVRError, OSError):
    """A video file is missing, corrupt, truncated, not a video, or has no frames."""


class WeightsNotFoundError(TVRError, FileNotFoundError):
    """Pretrained weights are not available offline; the message says how to provide them."""


class CacheError(TVRError, OSError):
    """A feature-cache entry is unreadable or does not match its key."""
