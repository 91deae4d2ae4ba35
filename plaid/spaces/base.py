"""What every search space offers. An architecture is an immutable value; a space knows
how to print, parse, sample, validate, order and build it."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, Iterator

from plaid.errors import ArchError, UsageError

MAX_ARCH_CHARS = 1000  # longer strings are refused before parsing (DF2A's is 43 characters)


@dataclass(frozen=True)
class Limits:
    """What an arch string may name at all, from the preset's ``[limits]`` table. Membership
    is stricter; these only keep `arch show` and friends to networks that can be built and
    counted in a blink (a width of 2**40 or 10**20 blocks cannot)."""

    max_width: int = 4096  # channels of any layer the string names
    max_depth: int = 64  # blocks (or units) in one stage
    max_stages: int = 6  # stages of a backbone string

    @classmethod
    def from_config(cls, table: Any, where: str) -> "Limits":
        if not isinstance(table, dict):
            raise UsageError(f"{where}: [limits] must be a table")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise UsageError(f"{where} [limits]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        for k, v in table.items():
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000:
                raise UsageError(f"{where} [limits]: {k} must be an integer within 1..1000000, got {v!r}")
        return cls(**table)

    def check_width(self, width: int, what: str) -> None:
        expect(width <= self.max_width, f"{what}: width {width} is over this space's limit of {self.max_width}")

    def check_preset(self, widths: Any, depth: Any, where: str) -> None:
        """The preset's own choices must lie within its limits (or sampling would break them)."""
        ok_w = all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= self.max_width for w in widths)
        if not widths or not ok_w:
            raise UsageError(f"{where}: widths must be integers within 1..{self.max_width} "
                             f"([limits] max_width), got {list(widths)}")
        if depth is not None:
            ok_d = (len(depth) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in depth)
                    and 1 <= depth[0] <= depth[1] <= self.max_depth)
            if not ok_d:
                raise UsageError(f"{where}: depth must be [MIN, MAX] with 1 <= MIN <= MAX <= {self.max_depth} "
                                 f"([limits] max_depth), got {list(depth)}")


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
        self.limits = Limits.from_config(cfg.get("limits", {}), where)
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

    # ---- latency units (plaid.spaces.units) -------------------------------------
    @property
    def measurable(self) -> bool:
        """Whether this space says what latency units its members are made of."""
        return type(self).units is not Space.units and type(self).all_units is not Space.all_units

    def units(self, arch: Any, resolution: tuple[int, int]) -> list:
        """The :class:`~plaid.spaces.units.Unit` s ``arch`` is made of at ``resolution``,
        in order (stem, blocks, head): what the latency predictor sums."""
        raise UsageError(f"space {self.name!r} has no latency units yet: latency tables cover "
                         f"{said(measurable_spaces())}")

    def all_units(self, resolution: tuple[int, int]) -> list:
        """Every distinct unit some member contains at ``resolution`` (sorted): what a
        latency table must measure."""
        raise UsageError(f"space {self.name!r} has no latency units yet: latency tables cover "
                         f"{said(measurable_spaces())}")

    def describe(self) -> dict[str, Any]:
        """The resolved space config (for `plaid arch list` and run folders)."""
        return {"name": self.name, "task": self.task}


def said(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if not names:
        return "none"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def measurable_spaces() -> list[str]:
    """Names of the registered spaces whose members a latency table can cover."""
    from plaid.spaces import SPACES, space_names

    space_names()  # the built-in ones are registered
    return [name for name, cls in SPACES.items()
            if isinstance(cls, type) and cls.units is not Space.units and cls.all_units is not Space.all_units]


def check_arch_length(text: str) -> None:
    """Refuse an over-long arch string in one line, before any parsing work."""
    if len(text) > MAX_ARCH_CHARS:
        raise ArchError(f"architecture string of {len(text)} characters is over the limit of {MAX_ARCH_CHARS} "
                        f"(starts {text[:24]!r}...)")


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise ArchError(message)
