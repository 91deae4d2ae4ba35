"""The progress callback the library reports to, whatever draws it (rich bars on a
terminal, plain lines in a log: ``plaid.cli.render.ProgressBars``)."""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str, int, int, str], None]
"""``progress(phase, done, total, label)``: ``done`` of ``total`` steps of ``phase`` are
finished (``convert``, ``measure``, ``search``, ...); ``label`` names the latest one."""


def no_progress(phase: str, done: int, total: int, label: str) -> None:
    """The default: report nothing."""
