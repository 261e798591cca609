"""The run store: every run's config, status, progress, errors and a worker's liveness, in one
embedded SQLite database (WAL mode) shared by the app, the CLI and the workers. Run state changes
only through the intent-named methods here (claim, mark succeeded / failed / cancelled, ...).

Source of truth: a run's folder (``RunDir``) is the record of its epochs and results
(metrics.jsonl, final.json); the CLI's ``run`` writes only those. The store indexes them for the
app and ``jobs``: the worker copies each epoch line and the final summary into it right after
writing the file, so queries never parse run folders."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path

from .config import ExperimentConfig
from .errors import RunNotFoundError, RunStateError, StoreError
from .faults import fault_point
from .runs import RunsRoot


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED, Status.RUNNING)
RESUMABLE = (Status.FAILED, Status.CANCELLED)
Placer = Callable[[ExperimentConfig, list[int]], "int | None"]  # (config, GPUs in use) -> GPU for it
SHAREABLE = (Status.QUEUED, Status.RUNNING, Status.SUCCEEDED)  # a new request for the same config joins these
LOCK_TIMEOUT_S = 30.0  # how long a call waits for another process's write before giving up


def _status_in(statuses: tuple[Status, ...]) -> tuple[str, list[str]]:
    """An SQL condition "the run's status is one of ``statuses``" and its parameters."""
    return f"status IN ({','.join('?' * len(statuses))})", [str(s) for s in statuses]


def _store_error(path: Path, err: sqlite3.Error) -> StoreError | None:
    """The user's side of an SQLite error on the store file: what is wrong and what to do. None for
    an error that is a bug (bad SQL, a constraint), which keeps its traceback."""
    text = str(err).lower()
    elsewhere = "or choose another runs folder (BD_RUNS_DIR, or the command's --runs-dir / --store)"
    if "locked" in text or "busy" in text:
        return StoreError(f"the run store {path} stayed locked by another process for over "
                          f"{LOCK_TIMEOUT_S:.0f} s; stop whatever holds it open for writing and try again")
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return StoreError(f"{path} is not a readable run store ({err}); move it aside, and a new "
                          f"one is made, {elsewhere}")
    if "full" in text:
        return StoreError(f"the disk holding the run store {path} is full; free some space and try again")
    if "readonly" in text or "unable to open" in text or "i/o" in text:
        return StoreError(f"the run store {path} cannot be opened for writing ({err}); check the "
                          f"folder's permissions, {elsewhere}")
    return None


def _same_config(stored: str, wanted: str) -> bool:
    """Whether a stored config is ``wanted`` (canonical JSON), read as today's code reads it: runs
    saved before a field existed count with the value they used."""
    if stored == wanted:
        return True
    try:
        return ExperimentConfig.from_dict(json.loads(stored)).to_json() == wanted
    except (ValueError, TypeError):  # a config this version cannot read is nobody's twin
        return False

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        status TEXT NOT NULL,
        config TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        stage TEXT,
        message TEXT,
        error TEXT,
        run_dir TEXT,
        pid INTEGER,
        heartbeat REAL,
        started REAL,
        finished REAL,
        final TEXT,
        teacher_reused INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_status ON runs(status, created);
    CREATE TABLE epochs (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stage TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        epochs INTEGER NOT NULL,
        train_loss REAL NOT NULL,
        test_acc REAL NOT NULL,
        lr REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (run_id, stage, epoch)
    );
    """,
    "ALTER TABLE runs ADD COLUMN gpu INTEGER",  # the GPU a running run was pinned to
    "ALTER TABLE runs ADD COLUMN procs INTEGER NOT NULL DEFAULT 1",  # processes its worker starts (torchrun)
]


@dataclass
class RunRecord:
    id: str
    created: float
    updated: float
    status: Status
    config: ExperimentConfig
    progress: float = 0.0
    stage: str | None = None
    message: str | None = None
    error: str | None = None
    run_dir: str | None = None
    pid: int | None = None
    heartbeat: float | None = None
    started: float | None = None
    finished: float | None = None
    final: dict | None = None
    teacher_reused: bool = False
    cancel_requested: bool = False
    attempts: int = 0
    gpu: int | None = None
    procs: int = 1

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in dict(row).items() if k in known}  # a newer version's columns are skipped
        data["status"] = Status(data["status"])
        data["config"] = ExperimentConfig.from_dict(json.loads(data["config"]))
        data["final"] = json.loads(data["final"]) if data["final"] else None
        data["teacher_reused"] = bool(data["teacher_reused"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)

    def summary(self) -> dict:
        """The JSON form `jobs list --json` prints."""
        final = self.final or {}
        return {"id": self.id, "status": str(self.status), "progress": round(self.progress, 4),
                "stage": self.stage, "labeled": self.config.labeled, "unlabeled": self.config.unlabeled,
                "teacher": self.config.teacher, "student": self.config.student,
                "teacher_acc": final.get("teacher_acc"), "blind_acc": final.get("blind_acc"),
                "finetune_acc": final.get("finetune_acc"), "teacher_reused": self.teacher_reused,
                "error": self.error, "run_dir": self.run_dir, "created": self.created, "gpu": self.gpu,
                "procs": self.procs}


class RunStore:
    """A thin, process-safe layer over the SQLite file; every call opens its own connection."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else RunsRoot.default().store_path
        self.root = RunsRoot.holding(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a file in the way, no permission, a read-only disk
            raise StoreError(f"cannot create the runs folder {self.path.parent} ({err.strerror}); choose "
                             "another with BD_RUNS_DIR or the command's --runs-dir / --store") from None
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            self._migrate(db, self.path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call. SQLite errors the user can act on (a damaged, locked or
        unwritable file, a full disk) leave as one ``StoreError``."""
        try:
            db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
            try:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA synchronous=NORMAL")
                yield db
            finally:
                db.close()
        except sqlite3.Error as err:
            user_error = _store_error(self.path, err)
            if user_error is None:
                raise
            raise user_error from err

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: one writer at a time across processes."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                fault_point("store.commit")  # crash tests: killed with the statements done, not committed
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
                    db.execute("ROLLBACK")
                raise

    @staticmethod
    def _migrate(db: sqlite3.Connection, path: Path) -> None:
        """Bring the schema up to date. The version is read inside the write lock: processes that
        open a new store at once migrate it once, one after another. Another program's SQLite
        database is refused rather than written into."""
        if db.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if version == 0 and tables:
                raise StoreError(f"{path} is another program's SQLite database (tables: "
                                 f"{', '.join(tables[:5])}), not a run store; move it aside or choose "
                                 "another runs folder (BD_RUNS_DIR, or the command's --runs-dir / --store)")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        with self._db() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    # reading

    def get(self, run_id: str) -> RunRecord:
        with self._db() as db:
            return self._current(db, run_id)

    def list(self, statuses: tuple[Status, ...] = tuple(Status)) -> list[RunRecord]:
        where, params = _status_in(statuses)
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE {where} ORDER BY created DESC", params).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    def change_stamp(self) -> tuple:
        """Changes whenever a run is added, removed or changes (an epoch, a status, a message), not
        on heartbeats: one aggregate query, for pages that redraw only when something changed.
        The third item is the number of queued and running runs."""
        active, params = _status_in(ACTIVE)
        with self._db() as db:
            return tuple(db.execute(f"SELECT COUNT(*), MAX(updated), TOTAL({active}), "
                                    "(SELECT COUNT(*) FROM epochs) FROM runs", params).fetchone())

    def epochs(self, run_ids: list[str] | None = None) -> list[dict]:
        with self._db() as db:
            if run_ids is None:
                rows = db.execute("SELECT * FROM epochs ORDER BY run_id, rowid").fetchall()
            else:
                marks = ",".join("?" * len(run_ids))
                rows = db.execute(f"SELECT * FROM epochs WHERE run_id IN ({marks}) ORDER BY run_id, rowid",
                                  run_ids).fetchall()
        return [dict(r) for r in rows]

    # the queue

    def add(self, config: ExperimentConfig, procs: int = 1) -> str:
        """Queue a run (its config validated here) to train in ``procs`` processes; returns its id."""
        config.validate()
        with self._transaction() as db:
            return self._insert(db, config, procs)

    def add_or_share(self, config: ExperimentConfig, procs: int = 1) -> tuple[str, bool]:
        """The newest queued, running or succeeded run whose config equals ``config`` (not one being
        cancelled), or a new queued run; returns (run id, shared). One transaction, so many callers
        at once share one run. A run trained in another number of processes is shared too: it
        trains on the same global batches, to the same results within noise (docs/distributed.md)."""
        config.validate()
        wanted = config.to_json()
        shareable, params = _status_in(SHAREABLE)
        with self._transaction() as db:
            rows = db.execute(f"SELECT id, config FROM runs WHERE {shareable} AND cancel_requested = 0 "
                              "ORDER BY created DESC", params).fetchall()
            for row in rows:
                if _same_config(row["config"], wanted):
                    return row["id"], True
            return self._insert(db, config, procs), False

    def claim_next(self, max_running: int, place: Placer | None = None) -> tuple[str, int | None] | None:
        """Mark the oldest queued run running and return (its id, its GPU), if fewer than
        ``max_running`` runs are running; None otherwise. ``place(config, gpus in use)`` chooses
        the GPU (None: no GPU). One transaction, so two callers never claim one run and never
        count the same free GPU slot twice."""
        with self._transaction() as db:
            running = db.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (Status.RUNNING,))
            if running.fetchone()[0] >= max_running:
                return None
            row = db.execute("SELECT id, config FROM runs WHERE status = ? ORDER BY created LIMIT 1",
                             (Status.QUEUED,)).fetchone()
            if row is None:
                return None
            gpu = None
            if place is not None:
                gpu = place(ExperimentConfig.from_dict(json.loads(row["config"])), self._gpus_in_use(db))
            now = time.time()
            db.execute("UPDATE runs SET status = ?, started = COALESCE(started, ?), heartbeat = ?, "
                       "updated = ?, attempts = attempts + 1, error = NULL, cancel_requested = 0, gpu = ? "
                       "WHERE id = ?", (Status.RUNNING, now, now, now, gpu, row["id"]))
        return row["id"], gpu

    def requeue(self, run_id: str) -> None:
        """Queue a failed or cancelled run again (it resumes from its last checkpoint)."""
        self._transition(run_id, RESUMABLE, "resumed", status=Status.QUEUED, error=None, finished=None,
                         cancel_requested=0)

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a queued run at once, or ask a running run's worker to stop (it marks the run
        cancelled itself). Returns the run as it was, so a caller can signal its worker."""
        with self._transaction() as db:
            record = self._current(db, run_id)
            if record.status == Status.QUEUED:
                self._update(db, run_id, {"status": Status.CANCELLED, "finished": time.time()})
            elif record.status == Status.RUNNING:
                self._update(db, run_id, {"cancel_requested": 1})
            else:
                raise RunStateError(f"run {run_id} is {record.status}; only queued or running runs "
                                    "can be cancelled")
        return record

    def delete(self, run_id: str) -> RunRecord:
        """Remove a run that is not active; returns what it was."""
        with self._transaction() as db:
            record = self._current(db, run_id)
            if record.status in ACTIVE:
                raise RunStateError(f"run {run_id} is {record.status}; cancel it before deleting")
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        return record

    # the worker's reports

    def set_worker(self, run_id: str, pid: int) -> None:
        """The worker has started: its pid, and a heartbeat (a run may have waited long for a
        cluster's resources since its claim)."""
        self._set(run_id, pid=pid, heartbeat=time.time())

    def gpus_in_use(self) -> list[int]:
        """The GPU of each running run that was pinned to one."""
        with self._db() as db:
            return self._gpus_in_use(db)

    @staticmethod
    def _gpus_in_use(db: sqlite3.Connection) -> list[int]:
        rows = db.execute("SELECT gpu FROM runs WHERE status = ? AND gpu IS NOT NULL", (Status.RUNNING,))
        return [r[0] for r in rows]

    def set_run_dir(self, run_id: str, path: Path) -> None:
        self._set(run_id, run_dir=str(path))

    def beat(self, run_id: str) -> bool:
        """Record that the worker is alive; returns whether a cancel was requested."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))
            row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def set_message(self, run_id: str, text: str) -> None:
        self._set(run_id, message=text)

    def set_teacher_reused(self, run_id: str) -> None:
        self._set(run_id, teacher_reused=1)

    def add_epoch(self, run_id: str, report: dict, progress: float) -> None:
        """Index one epoch line of the run's metrics.jsonl, with the run's progress."""
        now = time.time()
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?,?)",
                       (run_id, report["stage"], report["epoch"], report["epochs"],
                        report["train_loss"], report["test_acc"], report["lr"], report["seconds"]))
            db.execute("UPDATE runs SET progress = ?, stage = ?, updated = ?, heartbeat = ? WHERE id = ?",
                       (progress, report["stage"], now, now, run_id))

    def mark_succeeded(self, run_id: str, final: dict) -> None:
        """Index the run's final.json and close it (teacher reuse was set as it happened)."""
        self._set(run_id, status=Status.SUCCEEDED, progress=1.0, final=json.dumps(final),
                  finished=time.time(), pid=None)

    def mark_failed(self, run_id: str, error: str) -> None:
        self._set(run_id, status=Status.FAILED, error=error, finished=time.time(), pid=None)

    def mark_cancelled(self, run_id: str, message: str) -> None:
        self._set(run_id, status=Status.CANCELLED, message=message, finished=time.time(), pid=None)

    # helpers

    @staticmethod
    def _insert(db: sqlite3.Connection, config: ExperimentConfig, procs: int) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        db.execute("INSERT INTO runs (id, created, updated, status, config, procs) VALUES (?,?,?,?,?,?)",
                   (run_id, now, now, Status.QUEUED, config.to_json(), procs))
        return run_id

    @staticmethod
    def _current(db: sqlite3.Connection, run_id: str) -> RunRecord:
        row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r} (python -m bdcore jobs list shows them)")
        return RunRecord.from_row(row)

    def _transition(self, run_id: str, allowed: tuple[Status, ...], verb: str, **fields) -> None:
        """Set ``fields`` if the run's status is one of ``allowed``, checked in the same transaction."""
        with self._transaction() as db:
            record = self._current(db, run_id)
            if record.status not in allowed:
                raise RunStateError(f"run {run_id} is {record.status}; only "
                                    f"{' or '.join(allowed)} runs can be {verb}")
            self._update(db, run_id, fields)

    def _set(self, run_id: str, **fields) -> None:
        with self._transaction() as db:
            self._update(db, run_id, fields)

    @staticmethod
    def _update(db: sqlite3.Connection, run_id: str, fields: dict) -> None:
        fields["updated"] = time.time()
        columns = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))
