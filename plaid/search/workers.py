"""Where a search's trainings run: in this process, one at a time (:class:`InlineTrainer`),
or in N worker processes (:class:`WorkerPool`). The engine (:mod:`plaid.search.engine`)
submits a training under a ticket and takes the results back one at a time, in whatever
order they finish (``next()``); it alone writes the journal.

A worker is a *spawned* process (no torch state or threads are forked) that builds its
evaluator once, from a picklable ``factory``, and then trains what it is sent over its own
pipe, one net at a time. It

- dies with plaid, even on ``kill -9`` (:func:`plaid.procs.die_with_parent`), and a
  training command it runs dies with it (:class:`plaid.procs.Group`);
- ignores SIGINT: Ctrl-C reaches plaid, which kills every worker (leaving the pool's
  ``with`` block on an exception kills them) while the journal still holds exactly the
  trainings that finished;
- runs with ``threads`` intra-op threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS``; the proxy trainer sets its own, 1 by default), so that
  N × threads ≤ cores.

A worker process that dies mid-training (killed, out of memory) is replaced and its net is
sent again, at most ``retries`` times; after that the run stops with one line saying so. A
training that fails (a :class:`~plaid.errors.PlaidError`: the command exited non-zero, wrote
no accuracy) stops the run, as it does in process.

*Background* tasks (the report's baseline nets) go only to a worker that the search leaves
idle while it waits for a result (the budget's tail, or after the search), and are
collected with :meth:`WorkerPool.result`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from plaid.errors import PlaidError, UsageError
from plaid.search.taskpool import Done, Task, TaskPool, WorkerStats

MAX_WORKERS = 256
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, available: int | None = None) -> int:
    """Intra-op threads per worker so that workers × threads ≤ cores (at least 1)."""
    return max(1, (available or cores()) // max(1, workers))


def check_workers(n: Any, flag: str = "--workers") -> int:
    """``n`` as a worker count, or a :class:`UsageError` (one line)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise UsageError(f"{flag} must be a whole number of worker processes, got {n!r}")
    if n < 1:
        raise UsageError(f"{flag} must be >= 1, got {n}")
    if n > MAX_WORKERS:
        raise UsageError(f"{flag} must be at most {MAX_WORKERS} worker processes on one machine, got {n}")
    return n


class InlineTrainer:
    """Trainings in this process, one at a time, oldest first: ``next()`` trains the
    oldest submitted net and returns it (with k > 1 submitted, the engine runs as if k
    equal workers finished in turn)."""

    def __init__(self, accuracy: Callable[..., float]) -> None:
        self.accuracy = accuracy
        self._queue: deque = deque()

    def submit(self, ticket: Any, arch: Any, seed: int = 0, key: str = "") -> None:
        self._queue.append((ticket, arch, seed))

    def next(self) -> Done:
        ticket, arch, seed = self._queue.popleft()
        t0 = time.perf_counter()
        acc = float(self.accuracy(arch, seed=seed)) if seed else float(self.accuracy(arch))
        return Done(ticket, acc, "main", time.perf_counter() - t0)


# ---- worker processes ---------------------------------------------------------------------------

def _serve(conn, factory: Callable[[], Callable[..., float]], threads: int, parent_pid: int) -> None:
    """A worker process's whole life: build the evaluator, then train what comes."""
    import signal

    from plaid.procs import die_with_parent

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is plaid's to handle: it kills us
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        evaluate = factory()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("fatal", _one_line(exc), isinstance(exc, UsageError)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # plaid went away
            return
        if msg is None:
            return
        ticket, arch, seed = msg
        t0 = time.perf_counter()
        try:
            acc = float(evaluate(arch, seed=seed)) if seed else float(evaluate(arch))
        except Exception as exc:  # noqa: BLE001 - the parent decides what it means
            conn.send(("error", ticket, _one_line(exc), isinstance(exc, UsageError)))
            continue
        conn.send(("done", ticket, acc, time.perf_counter() - t0))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(exc, PlaidError) else f"{type(exc).__name__}: {msg}".rstrip(": ")


@dataclass
class _Worker:
    slot: int
    label: str
    proc: Any
    conn: Any
    ready: bool = False
    task: Task | None = None
    since: float = 0.0


class WorkerPool(TaskPool):
    """N spawned worker processes (see the module docstring); a context manager: leaving
    it normally stops the workers, leaving it on an exception (Ctrl-C included) kills them.

    ``on_event(kind, worker, key, detail)`` is told ``"started"``, ``"finished"`` (detail:
    accuracy and seconds), ``"failed"`` and ``"died"`` (detail: how, and the retry)."""

    def __init__(self, factory: Callable[[], Callable[..., float]], workers: int, threads: int = 1,
                 retries: int = 2, on_event: Callable[[str, str, str, dict], None] | None = None) -> None:
        check_workers(workers)
        if retries < 0:
            raise UsageError(f"retries must be >= 0, got {retries}")
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")
        self.factory, self.size, self.threads, self.retries = factory, workers, max(1, int(threads)), retries
        self.on_event = on_event or (lambda *a: None)
        self._slots: list[_Worker | None] = [None] * workers
        self._init_queues()
        self._starts_failed = 0
        self.stats = {f"w{i + 1}": WorkerStats() for i in range(workers)}

    # ---- the trainer interface (submit / next / result / status: TaskPool) -----------------
    def running(self) -> dict[str, str]:
        """worker -> the arch it trains now."""
        return {w.label: w.task.key for w in self._slots if w is not None and w.task is not None}

    def _in_flight(self) -> list[Task]:
        return [w.task for w in self._slots if w is not None and w.task is not None]

    def _tallies(self) -> dict[str, WorkerStats]:
        return self.stats

    def to_json(self) -> dict:
        return {"processes": self.size, "threads": self.threads, "retries": self.retries,
                "per_worker": {k: v.to_json() for k, v in self.stats.items()}, "deaths": list(self.deaths)}

    # ---- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers: idle ones are asked to end, busy ones (a background task
        nobody waits for) are killed."""
        idle = [w for w in self._slots if w is not None and w.task is None]
        for w in idle:
            try:
                w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in idle:
            w.proc.join(max(0.0, deadline - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        """SIGKILL every worker now and reap them."""
        for i, w in enumerate(self._slots):
            if w is None:
                continue
            if w.proc.is_alive():
                w.proc.kill()
            w.proc.join()
            w.conn.close()
            self._slots[i] = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()

    # ---- internals ---------------------------------------------------------------------------
    def _start(self, i: int) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_serve, args=(child, self.factory, self.threads, os.getpid()),
                                 name=f"plaid-search-w{i + 1}", daemon=True)
        proc.start()
        child.close()
        self._slots[i] = _Worker(i, f"w{i + 1}", proc, parent)

    def _dispatch(self) -> None:
        """Give queued tasks to idle workers, starting workers for them as needed; a
        background task only where no task of the search waits."""
        need = len(self._queue) + len(self._background)
        need -= sum(w is not None and w.task is None for w in self._slots)  # idle or starting
        for i, w in enumerate(self._slots):
            if w is None and need > 0:
                self._start(i)
                need -= 1
        for w in self._slots:
            if w is None or not w.ready or w.task is not None:
                continue
            queue = self._queue or self._background
            if not queue:
                break
            task = queue.popleft()
            try:
                w.conn.send((task.ticket, task.arch, task.seed))
            except OSError:  # it just died: its sentinel says so below
                queue.appendleft(task)
                continue
            w.task, w.since = task, time.monotonic()
            self.on_event("started", w.label, task.key, {"background": task.background})

    def _step(self) -> None:
        from multiprocessing.connection import wait

        self._dispatch()
        live = [w for w in self._slots if w is not None]
        if not live:
            raise RuntimeError("WorkerPool: nothing to wait for")
        ready = wait([w.conn for w in live] + [w.proc.sentinel for w in live])
        for w in live:
            if w.conn in ready:
                try:
                    while w.conn.poll():
                        self._handle(w, w.conn.recv())
                except (EOFError, OSError):
                    self._died(w)
                    continue
            if w.proc.sentinel in ready and self._slots[w.slot] is w:
                self._died(w)

    def _handle(self, w: _Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
            self.stats[w.label].pids.append(int(msg[1]))
        elif kind == "fatal":
            _, text, usage = msg
            raise (UsageError if usage else PlaidError)(f"worker {w.label} could not start: {text}")
        elif kind == "done":
            _, ticket, acc, secs = msg
            task, w.task = w.task, None
            st = self.stats[w.label]
            st.finished += 1
            st.seconds += secs
            done = Done(ticket, float(acc), w.label, float(secs))
            if task is not None and task.background:
                self._results[ticket] = done
            else:
                self._done.append(done)
            self.on_event("finished", w.label, task.key if task else str(ticket),
                          {"accuracy": acc, "seconds": secs, "background": bool(task and task.background)})
        elif kind == "error":
            _, ticket, text, usage = msg
            task, w.task = w.task, None
            self.stats[w.label].failed += 1
            key = task.key if task else str(ticket)
            self.on_event("failed", w.label, key, {"error": text, "background": bool(task and task.background)})
            err = (UsageError if usage else PlaidError)(text)
            if task is not None and task.background:
                self._results[ticket] = err
            else:
                raise err

    def _died(self, w: _Worker) -> None:
        """A worker process ended without being asked: replace it (lazily) and send its
        net again, up to ``retries`` times per net."""
        i = w.slot
        w.proc.join()
        code = w.proc.exitcode
        w.conn.close()
        self._slots[i] = None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        task = w.task
        if task is None:
            if not w.ready:
                self._starts_failed += 1
                if self._starts_failed > self.retries:
                    raise PlaidError(f"worker process {w.label} died while starting ({how}), "
                                     f"{self._starts_failed} times")
            return
        task.attempts += 1
        self.stats[w.label].failed += 1
        self.deaths.append({"worker": w.label, "arch": task.key, "how": how})
        again = task.attempts <= self.retries
        self.on_event("died", w.label, task.key, {"how": how, "attempt": task.attempts, "retries": self.retries,
                                                  "again": again, "background": task.background})
        if again:
            (self._background if task.background else self._queue).appendleft(task)
            return
        err = PlaidError(f"{task.key}: its worker process died {task.attempts} times (last {w.label}, {how}); "
                         "stopping here, every training that finished is in the journal")
        if task.background:
            self._results[task.ticket] = err
        else:
            raise err
