"""What every search space offers. An architecture is an immutable value; a space knows
how to print, parse, sample, validate, order and build it."""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from typing import Any, Iterator

from plaid.errors import ArchError


class Space(ABC):
    """A search space. Subclasses register themselves with ``@register_space(name)``."""

    name: str = ""
    task: str = "classification"  # or "segmentation"
    resolution: tuple[int, int] = (224, 224)  # default input (H, W), from the preset

    def _load_preset(self, preset: str) -> tuple[dict[str, Any], str]:
        """Read ``configs/spaces/<preset>.toml``; sets preset, description, resolution."""
        from plaid.config import load_toml, require

        cfg = load_toml("spaces", preset)
        where = f"configs/spaces/{preset}.toml"
        self.preset = preset
        self.description = cfg.get("description", "")
        self.resolution = tuple(require(cfg, "resolution", list, where))
        return cfg, where

    # ---- string and JSON forms -------------------------------------------------
    @abstractmethod
    def encode(self, arch: Any) -> str:
        """Canonical short string, e.g. ``df:R64x3-R128x3-R256x3,512``."""

    @abstractmethod
    def decode(self, text: str) -> Any:
        """Parse the string form; raises :class:`ArchError` naming the problem."""

    @abstractmethod
    def to_json(self, arch: Any) -> dict[str, Any]:
        """A JSON-able dict (always includes ``space``)."""

    @abstractmethod
    def from_json(self, data: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_json`; raises :class:`ArchError`."""

    def key(self, arch: Any) -> str:
        """Hashable identity used by tables and the search journal."""
        return self.encode(arch)

    # ---- membership and order --------------------------------------------------
    @abstractmethod
    def validate(self, arch: Any) -> None:
        """Raise :class:`ArchError` with a clear message if ``arch`` is not in the space."""

    def contains(self, arch: Any) -> bool:
        try:
            self.validate(arch)
        except ArchError:
            return False
        return True

    @abstractmethod
    def le(self, a: Any, b: Any) -> bool:
        """The partial order: ``a`` is a sub-architecture of ``b`` (a ≼ b)."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Any:
        """A random member of the space (always terminates)."""

    @abstractmethod
    def shrink(self, arch: Any, rng: random.Random) -> Any:
        """A random member ``a`` of the space with ``a ≼ arch`` (deleting blocks and/or
        narrowing widths); used by tests and by the search to reason about sub-archs."""

    def enumerate(self) -> Iterator[Any]:  # pragma: no cover - finite spaces override
        raise NotImplementedError(f"space {self.name!r} is too large to enumerate")

    # ---- building ----------------------------------------------------------------
    @abstractmethod
    def build(self, arch: Any, **options: Any):
        """A ``torch.nn.Module`` for ``arch`` (imports torch lazily)."""

    def describe(self) -> dict[str, Any]:
        """The resolved space config (for `plaid arch list` and run folders)."""
        return {"name": self.name, "task": self.task}


def json_roundtrip_text(space: Space, arch: Any) -> str:
    return json.dumps(space.to_json(arch), sort_keys=True)


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise ArchError(message)
