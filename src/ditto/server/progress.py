"""One running job's progress: the step callback the engine calls, which stops the job when it was
cancelled or ran past its time, keeps what a client polls (stage, step k of n, elapsed, ETA, seconds per
stage, the latest preview) and writes progress as log lines (a server has no terminal for bars)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ditto.errors import JobCancelled
from ditto.runtime.progress import PreviewLatents, StepEvent
from ditto.server.preview import LatentPreviewer

log = logging.getLogger("ditto.server.progress")

# Percent shown to clients: 5 once the job starts (text encoding), 5..95 over the denoising steps, 100
# only after the output file is on disk, so "100" always means "downloadable".
START_PROGRESS, DENOISE_SPAN = 5, 90
LOG_EVERY_S = 5.0  # a progress line at most this often (and at each new stage and the last step)


class JobProgress:
    """The `progress=` callback of one job. `stop(reason)` (any thread) makes the next step raise."""

    replaces_bar = True  # ditto.runtime.progress draws no tqdm bar for a callback that says so

    def __init__(
        self,
        job_id: str,
        timeout_s: float,
        save_percent: Callable[[int], Any],
        preview_every: int = 0,
        previewer: LatentPreviewer | None = None,
    ) -> None:
        self.job_id = job_id
        self.timeout_s = timeout_s
        self.save_percent = save_percent
        self.started = time.monotonic()
        self.reason: str | None = (
            None  # why it must stop: deleted, cancelled, disconnected, shutdown, timeout
        )
        self._lock = threading.Lock()
        self._live: dict[str, Any] = {"stage": "encode_text", "step": 0, "total": None, "stages": {}}
        self._stage_started = self.started
        self._logged_at = 0.0
        self.preview_every = preview_every if previewer is not None else 0
        self.previewer = previewer
        self._preview: tuple[int, bytes] | None = None  # (step, PNG) of the latest preview
        self.preview_seconds, self.previews = 0.0, 0
        self.final_latents: PreviewLatents | None = (
            None  # the last step's, on the host (the previewer learns)
        )

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, event: StepEvent) -> None:
        if self.reason is None and self.elapsed() > self.timeout_s:
            self.reason = "timeout"
        if self.reason is not None:
            raise JobCancelled(f"job {self.job_id} stopped ({self.reason})")
        self._record(event)
        if event.latents is not None and self.previewer is not None:
            self._look(event)
        percent = START_PROGRESS + (DENOISE_SPAN * event.step) // max(event.total, 1)
        self.save_percent(min(percent, START_PROGRESS + DENOISE_SPAN))

    def _record(self, event: StepEvent) -> None:
        now = time.monotonic()
        with self._lock:
            live = self._live
            new_stage = event.stage != live["stage"]
            if new_stage:  # the stage before ends here (what ran between two loops is counted in it)
                live["stages"][live["stage"]] = now - self._stage_started
                self._stage_started = now
            else:
                live["stages"][event.stage] = now - self._stage_started
            done = event.step / max(event.total, 1)
            elapsed = now - self.started
            eta = elapsed * (1 - done) / done if done > 0 else None
            live.update(stage=event.stage, step=event.step, total=event.total, eta_s=eta)
            live.update(stage_step=event.stage_step, stage_total=event.stage_total)
        if new_stage or event.step == event.total or now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            shown_eta = f", ETA {eta:.1f}s" if eta is not None else ""
            log.info(
                "job %s: %s step %d/%d (%d/%d of the request), %.1fs%s", self.job_id, event.stage,
                event.stage_step, event.stage_total, event.step, event.total, elapsed, shown_eta,
            )  # fmt: skip

    def _look(self, event: StepEvent) -> None:
        """A preview every `preview_every` steps; the last step's latents kept for the previewer to learn
        from. A preview that fails is logged and turns previews off for this job: it never fails the job."""
        last = event.step == event.total
        due = self.preview_every > 0 and event.step % self.preview_every == 0
        if not (due or last):
            return
        try:
            start = time.perf_counter()
            latents = event.latents()
            if due:
                png = self.previewer.render(latents)
                with self._lock:
                    self._preview = (event.step, png)
                self.preview_seconds += time.perf_counter() - start
                self.previews += 1
            if last:
                self.final_latents = PreviewLatents(latents.grid.detach().float().cpu(), latents.frames)
        except Exception:
            log.exception("job %s: the preview failed; no more previews for this job", self.job_id)
            self.previewer = None

    def preview(self) -> tuple[int, bytes] | None:
        """(step, PNG bytes) of the latest preview, or None."""
        with self._lock:
            return self._preview

    def snapshot(self) -> dict[str, Any]:
        """What a client polling the job sees while it runs: the stage, step k of n (of the stage and of the
        request), elapsed seconds, the ETA, and seconds per stage so far ("encode_text" is all the time
        before the first step; the result's own per-stage timings replace these when it completes)."""
        with self._lock:
            live = {**self._live, "stages": dict(self._live["stages"])}
        live["elapsed_s"] = self.elapsed()
        live["preview"] = self.preview_state()
        return live

    def preview_state(self) -> dict[str, Any] | None:
        """What the page needs to fetch the latest preview, and what previews cost this job so far."""
        shown = self.preview()
        if self.preview_every <= 0:
            return None
        mean_ms = 1000 * self.preview_seconds / self.previews if self.previews else None
        step = shown[0] if shown else None
        return {"every": self.preview_every, "step": step, "count": self.previews, "mean_ms": mean_ms}
