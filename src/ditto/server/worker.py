"""The one thread that owns the engine: takes jobs in arrival order, reports progress, honours cancels.

HTTP handlers only enqueue and read the store, so no request ever waits behind a generation except an
image request that chose to await its own result.
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
from ditto.runtime.progress import StepEvent
from ditto.server.metrics import Metrics
from ditto.server.store import Job, JobStore

log = logging.getLogger("ditto.server.worker")

DoneCallback = Callable[[Job], None]

# Progress shown to clients: 5% once the job starts (text encoding), 5..95% over the denoising steps,
# 100% only after the output file is on disk, so "100" always means "downloadable".
START_PROGRESS, DENOISE_SPAN = 5, 90


class QueueFull(Exception):
    def __init__(self, depth: int) -> None:
        super().__init__(f"the queue is full ({depth} jobs waiting)")
        self.depth = depth


class Worker:
    def __init__(self, engine: Any, store: JobStore, metrics: Metrics, max_queue: int) -> None:
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.max_queue = max_queue
        self._queue: deque[Job] = deque()
        self._waiters: dict[str, DoneCallback] = {}
        self._cond = threading.Condition()
        self._running: Job | None = None
        self._cancel: str | None = None  # why the running job must stop: "deleted" or "shutdown"
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="ditto-worker", daemon=True)

    # ---- called from HTTP handlers -------------------------------------------------------------
    def start(self) -> None:
        for job in self.store.recover():
            log.info("re-queued job %s after a restart", job.id)
            self._queue.append(job)
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

    def cancel(self, job_id: str) -> None:
        """Drop a queued job, or ask the running one to stop at its next step."""
        with self._cond:
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    self._finish_waiter(job, cancelled=True)
                    return
            if self._running is not None and self._running.id == job_id:
                self._cancel = "deleted"

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def running(self) -> Job | None:
        with self._cond:
            return self._running

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
                self._cancel = "shutdown"
            self._thread.join(60.0)

    # ---- the worker thread ----------------------------------------------------------------------
    def _next(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            job = self._queue.popleft()
            self._running, self._cancel = job, None
            return job

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._run(job)
            except Exception as exc:  # a bug here must not kill the only worker, nor strand a waiter
                log.exception("job %s: unexpected failure in the worker", job.id)
                with contextlib.suppress(Exception):
                    self._failed(job, time.time(), "server_error", f"{exc.__class__.__name__}: {exc}")
                self._finish_waiter(job, cancelled=True)
            finally:
                with self._cond:
                    self._running = None

    def _run(self, job: Job) -> None:
        started = time.time()
        if not self.store.update(job.id, status="in_progress", started_at=started, progress=START_PROGRESS):
            return  # deleted while queued
        log.info("job %s started (request %s)", job.id, job.request_id)
        try:
            result = self.engine.generate(progress=self._progress_for(job), **job.params)
            outputs, timings, meta = self._save(job, result)
        except JobCancelled:
            self._cancelled(job, started)
            return
        except InvalidParameter as exc:
            self._failed(job, started, "invalid_parameter", str(exc), param=exc.field)
            return
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self._failed(job, started, "generation_failed", f"{exc.__class__.__name__}: {exc}")
            return
        self._completed(job, started, outputs, timings, meta)

    def _progress_for(self, job: Job) -> Callable[[StepEvent], None]:
        def progress(event: StepEvent) -> None:
            if self._cancel is not None:
                raise JobCancelled(f"job {job.id} stopped ({self._cancel})")
            percent = START_PROGRESS + (DENOISE_SPAN * event.step) // max(event.total, 1)
            self.store.update(job.id, progress=min(percent, START_PROGRESS + DENOISE_SPAN))

        return progress

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
        fields = dict(status="completed", progress=100, outputs=outputs, timings=timings, meta=meta)
        if not self.store.update(job.id, completed_at=now, **fields):
            self.store.remove_files(job.id)  # deleted while it ran: keep no orphan files
        self.metrics.record_stages(timings)
        self.metrics.record_job("completed", now - started)
        log.info("job %s completed in %.2fs", job.id, now - started)
        job.status, job.outputs, job.meta, job.completed_at = "completed", outputs, meta, now
        self._finish_waiter(job)

    def _failed(self, job: Job, started: float, code: str, message: str, param: str | None = None) -> None:
        error = {"code": code, "message": message, "param": param}
        self.store.update(job.id, status="failed", error=error, completed_at=time.time())
        self.metrics.record_job("failed", time.time() - started)
        log.warning("job %s failed: %s", job.id, message)
        job.status, job.error = "failed", error
        self._finish_waiter(job)

    def _cancelled(self, job: Job, started: float) -> None:
        if self._cancel == "shutdown":
            message = "interrupted: the server shut down while this job was running; submit it again"
            self._failed(job, started, "interrupted", message)
            return
        self.store.remove_files(job.id)
        self.metrics.record_job("cancelled", time.time() - started)
        log.info("job %s cancelled", job.id)
        self._finish_waiter(job, cancelled=True)

    def _finish_waiter(self, job: Job, cancelled: bool = False) -> None:
        callback = self._waiters.pop(job.id, None)
        if callback is None:
            return
        if cancelled:
            job.status = "failed"
            job.error = {"code": "cancelled", "message": "the job was cancelled"}
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
