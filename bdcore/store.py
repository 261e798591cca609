"""The run store: every run's config, status, progress, per-epoch metrics, errors and artefacts in
one embedded SQLite database (WAL mode), shared by the app, the CLI and the workers."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .config import ExperimentConfig
from .runs import runs_root

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")

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
]


@dataclass
class RunRecord:
    id: str
    created: float
    updated: float
    status: str
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

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RunRecord":
        data = dict(row)
        data["config"] = ExperimentConfig.from_dict(json.loads(data["config"]))
        data["final"] = json.loads(data["final"]) if data["final"] else None
        data["teacher_reused"] = bool(data["teacher_reused"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)

    def summary(self) -> dict:
        """The JSON form `jobs list --json` prints."""
        final = self.final or {}
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 4),
                "stage": self.stage, "labeled": self.config.labeled, "unlabeled": self.config.unlabeled,
                "teacher": self.config.teacher, "student": self.config.student,
                "teacher_acc": final.get("teacher_acc"), "blind_acc": final.get("blind_acc"),
                "finetune_acc": final.get("finetune_acc"), "teacher_reused": self.teacher_reused,
                "error": self.error, "run_dir": self.run_dir, "created": self.created}


def default_store_path() -> Path:
    return runs_root() / "runs.db"


class RunStore:
    """A thin, process-safe layer over the SQLite file; every call opens its own connection."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            self._migrate(db)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: one writer at a time across processes."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")

    def schema_version(self) -> int:
        with self._db() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    def add(self, config: ExperimentConfig) -> str:
        config.validate()
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        with self.transaction() as db:
            db.execute("INSERT INTO runs (id, created, updated, status, config) VALUES (?,?,?,?,?)",
                       (run_id, now, now, "queued", config.to_json()))
        return run_id

    def get(self, run_id: str) -> RunRecord:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id!r}")
        return RunRecord.from_row(row)

    def list(self, statuses: tuple[str, ...] = STATUSES) -> list[RunRecord]:
        marks = ",".join("?" * len(statuses))
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY created DESC",
                              statuses).fetchall()
        return [RunRecord.from_row(r) for r in rows]

    def update(self, run_id: str, **fields) -> None:
        for key in ("final",):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        fields["updated"] = time.time()
        columns = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))

    def add_epoch(self, run_id: str, report: dict, progress: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?,?)",
                       (run_id, report["stage"], report["epoch"], report["epochs"],
                        report["train_loss"], report["test_acc"], report["lr"], report["seconds"]))
            db.execute("UPDATE runs SET progress = ?, stage = ?, updated = ?, heartbeat = ? WHERE id = ?",
                       (progress, report["stage"], time.time(), time.time(), run_id))

    def epochs(self, run_ids: list[str] | None = None) -> list[dict]:
        with self._db() as db:
            if run_ids is None:
                rows = db.execute("SELECT * FROM epochs ORDER BY run_id, rowid").fetchall()
            else:
                marks = ",".join("?" * len(run_ids))
                rows = db.execute(f"SELECT * FROM epochs WHERE run_id IN ({marks}) ORDER BY run_id, rowid",
                                  run_ids).fetchall()
        return [dict(r) for r in rows]

    def delete(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
