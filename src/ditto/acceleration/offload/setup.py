"""Turning offload on for a loaded pipeline: the options resolved, the plan made and printed, the weights given
host homes, the residency handed to the pipeline's stages and the block streaming to its sampling loops."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ditto.acceleration.offload.host import HostStore
from ditto.acceleration.offload.memory import format_bytes, parse_bytes
from ditto.acceleration.offload.mover import Mover
from ditto.acceleration.offload.plan import OffloadPlan, Sizes, plan_offload
from ditto.acceleration.offload.residency import Residency
from ditto.acceleration.offload.spec import OffloadSpec
from ditto.acceleration.offload.streaming import LayerHooks
from ditto.errors import InvalidParameter


@dataclass(frozen=True)
class OffloadRequest:
    mode: str  # "cpu" or "none"
    budget: int  # bytes
    given: object  # the budget as the user wrote it (for errors)


def resolve_offload(max_gpu_memory: Any, offload: str | None, device: torch.device) -> OffloadRequest | None:
    """What `max_gpu_memory=` and `offload=` ask for on `device`; None: everything on the device, unchecked."""
    if offload == "disk":
        raise InvalidParameter(
            "offload", "disk",
            "is not supported: ditto streams offloaded weights from page-locked host memory (55 GB/s to an "
            "H200, several times a disk's rate), and the weights it streams are often not the file's (FP8, "
            "fused LoRAs, cast dtypes), so a per-block read of the checkpoint would be both slower and wrong",
            'use offload="cpu" (host memory) with max_gpu_memory',
        )  # fmt: skip
    if max_gpu_memory is None and offload in (None, "none"):
        return None
    if max_gpu_memory is not None:
        return OffloadRequest(offload or "cpu", parse_bytes(max_gpu_memory), max_gpu_memory)
    if device.type != "cuda":
        raise InvalidParameter(
            "offload", offload, f"needs max_gpu_memory on {device} (no device memory to read there)",
            'e.g. max_gpu_memory="24GiB"',
        )  # fmt: skip
    free, _total = torch.cuda.mem_get_info(device)
    return OffloadRequest(offload, free, f"{format_bytes(free)} free on {device}")


def component_sizes(spec: OffloadSpec) -> dict[str, Sizes]:
    sizes = {}
    for component in spec.components:
        fixed, blocks = component.sizes()
        sizes[component.name] = Sizes(fixed, blocks, component.part_of)
    return sizes


def smallest_budget(pipeline: Any, plan_for: dict[str, Any] | None = None) -> int:
    """The smallest budget a plan exists for (the family's default request, or `plan_for`)."""
    spec: OffloadSpec = pipeline.offload_spec()
    request = None if plan_for is None else pipeline.validate(**plan_for)
    return plan_offload(spec.family, component_sizes(spec), spec.stages(request), 2**62).smallest


def enable_offload(
    pipeline: Any, device: torch.device, request: OffloadRequest, plan_for: dict[str, Any] | None = None
) -> OffloadPlan:
    """Plan the pipeline's residency within the budget and, unless the plan keeps everything on the device,
    move its weights to host homes and hand its stages the residency (`components.residency`) and its
    sampling loops the block streaming (the last of `loop_features`, innermost: every range a feature before
    it runs through `inner`, a step cache's computed ranges, reaches it, and only those blocks move). A
    pipeline already offloaded is re-planned in place (its homes are kept).

    The plan (which components stay on the device, the smallest budget) is made for the family's default
    request, or for the request `plan_for` gives (generate() keywords); each request then re-plans its stages
    for its own sizes with the same components kept."""
    spec: OffloadSpec = pipeline.offload_spec()
    planned_request = None if plan_for is None else pipeline.validate(**plan_for)
    stages = spec.stages(planned_request)
    plan = plan_offload(
        spec.family, component_sizes(spec), stages, request.budget, request.mode, request.given
    )
    previous = pipeline.components.residency
    if plan.mode == "none":
        if previous is not None:
            disable_offload(pipeline)
        return plan
    if previous is not None:
        _unwire(pipeline, previous)
        mover = previous.mover
    else:
        mover = Mover(device, HostStore(pin=device.type == "cuda"))
    mover.evict_all_but(())
    for component in spec.components:
        mover.store.adopt(component.owned_tensors())
    residency = Residency(spec, plan, mover)
    residency.hooks = [
        LayerHooks(mover, component.blocks)
        for component in spec.components
        if component.streamable and component.via == "hooks" and component.name not in plan.always
    ]
    pipeline.components.residency = residency
    pipeline.loop_features.append(residency.block_feature)
    if spec.attach is not None:
        spec.attach(residency)
    residency.load_always()
    if device.type == "cuda":
        expandable_segments()
        torch.cuda.empty_cache()  # what loading left in the allocator's cache belongs to the budget now
    return plan


def expandable_segments() -> None:
    """Have the CUDA allocator grow segments page by page (unless PYTORCH_CUDA_ALLOC_CONF says otherwise).

    Streaming frees and allocates blocks of several sizes (a stage-2 block carries its LoRA factors, Gemma's
    layers differ from the DiT's): fixed-size cached segments then leave free memory the next size does not
    fit. Measured on the H200 (benchmarks/RESULTS.md, 2026-12-03): LTX-2 within 24 GiB failed with 1.6 GiB
    reserved but unallocated, more than the plan's 5 % reserve. With expandable segments free pages serve
    any size and `empty_cache` returns them."""
    if "expandable_segments" in os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""):
        return  # the user's choice stands
    setter = getattr(torch._C, "_accelerator_setAllocatorSettings", None)  # torch.cuda's own is deprecated
    (setter or torch.cuda.memory._set_allocator_settings)("expandable_segments:True")


def disable_offload(pipeline: Any) -> None:
    """Every managed weight back on the device for good and the host homes freed (the benchmark turns offload
    off to quantize on the device, and to time the same pipeline resident)."""
    residency = pipeline.components.residency
    if residency is None:
        return
    _unwire(pipeline, residency)
    mover = residency.mover
    mover.load(list(mover.store.tensors.values()))
    mover.loaded.clear()  # their device copies are theirs now, not copies of a home
    mover.store = HostStore(pin=False)
    pipeline.components.residency = None


def _unwire(pipeline: Any, residency: Residency) -> None:
    for hooks in residency.hooks:
        hooks.remove()
    residency.hooks = []
    if residency.block_feature in pipeline.loop_features:
        pipeline.loop_features.remove(residency.block_feature)
    if residency.spec.detach is not None:
        residency.spec.detach()
