"""The pruning rule under violated assumptions: margin, consistency, probes, audit,
sampled spaces. Toy spaces with brute-forced fronts (tests/toyspace.py)."""

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plaid.search import search
from plaid.search.order import OrderIndex
from plaid.search.pruning import Margin, Pruner, wilson
from toyspace import GridSpace, latency, make_accuracy, true_front


def violated(seed: int, fail_share: float = 0.05, sigma: float = 0.05):
    """Accuracy with order violations: Gaussian noise and some nets that 'fail to train'."""
    base = make_accuracy(seed)
    rng = random.Random(seed)
    table: dict = {}

    def acc(a):
        if a not in table:
            r = random.Random(hash((seed, a)))
            v = base(a) + r.gauss(0, sigma)
            if r.random() < fail_share:
                v -= 3.0 + 2 * r.random()
            table[a] = v
        return table[a]

    del rng
    return acc


@pytest.mark.parametrize("margin", [None, 0.0, 0.5])
def test_no_violations_exact_front_with_any_margin(margin):
    space = GridSpace(dims=3, size=5)
    acc = make_accuracy(3)
    res = search(space, latency, acc, budget=10_000, seed=0, margin=margin)
    assert [e.arch for e in res.front] == true_front(space, acc)
    assert res.margin["violations"] == 0
    if margin is None:
        assert res.margin["delta"] == 0.0  # nothing violated: the learnt margin is the exact rule's


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.integers(20, 120))
def test_audit_sampled_nets_never_stay_pruned(seed, budget):
    space = GridSpace(dims=3, size=5)
    acc = violated(seed)
    res = search(space, latency, acc, budget=budget, seed=seed, audit=0.2)
    pruned = set(res.pruned_keys)
    audited = {e.key for e in res.evaluated if e.role == "audit"}
    assert not pruned & audited
    front = {space.key(a) for a in true_front(space, acc)}
    assert not (pruned & front & audited)
    assert res.audit["audited"] == len(audited)
    assert res.trained <= budget


def test_a_failed_big_net_does_not_prune_the_front():
    """The catastrophic case: the largest net fails to train and is dominated by every
    trained net; the robust rule must not let it prune the true front."""
    space = GridSpace(dims=3, size=6)
    base = make_accuracy(5)
    top = (5, 5, 5)
    acc = lambda a: -10.0 if a == top else base(a)  # noqa: E731
    for seed in range(3):
        robust = search(space, latency, acc, budget=10_000, seed=seed)
        assert [e.arch for e in robust.front] == true_front(space, acc)


def test_probe_vouches_or_contradicts_a_large_generator():
    space = GridSpace(dims=2, size=6)
    archs = list(space.enumerate())
    order = OrderIndex(space, archs)
    pr = Pruner(order, Margin(fixed=0.0), probe_min=3)
    pr.extend(np.array([latency(a) for a in archs]))
    fast, big = archs.index((0, 3)), archs.index((5, 2))  # fast is faster and not below big
    pr.record(fast, 0.9)
    pr.record(big, 0.1)  # slower and worse: dominated, and no trained sub-net vouches for it
    front_lat = np.array([latency(archs[fast])])
    front_acc = np.array([0.9])
    assert pr.update(front_lat, front_acc) == 0  # large prune held for a probe
    probe = pr.probe()
    assert probe is not None and order.down(big)[probe] and not pr.trained[probe]
    pr.record(probe, 0.5)  # beats the big net by 0.4 > δ: the big net is contradicted
    pr.update(front_lat, front_acc)
    assert not pr.pruned_mask[order.down(big)].any() or pr.pruned_by[order.down(big)].max() != big


def test_audit_contradiction_restores_and_widens():
    space = GridSpace(dims=2, size=5)
    archs = list(space.enumerate())
    order = OrderIndex(space, archs)
    m = Margin()
    pr = Pruner(order, m, probe_min=10**9)
    pr.extend(np.array([latency(a) for a in archs]))
    b, g = archs.index((2, 0)), archs.index((1, 4))  # b is faster and not below g
    pr.record(b, 0.95)
    pr.record(g, 0.2)
    pr.update(np.array([latency(archs[b])]), np.array([0.95]))
    victims = np.flatnonzero(pr.pruned_by == g)
    assert len(victims) > 3
    alpha = m.alpha
    v = int(victims[0])
    pr.audited(v, g, 0.97, lifted=True)
    pr.record(v, 0.97)
    assert pr.audit.contradictions == 1 and pr.audit.restored >= len(victims) - 1
    assert not (pr.pruned_by == g).any() and m.alpha < alpha
    pr.update(np.array([latency(archs[b])]), np.array([0.95]))
    assert not (pr.pruned_by == g).any()  # a disabled generator stays disabled


def test_margin_is_robust_to_failed_trainings():
    rng = np.random.default_rng(0)
    bulk = rng.normal(-0.02, 0.01, 2000)
    tail = np.abs(rng.normal(0.3, 0.1, 120))  # 6% failed trainings: huge excesses
    m = Margin(alpha=0.02)
    m.add(np.concatenate([bulk, tail]), np.ones(2120))
    want = -0.02 + 2.054 * 0.01
    assert abs(m.value - want) < 0.006  # the bulk's 98th percentile, not the tail's
    q = Margin(alpha=0.02, robust=False)
    q.add(np.concatenate([bulk, tail]), np.ones(2120))
    assert q.value > 0.1  # a plain quantile lands in the failure tail


def test_margin_learns_from_near_pairs_and_can_be_fixed():
    m = Margin(alpha=0.1, min_near=5, robust=False)
    m.add(np.array([-0.3] * 50), np.array([0.2] * 50))  # far pairs: say little
    assert m.value == 0.0
    m.add(np.array([0.05] * 3 + [-0.01] * 17), np.array([0.9] * 20))  # near pairs decide
    assert m.value == pytest.approx(0.05)
    assert m.pairs == 70 and m.violations == 3
    f = Margin(fixed=0.02)
    f.add(np.array([0.5]), np.array([1.0]))
    assert f.value == 0.02


def test_wilson_interval():
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and hi - lo < 0.7
    assert wilson(0, 0) == (0.0, 1.0)


def test_sampled_space_is_topped_up_and_estimates_pruned_share():
    space = GridSpace(dims=6, size=6)
    space.enumerate = None  # too large to enumerate
    res = search(space, latency, make_accuracy(2), budget=150, pool=100, seed=1)
    assert not res.exact and res.candidates >= 100
    lo, hi = res.pruned_fraction_ci95
    assert 0.0 <= lo <= res.pruned_fraction <= hi <= 1.0


def test_finite_space_is_searched_whole_by_default():
    space = GridSpace(dims=4, size=9)  # 6,561 > the old default pool of 2,000
    res = search(space, latency, make_accuracy(4), budget=5, seed=0)
    assert res.exact and res.candidates == 9 ** 4


def test_noisy_space_keeps_most_of_the_front():
    """With noise the learnt margin keeps the hypervolume close to the truth."""
    from plaid.search.front import hypervolume

    space = GridSpace(dims=3, size=6)
    acc = violated(11, fail_share=0.03, sigma=0.1)
    pts = [(latency(a), acc(a)) for a in space.enumerate()]
    ref = (max(p[0] for p in pts), min(p[1] for p in pts))
    hv = hypervolume(pts, *ref)
    res = search(space, latency, acc, budget=10_000, seed=0)
    got = hypervolume([(e.latency, e.accuracy) for e in res.evaluated], *ref)
    assert got >= 0.99 * hv
    assert res.trained < res.candidates
    assert math.isfinite(res.margin["delta"])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_packed_order_queries_match_le_on_real_spaces(seed):
    """The packed-word down-set test (many genes, several words for DF) equals space.le."""
    from plaid.spaces import get_space

    rng = random.Random(seed)
    for name in ("df", "pl1a"):
        space = get_space(name)
        archs = [space.sample(rng) for _ in range(12)]
        archs += [space.shrink(a, rng) for a in archs]
        order = OrderIndex(space, archs)
        got = order.down_many(np.arange(len(archs)))
        want = np.array([[space.le(b, a) for b in archs] for a in archs])
        assert (got == want).all()
        ups = np.array([order.up(i) for i in range(len(archs))])
        assert (ups == want.T).all()


def _depth_hurts(seed: int):
    """One gene helps, the other two hurt: the order is violated on most comparable pairs
    (a proxy that under-trains deep nets)."""
    def acc(a):
        r = random.Random(hash((seed, a)))
        return 1.0 * a[0] - 1.0 * a[1] - 0.8 * a[2] + r.gauss(0, 0.05)
    return acc


def test_pop_explores_when_the_order_does_not_hold():
    from plaid.search.strategies import PopStrategy

    space = GridSpace(dims=3, size=6)
    found = {"adaptive": [], "greedy": []}
    for seed in range(6):
        acc = _depth_hurts(seed)
        front = {space.key(a) for a in true_front(space, acc)}
        adaptive = PopStrategy(explore_from=0.3, explore_full=0.6, explore_min_pairs=200)
        for name, strat in (("adaptive", adaptive), ("greedy", PopStrategy())):  # greedy: the default
            res = search(space, latency, acc, budget=60, seed=seed, strategy=strat)
            found[name].append(len(front & {e.key for e in res.evaluated}))
            if name == "adaptive":  # the run saw the order fail: its picks were uniform
                assert res.margin["violations"] > 0.5 * res.margin["comparable_pairs"] >= 5, res.margin
    # greedy picks chase the largest down-sets, the worst nets here; uniform picks find more of the front
    assert sum(found["adaptive"]) > sum(found["greedy"]), found


def test_pop_does_not_explore_while_the_order_holds():
    from plaid.search.strategies import PopStrategy

    class M:
        pairs, violations = 1000, 250  # real data: ~9% of all pairs, 13-22% of those a pop run trains
    state = type("S", (), {"pruner": type("P", (), {"margin": M})()})()
    strat = PopStrategy(explore_from=0.3, explore_full=0.6, explore_min_pairs=200)
    assert strat.explore(state) == 0.0
    M.violations = 650
    assert strat.explore(state) == 1.0
    M.violations, M.pairs = 150, 150  # too few pairs to judge
    assert strat.explore(state) == 0.0


def test_pop_does_not_explore_by_default():
    from plaid.search.strategies import PopStrategy

    class M:
        pairs, violations = 1000, 990
    state = type("S", (), {"pruner": type("P", (), {"margin": M})()})()
    assert PopStrategy().explore(state) == 0.0  # off: on the calibrated model it cost trainings
