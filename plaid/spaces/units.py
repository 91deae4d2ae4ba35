"""Latency units: the distinct pieces (stem, blocks by signature, head) that an architecture
is made of at a given input resolution, with readable, versioned keys such as
``df.basic-in:56x56x64-out:28x28x128-s2-proj``.

Units belong to spaces. A space that can be measured overrides
:meth:`plaid.spaces.base.Space.units` (the units of one architecture, in order: what the
predictor sums) and :meth:`~plaid.spaces.base.Space.all_units` (every unit any member can
contain: what a table must measure), and registers how each of its unit kinds is built
with :func:`unit_builder`. ``plaid/lut`` only calls those: a space registered with
``@register_space`` elsewhere (a plug-in, a test) is measurable without editing it.

This module imports no torch; builders import it when a unit is built."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from plaid.registry import Registry

# Bump when a unit's built module changes; tables record it. 2: channel shuffle as a gather
# (no Transposes). 3: a channels-last shuffle at each unit's output (reverted; tables of it
# exist, hence no reuse of 3). 4: PL1A's shuffle fused with the channel split at a stride-1
# unit's input, channels-last (RESHAPE/SPLIT, delegated whole), none at a unit's output.
UNIT_VERSION = 4
HEAD_CLASSES = 1000

# "space.kind" (or "*.kind" for every space) -> builder(unit) -> torch module (NCHW output)
UNIT_BUILDERS: Registry[tuple[Callable[["Unit"], Any], bool]] = Registry("unit kind")


def down(n: int, stride: int) -> int:
    """Spatial size after a 3x3 conv with padding 1 (or 1x1 pad 0) at ``stride``."""
    return (n - 1) // stride + 1


def unit_builder(space: str, kind: str, nhwc: bool = True):
    """Decorator: ``@unit_builder("pl1a", "shuffle")`` registers ``fn(unit) -> module``
    for that unit kind of that space (``space="*"``: of every space). With ``nhwc`` the
    module's output is permuted to NHWC, so converters add no layout Transpose and a unit
    costs what it costs inside a whole network."""
    def register(fn: Callable[["Unit"], Any]) -> Callable[["Unit"], Any]:
        UNIT_BUILDERS.add(f"{space}.{kind}", (fn, nhwc))
        return fn
    return register


@dataclass(frozen=True, order=True)
class Unit:
    space: str  # the space's name: the key's prefix and the builder's namespace
    kind: str  # stem | basic | bottleneck | shuffle | head | a kind a space registers (decoder kinds: plaid.spaces.decoder)
    h: int  # input height / width
    w: int
    cin: int
    cout: int
    mid: int = 0  # bottleneck inner width; stem: first conv width
    stride: int = 1
    proj: bool = False
    cin2: int = 0  # a second input's channels, at the same h x w (0: one input)
    up: int = 1  # the output is upsampled by this factor after the stride
    tag: str = ""  # what else tells units of a kind apart (a fixed backbone's arch, a head's bins)

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind == "stem":
            return down(down(self.h, 2), 2), down(down(self.w, 2), 2)
        if self.kind == "head":
            return 1, 1
        return down(self.h, self.stride) * self.up, down(self.w, self.stride) * self.up

    @property
    def key(self) -> str:
        oh, ow = self.out_hw
        if self.kind == "head":
            return f"head-in:{self.h}x{self.w}x{self.cin}-out:{self.cout}"
        parts = [f"{self.space}.{self.kind}", f"in:{self.h}x{self.w}x{self.cin}"]
        if self.cin2:
            parts.append(f"in2:{self.h}x{self.w}x{self.cin2}")
        if self.kind in ("bottleneck", "stem"):
            parts.append(f"mid:{self.mid}")
        parts.append(f"out:{oh}x{ow}x{self.cout}")
        if self.kind not in ("stem",):
            parts.append(f"s{self.stride}")
        if self.up > 1:
            parts.append(f"up{self.up}")
        if self.proj:
            parts.append("proj")
        if self.tag:
            parts.append(f"[{self.tag}]")
        return "-".join(parts)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """The (first) input's NCHW shape."""
        return (1, self.cin, self.h, self.w)

    @property
    def input_shapes(self) -> tuple[tuple[int, int, int, int], ...]:
        """Every input's NCHW shape, in the order the module takes them."""
        if self.cin2:
            return self.input_shape, (1, self.cin2, self.h, self.w)
        return (self.input_shape,)

    def build(self):
        """The unit alone as a tiny module, in eval mode, with fixed weights (deterministic
        ONNX bytes, so conversion-cache hits), from the builder its space registered."""
        import torch

        torch.manual_seed(0)
        module, nhwc = self.inner()
        if nhwc:
            from plaid.models.layers import NHWCOut

            module = NHWCOut(module)
        return module.eval()

    def inner(self):
        """(the builder's module with its NCHW output, whether a unit alone permutes that to NHWC)."""
        if f"{self.space}.{self.kind}" not in UNIT_BUILDERS:
            from plaid.spaces import _load_builtin

            _load_builtin()  # the built-in spaces register their builders when imported
        name = f"{self.space}.{self.kind}"
        if name not in UNIT_BUILDERS:
            name = f"*.{self.kind}"
        if name not in UNIT_BUILDERS:
            raise ValueError(f"no builder for unit kind {self.kind!r} of space {self.space!r} "
                             "(register one with plaid.spaces.units.unit_builder)")
        fn, nhwc = UNIT_BUILDERS.get(name)
        return fn(self), nhwc


def unit_counts(units: list[Unit]) -> Counter:
    return Counter(u.kind for u in units)


@unit_builder("*", "head", nhwc=False)
def _head(u: Unit):
    from plaid.models.layers import ClassifierHead

    return ClassifierHead(u.cin, u.cout)
