"""The job store: one SQLite file (stdlib sqlite3) plus an outputs folder, so no job is lost to a crash.

Every state change is committed before it is acted on: a job is written `queued` before the HTTP reply,
`in_progress` before the engine starts, and `completed` only after its output file was renamed into place.
After `kill -9`, `recover()` turns whatever was running into `failed` ("interrupted") and hands back the
queued video jobs so the worker can run them again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("queued", "in_progress", "completed", "failed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    model TEXT NOT NULL,
    prompt TEXT,
    params TEXT NOT NULL,
    meta TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    timings TEXT NOT NULL DEFAULT '{}',
    request_id TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_kind_seq ON jobs (kind, seq);
"""

JSON_COLUMNS = ("params", "meta", "outputs", "error", "timings")


def new_job_id(kind: str) -> str:
    return f"{'video' if kind == 'video' else 'img'}_{uuid.uuid4().hex}"


@dataclass
class Job:
    """One generation request. `params` are the engine's keyword arguments; `meta` what the API echoes."""

    id: str
    kind: str  # "video" or "image"
    model: str
    prompt: str | None
    params: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = "queued"
    progress: int = 0
    outputs: list[str] = field(default_factory=list)  # paths relative to the outputs folder
    error: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    request_id: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    seq: int = 0  # arrival order; also the list cursor


class JobStore:
    """Thread-safe (one connection behind a lock; the worker and HTTP threads both write)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.outputs_dir = self.data_dir / "outputs"
        self.uploads_dir = self.data_dir / "uploads"
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        # WAL + synchronous=NORMAL: a committed row survives a process kill (not necessarily a power cut).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, job: Job) -> Job:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()
            job.seq = row[0]
            values = _to_row(job)
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            self._db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", tuple(values.values()))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _from_row(row) if row else None

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set columns of one job; False when the job is gone (deleted meanwhile)."""
        values = {name: _encode(name, value) for name, value in fields.items()}
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id)
            )
        return cursor.rowcount > 0

    def delete(self, job_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        self.remove_files(job_id)
        return cursor.rowcount > 0

    def remove_files(self, job_id: str) -> None:
        shutil.rmtree(self.outputs_dir / job_id, ignore_errors=True)
        shutil.rmtree(self.uploads_dir / job_id, ignore_errors=True)

    def list(
        self, kind: str, after: str | None = None, limit: int = 20, descending: bool = True
    ) -> list[Job]:
        """Jobs of one kind in arrival order (newest first by default), starting after the `after` job."""
        order, compare = ("DESC", "<") if descending else ("ASC", ">")
        query, args = "SELECT * FROM jobs WHERE kind = ?", [kind]
        with self._lock:
            cursor = (
                self._db.execute("SELECT seq FROM jobs WHERE id = ?", (after,)).fetchone() if after else None
            )
            if cursor is not None:
                query += f" AND seq {compare} ?"
                args.append(cursor[0])
            rows = self._db.execute(f"{query} ORDER BY seq {order} LIMIT ?", (*args, limit)).fetchall()
        return [_from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        found = {status: count for status, count in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def recover(self) -> list[Job]:
        """Run once at start-up: fail what a dead process left running; return the video jobs to re-queue.

        Queued image jobs are failed too: the HTTP client that waited for them is gone with the old process.
        """
        error = {
            "code": "interrupted",
            "message": "interrupted: the server stopped while this job was running; submit it again",
        }
        now = time.time()
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, completed_at = ? "
                "WHERE status = 'in_progress' OR (status = 'queued' AND kind = 'image')",
                (json.dumps(error), now),
            )
            rows = self._db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq").fetchall()
        return [_from_row(row) for row in rows]


def _encode(name: str, value: Any) -> Any:
    return json.dumps(value) if name in JSON_COLUMNS and value is not None else value


def _to_row(job: Job) -> dict[str, Any]:
    return {name: _encode(name, value) for name, value in asdict(job).items()}


def _from_row(row: sqlite3.Row) -> Job:
    values = dict(row)
    for name in JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Job(**values)
