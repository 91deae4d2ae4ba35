"""Timing units while the rest still convert (plaid.lut.bench.ConvertingFeed): on a device
elsewhere (phone, board) always; on this host only on CPUs the timing does not use. The
conversions are real (onnx2tf); the device is a stand-in session that records when each
batch reached it, named as such."""

import os
from pathlib import Path

import pytest

from plaid.errors import PlaidError

pytestmark = [pytest.mark.tflite, pytest.mark.slow]


class RemoteStandIn:
    """A session whose timing runs elsewhere (a stand-in for a phone): every model gets
    1 ms; it records how far the conversions had got when each batch arrived."""

    transport = "standin"

    def __init__(self, converted):
        self.converted, self.batches = converted, []

    def timing_cpus(self):
        return set()

    def measure(self, models, on_event, progress):
        from plaid.lut.session import batches_of

        for batch in batches_of(models):
            assert all(Path(p).is_file() for _, p in batch)
            self.batches.append((len(batch), self.converted[-1] if self.converted else 0))
            for key, _ in batch:
                on_event({"event": "result", "key": key, "status": "ok", "median_ms": 1.0, "p90_ms": 1.0,
                          "std_ms": 0.0, "runs": 1, "info": {}})


@pytest.fixture
def standin(monkeypatch, tmp_path):
    from plaid.lut import session

    monkeypatch.setenv("PLAID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PLAID_CONVERT_WORKERS", "2")
    converted = []
    fake = RemoteStandIn(converted)
    token = session._ACTIVE.set({"host": fake})
    yield fake, converted
    session._ACTIVE.reset(token)


def _build(units, tmp_path, converted):
    from plaid.lut.bench import build_table
    from plaid.lut.store import LatencyTable, TableMeta
    from plaid.spaces import get_space
    from plaid.targets import load_target

    def progress(phase, done, total, label):
        if phase == "convert":
            converted.append(done)

    table = LatencyTable.open(tmp_path / "t.sqlite", TableMeta(target="host", runtime="tflite", runtime_version="x"),
                              create=True)
    try:
        report = build_table(load_target("host"), get_space("pl1aseg"), (96, 160), table, progress, units=units)
        return report, table.keys()
    finally:
        table.close()


def _units(n):
    from plaid.spaces.units import Unit

    return [Unit("pl1aseg", "lateral", 6, 10, 16, 8 * (i + 1)) for i in range(n)]


def test_a_remote_device_times_the_first_batch_while_the_rest_convert(standin, tmp_path):
    fake, converted = standin
    units = _units(14)
    report, _ = _build(units, tmp_path, converted)
    assert report.measured == 14 and sum(n for n, _ in fake.batches) == 14
    assert len(fake.batches) >= 2 and fake.batches[0][0] >= 8
    assert fake.batches[0][1] < 14  # the first batch was timed before the last conversion


def test_a_conversion_error_comes_after_the_ready_units_are_timed(standin, tmp_path):
    fake, converted = standin
    units = _units(9)

    class Broken:
        key, input_shapes = "pl1aseg.broken", (1, 16, 6, 10)

        def build(self):
            raise PlaidError("ONNX export failed: a broken unit")

    with pytest.raises(PlaidError, match="broken unit"):
        _build(units + [Broken()], tmp_path, converted)
    assert sum(n for n, _ in fake.batches) == 9  # what converted was timed first
    from plaid.lut.store import LatencyTable

    table = LatencyTable.open(tmp_path / "t.sqlite")
    try:
        assert table.keys() == {u.key for u in units}  # and committed
    finally:
        table.close()


def test_this_host_overlaps_only_with_two_cpus_besides_the_timing_ones(monkeypatch):
    from plaid.lut.bench import overlap_cpus
    from plaid.targets import load_target

    target = load_target("host")  # times on cpus = [0]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert overlap_cpus(target, 10) == {1, 2, 3}
    assert overlap_cpus(target, 1) is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert overlap_cpus(target, 10) is None  # one core left: convert, then time, as before
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setenv("PLAID_OVERLAP", "0")
    assert overlap_cpus(target, 10) is None
