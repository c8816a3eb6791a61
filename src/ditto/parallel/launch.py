"""Starting the processes of a parallel engine: one per GPU (or per rank on a CPU, with gloo).

Three ways in, one result (an initialised default process group, this rank's device):
- spawned (`ditto generate --gpus N`, `Engine.from_pretrained(parallel=...)` in one process): the calling
  process is rank 0 and starts ranks 1..N-1 with multiprocessing's "spawn"; each loads the same checkpoint
  and follows rank 0's calls (parallel/session.py). Scripts that do this need the usual
  `if __name__ == "__main__":` guard, as every spawn-based launcher does.
- torchrun: every rank runs the same command; RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous come from
  its environment (the launcher's protocol, not a ditto switch).
- attached: torch.distributed is already initialised by the caller (a test harness, a larger program).
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ditto.errors import InvalidParameter, ParallelError
from ditto.loading.quiet import quiet_third_party
from ditto.parallel.config import ParallelConfig

_SPAWN_LOCK = threading.Lock()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def torchrun_rank() -> int:
    """This process's rank under torchrun; 0 otherwise (the process a user started leads)."""
    return int(os.environ["RANK"]) if launched_by_torchrun() else 0


def torchrun_world_size() -> int | None:
    """The CLI's default --gpus: torchrun's WORLD_SIZE when it started this process, else None."""
    return int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else None


def local_world_size() -> int | None:
    """Processes on this machine under torchrun (its GPUs must hold them); None when ditto spawns them."""
    return (
        int(os.environ["LOCAL_WORLD_SIZE"])
        if launched_by_torchrun() and "LOCAL_WORLD_SIZE" in os.environ
        else None
    )


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device) -> torch.device:
    """This rank's device: cuda:LOCAL_RANK on a GPU machine (one process per GPU), the CPU otherwise."""
    if device.type != "cuda":
        return device
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank() if dist.is_initialized() else 0))
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def join_group(config: ParallelConfig, device: torch.device, spawn: tuple[Any, ...] | None) -> list[Any]:
    """Make sure the default process group is up with this process in it; the spawned followers, if any.

    spawn: what a follower needs to load the same engine (the builder, model path, dtype, EngineOptions), used only when
    this process starts the others."""
    timeout = datetime.timedelta(seconds=config.timeout_s)
    if dist.is_initialized():
        _check_world(config, dist.get_world_size(), "the process group")
        return []
    if launched_by_torchrun():
        _check_world(config, int(os.environ["WORLD_SIZE"]), "torchrun's WORLD_SIZE")
        device = rank_device(device)
        init(backend_for(device), "env://", int(os.environ["RANK"]), config.world_size, timeout, device)
        return []
    rendezvous = Path(tempfile.mkdtemp(prefix="ditto-rendezvous-")) / "store"
    followers = spawn_followers(config, device, f"file://{rendezvous}", spawn or ())
    init(backend_for(device), f"file://{rendezvous}", 0, config.world_size, timeout, rank_device(device))
    return followers


def init(
    backend: str, method: str, rank: int, world: int, timeout: datetime.timedelta, device: torch.device
) -> None:
    extra = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(
        backend, init_method=method, rank=rank, world_size=world, timeout=timeout, **extra
    )


def spawn_followers(
    config: ParallelConfig, device: torch.device, method: str, load: tuple[Any, ...]
) -> list[Any]:
    """Start ranks 1..N-1. They start with tqdm's bars off (one bar on the terminal, rank 0's): tqdm reads
    its environment when imported, before any code of the child runs, so the child's environment says so."""
    context = multiprocessing.get_context("spawn")
    followers = []
    with _SPAWN_LOCK:
        saved = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"
        try:
            for rank in range(1, config.world_size):
                args = (rank, config, str(device), method, torch.get_num_threads(), *load)
                process = context.Process(target=follower_main, args=args, name=f"ditto-rank-{rank}")
                process.start()
                followers.append(process)
        finally:
            if saved is None:
                os.environ.pop("TQDM_DISABLE")
            else:
                os.environ["TQDM_DISABLE"] = saved
    return followers


def follower_main(
    rank: int,
    config: ParallelConfig,
    device: str,
    method: str,
    threads: int,
    build: Callable[..., Any],
    model: str,
    dtype: Any,
    options: Any,
) -> None:
    """A spawned rank: join the group, load the same engine with `build` (Engine.from_pretrained, handed down
    by the engine so this module stays below it), follow rank 0's calls until it stops. It uses rank 0's CPU
    thread count (float sums depend on the thread split, and the ranks should agree)."""
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(threads)
    quiet_third_party()
    timeout = datetime.timedelta(seconds=config.timeout_s)
    target = torch.device(device)
    init(backend_for(target), method, rank, config.world_size, timeout, rank_device(target))
    try:
        engine = build(model, device=device, dtype=dtype, options=options)
    except Exception:  # noqa: BLE001 (the leader was told in the load check and reports it)
        sys.exit(1)
    try:
        engine.follow()
    except ParallelError as exc:  # this rank failed, or rank 0 vanished: say so in one line
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    engine.close()
    dist.destroy_process_group()


def _check_world(config: ParallelConfig, world: int, source: str) -> None:
    if world != config.world_size:
        raise InvalidParameter(
            "gpus", config.world_size, f"does not match {source} ({world} processes)", f"gpus={world}"
        )
