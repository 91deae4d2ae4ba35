"""Decoder spaces (segmentation): a fixed, already searched backbone plus the DF-Seg /
PL1A-Seg decoder whose seven widths are the genes.

String form: ``dfseg:19-32-128-32-32-19-19@df:R64x3-R128x3-R256x3,512`` (DF1-Seg), i.e.
``SPACE:wc3-wc4-wc5-proj4-dec4-proj3-dec3@BACKBONE``."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Iterator

from plaid.config import require
from plaid.errors import ArchError
from plaid.spaces import get_space, register_space
from plaid.spaces.base import Space, check_arch_length, expect

GENES = ("wc3", "wc4", "wc5", "proj4", "dec4", "proj3", "dec3")


@dataclass(frozen=True)
class DecoderArch:
    widths: tuple[int, ...]  # in GENES order
    backbone: str  # canonical backbone arch string

    def gene(self, name: str) -> int:
        return self.widths[GENES.index(name)]


@dataclass(frozen=True)
class HeadStyle:
    """How a family builds its PSP and fusion convs (from the space preset)."""

    separable: bool  # depthwise-separable 3x3 fusion convs (PL1A-Seg) or full 3x3 (DF-Seg)
    psp_bins: tuple[tuple[int, int], ...]  # adaptive pooling grids
    psp_div: int  # PSP branch width = backbone width // psp_div
    num_classes: int


class DecoderSpace(Space):
    task = "segmentation"

    def __init__(self, backbone: str | None = None, preset: str | None = None) -> None:
        preset = preset or self.name
        cfg, where = self._load_preset(preset)
        self.backbone_space = get_space(require(cfg, "backbone_space", str, where))
        default = require(cfg, "backbone", str, where)
        text = backbone if backbone is not None else default
        bb = self._parse_backbone(text, where=f"space {self.name}")
        self.backbone = self.backbone_space.encode(bb)
        self.widths = tuple(sorted(require(cfg, "widths", list, where)))
        self.limits.check_preset(self.widths, None, where)
        head = require(cfg, "head", dict, where)
        self.style = HeadStyle(
            separable=require(head, "separable", bool, f"{where} [head]"),
            psp_bins=tuple(tuple(b) for b in require(head, "psp_bins", list, f"{where} [head]")),
            psp_div=require(head, "psp_div", int, f"{where} [head]"),
            num_classes=require(head, "num_classes", int, f"{where} [head]"),
        )

    def _parse_backbone(self, text: str, where: str):
        prefix = text.split(":", 1)[0]
        if prefix != self.backbone_space.name:
            raise ArchError(f"{where}: backbone {text!r} is not a {self.backbone_space.name} architecture")
        return self.backbone_space.decode(text)

    # ---- forms -------------------------------------------------------------------
    def encode(self, arch: DecoderArch) -> str:
        return f"{self.name}:" + "-".join(str(w) for w in arch.widths) + "@" + arch.backbone

    def decode(self, text: str) -> DecoderArch:
        check_arch_length(text)
        prefix, _, body = text.strip().partition(":")
        example = f"'{self.name}:{'-'.join(['32'] * len(GENES))}@{self.backbone}'"
        if prefix != self.name or "@" not in body:
            raise ArchError(f"not a {self.name} architecture: {text!r} (expected e.g. {example})")
        genes, _, backbone = body.partition("@")
        parts = genes.split("-")
        if len(parts) != len(GENES) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ArchError(
                f"{text!r}: expected {len(GENES)} positive widths {'-'.join(GENES)} before '@', got {genes!r}"
            )
        for gene, p in zip(GENES, parts):
            self.limits.check_width(int(p), f"{text!r} {gene}")
        bb = self._parse_backbone(backbone, where=repr(text))
        return DecoderArch(tuple(int(p) for p in parts), self.backbone_space.encode(bb))

    def to_json(self, arch: DecoderArch) -> dict[str, Any]:
        return {
            "space": self.name,
            "decoder": dict(zip(GENES, arch.widths)),
            "backbone": self.backbone_space.to_json(self.backbone_space.decode(arch.backbone)),
        }

    def from_json(self, data: dict[str, Any]) -> DecoderArch:
        try:
            expect(data.get("space") == self.name, f"JSON arch is for space {data.get('space')!r}, not {self.name!r}")
            widths = tuple(int(data["decoder"][g]) for g in GENES)
            bb = self.backbone_space.from_json(data["backbone"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchError(f"malformed {self.name} arch JSON: {exc!r}") from None
        return self.decode(self.encode(DecoderArch(widths, self.backbone_space.encode(bb))))

    # ---- membership and order -------------------------------------------------------
    def validate(self, arch: DecoderArch) -> None:
        tag = self.encode(arch)
        expect(
            arch.backbone == self.backbone,
            f"{tag}: backbone differs from this space's fixed backbone {self.backbone}",
        )
        for gene, w in zip(GENES, arch.widths):
            expect(w in self.widths, f"{tag}: {gene}={w} not in {list(self.widths)}")

    def le(self, a: DecoderArch, b: DecoderArch) -> bool:
        return a.backbone == b.backbone and all(x <= y for x, y in zip(a.widths, b.widths))

    def embed(self, arch: DecoderArch) -> tuple[int, ...]:
        """Order embedding: the widths, plus the backbone's hash twice (forces equality)."""
        import hashlib

        h = int(hashlib.sha256(arch.backbone.encode()).hexdigest()[:12], 16)
        return (h, -h, *arch.widths)

    def sample(self, rng: random.Random) -> DecoderArch:
        return DecoderArch(tuple(rng.choice(self.widths) for _ in GENES), self.backbone)

    def shrink(self, arch: DecoderArch, rng: random.Random) -> DecoderArch:
        return DecoderArch(
            tuple(rng.choice([x for x in self.widths if x <= w] or [w]) for w in arch.widths), arch.backbone
        )

    def enumerate(self) -> Iterator[DecoderArch]:
        for combo in itertools.product(self.widths, repeat=len(GENES)):
            yield DecoderArch(combo, self.backbone)

    def build(self, arch: DecoderArch, num_classes: int | None = None, d8: bool = False, **_: Any):
        from plaid.models.seg import seg_model

        backbone = self.backbone_space.build(self.backbone_space.decode(arch.backbone), num_classes=1).backbone
        return seg_model(
            backbone, dict(zip(GENES, arch.widths)), self.style, d8=d8,
            num_classes=num_classes or self.style.num_classes,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "backbone": self.backbone,
            "genes": list(GENES),
            "widths": list(self.widths),
            "head": {
                "separable": self.style.separable,
                "psp_bins": [list(b) for b in self.style.psp_bins],
                "psp_div": self.style.psp_div,
                "num_classes": self.style.num_classes,
            },
        }


@register_space("dfseg")
class DFSegSpace(DecoderSpace):
    pass


@register_space("pl1aseg")
class PL1ASegSpace(DecoderSpace):
    pass
