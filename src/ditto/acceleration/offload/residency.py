"""Where a pipeline's weights are, stage by stage (made by `enable_offload`, held as `components.residency`).

The pipelines call it at their stage edges (`StageTimer(device, residency)`): entering a stage evicts what the
stage does not run (free: the homes on the host are the weights' copies that count) and brings what it runs
to the device; for a streamable component, its fixed part and the blocks its room in the plan holds, chosen
from the blocks' sizes as they are now (a LoRA attached beside stage 2's blocks makes them larger). Where the
plan leaves room, the next stage's components start arriving on the side stream during this stage.
`begin(request)` re-plans the stages for a request's own sizes (activations) with the same components kept
resident, and refuses a request that cannot fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from ditto.acceleration.offload.memory import format_bytes, module_tensors, tensor_bytes
from ditto.acceleration.offload.mover import Mover
from ditto.acceleration.offload.plan import OffloadPlan, StagePlan, plan_stage, split_blocks
from ditto.acceleration.offload.spec import Component, OffloadSpec
from ditto.acceleration.offload.streaming import LayerHooks, StreamBlocks
from ditto.errors import InvalidParameter
from ditto.runtime.contract import LoopInfo


class Residency:
    def __init__(self, spec: OffloadSpec, plan: OffloadPlan, mover: Mover) -> None:
        self.spec, self.plan, self.mover = spec, plan, mover
        self.components = {c.name: c for c in spec.components}
        self.stages: list[StagePlan] = list(plan.stages)
        self.weight_peaks: dict[str, int] = {}  # per stage: most weight bytes on the device (tests read it)
        self.current: str | None = None
        self.hooks: list[LayerHooks] = []  # text-encoder layer streaming, installed by enable_offload

    # -- the request and its stages ---------------------------------------------------------------------------
    def begin(self, request: object) -> None:
        """Plan this request's stages (its own activation sizes), keeping the load-time resident set."""
        planned = []
        for stage in self.spec.stages(request):
            stage_plan = plan_stage(stage, self.plan.always, self.plan.sizes, self.plan.budget)
            if stage_plan is None:
                raise InvalidParameter(
                    "max_gpu_memory", format_bytes(self.plan.budget),
                    f"is too small for this request's {stage.name} (about {format_bytes(stage.workspace)} "
                    "of activations besides the weights)", "a smaller request or a larger budget",
                )  # fmt: skip
            planned.append(stage_plan)
        self.stages = planned

    def stage_plan(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    # -- stage edges (StageTimer) ------------------------------------------------------------------------------
    def enter(self, name: str) -> None:
        """Bring the stage's components to the device and evict the rest; a stage the plan does not name
        leaves everything where it is."""
        stage = self.stage_plan(name)
        if stage is None:
            return
        self.current = name
        keep = self._stage_tensors(stage)
        self.mover.evict_all_but(keep)
        if self.mover.device.type == "cuda":
            # What the last stage freed goes back to the device: the budget counts reserved memory, and this
            # stage allocates in other sizes (its blocks, its activations).
            torch.cuda.empty_cache()
        self.mover.load(keep, wait=True)
        self.mover.peak = self.mover.loaded_bytes()
        self._prefetch_next(stage)

    def exit(self, name: str) -> None:
        if self.current == name:
            self.weight_peaks[name] = max(self.weight_peaks.get(name, 0), self.mover.peak)
            self.current = None

    def _stage_tensors(self, stage: StagePlan) -> list[torch.Tensor]:
        tensors: list[torch.Tensor] = []
        for name in stage.loaded:
            component = self.components[name]
            if name in stage.room:
                tensors += component.fixed_tensors() + self._resident_blocks(component, stage.room[name])
            else:
                tensors += component.tensors()
        return tensors

    def _resident_blocks(self, component: Component, room: int) -> list[torch.Tensor]:
        """The tensors of the blocks that fit `room` as they are now (stream slots left free)."""
        blocks = component.block_tensors()
        split = split_blocks([tensor_bytes(b) for b in blocks], room)
        if split is None:
            warnings.warn(
                f"{component.name}'s blocks grew past the plan ({format_bytes(room)} of room): all of them "
                "stream, and the device may go past the budget",
                stacklevel=3,
            )
            return []
        return [t for index in split[0] for t in blocks[index]]

    def _prefetch_next(self, stage: StagePlan) -> None:
        """Start loading the next stage's components now where the budget holds both stages' needs."""
        position = self.stages.index(stage)
        if position + 1 >= len(self.stages):
            return
        following = self.stages[position + 1]
        arriving = [t for t in self._stage_tensors(following) if not self.mover.is_loaded(t)]
        room = self.plan.budget - self.plan.reserve - stage.weights - stage.workspace
        if arriving and tensor_bytes(arriving) <= room:
            self.mover.load(arriving, wait=False)

    # -- wiring --------------------------------------------------------------------------------------------------
    def load_always(self) -> None:
        self.mover.load([t for name in self.plan.always for t in self.components[name].tensors()])

    def block_feature(self, info: LoopInfo) -> StreamBlocks | None:
        """The loop feature factory: a `StreamBlocks` for a loop whose transformer has blocks off the device."""
        for component in self.spec.components:
            if component.streams_in_loop and any(
                not self.mover.is_loaded(t) for t in module_tensors(component.blocks)
            ):
                return StreamBlocks(self.mover)
        return None

    def adopt(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Tensors made after loading (LoRA factors, maybe under inference mode) as managed copies with host
        homes, which move like the weights."""
        return self.mover.store.adopt_copies(tensors)

    def write_home(self, tensors: Iterable[torch.Tensor]) -> None:
        """After weights changed in place (a LoRA fused or unfused): copy the device values home."""
        self.mover.write_home(tensors)
