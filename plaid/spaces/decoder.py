"""Decoder spaces (segmentation): a fixed, already searched backbone plus the DF-Seg /
PL1A-Seg decoder whose seven widths are the genes.

String form: ``dfseg:19-32-128-32-32-19-19@df:R64x3-R128x3-R256x3,512`` (DF1-Seg), i.e.
``SPACE:wc3-wc4-wc5-proj4-dec4-proj3-dec3@BACKBONE``.

Latency units (what a table measures and the predictor sums), one per layer group of
:class:`plaid.models.seg.SegNet`, at the target resolution H x W:

=========  ===================================================  ======================
kind       what it runs                                         varies with
=========  ===================================================  ======================
backbone   the fixed backbone, image to its 1/32 features        nothing (one unit)
psp        PSP (pool to each bin, 1x1, upsample, concat,         wc5
           fusion conv) then the wc5 1x1 conv, at 1/32
lateral    a 1x1 conv on the backbone's 1/16 (wc4) or 1/8 (wc3)   wc4 / wc3
up         projection 1x1 conv, then x2 bilinear upsampling       (wc5, proj4) / (dec4, proj3)
concat     lateral and upsampled projection, channel concat       (wc4, proj4) / (wc3, proj3)
fuse       the 3x3 fusion conv (separable for PL1A-Seg)           (wc4+proj4, dec4) / (wc3+proj3, dec3)
score      3x3 score conv at 1/8, then x8 bilinear upsampling     dec3
=========  ===================================================  ======================

A fusion conv costs the same whichever way its input channels were concatenated, so it is
keyed by their sum; the concat unit (two inputs) carries the split. The backbone unit
returns only its last map: the 1/8 and 1/16 maps the laterals read are computed on the way.
Its key holds the backbone's arch, the psp key the bins and conv style, the fuse key the conv
style: a unit builds from its key alone and a table never confuses two presets. The score unit's output stays NCHW, as the whole
network's does."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Iterator

from plaid.config import require
from plaid.errors import ArchError
from plaid.spaces import get_space, register_space
from plaid.spaces.base import Space, check_arch_length, expect
from plaid.spaces.units import Unit, down, unit_builder

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

    # ---- latency units ---------------------------------------------------------------
    def backbone_channels(self) -> tuple[int, int, int]:
        """The backbone's widths at 1/8, 1/16 and 1/32 (from a weightless build, once)."""
        if getattr(self, "_channels", None) is None:
            from plaid.complexity import build_on_meta

            bb = build_on_meta(self.backbone_space.build, self.backbone_space.decode(self.backbone),
                               num_classes=1).backbone
            self._channels = tuple(int(c) for c in bb.stage_channels[-3:])
        return self._channels

    def _unit_shapes(self, resolution: tuple[int, int]):
        h, w = resolution
        if h % 32 or w % 32:
            raise ArchError(f"{self.name}: the decoder needs a resolution divisible by 32, got {h}x{w}")
        return [(down(h, s), down(w, s)) for s in (8, 16, 32)]

    def _tags(self) -> tuple[str, str]:
        """(the psp unit's tag, the fuse unit's tag): the conv style and the PSP bins."""
        style = "sep" if self.style.separable else "conv3"
        return f"{style}-bins:" + ",".join(f"{a}x{b}" for a, b in self.style.psp_bins), style

    def units(self, arch: DecoderArch, resolution: tuple[int, int]) -> list[Unit]:
        (h8, w8), (h16, w16), (h32, w32) = self._unit_shapes(resolution)
        c8, c16, c32 = self.backbone_channels()
        g = dict(zip(GENES, arch.widths))
        bins, style = self._tags()
        n, k = self.name, self.style.num_classes
        return [
            Unit(n, "backbone", *resolution, 3, c32, stride=32, tag=arch.backbone),
            Unit(n, "psp", h32, w32, c32, g["wc5"], mid=c32 // self.style.psp_div, tag=bins),
            Unit(n, "lateral", h16, w16, c16, g["wc4"]),
            Unit(n, "up", h32, w32, g["wc5"], g["proj4"], up=2),
            Unit(n, "concat", h16, w16, g["wc4"], g["wc4"] + g["proj4"], cin2=g["proj4"]),
            Unit(n, "fuse", h16, w16, g["wc4"] + g["proj4"], g["dec4"], tag=style),
            Unit(n, "lateral", h8, w8, c8, g["wc3"]),
            Unit(n, "up", h16, w16, g["dec4"], g["proj3"], up=2),
            Unit(n, "concat", h8, w8, g["wc3"], g["wc3"] + g["proj3"], cin2=g["proj3"]),
            Unit(n, "fuse", h8, w8, g["wc3"] + g["proj3"], g["dec3"], tag=style),
            Unit(n, "score", h8, w8, g["dec3"], k, up=8),
        ]

    def all_units(self, resolution: tuple[int, int]) -> list[Unit]:
        (h8, w8), (h16, w16), (h32, w32) = self._unit_shapes(resolution)
        c8, c16, c32 = self.backbone_channels()
        bins, style = self._tags()
        n, ws = self.name, self.widths
        found = {Unit(n, "backbone", *resolution, 3, c32, stride=32, tag=self.backbone)}
        found |= {Unit(n, "psp", h32, w32, c32, x, mid=c32 // self.style.psp_div, tag=bins) for x in ws}
        found |= {Unit(n, "score", h8, w8, x, self.style.num_classes, up=8) for x in ws}
        for (h, w), c_bb in (((h16, w16), c16), ((h8, w8), c8)):  # the two decoder steps
            lo = (down(h, 2), down(w, 2))
            found |= {Unit(n, "lateral", h, w, c_bb, x) for x in ws}
            for a in ws:
                for b in ws:
                    found.add(Unit(n, "up", *lo, a, b, up=2))
                    found.add(Unit(n, "concat", h, w, a, a + b, cin2=b))
                    for c in ws:
                        found.add(Unit(n, "fuse", h, w, a + b, c, tag=style))
        return sorted(found)

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


# ---- how each decoder unit is built (the modules of plaid.models.seg) -----------------------
# A unit says all its module needs (the backbone's arch, the bins and the conv style are in
# its tag), so it builds the same whichever preset is loaded.

def _parse_psp_tag(tag: str) -> tuple[bool, tuple[tuple[int, int], ...]]:
    style, _, bins = tag.partition("-bins:")
    return style == "sep", tuple(tuple(int(v) for v in b.split("x")) for b in bins.split(","))


@unit_builder("*", "backbone")
def _backbone_module(u: Unit):
    from torch import nn

    from plaid.spaces import get_space

    space = get_space(u.tag.split(":", 1)[0])
    backbone = space.build(space.decode(u.tag), num_classes=1).backbone

    class LastMap(nn.Module):  # the backbone's forward returns every stage's map
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x):
            return self.backbone(x)[-1]

    return LastMap()


@unit_builder("*", "psp")
def _psp_module(u: Unit):
    from torch import nn

    from plaid.models.layers import ConvBN
    from plaid.models.seg import PSP

    separable, bins = _parse_psp_tag(u.tag)
    return nn.Sequential(PSP(u.cin, u.mid, bins, separable), ConvBN(u.cin, u.cout, 1))


@unit_builder("*", "lateral")
def _lateral_module(u: Unit):
    from plaid.models.layers import ConvBN

    return ConvBN(u.cin, u.cout, 1)


@unit_builder("*", "up")
def _up_module(u: Unit):
    from torch import nn

    from plaid.models.layers import BilinearUp, ConvBN

    return nn.Sequential(ConvBN(u.cin, u.cout, 1), BilinearUp(u.cout, u.up))


@unit_builder("*", "concat")
def _concat_module(u: Unit):
    import torch
    from torch import nn

    class Concat(nn.Module):
        def forward(self, a, b):
            return torch.cat([a, b], dim=1)

    return Concat()


@unit_builder("*", "fuse")
def _fuse_module(u: Unit):
    from plaid.models.seg import fusion_conv

    return fusion_conv(u.cin, u.cout, u.tag == "sep")


@unit_builder("*", "score", nhwc=False)  # NCHW out, as the whole network's output
def _score_module(u: Unit):
    from torch import nn

    from plaid.models.layers import BilinearUp

    return nn.Sequential(nn.Conv2d(u.cin, u.cout, 3, padding=1), BilinearUp(u.cout, u.up))
