"""Adjacent pairs of units (plaid/lut/pairs.py): what they are, how a space's pairs are
found, the residual model and the predictor that adds it; `plaid bench --pairs` end to end
with the real converter and interpreter on a tiny DF preset."""

import json
import random

import pytest

from conftest import preset_env, run_plaid
from plaid.lut.latency import Latency
from plaid.lut.pairs import PREFIX, Pair, PairModel, arch_pairs, boundary, chained, space_pairs
from plaid.lut.predictor import Predictor
from plaid.lut.units import Unit, arch_units
from plaid.spaces import get_space

A = Unit("df", "basic", 16, 16, 16, 16, stride=1)
B = Unit("df", "basic", 16, 16, 16, 32, stride=2, proj=True)
HEAD = Unit("df", "head", 8, 8, 32, 1000)


def test_a_pair_is_two_chained_units_with_a_boundary_class():
    p = Pair(A, B)
    assert p.key == f"{PREFIX}{A.key}|{B.key}]" and p.input_shapes == A.input_shapes
    assert Pair(A, A).boundary == "basic>basic" and p.boundary == "basic>basic/down"
    assert Pair(B, HEAD).boundary == "basic>head/down" == boundary(B.key, HEAD.key)
    assert chained(A, B) and chained(B, HEAD) and not chained(B, A) and not chained(HEAD, A)


def test_a_pair_module_is_the_two_units_in_sequence():
    import torch

    x = torch.randn(A.input_shape)
    out = Pair(A, B).build()(x)
    assert tuple(out.shape) == tuple(B.build()(torch.randn(B.input_shape)).shape)  # NHWC, as B alone
    a, _ = A.inner()
    b, _ = B.inner()
    torch.manual_seed(0)
    pair = Pair(A, B).build()
    a.load_state_dict(pair.inner[0].state_dict())
    b.load_state_dict(pair.inner[1].state_dict())
    assert torch.allclose(pair(x), b.eval()(a.eval()(x)).permute(0, 2, 3, 1), atol=1e-6)
    assert Pair(B, HEAD).build()(torch.randn(B.input_shape)).shape == (1, 1000)  # a head's output stays as is


@pytest.mark.parametrize("name,res", [("df", (224, 224)), ("pl1a", (384, 640))])
def test_the_space_pairs_cover_the_pairs_of_its_members(name, res):
    space = get_space(name)
    pairs = set(space_pairs(space, res))
    rng = random.Random(7)  # another seed than the search for them
    for _ in range(300):
        arch = space.sample(rng)
        units = arch_units(space, arch, res)
        got = arch_pairs(space, arch, res)
        assert len(got) == len(units) - 1 and set(got) <= pairs


def test_residuals_per_pair_and_the_class_median_for_boundaries_not_timed():
    c = Unit("df", "basic", 16, 16, 16, 16, stride=1, tag="other")
    ms = {A.key: 1.0, B.key: 2.0, c.key: 1.5, HEAD.key: 0.1,
          Pair(A, A).key: 1.8, Pair(A, B).key: 2.5, Pair(c, c).key: 2.6}
    model = PairModel(ms)
    assert len(model) == 3 and model.residual[Pair(A, A).key] == pytest.approx(-0.2)
    assert model.class_median == {"basic>basic": pytest.approx(-0.3), "basic>basic/down": pytest.approx(-0.5)}
    # timed, timed, untimed (its class's median), untimed of a class never timed (nothing)
    assert model.correction([Pair(A, A), Pair(A, B), Pair(c, A), Pair(B, HEAD)]) == pytest.approx(-0.2 - 0.5 - 0.3)
    assert PairModel({A.key: 1.0, Pair(A, B).key: 1.5}).residual == {}  # a pair whose second unit is missing


class FakeTable:
    def __init__(self, ms: dict, calibration: dict | None = None) -> None:
        self.ms, self.calibration = ms, calibration

    def items(self):
        return [(k, Latency(v, v, 0.0, 1), {}) for k, v in self.ms.items()]

    def get_calibration(self, name):
        return self.calibration


def test_the_predictor_adds_the_residuals_and_keeps_to_what_was_calibrated():
    space = get_space("df")
    res = (64, 64)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(6)]
    units = {u.key: 0.5 + i * 0.01 for i, u in enumerate(space.all_units(res))}
    pairs = {p.key: units[p.first.key] + units[p.second.key] - 0.1 for a in archs for p in arch_pairs(space, a, res)}
    table = FakeTable({**units, **pairs})
    plain = Predictor(table, space, res, pairs=False)
    with_pairs = Predictor(table, space, res)
    for a in archs:
        n = len(arch_units(space, a, res))
        assert with_pairs(a) == pytest.approx(plain(a) - 0.1 * (n - 1))
    measured = [with_pairs(a) * 1.02 for a in archs]
    params = with_pairs.fit(archs, measured)
    assert params["pairs"] == len(pairs)
    # a table calibrated before its pairs were timed keeps predicting as calibrated (plain sums)
    old = Predictor(FakeTable({**units, **pairs}, {**plain.fit(archs, measured), "pairs": 0}), space, res)
    assert old.pairs is None and old(archs[0]) == pytest.approx(plain(archs[0]))
    new = Predictor(FakeTable({**units, **pairs}, params), space, res)
    assert new.pairs is not None and new(archs[0]) == pytest.approx(with_pairs(archs[0]))


@pytest.mark.slow
@pytest.mark.tflite
def test_bench_pairs_times_every_adjacent_pair_and_validation_reports_what_they_buy(tmp_path, tflite_cache):
    from test_bench_e2e import TINY_DF

    env = preset_env(tmp_path, tflite_cache, "df", TINY_DF,
                     {"min_seconds = 0.5": "min_seconds = 0.2", "df = [224, 224]": "df = [64, 64]"})
    dry = json.loads(run_plaid("bench", "--space", "df", "--pairs", "--dry-run", "--json", env=env).stdout)
    keys = [u["key"] for u in dry["units"]]
    pair_keys = [k for k in keys if k.startswith(PREFIX)]
    assert len(keys) - len(pair_keys) == 6 and len(pair_keys) >= 5
    val = run_plaid("bench", "--space", "df", "--pairs", "--validate", "2", "--calibrate", "0", "--json", env=env)
    assert val.returncode == 0, val.stderr
    report = json.loads(val.stdout)
    assert report["build"]["measured_now"] == len(keys)
    v = report["validation"]
    assert v["pairs"]["pairs"] == len(pair_keys) and v["fidelity_without_pairs"]["n"] == 2
    for row in v["validation"]:  # uncalibrated: the sum of the units + the residuals of its boundaries
        assert row["predicted_ms"] != pytest.approx(row["predicted_without_pairs_ms"], rel=1e-9)
        assert row["predicted_without_pairs_ms"] == pytest.approx(row["plain_sum_ms"])
    shown = run_plaid("lut", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"6 units, {len(pair_keys)} adjacent pairs, 2 whole networks" in shown.stdout
    assert "pairs     each net's sum + the residual of every boundary" in shown.stdout
