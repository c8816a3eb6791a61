"""The contract between a sampling loop and a transformer's block loop (see docs/architecture.md).

- `passes`: what one transformer call is (`PassContext`: the pass kinds of its batch, the step, the sigma)
  and the per-request state of one sampling loop (`LoopState`: the text K/V store, the loop features).
- `block_loop`: the one block loop every model runs (`BlockPlan`, `run_block_loop`), and the
  `LoopFeature` protocol through which step caching, offload and parallelism wrap it.
- `progress`: one step loop's progress (a tqdm bar and the request's `StepEvent` callback).
"""

from ditto.runtime.block_loop import BlockCall, BlockPlan, LoopFeature, run_block_loop
from ditto.runtime.passes import LoopState, PassContext, PassKind
from ditto.runtime.progress import Progress, ProgressCallback, StepEvent

__all__ = [
    "BlockCall",
    "BlockPlan",
    "LoopFeature",
    "LoopState",
    "PassContext",
    "PassKind",
    "Progress",
    "ProgressCallback",
    "StepEvent",
    "run_block_loop",
]
