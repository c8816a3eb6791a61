"""ditto's LTX-2 two-stage and distilled pipelines, and LoRA fusing, against diffusers on tiny weights
(float32 CPU). diffusers has every step of the official recipe: LTX2Pipeline, LTX2LatentUpsamplePipeline,
load_lora_weights + fuse_lora, noise_scale for the stage-2 re-noising."""

from __future__ import annotations

import functools
import re

import pytest
import torch
from ltx2_stages_reference import run_diffusers_stages

from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.recipes.two_stage import stage_one_params

from helpers.ltx2 import FULL_GUIDANCE, PROMPT, distilled_lora, stages_folder
from helpers.metrics import max_abs
from helpers.thresholds import check_at_most

GROUP = "ltx2_stages"
GUIDANCE = FULL_GUIDANCE
SIZE = dict(height=128, width=192, num_frames=9)


@functools.cache
def engine(version: str = "2.0"):
    from ditto import Engine

    return Engine.from_pretrained(stages_folder(version), device="cpu", dtype="float32")


def stage_one_latents(request: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Random stage-1 starting points (half size) for both sides: packed video, raw audio."""
    pipe = engine().pipeline
    shape = pipe.latent_shape(stage_one_params(pipe.validate(**request), None))
    generator = torch.Generator().manual_seed(1234)
    video = torch.randn(1, shape.video_tokens, shape.channels, generator=generator)
    audio = torch.randn(
        1, shape.audio_channels, shape.audio_frames, shape.audio_mel_bins, generator=generator
    )
    return video, audio


@pytest.mark.parametrize("version", ["2.0", "2.3"])
@pytest.mark.parametrize("pipeline", ["two-stage", "distilled"])
def test_stages_match_diffusers(pipeline: str, version: str) -> None:
    request = dict(**PROMPT, **SIZE, seed=7, pipeline=pipeline)
    if pipeline == "two-stage":
        request.update(GUIDANCE, sigmas=[1.0, 0.7, 0.3])
    else:  # the distilled pipeline takes no negative prompt (an error rather than ignored)
        del request["negative_prompt"]
    video, audio = stage_one_latents(request)
    request.update(latents=video, audio_latents=audio, output_type="latent")
    folder = stages_folder(version)
    reference_video, reference_audio = run_diffusers_stages(
        folder, distilled_lora(folder), request, pipeline == "distilled"
    )
    result = engine(version).generate(**request)
    assert result.latents["video"].shape == reference_video.shape == (1, 16, 2, 4, 6)
    case = f"{version} {pipeline}"
    check_at_most(
        GROUP, "latents_max_abs", max_abs(result.latents["video"], reference_video), f"{case} video"
    )
    check_at_most(
        GROUP, "latents_max_abs", max_abs(result.latents["audio"], reference_audio), f"{case} audio"
    )


def test_two_stage_sizes_must_be_multiples_of_64() -> None:
    with pytest.raises(InvalidParameter, match="height=96 is not a positive multiple of 64; try 128"):
        engine().validate(prompt="x", height=96, width=128, pipeline="two-stage")
    with pytest.raises(InvalidParameter, match="num_inference_steps"):
        engine().validate(prompt="x", height=128, width=128, pipeline="distilled", num_inference_steps=4)
    with pytest.raises(InvalidParameter, match="pipeline='three-stage' is not known"):
        engine().validate(prompt="x", pipeline="three-stage")
    with pytest.raises(InvalidParameter, match="sampler='res2s' is not supported by pipeline='two-stage'"):
        engine().validate(prompt="x", height=128, width=128, pipeline="two-stage", sampler="res2s")
    assert engine().validate(prompt="x").pipeline == "two-stage"  # the official recommendation when possible


def weights(eng) -> dict[str, torch.Tensor]:
    parts = eng.pipeline.components
    state = {f"transformer.{k}": v for k, v in parts.transformer.state_dict().items()}
    state.update({f"connectors.{k}": v for k, v in parts.connectors.state_dict().items()})
    return {k: v.detach().clone() for k, v in state.items()}


def assert_bitwise_equal(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k].view(torch.int32), after[k].view(torch.int32))]
    assert not changed, f"{len(changed)} weights not restored bit for bit: {changed[:5]}"


def test_fuse_generate_unfuse_restores_every_weight_exactly() -> None:
    eng = engine()
    before = weights(eng)
    eng.load_lora(distilled_lora(stages_folder()), 0.8)
    fused = weights(eng)
    assert sum(not torch.equal(before[k], fused[k]) for k in before) == 57  # every LoRA target changed
    eng.generate(**PROMPT, **SIZE, pipeline="two-stage", num_inference_steps=2, output_type="latent", seed=1)
    eng.unload_lora()
    assert_bitwise_equal(before, weights(eng))


def test_lora_at_scale_zero_equals_no_lora() -> None:
    eng = engine()
    request = dict(**PROMPT, height=64, width=64, num_frames=9, num_inference_steps=2, seed=3)
    request.update(pipeline="one-stage", output_type="latent")
    plain = eng.generate(**request).latents
    eng.load_lora(distilled_lora(stages_folder()), 0.0)
    try:
        zero = eng.generate(**request).latents
    finally:
        eng.unload_lora()
    assert max_abs(plain["video"], zero["video"]) == 0.0 and max_abs(plain["audio"], zero["audio"]) == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("guidance_scale", 4.0),
        ("audio_stg_scale", 1.0),
        ("guidance_rescale", 0.7),
        ("negative_prompt", "blur"),
    ],
)
def test_the_distilled_pipeline_rejects_guidance_it_would_ignore(field: str, value) -> None:  # noqa: ANN001
    """It runs no guidance pass: a guidance term or negative prompt is an error naming the field and value,
    not silently dropped; the value that turns a term off is accepted."""
    request = dict(prompt="x", height=128, width=128, pipeline="distilled")
    with pytest.raises(InvalidParameter, match=re.escape(f"{field}={value!r} is not used by the distilled")):
        engine().validate(**request, **{field: value})
    engine().validate(**request, guidance_scale=1.0, stg_scale=0.0, negative_prompt="")
