"""Loop features registered on a pipeline: one fresh feature per sampling loop, told the loop's stage and step
count, and the request's own stats dict coming back as Result.stats (per request, never shared)."""

from __future__ import annotations

import pytest

from ditto.engine import Engine
from ditto.runtime import LoopInfo

CASES = {
    "tiny-ltx2": dict(height=64, width=64, num_frames=9, num_inference_steps=2),
    "tiny-flux2-klein": dict(height=64, width=64, num_inference_steps=2),
    "tiny-qwen-image": dict(height=32, width=32, num_inference_steps=2),
}


class CountingFeature:
    """Counts the passes it wraps into the request's stats."""

    def __init__(self, info: LoopInfo) -> None:
        self.info = info
        info.stats.setdefault("loops", []).append((info.family, info.stage, info.num_steps))

    def run_blocks(self, plan, streams, ctx, inner):
        passes = self.info.stats.setdefault("passes", 0)
        self.info.stats["passes"] = passes + 1
        return inner(plan, streams, ctx)


@pytest.mark.parametrize("model", list(CASES))
def test_each_loop_gets_a_fresh_feature_and_the_request_its_stats(model: str) -> None:
    engine = Engine.from_pretrained(model)
    made: list[CountingFeature] = []

    def factory(info: LoopInfo) -> CountingFeature:
        made.append(CountingFeature(info))
        return made[-1]

    engine.pipeline.loop_features.append(factory)
    first = engine.generate(prompt="a fox", seed=0, **CASES[model])
    second = engine.generate(prompt="a fox", seed=0, **CASES[model])
    assert first.stats is not second.stats and first.stats == second.stats
    assert first.stats["loops"] == [(engine.family, "denoise", 2)]
    assert first.stats["passes"] >= 2  # at least one pass per step
    assert len(made) == 2 and made[0] is not made[1]


def test_a_factory_may_decline_a_loop() -> None:
    engine = Engine.from_pretrained("tiny-flux2-klein")
    engine.pipeline.loop_features.append(lambda info: None)
    assert engine.generate(prompt="a fox", seed=0, **CASES["tiny-flux2-klein"]).stats == {}
