"""`--repeats`: trained nets trained again with other seeds measure the seed noise σ, which
floors a learnt margin; a repeated net counts at its mean (plaid/search/pruning.py, 5).

The accuracy is a known monotone one (tests/toyspace.py) plus Gaussian noise seeded per
(arch, seed), so σ is known; the CLI part reuses test_search_resume's tiny PL1A setup."""

import json
import math
import random
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from conftest import run_plaid
from plaid.errors import UsageError
from plaid.search import search
from plaid.search.front import pareto_front
from plaid.search.journal import Journal
from plaid.search.order import OrderIndex
from plaid.search.pruning import Margin, Pruner, SeedNoise
from test_search_resume import env, one_line_error  # noqa: F401  (fixture)
from toyspace import GridSpace, latency, make_accuracy

SIGMA = 0.02


def noisy(seed: int = 0, sigma: float = SIGMA):
    """Monotone accuracy + N(0, σ) drawn per (arch, seed offset); records every call."""
    base = make_accuracy(seed)

    def acc(a, seed=0):
        acc.calls.append((a, seed))
        return base(a) + random.Random(hash((a, seed))).gauss(0, sigma)

    acc.calls = []
    return acc


def repeats_of(res):
    return [e for e in res.evaluated if e.role == "repeat"]


# ---- the engine ---------------------------------------------------------------------------------

def test_seed_noise_is_measured_and_floors_the_learnt_margin():
    acc = noisy(3)
    res = search(GridSpace(3, 6), latency, acc, budget=120, seed=3, repeats=40)
    assert len(res.repeats) == 40
    d = [r["accuracies"][0] - r["accuracies"][1] for r in res.repeats]
    assert res.seed_noise == pytest.approx(math.sqrt(np.mean(np.square(d)) / 2))
    assert 0.75 * SIGMA < res.seed_noise < 1.3 * SIGMA  # 40 differences: ~11% standard error
    floor = NormalDist().inv_cdf(1 - res.margin["alpha"]) * math.sqrt(2) * res.seed_noise
    assert res.margin["floor"] == pytest.approx(floor)
    assert res.margin["delta"] >= floor - 1e-12
    unfloored = search(GridSpace(3, 6), latency, lambda a: acc(a), budget=120, seed=3)
    assert unfloored.margin["delta"] < floor  # the floor is what set δ here
    assert unfloored.seed_noise is None and unfloored.margin["floor"] is None


def test_repeats_count_against_the_budget_and_are_spread():
    acc = noisy(1)
    budget, k = 30, 4
    res = search(GridSpace(3, 5), latency, acc, budget=budget, seed=0, repeats=k)
    assert res.trained == budget == len(acc.calls)
    reps = repeats_of(res)
    assert len(reps) == k and [e.seed for e in reps] == [1, 2, 3, 4]
    assert sorted(s for _, s in acc.calls if s) == [1, 2, 3, 4]
    assert len({e.key for e in reps}) == k  # distinct nets
    for j, e in enumerate(reps, start=1):
        assert e.index >= j * budget / (k + 1)  # one after every budget/(K+1) trainings
        first = [f for f in res.evaluated[:e.index] if f.key == e.key]
        assert len(first) == 1 and first[0].role != "repeat"
        assert e.to_json()["seed"] == j and e.to_json()["role"] == "repeat"
    assert all("seed" not in e.to_json() for e in res.evaluated if e.role != "repeat")
    by_key = {r["arch"]: r for r in res.repeats}
    for e in reps:
        first = next(f for f in res.evaluated if f.key == e.key)
        assert by_key[e.key]["seeds"] == [0, e.seed]
        assert by_key[e.key]["accuracies"] == [first.accuracy, e.accuracy]


def test_repeats_go_to_front_members_first():
    acc = noisy(2)
    fronts = []
    res = search(GridSpace(3, 5), latency, acc, budget=40, seed=1, repeats=5,
                 on_result=lambda ev, st: fronts.append({st.key(int(i)) for i in st.front_arrays()[0]}))
    done = set()
    for e in repeats_of(res):
        before = fronts[e.index - 1]
        assert e.key in before or before <= done
        done.add(e.key)


def test_the_front_holds_the_mean_of_a_repeated_net():
    acc = noisy(4, sigma=0.2)  # loud noise: repeats move nets on and off the front
    res = search(GridSpace(3, 5), latency, acc, budget=60, seed=2, repeats=12)
    means = {r["arch"]: float(np.mean(r["accuracies"])) for r in res.repeats}
    on_front = [e for e in res.front if e.key in means]
    assert on_front, "no repeated net on the front: the test checks nothing"
    for e in on_front:
        assert e.accuracy == pytest.approx(means[e.key]) and e.role != "repeat"
    want = pareto_front([(e.latency, means.get(e.key, e.accuracy), e.key) for e in res.evaluated
                         if e.role != "repeat"], lat=lambda p: p[0], acc=lambda p: p[1])
    assert [e.key for e in res.front] == [p[2] for p in want]


def test_a_prune_resting_on_a_lucky_training_is_undone_by_the_mean():
    space = GridSpace(dims=2, size=5)
    archs = list(space.enumerate())
    pr = Pruner(OrderIndex(space, archs), Margin(fixed=0.0), probe_min=10**9)
    pr.extend(np.array([latency(a) for a in archs]))
    b, g = archs.index((2, 0)), archs.index((1, 4))  # b is faster and not below g
    pr.record(b, 0.95)  # a lucky first training
    pr.record(g, 0.5)
    pr.update(np.array([latency(archs[b])]), np.array([0.95]))
    assert (pr.pruned_by == g).sum() > 3
    pr.revise(b, 0.3)  # its mean over seeds: g is not dominated any more
    lat = np.array([latency(archs[b]), latency(archs[g])])
    pr.update(lat, np.array([0.3, 0.5]))
    assert not pr.pruned_mask.any()


def test_revise_rederives_the_consistency_of_super_nets():
    space = GridSpace(dims=2, size=4)
    archs = list(space.enumerate())
    pr = Pruner(OrderIndex(space, archs), Margin(fixed=0.01))
    pr.extend(np.array([latency(a) for a in archs]))
    s, t, u = archs.index((0, 1)), archs.index((1, 0)), archs.index((2, 2))  # s, t ≺ u
    pr.record(s, 0.9)
    pr.record(t, 0.6)
    pr.record(u, 0.5)
    assert pr.sub_best[u] == 0.9
    pr.revise(s, 0.4)
    assert pr.sub_best[u] == 0.6  # t is now u's best sub-net
    pr.revise(t, 0.45)
    assert pr.sub_best[u] == 0.45


def test_margin_floor_and_fixed_margin():
    m = Margin(alpha=0.02)
    assert m.floor is None and m.value == 0.0
    m.set_noise(0.01)
    assert m.value == pytest.approx(2.0537 * math.sqrt(2) * 0.01, rel=1e-3)
    m.add(np.array([0.5] * 40), np.ones(40))  # a learnt δ above the floor stays
    assert m.value == pytest.approx(0.5)
    f = Margin(fixed=0.01)
    f.set_noise(0.05)
    assert f.value == 0.01  # a fixed --margin stays fixed


def test_seed_noise_estimator():
    n = SeedNoise()
    assert n.sigma is None and n.to_json() == []
    n.add("a", 0, 0.5)
    n.add("a", 1, 0.3)
    n.add("b", 0, 0.7)
    n.add("b", 2, 0.8)
    assert n.sigma == pytest.approx(math.sqrt((0.2 ** 2 + 0.1 ** 2) / 2 / 2))
    assert n.mean("a") == pytest.approx(0.4) and n.repeats == 2
    assert n.to_json()[1] == {"arch": "b", "seeds": [0, 2], "accuracies": [0.7, 0.8]}


def test_repeats_when_the_space_runs_out_before_they_are_due():
    acc = noisy(5)
    res = search(GridSpace(2, 3), latency, acc, budget=1000, seed=0, repeats=3)
    assert len(repeats_of(res)) == 3 and res.stop_reason == "every candidate trained or pruned"
    assert res.trained == len(acc.calls) == len({a for a, _ in acc.calls}) + 3


def test_default_is_no_repeats():
    acc = noisy(6)
    res = search(GridSpace(3, 4), latency, acc, budget=20, seed=0)
    assert res.repeats == [] and res.seed_noise is None and not repeats_of(res)
    assert all(s == 0 for _, s in acc.calls)
    d = res.to_json()
    assert d["repeats"] == [] and d["seed_noise"] is None


def test_bad_repeats_are_usage_errors():
    with pytest.raises(UsageError, match="repeats must be >= 0"):
        search(GridSpace(2, 3), latency, noisy(), budget=5, repeats=-1)
    with pytest.raises(UsageError, match="takes no seed"):
        search(GridSpace(2, 3), latency, make_accuracy(0), budget=5, repeats=1)


@pytest.mark.parametrize("first", [4, 10], ids=["interrupted", "finished"])
def test_resume_replays_repeats_and_never_redoes_them(tmp_path, first):
    space = GridSpace(3, 5)
    ident = {"test": "repeats"}
    acc = noisy(7)
    with Journal.open(tmp_path / "j.sqlite", ident) as j:
        one = search(space, latency, acc, budget=first, seed=0, repeats=3, journal=j)
    assert len(acc.calls) == first and repeats_of(one)
    acc.calls.clear()
    with Journal.open(tmp_path / "j.sqlite", ident, create=False) as j:
        same = search(space, latency, acc, budget=first, seed=0, repeats=3, journal=j)
    assert acc.calls == [] and same.to_json() == one.to_json()
    with Journal.open(tmp_path / "j.sqlite", ident, create=False) as j:  # a raised budget moves the schedule
        more = search(space, latency, acc, budget=40, seed=0, repeats=3, journal=j)
    assert len(acc.calls) == 40 - first
    assert [e.to_json() for e in more.evaluated[:first]] == [e.to_json() for e in one.evaluated]
    done = {(e.arch, e.seed) for e in repeats_of(one)}
    assert not done & {c for c in acc.calls if c[1]}
    assert len(repeats_of(more)) == 3 and len({e.key for e in repeats_of(more)}) == 3


# ---- evaluators -------------------------------------------------------------------------------

def test_proxy_evaluator_retrains_with_the_offset_seed(tmp_path):
    from plaid.spaces import parse_arch
    from plaid.train.datasets import load_dataset
    from plaid.train.evaluators import ProxyEvaluator, arch_sha1
    from plaid.train.proxy import ProxyConfig

    space, arch = parse_arch("pl1a:24x1-48x1-96x1")
    digits = load_dataset("digits", 32, limit=256)
    cfg = ProxyConfig(steps=3, resolution=32, seed=5, threads=1)
    ev = ProxyEvaluator(space, digits, cfg, checkpoint_dir=tmp_path)
    first, again = ev(arch), ev(arch, seed=2)
    assert ev.results and ev.repeats[(space.encode(arch), 2)]["top1"] == again
    other = ProxyEvaluator(space, digits, ProxyConfig(steps=3, resolution=32, seed=7, threads=1))
    assert other(arch) == again  # seed offset 2 from 5 is seed 7
    assert ev(arch) == first and ev(arch, seed=2) == again  # both cached
    assert [p.name for p in tmp_path.iterdir()] == [f"{arch_sha1(space.encode(arch))}.pt"]  # seed 0's only


SEEDED = """
import json, os, sys
arch, seed, out, log = sys.argv[1:5]
assert seed == os.environ["PLAID_SEED"], (seed, os.environ.get("PLAID_SEED"))
with open(log, "a") as fh:
    fh.write(f"{arch} {seed}\\n")
acc = 0.5 + 0.3 * (sum(map(ord, arch)) % 97) / 97 + (int(seed) % 5) * 0.01
json.dump({"accuracy": acc}, open(out, "w"))
"""


def test_command_evaluator_gets_the_seed(tmp_path):
    from plaid.spaces import get_space
    from plaid.train.evaluators import CommandEvaluator

    script, log = tmp_path / "t.py", tmp_path / "log"
    script.write_text(SEEDED)
    space = get_space("pl1a")
    ev = CommandEvaluator(space, f"{sys.executable} {script} {{arch}} {{seed}} {{out}} {log}", tmp_path / "w",
                          seed=10)
    key = "pl1a:24x1-48x1-96x1"
    a0, a3 = ev(key), ev(key, seed=3)
    assert a3 - a0 == pytest.approx(0.03)
    assert ev(key, seed=3) == a3
    assert log.read_text().split("\n")[:-1] == [f"{key} 10", f"{key} 13"]


# ---- the CLI ----------------------------------------------------------------------------------

def test_cli_refuses_bad_repeats(env, tmp_path):  # noqa: F811
    runs = tmp_path / "runs"
    for value in ("-1", "1001"):
        out = run_plaid("search", "--train-cmd", "x {arch} {out}", "--repeats", value, "--runs-dir", str(runs),
                        env=env)
        one_line_error(out, "--repeats must be in 0..1000")
    out = run_plaid("search", "--accuracy-table", env["ACCS"], "--repeats", "2", "--runs-dir", str(runs), env=env)
    one_line_error(out, "--repeats retrains nets with other seeds")
    assert not runs.exists() or not any(runs.iterdir())


def test_cli_repeats_with_a_train_cmd_report_and_resume(env, tmp_path):  # noqa: F811
    from plaid.cli.search import report_lines

    script, log = tmp_path / "t.py", tmp_path / "log"
    script.write_text(SEEDED)
    runs = tmp_path / "runs"
    cmd = f"{sys.executable} {script} {{arch}} {{seed}} {{out}} {log}"
    out = run_plaid("search", "--train-cmd", cmd, "--budget", "6", "--repeats", "2", "--seed", "5",
                    "--runs-dir", str(runs), "--json", env=env)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["trained"] == 6 and [r["seeds"] for r in s["repeats"]] == [[0, 1], [0, 2]]
    assert sum(e["role"] == "repeat" for e in s["evaluated"]) == 2
    assert isinstance(s["seed_noise"], float) and s["margin"]["floor"] is not None
    seen = log.read_text().split()
    retrained = {(a, sd) for a, sd in zip(seen[::2], seen[1::2]) if sd != "5"}
    assert {sd for _, sd in retrained} == {"6", "7"}  # the run's seed 5 + offsets 1, 2
    line = [ln for ln in report_lines(s) if ln.startswith("seed noise")]
    floor = s["margin"]["floor"]
    assert line == [f"seed noise ±{s['seed_noise']:.3f} top-1 from 2 repeats (margin floor {floor:.3f})"]
    run = Path(s["run"])
    assert json.loads((run / "config.json").read_text())["config"]["repeats"] == 2
    before = len(seen)
    again = run_plaid("search", "--resume", str(run), "--budget", "8", "--json", env=env)
    assert again.returncode == 0, again.stderr
    s2 = json.loads(again.stdout)
    assert s2["trained"] == 8 and s2["replayed_from_journal"] == 6
    assert s2["evaluated"][:6] == s["evaluated"] and len(s2["repeats"]) == 2
    new = log.read_text().split()[before:]
    assert not {(a, sd) for a, sd in zip(new[::2], new[1::2])} & retrained  # repeats not redone
    one_line_error(run_plaid("search", "--resume", str(run), "--repeats", "3", env=env), "--repeats")


def test_report_line_for_a_fixed_margin_and_for_none():
    from plaid.cli.search import report_lines

    acc = noisy(8)
    res = search(GridSpace(3, 4), latency, acc, budget=20, seed=0, margin=0.02, repeats=3).to_json()
    assert res["margin"]["delta"] == 0.02 and res["margin"]["floor"] is None
    line = [ln for ln in report_lines(res) if ln.startswith("seed noise")]
    assert line == [f"seed noise ±{res['seed_noise']:.3f} top-1 from 3 repeats (margin fixed at 0.0200, not floored)"]
    plain = search(GridSpace(3, 4), latency, acc, budget=20, seed=0).to_json()
    assert not [ln for ln in report_lines(plain) if ln.startswith("seed noise")]
