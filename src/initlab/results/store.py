"""The results store of one experiment: ``RUN_DIR/results.sqlite`` plus atomic side files.

SQLite in WAL mode, ``synchronous=FULL``, one transaction per write: a process killed at any
moment leaves a store that opens, holding every write that returned. Tables:

* ``schema_version``: one row; older stores are upgraded by :data:`MIGRATIONS` on open.
* ``meta``: experiment-level JSON values. Conventional keys (written by the trainer side,
  read by the report): ``config`` (resolved experiment config), ``environment`` (initlab,
  torch, python versions, device, seed, ... as strings/numbers), ``name``, ``diagnosis``
  (list of plain-text lines).
* ``runs``: one row per :class:`RunRecord`, keyed by ``RunRecord.key`` (hash of its config).
* ``metrics``: one row per point of every :class:`MetricSeries` (NaN is stored as NULL).
* ``summaries``: the last :class:`InitSummary` list written, in order.
* ``probes``: plain probe records (dataclasses) as JSON, tagged with their class name.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import platform
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from initlab.atomic import atomic_write_json
from initlab.errors import DataError
from initlab.results import probe_records
from initlab.results.records import InitSummary, MetricSeries, RunRecord
from initlab.results.summary import summary_from_dict, summary_json
from initlab.runspec import RunSpec

DB_NAME = "results.sqlite"
CONFIG_NAME = "config.json"
SUMMARY_NAME = "summary.json"
SCHEMA_VERSION = 1
# Statuses of runs that need no more training: rerunning the command reuses them.
DONE_STATUSES = frozenset({"finished", "diverged", "stopped"})

# MIGRATIONS[v] upgrades a store from schema v to v + 1 inside the open transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY, init TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,
    config TEXT NOT NULL, scalars TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    run_key TEXT NOT NULL REFERENCES runs(key) ON DELETE CASCADE, name TEXT NOT NULL,
    idx INTEGER NOT NULL, step INTEGER NOT NULL, value REAL,
    PRIMARY KEY (run_key, name, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summaries (
    position INTEGER PRIMARY KEY, init TEXT NOT NULL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS probes (
    id INTEGER PRIMARY KEY, run_key TEXT, kind TEXT NOT NULL, record TEXT NOT NULL);
"""
_SCALARS = (
    "final_train_loss",
    "test_accuracy",
    "test_loss",
    "steps_to_target",
    "diverged_step",
    "wall_time",
    "error",
    "val_loss",
    "val_accuracy",
    "stopped_step",
    "best_step",
)


class Store:
    """An open results store. Use :meth:`Store.open`; close it (or use ``with``) when done.

    >>> import tempfile
    >>> with Store.open(tempfile.mkdtemp()) as store:
    ...     store.put_meta("name", "demo")
    ...     store.get_meta("name")
    'demo'
    """

    def __init__(self, run_dir: Path, conn: sqlite3.Connection) -> None:
        self.run_dir = run_dir
        self._conn = conn

    @classmethod
    def open(cls, run_dir: str | Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, make) the store in ``run_dir``, migrating old schemas."""
        run_dir = Path(run_dir)
        db = run_dir / DB_NAME
        if not create and not db.is_file():
            raise DataError(
                f"No results store at '{db}'; run an experiment with --out {run_dir} first."
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own explicit transaction.
        conn = sqlite3.connect(db, isolation_level=None, timeout=60.0)
        try:
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(run_dir, conn)
            store._ensure_schema()
        except sqlite3.DatabaseError as e:
            conn.close()
            raise DataError(f"'{db}' is not a readable initlab results store ({e}).") from e
        except BaseException:
            conn.close()
            raise
        return store

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self.run_dir / DB_NAME

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on last close)."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue instead of failing.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        # Fast path without the write lock: readers of a current store never queue on writers.
        known = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ).fetchone()
        if known is not None and self.schema_version() == SCHEMA_VERSION:
            return
        with self._tx() as c:
            # executescript() would commit the open transaction, so run statement by statement.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            row = c.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                c.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                return
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise DataError(
                    f"'{self.path}' has schema version {version}, newer than this initlab's "
                    f"{SCHEMA_VERSION}; upgrade initlab to read it."
                )
            for v in range(version, SCHEMA_VERSION):
                MIGRATIONS[v](c)
            c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        return int(self._conn.execute("SELECT version FROM schema_version").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a healthy file."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- experiment-level metadata -------------------------------------------------------

    def put_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serializable value under ``key`` (replacing any previous one)."""
        blob = json.dumps(value, sort_keys=False)
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, blob))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, Any]:
        """Every meta value, by key (sorted)."""
        rows = self._conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def write_config(self, config: dict[str, Any]) -> Path:
        """Record the resolved experiment config in ``meta`` and as ``config.json``."""
        self.put_meta("config", config)
        return atomic_write_json(self.run_dir / CONFIG_NAME, config)

    def checkpoint_path(self, key: str) -> Path:
        """Where the checkpoint of run ``key`` lives (written with ``atomic_write_bytes``)."""
        return self.run_dir / "checkpoints" / f"{key}.safetensors"

    # -- runs and metrics ----------------------------------------------------------------

    def put_run(self, record: RunRecord) -> str:
        """Insert or replace one run and all its metrics in ONE transaction; return its key."""
        key = record.key
        cfg = record.config
        scalars = {name: getattr(record, name) for name in _SCALARS}
        rows = [
            (key, name, i, step, _to_sql(value))
            for name, series in record.metrics.items()
            for i, (step, value) in enumerate(zip(series.steps, series.values, strict=True))
        ]
        with self._tx() as c:
            # Upsert keeps the original rowid, so runs() keeps first-insertion order.
            c.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "init=excluded.init, seed=excluded.seed, status=excluded.status, "
                "config=excluded.config, scalars=excluded.scalars",
                (
                    key,
                    cfg.init,
                    int(cfg.seed),
                    record.status,
                    json.dumps(cfg.to_dict(), sort_keys=True),
                    json.dumps(scalars, sort_keys=True),
                ),
            )
            c.execute("DELETE FROM metrics WHERE run_key = ?", (key,))
            c.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        return key

    def get_run(self, key: str) -> RunRecord | None:
        """The run stored under ``key``, or None."""
        found = self._load_runs("WHERE key = ?", (key,))
        return found[0] if found else None

    def runs(self, status: str | None = None) -> list[RunRecord]:
        """Every stored run (optionally only those with ``status``), in insertion order."""
        if status is None:
            return self._load_runs("", ())
        return self._load_runs("WHERE status = ?", (status,))

    def configs(self) -> list[RunSpec]:
        """Every stored run's spec, in insertion order, without its metric points (what a
        look at which runs a folder holds needs; ``runs()`` reads every point too)."""
        rows = self._conn.execute("SELECT config FROM runs ORDER BY rowid")
        return [RunSpec.from_dict(json.loads(config)) for (config,) in rows]

    def finished_keys(self) -> set[str]:
        """Keys of runs that need no more training (status in :data:`DONE_STATUSES`)."""
        marks = ",".join("?" * len(DONE_STATUSES))
        rows = self._conn.execute(
            f"SELECT key FROM runs WHERE status IN ({marks})", sorted(DONE_STATUSES)
        )
        return {r[0] for r in rows}

    def _load_runs(self, where: str, args: Sequence[Any]) -> list[RunRecord]:
        rows = self._conn.execute(
            f"SELECT key, status, config, scalars FROM runs {where} ORDER BY rowid", args
        ).fetchall()
        if not rows:
            return []
        metrics: dict[str, dict[str, MetricSeries]] = {r[0]: {} for r in rows}
        # only the selected runs' points (the primary key makes this a range scan); reading
        # every run's points for one get_run made compare's 25 look-ups cost 2 s at 2,000 steps
        points = self._conn.execute(
            "SELECT run_key, name, step, value FROM metrics WHERE run_key IN "
            f"(SELECT key FROM runs {where}) ORDER BY run_key, name, idx",
            args,
        )
        for run_key, name, step, value in points:
            if run_key in metrics:
                series = metrics[run_key].setdefault(name, MetricSeries(name))
                series.steps.append(int(step))
                series.values.append(math.nan if value is None else float(value))
        records = []
        for key, status, config, scalars in rows:
            record = RunRecord(
                config=RunSpec.from_dict(json.loads(config)),
                status=status,
                metrics=metrics[key],
                **json.loads(scalars),
            )
            records.append(record)
        return records

    # -- summaries -----------------------------------------------------------------------

    def put_summaries(self, summaries: Sequence[InitSummary]) -> Path:
        """Replace the stored summaries (one transaction) and write ``summary.json``."""
        with self._tx() as c:
            c.execute("DELETE FROM summaries")
            c.executemany(
                "INSERT INTO summaries VALUES (?, ?, ?)",
                [(i, s.init, json.dumps(s.to_dict())) for i, s in enumerate(summaries)],
            )
        return atomic_write_json(self.run_dir / SUMMARY_NAME, summary_json(summaries))

    def summaries(self) -> list[InitSummary]:
        """The summaries last written by :meth:`put_summaries`, in order."""
        rows = self._conn.execute("SELECT summary FROM summaries ORDER BY position")
        return [summary_from_dict(json.loads(r[0])) for r in rows]

    # -- probe records -------------------------------------------------------------------

    def put_probe(self, record: Any, run_key: str | None = None) -> None:
        """Store one plain probe record (a dataclass) for run ``run_key`` (None: experiment)."""
        if not dataclasses.is_dataclass(record) or isinstance(record, type):
            raise TypeError(f"put_probe takes a dataclass instance, got {type(record).__name__}")
        self.put_probes([record], run_key)

    def put_probes(self, records: Iterable[Any], run_key: str | None = None) -> None:
        """Store several probe records in one transaction."""
        rows = [
            (run_key, type(r).__name__, json.dumps(dataclasses.asdict(r), sort_keys=True))
            for r in records
        ]
        with self._tx() as c:
            c.executemany("INSERT INTO probes (run_key, kind, record) VALUES (?, ?, ?)", rows)

    def probes(self, run_key: str | None = None, kind: str | None = None) -> list[Any]:
        """Probe records in insertion order, rebuilt as their dataclass when its class is
        found in ``initlab.results.probe_records``, else as ``{"kind": ..., **fields}``."""
        sql, args = "SELECT run_key, kind, record FROM probes WHERE 1=1", []
        if run_key is not None:
            sql, args = sql + " AND run_key = ?", [*args, run_key]
        if kind is not None:
            sql, args = sql + " AND kind = ?", [*args, kind]
        rows = self._conn.execute(sql + " ORDER BY id", args)
        return [_rebuild_probe(k, json.loads(r)) for _, k, r in rows]


def _enable_wal(conn: sqlite3.Connection, patience_s: float = 60.0) -> None:
    # WAL is a property of the file, so only the first opener switches it. Switching needs an
    # exclusive lock and SQLite does not wait for it (no busy handler), so several processes
    # opening a fresh store at once retry here instead of failing with "database is locked".
    deadline = time.monotonic() + patience_s
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return  # filesystems without shared memory answer "delete": still transactional
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _to_sql(value: float) -> float | None:
    # SQLite turns NaN into NULL anyway; doing it here makes the rule explicit.
    value = float(value)
    return None if math.isnan(value) else value


def _rebuild_probe(kind: str, fields: dict[str, Any]) -> Any:
    cls = getattr(probe_records, kind, None)
    if cls is None or not dataclasses.is_dataclass(cls):
        return {"kind": kind, **fields}
    from_dict = getattr(cls, "from_dict", None)
    return from_dict(fields) if callable(from_dict) else cls(**fields)


def describe_environment(torch_version: str, device: str, **extra: Any) -> dict[str, Any]:
    """The ``environment`` meta value: initlab, torch, Python versions, platform, device.

    The caller passes ``torch.__version__`` as a string: this module never imports torch.
    """
    env: dict[str, Any] = {
        "initlab": _initlab_version(),
        "torch": str(torch_version),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
    }
    env.update(extra)
    return env


def _initlab_version() -> str:
    # Read from package metadata: importing the root package could pull in torch.
    try:
        return importlib.metadata.version("initlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
