"""The DF space (GPU targets): fixed stem, three residual stages at strides 8/16/32.

String form, one group per stage, ``R`` = basic blocks, ``B`` = bottleneck blocks::

    df:R64x3-R128x3-R256x3,512                  DF1
    df:R64x2,128-B128x10,256-B256x4,512:1024x2  DF2A

A token is ``WIDTH[:OUT][xCOUNT]``; for bottlenecks WIDTH is the inner width and OUT
defaults to 4×WIDTH (written only when it differs). Widths never decrease in a stage.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from plaid.config import require
from plaid.errors import ArchError
from plaid.spaces import register_space
from plaid.spaces.base import Limits, Space, check_arch_length, expect
from plaid.spaces.units import HEAD_CLASSES, Unit, down, unit_builder

KIND_LETTER = {"basic": "R", "bottleneck": "B"}
LETTER_KIND = {v: k for k, v in KIND_LETTER.items()}
DEFAULT_EXPANSION = 4  # the string format's default OUT for bottlenecks
_TOKEN = re.compile(r"^(\d+)(?::(\d+))?(?:x(\d+))?$")


@dataclass(frozen=True, order=True)
class Block:
    inner: int
    out: int

    def le(self, other: "Block") -> bool:
        return self.inner <= other.inner and self.out <= other.out


@dataclass(frozen=True)
class Stage:
    kind: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class DFArch:
    stages: tuple[Stage, ...]

    @property
    def out_channels(self) -> int:
        return self.stages[-1].blocks[-1].out


@dataclass(frozen=True)
class StageRule:
    name: str
    kinds: tuple[str, ...]
    widths: tuple[int, ...]
    depth: tuple[int, int]


def encode_stage(stage: Stage) -> str:
    runs: list[tuple[Block, int]] = []
    for blk in stage.blocks:
        if runs and runs[-1][0] == blk:
            runs[-1] = (blk, runs[-1][1] + 1)
        else:
            runs.append((blk, 1))
    tokens = []
    for blk, n in runs:
        tok = str(blk.inner)
        if stage.kind == "bottleneck" and blk.out != DEFAULT_EXPANSION * blk.inner:
            tok += f":{blk.out}"
        if n > 1:
            tok += f"x{n}"
        tokens.append(tok)
    return KIND_LETTER[stage.kind] + ",".join(tokens)


def decode_stage(text: str, where: str, limits: Limits = Limits()) -> Stage:
    if not text or text[0] not in LETTER_KIND:
        raise ArchError(f"{where}: {text!r} must start with R (basic) or B (bottleneck)")
    kind = LETTER_KIND[text[0]]
    blocks: list[Block] = []
    for tok in text[1:].split(","):
        m = _TOKEN.match(tok)
        if not m:
            raise ArchError(f"{where}: bad block token {tok!r} (expected WIDTH[:OUT][xCOUNT], e.g. 128x3)")
        inner = int(m.group(1))
        count = int(m.group(3) or 1)
        if m.group(2) is not None and kind == "basic":
            raise ArchError(f"{where}: basic blocks take one width, got {tok!r}")
        out = int(m.group(2)) if m.group(2) else (inner if kind == "basic" else DEFAULT_EXPANSION * inner)
        if inner <= 0 or out <= 0 or count <= 0:
            raise ArchError(f"{where}: widths and counts must be positive in {tok!r}")
        limits.check_width(inner, f"{where} {tok!r}")
        limits.check_width(out, f"{where} {tok!r} (OUT)")
        if len(blocks) + count > limits.max_depth:
            raise ArchError(f"{where}: over {limits.max_depth} blocks in one stage (this space's limit)")
        blocks.extend([Block(inner, out)] * count)
    for prev, nxt in zip(blocks, blocks[1:]):
        if not prev.le(nxt):
            raise ArchError(f"{where}: widths must not decrease inside a stage ({prev.inner} then {nxt.inner})")
    return Stage(kind, tuple(blocks))


def stage_le(a: Stage, b: Stage) -> bool:
    """a's blocks map order-preservingly onto b's, each no wider. Stages are chains,
    so aligning a with the last len(a) blocks of b is optimal."""
    if a.kind != b.kind or len(a.blocks) > len(b.blocks):
        return False
    tail = b.blocks[len(b.blocks) - len(a.blocks):]
    return all(x.le(y) for x, y in zip(a.blocks, tail))


@register_space("df")
class DFSpace(Space):
    task = "classification"

    def __init__(self, preset: str = "df") -> None:
        cfg, where = self._load_preset(preset)
        self.stem = tuple(require(cfg, "stem", list, where))
        bott = require(cfg, "bottleneck", dict, where)
        self.expansion = require(bott, "expansion", int, f"{where} [bottleneck]")
        self.max_out = require(bott, "max_out", int, f"{where} [bottleneck]")
        self.rules = tuple(
            StageRule(
                name=require(s, "name", str, f"{where} [[stages]]"),
                kinds=tuple(require(s, "kinds", list, f"{where} [[stages]]")),
                widths=tuple(sorted(require(s, "widths", list, f"{where} [[stages]]"))),
                depth=tuple(require(s, "depth", list, f"{where} [[stages]]")),
            )
            for s in require(cfg, "stages", list, where)
        )
        for rule in self.rules:
            self.limits.check_preset(rule.widths, rule.depth, f"{where} stage {rule.name}")
        self.limits.check_preset([*self.stem, self.max_out], None, f"{where} stem and max_out")

    # ---- forms -------------------------------------------------------------------
    def encode(self, arch: DFArch) -> str:
        return f"{self.name}:" + "-".join(encode_stage(s) for s in arch.stages)

    def decode(self, text: str) -> DFArch:
        check_arch_length(text)
        prefix, _, body = text.strip().partition(":")
        if prefix != self.name or not body:
            raise ArchError(f"not a {self.name} architecture: {text!r} (e.g. 'df:R64x3-R128x3-R256x3,512')")
        parts = body.split("-")
        expect(len(parts) <= self.limits.max_stages,
               f"{text!r}: {len(parts)} stages, over this space's limit of {self.limits.max_stages}")
        return DFArch(tuple(decode_stage(p, f"{text!r} stage {i + 1}", self.limits) for i, p in enumerate(parts)))

    def to_json(self, arch: DFArch) -> dict[str, Any]:
        return {
            "space": self.name,
            "stages": [
                {"kind": s.kind, "blocks": [[b.inner, b.out] for b in s.blocks]} for s in arch.stages
            ],
        }

    def from_json(self, data: dict[str, Any]) -> DFArch:
        try:
            expect(data.get("space") == self.name, f"JSON arch is for space {data.get('space')!r}, not {self.name!r}")
            stages = []
            for s in data["stages"]:
                expect(s["kind"] in KIND_LETTER, f"unknown block kind {s['kind']!r}")
                stages.append(Stage(s["kind"], tuple(Block(int(i), int(o)) for i, o in s["blocks"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchError(f"malformed {self.name} arch JSON: {exc!r}") from None
        arch = DFArch(tuple(stages))
        self.decode(self.encode(arch))  # same structural checks as the string form
        return arch

    # ---- membership and order -------------------------------------------------------
    def validate(self, arch: DFArch) -> None:
        tag = self.encode(arch)
        expect(
            len(arch.stages) == len(self.rules),
            f"{tag}: has {len(arch.stages)} stages, space {self.name!r} has {len(self.rules)}",
        )
        for stage, rule in zip(arch.stages, self.rules):
            where = f"{tag}: stage {rule.name}"
            expect(stage.kind in rule.kinds, f"{where}: block kind {stage.kind} not in {list(rule.kinds)}")
            lo, hi = rule.depth
            expect(lo <= len(stage.blocks) <= hi, f"{where}: {len(stage.blocks)} blocks, allowed {lo}..{hi}")
            for blk in stage.blocks:
                expect(blk.inner in rule.widths, f"{where}: width {blk.inner} not in {list(rule.widths)}")
                want = blk.inner if stage.kind == "basic" else min(self.expansion * blk.inner, self.max_out)
                expect(blk.out == want, f"{where}: bottleneck {blk.inner} must output {want}, not {blk.out}")

    def le(self, a: DFArch, b: DFArch) -> bool:
        return len(a.stages) == len(b.stages) and all(stage_le(x, y) for x, y in zip(a.stages, b.stages))

    def embed(self, arch: DFArch) -> tuple[int, ...]:
        """Order embedding of members: a ≼ b exactly when embed(a) <= embed(b) everywhere.
        Per stage: the kind (twice, with opposite signs, to force equality) and the blocks
        from the last one backwards, (0, 0) where a stage is shorter."""
        kinds = list(KIND_LETTER)
        vec: list[int] = []
        for stage, rule in zip(arch.stages, self.rules):
            k = kinds.index(stage.kind)
            vec += [k, -k]
            depth = max(rule.depth[1], len(stage.blocks))
            if depth > rule.depth[1]:
                raise ArchError(f"{self.encode(arch)}: embed() needs a member of the space")
            rev = list(reversed(stage.blocks)) + [Block(0, 0)] * (depth - len(stage.blocks))
            for b in rev:
                vec += [b.inner, b.out]
        return tuple(vec)

    def sample(self, rng: random.Random) -> DFArch:
        stages = []
        for rule in self.rules:
            kind = rng.choice(rule.kinds)
            n = rng.randint(*rule.depth)
            widths = sorted(rng.choice(rule.widths) for _ in range(n))
            stages.append(Stage(kind, tuple(self._block(kind, w) for w in widths)))
        return DFArch(tuple(stages))

    def shrink(self, arch: DFArch, rng: random.Random) -> DFArch:
        stages = []
        for stage, rule in zip(arch.stages, self.rules):
            n_keep = rng.randint(min(rule.depth[0], len(stage.blocks)), len(stage.blocks))
            kept = sorted(rng.sample(range(len(stage.blocks)), n_keep))
            widths = []
            for i in kept:
                narrower = [w for w in rule.widths if w <= stage.blocks[i].inner] or [stage.blocks[i].inner]
                widths.append(rng.choice(narrower))
            stages.append(Stage(stage.kind, tuple(self._block(stage.kind, w) for w in sorted(widths))))
        return DFArch(tuple(stages))

    def _block(self, kind: str, width: int) -> Block:
        return Block(width, width if kind == "basic" else min(self.expansion * width, self.max_out))

    # ---- building --------------------------------------------------------------------
    def build(self, arch: DFArch, num_classes: int = 1000, **_: Any):
        from plaid.models.resnets import df_classifier

        return df_classifier(arch, stem=self.stem, num_classes=num_classes)

    # ---- latency units ---------------------------------------------------------------
    def units(self, arch: DFArch, resolution: tuple[int, int]) -> list[Unit]:
        stem, h, w, cin = stem_unit(self, resolution)
        units = [stem]
        for stage in arch.stages:
            prev = None
            for i, blk in enumerate(stage.blocks):
                s = 2 if i == 0 else 1
                proj = s != 1 or cin != blk.out or (blk.inner, blk.out) != prev
                units.append(Unit(self.name, stage.kind, h, w, cin, blk.out,
                                  mid=blk.inner if stage.kind == "bottleneck" else 0, stride=s, proj=proj))
                h, w = down(h, s), down(w, s)
                cin, prev = blk.out, (blk.inner, blk.out)
        units.append(Unit(self.name, "head", h, w, cin, HEAD_CLASSES))
        return units

    def all_units(self, resolution: tuple[int, int]) -> list[Unit]:
        stem, h, w, c2 = stem_unit(self, resolution)
        found: set[Unit] = {stem}
        ins = {c2}
        for rule in self.rules:
            outs = set()
            for kind in rule.kinds:
                blocks = [self._block(kind, wd) for wd in rule.widths]
                mid = (lambda b: b.inner) if kind == "bottleneck" else (lambda b: 0)
                for cin in ins:  # first block: stride 2, always projected
                    for b in blocks:
                        found.add(Unit(self.name, kind, h, w, cin, b.out, mid=mid(b), stride=2, proj=True))
                h2, w2 = down(h, 2), down(w, 2)
                for p in blocks:  # later blocks follow a no-narrower block
                    for b in blocks:
                        if p.le(b) and rule.depth[1] > 1:
                            proj = p.out != b.out or p != b
                            found.add(Unit(self.name, kind, h2, w2, p.out, b.out, mid=mid(b), stride=1, proj=proj))
                outs |= {b.out for b in blocks}
            h, w = down(h, 2), down(w, 2)
            ins = outs
        for cin in ins:
            found.add(Unit(self.name, "head", h, w, cin, HEAD_CLASSES))
        return sorted(found)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "stem": list(self.stem),
            "bottleneck": {"expansion": self.expansion, "max_out": self.max_out},
            "stages": [
                {"name": r.name, "kinds": list(r.kinds), "widths": list(r.widths), "depth": list(r.depth)}
                for r in self.rules
            ],
        }


def stem_unit(space, resolution: tuple[int, int]) -> tuple[Unit, int, int, int]:
    """The stem unit at ``resolution`` and the (h, w, channels) after it (two stride-2 convs)."""
    h, w = resolution
    c1, c2 = space.stem
    return Unit(space.name, "stem", h, w, 3, c2, mid=c1), down(down(h, 2), 2), down(down(w, 2), 2), c2


@unit_builder("df", "stem")
def _stem_module(u: Unit):
    from torch import nn

    from plaid.models.layers import ConvBN

    return nn.Sequential(ConvBN(3, u.mid, 3, 2), ConvBN(u.mid, u.cout, 3, 2))


@unit_builder("df", "basic")
def _basic_module(u: Unit):
    from plaid.models.resnets import BasicBlock

    return BasicBlock(u.cin, u.cout, u.cout, u.stride, u.proj, 1e-4)


@unit_builder("df", "bottleneck")
def _bottleneck_module(u: Unit):
    from plaid.models.resnets import Bottleneck

    return Bottleneck(u.cin, u.mid, u.cout, u.stride, u.proj, 1e-4)
