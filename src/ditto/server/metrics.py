"""In-process counters behind `GET /metrics` (Prometheus text format: queue depth, jobs, time per stage)."""

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

    def render(self, queue_depth: int, running: int, jobs_by_state: dict[str, int]) -> str:
        lines = [
            "# HELP ditto_queue_depth Jobs waiting for the worker (not counting the running one).",
            "# TYPE ditto_queue_depth gauge",
            f"ditto_queue_depth {queue_depth}",
            "# TYPE ditto_jobs_running gauge",
            f"ditto_jobs_running {running}",
            "# HELP ditto_jobs Jobs in the store by state.",
            "# TYPE ditto_jobs gauge",
            *(f'ditto_jobs{{state="{state}"}} {count}' for state, count in jobs_by_state.items()),
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
            lines += ["# TYPE ditto_http_responses_total counter"]
            lines += [
                f'ditto_http_responses_total{{status="{k}"}} {v}' for k, v in sorted(self.responses.items())
            ]
        return "\n".join(lines) + "\n"
