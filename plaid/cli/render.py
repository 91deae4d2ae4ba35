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
