"""How a pipeline's sampling loops get their step cache: one `StepCacheFeatures` factory registered on the
pipeline (runtime.FeatureFactory), holding only the server's default spec. Each loop it reads the request's
own `cache` (or that default), says where the cache does not apply, and makes a fresh `StepCache`.

Where it does not apply (the loop runs uncached, and the Result's cache stats say why):
- LTX-2 stage 2 (two-stage and distilled): three fixed distilled sigmas, no guidance, every step moves the
  video a lot, and there are too few steps for a skipped one to be worth its error.
- Step-distilled loops (LTX-2 `pipeline="distilled"`, the 4-step FLUX.2 Klein): each step is trained to
  make a large jump. A request that asks for a cache there gets an InvalidParameter; a server default is
  simply not applied to it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ditto.acceleration.step_cache.feature import StepCache, check_depth
from ditto.acceleration.step_cache.spec import FIELD, CacheSpec, parse_cache_spec
from ditto.errors import InvalidParameter
from ditto.runtime.contract import LoopInfo

STAGE_2 = "denoise_stage_2"
NOT_CACHED_STAGE_2 = "LTX-2 stage 2: 3 distilled steps without guidance, each moves the video a lot"
DISTILLED = {
    "ltx2": "the distilled LTX-2 pipeline: 8 + 3 step-distilled steps, each a large jump",
    "flux2-klein": "the step-distilled FLUX.2 Klein: 4 steps, each a large jump",
}
GRAPHS_OFF = (
    "whole-pass CUDA graphs are off in cached loops: the cache decides per step in Python, which a replayed "
    "pass would skip"
)


class StepCacheFeatures:
    """The pipeline's step-cache factory: called once per sampling loop (runtime.RequestLoops)."""

    def __init__(self, pipeline: Any, default: str | None = None) -> None:
        parse_cache_spec(default)  # a bad default fails when the engine starts, not per request
        self.pipeline = pipeline
        self.default = default

    def __call__(self, info: LoopInfo) -> StepCache | None:
        explicit = getattr(info.request, FIELD, None)
        spec = parse_cache_spec(explicit if explicit is not None else self.default)
        if spec is None:
            return None
        record = info.stats.setdefault(FIELD, {"spec": spec.text})
        reason = self.not_cached(info.request, info.stage)
        if reason is not None and not (explicit is not None and self.distilled(info.request)):
            record[info.stage] = {"off": reason}
            return None
        self.check(info.request, spec, explicit is not None, info.num_steps)
        if getattr(self.transformer, "cuda_graphs", False):
            record["cuda_graphs"] = GRAPHS_OFF
        return StepCache(
            spec, info.num_steps, spec.thresholds[: self.decision_streams], record.setdefault(info.stage, {})
        )

    @property
    def transformer(self) -> nn.Module | None:
        from ditto.acceleration.compile import pipeline_transformer

        return pipeline_transformer(self.pipeline)

    @property
    def decision_streams(self) -> int:
        """LTX-2 decides on its video and its audio stream; the image families on the image stream."""
        return 2 if self.pipeline.family == "ltx2" else 1

    def not_cached(self, request: Any, stage: str) -> str | None:
        """Why this loop runs without a cache, or None."""
        if self.distilled(request):
            return DISTILLED[self.pipeline.family]
        return NOT_CACHED_STAGE_2 if stage == STAGE_2 else None

    def distilled(self, request: Any) -> bool:
        if self.pipeline.family == "ltx2":
            return getattr(request, "pipeline", None) == "distilled"
        components = getattr(self.pipeline, "components", None)
        return bool(getattr(components, "is_distilled", False))

    def check(self, request: Any, spec: CacheSpec, explicit: bool, num_steps: int | None = None) -> None:
        """The checks that need the model or the loop: a step-distilled loop, Fn + Bn against the depth,
        mask steps against the step count. InvalidParameter names the spec."""
        if explicit and self.distilled(request):
            raise InvalidParameter(
                FIELD, spec.text, f"does not apply to {DISTILLED[self.pipeline.family]}", "leave cache unset"
            )
        depth = model_depth(self.transformer)
        if depth:
            check_depth(spec, depth)
        steps = num_steps or getattr(request, "num_inference_steps", None)
        if spec.compute and isinstance(steps, int) and max(spec.compute) >= steps:
            raise InvalidParameter(
                FIELD,
                spec.text,
                f"computes step {max(spec.compute)}, but the loop has {steps} (0..{steps - 1})",
            )

    def check_request(self, request: Any) -> None:
        """The early check of a validated request (`Engine.validate`), before anything runs."""
        explicit = getattr(request, FIELD, None)
        spec = parse_cache_spec(explicit if explicit is not None else self.default)
        if spec is not None:
            self.check(request, spec, explicit is not None)


def model_depth(transformer: nn.Module | None) -> int:
    """The blocks of a block plan: every `*blocks` ModuleList of the transformer (FLUX.2 has two)."""
    if transformer is None:
        return 0
    lists = [m for name, m in transformer.named_children() if name.endswith("blocks")]
    return sum(len(blocks) for blocks in lists if isinstance(blocks, nn.ModuleList))


def install_step_cache(pipeline: Any, default: str | None = None) -> StepCacheFeatures:
    """Register the step-cache factory on `pipeline` (first, so the cache wraps the other features), once;
    a second call replaces the default. A pipeline without loop features (a test's stand-in) gets none."""
    features = getattr(pipeline, "loop_features", None)
    if features is None:
        return StepCacheFeatures(pipeline, default)
    for index, factory in enumerate(features):
        if isinstance(factory, StepCacheFeatures):
            features[index] = StepCacheFeatures(pipeline, default)
            return features[index]
    features.insert(0, StepCacheFeatures(pipeline, default))
    return features[0]


def summary(stats: dict[str, Any]) -> str:
    """One line for the CLI: each loop's computed passes per kind, or why it ran uncached."""
    loops = []
    for stage, kinds in stats.items():
        if not isinstance(kinds, dict):
            continue
        if "off" in kinds:
            loops.append(f"{stage} not cached ({kinds['off']})")
            continue
        counts = [f"{kind} {c['computed']}/{c['computed'] + c['cached']}" for kind, c in kinds.items()]
        loops.append(f"{stage} computed {', '.join(counts)}")
    if "cuda_graphs" in stats:
        loops.append("whole-pass CUDA graphs off in cached loops")
    return f"cache {stats.get('spec', '')}: " + "; ".join(loops)
