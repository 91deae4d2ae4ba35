"""`plaid bench --validate` reports a MACs-only line beside the table's predictor, fitted
on the same calibration nets, so users see what the table buys. In process, on a real
SQLite table filled by hand (no unit is converted or timed)."""

import random

import pytest

from plaid.lut import validate
from plaid.lut.bench import target_meta
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable
from plaid.lut.units import space_units
from plaid.spaces import get_space
from plaid.targets import load_target

RES = (64, 64)


def test_macs_line_fits_and_predicts():
    line = validate.fit_macs([1e9, 3e9], [2.5, 6.5])
    assert line(2e9) == pytest.approx(4.5) and line.describe()["ms_per_gmac"] == pytest.approx(2.0)
    assert line.describe()["intercept_ms"] == pytest.approx(0.5)
    through_origin = validate.fit_macs([2e9, 2e9], [4.0, 4.2])  # equal MACs: no slope from an intercept
    assert through_origin(1e9) == pytest.approx(2.05) and through_origin.intercept_ms == 0.0
    assert validate.fit_macs([], []) is None


def test_validation_reports_the_macs_baseline_on_the_same_nets(tmp_path, monkeypatch):
    target, space = load_target("host"), get_space("pl1a")
    monkeypatch.setattr(validate, "measure_models", lambda *a, **k: pytest.fail("nothing should be timed"))
    rng = random.Random(7)  # the nets calibrate_and_validate(seed=7) draws
    calib = validate.sample_distinct(space, 3, rng, set())
    valid = validate.sample_distinct(space, 8, rng, set(calib))
    with LatencyTable.open(tmp_path / "t.sqlite", target_meta(target, "pl1a"), create=True) as table:
        for i, unit in enumerate(space_units(space, RES)):
            ms = 0.01 + 0.001 * (i % 5)
            table.put(unit.key, Latency(ms, ms * 1.1, 0.001, 10), {})
        for a in calib + valid:  # whole nets whose latency is exactly a line in MACs
            ms = 0.25 + 40.0 * validate.macs_of(space, a, RES) / 1e9
            table.put_e2e(validate.e2e_key(space.encode(a), RES), Latency(ms, ms * 1.1, 0.001, 10))
        report = validate.calibrate_and_validate(target, space, RES, table, 3, 8, seed=7)
    assert [r["arch"] for r in report["validation"]] == [space.encode(a) for a in valid]
    assert report["macs_baseline"]["fit_on"] == "the calibration nets" and report["macs_baseline"]["n"] == 3
    assert report["macs_baseline"]["ms_per_gmac"] == pytest.approx(40.0, rel=1e-6)
    f = report["fidelity_macs"]
    assert f["n"] == 8 and f["mape_pct"] < 1e-6 and f["within_10pct"] == 1.0
    assert all(r["macs"] > 0 and r["macs_ms"] == pytest.approx(r["measured_ms"]) for r in report["validation"])
    assert report["fidelity"]["n"] == 8  # the table's own figures are still there beside it


def test_without_calibration_nets_there_is_no_macs_line(tmp_path, monkeypatch):
    target, space = load_target("host"), get_space("pl1a")
    monkeypatch.setattr(validate, "measure_models", lambda *a, **k: pytest.fail("nothing should be timed"))
    valid = validate.sample_distinct(space, 2, random.Random(1), set())
    with LatencyTable.open(tmp_path / "t.sqlite", target_meta(target, "pl1a"), create=True) as table:
        for unit in space_units(space, RES):
            table.put(unit.key, Latency(0.01, 0.011, 0.001, 10), {})
        for a in valid:
            table.put_e2e(validate.e2e_key(space.encode(a), RES), Latency(1.0, 1.1, 0.01, 10))
        report = validate.calibrate_and_validate(target, space, RES, table, 0, 2, seed=1)
    assert "fidelity_macs" not in report and "macs_baseline" not in report and report["fidelity"]["n"] == 2
