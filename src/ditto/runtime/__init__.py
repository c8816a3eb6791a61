"""The contract between a sampling loop and a transformer's block loop (see docs/architecture.md).

- `contract`: what one transformer call is (`PassContext`: the pass kinds of its batch, the step, the sigma),
  the per-request state of one sampling loop (`LoopState`: the text K/V store, the loop features), the
  plan of blocks a model hands to its loop (`BlockPlan`), and the `LoopFeature` protocol through which step
  caching, offload and parallelism wrap the loop.
- `block_loop`: the one block loop every model runs (`run_block_loop`).
- `progress`: one step loop's progress (a tqdm bar and the request's `StepEvent` callback).
"""

from ditto.runtime.block_loop import run_block_loop
from ditto.runtime.contract import (
    BlockCall,
    BlockPlan,
    FeatureFactory,
    LoopFeature,
    LoopInfo,
    LoopState,
    PassContext,
    PassKind,
    RequestLoops,
    make_features,
)
from ditto.runtime.progress import Progress, ProgressCallback, StepEvent

__all__ = [
    "BlockCall",
    "BlockPlan",
    "FeatureFactory",
    "LoopFeature",
    "LoopInfo",
    "LoopState",
    "PassContext",
    "PassKind",
    "Progress",
    "ProgressCallback",
    "RequestLoops",
    "StepEvent",
    "make_features",
    "run_block_loop",
]
