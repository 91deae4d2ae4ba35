"""Nothing plaid starts outlives a ``kill -9`` of plaid: conversion workers, training
commands and their own children die within seconds, and the temp folders they leave are
swept by the next plaid run (never one of a live process)."""

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import preset_env, run_plaid
from test_bench_e2e import TINY_DF

from plaid import procs

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table in /proc")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> set[int]:
    parent = {pid: st[1] for pid in _all_pids() if (st := _stat(pid))}
    found, grew = set(), True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if pid not in found and (ppid == root or ppid in found):
                found.add(pid)
                grew = True
    return found


def survivors(pids: set[int], sid: int) -> list[int]:
    """Live (not zombie) processes among ``pids`` or in session ``sid``."""
    alive = []
    for pid in set(pids) | set(_all_pids()):
        st = _stat(pid)
        if st and st[0] not in ("Z", "X") and (pid in pids or st[2] == sid) and pid != os.getpid():
            alive.append(pid)
    return sorted(alive)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def start(argv: list[str], env: dict) -> subprocess.Popen:
    # its own session, so that what it leaves behind can be found (and cleaned up) by sid
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for(what: str, cond, proc: subprocess.Popen, limit: float):
    deadline = time.time() + limit
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        assert proc.poll() is None, f"exited with {proc.returncode} before {what}"
        time.sleep(0.1)
    pytest.fail(f"no {what} after {limit:g} s")


def kill9_and_check(proc: subprocess.Popen, known: set[int]) -> None:
    """kill -9 the process only (not its group) and check nothing it started is alive 5 s later."""
    tree = descendants(proc.pid) | known
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline, left = time.time() + 5, tree
        while time.time() < deadline:
            left = survivors(tree, proc.pid)
            if not left:
                return
            time.sleep(0.1)
        pytest.fail(f"alive 5 s after kill -9 of plaid: {[(p, _cmdline(p)) for p in left]}")
    finally:
        for pid in survivors(tree, proc.pid):
            os.kill(pid, signal.SIGKILL)


def fake_dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ---- the mechanism, cheaply -----------------------------------------------------------------

def test_group_members_and_pool_workers_die_with_their_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        from plaid.procs import Group, die_with_parent

        if __name__ == "__main__":  # spawned workers import this file again: they must not rerun it
            group = Group()
            group.popen(["/bin/sh", "-c", "sleep 600 & sleep 600"])
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(2, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),))
            futs = [pool.submit(time.sleep, 600) for _ in range(2)]
            print("ready", flush=True)
            time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_for("two pool workers", lambda: sum("spawn_main" in _cmdline(p) for p in descendants(proc.pid)) == 2,
                 proc, 60)
        kids = descendants(proc.pid)
        assert len([p for p in kids if _cmdline(p).startswith("sleep 600")]) == 2  # the shell's child and its own
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    kill9_and_check(proc, kids)


def test_group_kills_leftovers_on_normal_end_and_everything_on_error():
    with procs.Group() as group:
        sh = group.popen(["/bin/sh", "-c", "sleep 600 & echo $!"], stdout=subprocess.PIPE, text=True)
        left = int(sh.stdout.readline())
        assert sh.wait() == 0 and procs.pid_alive(left)
    deadline = time.time() + 5
    while time.time() < deadline and (st := _stat(left)) and st[0] != "Z":
        time.sleep(0.05)
    st = _stat(left)
    assert st is None or st[0] == "Z", "a leftover of a finished command is still running"

    with pytest.raises(KeyboardInterrupt), procs.Group() as group:
        sleeper = group.popen(["sleep", "600"])
        raise KeyboardInterrupt
    assert sleeper.returncode == -signal.SIGKILL
    assert procs.run([sys.executable, "-c", "print(input())"], input="hi", capture_output=True,
                     text=True).stdout == "hi\n"


def test_stale_scratch_folders_are_swept_and_live_ones_kept(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dead, live = fake_dead_pid(), os.getpid()
    stale = [tmp / f"plaid-onnx2tf-{dead}-abcd1234", tmp / f"plaid-export-{dead}-zz_9yy8x"]
    for d in stale:
        (d / "out").mkdir(parents=True)
        (d / "out" / "model.onnx").write_bytes(b"x" * 1000)
    kept = [tmp / f"plaid-export-{live}-abcd1234",  # a live process's folder
            tmp / f"plaid-onnx2tf-{dead}-abc",  # not a name plaid makes
            tmp / f"other-export-{dead}-abcd1234"]
    for d in kept:
        d.mkdir()
    (tmp / f"plaid-plan-{dead}-abcd1234").write_text("a file, not a folder")
    (tmp / f"plaid-plan-{dead}-linklink").symlink_to(tmp / kept[0].name)
    # the next run of any command sweeps them
    out = run_plaid("arch", "list", env={"TMPDIR": str(tmp)})
    assert out.returncode == 0, out.stderr
    assert not any(d.exists() for d in stale)
    assert all(d.is_dir() for d in kept)
    assert (tmp / f"plaid-plan-{dead}-abcd1234").is_file() and (tmp / f"plaid-plan-{dead}-linklink").is_symlink()
    # and what plaid makes has its pid in the name, so it is swept in its turn
    with procs.scratch_dir("plaid-export-") as made:
        assert Path(made).name.startswith(f"plaid-export-{os.getpid()}-")
        assert Path(made).parent == Path(tempfile.gettempdir())


# ---- the real commands ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.tflite
def test_kill9_of_bench_during_conversion_leaves_no_worker(tmp_path):
    env = preset_env(tmp_path, tmp_path / "cache", "df", TINY_DF, {"df = [224, 224]": "df = [64, 64]"})
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env.update(PLAID_CONVERT_WORKERS="2", TMPDIR=str(tmp))
    proc = start([sys.executable, "-m", "plaid", "bench", "--space", "df", "--json"], env)
    try:
        def converting():
            workers = [p for p in descendants(proc.pid) if "spawn_main" in _cmdline(p)]
            return len(workers) == 2 and list(tmp.glob("plaid-onnx2tf-*"))
        wait_for("onnx2tf conversion in two workers", converting, proc, 300)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    kill9_and_check(proc, set())
    # the folders the killed workers left are removed by the next run
    assert list(tmp.glob("plaid-onnx2tf-*"))
    assert run_plaid("arch", "list", env={"TMPDIR": str(tmp)}).returncode == 0
    assert not list(tmp.glob("plaid-*"))


TRAIN = """
import json, os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pids = sys.argv[sys.argv.index("--pids") + 1]
with open(pids + ".part", "w") as f:
    json.dump({"child": os.getpid(), "grandchild": grandchild.pid}, f)
os.replace(pids + ".part", pids)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.tflite
def test_kill9_of_search_kills_the_train_command_and_its_children(tmp_path, tflite_cache):
    env = preset_env(tmp_path, tflite_cache, "df", TINY_DF,
                     {"df = [224, 224]": "df = [64, 64]", "min_seconds = 0.5": "min_seconds = 0.1"})
    script, pids = tmp_path / "train.py", tmp_path / "pids.json"
    script.write_text(TRAIN)
    cmd = " ".join(shlex.quote(a) for a in (sys.executable, str(script))) + \
        f" --arch {{arch}} --out {{out}} --pids {shlex.quote(str(pids))}"
    proc = start([sys.executable, "-m", "plaid", "search", "--space", "df", "--budget", "1", "--train-cmd", cmd,
                  "--runs-dir", str(tmp_path / "runs"), "--json"], env)
    try:
        wait_for("training command", pids.is_file, proc, 300)
        started = json.loads(pids.read_text())
        assert all(_stat(p) for p in started.values())
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    kill9_and_check(proc, set(started.values()))
