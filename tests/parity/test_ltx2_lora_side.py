"""The distilled LoRA beside the weights (stage 2's default) against the fused one: the same stage-2 result up
to float32 rounding, the weights untouched bit for bit, and compiled blocks that see the LoRA come and go."""

from __future__ import annotations

import pytest
import torch
from test_ltx2_stages import PROMPT, SIZE, assert_bitwise_equal, engine, stage_one_latents, weights
from torch import nn

from ditto.errors import InvalidParameter
from ditto.loading.lora import LoraFile, LoraPair, LoraStack
from ditto.loading.lora_side import LoraSide
from ditto.pipelines.ltx2.lora import check_distilled_lora_mode

from helpers.metrics import max_abs

# Measured 2026-11-22 (float32 CPU, tiny 2.0 checkpoint): 7.2e-7 video, 4.8e-7 audio latents. The two
# differ by where the rounding happens ((W + BA) x vs W x + B(A x)), not by what is computed.
SIDE_VS_FUSED_MAX_ABS = 1e-5


def two_stage(mode: str) -> dict[str, torch.Tensor]:
    pipe = engine().pipeline
    request = dict(**PROMPT, **SIZE, seed=7, pipeline="two-stage", sigmas=[1.0, 0.5], output_type="latent")
    request.update(guidance_scale=3.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0)
    video, audio = stage_one_latents(request)
    previous, pipe.distilled_lora_mode = pipe.distilled_lora_mode, mode
    try:
        return engine().generate(**request, latents=video, audio_latents=audio).latents
    finally:
        pipe.distilled_lora_mode = previous


def test_side_equals_fused_and_leaves_every_weight_untouched() -> None:
    before = weights(engine())
    modules_before = dict(engine().pipeline.components.transformer.named_modules())
    side = two_stage("side")
    assert_bitwise_equal(before, weights(engine()))  # nothing was written into any weight
    # ... and every target is its original Linear again (no wrapper left behind).
    assert dict(engine().pipeline.components.transformer.named_modules()) == modules_before
    fused = two_stage("fuse")
    for kind in ("video", "audio"):
        measured = max_abs(side[kind], fused[kind])
        print(f"side vs fused {kind}: max abs {measured:.2e}")
        assert measured <= SIDE_VS_FUSED_MAX_ABS, f"{kind}: {measured:.2e} > {SIDE_VS_FUSED_MAX_ABS}"


def test_unknown_mode_is_a_clear_error() -> None:
    assert engine().pipeline.distilled_lora_mode == "side"  # the default
    assert engine().pipeline.distilled_lora_mode == "side"  # the default
    with pytest.raises(InvalidParameter, match="distilled_lora_mode='merge' is not known"):
        check_distilled_lora_mode("merge")


class Block(nn.Module):
    """A block of our own code (dynamo compiles no frame of torch's own modules, e.g. a bare Sequential)."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.nn.functional.gelu(self.up(x)))


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def random_lora(model: nn.Module) -> LoraFile:
    generator = torch.Generator().manual_seed(3)
    pairs = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            out_features, in_features = module.weight.shape
            down = torch.randn(2, in_features, generator=generator) * 0.3
            pairs[f"model.{name}"] = LoraPair(
                down, torch.randn(out_features, 2, generator=generator) * 0.3, 0.5
            )
    return LoraFile("random", pairs)


def test_compiled_blocks_see_the_side_lora_attached_and_detached() -> None:
    """A forward hook would be silently ignored here (dynamo does not guard on module hooks by default);
    the swapped submodule is guarded, so the compiled blocks recompile once and agree with the fused LoRA."""
    from torch._dynamo.testing import CompileCounter

    torch.manual_seed(0)
    model, x = Blocks(), torch.randn(4, 8)
    lora = random_lora(model)
    with torch.no_grad():
        plain = model(x)
        stack = LoraStack({"model": model})
        stack.fuse(lora, 0.8)
        fused = model(x)
        stack.unfuse_all()
        counter = CompileCounter()
        for block in model.blocks:
            block.compile(fullgraph=True, dynamic=False, backend=counter)
        assert max_abs(model(x), plain) == 0.0
        side = LoraSide({"model": model})
        side.attach(side.prepare(lora, 0.8))
        frames = counter.frame_count
        beside = model(x)
        assert counter.frame_count > frames  # the graph without the LoRA was not reused
        side.detach()
        again = model(x)
    assert max_abs(beside, fused) <= 1e-6
    assert max_abs(again, plain) == 0.0
