"""Offload fixtures: tiny checkpoints deep enough that blocks stream (two blocks always fit the two stream
slots), engines offloaded within a chosen budget, and a guard that fails a test when any module runs on its
host homes instead of device copies."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ditto import Engine
from ditto.acceleration.offload import OffloadRequest, enable_offload
from ditto.acceleration.offload.plan import OffloadPlan
from ditto.acceleration.offload.residency import Residency

_ROOT = Path(tempfile.mkdtemp(prefix="ditto-tiny-offload-"))
atexit.register(shutil.rmtree, _ROOT, True)
CPU = torch.device("cpu")


@functools.cache
def deep_ltx2() -> Path:
    """Two-stage ready (upsampler, distilled LoRA), 6 transformer blocks, 4 Gemma layers."""
    from ditto.tiny.ltx2 import build_tiny

    folder = _ROOT / "ltx2"
    build_tiny(folder, "2.0", True, True, gemma_layers=4, transformer_layers=6)
    return folder


@functools.cache
def deep_qwen_image() -> Path:
    from ditto.tiny.qwen_image import build_tiny_qwen_image

    folder = _ROOT / "qwen-image"
    build_tiny_qwen_image(folder, layers=6)
    return folder


def resident(model: Any, **options: Any) -> Engine:
    """The reference engine: resident, each weight in memory of its own (as offloading leaves the copies it
    makes). Loaded weights may sit at any byte offset inside a checkpoint's buffer, and CPU matrix kernels
    round differently by the alignment of their operands (Qwen-Image's 256->32 timestep layer: a 1e-6
    difference); the same kernels on the same data means the same alignment too."""
    from ditto.acceleration.offload.memory import module_tensors

    engine = Engine.from_pretrained(model, **options)
    with torch.no_grad():
        for component in engine.pipeline.offload_spec().components:
            for tensor in module_tensors(component.owners or component.modules):
                tensor.data = tensor.data.clone()
    return engine


def offloaded(
    model: Any, budget_kib: int | None, request: dict[str, Any], **options: Any
) -> tuple[Engine, OffloadPlan]:
    """An engine on the CPU, its weights offloaded within `budget_kib` KiB (None: the smallest budget that
    works), planned for `request`."""
    from ditto.acceleration.offload.setup import smallest_budget

    engine = Engine.from_pretrained(model, **options)
    budget = smallest_budget(engine.pipeline, request) if budget_kib is None else budget_kib * 1024
    plan = enable_offload(engine.pipeline, CPU, OffloadRequest("cpu", budget, f"{budget}B"), request)
    return engine, plan


def guard_loaded(residency: Residency) -> list[Any]:
    """A pre-hook on every module holding its own weights: it fails when any of them is at its host home
    (the module would run on weights the residency forgot to bring)."""
    store = residency.mover.store
    handles = []
    for component in residency.spec.components:
        for owner in component.owners or component.modules:
            for module in owner.modules():
                own = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
                if any(t in store for t in own):
                    handles.append(
                        module.register_forward_pre_hook(_check(store, own, type(module).__name__))
                    )
    return handles


def _check(store: Any, tensors: list[torch.Tensor], name: str) -> Any:
    def hook(module: Any, args: Any) -> None:
        at_home = [t for t in tensors if store.at_home(t)]
        assert not at_home, f"{name} ran with {len(at_home)} of its tensors at their host homes"

    return hook


def within_plan(residency: Residency) -> None:
    """Every stage kept its weights within what the plan left them: budget - reserve - activations."""
    plan = residency.plan
    for stage in residency.stages:
        peak = residency.weight_peaks.get(stage.name, 0)
        assert peak <= plan.budget - plan.reserve - stage.workspace, (stage.name, peak)
