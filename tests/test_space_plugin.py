"""A space registered outside plaid (here, in the test) is measurable without editing
plaid/lut: it says which units its members are made of and how each unit kind is built,
and the real table build (ONNX export, onnx2tf, the TFLite interpreter on this host,
SQLite) and the predictor take it from there."""

import random
from dataclasses import dataclass

import pytest

from plaid.errors import ArchError, UsageError
from plaid.spaces import SPACES, get_space, register_space
from plaid.spaces.base import Space, measurable_spaces
from plaid.spaces.units import HEAD_CLASSES, Unit, down, unit_builder

NAME = "toyconv-plugin-test"


@dataclass(frozen=True)
class ToyArch:
    width: int  # one 3x3 conv, stride 2, of this width, then the classifier head


@register_space(NAME)
class ToyConvSpace(Space):
    name = NAME
    widths = (8, 16)

    def encode(self, arch):
        return f"{self.name}:{arch.width}"

    def decode(self, text):
        try:
            arch = ToyArch(int(text.split(":", 1)[1]))
        except (IndexError, ValueError):
            raise ArchError(f"bad toy arch {text!r}") from None
        self.validate(arch)
        return arch

    def to_json(self, arch):
        return {"space": self.name, "width": arch.width}

    def from_json(self, data):
        return ToyArch(int(data["width"]))

    def validate(self, arch):
        if arch.width not in self.widths:
            raise ArchError(f"width {arch.width} not in {self.widths}")

    def le(self, a, b):
        return a.width <= b.width

    def embed(self, arch):  # the order as a vector: a ≼ b iff embed(a) <= embed(b) everywhere
        return (arch.width,)

    def sample(self, rng: random.Random):
        return ToyArch(rng.choice(self.widths))

    def shrink(self, arch, rng):
        return ToyArch(rng.choice([w for w in self.widths if w <= arch.width]))

    def enumerate(self):
        return iter(ToyArch(w) for w in self.widths)

    def build(self, arch, num_classes=HEAD_CLASSES, **_):
        from torch import nn

        from plaid.models.layers import ClassifierHead, ConvBN

        return nn.Sequential(ConvBN(3, arch.width, 3, 2), ClassifierHead(arch.width, num_classes))

    def units(self, arch, resolution):
        h, w = resolution
        return [Unit(NAME, "conv", h, w, 3, arch.width, stride=2),
                Unit(NAME, "head", down(h, 2), down(w, 2), arch.width, HEAD_CLASSES)]

    def all_units(self, resolution):
        return sorted({u for wd in self.widths for u in self.units(ToyArch(wd), resolution)})


@unit_builder(NAME, "conv")
def _conv(u):
    from plaid.models.layers import ConvBN

    return ConvBN(u.cin, u.cout, 3, u.stride)


UNITLESS = "toyconv-unitless-test"


@register_space(UNITLESS)
class UnitlessSpace(ToyConvSpace):
    """The toy space without latency units: searchable, not measurable."""

    name = UNITLESS
    units = Space.units
    all_units = Space.all_units


def test_a_registered_space_is_measurable_and_one_without_units_is_not():
    assert NAME in SPACES and NAME in measurable_spaces()
    assert {"df", "pl1a", "dfseg", "pl1aseg"} <= set(measurable_spaces()) and UNITLESS not in measurable_spaces()
    assert get_space(NAME).measurable and not get_space(UNITLESS).measurable
    with pytest.raises(UsageError, match="no latency units yet"):
        get_space(UNITLESS).all_units((64, 64))


def test_a_unit_kind_without_a_builder_is_named():
    with pytest.raises(ValueError, match="no builder for unit kind 'gizmo' of space 'toyconv-plugin-test'"):
        Unit(NAME, "gizmo", 8, 8, 3, 8).build()


@pytest.mark.tflite
def test_a_table_for_it_is_built_and_predicts_whole_nets(tmp_path, tflite_cache, monkeypatch):
    from plaid.lut.bench import build_table, target_meta
    from plaid.lut.predictor import Predictor
    from plaid.lut.store import LatencyTable
    from plaid.targets import load_target

    monkeypatch.setenv("PLAID_CACHE", str(tflite_cache))
    target, space, res = load_target("host"), get_space(NAME), (16, 16)
    keys = [u.key for u in space.all_units(res)]
    assert set(keys) == {f"{NAME}.conv-in:16x16x3-out:8x8x8-s2", f"{NAME}.conv-in:16x16x3-out:8x8x16-s2",
                         "head-in:8x8x8-out:1000", "head-in:8x8x16-out:1000"}  # two convs, two heads
    with LatencyTable.open(tmp_path / "toy.sqlite", target_meta(target, NAME), create=True) as table:
        report = build_table(target, space, res, table)
        assert report.measured == 4 and not report.failed and all(k in table for k in keys)
        again = build_table(target, space, res, table)
        assert again.measured == 0 and again.already == 4  # complete: nothing measured twice
        small, big = Predictor(table, space, res)(ToyArch(8)), Predictor(table, space, res)(ToyArch(16))
        assert 0 < small and 0 < big
