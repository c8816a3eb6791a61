"""FLUX.2 Klein's denoising loop: flow-match Euler over Klein's sigmas, CFG as two named passes.

Each transformer call gets a `PassContext` naming its pass (COND, then UNCOND with CFG), the step and its
sigma (a host float: nothing here reads the device), and the loop's `LoopState`, through which the loop
features (step cache, offload, ...) wrap the block loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ditto.pipelines.flux2.components import KleinComponents
from ditto.pipelines.flux2.params import Flux2KleinParams
from ditto.pipelines.flux2.schedule import klein_sigmas
from ditto.runtime import LoopState, PassContext, PassKind, Progress, ProgressCallback, RequestLoops
from ditto.runtime.passes import run_passes
from ditto.runtime.progress import token_grid
from ditto.sampling.euler import euler_step
from ditto.sampling.guidance import CFGParams, cfg


@dataclass
class Conditioning:
    """What the denoiser reads besides the latents, fixed for the whole request."""

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None  # None: no CFG
    rope: tuple[torch.Tensor, torch.Tensor]
    reference_tokens: torch.Tensor | None  # [B, S_ref, C], appended after the image tokens
    grid: tuple[int, int] = (0, 0)  # the image's token rows and columns (raster order), for previews


def velocity(
    c: KleinComponents,
    latents: torch.Tensor,
    t: torch.Tensor,
    cond: Conditioning,
    guidance: CFGParams,
    ctx: PassContext,
) -> torch.Tensor:
    """One denoiser evaluation on image tokens followed by reference tokens: the COND pass `ctx`, and with
    CFG the UNCOND pass of the same step (each its own call; with CFG-parallel, on different processes:
    runtime.run_passes); the velocity of the image tokens."""
    x = latents.to(c.dtype)
    if cond.reference_tokens is not None:
        x = torch.cat([x, cond.reference_tokens], dim=1)
    timestep = t.expand(latents.shape[0]).to(latents.dtype) / 1000
    tokens = latents.shape[1]
    prompts = {PassKind.COND: cond.prompt_embeds, PassKind.UNCOND: cond.negative_embeds}

    def run(kinds: tuple[PassKind, ...]) -> tuple[torch.Tensor]:
        (kind,) = kinds
        out = c.transformer(x, prompts[kind], timestep, rope=cond.rope, ctx=replace(ctx, kinds=kinds))
        return (out[:, :tokens],)

    groups = [(PassKind.COND,)] + [(PassKind.UNCOND,)] * (cond.negative_embeds is not None)
    outputs = run_passes(ctx.loop, groups, run)
    v = outputs[PassKind.COND][0]
    if cond.negative_embeds is None:
        return v
    return cfg(guidance, v, outputs[PassKind.UNCOND][0])


def denoise(
    c: KleinComponents,
    params: Flux2KleinParams,
    latents: torch.Tensor,
    cond: Conditioning,
    progress: ProgressCallback | None = None,
    loops: RequestLoops | None = None,
) -> torch.Tensor:
    """Euler over the sigmas; the result keeps the velocity's dtype, as diffusers' scheduler step.

    loops: the request's loops (this loop's fresh block-loop features and the request's stats)."""
    sigmas = klein_sigmas(c.scheduler_config, params.num_inference_steps, latents.shape[1], params.sigmas)
    host_sigmas = sigmas.tolist()  # for the pass contexts, read once before the loop
    sigmas = sigmas.to(c.device)
    timesteps = sigmas[:-1] * c.scheduler_config.get("num_train_timesteps", 1000)
    total = len(timesteps)
    features = loops.features("denoise", total) if loops is not None else ()
    loop = LoopState(num_steps=total, features=features)
    guidance = CFGParams(params.guidance_scale)
    with Progress(total, progress).loop("denoise", total) as step:
        for i in range(total):
            ctx = PassContext((PassKind.COND,), i, host_sigmas[i], loop)
            v = velocity(c, latents, timesteps[i], cond, guidance, ctx)
            latents = euler_step(latents, v, sigmas[i], sigmas[i + 1], cast_to="velocity")
            step(latents=lambda now=latents: token_grid(now, *cond.grid))
    return latents
