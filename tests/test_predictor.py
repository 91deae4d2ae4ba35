"""The predictor on a real SQLite table: sums, calibration fit, fidelity metrics."""

import random

import numpy as np
import pytest

from plaid.errors import PlaidError
from plaid.lut.latency import Latency
from plaid.lut.predictor import Predictor, calibration_name, fidelity
from plaid.lut.store import LatencyTable, TableMeta
from plaid.lut.units import arch_units, space_units
from plaid.spaces import get_space

RES = (224, 224)


@pytest.fixture
def table(tmp_path):
    space = get_space("df")
    t = LatencyTable.open(tmp_path / "t.sqlite", TableMeta("host", "tflite", "test", {"threads": 1}, {}), create=True)
    rng = random.Random(1)
    for u in space_units(space, RES):
        t.put(u.key, Latency(rng.uniform(0.1, 3.0), 3.1, 0.01, 50))
    yield t
    t.close()


def test_plain_prediction_is_the_sum_of_units(table):
    space = get_space("df")
    arch = space.sample(random.Random(0))
    pred = Predictor(table, space, RES)
    want = sum(table.get(u.key).median_ms for u in arch_units(space, arch, RES))
    assert pred(arch) == pytest.approx(want)
    assert not pred.calibrated


def test_fit_recovers_a_known_overhead_model(table):
    space = get_space("df")
    rng = random.Random(3)
    archs = [space.sample(rng) for _ in range(12)]
    pred = Predictor(table, space, RES)
    truth = [0.8 * s - 0.02 * n + 0.5 for s, n in (pred.features(a) for a in archs)]
    params = pred.fit(archs, truth)
    assert params["alpha"] == pytest.approx(0.8, abs=1e-6)
    assert params["gamma"] == pytest.approx(-0.02, abs=1e-6)
    assert params["beta"] == pytest.approx(0.5, abs=1e-5)
    assert np.allclose(pred.predict_many(archs), truth)
    table.set_calibration(calibration_name("df", RES), params)
    assert Predictor(table, space, RES).calibrated


def test_a_correction_within_the_noise_of_the_plain_sum_is_not_taken(table):
    """One-standard-error rule: the plain sum stays unless a correction beats it by more
    than the noise of its leave-one-out score (five nets, ±6% scatter, no real offset)."""
    space = get_space("df")
    rng = random.Random(4)
    archs = [space.sample(rng) for _ in range(5)]
    pred = Predictor(table, space, RES)
    noise = [1.04, 0.95, 1.06, 0.97, 1.02]
    params = pred.fit(archs, [pred.features(a)[0] * k for a, k in zip(archs, noise)])
    assert params["model"] == "plain" and params["alpha"] == 1.0 and params["beta"] == 0.0, params
    # a real offset, well above the noise, is still taken
    params = pred.fit(archs, [(pred.features(a)[0] + 5.0) * k for a, k in zip(archs, [1.01, 0.99, 1.0, 1.0, 1.01])])
    assert params["model"] != "plain" and params["beta"] > 1.0, params


def test_a_scale_effect_is_fitted_as_a_scale_not_a_constant(table):
    """Whole nets 10% slower than their units (work-proportional, e.g. caches a unit alone
    keeps warm): the scale and the constant are equally simple, and the better one is taken."""
    space = get_space("df")
    rng = random.Random(5)
    archs = [space.sample(rng) for _ in range(10)]
    pred = Predictor(table, space, RES)
    noise = [1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.01, 0.99, 1.0, 1.0]
    params = pred.fit(archs, [pred.features(a)[0] * 1.1 * k for a, k in zip(archs, noise)])
    assert params["model"] == "alpha" and params["alpha"] == pytest.approx(1.1, abs=0.01), params
    assert params["beta"] == 0.0 and params["gamma"] == 0.0


def test_fit_needs_three_points(table):
    space = get_space("df")
    with pytest.raises(PlaidError, match="at least 3"):
        Predictor(table, space, RES).fit([space.sample(random.Random(0))], [1.0])


def test_missing_unit_names_the_unit_and_the_fix(tmp_path):
    space = get_space("df")
    t = LatencyTable.open(tmp_path / "e.sqlite", TableMeta("host", "tflite", "test"), create=True)
    with pytest.raises(PlaidError, match="lacks unit df.stem.*plaid bench"):
        Predictor(t, space, RES)(space.sample(random.Random(0)))
    t.close()


def test_fidelity_metrics():
    f = fidelity([1.0, 2.2, 2.7, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert f["mape_pct"] == pytest.approx((0 + 10 + 10 + 0) / 4)
    assert f["max_abs_err_pct"] == pytest.approx(10.0)
    assert f["within_10pct"] == 1.0
    assert f["kendall_tau"] == pytest.approx(1.0)
    assert fidelity([2.0, 1.0], [1.0, 2.0])["kendall_tau"] == pytest.approx(-1.0)
