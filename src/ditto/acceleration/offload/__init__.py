"""Running models larger than the device: weights kept in host memory and moved to the device by stage, and a
transformer's (or text encoder's) blocks streamed while the others run, planned from a memory budget
(`Engine.from_pretrained(..., max_gpu_memory="24GiB")`, `--max-gpu-memory`). docs/architecture.md, "Offload".

- `memory`: budgets as written ("24GiB"), sizes, the device's peak memory per stage.
- `spec`: what a family declares (components, blocks that may stream, stages, activation estimates).
- `plan`: the residency plan from a budget (and the smallest budget that works); `describe`: it as text.
- `host`: the weights' page-locked host homes; `mover`: the copies to the device and back.
- `residency`: the stage edges; `streaming`: block streaming (a loop feature, or hooks on a text encoder).
- `setup`: the options resolved and offload turned on for a loaded pipeline.
"""

from ditto.acceleration.offload.memory import PeakMemory, format_bytes, parse_bytes
from ditto.acceleration.offload.plan import OffloadPlan, plan_offload
from ditto.acceleration.offload.setup import OffloadRequest, enable_offload, resolve_offload
from ditto.acceleration.offload.spec import Component, OffloadSpec, Stage

__all__ = [
    "Component",
    "OffloadPlan",
    "OffloadRequest",
    "OffloadSpec",
    "PeakMemory",
    "Stage",
    "enable_offload",
    "format_bytes",
    "parse_bytes",
    "plan_offload",
    "resolve_offload",
]
