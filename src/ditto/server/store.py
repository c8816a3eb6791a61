"""The job store: one SQLite file (stdlib sqlite3) plus an outputs folder, so no job is lost to a crash.

Every state change is committed before it is acted on: a job is written `queued` before the HTTP reply,
`in_progress` before the engine starts (counting one more attempt), and `completed` only after its output
file was renamed into place. After `kill -9`, `recover(max_attempts)` hands back the video jobs to run:
the queued ones, and the one that was running unless it already had its tries (then it is `failed`, with
the reason). Image jobs die with their HTTP client. Each job belongs to an owner (the hash of the API key
that made it, "" without keys); `purged_at` marks a job whose files the retention policy deleted.
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
    completed_at REAL,
    owner TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    purged_at REAL,
    stored_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_kind_seq ON jobs (kind, seq);
"""
# Indexes on columns added later: created after the columns exist.
LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_owner_seq ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_retention ON jobs (purged_at, completed_at);
"""
# Columns added after the first release: a data folder written by an older ditto gains them at start.
ADDED_COLUMNS = {
    "owner": "TEXT NOT NULL DEFAULT ''",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "purged_at": "REAL",
    "stored_bytes": "INTEGER NOT NULL DEFAULT 0",
}

PAGE_CACHE_KIB = 256
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
    owner: str = ""  # who may see it: the hash of the API key that made it ("" when keys are off)
    attempts: int = 0  # times the worker started it (a crash mid-run leaves it > 0)
    purged_at: float | None = None  # when the retention policy deleted its files
    stored_bytes: int = 0  # its outputs and uploads on disk, counted when it finished


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
        # A small page cache: rows are read one at a time, and SQLite's default (2 MiB) fills as the table
        # grows, which looked like ~600 bytes of memory growth per request in the soak benchmark.
        self._db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        self._db.executescript(LATER_INDEXES)

    def _add_missing_columns(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for name, declaration in ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")

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
        self,
        kind: str | None,
        owner: str = "",
        after: str | None = None,
        limit: int = 20,
        descending: bool = True,
    ) -> list[Job]:
        """One owner's jobs (of one kind, or all) in arrival order (newest first by default), starting
        after the `after` job."""
        order, compare = ("DESC", "<") if descending else ("ASC", ">")
        query, args = "SELECT * FROM jobs WHERE owner = ?", [owner]
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
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

    def recover(self, max_attempts: int) -> list[Job]:
        """Run once at start-up (the data folder is locked: no other server writes it). Returns the video
        jobs to run again, in arrival order: the queued ones, and those a dead process left running that
        have had fewer than `max_attempts` starts; the others fail with the reason. Image jobs fail: the
        HTTP client that waited for them is gone with the old process."""
        now = time.time()
        image_error = _interrupted("the server stopped before this image was returned; submit it again")
        tries_error = _interrupted(
            f"the server stopped while this job was running, {max_attempts} time(s); it is not run again"
        )
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, completed_at = ? "
                "WHERE kind = 'image' AND status IN ('queued', 'in_progress')",
                (json.dumps(image_error), now),
            )
            self._db.execute(
                "UPDATE jobs SET status = 'failed', error = ?, completed_at = ? "
                "WHERE status = 'in_progress' AND attempts >= ?",
                (json.dumps(tries_error), now, max_attempts),
            )
            self._db.execute("UPDATE jobs SET status = 'queued', progress = 0 WHERE status = 'in_progress'")
            rows = self._db.execute("SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq").fetchall()
        return [_from_row(row) for row in rows]

    def remove_orphan_parts(self) -> list[Path]:
        """Half-written outputs (`*.part`) left by a killed process; run at start-up, before any job."""
        orphans = sorted(self.outputs_dir.rglob("*.part"))
        for path in orphans:
            path.unlink(missing_ok=True)
        return orphans

    def finished_before(self, cutoff: float) -> list[Job]:
        """Finished jobs, oldest first, that still have files and ended before `cutoff`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status IN ('completed', 'failed') AND purged_at IS NULL "
                "AND completed_at < ? ORDER BY completed_at",
                (cutoff,),
            ).fetchall()
        return [_from_row(row) for row in rows]

    def mark_purged(self, job_id: str) -> None:
        self.remove_files(job_id)
        self.update(job_id, purged_at=time.time(), stored_bytes=0)

    def bytes_stored(self) -> int:
        """What finished jobs keep on disk (running and queued jobs are counted when they finish)."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(SUM(stored_bytes), 0) FROM jobs").fetchone()[0]

    def files_bytes(self, job_id: str) -> int:
        folders = (self.outputs_dir / job_id, self.uploads_dir / job_id)
        return sum(path.stat().st_size for folder in folders for path in folder.rglob("*") if path.is_file())


def _interrupted(message: str) -> dict[str, str]:
    return {"code": "interrupted", "message": "interrupted: " + message}


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
