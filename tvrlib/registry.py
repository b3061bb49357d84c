"""Build things by name, so that a papermill parameter can say ``head="xpool"``.

>>> from tvrlib.registry import HEADS
>>> @HEADS.register("meanP")
... class MeanPooling(...): ...
>>> head = HEADS.build("meanP", dim=512)
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import UnknownNameError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable:
        def deco(obj):
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered to {self._items[name]!r}")
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._items:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {sorted(self._items)}")
        return self._items[name]

    def build(self, name: str, **kwargs) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


HEADS = Registry("retrieval head")
