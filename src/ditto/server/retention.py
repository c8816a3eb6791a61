"""Retention: finished jobs' files are deleted after an age, and the oldest first while the store is over
its size bound. The job's row stays (marked purged), so a client asking for it is told what happened.

The worker thread runs it (after each job, and when idle), so it never races a job being written; an
image job's files are held while its HTTP handler still reads them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ditto.server.store import JobStore

log = logging.getLogger("ditto.server.retention")

DEFAULT_MAX_AGE_HOURS = 24.0
DEFAULT_MAX_STORE_GB = 20.0


@dataclass(frozen=True)
class Retention:
    max_age_s: float = DEFAULT_MAX_AGE_HOURS * 3600
    max_bytes: int = int(DEFAULT_MAX_STORE_GB * (1 << 30))

    def describe(self) -> str:
        return f"{self.max_age_s / 3600:g} h or {self.max_bytes / (1 << 30):g} GiB, oldest first"


class Purger:
    def __init__(self, store: JobStore, retention: Retention) -> None:
        self.store = store
        self.retention = retention
        self.purged = 0
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, job_id: str) -> None:
        """Keep a job's files until `release` (a handler is about to read them)."""
        with self._lock:
            self._held.add(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)

    def run(self, now: float | None = None) -> int:
        """Purge by age, then by size; returns how many jobs lost their files."""
        now = time.time() if now is None else now
        count = 0
        for job in self.store.finished_before(now - self.retention.max_age_s):
            count += self._purge(job.id, "older than the retention age")
        excess = self.store.bytes_stored() - self.retention.max_bytes
        if excess > 0:
            for job in self.store.finished_before(now + 1.0):
                if excess <= 0:
                    break
                if job.stored_bytes and self._purge(job.id, "the store is over its size bound"):
                    excess -= job.stored_bytes
                    count += 1
        self.purged += count
        return count

    def _purge(self, job_id: str, why: str) -> int:
        with self._lock:
            if job_id in self._held:
                return 0
        self.store.mark_purged(job_id)
        log.info("job %s purged: %s", job_id, why)
        return 1
