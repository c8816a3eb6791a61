"""LTX-2 one-stage text-to-video+audio with the official guidance (4 passes a step: the CFG pair batched, STG,
modality isolation), ditto beside diffusers' LTX2Pipeline on the same modules in one process.

Both pipelines get the same Gemma-3, connectors weights, transformer weights (diffusers' classes built on
the meta device and pointed at ditto's tensors: one copy on the card), VAEs and vocoder, and the same
guidance: CFG 3 / audio 7, STG 1 at one block, modality 3, rescale 0.7 (LTX-2.0's official one-stage
values, which are diffusers' defaults too). "Compiled" = each library's regional compile of the transformer
blocks plus the shared VAE decoder; the text encoder runs eagerly for both (a compiled Gemma would be shared,
and diffusers runs it with a key/value cache, which recompiles every layer). The sigma schedules differ
by design (docs/parity.md: official rule vs diffusers' token-count rule); the work per step is the same.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.harness.end_to_end import PROMPT
from benchmarks.harness.stage_clock import sync

STG_BLOCK = 29  # LTX-2.0's official STG block (diffusers documents [29] for LTX-2.0)


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    frames: int

    @classmethod
    def parse(cls, text: str) -> Size:
        width, height, frames = (int(v) for v in text.split("x"))
        return cls(width, height, frames)

    def label(self) -> str:
        return f"{self.width}x{self.height}x{self.frames}"


def guidance(num_layers: int) -> dict[str, Any]:
    """The official one-stage guidance, as keywords both pipelines take (same names)."""
    return dict(
        guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
        audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.7,
        spatio_temporal_guidance_blocks=[min(STG_BLOCK, num_layers - 1)],
    )  # fmt: skip


def _sharing(cls: type, config: dict[str, Any], source: nn.Module) -> nn.Module:
    """diffusers' `cls` on `source`'s own tensors (strict names; no copy)."""
    with torch.device("meta"):
        module = cls.from_config(config)
    module.load_state_dict(source.state_dict(), strict=True, assign=True)
    return module.eval().requires_grad_(False)


def build_pair(device: torch.device, dtype: torch.dtype, tiny: bool) -> tuple[Any, Any]:
    """(ditto's LTX2Pipeline, diffusers' LTX2Pipeline) on one set of modules, LTX-2.0 layout."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors

    from benchmarks.harness.full_size_ltx2 import _configs, build_ltx2_components
    from ditto.pipelines.ltx2.pipeline import LTX2Pipeline as DittoLTX2Pipeline

    c = build_ltx2_components(device, dtype, tiny)
    configs = _configs(tiny)
    reference = LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(c.scheduler_config),
        vae=c.vae, audio_vae=c.audio_vae, text_encoder=c.text_encoder, tokenizer=c.tokenizer,
        connectors=_sharing(LTX2TextConnectors, configs["connectors"], c.connectors),
        transformer=_sharing(LTX2VideoTransformer3DModel, configs["transformer"], c.transformer),
        # diffusers loads every part in torch_dtype and feeds the vocoder its mel in that dtype; ditto's own
        # components keep the vocoder in float32 (the official precision).
        vocoder=copy.deepcopy(c.vocoder).to(dtype),
    )  # fmt: skip
    reference.set_progress_bar_config(disable=True)
    return DittoLTX2Pipeline(c), reference


def runners(ditto: Any, reference: Any, size: Size) -> dict[str, Callable[[int], Any]]:
    """library -> run(steps): one whole request (text encoding to decoded frames and audio)."""
    args = dict(
        prompt=PROMPT, height=size.height, width=size.width, num_frames=size.frames, frame_rate=24,
        **guidance(len(ditto.components.transformer.transformer_blocks)),
    )  # fmt: skip
    return {
        "ditto": lambda steps: ditto.generate(
            **args, num_inference_steps=steps, pipeline="one-stage", seed=0
        ),
        "diffusers": lambda steps: reference(
            **args,
            negative_prompt="",
            num_inference_steps=steps,
            output_type="np",
            generator=torch.Generator("cpu").manual_seed(0),
        ),  # fmt: skip
    }


def compile_both(ditto: Any, reference: Any, cuda_graphs: bool) -> None:
    """Each library's regional compile of its transformer; the shared VAE decoder compiled once (both use
    it); ditto's denoising passes as CUDA graphs where asked (loops of 10+ steps only: cuda_graph.py)."""
    from ditto.acceleration.compile import compile_transformer, compile_vae_decoder
    from ditto.engine import use_compiled_fusions

    use_compiled_fusions(ditto, ditto.components.transformer)  # what Engine(compile=True) does
    compile_transformer(ditto.components.transformer)
    compile_vae_decoder(ditto.components.vae)
    ditto.components.transformer.cuda_graphs = cuda_graphs
    reference.transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)


def seconds(run: Callable[[int], Any], steps: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    out = run(steps)
    sync(device)
    del out
    return time.perf_counter() - start


WARMUP_STEPS = 2  # compiles both pass shapes (the CFG pair and the single passes); under 10: no CUDA graphs


def time_requests(
    run: Callable[[int], Any],
    device: torch.device,
    steps: tuple[int, ...],
    repeats: int,
    transformer: nn.Module,
) -> dict[str, Any]:
    """A 2-step warm-up (compiles; it also counts the transformer calls per step: the same guidance costs the
    same passes in both libraries), then `repeats` timed requests per step count (median). With two step
    counts, the per-step time is their difference over the step difference: text encoding, decoding and
    host work cancel out."""
    calls = [0]
    forward = transformer.forward

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return forward(*args, **kwargs)

    transformer.forward = counted  # an instance attribute: nn.Module's call finds it first
    try:
        warm = seconds(run, WARMUP_STEPS, device)
    finally:
        del transformer.forward
    totals = {n: sorted(seconds(run, n, device) for _ in range(repeats))[repeats // 2] for n in steps}
    result: dict[str, Any] = {
        "warmup_s": warm, "transformer_calls_per_step": calls[0] / WARMUP_STEPS,
        "total_s": {str(n): t for n, t in totals.items()},
    }  # fmt: skip
    if len(steps) == 2 and steps[1] != steps[0]:
        result["per_step_s"] = (totals[steps[1]] - totals[steps[0]]) / (steps[1] - steps[0])
    return result


def transformers(ditto: Any, reference: Any) -> dict[str, nn.Module]:
    """library -> the transformer module its pipeline calls."""
    return {"ditto": ditto.components.transformer, "diffusers": reference.transformer}
