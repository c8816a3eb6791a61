"""LTX-2 request parameters: official defaults per version, and every explicit value surviving the merge."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.params import OFFICIAL_DEFAULTS, OFFICIAL_NEGATIVE_PROMPT, LTX2Params


def test_defaults_are_the_official_ones_per_version() -> None:
    v20 = LTX2Params(prompt="x").resolved("2.0", num_layers=48)
    v23 = LTX2Params(prompt="x").resolved("2.3", num_layers=48)
    assert (v20.num_inference_steps, v23.num_inference_steps) == (40, 30)
    assert (v20.spatio_temporal_guidance_blocks, v23.spatio_temporal_guidance_blocks) == ([29], [28])
    assert (v20.guidance_scale, v20.audio_guidance_scale, v20.guidance_rescale) == (3.0, 7.0, 0.7)
    assert (v20.height, v20.width, v20.num_frames, v20.frame_rate) == (512, 768, 121, 24.0)
    assert v20.negative_prompt == OFFICIAL_NEGATIVE_PROMPT


def test_explicit_falsy_values_survive_the_merge_with_defaults() -> None:
    """The seeds' lesson ("disable autocast" lost in a config merge): 0, 0.0 and [] are values, not "unset"."""
    explicit = dict(
        stg_scale=0.0,
        audio_stg_scale=0.0,
        guidance_rescale=0.0,
        audio_guidance_rescale=0.0,
        guidance_scale=0.0,
        audio_guidance_scale=0.0,
        modality_scale=0.0,
        audio_modality_scale=0.0,
        spatio_temporal_guidance_blocks=[],
        negative_prompt="",
    )
    resolved = LTX2Params(prompt="x", **explicit).resolved("2.0", num_layers=48)
    for name, value in explicit.items():
        assert getattr(resolved, name) == value, name


def test_every_field_given_survives_unchanged() -> None:
    given = LTX2Params(
        prompt=["a", "b"],
        negative_prompt=["c", "d"],
        height=256,
        width=320,
        num_frames=33,
        frame_rate=30.0,
        num_inference_steps=5,
        guidance_scale=2.5,
        stg_scale=0.5,
        modality_scale=2.0,
        guidance_rescale=0.3,
        audio_guidance_scale=5.0,
        audio_stg_scale=0.25,
        audio_modality_scale=1.5,
        audio_guidance_rescale=0.2,
        spatio_temporal_guidance_blocks=[3, 7],
        seed=11,
    )
    resolved = given.resolved("2.3", num_layers=48)
    for field in dataclasses.fields(LTX2Params):
        if getattr(given, field.name) is not None:
            assert getattr(resolved, field.name) == getattr(given, field.name), field.name


def test_unset_audio_values_keep_the_official_audio_defaults_not_the_video_values() -> None:
    """The official audio guider has its own defaults (ltx_pipelines constants: cfg 7, STG 1, modality 3,
    rescale 0.7, skip_step 0), and so has diffusers' LTX2Pipeline: setting a video value leaves them alone."""
    video_only = dict(stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.2, guidance_scale=2.0)
    resolved = LTX2Params(prompt="x", **video_only).resolved("2.0", num_layers=48)
    official = OFFICIAL_DEFAULTS["2.0"]
    audio = ("guidance_scale", "stg_scale", "modality_scale", "guidance_rescale", "skip_step")
    assert [getattr(resolved, f"audio_{name}") for name in audio] == [7.0, 1.0, 3.0, 0.7, 0]
    assert [getattr(resolved, f"audio_{name}") for name in audio] == [
        getattr(official, f"audio_{name}") for name in audio
    ]
    assert [getattr(resolved, name) for name in video_only] == list(video_only.values())


def test_audio_stg_blocks_follow_the_video_blocks_unless_given() -> None:
    """diffusers' one `spatio_temporal_guidance_blocks` names both modalities' blocks (the official guiders'
    defaults are equal); the audio guider's own blocks may be given apart."""
    both = LTX2Params(prompt="x", spatio_temporal_guidance_blocks=[3]).resolved("2.0", num_layers=48)
    assert both.audio_spatio_temporal_guidance_blocks == [3]
    apart = LTX2Params(
        prompt="x", spatio_temporal_guidance_blocks=[3], audio_spatio_temporal_guidance_blocks=[5, 6]
    ).resolved("2.3", num_layers=48)
    assert (apart.spatio_temporal_guidance_blocks, apart.audio_spatio_temporal_guidance_blocks) == (
        [3],
        [5, 6],
    )
    default = LTX2Params(prompt="x").resolved("2.3", num_layers=48)
    assert default.audio_spatio_temporal_guidance_blocks == [28]


def test_skip_steps_of_the_two_modalities_must_agree() -> None:
    assert LTX2Params(prompt="x", skip_step=1, audio_skip_step=1).resolved("2.0", 48).skip_step == 1
    with pytest.raises(InvalidParameter, match="audio_skip_step=0 differs from skip_step=2") as raised:
        LTX2Params(prompt="x", skip_step=2).resolved("2.0", num_layers=48)
    assert raised.value.field == "audio_skip_step" and "audio_skip_step=2" in raised.value.hint


def test_shallow_models_perturb_their_last_block_by_default() -> None:
    assert LTX2Params(prompt="x").resolved("2.0", num_layers=2).spatio_temporal_guidance_blocks == [1]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_frames", 120, "num_frames=120 is not 8k+1; try 121"),
        ("height", 500, "height=500 is not a positive multiple of 32; try 512"),
        ("num_inference_steps", 0, "num_inference_steps=0 must be a int >= 1"),
        ("width", 32, "width=32 is below the smallest size this model decodes (64); try 64"),
        ("stg_scale", -0.5, "stg_scale=-0.5 must be a float >= 0.0"),
        ("spatio_temporal_guidance_blocks", [48], "names a block outside 0..47"),
        ("audio_spatio_temporal_guidance_blocks", [-1], "names a block outside 0..47"),
        ("skip_step", -1, "skip_step=-1 must be a int >= 0"),
        ("stg_rule", "both", "stg_rule='both' is not known"),
        ("skip_v2a_cross_attn_for_video_gt", "yes", "is not a boolean"),
        ("output_type", "mp4", "output_type='mp4' is not known"),
        ("sigmas", [0.5, 0.9], "strictly decreasing"),
    ],
)
def test_bad_values_name_field_value_and_fix(field: str, value, message: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(message)) as raised:
        LTX2Params(prompt="x", **{field: value}).resolved("2.0", num_layers=48)
    assert raised.value.field == field


def test_unknown_keyword_is_named() -> None:
    with pytest.raises(InvalidParameter, match="num_images_per_prompt"):
        LTX2Params.from_kwargs({"prompt": "x", "num_images_per_prompt": 2})


def test_extra_is_not_a_parameter() -> None:
    """`extra=` was once taken and silently dropped; now it is an unknown keyword like any other, named with
    the family's valid parameters."""
    with pytest.raises(InvalidParameter, match=r"extra=\{'foo': 1\} is not a parameter of ltx2") as raised:
        LTX2Params.from_kwargs({"prompt": "x", "extra": {"foo": 1}})
    assert raised.value.field == "extra"
    assert "'num_inference_steps'" in raised.value.hint and "'extra'" not in raised.value.hint
    assert "extra" not in {f.name for f in dataclasses.fields(LTX2Params)}


def test_one_step_schedule_is_the_official_one() -> None:
    """The official LTX2Scheduler at one step: the stretch divides the first sigma's float32 distance to 1
    (6e-8) by itself, so the schedule is [0.1, 0] (diffusers' NumPy arithmetic gets exactly 1.0 there and
    NaN). ditto follows the official code (tests/parity/test_ltx_official.py compares every sigma)."""
    from ditto.sampling.schedules import ltx2_sigmas

    assert ltx2_sigmas(1).tolist() == [0.10000002384185791, 0.0]
