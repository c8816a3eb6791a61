"""EngineOptions: keywords become typed options; unknown ones, and ones a family does not take, are refused
before loading; the typed options reach each family's from_pretrained; the CLI builds them."""

from __future__ import annotations

import pytest
import torch

from ditto import Engine
from ditto.cli import build_parser, engine_options
from ditto.engine_options import EngineOptions
from ditto.errors import InvalidParameter
from ditto.registry import FAMILIES


def test_keywords_become_typed_options() -> None:
    options = EngineOptions.from_keywords(
        {"compile": True, "loras": ["a.safetensors:0.5"], "cuda_graphs": False}
    )
    assert options == EngineOptions(compile=True, cuda_graphs=False, loras=("a.safetensors:0.5",))
    assert options.given() == {"compile": True, "cuda_graphs": False, "loras": ("a.safetensors:0.5",)}
    assert EngineOptions.from_keywords({"loras": "one.safetensors"}).loras == ("one.safetensors",)
    base = EngineOptions(quantization="fp8")
    assert EngineOptions.from_keywords({"compile": True}, base) == EngineOptions(
        compile=True, quantization="fp8"
    )


def test_unknown_option_names_it_and_the_valid_ones() -> None:
    with pytest.raises(InvalidParameter) as raised:
        Engine.from_pretrained("tiny-flux2-klein", complie=True)
    message = str(raised.value)
    assert raised.value.field == "complie" and "is not an engine option" in message
    assert "compile" in message and "distilled_lora_mode" in message


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [("quantization", "int4", "['fp8']"), ("distilled_lora_mode", "merge", "'side'")],
)
def test_a_value_outside_a_closed_set_is_refused(name: str, value: str, valid: str) -> None:
    with pytest.raises(InvalidParameter, match=f"{name}='{value}' is not known; one of .*{valid}"):
        EngineOptions.from_keywords({name: value})


@pytest.mark.parametrize(
    ("model", "option", "family"),
    [
        ("tiny-flux2-klein", {"upsampler": "up"}, "flux2-klein"),
        ("tiny-qwen-image", {"loras": ["x.safetensors"]}, "qwen-image"),
        ("tiny-ltx2", {"text_encoder": "gemma"}, "ltx2"),
    ],
)
def test_an_option_the_family_does_not_take_names_the_family_before_loading(
    monkeypatch, model: str, option: dict, family: str
) -> None:
    def must_not_load(*args, **kwargs):
        raise AssertionError("loaded weights before refusing the option")

    monkeypatch.setattr(FAMILIES[family].pipeline_class(), "from_pretrained", must_not_load)
    name = next(iter(option))
    with pytest.raises(InvalidParameter, match=f"{name}=.* is not taken by the {family} family"):
        Engine.from_pretrained(model, **option)


def test_each_family_receives_the_typed_options(monkeypatch) -> None:
    received = {}

    class Loaded:
        family = "flux2-klein"

    def capture(path, device, dtype, options):
        received["options"] = options
        return Loaded()

    monkeypatch.setattr(FAMILIES["flux2-klein"].pipeline_class(), "from_pretrained", capture)
    engine = Engine.from_pretrained("tiny-flux2-klein", loras=["a.safetensors"], cuda_graphs=False)
    assert received["options"] == EngineOptions(loras=("a.safetensors",), cuda_graphs=False)
    assert engine.options is received["options"] and engine.quantization is None


def test_every_pipeline_lists_its_load_options() -> None:
    load = {"loras", "text_encoder", "upsampler", "distilled_lora", "distilled_lora_mode", "ic_lora"}
    for family in FAMILIES.values():
        assert family.pipeline_class().load_options <= load, family.name
    assert FAMILIES["ltx2-official"].pipeline_class().load_options == {"text_encoder", "ic_lora"}


def test_the_cli_builds_engine_options() -> None:
    args = build_parser().parse_args(
        ["generate", "--prompt", "x", "--output", "o.mp4", "--lora", "a:0.5", "--lora", "b", "--compile"]
    )
    assert engine_options(args) == EngineOptions(compile=True, loras=("a:0.5", "b"))


def test_attention_kernel_is_a_closed_engine_option() -> None:
    args = build_parser().parse_args(["generate", "--prompt", "x", "--output", "o.mp4", "--attention", "fp8"])
    assert engine_options(args) == EngineOptions(attention="fp8")
    with pytest.raises(InvalidParameter, match="attention='flash3'"):
        EngineOptions.from_keywords({"attention": "flash3"})


@pytest.mark.parametrize("kernel", ["fa3", "triton", "fp8"])
def test_an_attention_kernel_that_cannot_run_here_is_a_clear_error(kernel: str) -> None:
    from ditto.engine import choose_attention

    with pytest.raises(InvalidParameter, match=f"attention='{kernel}'.*needs .*not available on cpu.*sdpa"):
        choose_attention(torch.device("cpu"), kernel)
