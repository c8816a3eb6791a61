"""The one thread that owns the engine: takes jobs in arrival order, reports progress, honours cancels.

HTTP handlers only enqueue and read the store, so no request ever waits behind a generation except an
image request that chose to await its own result. A running job stops at its next step when it is
deleted or cancelled, when its image client disconnects, at shutdown, or past the job timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ditto.errors import InvalidParameter, JobCancelled
from ditto.server.errors import without_paths
from ditto.server.metrics import Metrics
from ditto.server.preview import LatentPreviewer
from ditto.server.progress import START_PROGRESS, JobProgress
from ditto.server.retention import Purger
from ditto.server.store import Job, JobStore

log = logging.getLogger("ditto.server.worker")

DoneCallback = Callable[[Job], None]
IDLE_PURGE_S = 60.0  # an idle worker applies the retention policy this often

# Why a job stopped -> the error its record keeps (a deleted job keeps no record).
STOP_ERRORS = {
    "cancelled": ("cancelled", "the job was cancelled"),
    "disconnected": ("cancelled", "the job was cancelled: its HTTP client disconnected"),
    "shutdown": ("interrupted", "interrupted: the server shut down while this job was running; submit it again"),
}  # fmt: skip


class QueueFull(Exception):
    def __init__(self, depth: int) -> None:
        super().__init__(f"the queue is full ({depth} jobs waiting)")
        self.depth = depth


class Worker:
    def __init__(
        self,
        engine: Any,
        store: JobStore,
        metrics: Metrics,
        max_queue: int,
        purger: Purger,
        job_timeout_s: float = 3600.0,
        max_attempts: int = 2,
        previewer: LatentPreviewer | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.max_queue = max_queue
        self.purger = purger
        self.job_timeout_s = job_timeout_s
        self.max_attempts = max_attempts
        self.previewer = previewer if previewer is not None else LatentPreviewer()
        self._queue: deque[Job] = deque()
        self._waiters: dict[str, DoneCallback] = {}
        self._cond = threading.Condition()
        self._running: Job | None = None
        self._progress: JobProgress | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="ditto-worker", daemon=True)

    # ---- called from HTTP handlers -------------------------------------------------------------
    def start(self) -> None:
        """Clean up after a crash (half-written files), re-queue what it interrupted, then run."""
        for path in self.store.remove_orphan_parts():
            log.info("removed %s, left half-written by a stopped server", path.name)
        for job in self.store.recover(self.max_attempts):
            log.info("re-queued job %s after a restart (%d earlier attempts)", job.id, job.attempts)
            self._queue.append(job)
        self.purger.run()
        self._thread.start()

    def submit(self, job: Job, on_done: DoneCallback | None = None, force: bool = False) -> Job:
        """Store the job, then queue it; QueueFull when `max_queue` jobs already wait."""
        with self._cond:
            if not force and len(self._queue) >= self.max_queue:
                raise QueueFull(len(self._queue))
            self.store.add(job)
            if on_done is not None:
                self._waiters[job.id] = on_done
            self._queue.append(job)
            self._cond.notify()
        return job

    def cancel(self, job_id: str, reason: str = "deleted") -> bool:
        """Drop a queued job, or ask the running one to stop at its next step. False: neither (finished)."""
        with self._cond:
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    self._stopped(job, reason, None)
                    return True
            if self._running is not None and self._running.id == job_id and self._progress is not None:
                self._progress.stop(reason)
                return True
        return False

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def running(self) -> Job | None:
        with self._cond:
            return self._running

    def live(self, job_id: str) -> dict[str, Any] | None:
        """The running job's step-level progress (None for any other job)."""
        with self._cond:
            running = self._running is not None and self._running.id == job_id
            progress = self._progress if running else None
        return progress.snapshot() if progress is not None else None

    def preview(self, job_id: str) -> tuple[int, bytes] | None:
        """(step, PNG) of the running job's latest preview (None: another job, or none yet)."""
        with self._cond:
            running = self._running is not None and self._running.id == job_id
            progress = self._progress if running else None
        return progress.preview() if progress is not None else None

    def position(self, job_id: str) -> int | None:
        """Jobs ahead of a queued one (0: it runs next)."""
        with self._cond:
            for index, job in enumerate(self._queue):
                if job.id == job_id:
                    return index
        return None

    def retry_after(self) -> int:
        """Seconds until a queue slot is likely free: about one mean job time."""
        return max(1, round(self.metrics.mean_job_seconds()))

    def stop(self, grace: float) -> None:
        """Finish the running job if it ends within `grace` seconds, else stop it at its next step.

        Either way it is recorded (completed, or failed as interrupted); jobs still queued stay queued in
        the store and run after the next start.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(grace)
        if self._thread.is_alive():
            with self._cond:
                if self._progress is not None:
                    self._progress.stop("shutdown")
            self._thread.join(60.0)

    # ---- the worker thread ----------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._stopping:
                if not self._cond.wait(IDLE_PURGE_S):
                    self._purge()
            if self._stopping:
                return None
            job = self._queue.popleft()
            self._running = job
            every = int(job.meta.get("preview_every") or 0)
            saver = self._percent_saver(job.id)
            self._progress = JobProgress(job.id, self.job_timeout_s, saver, every, self.previewer)
            return job

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._run(job, self._progress)
            except Exception:  # a bug here must not kill the only worker, nor strand a waiter
                log.exception("job %s: unexpected failure in the worker", job.id)
                with contextlib.suppress(Exception):
                    self._failed(job, time.time(), "server_error", "the server failed while running this job")
                self._finish_waiter(job)
            finally:
                with self._cond:
                    self._running, self._progress = None, None
                self._purge()

    def _purge(self) -> None:
        try:
            self.purger.run()
        except Exception:  # retention must never stop the worker
            log.exception("the retention policy failed")

    def _percent_saver(self, job_id: str) -> Callable[[int], Any]:
        return lambda percent: self.store.update(job_id, progress=percent)

    def _run(self, job: Job, progress: JobProgress) -> None:
        started = time.time()
        job.attempts += 1
        fields = dict(
            status="in_progress", started_at=started, progress=START_PROGRESS, attempts=job.attempts
        )
        if not self.store.update(job.id, **fields):
            return  # deleted while queued
        self.metrics.record_queue_wait(max(0.0, started - job.created_at))
        log.info("job %s started (request %s, attempt %d)", job.id, job.request_id, job.attempts)
        try:
            result = self.engine.generate(progress=progress, **job.params)
            self._learn_colours(job, progress, result)
            outputs, timings, meta = self._save(job, result)
            if progress.previews:
                timings["preview"] = progress.preview_seconds
        except JobCancelled:
            self._stopped(job, progress.reason or "cancelled", started)
            return
        except InvalidParameter as exc:
            message = without_paths(str(exc), self.store.data_dir)
            self._failed(job, started, "invalid_parameter", message, param=exc.field)
            return
        except Exception as exc:
            log.exception("job %s failed", job.id)  # the traceback stays in the server's log
            message = f"the generation failed ({exc.__class__.__name__}); the server log has the details"
            self._failed(job, started, "generation_failed", message)
            return
        self._completed(job, started, outputs, timings, meta)

    def _learn_colours(self, job: Job, progress: JobProgress, result: Any) -> None:
        """The previewer's colour map learns from each finished job (its last latents against its output)."""
        output = result.frames if result.frames is not None else result.images
        if progress.final_latents is None or output is None:
            return
        if isinstance(output, list):  # a batch: one array per prompt, the first is the preview's
            output = output[0]
        try:
            self.previewer.learn(progress.final_latents, output)
        except Exception:  # previews are a convenience: never fail a finished job over them
            log.exception("job %s: the preview colours could not learn from this job", job.id)

    def _save(self, job: Job, result: Any) -> tuple[list[str], dict[str, float], dict[str, Any]]:
        start = time.perf_counter()
        folder = self.store.outputs_dir / job.id
        name = "video.mp4" if job.kind == "video" else "image.png"
        paths = result.save(folder / name)
        timings = {**result.timings, "writing": time.perf_counter() - start}
        outputs = [str(path.relative_to(self.store.outputs_dir)) for path in paths]
        return outputs, timings, {**result_meta(result), **job.meta}  # what the request said wins

    def _completed(
        self, job: Job, started: float, outputs: list[str], timings: dict[str, float], meta: dict[str, Any]
    ) -> None:
        now = time.time()
        stored = self.store.files_bytes(job.id)
        fields = dict(status="completed", progress=100, outputs=outputs, timings=timings, meta=meta)
        if self.waits(job.id):
            self.purger.hold(job.id)  # its handler reads the files next; released when it has
        if not self.store.update(job.id, completed_at=now, stored_bytes=stored, **fields):
            self.store.remove_files(job.id)  # deleted while it ran: keep no orphan files
        self.metrics.record_stages(timings)
        self.metrics.record_job("completed", now - started)
        log.info("job %s completed in %.2fs", job.id, now - started)
        job.status, job.outputs, job.meta, job.completed_at = "completed", outputs, meta, now
        job.timings = timings
        self._finish_waiter(job)

    def waits(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._waiters

    def _failed(
        self, job: Job, started: float | None, code: str, message: str, param: str | None = None
    ) -> None:
        error = {"code": code, "message": message, "param": param}
        stored = self.store.files_bytes(job.id)
        self.store.update(job.id, status="failed", error=error, completed_at=time.time(), stored_bytes=stored)
        if started is not None:  # it ran
            outcome = "cancelled" if code == "cancelled" else "failed"
            self.metrics.record_job(outcome, time.time() - started)
        log.warning("job %s failed: %s", job.id, message)
        job.status, job.error = "failed", error
        self._finish_waiter(job)

    def _stopped(self, job: Job, reason: str, started: float | None) -> None:
        """A job stopped before its end (`started` None: while queued): deleted (no record kept), timed out,
        cancelled or interrupted."""
        self.metrics.record_cancel(reason)
        log.info("job %s cancelled (%s)", job.id, reason)
        if reason == "timeout":
            limit = f"{self.job_timeout_s:g}"
            message = (
                f"the job ran past this server's limit job_timeout_s={limit} (ditto serve --job-timeout)"
            )
            self._failed(job, started, "timeout", message, param="job_timeout_s")
            return
        if reason != "shutdown":
            self.store.remove_files(job.id)
        if reason == "deleted":
            if started is not None:
                self.metrics.record_job("cancelled", time.time() - started)
            job.status, job.error = "failed", {"code": "cancelled", "message": "the job was deleted"}
            self._finish_waiter(job)
            return
        code, message = STOP_ERRORS.get(reason, STOP_ERRORS["cancelled"])
        self._failed(job, started, code, message)

    def _finish_waiter(self, job: Job) -> None:
        with self._cond:
            callback = self._waiters.pop(job.id, None)
        if callback is not None:
            callback(job)


def result_meta(result: Any) -> dict[str, Any]:
    """What the request may have left to the family defaults (size, duration), read off the result, and what
    the step cache did (its stats, when a cache ran)."""
    meta: dict[str, Any] = {}
    if result.frames is not None:
        frames, height, width = result.frames.shape[:3]
        meta = {"size": f"{width}x{height}", "seconds": f"{round(frames / result.frame_rate, 2):g}"}
    elif result.images is not None:
        height, width = result.images.shape[1:3]
        meta = {"size": f"{width}x{height}"}
    cache = getattr(result, "cache_stats", None)
    return {**meta, "cache": cache} if cache else meta
