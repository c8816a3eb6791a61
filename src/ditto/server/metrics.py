"""In-process counters behind `GET /metrics` (Prometheus text format): queue depth and wait, jobs, time per
stage, cancellations by reason, rejected requests by reason, bytes stored."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stage_seconds: Counter[str] = Counter()
        self.stage_count: Counter[str] = Counter()
        self.job_seconds: float = 0.0
        self.jobs_finished: Counter[str] = Counter()  # by outcome: completed, failed, cancelled
        self.responses: Counter[int] = Counter()  # by HTTP status
        self.cancellations: Counter[str] = Counter()  # by reason: deleted, cancelled, disconnected, timeout
        self.rejections: Counter[str] = Counter()  # refused requests, by error code
        self.queue_wait_seconds: float = 0.0
        self.queue_waits: int = 0

    def record_cancel(self, reason: str) -> None:
        with self._lock:
            self.cancellations[reason] += 1

    def record_rejection(self, reason: str) -> None:
        with self._lock:
            self.rejections[reason] += 1

    def record_queue_wait(self, seconds: float) -> None:
        with self._lock:
            self.queue_wait_seconds += seconds
            self.queue_waits += 1

    def record_stages(self, timings: dict[str, float]) -> None:
        with self._lock:
            for stage, seconds in timings.items():
                self.stage_seconds[stage] += seconds
                self.stage_count[stage] += 1

    def record_job(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self.jobs_finished[outcome] += 1
            if outcome == "completed":
                self.job_seconds += seconds

    def record_response(self, status: int) -> None:
        with self._lock:
            self.responses[status] += 1

    def mean_job_seconds(self, default: float = 5.0) -> float:
        with self._lock:
            done = self.jobs_finished["completed"]
            return self.job_seconds / done if done else default

    def render(self, queue_depth: int, running: int, jobs_by_state: dict[str, int], stored: int = 0) -> str:
        lines = [
            "# HELP ditto_queue_depth Jobs waiting for the worker (not counting the running one).",
            "# TYPE ditto_queue_depth gauge",
            f"ditto_queue_depth {queue_depth}",
            "# TYPE ditto_jobs_running gauge",
            f"ditto_jobs_running {running}",
            "# HELP ditto_jobs Jobs in the store by state.",
            "# TYPE ditto_jobs gauge",
            *(f'ditto_jobs{{state="{state}"}} {count}' for state, count in jobs_by_state.items()),
            "# HELP ditto_stored_bytes Bytes of outputs and uploads the store keeps for finished jobs.",
            "# TYPE ditto_stored_bytes gauge",
            f"ditto_stored_bytes {stored}",
        ]
        with self._lock:
            lines += ["# TYPE ditto_jobs_finished_total counter"]
            lines += [
                f'ditto_jobs_finished_total{{outcome="{k}"}} {v}' for k, v in self.jobs_finished.items()
            ]
            lines += [
                "# HELP ditto_stage_seconds Time spent per pipeline stage.",
                "# TYPE ditto_stage_seconds summary",
            ]
            for stage, seconds in self.stage_seconds.items():
                lines.append(f'ditto_stage_seconds_sum{{stage="{stage}"}} {seconds:.6f}')
                lines.append(f'ditto_stage_seconds_count{{stage="{stage}"}} {self.stage_count[stage]}')
            lines += [
                "# HELP ditto_queue_wait_seconds Time jobs waited in the queue before the worker took them.",
                "# TYPE ditto_queue_wait_seconds summary",
                f"ditto_queue_wait_seconds_sum {self.queue_wait_seconds:.6f}",
                f"ditto_queue_wait_seconds_count {self.queue_waits}",
                "# TYPE ditto_cancellations_total counter",
            ]
            lines += [f'ditto_cancellations_total{{reason="{k}"}} {v}' for k, v in self.cancellations.items()]
            lines += ["# HELP ditto_rejections_total Refused requests by error code."]
            lines += ["# TYPE ditto_rejections_total counter"]
            lines += [
                f'ditto_rejections_total{{reason="{k}"}} {v}' for k, v in sorted(self.rejections.items())
            ]
            lines += ["# TYPE ditto_http_responses_total counter"]
            lines += [
                f'ditto_http_responses_total{{status="{k}"}} {v}' for k, v in sorted(self.responses.items())
            ]
        return "\n".join(lines) + "\n"
