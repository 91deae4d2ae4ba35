"""What the two ways of running trainings elsewhere share (:class:`plaid.search.workers.WorkerPool`,
local worker processes, and :class:`plaid.search.raypool.RayPool`, Ray tasks): the finished
training (:class:`Done`), the queued one (:class:`Task`), per-worker tallies
(:class:`WorkerStats`) and the trainer interface over the queues (:class:`TaskPool`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from plaid.errors import PlaidError


@dataclass(frozen=True)
class Done:
    """A finished training: the ticket it was submitted under, its accuracy, the worker
    that trained it ("main" in process, "w1".."wN" in a pool) and its wall time."""

    ticket: Any
    accuracy: float
    worker: str
    seconds: float


@dataclass
class Task:
    ticket: Any
    arch: Any
    seed: int
    key: str
    background: bool = False
    attempts: int = 0  # deaths of the process (or losses of the node) that trained it
    ref: Any = None  # a Ray task's object reference
    since: float = 0.0


@dataclass
class WorkerStats:
    finished: int = 0
    failed: int = 0  # trainings lost to a dying process or an error
    seconds: float = 0.0  # spent on finished trainings
    pids: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"finished": self.finished, "failed": self.failed, "seconds": round(self.seconds, 3),
                "pids": list(self.pids)}


class TaskPool(ABC):
    """What :class:`WorkerPool` and :class:`plaid.search.raypool.RayPool` share: the trainer
    interface over the search's queue (first come first served), the background queue (the
    report's baselines) and the results. A subclass moves tasks on in ``_step()`` (put
    finished search tasks in ``_done``, background results in ``_results``), and says which
    tasks are in flight (``_in_flight``) and its tallies for ``status()`` (``_tallies``)."""

    kind = "pool"

    def _init_queues(self) -> None:
        self._queue: deque[Task] = deque()
        self._background: deque[Task] = deque()
        self._done: deque[Done] = deque()
        self._results: dict[Any, Done | PlaidError] = {}  # background results
        self._outstanding = 0  # the search's tasks not yet returned by next()
        self.deaths: list[dict] = []  # {"worker", "arch", "how"}

    def submit(self, ticket: Any, arch: Any, seed: int = 0, key: str = "", background: bool = False) -> None:
        task = Task(ticket, arch, seed, key or str(arch), background)
        (self._background if background else self._queue).append(task)
        if not background:
            self._outstanding += 1

    def next(self) -> Done:
        """The next training of the search to finish (blocks)."""
        if not self._outstanding:
            raise RuntimeError(f"{type(self).__name__}.next() with nothing submitted")
        while not self._done:
            self._step()
        self._outstanding -= 1
        return self._done.popleft()

    def result(self, ticket: Any) -> float:
        """The accuracy of a background task (blocks; submits nothing)."""
        while ticket not in self._results:
            if not any(t.ticket == ticket for t in (*self._background, *self._in_flight())):
                raise KeyError(ticket)
            self._step()
        r = self._results.pop(ticket)
        if isinstance(r, PlaidError):
            raise r
        return r.accuracy

    def status(self) -> str:
        """``running 2 | w1 3 done | w2 2 done, 1 failed``"""
        parts = [f"running {len(list(self._in_flight()))}"]
        for label, st in self._tallies().items():
            failed = f", {st.failed} failed" if st.failed else ""
            parts.append(f"{label} {st.finished} done{failed}")
        return " | ".join(parts)

    def _finished(self, task: Task, done: Done) -> None:
        """File a finished training where its waiter looks for it."""
        if task.background:
            self._results[task.ticket] = done
        else:
            self._done.append(done)

    @abstractmethod
    def _in_flight(self) -> list[Task]:
        """The tasks now training (search and background)."""

    @abstractmethod
    def _tallies(self) -> dict[str, WorkerStats]:
        """Per-worker counts of finished and failed trainings, for ``status()``."""

    @abstractmethod
    def _step(self) -> None:
        """Move tasks on once: start queued ones, collect finished ones (may block briefly)."""
