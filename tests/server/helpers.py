"""Run servers on loopback for the tests: in-process (uvicorn in a thread) or as a `ditto serve` subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base_url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was healthy")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy in {timeout}s")


@contextlib.contextmanager
def thread_server(app: Any, **config: Any) -> Iterator[str]:
    """The app under a real uvicorn on 127.0.0.1, in this process (so tests can reach a fake engine)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, 10.0)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(30)


class ServeProcess:
    """`ditto serve` as a subprocess; its log goes to a file the tests can read."""

    def __init__(self, model: str, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-{self.port}.log"
        command = [sys.executable, "-m", "ditto.cli", "serve", "--model", model, "--port", str(self.port)]
        command += ["--data-dir", str(data_dir), *extra]
        # One intra-op thread: on 2 shared cores, spinning OpenMP workers fight the HTTP thread and the test.
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait(self, timeout: float = 120.0) -> ServeProcess:
        try:
            wait_healthy(self.base_url, timeout, self.process)
        except Exception:
            self.stop()
            raise RuntimeError(f"ditto serve did not start:\n{self.log_path.read_text()[-4000:]}") from None
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return self.process.returncode

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()
