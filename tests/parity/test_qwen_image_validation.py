"""Bad Qwen-Image requests are InvalidParameter errors naming the field, before any work is done."""

from __future__ import annotations

import pytest
import torch

from ditto.errors import InvalidParameter

from helpers.qwen_image import input_image, tiny_qwen_image


@pytest.fixture(scope="module")
def pipelines():
    from ditto.pipelines.qwen_image import QwenImageEditPlusPipeline, QwenImagePipeline

    cpu = torch.device("cpu")
    return (
        QwenImagePipeline.from_pretrained(tiny_qwen_image("t2i"), cpu, None),
        QwenImageEditPlusPipeline.from_pretrained(tiny_qwen_image("edit"), cpu, None),
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(prompt="a", width=90), "width"),
        (dict(prompt="a", height=0), "height"),
        (dict(prompt=""), "prompt"),
        (dict(), "prompt"),
        (dict(prompt="a", image="x.png"), "image"),
        (dict(prompt="a", nonsense=1), "nonsense"),
        (dict(prompt="a", num_inference_steps=0), "num_inference_steps"),
        (dict(prompt="a", output_type="jpeg"), "output_type"),
        (dict(prompt=["a", "b"], negative_prompt=["c"]), "negative_prompt"),
        (dict(prompt="a", max_sequence_length=2000), "max_sequence_length"),
    ],
)
def test_text_to_image_rejects(pipelines, kwargs, field):
    with pytest.raises(InvalidParameter) as error:
        pipelines[0].validate(**kwargs)
    assert error.value.field == field


def test_edit_needs_an_image_and_one_prompt(pipelines):
    edit = pipelines[1]
    with pytest.raises(InvalidParameter, match="required by an edit model"):
        edit.validate(prompt="make it blue")
    with pytest.raises(InvalidParameter) as error:
        edit.validate(prompt=["a", "b"], image=input_image(32, 32, 0))
    assert error.value.field == "prompt"
    with pytest.raises(InvalidParameter, match="cannot be read"):
        edit.generate(prompt="a", image="/nonexistent/in.png", height=32, width=32, num_inference_steps=1)


def test_true_cfg_scale_defaults_as_diffusers(pipelines):
    params = pipelines[0].validate(prompt="a", negative_prompt="b", guidance_scale=7.0)
    assert params.cfg_scale == 4.0 and params.do_true_cfg  # diffusers 0.42.1 default; guidance_scale unused
    assert not pipelines[0].validate(prompt="a", negative_prompt="b", true_cfg_scale=1.0).do_true_cfg
    assert not pipelines[0].validate(prompt="a", true_cfg_scale=5.0).do_true_cfg
