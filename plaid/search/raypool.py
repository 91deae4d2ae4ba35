"""A search's trainings as Ray tasks on a cluster the user already runs (:class:`RayPool`),
behind the trainer interface of :mod:`plaid.search.workers` (``submit`` / ``next`` /
``result`` / ``running`` / ``status`` / ``to_json``), so the engine, which alone writes the
journal, sees no difference from local worker processes.

- The driver (plaid) connects with ``ray.init(address=...)`` (``"auto"``: the cluster that
  ``RAY_ADDRESS`` or the last ``ray start`` on this machine names); it starts no cluster.
- The evaluator, with its dataset, is put in the object store once (``ray.put``): each
  node fetches it once, and each Ray worker process unpickles it once and keeps it for the
  tasks it runs after; a task carries only the arch, the seed and a reference.
- Each training is one task with ``num_cpus`` / ``num_gpus`` per trial; Ray sets
  ``CUDA_VISIBLE_DEVICES`` for the GPUs it grants, the task sets the intra-op thread
  variables to its CPUs. A task runs with the environment of its node (as ``ray start``
  was run there), not plaid's.
- A task lost with its worker process or node (killed, out of memory, node gone) is
  submitted again by the driver, at most ``retries`` times per net, and the run goes on;
  Ray's own ``max_retries`` is set to 0 so that each loss is seen, logged and counted in
  the run record, with the same bound as local workers. A training that fails (the
  command exited non-zero...) stops the run, as it does in process.
- Leaving the pool on an exception (Ctrl-C) cancels every task in flight with
  ``ray.cancel(force=True)``, which kills their worker processes (and with them a
  ``--train-cmd``, whose process group dies with its parent), then disconnects.

Results come back as ``Done(ticket, accuracy, worker, seconds)`` where ``worker`` names the
node and process that trained it: ``<node ip>/<node id[:6]>:<pid>``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

from plaid.errors import PlaidError, UsageError
from plaid.search.taskpool import Done, Task, TaskPool, WorkerStats
from plaid.search.workers import THREAD_VARS, _one_line

RAY_VERSION = "2.60.0"
INSTALL = f"pip install 'plaid[ray]' (ray=={RAY_VERSION})"
MAX_PER_TRIAL = 1024

_evaluators: dict[str, Any] = {}  # in a Ray worker process: object id -> the evaluator unpickled from it


def import_ray():
    """The ``ray`` module, or a :class:`UsageError` saying in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed here: {INSTALL}") from None
    return ray


def _quiet_driver() -> None:
    """Ray's driver prints the raylet's error messages ("A worker died or was killed while
    executing a task...", a dozen lines) to stdout whatever ``log_to_driver`` says (ray
    2.60's ``listen_error_messages``); plaid reports each loss itself in one line, and its
    stdout is the ``--json`` summary. Those messages go to stderr with ``PLAID_DEBUG=1``,
    nowhere otherwise."""
    try:
        from ray._private import worker
    except ImportError:
        return
    show = getattr(worker, "print_to_stdstream", None)
    if show is None or getattr(show, "_plaid", False):
        return

    def to_stderr_if_debugging(data, ignore_prefix):
        if data.get("pid") != "raylet":
            show(data, ignore_prefix)
        elif os.environ.get("PLAID_DEBUG") == "1":
            show({**data, "is_err": True}, ignore_prefix)

    to_stderr_if_debugging._plaid = True
    worker.print_to_stdstream = to_stderr_if_debugging


def _reachable(address: str) -> None:
    """A :class:`UsageError` in one line when the cluster's GCS port does not answer (``ray.init``
    would retry for minutes, printing warnings)."""
    import socket

    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # another Ray: let ray.init say it
        return
    try:
        where = canonicalize_bootstrap_address(address)  # "auto": RAY_ADDRESS or the last `ray start` here
    except Exception as exc:  # noqa: BLE001 - Ray raises several kinds for "no cluster found"
        raise UsageError(f"no Ray cluster found for --ray {address}: {_one_line(exc)}") from None
    if where is None:  # "local": Ray starts one in this process
        return
    host, _, port = where.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"cannot reach the Ray cluster at {where} ({why}): is `ray start --head` "
                         "running there?") from None


def check_per_trial(value: Any, flag: str) -> float:
    """A per-trial resource amount as Ray takes it: 0, a fraction of one, or whole units."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if value < 0 or value > MAX_PER_TRIAL:
        raise UsageError(f"{flag} must be in 0..{MAX_PER_TRIAL}, got {value:g}")
    if value > 1 and value != int(value):
        raise UsageError(f"{flag} above 1 must be a whole number (Ray's rule), got {value:g}")
    return float(value)


def _first_sentence(exc: BaseException) -> str:
    """``NodeDiedError: Task failed because the node it was running on is dead or
    unavailable.`` of Ray's paragraph-long messages."""
    text = _one_line(exc)
    cut = text.find(". ")
    return text[:cut + 1] if cut > 0 else text


def _train(shipped: list, arch: Any, seed: int, threads: int) -> tuple:
    """One training, in a Ray worker process: the evaluator comes from the object store
    (``shipped`` holds its reference, unresolved), unpickled once per process."""
    import ray

    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    ref = shipped[0]
    evaluate = _evaluators.get(ref.hex())
    if evaluate is None:
        _evaluators.clear()  # one run's evaluator at a time
        evaluate = _evaluators[ref.hex()] = ray.get(ref)
    t0 = time.perf_counter()
    acc = float(evaluate(arch, seed=seed)) if seed else float(evaluate(arch))
    return acc, time.perf_counter() - t0, ray.get_runtime_context().get_node_id(), os.getpid()


class RayPool(TaskPool):
    """Trainings as Ray tasks, at most ``size`` in flight (the search keeps ``batch`` = size
    of its own; the report's baseline nets go in only where the search leaves room). A
    context manager: leaving it normally cancels what nobody waits for, leaving it on an
    exception (Ctrl-C included) cancels everything in flight; both disconnect.

    ``evaluate`` is the evaluator (picklable; it travels once, through the object store).
    ``on_event(kind, worker, key, detail)`` as for :class:`plaid.search.workers.WorkerPool`."""

    def __init__(self, evaluate: Any, address: str, size: int, cpus: float = 1.0, gpus: float = 0.0,
                 retries: int = 2, on_event=None) -> None:
        if retries < 0:
            raise UsageError(f"retries must be >= 0, got {retries}")
        self.ray = ray = import_ray()
        self.address, self.size, self.retries = address, int(size), retries
        self.cpus = check_per_trial(cpus, "--ray-cpus-per-trial")
        self.gpus = check_per_trial(gpus, "--ray-gpus-per-trial")
        if not self.cpus and not self.gpus:
            raise UsageError("a trial needs some resource: --ray-cpus-per-trial and --ray-gpus-per-trial are both 0")
        self.threads = max(1, int(self.cpus))
        self.on_event = on_event or (lambda *a: None)
        _quiet_driver()
        self._owns = not ray.is_initialized()  # else: plaid used from a program that is connected already
        if self._owns:
            _reachable(address)
        try:
            self.context = ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                                    logging_level=logging.WARNING, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Ray cluster at {address!r}: {_one_line(exc)}") from None
        try:
            self.gcs_address = str((getattr(self.context, "address_info", None) or {}).get("gcs_address") or address)
            self.nodes = self._check_fits()
            self._shipped = [ray.put(evaluate)]  # once; tasks get its reference
            self._remote = ray.remote(_train).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        except BaseException:
            self._disconnect()
            raise
        self._init_queues()
        self._flight: dict[Any, Task] = {}  # object ref -> the task it will hold
        self.stats: dict[str, WorkerStats] = {}
        self.lost = WorkerStats()  # tasks lost before saying where they ran

    def _check_fits(self) -> int:
        """The alive nodes; a :class:`UsageError` when none has room for one trial (Ray
        would keep such a task pending for ever)."""
        nodes = self.ray.nodes()
        self._ips = {n["NodeID"]: n["NodeManagerAddress"] for n in nodes}
        alive = [n for n in nodes if n.get("Alive")]
        fits = [n for n in alive if n["Resources"].get("CPU", 0) >= self.cpus
                and n["Resources"].get("GPU", 0) >= self.gpus]
        if not fits:
            have = ", ".join(f"{n['NodeManagerAddress']} {n['Resources'].get('CPU', 0):g} CPU "
                             f"{n['Resources'].get('GPU', 0):g} GPU" for n in alive) or "no alive node"
            raise UsageError(f"no node of the Ray cluster at {self.address!r} has {self.cpus:g} CPU and "
                             f"{self.gpus:g} GPU for one trial ({have})")
        return len(alive)

    # ---- the trainer interface (submit / next / result: TaskPool) ----------------------------
    def running(self) -> dict[str, str]:
        """task -> the arch it trains (where it runs is known when it is done)."""
        return {f"ray#{t.ticket}": t.key for t in self._flight.values()}

    def status(self) -> str:
        """``running 2 | 10.0.0.5/3fa2c1 3 done | 10.0.0.6/77b0e4 2 done, 1 failed``"""
        return super().status() + (f" | {self.lost.failed} lost" if self.lost.failed else "")

    def _in_flight(self) -> list[Task]:
        return list(self._flight.values())

    def _tallies(self) -> dict[str, WorkerStats]:
        return self._by_node()

    def to_json(self) -> dict:
        return {"ray": {"address": self.address, "gcs_address": self.gcs_address, "nodes": self.nodes,
                        "cpus_per_trial": self.cpus, "gpus_per_trial": self.gpus, "in_flight": self.size},
                "threads": self.threads, "retries": self.retries,
                "per_worker": {k: v.to_json() for k, v in self.stats.items()},
                "per_node": {k: v.to_json() for k, v in self._by_node().items()}, "deaths": list(self.deaths)}

    # ---- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Cancel what is still in flight (background tasks nobody waits for) and disconnect."""
        self.kill()

    def kill(self) -> None:
        """Cancel every task in flight (``force=True`` kills its worker process) and disconnect."""
        ray = self.ray
        refs = list(self._flight)
        self._flight.clear()
        if refs:  # only what is still running: force-cancelling a task whose reply is on its way
            # races inside Ray's core worker (a RAY_CHECK abort, "Tried to complete task that was
            # not pending", seen with Ray 2.60 under load; cf. ray-project/ray#54798's sibling)
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - finished or lost meanwhile: nothing to cancel
                pass
        if refs:  # give the cancellations a moment to land before the driver goes
            ray.wait(refs, num_returns=len(refs), timeout=5)
        self._disconnect()

    def _disconnect(self) -> None:
        if self._owns:
            self.ray.shutdown()

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.kill()

    # ---- internals ---------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Submit the search's tasks at once (the engine keeps at most ``size`` of them) and
        background tasks only while fewer than ``size`` are in flight."""
        while self._queue or (self._background and len(self._flight) < self.size):
            task = (self._queue or self._background).popleft()
            task.ref = self._remote.remote(self._shipped, task.arch, task.seed, self.threads)
            task.since = time.monotonic()
            self._flight[task.ref] = task
            self.on_event("started", "ray", task.key, {"background": task.background})

    def _step(self) -> None:
        self._dispatch()
        if not self._flight:
            raise RuntimeError("RayPool: nothing to wait for")
        ready, _ = self.ray.wait(list(self._flight), num_returns=1)
        for ref in ready:
            self._collect(self._flight.pop(ref))

    def _collect(self, task: Task) -> None:
        from ray.exceptions import RayTaskError, TaskCancelledError

        try:
            acc, secs, node_id, pid = self.ray.get(task.ref)
        except RayTaskError as exc:  # the training itself failed
            cause = getattr(exc, "cause", None)
            err = cause if isinstance(cause, PlaidError) else PlaidError(_one_line(cause or exc))
            self.lost.failed += 1
            self.on_event("failed", "ray", task.key, {"error": str(err), "background": task.background})
            if task.background:
                self._results[task.ticket] = err
                return
            raise err from None
        except TaskCancelledError:
            raise PlaidError(f"{task.key}: its Ray task was cancelled from outside plaid") from None
        except self.ray.exceptions.RayError as exc:  # its worker process or node is gone
            self._lost(task, _first_sentence(exc))
            return
        label = f"{self._node_ip(node_id)}/{node_id[:6]}:{pid}"
        st = self.stats.setdefault(label, WorkerStats())
        st.finished += 1
        st.seconds += secs
        if pid not in st.pids:
            st.pids.append(pid)
        self._finished(task, Done(task.ticket, float(acc), label, float(secs)))
        self.on_event("finished", label, task.key, {"accuracy": acc, "seconds": secs, "background": task.background})

    def _lost(self, task: Task, how: str) -> None:
        task.attempts += 1
        self.lost.failed += 1
        self.deaths.append({"worker": "ray", "arch": task.key, "how": how})
        again = task.attempts <= self.retries
        self.on_event("died", "ray worker", task.key, {"how": how, "attempt": task.attempts, "retries": self.retries,
                                                     "again": again, "background": task.background})
        if again:
            (self._background if task.background else self._queue).appendleft(task)
            return
        err = PlaidError(f"{task.key}: its Ray worker was lost {task.attempts} times (last: {how}); "
                         "stopping here, every training that finished is in the journal")
        if task.background:
            self._results[task.ticket] = err
        else:
            raise err

    def _node_ip(self, node_id: str) -> str:
        if node_id not in self._ips:  # a node that joined since
            self._ips.update({n["NodeID"]: n["NodeManagerAddress"] for n in self.ray.nodes()})
        return self._ips.get(node_id, "?")

    def _by_node(self) -> dict[str, WorkerStats]:
        """The per-process tallies summed per node (``ip/node``)."""
        out: dict[str, WorkerStats] = {}
        for label, st in self.stats.items():
            node = label.rsplit(":", 1)[0]
            agg = out.setdefault(node, WorkerStats())
            agg.finished += st.finished
            agg.failed += st.failed
            agg.seconds += st.seconds
            agg.pids.extend(st.pids)
        return out
