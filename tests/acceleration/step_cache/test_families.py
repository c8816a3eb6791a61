"""The step cache on the three tiny families through the Engine (float32 CPU): a spec that can never skip is
bit for bit no cache; a static mask is bit for bit a hand-written loop that reuses the residuals; two
interleaved requests give what each gives alone; the stats say what ran per pass kind."""

from __future__ import annotations

import functools

import pytest
import torch

from ditto import Engine
from ditto.runtime import LoopInfo

from helpers.flux2 import tiny_klein
from helpers.ltx2 import FULL_GUIDANCE, tiny_ltx2

REQUESTS = {
    "ltx2": dict(
        prompt="a red fox", negative_prompt="blurry", **FULL_GUIDANCE, height=64, width=64, num_frames=9,
        num_inference_steps=6, pipeline="one-stage", seed=3,
    ),
    "flux2-klein-base": dict(prompt="a red fox", height=64, width=64, num_inference_steps=6, guidance_scale=4.0, seed=3),
    "qwen-image": dict(
        prompt="a red fox", negative_prompt="blurry", true_cfg_scale=4.0, height=32, width=32,
        num_inference_steps=6, seed=3,
    ),
}  # fmt: skip
KINDS = {"ltx2": {"uncond", "cond", "perturbed", "isolated"}, "flux2-klein-base": {"cond", "uncond"}}
KINDS["qwen-image"] = KINDS["flux2-klein-base"]


@functools.cache
def engine(name: str) -> Engine:
    """A fresh engine per family for this module (other tests clear the shared engines' loop features)."""
    model = {
        "ltx2": tiny_ltx2("2.0"),
        "flux2-klein-base": tiny_klein("base"),
        "qwen-image": "tiny-qwen-image",
    }
    return Engine.from_pretrained(model[name])


def latents(name: str, **changes) -> list[torch.Tensor]:
    result = engine(name).generate(**{**REQUESTS[name], "output_type": "latent", **changes})
    return list(result.latents.values())


def equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", sorted(REQUESTS))
@pytest.mark.parametrize("spec", ["dbcache:threshold=0,warmup=0", "mask:compute=all", "none"])
def test_a_spec_that_never_skips_is_no_cache_bit_for_bit(name: str, spec: str) -> None:
    assert equal(latents(name, cache=spec), latents(name))


class HandMask:
    """The reference of a static mask, written out: compute at `steps` and keep each pass's residual of the
    whole plan by its kinds; otherwise add that residual to the pass's input."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.residual = steps, {}

    def run_blocks(self, plan, streams, ctx, inner):
        base = plan.convert(streams, 0, len(plan))
        if ctx.step in self.steps:
            out = plan.run(streams)
            self.residual[ctx.kinds] = [after - before for after, before in zip(out, base)]
            return out
        return tuple(before + r for before, r in zip(base, self.residual[ctx.kinds]))


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_a_static_mask_is_the_hand_written_residual_loop(name: str) -> None:
    result = engine(name).generate(**REQUESTS[name], output_type="latent", cache="mask:compute=0-1+4")
    features = engine(name).pipeline.loop_features
    features.append(lambda info: HandMask({0, 1, 4}))
    try:
        by_hand = latents(name)
    finally:
        features.pop()
    assert equal(list(result.latents.values()), by_hand)
    assert not equal(by_hand, latents(name))  # the mask did skip something
    stats = result.cache_stats["denoise"]
    assert set(stats) == KINDS[name]
    assert all(s == {"computed": 3, "cached": 3, "cached_steps": [2, 3, 5]} for s in stats.values())


@pytest.mark.parametrize("name", ["ltx2", "qwen-image"])
def test_interleaved_requests_give_what_each_gives_alone(name: str) -> None:
    """Request B runs whole between two steps of request A (from A's progress callback): nothing is shared."""
    first = dict(cache="dbcache:Fn=1,threshold=0.9,warmup=1,max_cached=2,taylorseer=1")
    second = dict(cache="fast:taylorseer=2", prompt="waves at night", seed=11)
    alone_a, alone_b = latents(name, **first), latents(name, **second)
    inside: list = []

    def run_b(event) -> None:
        if event.step == 2:
            inside.append(latents(name, **second))

    request = {**REQUESTS[name], "output_type": "latent", **first}
    result = engine(name).generate(progress=run_b, **request)
    assert equal(list(result.latents.values()), alone_a) and equal(inside[0], alone_b)
    assert result.cache_stats["denoise"]["cond"]["cached"] > 0  # A did skip


def test_the_distilled_klein_refuses_a_cache_and_ignores_the_default() -> None:
    from ditto.errors import InvalidParameter

    request = dict(prompt="a fox", height=64, width=64, seed=0, output_type="latent")
    distilled = Engine.from_pretrained(tiny_klein("distilled"))
    with pytest.raises(
        InvalidParameter, match="cache='fast' does not apply to the step-distilled FLUX.2 Klein"
    ):
        distilled.validate(**request, cache="fast")
    with pytest.raises(InvalidParameter, match="does not apply"):
        distilled.generate(**request, cache="fast")
    served = Engine.from_pretrained(tiny_klein("distilled"), cache="fast")  # `ditto serve --cache fast`
    result = served.generate(**request)
    assert result.cache_stats == {
        "spec": "fast",
        "denoise": {"off": "the step-distilled FLUX.2 Klein: 4 steps, each a large jump"},
    }
    assert equal(list(result.latents.values()), list(distilled.generate(**request).latents.values()))


def test_a_server_default_applies_unless_the_request_names_its_own() -> None:
    served = Engine.from_pretrained(tiny_klein("base"), cache="mask:compute=0-1+4")
    request = {**REQUESTS["flux2-klein-base"], "output_type": "latent"}
    by_default = served.generate(**request)
    assert by_default.cache_stats["spec"] == "mask:compute=0-1+4"
    assert equal(list(by_default.latents.values()), latents("flux2-klein-base", cache="mask:compute=0-1+4"))
    assert served.generate(**request, cache="none").cache_stats is None


def test_a_factory_sees_the_request_cache_in_its_loop_info() -> None:
    seen: list[LoopInfo] = []
    features = engine("qwen-image").pipeline.loop_features
    features.append(lambda info: seen.append(info))
    try:
        engine("qwen-image").generate(**REQUESTS["qwen-image"], output_type="latent", cache="fast")
    finally:
        features.pop()
    assert seen[0].request.cache == "fast" and seen[0].stats["cache"]["spec"] == "fast"
