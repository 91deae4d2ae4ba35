"""Micro-benchmark units: every unit of every sampled arch is in the space's unit list,
keys are readable and unique, and each unit module has the shape its key says."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plaid.lut.units import Unit, arch_units, space_units, unit_counts
from plaid.spaces import get_space, parse_arch
from plaid.zoo import ZOO

CASES = [("df", (224, 224)), ("pl1a", (384, 640)), ("df", (96, 160))]
DECODER_CASES = [("pl1aseg", (384, 640)), ("dfseg", (384, 640)), ("dfseg", (1024, 2048))]


@pytest.mark.parametrize("name,res", CASES + DECODER_CASES)
@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
def test_sampled_archs_only_use_enumerated_units(name, res, seed):
    space = get_space(name)
    keys = {u.key for u in space_units(space, res)}
    arch = space.sample(random.Random(seed))
    assert {u.key for u in arch_units(space, arch, res)} <= keys


@pytest.mark.parametrize("name,res", CASES)
def test_unit_keys_are_unique_and_readable(name, res):
    units = space_units(get_space(name), res)
    assert len({u.key for u in units}) == len(units)
    counts = unit_counts(units)
    assert counts["stem"] == 1 and counts["head"] >= 1
    for u in units:
        assert u.key.startswith((f"{name}.", "head-")) and " " not in u.key


def test_df1_decomposes_like_the_reference():
    space, arch = parse_arch("df:R64x3-R128x3-R256x3,512")
    keys = [u.key for u in arch_units(space, arch, (224, 224))]
    assert keys[0] == "df.stem-in:224x224x3-mid:32-out:56x56x64"
    assert keys[1] == "df.basic-in:56x56x64-out:28x28x64-s2-proj"
    assert keys[2] == "df.basic-in:28x28x64-out:28x28x64-s1"
    assert keys[-2] == "df.basic-in:7x7x256-out:7x7x512-s1-proj"
    assert keys[-1] == "head-in:7x7x512-out:1000"
    assert len(keys) == 1 + 10 + 1


@pytest.mark.parametrize("name,res", DECODER_CASES)
def test_decoder_units_are_one_backbone_and_the_decoder_layers(name, res):
    space = get_space(name)
    units = space_units(space, res)
    assert len({u.key for u in units}) == len(units)
    counts = unit_counts(units)
    n = len(space.widths)
    assert counts == {"backbone": 1, "psp": n, "score": n, "lateral": 2 * n, "up": 2 * n * n, "concat": 2 * n * n,
                      "fuse": 2 * len({a + b for a in space.widths for b in space.widths}) * n}
    bb = [u for u in units if u.kind == "backbone"][0]
    assert space.backbone in bb.key and bb.out_hw == (res[0] // 32, res[1] // 32)
    arch = space.decode(ZOO.get({"pl1aseg": "pl1a-seg", "dfseg": "df2-seg1"}[name]).arch)
    keys = [u.key for u in arch_units(space, arch, res)]
    assert [k.split("-in:")[0] for k in keys] == [
        f"{name}.{k}" for k in ("backbone", "psp", "lateral", "up", "concat", "fuse", "lateral", "up", "concat",
                                "fuse", "score")]


def _conv_macs_and_weights(module, inputs):
    """(MACs, weights) of every conv / transposed conv a forward of ``module`` runs."""
    total = {"macs": 0, "weights": 0}

    def hook(mod, args, out):
        g = mod.groups
        kh, kw = mod.kernel_size
        if isinstance(mod, torch.nn.ConvTranspose2d):
            area = args[0].shape[-2] * args[0].shape[-1]
            total["macs"] += area * mod.in_channels * (mod.out_channels // g) * kh * kw
        else:
            total["macs"] += out.shape[-2] * out.shape[-1] * mod.out_channels * (mod.in_channels // g) * kh * kw
        total["weights"] += mod.weight.numel()

    hooks = [m.register_forward_hook(hook) for m in module.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        out = module(*inputs)
    for h in hooks:
        h.remove()
    return total, out


@pytest.mark.parametrize("name", ["pl1aseg", "dfseg"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoder_units_add_up_to_the_whole_network(name, seed):
    """The units of a decoder net run, between them, every conv of the whole net once, at
    the same sizes: the same MACs and the same weights; each unit's output has the shape
    its key says (NHWC; the score unit NCHW like the network's output)."""
    space, res = get_space(name), (64, 96)
    arch = space.sample(random.Random(seed))
    whole, y = _conv_macs_and_weights(space.build(arch).eval(), [torch.randn(1, 3, *res)])
    assert tuple(y.shape) == (1, space.style.num_classes, *res)
    parts = {"macs": 0, "weights": 0}
    for u in arch_units(space, arch, res):
        got, out = _conv_macs_and_weights(u.build(), [torch.randn(*s) for s in u.input_shapes])
        parts = {k: parts[k] + got[k] for k in parts}
        want = (1, u.cout, *u.out_hw) if u.kind == "score" else (1, *u.out_hw, u.cout)
        assert tuple(out.shape) == want, u.key
    assert parts == whole


def test_a_decoder_resolution_not_divisible_by_32_is_one_line():
    from plaid.errors import ArchError

    with pytest.raises(ArchError, match="divisible by 32"):
        space_units(get_space("pl1aseg"), (100, 160))


@pytest.mark.parametrize("name,res", [("df", (64, 96)), ("pl1a", (64, 96))])
def test_unit_modules_have_the_shapes_their_keys_say(name, res):
    for u in space_units(get_space(name), res)[::3]:
        with torch.no_grad():
            y = u.build()(torch.randn(*u.input_shape))
        if u.kind == "head":
            assert tuple(y.shape) == (1, u.cout)
        else:  # NHWC out
            assert tuple(y.shape) == (1, *u.out_hw, u.cout), u.key


def test_unit_build_is_deterministic():
    u = Unit("pl1a", "shuffle", 8, 8, 24, 48, stride=2)
    a, b = u.build(), u.build()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_unit_keys_are_the_ones_existing_tables_hold():
    """Units moved into the spaces (issue 12): every key, of whole spaces and of sampled
    nets, is byte for byte what the code before the move gave (tests/data/unit_keys.json
    was written by it), so tables measured before stay valid."""
    import json
    from pathlib import Path

    from plaid.spaces import get_space

    golden = json.loads((Path(__file__).parent / "data" / "unit_keys.json").read_text())
    assert len(golden) == 5
    for where, want in golden.items():
        name, res = where.split("@")
        res = tuple(int(v) for v in res.split("x"))
        space = get_space(name)
        assert [u.key for u in space_units(space, res)] == want["all"], where
        for arch, keys in want["archs"].items():
            assert [u.key for u in arch_units(space, space.decode(arch), res)] == keys, (where, arch)
