"""The PL1A space (mobile CPU targets): the PL1A stem, then three stages of ShuffleNetV2
units; each stage has one width and a number of units.

String form: ``pl1a:48x4-96x8-192x4`` (PL1A-Seg's backbone)."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Any, Iterator

from plaid.config import require
from plaid.errors import ArchError
from plaid.spaces import register_space
from plaid.spaces.base import Space, check_arch_length, expect
from plaid.spaces.units import HEAD_CLASSES, Unit, down, unit_builder

_STAGE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class PL1AArch:
    stages: tuple[tuple[int, int], ...]  # (width, units) per stage

    @property
    def out_channels(self) -> int:
        return self.stages[-1][0]


@register_space("pl1a")
class PL1ASpace(Space):
    task = "classification"

    def __init__(self, preset: str = "pl1a") -> None:
        cfg, where = self._load_preset(preset)
        self.stem = tuple(require(cfg, "stem", list, where))
        self.rules = tuple(
            (
                require(s, "name", str, f"{where} [[stages]]"),
                tuple(sorted(require(s, "widths", list, f"{where} [[stages]]"))),
                tuple(require(s, "units", list, f"{where} [[stages]]")),
            )
            for s in require(cfg, "stages", list, where)
        )
        for name, widths, units in self.rules:
            self.limits.check_preset(widths, units, f"{where} stage {name}")
        self.limits.check_preset(self.stem, None, f"{where} stem")

    def encode(self, arch: PL1AArch) -> str:
        return f"{self.name}:" + "-".join(f"{w}x{n}" for w, n in arch.stages)

    def decode(self, text: str) -> PL1AArch:
        check_arch_length(text)
        prefix, _, body = text.strip().partition(":")
        if prefix != self.name or not body:
            raise ArchError(f"not a {self.name} architecture: {text!r} (e.g. 'pl1a:48x4-96x8-192x4')")
        stages = []
        parts = body.split("-")
        expect(len(parts) <= self.limits.max_stages,
               f"{text!r}: {len(parts)} stages, over this space's limit of {self.limits.max_stages}")
        for i, part in enumerate(parts):
            m = _STAGE.match(part)
            if not m:
                raise ArchError(f"{text!r} stage {i + 1}: bad token {part!r} (expected WIDTHxUNITS, e.g. 96x8)")
            w, n = int(m.group(1)), int(m.group(2))
            top = self.limits.max_depth
            if w <= 0 or w % 2 or n <= 0 or n > top:
                raise ArchError(f"{text!r} stage {i + 1}: width must be even and positive, units in 1..{top} ({part!r})")
            self.limits.check_width(w, f"{text!r} stage {i + 1}")
            stages.append((w, n))
        return PL1AArch(tuple(stages))

    def to_json(self, arch: PL1AArch) -> dict[str, Any]:
        return {"space": self.name, "stages": [{"width": w, "units": n} for w, n in arch.stages]}

    def from_json(self, data: dict[str, Any]) -> PL1AArch:
        try:
            expect(data.get("space") == self.name, f"JSON arch is for space {data.get('space')!r}, not {self.name!r}")
            arch = PL1AArch(tuple((int(s["width"]), int(s["units"])) for s in data["stages"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchError(f"malformed {self.name} arch JSON: {exc!r}") from None
        self.decode(self.encode(arch))
        return arch

    def validate(self, arch: PL1AArch) -> None:
        tag = self.encode(arch)
        expect(len(arch.stages) == len(self.rules), f"{tag}: has {len(arch.stages)} stages, space has {len(self.rules)}")
        for (w, n), (name, widths, units) in zip(arch.stages, self.rules):
            expect(w in widths, f"{tag}: stage {name}: width {w} not in {list(widths)}")
            expect(units[0] <= n <= units[1], f"{tag}: stage {name}: {n} units, allowed {units[0]}..{units[1]}")

    def le(self, a: PL1AArch, b: PL1AArch) -> bool:
        return len(a.stages) == len(b.stages) and all(
            wa <= wb and na <= nb for (wa, na), (wb, nb) in zip(a.stages, b.stages)
        )

    def embed(self, arch: PL1AArch) -> tuple[int, ...]:
        """Order embedding: a ≼ b exactly when embed(a) <= embed(b) everywhere."""
        return tuple(v for w, n in arch.stages for v in (w, n))

    def sample(self, rng: random.Random) -> PL1AArch:
        return PL1AArch(tuple((rng.choice(widths), rng.randint(*units)) for _, widths, units in self.rules))

    def shrink(self, arch: PL1AArch, rng: random.Random) -> PL1AArch:
        out = []
        for (w, n), (_, widths, units) in zip(arch.stages, self.rules):
            out.append((rng.choice([x for x in widths if x <= w] or [w]), rng.randint(min(units[0], n), n)))
        return PL1AArch(tuple(out))

    def enumerate(self) -> Iterator[PL1AArch]:
        per_stage = [[(w, n) for w in widths for n in range(units[0], units[1] + 1)] for _, widths, units in self.rules]
        for combo in itertools.product(*per_stage):
            yield PL1AArch(tuple(combo))

    def build(self, arch: PL1AArch, num_classes: int = 1000, **_: Any):
        from plaid.models.shufflenet import pl1a_classifier

        return pl1a_classifier(arch, stem=self.stem, num_classes=num_classes)

    # ---- latency units ---------------------------------------------------------------
    def units(self, arch: PL1AArch, resolution: tuple[int, int]) -> list[Unit]:
        stem, h, w, cin = stem_unit(self, resolution)
        units = [stem]
        for width, n in arch.stages:
            for i in range(n):
                s = 2 if i == 0 else 1
                units.append(Unit(self.name, "shuffle", h, w, cin, width, stride=s))
                h, w = down(h, s), down(w, s)
                cin = width
        units.append(Unit(self.name, "head", h, w, cin, HEAD_CLASSES))
        return units

    def all_units(self, resolution: tuple[int, int]) -> list[Unit]:
        stem, h, w, c2 = stem_unit(self, resolution)
        found: set[Unit] = {stem}
        ins = {c2}
        for _, widths, units in self.rules:
            for cin in ins:
                for wd in widths:
                    found.add(Unit(self.name, "shuffle", h, w, cin, wd, stride=2))
            h, w = down(h, 2), down(w, 2)
            if units[1] > 1:
                for wd in widths:
                    found.add(Unit(self.name, "shuffle", h, w, wd, wd, stride=1))
            ins = set(widths)
        for cin in ins:
            found.add(Unit(self.name, "head", h, w, cin, HEAD_CLASSES))
        return sorted(found)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "stem": list(self.stem),
            "stages": [{"name": n, "widths": list(w), "units": list(u)} for n, w, u in self.rules],
        }


def stem_unit(space, resolution: tuple[int, int]) -> tuple[Unit, int, int, int]:
    """The stem unit of a backbone space (``space.stem`` = two widths) at ``resolution``,
    and the (h, w, channels) after it (two stride-2 steps)."""
    h, w = resolution
    c1, c2 = space.stem
    return Unit(space.name, "stem", h, w, 3, c2, mid=c1), down(down(h, 2), 2), down(down(w, 2), 2), c2


@unit_builder("pl1a", "stem")
def _stem_module(u: Unit):
    from torch import nn

    from plaid.models.layers import ConvBN

    return nn.Sequential(ConvBN(3, 3, 3, 2, groups=-1, relu=False), ConvBN(3, u.mid, 1),
                         ConvBN(u.mid, u.mid, 3, 2, groups=-1, relu=False), ConvBN(u.mid, u.cout, 3))


@unit_builder("pl1a", "shuffle")
def _shuffle_module(u: Unit):
    from plaid.models.shufflenet import ShuffleUnit

    return ShuffleUnit(u.cin, u.cout, u.stride)
