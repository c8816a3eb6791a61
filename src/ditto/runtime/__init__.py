"""The contract between a sampling loop and a transformer's block loop (see docs/architecture.md).

- `contract`: what one transformer call is (`PassContext`: the pass kinds of its batch, the step, the sigma),
  the per-request state of one sampling loop (`LoopState`: the text K/V store, the loop features), the
  plan of blocks a model hands to its loop (`BlockPlan`), and the `LoopFeature` protocol through which step
  caching, offload and parallelism wrap the loop.
- `block_loop`: the one block loop every model runs (`run_block_loop`).
- `progress`: one step loop's progress (a tqdm bar and the request's `StepEvent` callback).
"""

from ditto.runtime.block_loop import run_block_loop
from ditto.runtime.contract import BlockCall, BlockPlan, LoopFeature, LoopState, PassContext, PassKind
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
