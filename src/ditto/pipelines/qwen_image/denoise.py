"""Qwen-Image's denoising loop: flow-match Euler, true CFG as two named passes.

Each transformer call gets a `PassContext` naming its pass (COND, then UNCOND with true CFG), the step and
its sigma (a host float: nothing here reads the device), and the loop's `LoopState`, through which the loop
features (step cache, offload, ...) wrap the block loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ditto.pipelines.qwen_image.components import QwenImageComponents
from ditto.pipelines.qwen_image.text import TextEmbeddings
from ditto.runtime import LoopState, PassContext, PassKind, Progress, ProgressCallback, RequestLoops
from ditto.runtime.passes import run_passes
from ditto.runtime.progress import token_grid
from ditto.sampling.euler import euler_step
from ditto.sampling.guidance import CFGParams, cfg


@dataclass
class DenoiseInputs:
    latents: torch.Tensor  # [B, S, C*4] noise tokens
    image_latents: torch.Tensor | None  # [B, S_ref, C*4] reference image tokens (edit), fixed
    cond: TextEmbeddings
    uncond: TextEmbeddings | None  # None: no true CFG
    cfg_scale: float
    img_shapes: list[tuple[int, int, int]]
    sigmas: torch.Tensor  # [steps + 1] float32, on the host


def prediction(
    c: QwenImageComponents,
    inputs: DenoiseInputs,
    x: torch.Tensor,
    timestep: torch.Tensor,
    text: TextEmbeddings,
    rope: tuple,
    ctx: PassContext,
) -> torch.Tensor:
    """The velocity of the generated image's tokens for one pass."""
    out = c.transformer(
        x, text.embeds, timestep, inputs.img_shapes, encoder_hidden_states_mask=text.mask, rope=rope, ctx=ctx
    )
    return out[:, : inputs.latents.shape[1]]


def velocity(
    c: QwenImageComponents,
    inputs: DenoiseInputs,
    latents: torch.Tensor,
    t: torch.Tensor,
    ropes: list[tuple],
    ctx: PassContext,
) -> torch.Tensor:
    """The COND pass `ctx`, and with true CFG the UNCOND pass of the same step (each its own call; with
    CFG-parallel, on different processes: runtime.run_passes), combined."""
    x = latents if inputs.image_latents is None else torch.cat([latents, inputs.image_latents], dim=1)
    timestep = t.expand(latents.shape[0]).to(latents.dtype) / 1000
    texts = {PassKind.COND: (inputs.cond, ropes[0]), PassKind.UNCOND: (inputs.uncond, ropes[-1])}

    def run(kinds: tuple[PassKind, ...]) -> tuple[torch.Tensor]:
        (kind,) = kinds
        return (prediction(c, inputs, x, timestep, *texts[kind], replace(ctx, kinds=kinds)),)

    groups = [(PassKind.COND,)] + [(PassKind.UNCOND,)] * (inputs.uncond is not None)
    outputs = run_passes(ctx.loop, groups, run)
    v = outputs[PassKind.COND][0]
    if inputs.uncond is None:
        return v
    return cfg(CFGParams(inputs.cfg_scale, norm_rescale=True), v, outputs[PassKind.UNCOND][0])


@torch.inference_mode()
def denoise(
    c: QwenImageComponents,
    inputs: DenoiseInputs,
    progress: ProgressCallback | None = None,
    loops: RequestLoops | None = None,
) -> torch.Tensor:
    """Flow-match Euler over the sigmas; true CFG (combine, then rescale to the conditional norm) when asked.

    loops: the request's loops (this loop's fresh block-loop features and the request's stats)."""
    transformer, device = c.transformer, c.device
    host_sigmas = inputs.sigmas.tolist()  # for the pass contexts, read once before the loop
    sigmas = inputs.sigmas.to(device)
    timesteps = sigmas[:-1] * 1000  # the reference scheduler's timesteps, float32
    ropes = [transformer.rope(inputs.img_shapes, inputs.cond.embeds.shape[1], device)]
    if inputs.uncond is not None:
        ropes.append(transformer.rope(inputs.img_shapes, inputs.uncond.embeds.shape[1], device))
    latents = inputs.latents
    steps = len(timesteps)
    features = loops.features("denoise", steps) if loops is not None else ()
    loop = LoopState(num_steps=steps, features=features)
    with Progress(steps, progress).loop("denoise", steps) as step:
        for i in range(steps):
            ctx = PassContext((PassKind.COND,), i, host_sigmas[i], loop)
            v = velocity(c, inputs, latents, timesteps[i], ropes, ctx)
            latents = euler_step(latents, v, sigmas[i], sigmas[i + 1])
            step(latents=lambda now=latents: token_grid(now, *inputs.img_shapes[0][1:]))
    return latents
