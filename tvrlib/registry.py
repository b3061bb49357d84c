"""Build things by name, so that a papermill parameter can say ``head="xpool"``.

A registry holds **base entries** (a class or factory, registered with a decorator) and **variants**
(a name for a base entry plus fixed keyword arguments, in the style of timm's ``@register_model``):

>>> from tvrlib.registry import HEADS
>>> @HEADS.register("meanP")
... class MeanPooling(...): ...
>>> HEADS.register_variant("seqTransf-noPE", "seqTransf", position_embeddings=False)
>>> head = HEADS.build("seqTransf-noPE", dim=512)   # == HEADS.build("seqTransf", dim=512, position_embeddings=False)
>>> HEADS.names()                                    # every buildable name, bases and variants
>>> HEADS.describe()                                 # a table: name -> base, fixed arguments, class
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .errors import UnknownNameError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}  # base entries, in registration order
        self._variants: dict[str, tuple[str, dict[str, Any]]] = {}  # name -> (base name, fixed kwargs)

    # -- registering -----------------------------------------------------------------------------
    def register(self, name: str) -> Callable:
        def deco(obj):
            if name in self._variants:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered as a variant of {self._variants[name][0]!r}"
                )
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered to {self._items[name]!r}")
            self._items[name] = obj
            return obj

        return deco

    def register_variant(self, name: str, base: str, **fixed) -> None:
        """Register ``name`` as ``base`` built with the keyword arguments ``fixed`` (a caller's kwargs override them).

        ``base`` may itself be a variant: its fixed arguments come first, ``fixed`` overrides them.
        """
        root, inherited = self.spec(base)
        spec = (root, {**inherited, **fixed})
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered to {self._items[name]!r}")
        if name in self._variants and self._variants[name] != spec:
            raise ValueError(f"{self.kind} variant {name!r} is already registered as {self._variants[name]!r}")
        self._variants[name] = spec

    # -- looking up ------------------------------------------------------------------------------
    def _unknown(self, name: str) -> UnknownNameError:
        return UnknownNameError(f"unknown {self.kind} {name!r}; known: {self.names()}")

    def spec(self, name: str) -> tuple[str, dict[str, Any]]:
        """``(base name, fixed kwargs)`` of ``name``; a base entry is ``(name, {})``."""
        if name in self._items:
            return name, {}
        if name in self._variants:
            base, fixed = self._variants[name]
            return base, dict(fixed)
        raise self._unknown(name)

    def get(self, name: str) -> Callable[..., Any]:
        """The class (or factory) that builds ``name``: for a variant, its base entry's."""
        return self._items[self.spec(name)[0]]

    def build(self, name: str, **kwargs) -> Any:
        """Build ``name``: a variant's fixed kwargs, then ``kwargs`` (which override them)."""
        base, fixed = self.spec(name)
        return self._items[base](**{**fixed, **kwargs})

    def accepted_kwargs(self, name: str, **options) -> dict[str, Any]:
        """The subset of ``options`` that ``name`` takes as keyword arguments, without those its variant fixes.

        For settings shared by several entries (a profile's ``dim``, ``layers``, ``init_from``), so that one call
        builds any of them: ``HEADS.build(name, **HEADS.accepted_kwargs(name, dim=D, layers=2))``.
        """
        base, fixed = self.spec(name)
        params = inspect.signature(self._items[base]).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            takes = set(options)
        else:
            takes = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return {k: v for k, v in options.items() if k in takes and k not in fixed}

    def names(self, variants: bool = True) -> list[str]:
        """Every buildable name, sorted (``variants=False``: the base entries only)."""
        return sorted([*self._items, *self._variants] if variants else self._items)

    def describe(self):
        """A table (pandas DataFrame, one row per name): base entry, fixed arguments, class.

        Rows come in registration order, each base entry followed by its variants.
        """
        import pandas as pd

        rows = []
        for base, obj in self._items.items():
            rows.append({"name": base, "base": base, "fixed arguments": "", "class": obj.__name__})
            rows += [
                {
                    "name": name,
                    "base": base,
                    "fixed arguments": ", ".join(f"{k}={v!r}" for k, v in fixed.items()),
                    "class": obj.__name__,
                }
                for name, (b, fixed) in self._variants.items()
                if b == base
            ]
        return pd.DataFrame(rows, columns=["name", "base", "fixed arguments", "class"]).set_index("name")

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._variants


HEADS = Registry("retrieval head")
