"""Run a function on N CPU processes joined by gloo, as a multi-GPU engine's ranks would be.

`run_ranks(target, world, ...)` spawns the processes (multiprocessing "spawn", one torch thread each, as
the suite runs), initialises torch.distributed in each with a file rendezvous, calls
`target(rank, world, **kwargs)` and returns every rank's (exit code, return value). A deadline bounds the
whole run: a rank that hangs fails the test, it never hangs the suite.
"""

from __future__ import annotations

import importlib
import multiprocessing
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

DEADLINE_S = 420.0


def run_ranks(
    target: str,
    world: int,
    deadline_s: float = DEADLINE_S,
    timeout_s: float | None = None,
    **kwargs: Any,
) -> list[tuple[int, Any]]:
    """`target` is "module:function"; returns [(exit code, return value or None)] per rank. `timeout_s`:
    how long a collective of the world group waits for a silent rank (None: torch's default)."""
    folder = Path(tempfile.mkdtemp(prefix="ditto-ranks-"))
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_rank_main, args=(rank, world, folder, target, timeout_s, kwargs))
        for rank in range(world)
    ]
    for process in processes:
        process.start()
    end = time.monotonic() + deadline_s
    for process in processes:
        process.join(max(0.0, end - time.monotonic()))
    hung = [rank for rank, process in enumerate(processes) if process.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    if hung:
        raise TimeoutError(f"ranks {hung} of {world} were still running after {deadline_s:.0f}s")
    return [(process.exitcode, _result(folder, rank)) for rank, process in enumerate(processes)]


def _result(folder: Path, rank: int) -> Any:
    path = folder / f"result-{rank}.pickle"
    return pickle.loads(path.read_bytes()) if path.exists() else None


def _rank_main(
    rank: int, world: int, folder: Path, target: str, timeout_s: float | None, kwargs: dict[str, Any]
) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    timeout = None if timeout_s is None else datetime.timedelta(seconds=timeout_s)
    store = f"file://{folder / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=world, timeout=timeout)
    module, name = target.split(":")
    value = getattr(importlib.import_module(module), name)(rank, world, **kwargs)
    (folder / f"result-{rank}.pickle").write_bytes(pickle.dumps(value))
