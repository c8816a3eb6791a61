"""The request-field table (ditto/fields.py) against the params dataclasses, the CLI and the server."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing

import pytest

from ditto.cli import build_parser, generate_kwargs
from ditto.errors import InvalidParameter
from ditto.fields import (
    FAMILIES,
    FIELDS,
    LTX2,
    LTX2_PIPELINES,
    PYTHON_ONLY,
    TABLE,
    cli_fields,
    describe,
    extra_fields,
)
from ditto.registry import FAMILIES as REGISTERED
from ditto.server.errors import APIError
from ditto.server.params import engine_kwargs
from ditto.server.schemas import RequestModels

# A dataclass field that a family's validation refuses on purpose: Qwen-Image (text-to-image) shares its
# dataclass with the edit model, and refuses `image` ("use a Qwen-Image-Edit checkpoint").
REFUSED_BY_VALIDATION = {("qwen-image", "image")}


def params_classes() -> dict[str, type]:
    """Pipeline family -> its params dataclass, read from each registered pipeline's `validate` annotation
    (so this test names no pipeline module)."""
    found: dict[str, type] = {}
    for family in REGISTERED.values():
        pipeline = family.pipeline_class()
        params = typing.get_type_hints(pipeline.validate)["return"]
        assert dataclasses.is_dataclass(params), f"{pipeline.__name__}.validate returns {params}"
        assert found.setdefault(pipeline.family, params) is params
    return found


def public_fields(params: type) -> set[str]:
    return {f.name for f in dataclasses.fields(params) if not f.name.startswith("_")}


def test_the_table_names_exactly_the_pipeline_families() -> None:
    assert set(params_classes()) == set(FAMILIES)
    for entry in TABLE:
        assert entry.families, f"{entry.name} is taken by no family"
        assert set(entry.families) <= set(FAMILIES), entry


@pytest.mark.parametrize("family", FAMILIES)
def test_every_dataclass_field_is_in_the_table_or_python_only(family: str) -> None:
    dataclass_fields = public_fields(params_classes()[family])
    in_table = {entry.name for entry in TABLE if family in entry.families}
    untabled = dataclass_fields - set(FIELDS) - set(PYTHON_ONLY)
    assert not untabled, f"{family} fields missing from ditto/fields.py: {sorted(untabled)}"
    assert in_table <= dataclass_fields, (
        f"the table gives {family} fields it lacks: {in_table - dataclass_fields}"
    )
    refused = {name for fam, name in REFUSED_BY_VALIDATION if fam == family}
    unlisted = dataclass_fields & set(FIELDS) - in_table - refused
    assert not unlisted, f"the table does not list {family} for {sorted(unlisted)}"


def test_python_only_names_are_real_fields_not_table_entries() -> None:
    every = set().union(*(public_fields(params) for params in params_classes().values()))
    assert set(PYTHON_ONLY) <= every, set(PYTHON_ONLY) - every
    assert not set(PYTHON_ONLY) & set(FIELDS)


def test_closed_sets_are_what_ltx2_validates() -> None:
    ltx2 = params_classes()["ltx2"]
    for name in ("sampler", "image_conditioning", "output_type"):
        for choice in FIELDS[name].choices:
            ltx2(prompt="a", **{name: choice}).resolved("2.0", num_layers=2)
        with pytest.raises(InvalidParameter, match=f"{name}='nope' is not known"):
            ltx2(prompt="a", **{name: "nope"}).resolved("2.0", num_layers=2)


def test_pipeline_choices_are_the_ltx2_pipelines() -> None:
    from ditto import Engine

    engine = Engine.from_pretrained("tiny-ltx2")
    for choice in FIELDS["pipeline"].choices:
        try:
            engine.validate(prompt="a", width=64, height=64, num_frames=9, pipeline=choice)
        except InvalidParameter as exc:  # the tiny model lacks the upsampler: known, but not runnable
            assert "is not known" not in str(exc), exc
    with pytest.raises(InvalidParameter, match="pipeline='nope' is not known"):
        engine.validate(prompt="a", pipeline="nope")


def parse(*flags: str) -> dict:
    return generate_kwargs(build_parser().parse_args(["generate", "--output", "o.mp4", *flags]))


def test_cli_takes_the_flag_and_diffusers_spellings() -> None:
    expected = {"prompt": "a", "num_inference_steps": 3, "num_frames": 9, "frame_rate": 12.0}
    assert parse("--prompt", "a", "--steps", "3", "--num-frames", "9", "--frame-rate", "12") == expected
    spelt = ("--num-inference-steps", "3", "--num_frames", "9", "--fps", "12", "--prompt", "a")
    assert parse(*spelt) == expected
    assert parse("--prompt", "a", "--prompt", "b", "--image", "x.png") == {
        "prompt": ["a", "b"],
        "image": ["x.png"],
    }


def test_cli_has_a_flag_with_its_help_for_every_cli_field() -> None:
    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    shown = {action.dest: action for action in generate._actions if action.help != argparse.SUPPRESS}
    for entry in cli_fields():
        assert entry.name in shown, entry.name
        assert shown[entry.name].help.startswith(entry.help), entry.name
        assert entry.flag in shown[entry.name].option_strings
    # Required, but by `ditto generate` itself: a --config file may give it (tests/cli/test_cli_user_path.py).
    assert "required" in shown["prompt"].help


def test_server_reads_the_extra_fields_from_the_table() -> None:
    models = RequestModels("ltx2")
    form = models.parse(models.video, {"prompt": "a", "fps": "12", "num_inference_steps": "3"})
    assert engine_kwargs(form, models.extra_names) == {"frame_rate": 12.0, "num_inference_steps": 3}
    body = models.parse(models.video, b'{"prompt": "a", "frame_rate": 8}')
    assert engine_kwargs(body, models.extra_names) == {"frame_rate": 8.0}
    with pytest.raises(APIError) as raised:
        models.parse(models.video, b'{"prompt": "a", "steps": 3}')
    assert raised.value.param == "steps" and "num_inference_steps" in raised.value.message
    assert "fps" in raised.value.message and " n," not in raised.value.message
    assert "num_frames" not in RequestModels("flux2-klein").image.model_fields


def test_server_names_skip_fields_the_routes_bound_themselves() -> None:
    # n (OpenAI's name, bounded by the image route) is not also reachable as num_images_per_prompt.
    assert "num_images_per_prompt" not in extra_fields()
    assert FIELDS["num_images_per_prompt"].server_names == ("n",)
    assert {"prompt", "image", "max_sequence_length", "output_type"}.isdisjoint(extra_fields())


def test_describe_is_json_and_per_family() -> None:
    klein = describe("flux2-klein")
    names = [item["name"] for item in klein]
    assert "num_frames" not in names and "num_images_per_prompt" in names
    assert json.loads(json.dumps(describe())) == describe()
    steps = next(item for item in klein if item["name"] == "num_inference_steps")
    assert steps["type"] == "int" and "--num-inference-steps" in steps["flags"]


def test_pipelines_name_ltx2_pipelines_of_ltx2_fields() -> None:
    from ditto.pipelines.ltx2.recipes import RECIPES

    assert set(FIELDS["pipeline"].choices) == set(RECIPES) == set(LTX2_PIPELINES)
    for entry in TABLE:
        assert set(entry.pipelines) <= set(RECIPES), entry.name
        assert not entry.pipelines or LTX2 in entry.families, entry.name
    described = {item["name"]: item for item in describe("ltx2")}
    assert described["video"]["pipelines"] == ["retake"] and described["prompt"]["pipelines"] == []
    assert not FIELDS["num_inference_steps"].takes("distilled") and FIELDS["num_inference_steps"].takes("hq")
    assert not FIELDS["width"].takes("retake") and FIELDS["video"].takes("retake")


def test_the_engine_refuses_what_the_table_says_a_pipeline_does_not_take(tmp_path) -> None:
    """Where the engine enforces it (the distilled pipeline's fixed steps, the sampler of the pipelines
    that run their own), a field the table hides for a pipeline is refused by it, naming the field."""
    from ditto import Engine
    from ditto.tiny.ltx2 import build_tiny

    build_tiny(tmp_path / "ltx", "2.0", with_upsampler=True, with_distilled_lora=True)
    engine = Engine.from_pretrained(tmp_path / "ltx", device="cpu", dtype="float32")
    given = {"num_inference_steps": 3, "sampler": "res2s"}
    for name, value in given.items():
        for pipeline in ("one-stage", "two-stage", "distilled"):
            request = dict(prompt="a", width=64, height=64, num_frames=9, pipeline=pipeline, **{name: value})
            if FIELDS[name].takes(pipeline):
                engine.validate(**request)
            else:
                with pytest.raises(InvalidParameter) as caught:
                    engine.validate(**request)
                assert caught.value.field == name, caught.value


def test_cli_takes_image_frames_under_each_spelling() -> None:
    images = ("--prompt", "a", "--image", "a.png", "--image", "b.png")
    for flag in ("--image-frames", "--image_frames", "--input-reference-frames", "--input_reference_frames"):
        assert parse(*images, flag, "0,120")["image_frames"] == "0,120", flag


def test_server_takes_input_reference_frames_as_image_frames() -> None:
    models = RequestModels("ltx2")
    form = models.parse(models.video, {"prompt": "a", "input_reference_frames": "0,120"})
    assert engine_kwargs(form, models.extra_names) == {"image_frames": "0,120"}
    with pytest.raises(APIError) as raised:
        models.parse(models.video, b'{"prompt": "a", "input_reference_frames": [0, 120]}')
    assert raised.value.param == "input_reference_frames" and raised.value.status == 400
    assert "input_reference_frames" not in RequestModels("flux2-klein").image.model_fields
