"""Soak `ditto serve` on loopback: many tiny requests (some malformed), then latency, memory growth per
request and the store against its retention bound.

    PYTHONPATH=src .venv/bin/python -m benchmarks.server_soak [--requests 1000] [--concurrency 4] \
        [--model tiny-flux2-klein] [--out benchmarks/results/server-soak.json]

The server is a `ditto serve` subprocess on 127.0.0.1 (its memory is measured alone, from /proc), with a
retention bound of `--store-mb`. Every `--bad-every`-th request is malformed and must get a 4xx. Memory
growth per request is the slope of the server's RSS over the requests after `--warmup` (a least-squares
fit over `--samples` readings, so one allocator step does not decide it), over the whole run and over its
second half (bounded caches, such as SQLite's 2 MiB page cache, fill in the first); the target is <= 1 KiB.
The loop is bounded by `--requests` and by `--max-seconds`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

IMAGE = {"prompt": "a small red square", "size": "64x64", "num_inference_steps": 1}
BAD = [  # malformed requests, in turn: each must be a 4xx
    {"prompt": "x", "seed": 2**70},
    {"prompt": "x", "num_inference_steps": 10**6},
    {"prompt": "x", "guidance_scale": "NaN"},
    {"prompt": 3},
    {"prompt": "x", "size": "65536x65536"},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start_server(model: str, data: Path, port: int, store_mb: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "ditto.cli", "serve", "--model", model, "--port", str(port),
               "--data-dir", str(data), "--retention-gb", str(store_mb / 1024), "--log-level", "warning",
               "--max-queue", "64"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=open(data.parent / "log", "w")
    )  # noqa: SIM115


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ditto serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("ditto serve did not start")


def one_request(client: httpx.Client, index: int, bad_every: int) -> tuple[str, float]:
    """(outcome, seconds): "ok", "refused" (a malformed request's 4xx) or an error description."""
    bad = bad_every > 0 and index % bad_every == bad_every - 1
    body = BAD[(index // max(bad_every, 1)) % len(BAD)] if bad else {**IMAGE, "seed": index}
    start = time.perf_counter()
    response = client.post("/v1/images/generations", json=body)
    seconds = time.perf_counter() - start
    if bad:
        ok = 400 <= response.status_code < 500 and response.json()["error"]["param"]
        return ("refused" if ok else f"bad request got {response.status_code}"), seconds
    return ("ok" if response.status_code == 200 else f"status {response.status_code}"), seconds


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares bytes per request."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0


def soak(args: argparse.Namespace, base: str, pid: int) -> dict:
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    samples: list[tuple[int, int]] = []
    done = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + args.max_seconds
    sample_every = max(1, args.requests // args.samples)
    with httpx.Client(base_url=base, timeout=120) as client:
        for index in range(args.warmup):
            one_request(client, index, 0)
        rss_after_warmup = rss_bytes(pid)

        def work(index: int) -> None:
            if time.monotonic() > deadline:
                return
            outcome, seconds = one_request(client, index, args.bad_every)
            with lock:
                outcomes[outcome] += 1
                if outcome == "ok":
                    latencies.append(seconds)
                done[0] += 1
                if done[0] % sample_every == 0:
                    samples.append((done[0], rss_bytes(pid)))

        start = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(work, range(args.requests)))
        elapsed = time.monotonic() - start
        metrics = client.get("/metrics").text
    stored = next(
        int(line.split()[1]) for line in metrics.splitlines() if line.startswith("ditto_stored_bytes")
    )
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": done[0], "outcomes": dict(outcomes), "seconds": round(elapsed, 1),
        "requests_per_second": round(done[0] / elapsed, 2),
        "latency_ms": {"p50": round(quantiles[49] * 1000, 1), "p95": round(quantiles[94] * 1000, 1)},
        "rss_mib": {"after_warmup": round(rss_after_warmup / 2**20, 1), "end": round(rss_bytes(pid) / 2**20, 1)},
        "rss_growth_bytes_per_request": round(slope(samples), 1),
        "rss_growth_second_half_bytes_per_request": round(slope(samples[len(samples) // 2 :]), 1),
        "rss_samples": samples,
        "stored_bytes": stored, "store_bound_bytes": int(args.store_mb * 2**20),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-flux2-klein")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--bad-every", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--store-mb", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(args.model, Path(tmp) / "data", port, args.store_mb)
        try:
            wait_healthy(base, server)
            report = soak(args, base, server.pid)
            report["store_du_bytes"] = sum(
                p.stat().st_size for p in (Path(tmp) / "data" / "outputs").rglob("*") if p.is_file()
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    report.update(model=args.model, concurrency=args.concurrency, date=time.strftime("%Y-%m-%d"))
    summary = {k: v for k, v in report.items() if k != "rss_samples"}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
