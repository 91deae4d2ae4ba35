"""Child processes and scratch folders that do not outlive plaid.

A ``kill -9`` of plaid runs none of its cleanup code, so what it started must end on its own:

- worker processes (the onnx2tf pool) call :func:`die_with_parent` first: on Linux the
  kernel sends them SIGKILL when plaid goes (``prctl(PR_SET_PDEATHSIG)``), elsewhere a
  watchdog thread notices that their parent changed;
- external commands (a ``--train-cmd``, ``device_bench``, a TensorRT build) run in a
  :class:`Group`: their own process group, led by a tiny reaper that holds the read end of a
  pipe plaid writes nothing to. When plaid exits, however it exits, the pipe closes and the
  reaper kills the whole group, grandchildren included;
- scratch folders are named ``plaid-<kind>-<pid>-<random>`` (:func:`scratch_dir`), and a
  folder whose owner process is gone is removed by the next plaid process
  (:func:`sweep_scratch`), never one of a live process or of another user.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
# the reaper: wait for EOF on stdin (plaid gone or done), then SIGKILL its own process group
_REAPER = "read x; kill -KILL 0"
_SCRATCH = re.compile(r"plaid-[a-z0-9]+-(\d+)-[a-z0-9_]{8}")
_swept: set[str] = set()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts; a zombie,
    dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except FileNotFoundError:  # it just ended, or there is no /proc here (then kill() has said it exists)
        return not os.path.isdir("/proc/self")
    except OSError:
        return True


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a worker process started by ``parent_pid``: the worker ends when
    that process does. Use it as a pool ``initializer`` (``initargs=(os.getpid(),)``).

    Linux delivers the death signal when the *thread* that forked the worker exits, so start
    worker pools from a thread that outlives them (plaid starts them from the main thread,
    and a ``with ProcessPoolExecutor`` block does not outlive its thread)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before the prctl
                os.kill(os.getpid(), signal.SIGKILL)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="plaid-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int, period: float = 0.5) -> None:
    import time

    while os.getppid() == parent_pid:
        time.sleep(period)
    os.kill(os.getpid(), signal.SIGKILL)


class Group:
    """A process group whose members are SIGKILLed when this process exits, or on
    :meth:`kill`, or (what is left of them) on :meth:`close`. ``with Group() as g:
    proc = g.popen(argv, ...)``. The group is led by a ``/bin/sh`` reaper that lives in it."""

    def __init__(self) -> None:
        r, self._w = os.pipe()  # both ends close-on-exec: only the reaper gets the read end
        try:
            self._reaper = subprocess.Popen(["/bin/sh", "-c", _REAPER], stdin=r, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, process_group=0)
        except BaseException:
            os.close(self._w)
            raise
        finally:
            os.close(r)
        self.pgid = self._reaper.pid
        self._procs: list[subprocess.Popen] = []

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """``subprocess.Popen(argv, **kw)`` inside the group (no shell unless you ask)."""
        proc = subprocess.Popen(argv, process_group=self.pgid, **kw)
        self._procs.append(proc)
        return proc

    def kill(self) -> None:
        """SIGKILL every process of the group now and reap the ones started here."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            for proc in self._procs:
                proc.kill()
        self._reap()

    def close(self) -> None:
        """The work is done: the reaper kills whatever the commands left running."""
        self._reap()

    def _reap(self) -> None:
        if self._w >= 0:
            os.close(self._w)
            self._w = -1
        for proc in (*self._procs, self._reaper):
            proc.wait()

    def __enter__(self) -> "Group":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, **kw)`` (``input=`` and ``timeout=`` included) in a :class:`Group`:
    nothing it starts outlives it or plaid."""
    inp, timeout = kw.pop("input", None), kw.pop("timeout", None)
    if kw.pop("capture_output", False):
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
    if inp is not None:
        kw["stdin"] = subprocess.PIPE
    with Group() as group:
        proc = group.popen(argv, **kw)
        out, err = proc.communicate(inp, timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def scratch_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A private temp folder ``<prefix><pid>-<random>`` (``prefix`` like ``"plaid-export-"``).
    The first call in a process sweeps the folders of dead plaid processes."""
    if not _SCRATCH.fullmatch(f"{prefix}0-aaaaaaaa"):
        raise ValueError(f"scratch prefix {prefix!r} must look like 'plaid-<kind>-'")
    base = tempfile.gettempdir()
    if base not in _swept:
        sweep_scratch(base)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def sweep_scratch(base: str | os.PathLike | None = None) -> list[Path]:
    """Remove this user's ``plaid-<kind>-<pid>-<random>`` folders in ``base`` (the temp
    folder) whose process is gone. Returns what was removed."""
    base = os.fspath(base or tempfile.gettempdir())
    _swept.add(base)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        m = _SCRATCH.fullmatch(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        pid = int(m.group(1))
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed
