"""A parallel engine's processes working as one: rank 0 leads, the others follow its calls.

Rank 0 holds the Engine the user (CLI, Python, the server) talks to. Each of its calls that changes or
uses the model on every rank (generate, load_lora, unload_lora) is first validated on rank 0 (a request
also gets its seed there: Engine.generate), then sent to the others over a gloo group (`torch.distributed.broadcast_object_list`), and then run on every rank
alike: the same request with the same seed gives every rank the same noise, and the parallel pieces
(CFG, Ulysses, VAE, text) exchange what each rank computed. Only rank 0's Result is used.

After each denoising step every rank takes part in one host-side broadcast of a stop flag: the server's
cancel (JobCancelled from rank 0's progress callback) stops every rank at the same step, and a rank that
has died is noticed there at the latest. Failures:
- an error every rank raises alike (bad input, a cancel) passes through; the engine stays usable;
- any other error on a follower: it writes its message into the process group's store and exits; rank 0's
  next collective fails, it reads the message and raises ParallelError naming the rank and the error;
- any other error on rank 0: raised as it is; the followers' collectives fail (or time out after
  `timeout_s`) and they exit with a message naming rank 0.
After a failure the engine is closed for good: a new one must be loaded (in a new process).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ditto.errors import DittoError, JobCancelled, ParallelError
from ditto.parallel.config import ParallelConfig
from ditto.parallel.launch import join_group, rank_device
from ditto.parallel.loop import attach
from ditto.parallel.mesh import Mesh

CALLS = ("generate", "load_lora", "unload_lora")
FAILURE_KEY = "ditto/failed/{rank}"


@dataclass(frozen=True)
class GeneratorState:
    """A torch.Generator on the wire: rebuilt on the receiving rank's device with the same state."""

    device_type: str
    state: torch.Tensor


class Session:
    def __init__(self, config: ParallelConfig, followers: list[Any], owns_group: bool) -> None:
        self.mesh = Mesh(config)
        self.followers, self.owns_group = followers, owns_group
        self.broken: str | None = None
        self.closed = False

    @property
    def leads(self) -> bool:
        return self.mesh.leader

    # ---- loading -------------------------------------------------------------------------------
    @contextmanager
    def loading(self) -> Iterator[None]:
        """Every rank loads; then all learn whether every rank could (one gloo all-gather)."""
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 (re-raised below, after the others are told)
            error = exc
        reports: list[str | None] = [None] * self.mesh.size
        mine = None if error is None else f"{type(error).__name__}: {error}"
        dist.all_gather_object(reports, mine, group=self.mesh.host.pg)
        if error is not None:
            self._stop_followers()
            raise error
        failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
        if failed:
            self._stop_followers()
            rank, report = failed[0]
            raise ParallelError(f"rank {rank} could not load the model: {report}")

    def attach(self, pipeline: Any) -> None:
        attach(pipeline, self.mesh)

    # ---- rank 0 ----------------------------------------------------------------------------------
    def generate(self, pipeline: Any, progress: Callable | None, kwargs: dict[str, Any]) -> Any:
        """A request the Engine validated and gave a seed (every rank must draw the same noise)."""
        self._usable()
        leader_progress = self._leader_progress(progress)
        return self._lead("generate", kwargs, lambda: _generate(pipeline, leader_progress, kwargs))

    def call(self, name: str, kwargs: dict[str, Any], run: Callable[[], Any]) -> Any:
        self._usable()
        return self._lead(name, kwargs, run)

    def _lead(self, name: str, kwargs: dict[str, Any], run: Callable[[], Any]) -> Any:
        dist.broadcast_object_list([("call", name, _portable(kwargs))], src=0, group=self.mesh.control.pg)
        try:
            return run()
        except ParallelError as exc:
            self._fail(str(exc))
            raise
        except DittoError:
            raise  # every rank raised it alike (a cancel, bad input)
        except Exception as exc:
            failure = self._failure_report()
            self._fail(failure or f"rank 0 failed: {type(exc).__name__}: {exc}")
            if failure is None:
                raise
            raise ParallelError(f"{failure}; the engine's processes stopped (load it again)") from exc

    def _leader_progress(self, callback: Callable | None) -> Callable:
        def progress(event: Any) -> None:
            cancel: JobCancelled | None = None
            if callback is not None:
                try:
                    callback(event)
                except JobCancelled as exc:
                    cancel = exc
            dist.broadcast(torch.tensor([int(cancel is not None)]), src=0, group=self.mesh.host.pg)
            if cancel is not None:
                raise cancel

        return progress

    # ---- the other ranks -------------------------------------------------------------------------
    def follow(self, engine: Any) -> None:
        """Run rank 0's calls until it stops; ParallelError when this rank fails or rank 0 vanishes."""
        rank = self.mesh.rank
        while True:
            message: list[Any] = [None]
            try:
                dist.broadcast_object_list(message, src=0, group=self.mesh.control.pg)
            except Exception as exc:  # noqa: BLE001 (the leader's sockets closed: it is gone)
                raise ParallelError(f"rank {rank}: rank 0 stopped ({type(exc).__name__}: {exc})") from exc
            if message[0][0] == "stop":
                return
            _, name, kwargs = message[0]
            try:
                self._follow_call(engine, name, _restore(kwargs, engine))
            except DittoError:
                continue  # rank 0 raised the same
            except Exception as exc:  # noqa: BLE001
                report = f"rank {rank} failed: {type(exc).__name__}: {exc}"
                self._report(report)
                raise ParallelError(report) from exc

    def _follow_call(self, engine: Any, name: str, kwargs: dict[str, Any]) -> None:
        if name == "generate":
            _generate(engine.pipeline, self._follower_progress(), kwargs)
        elif name in CALLS:
            getattr(engine.pipeline, name)(**kwargs)

    def _follower_progress(self) -> Callable:
        def progress(event: Any) -> None:
            flag = torch.zeros(1, dtype=torch.int64)
            dist.broadcast(flag, src=0, group=self.mesh.host.pg)
            if flag.item():
                raise JobCancelled("cancelled on rank 0")

        return progress

    # ---- failures and the end --------------------------------------------------------------------
    def _usable(self) -> None:
        if self.broken is not None or self.closed:
            reason = self.broken or "it was closed"
            raise ParallelError(f"this parallel engine cannot run: {reason}; load it again in a new process")

    def _report(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        store = _store()
        if store is not None:
            store.set(FAILURE_KEY.format(rank=self.mesh.rank), message)

    def _failure_report(self, wait_s: float = 3.0) -> str | None:
        """A follower's own account of its failure, or how its process ended (spawned followers)."""
        store, deadline = _store(), time.monotonic() + wait_s
        while True:
            for rank in range(1, self.mesh.size):
                key = FAILURE_KEY.format(rank=rank)
                if store is not None and store.check([key]):
                    return store.get(key).decode()
            for rank, process in enumerate(self.followers, start=1):
                if process.exitcode not in (None, 0):
                    return f"rank {rank} exited with code {process.exitcode}"
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def _fail(self, message: str) -> None:
        self.broken = message
        self._stop_followers()

    def _stop_followers(self) -> None:
        for process in self.followers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    def close(self) -> None:
        """Rank 0: tell the followers to stop and wait for them; then leave the process group if this
        session made it."""
        if self.closed:
            return
        self.closed = True
        if self.leads and self.broken is None:
            dist.broadcast_object_list([("stop",)], src=0, group=self.mesh.control.pg)
        for process in self.followers:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
        if self.owns_group and self.broken is None and dist.is_initialized():
            dist.destroy_process_group()


def open_session(
    config: ParallelConfig, device: torch.device, spawn: tuple[Any, ...]
) -> tuple[Session, torch.device]:
    """Join (or start) the engine's processes: the session and this rank's device."""
    owned = not dist.is_initialized()
    followers = join_group(config, device, spawn)
    return Session(config, followers, owned), rank_device(device)


def _generate(pipeline: Any, progress: Callable, kwargs: dict[str, Any]) -> Any:
    with torch.inference_mode():
        return pipeline.generate(progress=progress, **kwargs)


def _store() -> Any:
    try:
        return dist.distributed_c10d._get_default_store()
    except (RuntimeError, AttributeError, ValueError):
        return None


def _portable(value: Any) -> Any:
    """A call's arguments as another process can take them: tensors on the host, generators as state."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, torch.Generator):
        return GeneratorState(value.device.type, value.get_state())
    if isinstance(value, dict):
        return {key: _portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_portable(item) for item in value)
    return value


def _restore(value: Any, engine: Any) -> Any:
    if isinstance(value, GeneratorState):
        device = engine.device if value.device_type == "cuda" else torch.device(value.device_type)
        generator = torch.Generator(device=device)
        generator.set_state(value.state)
        return generator
    if isinstance(value, dict):
        return {key: _restore(item, engine) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_restore(item, engine) for item in value)
    return value
