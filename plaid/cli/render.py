"""Output helpers: rich for people, JSON for scripts."""

from __future__ import annotations

import json
import sys


def console():
    from rich.console import Console

    import shutil

    # piped output gets a width that fits the layer tables instead of rich's 80 columns
    width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((120, 24)).columns, 120)
    return Console(highlight=False, width=width)


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


class ProgressBars:
    """Rich progress bars (on stderr) with ETA, one per phase; a callable usable as the
    library's ``progress(phase, done, total, label)``."""

    LABELS = {"convert": "converting to TFLite", "measure": "measuring on target", "search": "training candidates"}

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = None
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        if self.enabled:
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
        if self._progress is None:
            return
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(self.LABELS.get(phase, phase), total=total, label="")
        self._progress.update(self._tasks[phase], completed=done, total=total, label=label[:60])
