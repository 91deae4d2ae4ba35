"""Micro-benchmark units: every unit of every sampled arch is in the space's unit list,
keys are readable and unique, and each unit module has the shape its key says."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plaid.errors import UsageError
from plaid.lut.units import Unit, arch_units, space_units, unit_counts
from plaid.spaces import get_space, parse_arch

CASES = [("df", (224, 224)), ("pl1a", (384, 640)), ("df", (96, 160))]


@pytest.mark.parametrize("name,res", CASES)
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


def test_decoder_spaces_are_refused_with_one_line():
    with pytest.raises(UsageError, match="cover the spaces df, pl1a|cover the spaces df and pl1a"):
        space_units(get_space("dfseg"), (1024, 2048))


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
