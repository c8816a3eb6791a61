"""CUDA graphs for LTX-2's denoising passes (acceleration/cuda_graph.py): the Engine/CLI option, the CPU
fallback, and, on a GPU, that recorded-and-replayed passes give the eager output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ditto import Engine
from ditto.acceleration.cuda_graph import PassGraphs
from ditto.cli import build_parser, engine_options
from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.denoise import MIN_GRAPHED_STEPS

from helpers.ltx2 import tiny_ltx2

REQUEST = dict(prompt="a red fox", height=64, width=64, num_frames=9, num_inference_steps=4, seed=1)


def transformer_of(engine: Engine) -> torch.nn.Module:
    return engine.pipeline.components.transformer


def test_cuda_graphs_follow_compile_unless_set() -> None:
    assert transformer_of(Engine.from_pretrained(tiny_ltx2("2.0"))).cuda_graphs is False
    assert transformer_of(Engine.from_pretrained(tiny_ltx2("2.0"), compile=True)).cuda_graphs is True
    off = Engine.from_pretrained(tiny_ltx2("2.0"), compile=True, cuda_graphs=False)
    assert transformer_of(off).cuda_graphs is False
    assert transformer_of(Engine.from_pretrained(tiny_ltx2("2.0"), cuda_graphs=True)).cuda_graphs is True


def test_cuda_graphs_on_a_model_without_them_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="cuda_graphs.*qwen-image.*FLUX.2 Klein"):
        Engine.from_pretrained("tiny-qwen-image", cuda_graphs=True)


def test_cli_flag_reaches_the_engine_options() -> None:
    parser = build_parser()
    base = ["generate", "--prompt", "x", "--output", "o.mp4"]
    assert engine_options(parser.parse_args(base)).cuda_graphs is None  # unset: follows --compile
    assert engine_options(parser.parse_args([*base, "--no-cuda-graphs"])).cuda_graphs is False
    assert engine_options(parser.parse_args([*base, "--cuda-graphs"])).cuda_graphs is True


def test_on_the_cpu_the_passes_run_eagerly_with_the_same_output() -> None:
    plain = Engine.from_pretrained(tiny_ltx2("2.0")).generate(**REQUEST).frames
    graphed = Engine.from_pretrained(tiny_ltx2("2.0"), cuda_graphs=True).generate(**REQUEST).frames
    assert np.array_equal(plain, graphed)


def test_disabled_pass_graphs_call_through() -> None:
    graphs = PassGraphs(enabled=False)
    with graphs:
        out = graphs.call("cond", lambda x: (x * 2,), torch.ones(3))
    assert torch.equal(out[0], torch.full((3,), 2.0)) and graphs.passes == {}


needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


@needs_gpu
@pytest.mark.parametrize(
    "request_changes, kinds",
    [
        # The official defaults: conditional (tapping the STG prefix), unconditional, STG (resumed from the
        # tapped streams) and isolated-modality passes.
        ({}, 4),
        ({"stg_scale": 0.0, "audio_stg_scale": 0.0}, 2),  # no STG: the batched CFG pair and isolation
        ({"sampler": "res2s"}, 8),  # res2s: float32 step sigmas and float64 sub-step sigmas
        ({"image": "first frame", "image_crf": 0}, 4),  # image-to-video: per-token timesteps, blended x0
    ],
)
def test_replayed_graphs_give_the_eager_output(monkeypatch, request_changes: dict, kinds: int) -> None:
    replays = [0]
    replay = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(
        torch.cuda.CUDAGraph, "replay", lambda g: (replays.__setitem__(0, replays[0] + 1), replay(g))[1]
    )
    request = {**REQUEST, **request_changes, "num_inference_steps": MIN_GRAPHED_STEPS}
    if "image" in request:
        request["image"] = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    eager = Engine.from_pretrained(tiny_ltx2("2.0"), device="cuda", dtype="float32")
    expected = eager.generate(**request).frames
    assert replays[0] == 0
    transformer_of(eager).cuda_graphs = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed = eager.generate(**request).frames
    assert not [w for w in caught if "CUDA graph" in str(w.message)]  # no recording fell back to eager
    assert replays[0] >= kinds * 2  # every kind of pass was recorded and replayed after its first step
    np.testing.assert_allclose(graphed, expected, rtol=0, atol=1e-5)
