"""Accuracy table files (``--accuracy-table``): a CSV with a header naming ``arch`` and
``accuracy`` columns, or JSON (``{"arch": acc}`` or ``[{"arch": ..., "accuracy": ...}]``).

:func:`read_rows` checks the file and parses it into rows ``(where, arch, accuracy)`` as
written (``where`` names the line, entry or item for error messages);
:class:`plaid.train.evaluators.TableEvaluator` keys the arch strings through the space and
checks the accuracies.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from plaid.errors import UsageError

Row = tuple[str, Any, Any]  # (where, arch, accuracy), as written in the file


def read_rows(path: Path) -> list[Row]:
    """The rows of the ``.csv`` or ``.json`` accuracy table at ``path``; every problem with the
    file is a one-line :class:`UsageError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"accuracy table {path} is a directory, not a .csv or .json file")
    if not path.is_file():
        raise UsageError(f"accuracy table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise UsageError(f"accuracy table {path}: expected a .csv or .json file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"accuracy table {path}: cannot read: {exc}") from None
    return csv_rows(text, path) if suffix == ".csv" else json_rows(text, path)


def csv_rows(text: str, path: Path) -> list[Row]:
    """Rows of a CSV table (``path`` only names it in errors); cells are stripped."""
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    if "arch" not in header or "accuracy" not in header:
        raise UsageError(f"accuracy table {path}: the CSV header needs 'arch' and 'accuracy' columns "
                         f"(found {', '.join(header) or 'none'})")
    reader.fieldnames = header
    try:
        return [(f"line {reader.line_num}", (row["arch"] or "").strip(), (row["accuracy"] or "").strip())
                for row in reader]
    except csv.Error as exc:
        raise UsageError(f"accuracy table {path}: malformed CSV: {exc}") from None


def json_rows(text: str, path: Path) -> list[Row]:
    """Rows of a JSON table (``path`` only names it in errors)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"accuracy table {path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):
        return [(f"entry {arch!r}", arch, acc) for arch, acc in data.items()]
    if isinstance(data, list):
        rows = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "arch" not in item or "accuracy" not in item:
                raise UsageError(f"accuracy table {path} item {i}: expected "
                                 "{\"arch\": ..., \"accuracy\": ...}")
            rows.append((f"item {i}", item["arch"], item["accuracy"]))
        return rows
    raise UsageError(f"accuracy table {path}: expected a JSON object or list, got {type(data).__name__}")
