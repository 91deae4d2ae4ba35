"""End-to-end measurement of whole architectures, calibration and validation of the
predictor against them (`plaid bench --validate N`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from plaid.fsio import atomic_open
from plaid.lut.bench import measure_models, model_files
from plaid.lut.latency import Latency
from plaid.lut.predictor import Predictor, calibration_name, fidelity
from plaid.lut.units import arch_units
from plaid.progress import Progress, no_progress


def e2e_key(label: str, resolution: tuple[int, int]) -> str:
    return f"{label}@{resolution[0]}x{resolution[1]}"


def measure_whole(target, items: list[tuple[str, Any]], resolution: tuple[int, int], table,
                  progress: Progress = no_progress) -> dict[str, Latency]:
    """items: [(label, build callable)] -> measured whole-network latency per label (cached
    in the table's e2e part; only missing ones are converted and timed)."""
    out: dict[str, Latency] = {}
    todo = []
    for label, build in items:
        lat = table.get_e2e(e2e_key(label, resolution))
        if lat is not None:
            out[label] = lat
        else:
            todo.append((label, build))
    if not todo:
        return out
    import torch

    def seeded(build):
        def make():
            torch.manual_seed(0)
            return build().eval()
        return make

    files = model_files([(label, seeded(build), (1, 3, *resolution)) for label, build in todo], target.runtime,
                        progress)
    paths = [(e2e_key(label, resolution), f) for (label, _), f in zip(todo, files)]
    if paths:
        infos: dict[str, dict] = {}

        def commit(key: str, lat: Latency | None, error: str) -> None:
            if lat is not None:  # with what the runtime said of it (TensorRT: where it fused the units)
                table.put_e2e(key, lat, infos.pop(key, None) or None)
                out[key.rsplit("@", 1)[0]] = lat

        measure_models(target, paths, commit, progress, on_info=infos.__setitem__)
    return out


def sample_distinct(space, n: int, rng: random.Random, exclude: set) -> list:
    archs, seen = [], set(exclude)
    for _ in range(n * 200):  # bounded: small spaces may not have n new members
        a = space.sample(rng)
        if a not in seen:
            seen.add(a)
            archs.append(a)
            if len(archs) == n:
                break
    return archs


def sampled_nets(space, n_calib: int, n_valid: int, seed: int) -> tuple[list, list]:
    """The calibration and validation nets that ``calibrate_and_validate`` draws."""
    rng = random.Random(seed)
    calib = sample_distinct(space, n_calib, rng, set())
    return calib, sample_distinct(space, n_valid, rng, set(calib))


def calibrate_and_validate(target, space, resolution, table, n_calib: int, n_valid: int, seed: int,
                           progress: Progress = no_progress) -> dict[str, Any]:
    calib, valid = sampled_nets(space, n_calib, n_valid, seed)
    if len(calib) < n_calib:
        from plaid.errors import UsageError

        raise UsageError(f"space {space.name!r} has only {len(calib)} distinct nets, fewer than the {n_calib} that "
                         "calibration asks for (--calibrate)")
    items = [(space.encode(a), (lambda a=a: space.build(a))) for a in calib + valid]
    measured = measure_whole(target, items, resolution, table, progress)
    pred = Predictor(table, space, resolution, stored=not calib)
    for a in valid:
        pred.features(a)  # a unit the table lacks: one line naming it, before any arithmetic
    plain = [sum(pred.unit_ms[u.key] for u in arch_units(space, a, resolution)) for a in valid]  # units alone
    cal_ms = [measured[space.encode(a)].median_ms for a in calib]
    params = pred.fit(calib, cal_ms) if calib else pred.params
    if calib:
        table.set_calibration(calibration_name(space.name, resolution), params)
    macs = {space.encode(a): macs_of(space, a, resolution) for a in calib + valid}
    rows = [{"arch": space.encode(a), "measured_ms": measured[space.encode(a)].median_ms,
             "predicted_ms": pred(a), "plain_sum_ms": p0, "macs": macs[space.encode(a)]}
            for a, p0 in zip(valid, plain)]
    report: dict[str, Any] = {"space": space.name, "resolution": list(resolution), "calibration": params,
                              "calibration_archs": [space.encode(a) for a in calib], "validation": rows}
    if rows:
        report["fidelity"] = fidelity([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])
        report["fidelity_plain_sum"] = fidelity([r["plain_sum_ms"] for r in rows], [r["measured_ms"] for r in rows])
        if pred.pairs is not None:  # what the timed pairs buy: the same calibration without them
            alone = Predictor(table, space, resolution, pairs=False, stored=False)
            if calib:
                report["calibration_without_pairs"] = alone.fit(calib, cal_ms)
            for r, a in zip(rows, valid):
                r["predicted_without_pairs_ms"] = alone(a)
            report["pairs"] = pred.pairs.summary()
            report["fidelity_without_pairs"] = fidelity([r["predicted_without_pairs_ms"] for r in rows],
                                                        [r["measured_ms"] for r in rows])
        fit = fit_macs([macs[space.encode(a)] for a in calib], [measured[space.encode(a)].median_ms for a in calib])
        if fit is not None:
            for r in rows:
                r["macs_ms"] = fit(r["macs"])
            report["macs_baseline"] = {**fit.describe(), "fit_on": "the calibration nets"}
            report["fidelity_macs"] = fidelity([r["macs_ms"] for r in rows], [r["measured_ms"] for r in rows])
    return report


def macs_of(space, arch, resolution: tuple[int, int]) -> int:
    """Multiply-accumulates of ``arch`` at ``resolution`` (a shape-only pass, no weights)."""
    from plaid.complexity import build_on_meta, profile

    return int(profile(build_on_meta(space.build, arch), resolution).macs)


class MacsLine:
    """The baseline a latency table has to beat: latency = ``ms_per_gmac`` x GMACs +
    ``intercept_ms``, least squares on measured nets."""

    def __init__(self, ms_per_gmac: float, intercept_ms: float, n: int) -> None:
        self.ms_per_gmac, self.intercept_ms, self.n = ms_per_gmac, intercept_ms, n

    def __call__(self, macs: float) -> float:
        return self.ms_per_gmac * macs / 1e9 + self.intercept_ms

    def describe(self) -> dict[str, Any]:
        return {"model": "latency = a x GMACs + b", "ms_per_gmac": self.ms_per_gmac,
                "intercept_ms": self.intercept_ms, "n": self.n}


def fit_macs(macs: list[float], ms: list[float]) -> MacsLine | None:
    """Least-squares line through (GMACs, ms); through the origin from one net or nets of
    equal MACs; None without nets."""
    import numpy as np

    if not macs:
        return None
    x = np.asarray(macs, dtype=np.float64) / 1e9
    y = np.asarray(ms, dtype=np.float64)
    if len(x) >= 2 and np.ptp(x) > 0:
        a, b = np.polyfit(x, y, 1)
    else:
        a, b = float(np.dot(x, y) / max(np.dot(x, x), 1e-30)), 0.0
    return MacsLine(float(a), float(b), len(x))


def scatter_png(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    m = [r["measured_ms"] for r in rows]
    p = [r["predicted_ms"] for r in rows]
    lo, hi = min(m + p), max(m + p)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15, label="±10%",
                    zorder=0)
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, zorder=1)
    if rows and "plain_sum_ms" in rows[0]:
        ax.scatter(m, [r["plain_sum_ms"] for r in rows], s=16, marker="x", color="tab:orange",
                   label="plain sum of units", zorder=2)
    if rows and "macs_ms" in rows[0]:
        ax.scatter(m, [r["macs_ms"] for r in rows], s=12, marker="^", facecolors="none", color="tab:green",
                   label="MACs line (baseline)", zorder=2)
    ax.scatter(m, p, s=14, color="tab:blue", label="predicted (calibrated)", zorder=3)
    ax.set_xlabel("measured end to end (ms)")
    ax.set_ylabel("predicted (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".") or None)
    finally:
        plt.close(fig)
    return path
