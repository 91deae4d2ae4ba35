"""Property tests for every registered space (a new space is tested by registering it)."""

import itertools
import json
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaid.complexity import build_on_meta, profile
from plaid.errors import ArchError
from plaid.spaces import get_space, parse_arch, space_names
from plaid.zoo import ZOO

SPACES = space_names()
seeds = st.integers(min_value=0, max_value=2**32 - 1)
common = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


def macs(space, arch, res=None):
    return profile(build_on_meta(space.build, arch), res or space.resolution).macs


def test_builtin_spaces_registered():
    assert {"df", "pl1a", "dfseg", "pl1aseg"} <= set(SPACES)  # others may join; each is tested below


@pytest.mark.parametrize("name", SPACES)
@common
@given(seed=seeds)
def test_string_and_json_round_trip(name, seed):
    space = get_space(name)
    arch = space.sample(random.Random(seed))
    text = space.encode(arch)
    assert space.decode(text) == arch
    assert parse_arch(text) == (space, arch)
    assert space.encode(space.decode(text)) == text  # canonical
    data = json.loads(json.dumps(space.to_json(arch)))
    assert space.from_json(data) == arch
    assert hash(arch) == hash(space.decode(text))


@pytest.mark.parametrize("name", SPACES)
@common
@given(seed=seeds)
def test_samples_and_shrinks_are_members(name, seed):
    space = get_space(name)
    rng = random.Random(seed)
    arch = space.sample(rng)
    space.validate(arch)
    sub = space.shrink(arch, rng)
    space.validate(sub)
    assert space.le(sub, arch)


@pytest.mark.parametrize("name", SPACES)
@common
@given(seed=seeds)
def test_partial_order_laws(name, seed):
    space = get_space(name)
    rng = random.Random(seed)
    b = space.sample(rng)
    a = space.shrink(b, rng)
    c = space.shrink(a, rng)
    other = space.sample(rng)
    # reflexive
    for x in (a, b, c, other):
        assert space.le(x, x)
    # transitive along a chain c ≼ a ≼ b
    assert space.le(c, a) and space.le(a, b) and space.le(c, b)
    # antisymmetric, also on unrelated pairs
    for x, y in itertools.permutations((a, b, c, other), 2):
        if space.le(x, y) and space.le(y, x):
            assert x == y
        # transitivity over every triple
        for z in (a, b, c, other):
            if space.le(x, y) and space.le(y, z):
                assert space.le(x, z)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_order_implies_fewer_macs(name, seed):
    space = get_space(name)
    rng = random.Random(seed)
    b = space.sample(rng)
    a = space.shrink(b, rng)
    assert macs(space, a) <= macs(space, b)


@pytest.mark.parametrize("name", SPACES)
@common
@given(seed=seeds)
def test_embedding_agrees_with_the_order(name, seed):
    space = get_space(name)
    rng = random.Random(seed)
    b = space.sample(rng)
    pairs = [(space.shrink(b, rng), b), (space.sample(rng), b), (b, space.shrink(b, rng)), (b, b)]
    for x, y in pairs:
        by_embed = all(p <= q for p, q in zip(space.embed(x), space.embed(y)))
        assert by_embed == space.le(x, y)


def _brute_force_stage_le(sa, sb):
    """Definition: a's blocks map to an increasing subsequence of b's blocks, each no wider."""
    if sa.kind != sb.kind:
        return False
    n, m = len(sa.blocks), len(sb.blocks)
    for idx in itertools.combinations(range(m), n):
        if all(sa.blocks[i].le(sb.blocks[j]) for i, j in enumerate(idx)):
            return True
    return False


@settings(max_examples=150)
@given(seed=seeds)
def test_df_order_matches_its_definition(seed):
    space = get_space("df")
    rng = random.Random(seed)
    a, b = space.sample(rng), space.sample(rng)
    if rng.random() < 0.5:
        a = space.shrink(b, rng)
    # keep the brute force small: trim stages to at most 7 blocks
    from plaid.spaces.df import DFArch, Stage

    def trim(x):
        return DFArch(tuple(Stage(s.kind, s.blocks[-7:]) for s in x.stages))

    a, b = trim(a), trim(b)
    want = all(_brute_force_stage_le(x, y) for x, y in zip(a.stages, b.stages))
    assert space.le(a, b) == want


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_sampled_archs_build_and_run(name, seed):
    space = get_space(name)
    arch = space.sample(random.Random(seed))
    torch.manual_seed(0)
    model = space.build(arch, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 96))
    want = (2, 7) if space.task == "classification" else (2, 7, 64, 96)
    assert tuple(out.shape) == want
    assert torch.isfinite(out).all()


def test_zoo_df_nets_are_members_of_df():
    space = get_space("df")
    for name in ("df1", "df2", "df2a", "dflite"):
        got_space, arch = parse_arch(ZOO.get(name).arch)
        assert got_space is space
        space.validate(arch)


def test_zoo_decoders_are_members_of_their_spaces():
    for name in ("df1-seg", "df2-seg1", "df2-seg2", "dflite-seg", "pl1a-seg"):
        space, arch = parse_arch(ZOO.get(name).arch)
        get_space(space.name, backbone=arch.backbone).validate(arch)
        backbone_space, backbone = parse_arch(arch.backbone)
        backbone_space.validate(backbone)


def test_pl1a_seg_backbone_is_in_pl1a():
    space, arch = parse_arch(ZOO.get("pl1a-seg").arch)
    bb_space, bb = parse_arch(arch.backbone)
    assert bb_space.name == "pl1a"
    bb_space.validate(bb)
    assert bb_space.encode(bb) == "pl1a:48x4-96x8-192x4"


def test_the_paper_nets_are_ordered_as_expected():
    df = get_space("df")
    dflite, df1, df2 = (parse_arch(ZOO.get(n).arch)[1] for n in ("dflite", "df1", "df2"))
    assert df.le(dflite, df1) and df.le(df1, df2) and df.le(dflite, df2)
    assert not df.le(df2, df1)
    df2a = parse_arch(ZOO.get("df2a").arch)[1]
    assert not df.le(df2, df2a) and not df.le(df2a, df2)  # different block kinds in res3/res4


@pytest.mark.parametrize("text,fragment", [
    ("df:", "not a df architecture"),
    ("df:R64x3-R128x3", None),  # parses; validate says: 2 stages
    ("df:R64x3-X128-R256", "must start with R"),
    ("df:R64x3-R128x-R256", "bad block token"),
    ("df:R128,64-R128-R256", "must not decrease"),
    ("df:R64:256-R128-R256", "basic blocks take one width"),
    ("df:R0-R128-R256", "positive"),
    ("pl1a:48x4-96-192x4", "bad token"),
    ("pl1a:47x4-96x8-192x4", "even"),
    ("dfseg:19-32-128@df:R64-R128-R256", "expected 7 positive widths"),
    ("dfseg:19-32-128-32-32-19-19", "expected e.g."),
    ("dfseg:19-32-128-32-32-19-19@pl1a:48x4-96x8-192x4", "not a df architecture"),
    ("zzz:1-2-3", "unknown space"),
    ("resnet18", "expected SPACE:GENES"),
])
def test_malformed_strings_are_named(text, fragment):
    if fragment is None:
        space, arch = parse_arch(text)
        with pytest.raises(ArchError, match="stages"):
            space.validate(arch)
        return
    with pytest.raises(ArchError, match=fragment):
        parse_arch(text)


@pytest.mark.parametrize("text,fragment", [
    ("df:R64x7-R128-R256", "blocks, allowed 1..6"),
    ("df:R32-R128-R256", "width 32 not in"),
    ("df:R64-B128:256-R256", "must output 512"),
    ("pl1a:48x9-96x8-192x4", "units, allowed"),
    ("pl1a:50x4-96x8-192x4", "width 50 not in"),
])
def test_out_of_space_archs_are_named(text, fragment):
    space, arch = parse_arch(text)
    with pytest.raises(ArchError, match=fragment):
        space.validate(arch)
    assert not space.contains(arch)


def test_pl1a_enumeration_is_finite_and_consistent():
    space = get_space("pl1a")
    n = 0
    for arch in space.enumerate():
        n += 1
        if n > 50:
            break
        space.validate(arch)
    per_stage = [len(w) * (u[1] - u[0] + 1) for _, w, u in space.rules]
    assert per_stage[0] * per_stage[1] * per_stage[2] > 50
