"""Latency prediction from a table: the sum of the units' medians, corrected by a model of
what the runtime does differently in a whole network (fused boundaries, one invoke
instead of many), fitted on a few end-to-end measurements:

    Lat(arch) = alpha * (Σ unit_ms + Σ pair residuals) + gamma * n_units + beta

The pair residuals are there when the table also timed adjacent pairs of units
(``plaid bench --pairs``, plaid.lut.pairs): what each boundary adds to or saves from the sum.

gamma absorbs the per-invoke overhead each unit measurement pays and the whole network
pays once; alpha the average effect of fusion/caching; beta the constant. Uncalibrated,
alpha=1, gamma=beta=0 (the plain sum); calibration picks the simplest form that
generalises (leave-one-out, one-standard-error rule), see ``Predictor.fit``."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from plaid.errors import PlaidError
from plaid.lut.units import arch_units

PLAIN = {"alpha": 1.0, "gamma": 0.0, "beta": 0.0}
# the corrections calibration chooses from, by number of parameters: a constant (time every
# whole net pays once) and a scale (an effect proportional to the work, e.g. caches that a
# unit alone keeps warm) are equally simple
CANDIDATES = ((), ("beta",), ("alpha",), ("alpha", "beta"), ("alpha", "gamma", "beta"))


def calibration_name(space_name: str, resolution: tuple[int, int]) -> str:
    return f"{space_name}@{resolution[0]}x{resolution[1]}"


class Predictor:
    """``predictor(arch) -> ms``; vectorised over many archs with ``predict_many``."""

    def __init__(self, table, space, resolution: tuple[int, int], bench_hint: str = "", pairs: bool = True,
                 stored: bool = True) -> None:
        """``pairs=False``: the units' sum alone, even where the table timed pairs;
        ``stored=False``: ignore the table's calibration (about to fit a new one)."""
        from plaid.lut.pairs import PairModel

        self.space = space
        self.resolution = tuple(resolution)
        self.unit_ms = {k: lat.median_ms for k, lat, _ in table.items()}
        # timed adjacent pairs (`plaid bench --pairs`): each boundary's residual joins the sum
        self.pairs = PairModel(self.unit_ms) if pairs else None
        if self.pairs is not None and not len(self.pairs):
            self.pairs = None
        saved = table.get_calibration(calibration_name(space.name, self.resolution)) if stored else None
        self.params = dict(saved or PLAIN)
        if self.calibrated and not self.params.get("pairs") and self.pairs is not None:
            self.pairs = None  # calibrated on plain sums, before the pairs were timed: keep to what was fitted
        self.hint = bench_hint or f"plaid bench --space {space.name}"
        self._cache: dict[Any, tuple[float, int]] = {}

    @property
    def calibrated(self) -> bool:
        return "n" in self.params

    def features(self, arch) -> tuple[float, int]:
        """(Σ unit medians in ms + the pair residuals of its boundaries, number of units)."""
        hit = self._cache.get(arch)
        if hit is not None:
            return hit
        total = 0.0
        units = arch_units(self.space, arch, self.resolution)
        for u in units:
            try:
                total += self.unit_ms[u.key]
            except KeyError:
                raise PlaidError(f"the latency table lacks unit {u.key}; build it with `{self.hint}`") from None
        if self.pairs is not None:
            from plaid.lut.pairs import Pair, chained

            total += self.pairs.correction([Pair(a, b) for a, b in zip(units, units[1:]) if chained(a, b)])
        hit = (total, len(units))
        if len(self._cache) < 1_000_000:
            self._cache[arch] = hit
        return hit

    def __call__(self, arch) -> float:
        s, n = self.features(arch)
        p = self.params
        return p["alpha"] * s + p["gamma"] * n + p["beta"]

    def predict_many(self, archs: Iterable) -> np.ndarray:
        feats = np.array([self.features(a) for a in archs], dtype=np.float64).reshape(-1, 2)
        p = self.params
        return p["alpha"] * feats[:, 0] + p["gamma"] * feats[:, 1] + p["beta"]

    def fit(self, archs: list, measured_ms: list[float]) -> dict[str, float]:
        """Choose and fit the correction on end-to-end measurements. Candidates, simplest
        first: plain sum; + constant or × scale; scale + constant; scale + per-unit + constant. Each is
        a least-squares fit on relative error, scored by its leave-one-out relative error.
        The choice is the *simplest* candidate within one standard error of the best score
        (the one-standard-error rule; between the constant and the scale, the better
        scored): with a handful of calibration nets the scores are
        noisy, and a correction that only seems better on them can be far worse on other
        nets. Measured (README, `plaid bench --runtime onnxruntime`, DF at 224², 5 nets):
        alpha+beta scored 6.19% (SE 1.63) against the plain sum's 6.95%, and the lowest
        score's choice then gave 14.2% MAPE on 30 other nets against 4.5% for the plain sum.
        Needs at least 3 measurements."""
        if len(archs) < 3:
            raise PlaidError(f"calibration needs at least 3 end-to-end measurements, got {len(archs)}")
        f = np.array([self.features(a) for a in archs], dtype=np.float64)
        y = np.asarray(measured_ms, dtype=np.float64)
        cols = {"alpha": f[:, 0], "gamma": f[:, 1], "beta": np.ones(len(y))}
        scored = []  # (mean LOO error, its standard error, names), simplest first
        for names in CANDIDATES:
            if len(names) >= len(y):
                continue
            loo = np.array([abs(_predict(_lstsq(cols, names, y, keep), cols, i) - y[i]) / y[i]
                            for i in range(len(y)) for keep in [np.arange(len(y)) != i]])
            scored.append((float(loo.mean()), float(loo.std(ddof=1) / np.sqrt(len(loo))), names))
        low = min(scored, key=lambda r: r[0])
        # the fewest parameters within one standard error of the best; among those, the best score
        fewest = min(len(r[2]) for r in scored if r[0] <= low[0] + low[1] + 1e-12)
        best = min((r for r in scored if len(r[2]) == fewest and r[0] <= low[0] + low[1] + 1e-12),
                   key=lambda r: r[0])
        names = best[2]
        params = _lstsq(cols, names, y, np.ones(len(y), dtype=bool))
        self.params = {**params, "n": len(y), "model": "+".join(names) or "plain", "loo_mape_pct": best[0] * 100,
                       "pairs": len(self.pairs) if self.pairs is not None else 0}
        return self.params


def _lstsq(cols: dict, names: tuple, y: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """Fit the named parameters (others fixed at the plain sum's values) on rows ``keep``."""
    base = cols["alpha"][keep] * (0.0 if "alpha" in names else 1.0)
    params = dict(PLAIN)
    if names:
        x = np.column_stack([cols[n][keep] for n in names]) / y[keep][:, None]
        target = (y[keep] - base) / y[keep]
        coef, *_ = np.linalg.lstsq(x, target, rcond=None)
        params.update({n: float(c) for n, c in zip(names, coef)})
    return params


def _predict(params: dict, cols: dict, i: int) -> float:
    return params["alpha"] * cols["alpha"][i] + params["gamma"] * cols["gamma"][i] + params["beta"] * cols["beta"][i]


def fidelity(predicted: Iterable[float], measured: Iterable[float]) -> dict[str, float]:
    """MAPE, max |error|, share within ±10%, Kendall's tau (rank agreement)."""
    p = np.asarray(list(predicted), dtype=np.float64)
    m = np.asarray(list(measured), dtype=np.float64)
    err = (p - m) / m
    from scipy.stats import kendalltau

    tau = float(kendalltau(p, m).statistic) if len(p) > 1 else float("nan")
    return {
        "n": int(len(m)),
        "mape_pct": float(np.mean(np.abs(err)) * 100),
        "max_abs_err_pct": float(np.max(np.abs(err)) * 100),
        "within_10pct": float(np.mean(np.abs(err) <= 0.10 + 1e-12)),
        "kendall_tau": tau,
    }
