"""Building device shell command lines. Every argument goes through ``shlex.quote``:
nothing a user or a file name supplies is ever interpreted by the device's shell."""

from __future__ import annotations

import re
import shlex

RC_MARKER = "__PLAID_RC="
_RC_LINE = re.compile(re.escape(RC_MARKER) + r"(-?\d+)\s*$")  # output need not end with a newline


def sh(*args: object) -> str:
    """One shell command from its arguments, each quoted: ``sh("rm", "-f", path)``."""
    if not args:
        raise ValueError("sh() needs a program")
    return " ".join(shlex.quote(str(a)) for a in args)


def with_rc(command: str) -> str:
    """``command`` followed by an echo of its exit status that `split_rc` reads back."""
    return f"{command}; echo {RC_MARKER}$?"


def split_rc(output: str) -> tuple[str, int | None]:
    """(output without the status line, exit status or None when the line is missing)."""
    output = output.replace("\r\n", "\n")
    m = _RC_LINE.search(output)
    if not m:
        return output, None
    text = output[: m.start()]
    return (text[:-1] if text.endswith("\n") else text), int(m.group(1))


def short(command: str, limit: int = 80) -> str:
    """A command shortened for a one-line message."""
    command = " ".join(command.split())
    return command if len(command) <= limit else command[: limit - 3] + "..."
