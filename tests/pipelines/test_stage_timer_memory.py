"""StageTimer: the device's peak memory per stage (read from the allocator at each stage's end, restarted at
its beginning) and the residency told where each stage begins and ends, in that order."""

from __future__ import annotations

import torch

from ditto.pipelines.base import StageTimer
from ditto.result import Result


class FakeAllocator:
    """What PeakMemory reads on a GPU: a peak the test sets, restarted on reset."""

    def __init__(self) -> None:
        self.current = 0
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.current = 0

    def peak(self) -> int:
        return self.current


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def begin(self, request: object) -> None:
        self.calls.append(("begin", request))

    def enter(self, stage: str) -> None:
        self.calls.append(("enter", stage))

    def exit(self, stage: str) -> None:
        self.calls.append(("exit", stage))


def test_peaks_per_stage_and_the_residency_told_of_each_edge() -> None:
    residency = Recorder()
    timer = StageTimer(torch.device("cpu"), residency)
    timer.meter = allocator = FakeAllocator()
    timer.begin("request")
    with timer.stage("encode_text"):
        allocator.current = 5 * 2**30
    with timer.stage("denoise"):
        allocator.current = 7 * 2**30
    with timer.stage("denoise"):  # a stage run twice keeps its larger peak
        allocator.current = 6 * 2**30
    assert timer.memory == {"encode_text": 5 * 2**30, "denoise": 7 * 2**30}
    assert allocator.resets == 3
    assert residency.calls == [
        ("begin", "request"),
        ("enter", "encode_text"), ("exit", "encode_text"),
        ("enter", "denoise"), ("exit", "denoise"),
        ("enter", "denoise"), ("exit", "denoise"),
    ]  # fmt: skip
    line = Result(memory=timer.memory).memory_line()
    assert line == "peak device memory per stage: encode_text 5.00 GiB, denoise 7.00 GiB"


def test_the_cpu_reads_no_device_memory() -> None:
    timer = StageTimer(torch.device("cpu"))
    with timer.stage("denoise"):
        pass
    assert timer.memory == {} and Result(memory=timer.memory).memory_line() is None
