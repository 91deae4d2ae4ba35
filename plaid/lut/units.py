"""Micro-benchmark units: the distinct pieces (stem, blocks by signature, head) that an
architecture of a space is made of at a given input resolution, with readable, versioned
keys such as ``df.basic-in:56x56x64-out:28x28x128-s2-proj``.

``arch_units`` splits one architecture into its units (what the predictor sums);
``space_units`` lists every unit any architecture of the space can contain (what a table
must measure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

UNIT_VERSION = 2  # 2: channel shuffle as a gather (no Transposes); bump when a unit's built module changes; tables record it
HEAD_CLASSES = 1000


def down(n: int, stride: int) -> int:
    """Spatial size after a 3x3 conv with padding 1 (or 1x1 pad 0) at ``stride``."""
    return (n - 1) // stride + 1


@dataclass(frozen=True, order=True)
class Unit:
    space: str  # df | pl1a
    kind: str  # stem | basic | bottleneck | shuffle | head
    h: int  # input height / width
    w: int
    cin: int
    cout: int
    mid: int = 0  # bottleneck inner width; stem: first conv width
    stride: int = 1
    proj: bool = False

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind == "stem":
            return down(down(self.h, 2), 2), down(down(self.w, 2), 2)
        if self.kind == "head":
            return 1, 1
        return down(self.h, self.stride), down(self.w, self.stride)

    @property
    def key(self) -> str:
        oh, ow = self.out_hw
        if self.kind == "head":
            return f"head-in:{self.h}x{self.w}x{self.cin}-out:{self.cout}"
        parts = [f"{self.space}.{self.kind}", f"in:{self.h}x{self.w}x{self.cin}"]
        if self.kind in ("bottleneck", "stem"):
            parts.append(f"mid:{self.mid}")
        parts.append(f"out:{oh}x{ow}x{self.cout}")
        if self.kind not in ("stem",):
            parts.append(f"s{self.stride}")
        if self.proj:
            parts.append("proj")
        return "-".join(parts)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.cin, self.h, self.w)

    def build(self):
        """The unit alone as a tiny module (NHWC output so converters add no Transpose)."""
        from plaid.lut.unit_modules import build_unit

        return build_unit(self)


def _stem(space, resolution) -> tuple[Unit, int, int, int]:
    """The stem unit of ``space`` at ``resolution``, and the (h, w, channels) after it."""
    h, w = resolution
    c1, c2 = space.stem
    return Unit(space.name, "stem", h, w, 3, c2, mid=c1), down(down(h, 2), 2), down(down(w, 2), 2), c2


def _df_units(space, arch, resolution) -> list[Unit]:
    stem, h, w, cin = _stem(space, resolution)
    units = [stem]
    for stage in arch.stages:
        prev = None
        for i, blk in enumerate(stage.blocks):
            s = 2 if i == 0 else 1
            proj = s != 1 or cin != blk.out or (blk.inner, blk.out) != prev
            units.append(Unit("df", stage.kind, h, w, cin, blk.out,
                              mid=blk.inner if stage.kind == "bottleneck" else 0, stride=s, proj=proj))
            h, w = down(h, s), down(w, s)
            cin, prev = blk.out, (blk.inner, blk.out)
    units.append(Unit("df", "head", h, w, cin, HEAD_CLASSES))
    return units


def _pl1a_units(space, arch, resolution) -> list[Unit]:
    stem, h, w, cin = _stem(space, resolution)
    units = [stem]
    for width, n in arch.stages:
        for i in range(n):
            s = 2 if i == 0 else 1
            units.append(Unit("pl1a", "shuffle", h, w, cin, width, stride=s))
            h, w = down(h, s), down(w, s)
            cin = width
    units.append(Unit("pl1a", "head", h, w, cin, HEAD_CLASSES))
    return units


SUPPORTED_SPACES = ("df", "pl1a")


def check_space(space) -> None:
    if space.name not in SUPPORTED_SPACES:
        from plaid.errors import UsageError

        raise UsageError(f"latency tables cover the backbone spaces df and pl1a; {space.name!r} is not supported yet")


def arch_units(space, arch, resolution: tuple[int, int]) -> list[Unit]:
    """The units ``arch`` is made of, in order (stem, blocks, head)."""
    check_space(space)
    return (_df_units if space.name == "df" else _pl1a_units)(space, arch, resolution)


def space_units(space, resolution: tuple[int, int]) -> list[Unit]:
    """Every distinct unit that some member of ``space`` contains at ``resolution``."""
    check_space(space)
    stem, h, w, c2 = _stem(space, resolution)
    found: set[Unit] = {stem}
    ins = {c2}
    if space.name == "df":
        for rule in space.rules:
            outs = set()
            for kind in rule.kinds:
                blocks = [space._block(kind, wd) for wd in rule.widths]  # noqa: SLF001
                mid = (lambda b: b.inner) if kind == "bottleneck" else (lambda b: 0)
                for cin in ins:  # first block: stride 2, always projected
                    for b in blocks:
                        found.add(Unit("df", kind, h, w, cin, b.out, mid=mid(b), stride=2, proj=True))
                h2, w2 = down(h, 2), down(w, 2)
                for p in blocks:  # later blocks follow a no-narrower block
                    for b in blocks:
                        if p.le(b) and rule.depth[1] > 1:
                            proj = p.out != b.out or p != b
                            found.add(Unit("df", kind, h2, w2, p.out, b.out, mid=mid(b), stride=1, proj=proj))
                outs |= {b.out for b in blocks}
            h, w = down(h, 2), down(w, 2)
            ins = outs
    else:
        for _, widths, units in space.rules:
            for cin in ins:
                for wd in widths:
                    found.add(Unit("pl1a", "shuffle", h, w, cin, wd, stride=2))
            h, w = down(h, 2), down(w, 2)
            if units[1] > 1:
                for wd in widths:
                    found.add(Unit("pl1a", "shuffle", h, w, wd, wd, stride=1))
            ins = set(widths)
    for cin in ins:
        found.add(Unit(space.name, "head", h, w, cin, HEAD_CLASSES))
    return sorted(found)


def unit_counts(units: list[Unit]) -> Counter:
    return Counter(u.kind for u in units)
