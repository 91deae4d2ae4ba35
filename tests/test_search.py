"""The POP engine on finite toy spaces with a brute-forced true front."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plaid.errors import PlaidError, UsageError
from plaid.search import search
from plaid.search.front import hypervolume, pareto_front
from plaid.search.journal import Journal
from plaid.search.strategies import STRATEGIES
from toyspace import GridSpace, latency, make_accuracy, true_front

PRUNING = [name for name, strategy in STRATEGIES.items() if strategy.prunes]  # POP's rule applies


def test_builtin_strategies_registered():
    assert {"pop", "random-pruned", "random", "evolution"} <= set(STRATEGIES)  # others may join
    assert {"pop", "random-pruned"} <= set(PRUNING)
    from plaid.search.strategies import Strategy

    assert all(not getattr(cls, "__abstractmethods__", None) for _, cls in STRATEGIES.items())
    with pytest.raises(TypeError):  # the base is abstract: a strategy without select() is refused at once
        type("NoSelect", (Strategy,), {})()


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_finds_the_exact_front_and_keeps_its_budget(strategy):
    space = GridSpace(dims=3, size=4)
    acc = make_accuracy(3)
    res = search(space, latency, acc, budget=10_000, strategy=strategy, seed=0)
    assert res.exact and res.candidates == 64
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert res.trained + res.pruned == 64
    if not STRATEGIES.get(strategy).prunes:
        assert res.pruned == 0
    part = search(space, latency, acc, budget=9, strategy=strategy, seed=1)
    assert part.trained == 9 and len({e.key for e in part.evaluated}) == 9  # none trained twice
    again = search(space, latency, acc, budget=9, strategy=strategy, seed=1)
    assert [e.key for e in again.evaluated] == [e.key for e in part.evaluated]  # seeded


@pytest.mark.parametrize("strategy", PRUNING)
@pytest.mark.parametrize("embed", [True, False])
def test_finds_the_exact_front_and_prunes(strategy, embed):
    space = GridSpace(dims=3, size=5, embed=embed)
    acc = make_accuracy(1)
    res = search(space, latency, acc, budget=10_000, strategy=strategy, seed=0)
    assert res.exact and res.candidates == 125
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert res.stop_reason == "every candidate trained or pruned"
    assert res.trained + res.pruned == 125
    assert res.pruned > 0  # pruning saved trainings


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), strategy=st.sampled_from(PRUNING), budget=st.integers(1, 60))
def test_no_pruned_candidate_is_on_the_true_front(seed, strategy, budget):
    space = GridSpace(dims=3, size=4)
    acc = make_accuracy(seed)
    res = search(space, latency, acc, budget=budget, strategy=strategy, seed=seed)
    front = {space.key(a) for a in true_front(space, acc)}
    assert not front & set(res.pruned_keys)
    assert res.trained <= budget


def test_pop_needs_fewer_trainings_than_the_space_has():
    space = GridSpace(dims=4, size=4)
    acc = make_accuracy(7)
    res = search(space, latency, acc, budget=10_000, strategy="pop", seed=0)
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert res.trained < 0.8 * res.candidates


def test_window_restricts_candidates_and_empty_window_is_refused():
    space = GridSpace(dims=2, size=5)
    acc = make_accuracy(3)
    res = search(space, latency, acc, budget=100, window=(3.0, 6.0))
    assert all(3.0 <= e.latency <= 6.0 for e in res.evaluated)
    with pytest.raises(UsageError, match="no architecture"):
        search(space, latency, acc, budget=5, window=(100.0, 200.0))
    with pytest.raises(UsageError, match="empty"):
        search(space, latency, acc, budget=5, window=(5.0, 1.0))
    with pytest.raises(UsageError, match="budget"):
        search(space, latency, acc, budget=0)


def test_sampled_pool_for_spaces_without_enumerate():
    space = GridSpace(dims=6, size=6)
    space.enumerate = None  # behave like a space too large to enumerate
    res = search(space, latency, make_accuracy(2), budget=30, pool=300, seed=1)
    assert not res.exact and res.candidates == 300 and res.trained == 30
    assert 0.0 <= res.pruned_fraction <= 1.0


def test_same_seed_same_run():
    space = GridSpace(dims=3, size=5)
    acc = make_accuracy(4)
    a = search(space, latency, acc, budget=20, seed=5)
    b = search(space, latency, acc, budget=20, seed=5)
    assert [e.key for e in a.evaluated] == [e.key for e in b.evaluated]


def test_front_and_hypervolume():
    pts = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.9), (4.0, 0.8)]
    assert pareto_front(pts, lat=lambda p: p[0], acc=lambda p: p[1]) == [(1.0, 0.5), (2.0, 0.7), (3.0, 0.9)]
    # area: [1,2)x0.5 + [2,3)x0.7 + [3,5)x0.9 above acc 0, up to latency 5
    assert hypervolume(pts, ref_lat=5.0, ref_acc=0.0) == pytest.approx(0.5 + 0.7 + 1.8)


def test_journal_resume_replays_without_retraining(tmp_path):
    space = GridSpace(dims=3, size=4)
    acc = make_accuracy(9)
    cfg = {"space": "grid", "seed": 0, "strategy": "pop"}
    calls = []

    def counting(a):
        calls.append(a)
        return acc(a)

    with Journal.open(tmp_path / "j.sqlite", cfg) as j:
        first = search(space, latency, counting, budget=8, seed=0, journal=j)
    assert len(calls) == 8
    calls.clear()
    with Journal.open(tmp_path / "j.sqlite", cfg) as j:
        again = search(space, latency, counting, budget=15, seed=0, journal=j)
        assert len(j) == 15
    assert len(calls) == 7  # only the new ones were trained
    assert [e.key for e in again.evaluated[:8]] == [e.key for e in first.evaluated]
    with pytest.raises(UsageError, match="other inputs"):
        Journal.open(tmp_path / "j.sqlite", {**cfg, "seed": 1})


def test_journal_that_diverges_is_refused(tmp_path):
    space = GridSpace(dims=3, size=4)
    with Journal.open(tmp_path / "j.sqlite", {"x": 1}) as j:
        search(space, latency, make_accuracy(1), budget=5, seed=0, journal=j)
    with Journal.open(tmp_path / "j.sqlite", {"x": 1}) as j:
        with pytest.raises(PlaidError, match="inputs changed"):
            search(space, latency, make_accuracy(1), budget=5, seed=99, strategy="random", journal=j)


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from plaid.search import search
from plaid.search.journal import Journal
from toyspace import GridSpace, latency, make_accuracy
acc = make_accuracy(5)
def slow(a):
    time.sleep(0.05)
    print("training", flush=True)
    return acc(a)
with Journal.open({path!r}, {{"seed": 0}}) as j:  # "committed" is printed after the journal has the row
    res = search(GridSpace(3, 4), latency, slow, budget=40, seed=0, journal=j,
                 on_result=lambda ev, state: print("committed", flush=True))
print("done", [e.key for e in res.evaluated], flush=True)
"""


def test_kill_9_loses_no_finished_candidate(tmp_path):
    path = str(tmp_path / "j.sqlite")
    code = KILL_SCRIPT.format(tests=str(Path(__file__).parent), path=path)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:
        if line.startswith("committed"):
            seen += 1
            if seen == 6:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait()
    with Journal.open(path, {"seed": 0}) as j:
        kept = len(j)
    assert kept >= 6  # every acknowledged training is in the journal
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    resumed = eval(out.stdout.strip().splitlines()[-1][len("done "):])
    assert out.stdout.count("training") == len(resumed) - kept  # nothing finished was trained again
    reference = search(GridSpace(3, 4), latency, make_accuracy(5), budget=40, seed=0)
    assert resumed == [e.key for e in reference.evaluated]


def test_evolution_baseline_runs_and_respects_pruning():
    space = GridSpace(dims=3, size=5)
    acc = make_accuracy(11)
    res = search(space, latency, acc, budget=10_000, strategy="evolution", seed=2)
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert res.pruned == 0 and res.trained == res.candidates  # a plain NSGA-II baseline trains everything
    part = search(space, latency, acc, budget=15, strategy="evolution", seed=2)
    assert part.trained == 15 and len({e.key for e in part.evaluated}) == 15


def test_plain_random_search_does_not_prune():
    space = GridSpace(dims=2, size=4)
    res = search(space, latency, make_accuracy(1), budget=10_000, strategy="random", seed=0)
    assert res.pruned == 0 and res.trained == 16


def test_nsga_ranks():
    import numpy as np

    from plaid.search.strategies import nondominated_ranks

    lat = np.array([1.0, 2.0, 2.0, 3.0])
    acc = np.array([0.5, 0.7, 0.4, 0.6])
    assert nondominated_ranks(lat, acc).tolist() == [0, 0, 1, 1]
