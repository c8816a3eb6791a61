"""FLUX.2 Klein request validation: every bad input is an InvalidParameter naming the field and a fix."""

from __future__ import annotations

import pytest
from PIL import Image

from ditto.errors import InvalidParameter
from ditto.pipelines.flux2.params import KleinDefaults, parse_params

DISTILLED = KleinDefaults.for_checkpoint(is_distilled=True)


def parse(**kwargs):
    return parse_params(kwargs, DISTILLED, multiple=16, text_layers=27)


def test_defaults_per_checkpoint():
    assert (DISTILLED.num_inference_steps, DISTILLED.guidance_scale) == (4, 1.0)
    base = KleinDefaults.for_checkpoint(is_distilled=False)
    assert (base.num_inference_steps, base.guidance_scale) == (50, 4.0)
    params = parse(prompt="a cat")
    assert params.prompt == ["a cat"] and params.num_inference_steps == 4 and params.output_type == "np"


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        (dict(prompt="a cat", width=100), "width", "try 96"),
        (dict(prompt="a cat", height=8), "height", "try 16"),
        (dict(prompt=""), "prompt", "is empty"),
        (dict(), "prompt", "is missing"),
        (dict(prompt=[]), "prompt", "is missing"),
        (dict(prompt="a cat", num_frames=9), "num_frames", "video parameter"),
        (dict(prompt="a cat", negative_prompt="x"), "negative_prompt", "is not a parameter of flux2-klein"),
        (dict(prompt="a cat", num_inference_steps=0), "num_inference_steps", ">= 1"),
        (dict(prompt="a cat", output_type="pt"), "output_type", "use one of"),
        (dict(prompt="a cat", image="/no/such.png"), "image[0]", "does not exist"),
        (dict(prompt="a cat", image=[Image.new("RGB", (64, 64))] * 5), "image", "at most 4"),
        (dict(prompt="a cat", image=Image.new("RGB", (32, 64))), "image[0]", "too small"),
        (dict(prompt="a cat", image=Image.new("RGB", (64, 640))), "image[0]", "aspect ratio"),
        (dict(prompt="a cat", text_encoder_out_layers=(9, 30)), "text_encoder_out_layers", "0..27"),
        (dict(prompt="a cat", seed=-1), "seed", "non-negative"),
    ],
)
def test_bad_input_names_the_field(kwargs, field, text):
    with pytest.raises(InvalidParameter) as info:
        parse(**kwargs)
    assert info.value.field == field
    assert text in str(info.value), str(info.value)


def test_unreadable_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InvalidParameter, match="is not a readable image"):
        parse(prompt="a cat", image=str(bad))
