"""k trainings in flight at once: the engine with results coming back in any order (in
process, on toy spaces with a known front), the journal's replay of such a run, and
`plaid search --workers N` with real worker processes running a cheap real training
command: a worker killed mid-training, Ctrl-C, a worker that keeps dying, bad values.

The CLI part reuses test_search_resume's tiny PL1A setup (8 candidates, hand-filled latency
table, accuracy table); the command reads its accuracy from that table, so a run with it
must find the front that `--accuracy-table` finds."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_plaid
from plaid.search import search
from plaid.search.journal import Journal
from plaid.search.strategies import PopStrategy
from plaid.search.workers import Done
from test_search_resume import env, one_line_error  # noqa: F401  (fixture)
from toyspace import GridSpace, latency, make_accuracy, true_front


class Shuffled:
    """A trainer whose results come back in a seeded random order; counts what it trains
    and can stop the run (KeyboardInterrupt) after ``stop_after`` results."""

    def __init__(self, accuracy, seed=0, stop_after=None):
        self.accuracy, self.rng, self.stop_after = accuracy, random.Random(seed), stop_after
        self.queue, self.trained, self.submitted = [], [], []

    def submit(self, ticket, arch, seed=0, key=""):
        self.queue.append((ticket, arch, seed))
        self.submitted.append((arch, seed))

    def next(self):
        if self.stop_after is not None and len(self.trained) >= self.stop_after:
            raise KeyboardInterrupt
        ticket, arch, seed = self.queue.pop(self.rng.randrange(len(self.queue)))
        self.trained.append((arch, seed))
        return Done(ticket, self.accuracy(arch, seed=seed) if seed else self.accuracy(arch), "sim", 0.0)


def noisy(seed, sigma=0.02):
    base = make_accuracy(seed)
    return lambda a, seed=0: base(a) + random.Random(hash((a, seed))).gauss(0, sigma)


# ---- the engine ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 4, 16])
@pytest.mark.parametrize("strategy", ["pop", "random-pruned", "evolution"])
def test_k_in_flight_finds_the_exact_front_and_trains_each_net_once(k, strategy):
    space, acc = GridSpace(3, 5), make_accuracy(1)
    trainer = Shuffled(acc, seed=k)
    res = search(space, latency, acc, budget=10_000, strategy=strategy, batch=k, trainer=trainer)
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert len({e.key for e in res.evaluated}) == res.trained == len(trainer.trained)
    assert res.trained + res.pruned == res.candidates
    part = search(space, latency, acc, budget=9, strategy=strategy, batch=k, trainer=Shuffled(acc, seed=1))
    assert part.trained == 9 and len({e.key for e in part.evaluated}) == 9


def test_the_dominated_rule_keeps_picks_out_of_what_pending_nets_would_prune():
    space, acc = GridSpace(3, 5), make_accuracy(2)
    seen = []

    class Watching(PopStrategy):
        def select(self, state, k, rng):
            picks = super().select(state, k, rng)
            if state.pending and picks:
                cover = state.pending_cover()
                seen.append((bool(cover[picks[0]]), bool((state.open_mask & ~cover).any()), int(cover.sum())))
            return picks

    search(space, latency, acc, budget=60, strategy=Watching(pending="dominated"), batch=4, trainer=Shuffled(acc, seed=3))
    assert seen and any(n for *_, n in seen)  # pending nets did cover candidates
    assert not [s for s in seen if s[0] and s[1]]  # never picked inside a cover while anything else was open


def test_pending_cover_is_the_down_set_above_the_boundary_point():
    from plaid.search.order import OrderIndex
    from plaid.search.pruning import Margin, Pruner
    from plaid.search.state import SearchState

    space = GridSpace(2, 4)
    archs = list(space.enumerate())
    pruner = Pruner(OrderIndex(space, archs), Margin(fixed=0.0))
    pruner.extend(np.array([latency(a) for a in archs]))
    state = SearchState(space, pruner)
    idx = {a: i for i, a in enumerate(archs)}
    pruner.record(idx[(1, 0)], 0.9)  # the boundary: one trained net
    p = idx[(3, 2)]
    state.add_pending(p)
    t = latency((1, 0))
    want = {a for a in archs if space.le(a, (3, 2)) and latency(a) >= t and a not in ((1, 0), (3, 2))}
    assert {archs[i] for i in np.flatnonzero(state.pending_cover())} == want
    assert not state.open_mask[p] and state.pending == [p]
    from plaid.search.strategies import _with_pending

    fast = idx[(0, 0)]
    state.add_pending(fast)  # faster than the boundary: on it at any accuracy
    assert _with_pending(state, None).tolist() == sorted([latency((0, 0)), t, latency((3, 2))])
    state.drop_pending(fast)
    state.drop_pending(p)
    assert not state.pending_cover().any() and state.open_mask[p]


def test_probes_audits_and_repeats_still_work_with_k_in_flight():
    acc = noisy(5, sigma=0.05)
    trainer = Shuffled(acc, seed=5)
    res = search(GridSpace(3, 6), latency, acc, budget=120, seed=1, batch=4, audit=0.1, repeats=3, probe_min=4,
                 trainer=trainer)
    roles = [e.role for e in res.evaluated]
    assert res.trained == 120 and {"search", "audit", "repeat"} <= set(roles)
    reps = [e for e in res.evaluated if e.role == "repeat"]
    assert sorted(e.seed for e in reps) == [1, 2, 3] and len({e.key for e in reps}) == 3
    first = [e.key for e in res.evaluated if e.role != "repeat"]
    assert len(first) == len(set(first))  # nothing trained twice but the repeats
    assert res.audit["audited"] == roles.count("audit") and 8 <= roles.count("audit") <= 14


def test_an_out_of_order_run_resumes_from_its_journal_and_trains_what_was_in_flight(tmp_path):
    space, acc = GridSpace(3, 5), noisy(7)
    ident = {"test": "parallel"}
    with Journal.open(tmp_path / "j.sqlite", ident) as j:
        stopped = Shuffled(acc, seed=11, stop_after=13)
        with pytest.raises(KeyboardInterrupt):
            search(space, latency, acc, budget=40, batch=4, repeats=2, journal=j, trainer=stopped)
        assert len(j) == 13
        rows = [j.row(i) for i in range(13)]
    assert [r.sub for r in rows] != sorted(r.sub for r in rows)  # they did finish out of order
    in_flight = [a for a in stopped.submitted if a not in stopped.trained]
    assert len(in_flight) == 4
    with Journal.open(tmp_path / "j.sqlite", ident, create=False) as j:
        again = Shuffled(acc, seed=12)
        res = search(space, latency, acc, budget=40, batch=4, repeats=2, journal=j, trainer=again)
        assert len(j) == 40
    assert set(in_flight) <= set(again.trained)  # what was in flight is trained again
    assert not set(again.trained) & set(stopped.trained)  # nothing that finished is
    assert len(again.trained) == 40 - 13
    assert [e.key for e in res.evaluated[:13]] == [r.key for r in rows]
    assert len({(e.key, e.seed) for e in res.evaluated}) == 40
    with Journal.open(tmp_path / "j.sqlite", ident, create=False) as j:  # replays whole, trains nothing
        none = Shuffled(acc)
        same = search(space, latency, acc, budget=40, batch=4, repeats=2, journal=j, trainer=none)
    assert none.trained == [] and same.to_json() == res.to_json()
    with Journal.open(tmp_path / "j.sqlite", ident, create=False) as j:
        with pytest.raises(Exception, match="inputs changed"):  # another k picks otherwise
            search(space, latency, acc, budget=40, batch=1, repeats=2, journal=j, trainer=Shuffled(acc))


def test_a_journal_from_before_the_worker_columns_still_resumes(tmp_path):
    space, acc = GridSpace(3, 4), make_accuracy(4)
    path = tmp_path / "j.sqlite"
    first = search(space, latency, acc, budget=6, seed=0)
    with Journal.open(path, {"x": 1}):
        pass
    with sqlite3.connect(path) as conn:  # the first schema: no sub/role/seed/worker/seconds
        conn.execute("DROP TABLE trained")
        conn.execute("CREATE TABLE trained (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, arch TEXT, "
                     "latency REAL NOT NULL, accuracy REAL NOT NULL, at TEXT NOT NULL)")
        for e in first.evaluated:
            conn.execute("INSERT INTO trained VALUES (?, ?, ?, ?, ?, 'then')", (e.index, e.key, e.key, e.latency,
                                                                               e.accuracy))
    with Journal.open(path, {"x": 1}, create=False) as j:
        calls = []
        res = search(space, latency, lambda a: calls.append(a) or acc(a), budget=10, seed=0, journal=j)
    assert len(calls) == 4 and [e.key for e in res.evaluated[:6]] == [e.key for e in first.evaluated]
    assert "worker" not in res.evaluated[0].to_json() and res.evaluated[7].worker == "main"


# ---- `plaid search --workers N`: real worker processes, a real training command ----------------

TRAIN = """
import json, os, signal, sys, time
arch, out, table, log = sys.argv[1:5]
with open(log, "a") as fh:
    fh.write(f"{os.getppid()} {arch}\\n")  # the worker process that runs this training
if arch == os.environ.get("KILL_MY_WORKER"):
    os.kill(os.getppid(), signal.SIGKILL)
time.sleep(float(os.environ.get("TRAIN_SECONDS", "0.5")))
json.dump({"accuracy": json.load(open(table))[arch]}, open(out, "w"))
"""


@pytest.fixture
def cmd(env, tmp_path):  # noqa: F811
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    log = tmp_path / "started"
    return f"{sys.executable} {script} {{arch}} {{out}} {env['ACCS']} {log}", log


def started(log):
    return [ln.split(" ", 1) for ln in log.read_text().splitlines()] if log.exists() else []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except FileNotFoundError:
        return False


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.02)


def journal_keys(run):
    if not (run / "journal.sqlite").is_file():
        return []
    with sqlite3.connect(run / "journal.sqlite") as conn:
        try:
            return [k for (k,) in conn.execute("SELECT key FROM trained ORDER BY idx")]
        except sqlite3.OperationalError:  # being created
            return []


def plaid_bg(*args, env):
    """The CLI in its own session (as a terminal runs it: Ctrl-C goes to its group), with
    SIGINT's default action: a suite started in the background of a script (``make test &``)
    inherits SIGINT ignored, and a Python started that way keeps ignoring it."""
    return subprocess.Popen([sys.executable, "-m", "plaid", *args], env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_default_sigint)


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_worker_killed_mid_training_is_replaced_and_the_front_is_the_serial_one(env, cmd, tmp_path):  # noqa: F811
    serial = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "8", "--runs-dir",
                       str(tmp_path / "serial"), "--json", env=env)
    assert serial.returncode == 0, serial.stderr
    want = json.loads(serial.stdout)
    template, log = cmd
    proc = plaid_bg("search", "--train-cmd", template, "--budget", "8", "--workers", "2", "--runs-dir",
                    str(tmp_path / "runs"), "--json", env=env)
    wait_for(lambda: len(started(log)) >= 3)
    victim, arch = started(log)[2]
    os.kill(int(victim), signal.SIGKILL)  # the worker process, mid-training
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    s = json.loads(out)
    run = Path(s["run"])
    keys = journal_keys(run)
    assert len(keys) == len(set(keys)) == s["trained"] == 8  # every candidate trained exactly once
    assert [e["arch"] for e in s["front"]] == [e["arch"] for e in want["front"]]
    assert [e["accuracy"] for e in s["front"]] == [e["accuracy"] for e in want["front"]]
    assert [a for _, a in started(log)].count(arch.strip()) == 2  # its net was sent again
    w = s["workers"]
    assert w["processes"] == 2 and len(w["session"]["deaths"]) == 1
    assert w["session"]["deaths"][0]["arch"] == arch.strip() and "signal 9" in w["session"]["deaths"][0]["how"]
    assert {e["worker"] for e in s["evaluated"]} <= {"w1", "w2"} and all(e["seconds"] >= 0.4 for e in s["evaluated"])
    assert sum(v["trainings"] for v in w["trained_by"].values()) == 8
    assert not [p for p, _ in started(log) if alive(int(p))]  # no worker outlives the run
    from plaid.cli.search import report_lines

    (line,) = [ln for ln in report_lines(s) if ln.startswith("workers")]
    assert line.startswith("workers   2 processes x 1 thread; trainings per worker: w1 ")
    assert line.endswith("; 1 lost to a dying worker and trained again")
    again = run_plaid("search", "--resume", str(run), "--json", env=env)  # the journal remembers who trained what
    assert again.returncode == 0 and json.loads(again.stdout)["workers"]["trained_by"] == w["trained_by"]


@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
def test_a_stopped_run_leaves_no_worker_and_resume_trains_what_was_in_flight(env, cmd, tmp_path, how):  # noqa: F811
    """Ctrl-C (SIGINT to the terminal's process group) or kill -9 of plaid alone: the
    workers go too, the journal holds exactly the finished trainings."""
    template, log = cmd
    runs = tmp_path / "runs"
    proc = plaid_bg("search", "--train-cmd", template, "--budget", "8", "--workers", "2", "--runs-dir", str(runs),
                    "--json", env={**env, "TRAIN_SECONDS": "0.8"})

    def mid_training():
        done = journal_keys(next(runs.iterdir())) if runs.exists() and any(runs.iterdir()) else []
        return len(done) >= 2 and len(started(log)) >= len(done) + 2

    wait_for(mid_training)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if how == "ctrl-c":
        assert proc.returncode == 130 and err.strip().splitlines()[-1] == "plaid: interrupted", err
    else:
        assert proc.returncode == -signal.SIGKILL
    run = next(runs.iterdir())
    done = journal_keys(run)
    before = started(log)
    wait_for(lambda: not [p for p, _ in started(log) if alive(int(p))], timeout=10)  # workers are gone
    in_flight = [a for _, a in before if a not in done]
    assert in_flight  # something was killed mid-training
    again = run_plaid("search", "--resume", str(run), "--json", env=env)
    assert again.returncode == 0, again.stderr
    s = json.loads(again.stdout)
    keys = journal_keys(run)
    assert s["trained"] == len(keys) == len(set(keys)) == 8 and s["replayed_from_journal"] == len(done)
    assert keys[:len(done)] == done
    resumed = [a for _, a in started(log)[len(before):]]
    assert sorted(resumed) == sorted(set(keys) - set(done))  # the rest, each once, the in-flight ones among them
    assert set(in_flight) <= set(resumed)


def test_a_net_whose_worker_keeps_dying_stops_the_run_in_one_line(env, cmd, tmp_path):  # noqa: F811
    template, log = cmd
    victim = "pl1a:24x2-32x2-48x1"
    out = run_plaid("search", "--train-cmd", template, "--budget", "8", "--workers", "2", "--runs-dir",
                    str(tmp_path / "runs"), "--json", env={**env, "KILL_MY_WORKER": victim, "TRAIN_SECONDS": "0.05"})
    one_line_error(out, f"{victim}: its worker process died 3 times", code=1)
    assert [a for _, a in started(log)].count(victim) == 3  # tried, then retried twice
    (run,) = (tmp_path / "runs").iterdir()
    assert victim not in journal_keys(run)


@pytest.mark.parametrize("value,fragment", [("0", "--workers must be >= 1, got 0"), ("-2", "--workers must be >= 1"),
                                            ("1000", "--workers must be at most 256"), ("two", "invalid int value")])
def test_bad_worker_counts_are_one_line_usage_errors(env, tmp_path, value, fragment):  # noqa: F811
    runs = tmp_path / "runs"
    one_line_error(run_plaid("search", "--accuracy-table", env["ACCS"], "--workers", value, "--runs-dir", str(runs),
                             env=env), fragment)
    assert not runs.exists() or not any(runs.iterdir())


def test_workers_are_part_of_the_run_and_resume_keeps_them(env, tmp_path):  # noqa: F811
    out = run_plaid("search", "--accuracy-table", env["ACCS"], "--budget", "4", "--workers", "3", "--runs-dir",
                    str(tmp_path / "runs"), "--json", env=env)
    assert out.returncode == 0, out.stderr
    run = Path(json.loads(out.stdout)["run"])
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["workers"] == 3 and cfg["batch"] == 3
    one_line_error(run_plaid("search", "--resume", str(run), "--workers", "2", env=env), "--workers")
    again = run_plaid("search", "--resume", str(run), "--budget", "6", "--json", env=env)
    assert again.returncode == 0, again.stderr
    s = json.loads(again.stdout)
    assert s["trained"] == 6 and s["replayed_from_journal"] == 4 and s["workers"]["processes"] == 3


def test_a_resume_with_a_raised_budget_after_a_journaled_repeat_follows_the_same_draws(tmp_path):
    """Serial: a replayed repeat draws from the random stream as it drew when it was picked,
    so the audits after it pick what they picked (before, the resume diverged here)."""
    acc = noisy(5, sigma=0.05)
    with Journal.open(tmp_path / "j.sqlite", {"x": 1}) as j:
        one = search(GridSpace(3, 6), latency, acc, budget=30, seed=1, audit=0.1, repeats=3, journal=j)
    assert [e.role for e in one.evaluated].count("repeat") == 3
    with Journal.open(tmp_path / "j.sqlite", {"x": 1}, create=False) as j:
        more = search(GridSpace(3, 6), latency, acc, budget=60, seed=1, audit=0.1, repeats=3, journal=j)
    assert more.trained == 60 and [e.to_json() for e in more.evaluated[:30]] == [e.to_json() for e in one.evaluated]
