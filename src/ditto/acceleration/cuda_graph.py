"""Whole-pass CUDA graphs: LTX-2's denoising passes (one set per sampling loop) and FLUX.2 Klein's text
encoder (kept for the pipeline's life).

A transformer pass launches thousands of kernels; at small shapes (LTX-2's stage 1: 1,536 video tokens
per sample) the host cannot launch them as fast as the GPU runs them, and the gaps add up (13 ms of a
175 ms step, benchmarks/NOTES.md). Within one sampling loop every pass of a kind has the same shapes and
reads the same prompt tensors; only the latents and the sigma change. So each pass is recorded once as a
CUDA graph and replayed: the latents and sigma are copied into the graph's input buffers, the graph is
launched with one call, and its outputs are cloned out (the next replay overwrites them).

Per-block graphs (torch.compile's "reduce-overhead" on the regional compile) do not work here: every block
replays the same graph and overwrites the previous block's output. One graph for the whole pass does.

Rules the recorded pass must follow (ditto's transformers do): no host syncs, no tensors made from host
data, no data-dependent control flow. Everything the pass reads besides the per-step inputs must stay
alive, unchanged, for the graph's life: a denoising pass's graph belongs to one sampling loop (it reads
that loop's prompt tensors by address); the Klein text encoder's reads only its weights besides its inputs.
If recording fails anyway, the pass runs eagerly from then on (with a warning): slower, never wrong.

A denoising pass's context (runtime.PassContext): passes are keyed by their kinds (the CFG pair, the STG
pass, ...), a pass is recorded by running its first call's closure again, and a replay runs no Python. So
what a recorded pass captured of its context is its first call's: its kinds and its loop's state (the text
K/V that call filled), and that call's step and host sigma, which no replay updates. Nothing per step may reach the model as a tensor made on the host;
the sigma comes in as a device tensor, copied in like the latents. A loop feature that decides per step
in Python (a step cache, offload) therefore turns the graphs off for its loop (pipelines/ltx2/denoise.py).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

Pass = Callable[..., tuple[torch.Tensor, ...]]


@dataclass
class RecordingStats:
    """Process-wide: how many passes were recorded and the host seconds it took (benchmarks read it)."""

    recordings: int = 0
    seconds: float = 0.0


STATS = RecordingStats()


class GraphedPass:
    """The first call runs `run(*step_inputs)` eagerly on a side stream (torch.compile compiles, caches fill,
    and cuBLAS/cuDNN set up their per-stream state outside any recording, as torch.cuda.graph's
    documentation asks); the second records it as a CUDA graph and replays it; later calls with inputs of
    the same shapes only copy the inputs in and replay. No pass is run only to warm up: the two-stage
    pipeline's stage 2 has three steps, where a wasted full-size pass would cost more than graphs save."""

    def __init__(self, run: Pass, pool: tuple[int, int] | None = None) -> None:
        self.run, self.pool = run, pool
        self.warmed = False
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[torch.Tensor, ...] = ()
        self.outputs: tuple[torch.Tensor, ...] = ()
        self.failed = False

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.failed:
            return self.run(*inputs)
        if not self.warmed:
            self.warmed = True
            return _on_side_stream(self.run, inputs)
        if self.graph is None:
            self._record(inputs)
            if self.graph is None:
                return self.run(*inputs)
        for buffer, value in zip(self.inputs, inputs, strict=True):
            buffer.copy_(value)
        self.graph.replay()
        return tuple(out.clone() for out in self.outputs)

    def _record(self, inputs: tuple[torch.Tensor, ...]) -> None:
        started = time.perf_counter()
        buffers = tuple(value.clone() for value in inputs)
        graph = torch.cuda.CUDAGraph()
        try:
            outputs = _capture(graph, self.run, buffers, self.pool)
        except Exception as exc:  # noqa: BLE001 (any op that cannot be recorded: fall back, stay correct)
            self.failed = True
            warnings.warn(f"CUDA graph recording failed, running eagerly: {exc}", stacklevel=3)
            return
        self.graph, self.inputs, self.outputs = graph, buffers, outputs
        STATS.recordings += 1
        STATS.seconds += time.perf_counter() - started


_CAPTURE_STREAM: list[torch.cuda.Stream] = []


def _capture_stream() -> torch.cuda.Stream:
    """One side stream for every warm-up and recording of the process, so libraries set it up once."""
    if not _CAPTURE_STREAM:
        _CAPTURE_STREAM.append(torch.cuda.Stream())
    return _CAPTURE_STREAM[0]


@contextmanager
def _on_capture_stream() -> Iterator[None]:
    """Work queued inside runs on the capture stream, ordered after everything queued before it and before
    everything queued after it on the current stream."""
    side, current = _capture_stream(), torch.cuda.current_stream()
    side.wait_stream(current)
    with torch.cuda.stream(side):
        yield
    current.wait_stream(side)


def _on_side_stream(run: Pass, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    with _on_capture_stream():
        return run(*inputs)


def _capture(
    graph: torch.cuda.CUDAGraph, run: Pass, inputs: tuple[torch.Tensor, ...], pool: tuple[int, int] | None
) -> tuple[torch.Tensor, ...]:
    """Record `run(*inputs)` into `graph` on the side stream.

    Not `torch.cuda.graph(...)`: on entry it synchronizes the device and empties both the device and the
    page-locked host caches. Measured on the two-stage pipeline: that re-pinned the 570 MB output buffer
    (+0.5 s per request) and made every later stage allocate afresh; without the sync, recording on the host
    also overlaps the previous step's kernels."""
    with _on_capture_stream():
        graph.capture_begin(*(() if pool is None else (pool,)), capture_error_mode="thread_local")
        try:
            return tuple(run(*inputs))
        finally:
            graph.capture_end()


class PassGraphs:
    """Graphed passes, one per kind of pass and input layout (res2s alternates float32 and float64 sigmas),
    sharing one memory pool: they run one after another, and each output is cloned before the next pass.
    As a context manager (a sampling loop) the graphs and their memory go when the loop ends; held by a
    text encoder, they stay. Disabled, every call runs eagerly."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.passes: dict[tuple, GraphedPass] = {}
        self.pool = torch.cuda.graph_pool_handle() if enabled else None

    def call(self, kind: Hashable, run: Pass, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.enabled or not all(isinstance(value, torch.Tensor) for value in inputs):
            return run(*inputs)
        key = (kind, *((tuple(value.shape), value.dtype) for value in inputs))
        graphed = self.passes.get(key)
        if graphed is None:
            graphed = self.passes[key] = GraphedPass(run, self.pool)
        return graphed(*inputs)

    def __enter__(self) -> PassGraphs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.passes.clear()


def cuda_graphs_wanted(model: object, device: torch.device) -> bool:
    """The model (or text encoder) asked for graphs (`.cuda_graphs`, set by compile=True) and runs on a GPU."""
    return bool(getattr(model, "cuda_graphs", False)) and device.type == "cuda"
