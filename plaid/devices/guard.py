"""The guard that keeps the measurement protocol honest on a device (a phone over ADB, a
board over SSH), around any runner:
temperatures before and after each unit, a cool-down wait when the CPU is hot, and a
*sentinel* unit re-measured every N units to catch throttling or a changed CPU speed.

Its settings are host-side keys of a target's ``[protocol]`` (plaid.protocol declares them,
configs/targets/sd845.toml and rpi5.toml document them): ``cooldown_above_c`` (wait before a unit when
the hottest CPU zone is above it; absent = never wait), ``cooldown_target_c`` (wait until
at or below it), ``cooldown_max_wait_s`` (then measure anyway, with a warning),
``cooldown_poll_s``; ``sentinel_every`` (0 = no sentinel) and ``sentinel_tolerance``
(relative drift of the sentinel's median that counts as drift). On drift: a warning, a
cool-down to the target, the sentinel measured again, and every unit measured since the
last good check measured again (each re-measured entry records the drift before and after
the cool-down).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from plaid.errors import PlaidError
from plaid.protocol import MeasureProtocol

RESULT_KEYS = ("key", "status", "median_ms", "p90_ms", "mean_ms", "std_ms", "cv", "min_ms", "runs", "error")


class Guard:
    """Runs ``models`` through ``runner`` under the protocol; every result goes to ``emit``
    as ``{"event": "result", ..., "info": {...}}`` the moment it exists."""

    def __init__(self, runner, temperatures: Callable[[], dict], settings: MeasureProtocol,
                 emit: Callable[[dict], None], progress=None, sleep=time.sleep, clock=time.monotonic,
                 noun: str = "phone") -> None:
        self.runner, self.temps, self.s, self.emit = runner, temperatures, settings, emit
        self.noun = noun  # names the device in warnings
        self.progress = progress or (lambda *a: None)
        self.sleep, self.clock = sleep, clock
        self.sentinel: tuple[str, Path] | None = None
        self.reference_ms: float | None = None
        self._waited = 0.0

    # -- public
    def run(self, models) -> None:
        """``models``: [(key, path)], or a :class:`plaid.lut.session.Feed` of them. A feed's
        batches are timed as they come under one protocol: the sentinel is picked from the
        first batch, and its windows run on across batches."""
        from plaid.lut.session import batches_of

        window: list[tuple[str, Path]] = []
        first = True
        for queue in batches_of(models):
            if first:
                first = False
                if self.s.cooldown_above_c is not None and "cpu_c" not in self.temps():
                    self._say("warning", f"no CPU temperature is readable on this {self.noun}: "
                                         "cool-down waits are off")
                if self.s.sentinel_every > 0 and (len(queue) > 1 or len(models) > 1):
                    self._start_sentinel(queue)
            while queue:
                n = self._batch_len(len(window), len(queue))
                batch, queue = queue[:n], queue[n:]
                self._run(batch, {})
                window += batch
                if self.sentinel and len(window) >= self.s.sentinel_every:
                    self._check(window)
                    window = []
        if self.sentinel and window:
            self._check(window)

    # -- pieces
    def _batch_len(self, in_window: int, left: int) -> int:
        size = self.runner.batch_size or left
        if self.sentinel:
            size = min(size, self.s.sentinel_every - in_window)
        return max(1, min(size, left))

    def _start_sentinel(self, queue: list[tuple[str, Path]]) -> None:
        """The sentinel is the model of median file size (ties: by key): cheap to re-run,
        yet not one of the tiniest, whose times are close to the timer's resolution. Its
        first measurement is both its table entry and the reference."""
        by_size = sorted(queue, key=lambda m: (Path(m[1]).stat().st_size, m[0]))
        self.sentinel = by_size[(len(by_size) - 1) // 2]
        queue.remove(self.sentinel)
        rows = self._run([self.sentinel], {"sentinel": "reference"})
        if rows and rows[0]["status"] == "ok" and rows[0]["median_ms"] > 0:
            self.reference_ms = rows[0]["median_ms"]
        else:
            why = "failed to run" if not rows or rows[0]["status"] != "ok" else "is too fast to time (0 ms)"
            self._say("warning", f"sentinel {self.sentinel[0]} {why}; drift checks are off")
            self.sentinel = None

    def _measure_sentinel(self) -> float | None:
        got: list[dict] = []
        self.cooldown()
        self.runner.run([self.sentinel], got.append)
        return got[0]["median_ms"] if got and got[0]["status"] == "ok" else None

    def _check(self, window: list[tuple[str, Path]]) -> None:
        assert self.sentinel is not None and self.reference_ms
        now = self._measure_sentinel()
        if now is None:
            self._say("warning", f"sentinel {self.sentinel[0]} failed to run; drift not checked")
            return
        drift = now / self.reference_ms - 1.0
        if abs(drift) <= self.s.sentinel_tolerance:
            return
        self._say("warning", f"sentinel drifted {drift:+.1%} ({now:.3f} ms vs {self.reference_ms:.3f} ms at the "
                             f"start, tolerance {self.s.sentinel_tolerance:.0%}): the {self.noun} throttles or "
                             f"changed speed; cooling down and re-measuring the {len(window)} unit(s) since the last "
                             "good check")
        self.cooldown(force=True)
        after = self._measure_sentinel()
        drift_after = (after / self.reference_ms - 1.0) if after is not None else None
        self._run(window, {"remeasured": {"reason": "sentinel drift", "drift_before": round(drift, 4),
                                          "drift_after_cooldown": None if drift_after is None
                                          else round(drift_after, 4)}})
        if drift_after is None or abs(drift_after) > self.s.sentinel_tolerance:
            shown = "unknown" if drift_after is None else f"{drift_after:+.1%}"
            self._say("warning", f"sentinel still off after the cool-down ({shown}); the {len(window)} re-measured "
                                 "unit(s) record it in their table entry (remeasured.drift_after_cooldown)")

    def _run(self, batch: list[tuple[str, Path]], extra: dict) -> list[dict]:
        """Run one batch; each result is emitted with temperatures and ``extra``."""
        rows: list[dict] = []
        waited = self.cooldown()
        before = self.temps()

        def on_result(row: dict) -> None:
            nonlocal before, waited
            try:
                after, lost = self.temps(), None
            except PlaidError as exc:  # the device went away right after the run: keep the result
                after, lost = {}, exc
            info = {k: v for k, v in row.items() if k not in RESULT_KEYS}
            info.update({"temp_before": before, "temp_after": after, "runner": self.runner.name, **extra})
            if waited:
                info["cooldown_s"] = round(waited, 1)
            waited = 0.0
            core = {k: row[k] for k in RESULT_KEYS if k in row}
            rows.append(core)
            self.emit({"event": "result", **core, "info": info})
            if lost is not None:
                raise lost
            before = after

        self.runner.run(batch, on_result)
        return rows

    def cooldown(self, force: bool = False) -> float:
        """Wait (bounded) until the hottest CPU zone is at or below the target; returns the
        seconds waited. Without ``force`` only when it is above ``cooldown_above_c``."""
        s = self.s
        if s.cooldown_above_c is None:
            return 0.0
        t = self.temps().get("cpu_c")
        if t is None or t <= (s.cooldown_target_c if force else s.cooldown_above_c):
            return 0.0
        self._say("notice", f"cooling down: CPU at {t:.1f} °C, waiting for {s.cooldown_target_c:g} °C "
                            f"(at most {s.cooldown_max_wait_s:g} s)")
        start = self.clock()
        while t is not None and t > s.cooldown_target_c and self.clock() - start < s.cooldown_max_wait_s:
            self.progress("cool-down", int(self.clock() - start), int(s.cooldown_max_wait_s),
                          f"CPU {t:.1f} °C -> {s.cooldown_target_c:g} °C")
            self.sleep(min(s.cooldown_poll_s, max(0.0, s.cooldown_max_wait_s - (self.clock() - start))))
            t = self.temps().get("cpu_c", t)
        waited = self.clock() - start
        self.progress("cool-down", int(s.cooldown_max_wait_s), int(s.cooldown_max_wait_s), f"CPU {t:.1f} °C")
        if t is not None and t > s.cooldown_target_c:
            self._say("warning", f"CPU still at {t:.1f} °C after {waited:.0f} s of cool-down (target "
                                 f"{s.cooldown_target_c:g} °C); measuring anyway, each unit stores its temperatures")
        return waited

    def _say(self, kind: str, message: str) -> None:
        self.emit({"event": kind, "message": message})
