"""The search journal: SQLite, one row per trained candidate, committed (one atomic INSERT,
WAL, ``synchronous=FULL``) the moment it finishes. A resumed search with the same config
replays the rows instead of retraining, so ``kill -9`` loses at most the candidates in
flight.

A row holds the candidate's place in *finishing* order (``idx``) and in *submission* order
(``sub``; the same with one training in flight), its role and seed offset, the worker that
trained it and how long it took. With k trainings in flight the engine's picks depend only
on the order results arrived in, so replaying the rows in ``idx`` order rebuilds the run
exactly; what was submitted but never finished (in flight at the kill) is picked again at
the same place and trained anew. Journals written before these columns existed are
extended in place (their rows read as ``sub = idx``)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plaid.errors import PlaidError, UsageError

SCHEMA = "plaid.journal/1"
# columns added since the first journals (ALTER TABLE on open; NULL in older rows)
EXTRA_COLUMNS = (("sub", "INTEGER"), ("role", "TEXT"), ("seed", "INTEGER"), ("worker", "TEXT"), ("seconds", "REAL"))


@dataclass(frozen=True)
class Row:
    idx: int  # finishing order
    key: str
    accuracy: float
    sub: int  # submission order
    role: str | None = None
    seed: int | None = None
    worker: str | None = None
    seconds: float | None = None


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_digest(config: dict) -> str:
    """sha256 of the canonical JSON of a run's identity (its resolved config, budget aside)."""
    return hashlib.sha256(_canonical(config).encode("utf-8")).hexdigest()


class Journal:
    def __init__(self, path: Path, conn: sqlite3.Connection, config: dict) -> None:
        self.path, self._conn, self.config = path, conn, config
        self._rows: dict[int, Row] = {}
        for idx, key, acc, sub, role, seed, worker, secs in conn.execute(
                "SELECT idx, key, accuracy, sub, role, seed, worker, seconds FROM trained"):
            self._rows[idx] = Row(idx, key, float(acc), idx if sub is None else int(sub), role, seed, worker, secs)
        self._subs = {r.sub: r for r in self._rows.values()}

    @classmethod
    def open(cls, path: str | Path, config: dict, create: bool = True) -> "Journal":
        """Open the journal for ``config``, creating it when ``create``. Refused (one line):
        a journal of another config, a file that is not a plaid journal, and, when not
        ``create``, a journal that is missing or empty."""
        path = Path(path)
        if not create and not path.is_file():
            raise UsageError(f"no search journal at {path}: the run cannot be resumed (start a new run)")
        if not create and path.stat().st_size == 0:
            raise UsageError(f"search journal {path} is empty: the run cannot be resumed (start a new run)")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = None
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and not {"meta", "trained"} <= tables:
                raise UsageError(f"{path} is not a plaid search journal (it holds other tables)")
            if not tables and not create:
                raise UsageError(f"search journal {path} is empty: the run cannot be resumed (start a new run)")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS trained (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, "
                         "arch TEXT, latency REAL NOT NULL, accuracy REAL NOT NULL, at TEXT NOT NULL)")
            have = {name for _, name, *_ in conn.execute("PRAGMA table_info(trained)")}
            for name, kind in EXTRA_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE trained ADD COLUMN {name} {kind}")
            stored = dict(conn.execute("SELECT k, v FROM meta"))
            if not stored and create:
                conn.execute("INSERT INTO meta VALUES ('schema', ?), ('config', ?), ('digest', ?)",
                             (SCHEMA, _canonical(config), config_digest(config)))
            conn.execute("COMMIT")
            if not stored and not create:
                raise UsageError(f"search journal {path} is empty: the run cannot be resumed (start a new run)")
            if stored:
                cls._check(path, stored, config)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise UsageError(f"{path} is not a usable search journal: {exc}") from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(path, conn, config)

    @staticmethod
    def _check(path: Path, stored: dict, config: dict) -> None:
        if stored.get("schema") != SCHEMA or "config" not in stored:
            raise UsageError(f"{path} is not a plaid search journal")
        try:
            old = json.loads(stored["config"])
        except json.JSONDecodeError:
            raise UsageError(f"{path}: its recorded config is unreadable") from None
        if not isinstance(old, dict):
            raise UsageError(f"{path}: its recorded config is unreadable")
        want = config_digest(config)
        if config_digest(old) != want or stored.get("digest", want) != want:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            detail = ", ".join(f"{k}: {old.get(k)!r} != {config.get(k)!r}" for k in diff[:3]) or "digest differs"
            raise UsageError(f"search journal {path} belongs to a run with other inputs ({detail}); "
                             "resume it with the same options or start a new run")

    def replay(self, index: int, key: str) -> float | None:
        """The accuracy recorded as the ``index``-th finished training, checked to be
        ``key``; None when there is none."""
        row = self._rows.get(index)
        if row is None:
            return None
        if row.key != key:
            raise self.diverged(index, row.key, key)
        return row.accuracy

    def row(self, index: int) -> Row | None:
        """The ``index``-th finished training (finishing order), or None."""
        return self._rows.get(index)

    def submitted(self, sub: int) -> Row | None:
        """The finished training that was the ``sub``-th submitted, or None."""
        return self._subs.get(sub)

    def diverged(self, index: int, recorded: str, now: str) -> PlaidError:
        return PlaidError(f"journal {self.path} entry #{index} trained {recorded} but the search now picks {now}: "
                          "its inputs changed; start a new run")

    def record(self, ev, sub: int | None = None) -> None:
        """Commit a finished training (an :class:`~plaid.search.engine.Evaluated`) that
        was the ``sub``-th submitted (default: its finishing place)."""
        sub = ev.index if sub is None else int(sub)
        worker, secs = getattr(ev, "worker", None) or None, getattr(ev, "seconds", None)
        try:
            self._conn.execute("INSERT INTO trained (idx, key, arch, latency, accuracy, at, sub, role, seed, worker, "
                               "seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (ev.index, ev.key, ev.key, ev.latency, ev.accuracy,
                                datetime.now(timezone.utc).isoformat(timespec="seconds"), sub, ev.role, ev.seed,
                                worker, secs))
        except sqlite3.DatabaseError as exc:
            raise PlaidError(f"cannot write search journal {self.path}: {exc}") from None
        row = Row(ev.index, ev.key, float(ev.accuracy), sub, ev.role, ev.seed, worker, secs)
        self._rows[ev.index] = self._subs[sub] = row

    def __len__(self) -> int:
        return len(self._rows)

    def entries(self) -> list[tuple[int, str, float, float]]:
        return list(self._conn.execute("SELECT idx, key, latency, accuracy FROM trained ORDER BY idx"))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
