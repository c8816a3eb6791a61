"""ditto's guidance settings against the official one-stage run (ltx-pipelines 1.0.0), each a whole run:

* STG on one modality only: the official guider skips the self-attention of that modality alone;
* only video values given (`stg_scale=0, modality_scale=1`): the audio guider keeps its own defaults;
* separate audio STG blocks (the official audio guider's stg_blocks);
* the official guiders' skip_step (Euler and res2s);
* skip_v2a_cross_attn_for_video_gt: the official model run with its video-to-audio attention skipped.

Each case must also move the result away from the plain full-guidance run, so it is not vacuous."""

from __future__ import annotations

import pytest
import torch
from ltx_official_reference import official_one_stage
from test_ltx_official import REQUEST, VERSIONS, official_latents_as_ditto

from ditto.engine import Engine

from helpers.metrics import max_abs
from helpers.thresholds import check_official

# A case must move the final latents by more than this against the full-guidance run.
MOVES = 1e-3
CASES = {
    "video STG only": dict(audio_stg_scale=0.0),
    "audio STG only (video values given)": dict(stg_scale=0.0, modality_scale=1.0),
    "separate audio STG blocks": dict(audio_spatio_temporal_guidance_blocks=[0]),
    "skip_step": dict(skip_step=1, audio_skip_step=1, num_inference_steps=3),
    "skip_v2a": dict(skip_v2a_cross_attn_for_video_gt=True),
}


@pytest.fixture(scope="module")
def engines(official_checkpoints):
    return {
        v: Engine.from_pretrained(path, text_encoder=gemma, dtype="float32")
        for v, (path, gemma) in official_checkpoints.items()
    }


def ditto_latents(engine, request: dict, sampler: str = "euler") -> dict[str, torch.Tensor]:
    return engine.generate(**request, sampler=sampler, output_type="latent").latents


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("version", VERSIONS)
def test_guidance_setting_matches_official(engines, official_checkpoints, version: str, case: str) -> None:
    path, gemma = official_checkpoints[version]
    request = {**REQUEST, **CASES[case]}
    reference = official_latents_as_ditto(engines[version], *official_one_stage(path, gemma, request)[:2])
    ours = ditto_latents(engines[version], request)
    check_official("one_stage_video_latents", max_abs(ours["video"], reference["video"]))
    check_official("one_stage_audio_latents", max_abs(ours["audio"], reference["audio"]))
    plain = ditto_latents(
        engines[version], {**REQUEST, "num_inference_steps": request["num_inference_steps"]}
    )
    assert max(max_abs(ours[k], plain[k]) for k in ("video", "audio")) > MOVES, f"{case} changes nothing"


@pytest.mark.parametrize("version", VERSIONS)
def test_one_modality_stg_perturbs_that_modality_only(engines, version: str) -> None:
    """Which self-attentions the STG pass skips matters: diffusers' rule (both) gives another result."""
    for one in (CASES["video STG only"], CASES["audio STG only (video values given)"]):
        official = ditto_latents(engines[version], {**REQUEST, **one})
        both = ditto_latents(engines[version], {**REQUEST, **one, "stg_rule": "diffusers"})
        assert max(max_abs(official[k], both[k]) for k in ("video", "audio")) > MOVES


def test_skip_step_with_res2s_matches_official(engines, official_checkpoints) -> None:
    """res2s's calls get the official step indices: the step's own, 0 at the midpoint, the step count at
    the final x0 (pipelines/ltx2/denoise.py official_step_index)."""
    path, gemma = official_checkpoints["2.0"]
    request = {**REQUEST, **CASES["skip_step"]}
    reference = official_one_stage(path, gemma, request, sampler="res2s")[:2]
    reference = official_latents_as_ditto(engines["2.0"], *reference)
    ours = ditto_latents(engines["2.0"], request, sampler="res2s")
    check_official("one_stage_video_latents", max_abs(ours["video"], reference["video"]))
    check_official("one_stage_audio_latents", max_abs(ours["audio"], reference["audio"]))
    plain = ditto_latents(engines["2.0"], {**REQUEST, "num_inference_steps": 3}, sampler="res2s")
    assert max_abs(ours["video"], plain["video"]) > MOVES
