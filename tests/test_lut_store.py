"""Latency value object and the SQLite latency-table store, on real SQLite files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plaid.errors import PlaidError, UsageError
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable, TableMeta, export_rows, write_csv, write_json

REPO = Path(__file__).resolve().parents[1]


def make_meta(threads: int = 1, cpu: str = "Test CPU 9000", space: str = "df@512x1024") -> TableMeta:
    return TableMeta(target="host", runtime="tflite", runtime_version="ai-edge-litert 2.1.0",
                     settings={"threads": threads, "warmup_runs": 5, "min_runs": 20,
                               "min_seconds": 1.0},
                     fingerprint={"machine": "x86_64", "cpu": cpu, "cores": 16, "os": "Linux"},
                     space=space)


def lat(median: float, std: float = 0.1, runs: int = 50) -> Latency:
    return Latency(median_ms=median, p90_ms=median * 1.1, std_ms=std, runs=runs)


def quick_check(path: Path) -> list:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA quick_check").fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- Latency


def test_latency_sum_in_quadrature():
    a, b = Latency(1.0, 1.5, 3.0, 100), Latency(2.0, 2.5, 4.0, 40)
    s = a + b
    assert s.median_ms == 3.0 and s.p90_ms == 4.0
    assert s.std_ms == pytest.approx(5.0)
    assert s.runs == 40


def test_latency_builtin_sum():
    parts = [Latency(1.0, 1.2, 0.3, 30), Latency(2.0, 2.4, 0.4, 20), Latency(0.5, 0.6, 1.2, 50)]
    s = sum(parts)
    assert isinstance(s, Latency)
    assert s.median_ms == pytest.approx(3.5) and s.p90_ms == pytest.approx(4.2)
    assert s.std_ms == pytest.approx(1.3)  # sqrt(0.09 + 0.16 + 1.44)
    assert s.runs == 20
    assert sum([parts[0]]) == parts[0]
    with pytest.raises(TypeError):
        _ = 1 + parts[0]


def test_latency_ordering_by_median():
    small, big = Latency(1.0, 9.0, 5.0, 3), Latency(2.0, 2.0, 0.0, 100)
    assert small < big and small <= big and big > small and big >= small
    assert not (big <= small) and not (small >= big) and not (big < small)
    twin = Latency(1.0, 1.1, 0.0, 7)  # same median, other fields differ
    assert small <= twin and twin <= small and small >= twin and twin >= small
    assert not (small < twin) and not (twin < small)
    assert small != twin  # equality is field equality, not median equality
    assert small == Latency(1.0, 9.0, 5.0, 3)
    assert sorted([big, small]) == [small, big] and min(big, small) is small


def test_latency_cv_scale_json():
    a = Latency(4.0, 5.0, 1.0, 10)
    assert a.cv == 0.25 and Latency(0.0, 0.0, 0.0, 1).cv == 0.0
    assert a.scale(2) == Latency(8.0, 10.0, 2.0, 10)
    d = a.to_json()
    assert set(d) == {"median_ms", "p90_ms", "std_ms", "cv", "runs"} and d["cv"] == 0.25
    assert Latency.from_json(json.loads(json.dumps(d))) == a
    with pytest.raises(PlaidError, match="median_ms"):
        Latency.from_json({"p90_ms": 1, "std_ms": 0, "runs": 1})


# ---------------------------------------------------------------- store basics


def test_create_put_get_reopen(tmp_path):
    path = tmp_path / "deep" / "er" / "host.lut"
    meta = make_meta()
    with LatencyTable.open(path, meta, create=True) as t:
        assert len(t) == 0 and t.get("nope") is None
        t.put("conv-k3-c16", lat(1.5), extra={"flops": 123})
        t.put("conv-k3-c32", lat(2.5))
        t.put("conv-k3-c16", lat(1.25))  # replace
        t.put_e2e("df:R64x3", lat(10.0))
        t.set_calibration("overhead", {"a": 1.1, "b": 0.3})
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    with LatencyTable.open(path) as t:  # no meta given: the stored one is used
        assert t.meta == meta
        assert len(t) == 2 and "conv-k3-c32" in t and "df:R64x3" not in t
        assert t.keys() == {"conv-k3-c16", "conv-k3-c32"}
        assert t.get("conv-k3-c16") == lat(1.25)
        assert [k for k, _, _ in t.items()] == ["conv-k3-c16", "conv-k3-c32"]
        assert t.items()[1] == ("conv-k3-c32", lat(2.5), {})
        assert t.get_e2e("df:R64x3") == lat(10.0) and t.get_e2e("conv-k3-c16") is None
        assert t.e2e_items() == [("df:R64x3", lat(10.0), {})]
        assert t.get_calibration("overhead") == {"a": 1.1, "b": 0.3}
        assert t.get_calibration("other") is None
    with LatencyTable.open(path, make_meta(space="pl1a@256x512"), create=True) as t:
        assert len(t) == 2  # another space, same identity: shared table, not recreated
        t.put("pl1a-unit", lat(0.5))
    assert quick_check(path) == [("ok",)]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_put_rejects_nan(tmp_path):
    with LatencyTable.open(tmp_path / "t.lut", make_meta(), create=True) as t:
        with pytest.raises(PlaidError, match="u1"):
            t.put("u1", Latency(math.nan, 1.0, 0.1, 3))
        assert "u1" not in t


def test_meta_must_be_json(tmp_path):
    bad = TableMeta("host", "tflite", "1", {"threads": object()}, {})
    with pytest.raises(UsageError, match="JSON"):
        LatencyTable.open(tmp_path / "t.lut", bad, create=True)
    assert list(tmp_path.iterdir()) == []


def test_create_never_clobbers_an_existing_table(tmp_path):
    path = tmp_path / "t.lut"
    with LatencyTable.open(path, make_meta(), create=True) as t:
        t.put("kept", lat(1.0))
        LatencyTable._create(path, make_meta())  # the loser of a creation race
        t.put("kept-too", lat(2.0))
    with LatencyTable.open(path) as t:
        assert t.keys() == {"kept", "kept-too"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.lut"]


def test_missing_file_without_create(tmp_path):
    path = tmp_path / "absent.lut"
    with pytest.raises(UsageError, match="no latency table at") as e:
        LatencyTable.open(path, make_meta())
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(UsageError):
        LatencyTable.open(path, None, create=True)
    assert not path.exists()


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize("other, field", [
    (make_meta(threads=4), "settings.threads: 1 != 4"),
    (make_meta(cpu="Other CPU"), "fingerprint.cpu: Test CPU 9000 != Other CPU"),
])
def test_refuses_other_meta(tmp_path, other, field):
    path = tmp_path / "t.lut"
    LatencyTable.open(path, make_meta(), create=True).close()
    with pytest.raises(UsageError) as e:
        LatencyTable.open(path, other, create=True)
    msg = str(e.value)
    assert field in msg and str(path) in msg and "\n" not in msg
    assert type(e.value) is UsageError


def test_table_name_readable_and_stable():
    meta = make_meta()
    name = meta.name()
    assert name.startswith("host-tflite-ai_edge_litert_2.1.0-t1-")
    assert len(name.rsplit("-", 1)[1]) == 6
    assert name == "host-tflite-ai_edge_litert_2.1.0-t1-fbc0de"  # pinned: names must not drift
    shuffled = TableMeta("host", "tflite", "ai-edge-litert 2.1.0",
                         dict(reversed(list(meta.settings.items()))),
                         dict(reversed(list(meta.fingerprint.items()))), space="elsewhere")
    assert shuffled.name() == name  # key order and space do not matter
    assert make_meta(threads=4).name().split("-")[-2] == "t4"
    assert make_meta(cpu="Other").name() != name
    assert TableMeta("sd845", "tflite", "2.19", {}, {}).name().startswith("sd845-tflite-2.19-")


# ---------------------------------------------------------------- broken files


@pytest.mark.parametrize("ddl, expected", [
    ("CREATE TABLE songs(title TEXT, artist TEXT); INSERT INTO songs VALUES ('a', 'b')",
     "not a plaid latency table"),
    ("CREATE TABLE meta(id INTEGER, payload BLOB); INSERT INTO meta VALUES (1, x'00')",
     "not a plaid latency table"),
    ("CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT); INSERT INTO meta VALUES ('schema', 'x/9')",
     "has schema 'x/9'"),
])
def test_foreign_sqlite_file(tmp_path, ddl, expected):
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.executescript(ddl)
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(PlaidError) as e:
        LatencyTable.open(path, make_meta(), create=True)
    msg = str(e.value)
    assert expected in msg and str(path) in msg and "\n" not in msg
    assert path.read_bytes() == before  # untouched: not switched to WAL, nothing created


def test_random_bytes_file(tmp_path):
    path = tmp_path / "noise.lut"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(PlaidError) as e:
        LatencyTable.open(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg and "not an SQLite database" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.lut"
    path.touch()
    with pytest.raises(PlaidError, match="empty"):
        LatencyTable.open(path, make_meta(), create=True)


def test_truncated_table(tmp_path):
    src = tmp_path / "full.lut"
    with LatencyTable.open(src, make_meta(), create=True) as t:
        for i in range(400):
            t.put(f"unit-{i:04d}", lat(1.0 + i / 100), extra={"pad": "x" * 200})
    data = src.read_bytes()
    assert len(data) > 64 * 1024
    outcomes = set()
    for cut in (50, 100, 4096, len(data) // 3, len(data) // 2, len(data) - 4096, len(data) - 100):
        path = tmp_path / f"cut{cut}.lut"
        path.write_bytes(data[:cut])
        try:
            t = LatencyTable.open(path)
        except PlaidError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            outcomes.add("refused")
            continue
        with t:  # SQLite could read it: then every entry it reports must be intact
            for key, value, extra in t.items():
                i = int(key.split("-")[1])
                assert value == lat(1.0 + i / 100) and extra == {"pad": "x" * 200}
        outcomes.add("readable")
    assert "refused" in outcomes


# ---------------------------------------------------------------- crash safety

WRITER = """
import sys
from plaid.lut.latency import Latency
from plaid.lut.store import LatencyTable, TableMeta
meta = TableMeta.from_json({meta!r})
table = LatencyTable.open(sys.argv[1], meta, create=True)
for i in range(1_000_000):
    table.put(f"u{{i:07d}}", Latency(i + 0.5, i + 0.75, 0.125, i % 97 + 1), extra={{"i": i}})
    print(f"ack {{i}}", flush=True)
    if i == {ready}:
        print("ready", flush=True)
"""


def test_survives_sigkill_mid_run(tmp_path):
    path = tmp_path / "crash.lut"
    meta = make_meta()
    code = WRITER.format(meta=meta.to_json(), ready=200)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    acked: list[int] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            if line.startswith("ack "):
                acked.append(int(line.split()[1]))
            elif line.strip() == "ready":
                break
            assert time.monotonic() < deadline, "writer too slow"
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err
    acked += [int(x.split()[1]) for x in rest.splitlines() if x.startswith("ack ")]
    assert len(acked) > 200
    with LatencyTable.open(path, meta) as t:
        for i in acked:
            assert t.get(f"u{i:07d}") == Latency(i + 0.5, i + 0.75, 0.125, i % 97 + 1), i
        assert len(t) in (len(acked), len(acked) + 1)  # at most the one in flight
        assert t.items()[-1][2] == {"i": len(t) - 1}
        t.put("after-crash", lat(1.0))  # and it can be resumed
    assert quick_check(path) == [("ok",)]


# ---------------------------------------------------------------- export


def test_export_rows_and_csv_json(tmp_path):
    meta = make_meta()
    with LatencyTable.open(tmp_path / "t.lut", meta, create=True) as t:
        t.put("b-unit", Latency(2.0, 2.5, 0.5, 10))
        t.put("a-unit", Latency(1.0, 1.5, 0.0, 20))
        t.put_e2e("df:R64x3", Latency(9.0, 9.5, 0.9, 30))
        rows = export_rows(t)
    assert [(r["kind"], r["key"]) for r in rows] == [
        ("unit", "a-unit"), ("unit", "b-unit"), ("e2e", "df:R64x3")]
    assert list(rows[0]) == ["key", "median_ms", "p90_ms", "std_ms", "cv", "runs",
                             "measured_at", "kind"]
    assert rows[1]["cv"] == 0.25 and rows[2]["runs"] == 30 and rows[0]["measured_at"]
    buf = io.StringIO()
    write_csv(rows, buf)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(back) == 3 and back[1]["key"] == "b-unit" and float(back[1]["cv"]) == 0.25
    assert buf.getvalue().splitlines()[0] == "key,median_ms,p90_ms,std_ms,cv,runs,measured_at,kind"
    buf = io.StringIO()
    write_json(rows, buf, meta)
    doc = json.loads(buf.getvalue())
    assert doc["name"] == meta.name() and doc["rows"] == rows
    assert TableMeta.from_json(doc["meta"]) == meta


def test_lut_package_is_light():
    code = ("import sys, plaid.lut, plaid.lut.store, plaid.lut.latency\n"
            "print(','.join(m for m in ('torch', 'numpy', 'tensorflow', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == ""
