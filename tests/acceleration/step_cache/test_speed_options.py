"""The step cache with the speed options: compiled blocks are reused (no recompile, same numbers as eager),
a fused LoRA is cached like any weight, CUDA graphs of whole passes are off in a cached loop (and the stats
say so), FP8 blocks (GPU only) run through the same plan."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from ditto import Engine
from ditto.acceleration.step_cache import StepCache, summary
from ditto.tiny.flux2_lora import build_tiny_flux2_lora

from helpers.flux2 import tiny_klein
from helpers.ltx2 import tiny_ltx2

REQUEST = dict(prompt="a red fox", height=64, width=64, num_inference_steps=6, guidance_scale=4.0, seed=3)
MASK = "mask:compute=0-1+4,Fn=1"


def latents(engine: Engine, **changes) -> torch.Tensor:
    return engine.generate(**REQUEST, output_type="latent", **changes).latents["image"]


def test_compiled_blocks_are_reused_by_a_cached_loop() -> None:
    from torch._dynamo.utils import counters

    eager = latents(Engine.from_pretrained(tiny_klein("base")), cache=MASK)
    compiled = Engine.from_pretrained(tiny_klein("base"), compile=True)
    before = counters["stats"]["unique_graphs"]
    latents(compiled)  # compiles every block at these shapes
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > before
    cached = latents(compiled, cache=MASK)
    assert counters["stats"]["unique_graphs"] == graphs  # the cache compiled nothing new
    assert (cached - eager).abs().max() <= 1e-4  # inductor may reorder float sums (test_engine_compile.py)


def test_a_fused_lora_is_cached_like_the_weights() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ditto-cache-lora-"))
    atexit.register(shutil.rmtree, folder, True)
    lora = build_tiny_flux2_lora(folder / "lora.safetensors", tiny_klein("base"), "peft", 4, None, 0, False)
    engine = Engine.from_pretrained(tiny_klein("base"), loras=[str(lora)])
    uncached = latents(engine)
    assert torch.equal(latents(engine, cache="dbcache:threshold=0"), uncached)
    with_lora = latents(engine, cache=MASK)
    without = latents(Engine.from_pretrained(tiny_klein("base")), cache=MASK)
    assert not torch.equal(with_lora, uncached) and not torch.equal(with_lora, without)


def test_whole_pass_graphs_are_off_in_a_cached_loop_and_the_stats_say_so() -> None:
    assert StepCache.replayable is False  # pipelines/ltx2/denoise.py records only when every feature is
    engine = Engine.from_pretrained(tiny_ltx2("2.0"))
    engine.pipeline.components.transformer.cuda_graphs = True  # as compile=True sets it (eager on a CPU)
    result = engine.generate(
        prompt="a fox", height=64, width=64, num_frames=9, num_inference_steps=4, seed=0, output_type="latent",
        pipeline="one-stage", cache="fast",
    )  # fmt: skip
    assert "CUDA graphs are off in cached loops" in result.cache_stats["cuda_graphs"]
    assert summary(result.cache_stats).endswith("whole-pass CUDA graphs off in cached loops")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FP8 products need a GPU with FP8 tensor cores")
def test_fp8_blocks_run_through_the_cache() -> None:
    engine = Engine.from_pretrained(tiny_klein("base"), device="cuda", quantization="fp8")
    never = latents(engine, cache="dbcache:threshold=0")
    assert torch.equal(never, latents(engine))
    assert (
        engine.generate(**REQUEST, output_type="latent", cache=MASK).cache_stats["denoise"]["cond"]["cached"]
        == 3
    )
