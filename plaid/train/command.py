"""The user's own training command (``--train-cmd``): checking its template, the argv it
gives for one net, fresh output names in its work folder, and one run of it.

A template such as ``python train.py --arch {arch} --out {out}`` gets ``{arch}``, ``{out}``
and, where written, ``{seed}`` substituted, each value shell-quoted, and is then split into
an argv (no shell runs). The command writes JSON with a numeric ``accuracy`` (or ``top1``)
key to ``{out}``; its stdout and stderr are kept beside it (``<out>.stdout``,
``<out>.stderr``). It runs in its own process group (:class:`plaid.procs.Group`), so nothing
it starts outlives it or plaid.

:class:`plaid.train.evaluators.CommandEvaluator` is the evaluator built on this; the value
read here is checked there, like every evaluator's accuracy.
"""

from __future__ import annotations

import json
import os
import shlex
import string
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from plaid.errors import PlaidError, UsageError
from plaid.procs import Group

PLACEHOLDERS = ("arch", "out")  # required
OPTIONAL = ("seed",)


def check_template(template: str) -> None:
    """Raise :class:`UsageError` unless ``template`` has ``{arch}`` and ``{out}``, no other
    placeholder than ``{seed}``, and splits into a non-empty argv."""
    fields = set()
    try:
        for _, field, spec, conv in string.Formatter().parse(template):
            if field is None:
                continue
            if field not in PLACEHOLDERS + OPTIONAL:
                raise UsageError(f"command template: unknown placeholder {{{field}}} (only {{arch}}, {{out}} "
                                 "and {seed}; write {{ and }} for literal braces)")
            if spec or conv:
                raise UsageError(f"command template: write {{{field}}} plainly, without a conversion or format")
            fields.add(field)
    except ValueError as exc:
        raise UsageError(f"command template {template!r}: {exc}") from None
    missing = [f"{{{f}}}" for f in PLACEHOLDERS if f not in fields]
    if missing:
        raise UsageError(f"command template {template!r} lacks {' and '.join(missing)}")
    try:
        args = argv(template, "ARCH", Path("OUT"), 0)
    except ValueError as exc:
        raise UsageError(f"command template {template!r}: {exc}") from None
    if not args:
        raise UsageError("command template is empty")


def argv(template: str, arch: str, out: Path, seed: int) -> list[str]:
    """The argv for one run: the template with each value shell-quoted, split without a shell."""
    return shlex.split(template.format(arch=shlex.quote(arch), out=shlex.quote(str(out)),
                                       seed=shlex.quote(str(seed))))


def fresh_out(workdir: Path, tag: str) -> tuple[Path, IO[bytes], IO[bytes]]:
    """A fresh ``{out}`` name ``<tag>-<time>-<pid>-<n>.json`` in ``workdir``, with its
    ``.stdout`` and ``.stderr`` logs created new (:func:`plaid.fsio.create_new`) and returned
    open: a file, FIFO or link planted at one of these predictable names is skipped, never
    written through."""
    from plaid.fsio import create_new

    workdir.mkdir(parents=True, exist_ok=True)
    stem = f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    for n in range(10_000):
        path = workdir / f"{stem}-{n}.json"
        if os.path.lexists(path):
            continue
        logs: list = []
        try:
            for suffix in (".stdout", ".stderr"):
                log_path = path.with_name(path.name + suffix)
                logs.append((create_new(log_path), log_path))
        except FileExistsError:
            for fh, made in logs:  # ours, made a moment ago: give the name back
                fh.close()
                made.unlink()
            continue
        return path, logs[0][0], logs[1][0]
    raise PlaidError(f"command evaluator: no free output name in {workdir}")  # pragma: no cover


def run(template: str, arch: str, seed: int, workdir: Path, tag: str, timeout: float | None,
        where: str) -> Any:
    """Run the command for ``arch`` with ``{seed}`` and ``PLAID_SEED`` set to ``seed``; return
    the ``accuracy`` (or ``top1``) value it wrote, unchecked. ``where`` starts each error."""
    out, so, se = fresh_out(workdir, tag)
    args = argv(template, arch, out, seed)
    err_path = out.with_name(out.name + ".stderr")
    # its own process group, killed with everything in it on timeout, on error, when plaid
    # exits (even by kill -9), and (what it left running) when it ends
    with so, se, Group() as group:
        try:
            proc = group.popen(args, shell=False, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                               env={**os.environ, "PLAID_SEED": str(seed)})
        except OSError as exc:
            raise UsageError(f"{where}: cannot run {args[0]!r}: {exc.strerror or exc}") from None
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PlaidError(f"{where}: timed out after {timeout:g} s{last_line(err_path)}") from None
    if rc != 0:
        raise PlaidError(f"{where}: exited with code {rc}{last_line(err_path)}")
    if not out.is_file():
        raise PlaidError(f"{where}: it exited 0 but did not write {out}{last_line(err_path)}")
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlaidError(f"{where}: {out} is not valid JSON ({exc})") from None
    value = None
    if isinstance(data, dict):
        value = data.get("accuracy", data.get("top1"))
    if value is None:
        raise PlaidError(f"{where}: {out} has no numeric 'accuracy' or 'top1' key")
    return value


def last_line(path: Path) -> str:
    """``"; stderr: <its last non-blank line>"`` for an error message, or ``""``."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f"; stderr: {lines[-1][:300]}" if lines else ""
