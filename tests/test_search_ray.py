"""`plaid search --ray ADDRESS` on a real local Ray cluster: a head node and one extra
worker node on 127.0.0.1 (1 CPU each, so two trainings run at once, one per node), started
by `ray start` in their own sessions with a temp dir of the test's own.

The search runs the cheap training command of test_search_parallel (it reads its accuracy
from the tiny PL1A setup's table, so its front must be the one `--accuracy-table` finds);
one Ray worker process is killed mid-training, a run is stopped with Ctrl-C and resumed.

Teardown kills every process of the two `ray start` sessions (raylets, GCS, agents, Ray
workers and the training commands they run) and checks that none is left. It does not
run `ray stop`, which stops every Ray on the machine, a concurrently running suite's
included."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import run_plaid
from test_search_parallel import alive, journal_keys, plaid_bg, wait_for
from test_search_resume import env, one_line_error  # noqa: F401  (fixture)

ray = pytest.importorskip("ray", reason="Ray is not installed (make setup installs it: pip install 'plaid[ray]')")

TRAIN = """
import json, os, sys, time
arch, out, table, log = sys.argv[1:5]
with open(log, "a") as fh:
    fh.write(f"{os.getppid()} {os.getpid()} {arch}\\n")  # the Ray worker process that runs this training
if arch in sys.argv[5:]:
    sys.exit(f"cannot train {arch} here")
time.sleep(float(os.environ.get("TRAIN_SECONDS", "0.8")))
json.dump({"accuracy": json.load(open(table))[arch]}, open(out, "w"))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sessions(sids: set[int]) -> list[int]:
    """Pids of the live processes in these sessions."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[3]) in sids:  # state, ppid, pgrp, session
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def cluster(env):  # noqa: F811
    """``(address, env)``: a head and a worker node, each in its own session; their
    environment (which the tasks and their training commands get) is the test's."""
    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    node_env = {**os.environ, **env, "RAY_USAGE_STATS_ENABLED": "0", "TRAIN_SECONDS": "0.8"}
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
    sids: set[int] = set()
    try:
        for args in (["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", temp],
                     ["--address", address]):
            agent = ["--dashboard-agent-listen-port", str(_free_port())]  # 52365 by default: 2 nodes, 2 suites
            p = subprocess.Popen([ray_bin, "start", *args, *common, *agent], env=node_env, start_new_session=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            sids.add(p.pid)
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, out
        yield address, {**env, "RAY_ADDRESS": address}
    finally:
        for _ in range(50):
            left = _sessions(sids)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        shutil.rmtree(temp, ignore_errors=True)
        assert not _sessions(sids), "Ray processes outlived the test"


@pytest.fixture
def cmd(env, tmp_path):  # noqa: F811
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    log = tmp_path / "started"
    return f"{sys.executable} {script} {{arch}} {{out}} {env['ACCS']} {log}", log


def started(log):
    """``[(ray worker pid, command pid, arch)]`` in the order the trainings started."""
    return [tuple(ln.split(" ", 2)) for ln in log.read_text().splitlines()] if log.exists() else []


def test_a_ray_worker_killed_mid_training_is_retried_and_the_front_is_the_serial_one(cluster, env, cmd,  # noqa: F811
                                                                                     tmp_path):
    address, ray_env = cluster
    serial = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "8", "--runs-dir",
                       str(tmp_path / "serial"), "--json", env=env)
    assert serial.returncode == 0, serial.stderr
    want = json.loads(serial.stdout)
    template, log = cmd
    proc = plaid_bg("search", "--train-cmd", template, "--budget", "8", "--ray", address, "--workers", "2",
                    "--runs-dir", str(tmp_path / "runs"), "--json", env=ray_env)
    wait_for(lambda: len(started(log)) >= 3)
    victim, _, arch = started(log)[2]
    os.kill(int(victim), signal.SIGKILL)  # the Ray worker process, mid-training
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    s = json.loads(out)  # stdout is the summary alone: no Ray output reaches it
    keys = journal_keys(Path(s["run"]))
    assert len(keys) == len(set(keys)) == s["trained"] == 8  # every candidate trained exactly once
    assert [e["arch"] for e in s["front"]] == [e["arch"] for e in want["front"]]
    assert [e["accuracy"] for e in s["front"]] == [e["accuracy"] for e in want["front"]]
    assert [a for *_, a in started(log)].count(arch) == 2  # its net was sent again
    session = s["workers"]["session"]
    assert session["ray"]["address"] == address and session["ray"]["nodes"] == 2
    (death,) = session["deaths"]
    assert death["arch"] == arch
    nodes = {e["worker"].rsplit(":", 1)[0] for e in s["evaluated"]}  # "<node ip>/<node id>"
    assert len(nodes) == 2 and len({n.split("/")[0] for n in nodes}) == 1  # both nodes (of this machine) trained
    assert sum(v["finished"] for v in session["per_node"].values()) == 8
    assert all(e["seconds"] >= 0.7 for e in s["evaluated"])
    wait_for(lambda: not [c for _, c, _ in started(log) if alive(int(c))], timeout=10)
    from plaid.cli.search import report_lines

    (line,) = [ln for ln in report_lines(s) if ln.startswith("ray")]
    port = address.rsplit(":", 1)[1]
    assert session["ray"]["gcs_address"].endswith(f":{port}")  # the cluster it reached
    assert line.startswith(f"ray       2 in flight on {session['ray']['gcs_address']} (2 nodes; 1 CPU, 0 GPU "
                           "per trial); trainings per node: ")
    assert line.endswith("; 1 lost with a Ray worker or node and trained again")
    assert death["how"].startswith("WorkerCrashedError: ") and death["how"].endswith(".")  # its first sentence


def test_ctrl_c_cancels_the_tasks_in_flight_and_resume_trains_them(cluster, cmd, tmp_path):
    _, ray_env = cluster
    template, log = cmd
    runs = tmp_path / "runs"
    proc = plaid_bg("search", "--train-cmd", template, "--budget", "8", "--ray", "auto", "--workers", "2",
                    "--runs-dir", str(runs), "--json", env=ray_env)

    def mid_training():
        done = journal_keys(next(runs.iterdir())) if runs.exists() and any(runs.iterdir()) else []
        return len(done) >= 2 and len(started(log)) >= len(done) + 2

    wait_for(mid_training)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "plaid: interrupted", err
    run = next(runs.iterdir())
    done = journal_keys(run)
    before = started(log)
    in_flight = [a for *_, a in before if a not in done]
    assert in_flight  # something was cancelled mid-training
    # the cancelled trainings' commands and Ray worker processes are gone
    wait_for(lambda: not [p for w, c, _ in before for p in (w, c) if alive(int(p))], timeout=15)
    again = run_plaid("search", "--resume", str(run), "--json", env=ray_env)  # the run's own --ray auto
    assert again.returncode == 0, again.stderr
    s = json.loads(again.stdout)
    keys = journal_keys(run)
    assert s["trained"] == len(keys) == len(set(keys)) == 8 and s["replayed_from_journal"] == len(done)
    assert keys[:len(done)] == done
    resumed = [a for *_, a in started(log)[len(before):]]
    assert sorted(resumed) == sorted(set(keys) - set(done)) and set(in_flight) <= set(resumed)
    assert json.loads((run / "config.json").read_text())["config"]["ray"] == "auto"


SHIPPED = """
import json, os, sys
from plaid.search.raypool import RayPool

def rebuilt(log, data):
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\\n")  # one line per unpickling, by the process that unpickles
    return Evaluator(log, data)

class Evaluator:  # a stand-in for one that holds a dataset
    def __init__(self, log, data):
        self.log, self.data = log, data
    def __reduce__(self):
        return rebuilt, (self.log, self.data)
    def __call__(self, arch):
        return len(self.data) / 1e8 + arch / 100

address, log = sys.argv[1:3]
with RayPool(Evaluator(log, b"x" * 4_000_000), address, 2) as pool:
    for i in range(8):
        pool.submit(i, i)
    pool.submit("bg", 9, background=True)
    done = [pool.next() for _ in range(8)]
    bg = pool.result("bg")
print(json.dumps({"done": [[d.ticket, d.accuracy, d.worker] for d in done], "bg": bg}))
"""


def test_the_evaluator_travels_once_and_each_ray_worker_unpickles_it_once(cluster, tmp_path):
    address, ray_env = cluster
    script, log = tmp_path / "shipped.py", tmp_path / "unpickled"
    script.write_text(SHIPPED)
    out = subprocess.run([sys.executable, str(script), address, str(log)], capture_output=True, text=True,
                         env={**os.environ, **ray_env}, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert sorted(t for t, _, _ in r["done"]) == list(range(8))
    assert all(acc == pytest.approx(0.04 + t / 100) for t, acc, _ in r["done"]) and r["bg"] == pytest.approx(0.13)
    workers = {w for *_, w in r["done"]}
    unpickled = log.read_text().split()
    assert len(unpickled) == len(set(unpickled)) == len(workers) < 8  # once per Ray worker process, not per task
    assert {w.rsplit(":", 1)[1] for w in workers} == set(unpickled)


def test_a_training_that_fails_on_ray_stops_the_run_in_one_line(cluster, cmd, tmp_path):
    address, ray_env = cluster
    template, log = cmd
    victim = "pl1a:24x2-32x2-48x1"
    out = run_plaid("search", "--train-cmd", f"{template} {victim}", "--budget", "8", "--ray", address, "--workers",
                    "2", "--runs-dir", str(tmp_path / "runs"), "--json", env=ray_env)
    one_line_error(out, f"training command for {victim!r}: exited with code 1; stderr: cannot train {victim} here",
                   code=1)
    assert [a for *_, a in started(log)].count(victim) == 1  # a failed training is not a lost worker: no retry
    (run,) = (tmp_path / "runs").iterdir()
    assert victim not in journal_keys(run)


def test_a_trial_no_node_can_hold_is_a_one_line_error(cluster, env, tmp_path):  # noqa: F811
    address, ray_env = cluster
    runs = tmp_path / "runs"
    one_line_error(run_plaid("search", "--accuracy-table", env["ACCS"], "--ray", address, "--ray-gpus-per-trial",
                             "1", "--runs-dir", str(runs), env=ray_env), "no node of the Ray cluster")
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("args,fragment", [
    (["--ray-gpus-per-trial", "1"], "--ray-gpus-per-trial is for Ray tasks: give --ray"),
    (["--ray", "auto", "--ray-cpus-per-trial", "1.5"], "above 1 must be a whole number"),
    (["--ray", "auto", "--ray-cpus-per-trial", "-1"], "--ray-cpus-per-trial must be in 0..1024"),
    (["--ray", "auto", "--ray-cpus-per-trial", "0"], "both 0"),
    (["--ray", " "], "--ray is empty"),
    (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at "),  # not minutes of ray.init retrying
])
def test_bad_ray_options_are_one_line_usage_errors(env, tmp_path, args, fragment):  # noqa: F811
    runs = tmp_path / "runs"
    one_line_error(run_plaid("search", "--accuracy-table", env["ACCS"], *args, "--runs-dir", str(runs), env=env),
                   fragment)
    assert not runs.exists() or not any(runs.iterdir())


def test_without_ray_installed_ray_says_how_to_install_it(env, tmp_path):  # noqa: F811
    hide = "import sys; sys.modules['ray'] = None; from plaid.cli.main import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", hide, "search", "--accuracy-table", env["ACCS"], "--ray", "auto",
                          "--runs-dir", str(tmp_path)], capture_output=True, text=True, env={**os.environ, **env},
                         timeout=120)
    one_line_error(out, "--ray needs Ray, which is not installed here: pip install 'plaid[ray]' (ray==2.60.0)")
