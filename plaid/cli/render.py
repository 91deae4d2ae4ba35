"""Output helpers: rich for people, JSON for scripts."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import IO, Callable


def no_color() -> bool:
    """NO_COLOR (https://no-color.org: set and not empty) or TERM=dumb: no ANSI codes at all."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def plain_output(stream: IO[str]) -> bool:
    """Whether `stream` gets plain text: not a terminal, or no_color()."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        tty = False
    return not tty or no_color()


@functools.cache
def _console_class():
    from rich.console import Console

    class PlaidConsole(Console):
        def on_broken_pipe(self) -> None:  # rich exits 1 here; plaid's main decides
            self.quiet = True
            raise BrokenPipeError

    return PlaidConsole


def console(stderr: bool = False):
    import shutil

    Console = _console_class()

    # piped output gets a width that fits the layer tables instead of rich's 80 columns
    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((120, 24)).columns, 120)
    # rich's own NO_COLOR support drops colours but keeps bold and italic; none means none
    extra = {"color_system": None} if no_color() else {}
    return Console(highlight=False, width=width, stderr=stderr, **extra)


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


LABELS = {"export": "exporting to ONNX", "convert": "converting to TFLite", "measure": "measuring on target", "search": "training candidates",
          "sample": "sampling and counting"}


def _duration(seconds: float) -> str:
    """``80`` -> ``1m20s``; ``3725`` -> ``1h02m``; ``7`` -> ``7s``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class PlainProgress:
    """Progress for logs (stderr not a terminal, NO_COLOR, TERM=dumb): one line per step,
    ``converting to TFLite 5/53 (9%) eta 1m20s  LABEL``, throttled to every `every_pct`
    percent or `every_s` seconds, whichever comes first, plus the first and the last step."""

    def __init__(self, stream: IO[str] | None = None, every_pct: float = 5.0, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.every_pct, self.every_s, self.clock = stream, every_pct, every_s, clock
        self._phases: dict[str, dict] = {}

    def __call__(self, phase: str, done: int, total: int, label: str) -> None:
        now = self.clock()
        st = self._phases.get(phase)
        if st is None:  # resumed work starts above 0: the rate counts only what this run does
            st = self._phases[phase] = {"t0": now, "d0": done, "last_t": None, "last_pct": -1.0, "ended": False}
        pct = 100.0 * done / total if total > 0 else 0.0
        final = total > 0 and done >= total
        due = (st["last_t"] is None or pct >= st["last_pct"] + self.every_pct
               or now - st["last_t"] >= self.every_s)
        if (final and st["ended"]) or not (final or due):
            return
        st.update(last_t=now, last_pct=pct, ended=final)
        line = f"{LABELS.get(phase, phase)} {done}/{total} ({pct:.0f}%)"
        elapsed = now - st["t0"]
        if final:
            line += f" in {_duration(elapsed)}"
        elif done > st["d0"] and elapsed > 0:
            line += f" eta {_duration((total - done) * elapsed / (done - st['d0']))}"
        if label:
            line += f"  {label[:60]}"
        print(line, file=self.stream or sys.stderr, flush=True)


class ProgressBars:
    """Progress on stderr, one bar per phase, as a callable usable as the library's
    ``progress(phase, done, total, label)``: rich bars with ETA on a terminal, and
    :class:`PlainProgress` lines where stderr is a log (or NO_COLOR / TERM=dumb)."""

    LABELS = LABELS

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = None
        self._plain: PlainProgress | None = None
        self._tasks: dict[str, int] = {}
        import threading

        self._lock = threading.Lock()  # a table build reports conversions and timings from two threads

    def __enter__(self):
        if self.enabled and plain_output(sys.stderr):
            self._plain = PlainProgress()
        elif self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      TextColumn("[dim]{task.fields[label]}"),
                                      console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int, label: str) -> None:
        with self._lock:
            if self._plain is not None:
                self._plain(phase, done, total, label)
                return
            if self._progress is None:
                return
            if phase not in self._tasks:
                self._tasks[phase] = self._progress.add_task(self.LABELS.get(phase, phase), total=total, label="")
            self._progress.update(self._tasks[phase], completed=done, total=total, label=label[:60])
