"""The Python API's side of issue 26: `inspect_model` checks a request from the config files alone, the
same way the loaded pipeline does; `Engine.generate` draws a seed when none is given and says which, and
records the request as it ran (the files' metadata)."""

from __future__ import annotations

import pytest

from ditto import __version__
from ditto.engine import Engine, inspect_model, with_seed
from ditto.errors import InvalidParameter

from helpers.flux2 import tiny_klein
from helpers.qwen_image import tiny_qwen_image

MODELS = {
    "ltx2": lambda: "tiny-ltx2",
    "flux2-klein": lambda: tiny_klein("base"),
    "qwen-image": lambda: tiny_qwen_image("t2i"),
    "qwen-image-edit": lambda: tiny_qwen_image("edit"),
}
REQUESTS = {
    "ltx2": [dict(prompt="a", width=64, height=64, num_frames=9), dict(prompt="a", pipeline="distilled")],
    "flux2-klein": [dict(prompt="a", width=32), dict(prompt="a", text_encoder_out_layers=(1, 2))],
    "qwen-image": [dict(prompt="a", height=32, num_inference_steps=3), dict(prompt="a", height=33)],
    "qwen-image-edit": [dict(prompt="a"), dict(prompt=["a", "b"], image="x.png")],
}


def outcome(validate, request: dict):
    try:
        return validate(**request)
    except InvalidParameter as exc:
        return str(exc)


@pytest.mark.parametrize("family", list(MODELS))
def test_config_files_check_a_request_as_the_loaded_pipeline_does(family: str) -> None:
    model = MODELS[family]()
    info = inspect_model(model)
    engine = Engine.from_pretrained(model)
    assert (
        (info.family, info.output_kind) == (engine.family, engine.output_kind) == (family, info.output_kind)
    )
    for request in REQUESTS[family]:
        assert outcome(info.validate, request) == outcome(engine.validate, request), request
    checkpoint = getattr(engine.pipeline.components, "checkpoint", None)
    if checkpoint is not None:  # LTX-2 and Klein keep their facts whole
        assert info.validate.args == (checkpoint,)


def test_generate_draws_a_seed_and_records_the_request() -> None:
    engine = Engine.from_pretrained(tiny_klein("distilled"))
    request = dict(prompt=["a cat", "a dog"], width=32, height=32, num_inference_steps=2)
    first = engine.generate(**request)
    assert isinstance(first.seed, int)
    assert first.request == {
        "prompt": ["a cat", "a dog"], "width": 32, "height": 32, "num_inference_steps": 2, "guidance_scale": 1.0,
        "num_images_per_prompt": 1, "seed": first.seed,
        "model": str(tiny_klein("distilled")), "family": "flux2-klein", "ditto_version": __version__,
    }  # fmt: skip
    again = engine.generate(**request, seed=first.seed)
    assert again.seed == first.seed and (again.images == first.images).all()
    assert list(again.timings)[0] == "validate"


def test_a_seed_is_drawn_only_when_none_drives_the_randomness() -> None:
    import torch

    assert len({with_seed({"prompt": "a"})["seed"] for _ in range(8)}) > 1
    assert with_seed({"seed": 5}) == {"seed": 5}
    generator = torch.Generator()
    assert with_seed({"generator": generator}) == {"generator": generator}
