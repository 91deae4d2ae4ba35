"""One latency table per SQLite file, identified by target + runtime + settings + device.

Each `put` is its own committed transaction (WAL, `synchronous=FULL`): a build killed at
any moment keeps every finished entry. Tables of another identity are never mixed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from plaid.errors import PlaidError, UsageError
from plaid.fsio import fsync_dir
from plaid.lut.latency import Latency

EXPORT_FIELDS = ("key", "median_ms", "p90_ms", "std_ms", "cv", "runs", "measured_at", "kind")
_ROW_COLUMNS = "key TEXT PRIMARY KEY, median_ms REAL, p90_ms REAL, std_ms REAL, runs INTEGER, " \
               "measured_at TEXT, extra TEXT"
_TABLES = ("meta", "units", "e2e", "calibration")
_DDL = f"""PRAGMA synchronous=FULL; BEGIN;
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT); CREATE TABLE units({_ROW_COLUMNS});
CREATE TABLE e2e({_ROW_COLUMNS}); CREATE TABLE calibration(k TEXT PRIMARY KEY, v TEXT);"""
_MAGIC = b"SQLite format 3\x00"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where `a` and `b` differ, as 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            path = f"{prefix}.{k}" if prefix else str(k)
            out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), path)
        return out
    return [] if _canonical(a) == _canonical(b) else [f"{prefix}: {a} != {b}"]


@dataclass(frozen=True)
class TableMeta:
    """What a table was measured on and how; all but `space` make up its identity."""

    target: str
    runtime: str
    runtime_version: str
    settings: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)
    space: str = ""

    def identity(self) -> dict:
        """Everything except `space`, normalised through JSON."""
        ident = {"target": self.target, "runtime": self.runtime,
                 "runtime_version": self.runtime_version,
                 "settings": self.settings, "fingerprint": self.fingerprint}
        try:
            return json.loads(_canonical(ident))
        except (TypeError, ValueError) as e:
            raise UsageError(f"latency table meta is not JSON-serialisable: {e}") from None

    def name(self) -> str:
        """Readable, versioned name, e.g. 'host-tflite-ai_edge_litert_2.1.0-t1-3fa9c2'."""
        parts = [_slug(self.target), _slug(self.runtime), _slug(self.runtime_version)]
        if "threads" in self.settings:
            parts.append(f"t{_slug(str(self.settings['threads']))}")
        parts.append(hashlib.sha256(_canonical(self.identity()).encode()).hexdigest()[:6])
        return "-".join(p for p in parts if p)

    def to_json(self) -> dict:
        return {**self.identity(), "space": self.space}

    @classmethod
    def from_json(cls, d: dict) -> TableMeta:
        return cls(d["target"], d["runtime"], d["runtime_version"], d.get("settings", {}),
                   d.get("fingerprint", {}), d.get("space", ""))


class LatencyTable:
    """A latency table in one SQLite file: unit entries, end-to-end entries, calibration."""

    SCHEMA = "plaid.lut/1"

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: TableMeta) -> None:
        self.path, self._conn, self._meta = path, conn, meta

    @property
    def meta(self) -> TableMeta:
        return self._meta

    @classmethod
    def open(cls, path: str | os.PathLike, meta: TableMeta | None = None,
             create: bool = False) -> LatencyTable:
        """Open the table at `path`, creating it when `create` and `meta` are given."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise UsageError(f"no latency table at {path} (build one first)")
            if meta is None:
                raise UsageError(f"cannot create latency table {path} without its TableMeta")
            cls._create(path, meta)
        if not path.is_file():
            raise UsageError(f"{path} is not a file, so not a latency table")
        conn, stored = cls._connect(path)
        if meta is not None and _canonical(meta.identity()) != _canonical(stored.identity()):
            conn.close()
            diffs = _diff(stored.identity(), meta.identity())
            raise UsageError(f"latency table {path} was measured with other settings or on another "
                             f"device (table vs requested: {'; '.join(diffs[:3])}); "
                             "refusing to mix, use another table")
        return cls(path, conn, stored)

    @classmethod
    def _create(cls, path: Path, meta: TableMeta) -> None:
        """Build the file in a temp file next to `path`, then move it in place atomically."""
        meta_json = _canonical(meta.to_json())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
                conn.executescript(_DDL)  # synchronous=FULL: COMMIT below syncs the file
                conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("schema", cls.SCHEMA), ("meta", meta_json), ("created_at", _now())])
                conn.execute("COMMIT")
            try:  # no-clobber: a table created meanwhile by another process wins
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # filesystem without hard links
                os.replace(tmp, path)
            fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def _connect(cls, path: Path) -> tuple[sqlite3.Connection, TableMeta]:
        """Connect, check integrity and schema, then switch to WAL; errors are one line."""
        _check_header(path)
        try:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=rw", uri=True,
                                   isolation_level=None, timeout=30.0)
            try:
                return conn, cls._verify(conn, path)
            except BaseException:
                conn.close()
                raise
        except sqlite3.DatabaseError as e:
            what = "not an SQLite database" if "not a database" in str(e) else f"unreadable ({e})"
            raise PlaidError(f"latency table {path}: {what}") from None

    @classmethod
    def _verify(cls, conn: sqlite3.Connection, path: Path) -> TableMeta:
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise PlaidError(f"latency table {path} is corrupted (quick_check: {check[0][0]})")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        try:
            kv = dict(conn.execute("SELECT k, v FROM meta").fetchall())
        except sqlite3.OperationalError:  # no meta table, or not ours
            kv = {}
        if "schema" not in kv:
            raise PlaidError(f"{path} is an SQLite database but not a plaid latency table")
        if kv["schema"] != cls.SCHEMA:
            raise PlaidError(f"{path} has schema {kv['schema']!r}, this plaid reads {cls.SCHEMA!r}")
        missing = [t for t in _TABLES if t not in names]
        if missing:
            raise PlaidError(f"latency table {path} lacks table(s) {', '.join(missing)}")
        try:
            stored = TableMeta.from_json(json.loads(kv["meta"]))
        except (KeyError, TypeError, ValueError) as e:
            raise PlaidError(f"latency table {path} has unreadable meta ({e!r})") from None
        _check_rows(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return stored

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:  # autocommit: 1 write, 1 commit
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise PlaidError(f"latency table {self.path}: {e}") from None

    def _put(self, table: str, key: str, lat: Latency, extra: dict | None) -> None:
        if not isinstance(key, str) or not key:
            raise UsageError(f"latency table key must be a non-empty string, got {key!r}")
        values = (lat.median_ms, lat.p90_ms, lat.std_ms)
        if not all(math.isfinite(v) and v >= 0 for v in values) or lat.runs < 0:
            raise PlaidError(f"refusing to store a bad latency for {key}: {lat}")
        row = (key, *values, int(lat.runs), _now(), _canonical(extra or {}))
        self._q(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)", row)

    def _rows(self, table: str, key: str | None = None) -> list[tuple]:
        sql = f"SELECT key, median_ms, p90_ms, std_ms, runs, measured_at, extra FROM {table}"
        return self._q(sql + " WHERE key = ?", (key,)) if key is not None \
            else self._q(sql + " ORDER BY key")

    def _get(self, table: str, key: str) -> Latency | None:
        rows = self._rows(table, key)
        return Latency(*rows[0][1:5]) if rows else None

    def _items(self, table: str) -> list[tuple[str, Latency, dict]]:
        return [(r[0], Latency(*r[1:5]), json.loads(r[6] or "{}")) for r in self._rows(table)]

    def put(self, key: str, lat: Latency, extra: dict | None = None) -> None:
        """Store (or replace) the latency of unit `key`, committed before returning."""
        self._put("units", key, lat, extra)

    def get(self, key: str) -> Latency | None:
        return self._get("units", key)

    def keys(self) -> set[str]:
        return {r[0] for r in self._q("SELECT key FROM units")}

    def __contains__(self, key: object) -> bool:
        return bool(self._q("SELECT 1 FROM units WHERE key = ?", (key,)))

    def __len__(self) -> int:
        return self._q("SELECT COUNT(*) FROM units")[0][0]

    def items(self) -> list[tuple[str, Latency, dict]]:
        """(key, latency, extra) for every unit, sorted by key."""
        return self._items("units")

    def put_e2e(self, key: str, lat: Latency, extra: dict | None = None) -> None:
        """Store an end-to-end measurement of a whole architecture (key: its arch string)."""
        self._put("e2e", key, lat, extra)

    def get_e2e(self, key: str) -> Latency | None:
        return self._get("e2e", key)

    def e2e_items(self) -> list[tuple[str, Latency, dict]]:
        return self._items("e2e")

    def set_calibration(self, name: str, value: dict) -> None:
        """Store fitted predictor parameters under `name` (JSON)."""
        self._q("INSERT OR REPLACE INTO calibration VALUES (?, ?)", (name, _canonical(value)))

    def get_calibration(self, name: str) -> dict | None:
        rows = self._q("SELECT v FROM calibration WHERE k = ?", (name,))
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LatencyTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LatencyTable({str(self.path)!r}, name={self._meta.name()!r})"


def export_rows(table: LatencyTable, info: bool = False) -> list[dict]:
    """Every unit then every e2e entry as flat dicts with the EXPORT_FIELDS keys (and with
    ``info``, what the measurement recorded besides the times: temperatures, the runtime's
    per-layer profile, ...)."""
    out = []
    for kind, name in (("unit", "units"), ("e2e", "e2e")):
        for key, med, p90, std, runs, measured_at, extra in table._rows(name):
            lat = Latency(med, p90, std, runs)
            row = {"key": key, **lat.to_json(), "measured_at": measured_at, "kind": kind}
            if info:
                row["info"] = json.loads(extra or "{}")
            out.append(row)
    return out


def write_csv(rows: list[dict], fh: IO[str]) -> None:
    """Rows from `export_rows` as CSV with a header line."""
    writer = csv.DictWriter(fh, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_json(rows: list[dict], fh: IO[str], meta: TableMeta | None = None) -> None:
    """Rows as a JSON document, with the table's name and meta when given."""
    doc = {"schema": LatencyTable.SCHEMA, "name": meta.name() if meta else None,
           "meta": meta.to_json() if meta else None, "rows": rows}
    json.dump(doc, fh, indent=2)
    fh.write("\n")


def _bad_value(col: str, v: Any) -> str | None:
    """Why `v` cannot be column `col` of a latency row, or None when it can."""
    if col == "runs":
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
        return None if ok else f"runs must be a whole number >= 0, got {v!r}"
    if col == "extra":
        if v is None or v == "":
            return None
        try:
            ok = isinstance(v, str) and isinstance(json.loads(v), dict)
        except ValueError:
            ok = False
        return None if ok else f"extra must be a JSON object, got {str(v)[:40]!r}"
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    return None if ok else f"{col} must be a finite number >= 0, got {str(v)[:40]!r}"


def _check_rows(conn: sqlite3.Connection, path: Path) -> None:
    """Every stored row readable, so a hand-edited or damaged table fails on open in one line
    naming the row, not later in the middle of a search."""
    cols = ("median_ms", "p90_ms", "std_ms", "runs", "extra")
    for table in ("units", "e2e"):
        for key, *values in conn.execute(f"SELECT key, {', '.join(cols)} FROM {table}"):
            if not isinstance(key, str) or not key:
                raise PlaidError(f"latency table {path}: {table} has a row whose key is {key!r}, not a name "
                                 "(edited or damaged; rebuild the table or delete the row)")
            for col, v in zip(cols, values):
                why = _bad_value(col, v)
                if why is not None:
                    raise PlaidError(f"latency table {path}: {table} row {str(key)[:80]!r}: {why} "
                                     "(edited or damaged; rebuild the table or delete the row)")
    for k, v in conn.execute("SELECT k, v FROM calibration"):
        try:
            json.loads(v)
        except (TypeError, ValueError):
            raise PlaidError(f"latency table {path}: calibration {str(k)[:80]!r} is not JSON "
                             "(edited or damaged; rebuild the table or delete the row)") from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_header(path: Path) -> None:
    """Refuse empty, non-SQLite and truncated files from the header, before SQLite reads them.

    SQLite zero-fills reads past the end of a file, so a file cut inside its last page can
    pass `quick_check` yet hold damaged rows; the header's page count shows the cut.
    """
    with open(path, "rb") as fh:
        head, size = fh.read(100), os.fstat(fh.fileno()).st_size
    if size == 0:
        raise PlaidError(f"{path} is empty, not a latency table")
    if head[:16] != _MAGIC:
        what = "truncated" if _MAGIC.startswith(head) else "not an SQLite database"
        raise PlaidError(f"latency table {path}: {what}")
    raw = int.from_bytes(head[16:18], "big") if len(head) == 100 else 0
    page, pages = (65536 if raw == 1 else raw), int.from_bytes(head[28:32], "big")
    if page < 512 or page & (page - 1):
        raise PlaidError(f"latency table {path}: truncated or corrupted header ({size} bytes)")
    wal = Path(f"{path}-wal")
    if head[24:28] != head[92:96] or (wal.exists() and wal.stat().st_size > 0):
        return  # header size not authoritative, or a WAL to recover from: SQLite decides
    if size % page or size < pages * page:
        raise PlaidError(f"latency table {path}: truncated ({size} bytes, header says "
                         f"{pages} pages of {page})")
