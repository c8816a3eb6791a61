"""The residency plan as text: printed when an engine is loaded with a memory budget."""

from __future__ import annotations

from typing import Any

from ditto.acceleration.offload.memory import format_bytes

# The plan's types are not imported here (plan.py imports this module): an OffloadPlan, a StagePlan.
OffloadPlan = StagePlan = Any


def describe_plan(plan: OffloadPlan) -> str:
    head = f"offload plan for {plan.family} within {format_bytes(plan.budget)}"
    if plan.mode == "none":
        head += " (offload none: everything stays on the device)"
    lines = [
        f"{head}; reserve {format_bytes(plan.reserve)}; smallest budget that works: "
        f"{format_bytes(plan.smallest)}",
        "  on the device throughout: " + (_names(plan, plan.always) or "nothing"),
    ]
    width = max((len(stage.name) for stage in plan.stages), default=0)
    for stage in plan.stages:
        lines.append(f"  {stage.name:{width}s}  {_stage(plan, stage)}")
    if plan.mode != "none":
        lines.append(f"  host -> device per request: about {format_bytes(plan.moved_per_request())}")
    return "\n".join(lines)


def _names(plan: OffloadPlan, names: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {format_bytes(plan.sizes[name].total)}" for name in names)


def _stage(plan: OffloadPlan, stage: StagePlan) -> str:
    parts = []
    for name in stage.loaded:
        if name in plan.always:
            continue
        if name in stage.streamed and stage.streamed[name]:
            kept, streamed = len(stage.resident[name]), len(stage.streamed[name])
            per_pass = format_bytes(stage.streamed_bytes[name])
            parts.append(
                f"{name} ({kept} of {kept + streamed} blocks resident, {streamed} streamed: "
                f"{per_pass} per pass x {stage.passes})"
            )
        else:
            parts.append(f"{name} {format_bytes(plan.sizes[name].total)}")
    loads = ", ".join(parts) or "(nothing more)"
    peak = stage.weights + stage.workspace + plan.reserve
    return f"{loads}; activations ~{format_bytes(stage.workspace)}; planned peak {format_bytes(peak)}"
