"""Speed/accuracy boundary (Pareto front: lower latency, higher accuracy) and hypervolume."""

from __future__ import annotations

from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")


def pareto_front(points: Iterable[T], lat=lambda p: p.latency, acc=lambda p: p.accuracy) -> list[T]:
    """Non-dominated points sorted by latency. A point is dominated when another is no
    slower and no less accurate and better in one of the two."""
    pts = sorted(points, key=lambda p: (lat(p), -acc(p)))
    front: list[T] = []
    best = float("-inf")
    for p in pts:
        if acc(p) > best:
            front.append(p)
            best = acc(p)
    return front


def dominates(lb: float, ab: float, la: float, aa: float) -> bool:
    """(lb, ab) dominates (la, aa)."""
    return lb <= la and ab >= aa and (lb < la or ab > aa)


def hypervolume(points: Sequence[tuple[float, float]], ref_lat: float, ref_acc: float) -> float:
    """Area dominated by ``points`` (latency, accuracy) and bounded by the reference point
    (worst latency, worst accuracy)."""
    pts = sorted((lat, acc) for lat, acc in points if lat <= ref_lat and acc >= ref_acc)
    area, best = 0.0, ref_acc
    front = []
    for lat, acc in pts:
        if acc > best:
            front.append((lat, acc))
            best = acc
    for i, (lat, acc) in enumerate(front):
        nxt = front[i + 1][0] if i + 1 < len(front) else ref_lat
        area += (nxt - lat) * (acc - ref_acc)
    return area
