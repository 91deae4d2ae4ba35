"""plaid.fsio: atomic writes that never follow a planted link nor write into a FIFO, a
device or a folder; file hashing. Unit tests, then the same promises through the real CLI
(`plaid lut export -o`) and device_bench (which has its own stdlib copy)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plaid.errors import UsageError
from plaid.fsio import (atomic_open, atomic_path, atomic_write_bytes, atomic_write_text, check_destination,
                        create_new, file_digest, file_hash)
from conftest import run_plaid


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "victim"
    v.write_text("precious\n")
    return v


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


# ---------------------------------------------------------------- unit: the helper


def test_write_creates_and_replaces_a_regular_file(tmp_path):
    out = tmp_path / "a.txt"
    atomic_write_text(out, "one\n")
    assert out.read_text() == "one\n"
    atomic_write_bytes(out, b"two\n")
    assert out.read_bytes() == b"two\n"
    assert leftovers(tmp_path, "a.txt") == []


def test_new_file_gets_the_mode_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("planted", [".part", ".tmp", ".new", "~"])
def test_a_link_at_a_predictable_temp_name_is_not_followed(tmp_path, victim, planted):
    out = tmp_path / "out.csv"
    (tmp_path / f"out.csv{planted}").symlink_to(victim)
    (tmp_path / f".out.csv{planted}").symlink_to(victim)
    atomic_write_text(out, "a,b\n")
    assert victim.read_text() == "precious\n"
    assert out.read_text() == "a,b\n" and not out.is_symlink()


def test_a_symlink_destination_is_refused_and_left_alone(tmp_path, victim):
    out = tmp_path / "out.json"
    out.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        atomic_write_text(out, "{}")
    assert out.is_symlink() and os.readlink(out) == str(victim)
    assert victim.read_text() == "precious\n"
    assert leftovers(tmp_path, "out.json") == []


def test_a_dangling_symlink_destination_is_refused(tmp_path):
    out = tmp_path / "out.json"
    out.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="symbolic link"):
        atomic_write_text(out, "{}")
    assert not (tmp_path / "nowhere").exists()


def test_a_fifo_destination_is_refused_and_stays_a_fifo(tmp_path):
    out = tmp_path / "fifo"
    os.mkfifo(out)
    with pytest.raises(UsageError, match="FIFO") as info:
        atomic_write_bytes(out, b"data")  # must not block on the FIFO either
    assert "\n" not in str(info.value)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert leftovers(tmp_path, "fifo") == []


def test_a_folder_destination_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "dir"
    out.mkdir()
    (out / "keep").write_text("k")
    with pytest.raises(UsageError, match="folder"):
        atomic_write_text(out, "x")
    assert (out / "keep").read_text() == "k"


def test_a_device_destination_is_refused():
    with pytest.raises(UsageError, match="character device"):
        check_destination("/dev/null")


def test_check_destination_accepts_missing_and_regular(tmp_path):
    check_destination(tmp_path / "missing")
    (tmp_path / "f").write_text("x")
    check_destination(tmp_path / "f")


def test_failure_while_writing_removes_the_temp_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "t.txt"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(out, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("boom")
    assert out.read_text() == "old\n"
    assert leftovers(tmp_path, "t.txt") == []


def test_atomic_path_failure_removes_the_temp(tmp_path):
    out = tmp_path / "w.bin"
    with pytest.raises(ValueError):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError("writer failed")
    assert not out.exists() and leftovers(tmp_path, "w.bin") == []


def test_atomic_path_for_writers_that_take_a_name(tmp_path, victim):
    out = tmp_path / "model.onnx"
    (tmp_path / "model.onnx.part").symlink_to(victim)
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.is_file() and tmp.stat().st_size == 0
        tmp.write_bytes(b"onnx")
    assert out.read_bytes() == b"onnx" and victim.read_text() == "precious\n"
    assert leftovers(tmp_path, "model.onnx") == []


def test_a_symlink_swapped_in_while_writing_is_refused_at_the_rename(tmp_path, victim):
    out = tmp_path / "late.txt"
    with pytest.raises(UsageError, match="symbolic link"):
        with atomic_open(out, "w") as fh:
            fh.write("new")
            out.symlink_to(victim)
    assert victim.read_text() == "precious\n" and leftovers(tmp_path, "late.txt") == []


def test_temp_names_are_unpredictable_and_concurrent_writers_do_not_collide(tmp_path):
    out = tmp_path / "shared.json"
    names, errors = set(), []
    gate = threading.Barrier(8)

    def writer(i: int) -> None:
        try:
            gate.wait()
            with atomic_path(out) as tmp:
                names.add(tmp.name)
                tmp.write_text(json.dumps({"writer": i, "pad": "x" * 10000}))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(names) == 8 and all(n.startswith(".shared.json.") for n in names)
    assert json.loads(out.read_text())["writer"] in range(8)  # one whole document, not a mix
    assert leftovers(tmp_path, "shared.json") == []


def test_atomic_open_only_writes():
    with pytest.raises(ValueError):
        with atomic_open("x", "a"):
            pass


@pytest.mark.parametrize("algo", ["sha256", "md5", "sha1"])
def test_file_digest_matches_hashlib(tmp_path, algo):
    f = tmp_path / "blob"
    data = os.urandom(3 << 20) + b"tail"  # several read blocks
    f.write_bytes(data)
    assert file_digest(f, algo) == hashlib.new(algo, data).hexdigest()
    h = file_hash(f)
    h.update(b"more")
    assert h.hexdigest() == hashlib.sha256(data + b"more").hexdigest()


def test_stored_identities_keep_their_hashes(tmp_path):
    """Checkpoint sha256 and the adb runner's md5 identity are what they were before."""
    from plaid.export.checkpoint import load_checkpoint

    torch = pytest.importorskip("torch")
    f = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(3)}, f)
    assert load_checkpoint(f).sha256 == hashlib.sha256(f.read_bytes()).hexdigest()


# ---------------------------------------------------------------- through the CLI


@pytest.fixture
def table(tmp_path):
    from plaid.lut.latency import Latency
    from plaid.lut.store import LatencyTable, TableMeta

    path = tmp_path / "t.sqlite"
    meta = TableMeta(target="host", runtime="tflite", runtime_version="test", settings={"threads": 1},
                     fingerprint={"cpu": "test"})
    with LatencyTable.open(path, meta, create=True) as t:
        t.put("conv-k3", Latency(median_ms=1.5, p90_ms=1.7, std_ms=0.1, runs=20))
    return path


def test_cli_lut_export_does_not_follow_a_planted_part_link(tmp_path, table, victim):
    out = tmp_path / "out.csv"
    (tmp_path / "out.csv.part").symlink_to(victim)
    r = run_plaid("lut", "export", "--table", str(table), "--csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious\n"
    assert "conv-k3" in out.read_text() and not out.is_symlink()


def test_cli_lut_export_refuses_a_fifo_in_one_line(tmp_path, table):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_plaid("lut", "export", "--table", str(table), "--csv", "-o", str(fifo))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "FIFO" in r.stderr and "Traceback" not in r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_cli_lut_export_refuses_a_symlink_output(tmp_path, table, victim):
    out = tmp_path / "out.json"
    out.symlink_to(victim)
    r = run_plaid("lut", "export", "--table", str(table), "--json", "-o", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert victim.read_text() == "precious\n" and out.is_symlink()


# ---------------------------------------------------------------- device_bench's own copy


def _bench(tmp_path, out: Path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"schema": __import__("device_bench.schema").schema.PLAN_SCHEMA,
                                "runtime": "tflite", "settings": {},
                                "models": [{"key": "gone", "path": "gone.tflite"}]}))
    return subprocess.run([sys.executable, "-m", "device_bench", str(plan), "--quiet", "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])


def test_device_bench_does_not_follow_a_planted_tmp_link(tmp_path, victim):
    out = tmp_path / "r.json"
    (tmp_path / "r.json.tmp").symlink_to(victim)
    r = _bench(tmp_path, out)
    assert r.returncode == 1, r.stderr  # the one model is missing: an error row, still written
    assert victim.read_text() == "precious\n"
    assert json.loads(out.read_text())["results"][0]["status"] == "error"
    assert leftovers(tmp_path, "r.json") == []


def test_device_bench_refuses_a_fifo_before_running(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = _bench(tmp_path, fifo)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "device_bench: error:" in r.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_validation_plot_does_not_follow_links(tmp_path, victim):
    pytest.importorskip("matplotlib")
    from plaid.lut.validate import scatter_png

    rows = [{"measured_ms": 1.0, "predicted_ms": 1.1}, {"measured_ms": 2.0, "predicted_ms": 1.9}]
    png = tmp_path / "v.png"
    (tmp_path / "v.png.part").symlink_to(victim)
    scatter_png(rows, png, "t")
    assert png.read_bytes().startswith(b"\x89PNG") and victim.read_text() == "precious\n"
    link = tmp_path / "l.png"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        scatter_png(rows, link, "t")
    assert victim.read_text() == "precious\n"


# ---------------------------------------------------------------- files written as they grow

@pytest.mark.parametrize("planted", ["link", "dangling", "fifo", "file"])
def test_create_new_never_opens_what_is_already_there(tmp_path, victim, planted):
    path = tmp_path / "log"
    if planted == "link":
        path.symlink_to(victim)
    elif planted == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif planted == "fifo":
        os.mkfifo(path)  # opening it for writing would block: O_EXCL refuses before that
    else:
        path.write_text("old\n")
    with pytest.raises(FileExistsError):
        create_new(path)
    assert victim.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()
    with create_new(tmp_path / "fresh", "w") as fh:
        fh.write("x")
    assert (tmp_path / "fresh").read_text() == "x"


def test_command_evaluator_logs_skip_links_planted_at_their_names(tmp_path, victim, monkeypatch):
    """`<out>.stdout` / `<out>.stderr` have predictable names (arch hash, time, pid, n): links
    (and a FIFO) planted there for n = 0, 1, 2 are left alone and the run uses n = 3."""
    import shlex

    from plaid.train import command
    from plaid.train.evaluators import CommandEvaluator, arch_sha1

    class Space:
        name = "fake"

        def encode(self, arch):
            return arch

        def decode(self, text):
            return text

    monkeypatch.setattr(command.time, "strftime", lambda fmt, *a: "20300101-000000")
    work = tmp_path / "work"
    work.mkdir()
    stem = f"{arch_sha1('fake:a')[:16]}-20300101-000000-{os.getpid()}"
    (work / f"{stem}-0.json.stdout").symlink_to(victim)
    (work / f"{stem}-1.json.stderr").symlink_to(tmp_path / "planted-stderr")  # dangling: would be created
    os.mkfifo(work / f"{stem}-2.json.stdout")
    script = "import json, sys; print('trained'); json.dump(dict(accuracy=0.5), open(sys.argv[1], 'w'))"
    ev = CommandEvaluator(Space(), f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {{out}} {{arch}}", work)
    assert ev("fake:a") == 0.5
    assert victim.read_text() == "precious\n" and not (tmp_path / "planted-stderr").exists()
    assert (work / f"{stem}-3.json.stdout").read_text() == "trained\n"
    assert not (work / f"{stem}-1.json.stdout").exists()  # made, then given back when .stderr was taken
    assert stat.S_ISFIFO(os.lstat(work / f"{stem}-2.json.stdout").st_mode)
