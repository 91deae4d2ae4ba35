"""The search journal: SQLite, one row per trained candidate, committed the moment it
finishes. A resumed search with the same config replays the rows instead of retraining
(the engine is deterministic for a seed), so ``kill -9`` loses at most the candidates in
flight."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plaid.errors import PlaidError, UsageError

SCHEMA = "plaid.journal/1"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class Journal:
    def __init__(self, path: Path, conn: sqlite3.Connection, config: dict) -> None:
        self.path, self._conn, self.config = path, conn, config
        self._rows = {i: (k, a) for i, k, a in conn.execute("SELECT idx, key, accuracy FROM trained")}

    @classmethod
    def open(cls, path: str | Path, config: dict, create: bool = True) -> "Journal":
        """Open (or create) the journal for ``config``; a journal of another config is refused."""
        path = Path(path)
        if not path.exists() and not create:
            raise UsageError(f"no search journal at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS trained (idx INTEGER PRIMARY KEY, key TEXT NOT NULL, "
                         "arch TEXT, latency REAL NOT NULL, accuracy REAL NOT NULL, at TEXT NOT NULL)")
            stored = dict(conn.execute("SELECT k, v FROM meta"))
            if not stored:
                conn.execute("INSERT INTO meta VALUES ('schema', ?), ('config', ?)", (SCHEMA, _canonical(config)))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise PlaidError(f"{path} is not a usable search journal: {exc}") from None
        if stored:
            if stored.get("schema") != SCHEMA:
                conn.close()
                raise PlaidError(f"{path} is not a plaid search journal")
            old = json.loads(stored["config"])
            if _canonical(old) != _canonical(config):
                conn.close()
                diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise UsageError(f"search journal {path} belongs to a run with other inputs "
                                 f"({', '.join(f'{k}: {old.get(k)!r} != {config.get(k)!r}' for k in diff[:3])}); "
                                 "resume it with the same options or start a new run")
        return cls(path, conn, config)

    def replay(self, index: int, key: str) -> float | None:
        row = self._rows.get(index)
        if row is None:
            return None
        if row[0] != key:
            raise PlaidError(f"journal {self.path} entry #{index} trained {row[0]} but the search now picks {key}: "
                             "its inputs changed; start a new run")
        return float(row[1])

    def record(self, ev) -> None:
        try:
            self._conn.execute("INSERT INTO trained VALUES (?, ?, ?, ?, ?, ?)",
                               (ev.index, ev.key, ev.key, ev.latency, ev.accuracy,
                                datetime.now(timezone.utc).isoformat(timespec="seconds")))
        except sqlite3.DatabaseError as exc:
            raise PlaidError(f"cannot write search journal {self.path}: {exc}") from None
        self._rows[ev.index] = (ev.key, ev.accuracy)

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
