"""LTX-2 denoising with the official res2s sampler: the same guided passes as the Euler loop
(ltx2_denoise.Denoiser), advanced by sampling/res2s.py instead of Euler steps."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ditto.pipelines.ltx2_denoise import DenoiseInputs, Denoiser
from ditto.sampling.res2s import Res2s


def denoise_res2s(
    transformer: torch.nn.Module,
    dtype: torch.dtype,
    inputs: DenoiseInputs,
    on_step: Callable[[int, int], None],
) -> tuple[torch.Tensor, torch.Tensor]:
    denoiser = Denoiser(transformer, dtype, inputs)

    def guided(latents, sigma: torch.Tensor):
        return denoiser.guided_x0(latents[0].float(), latents[1].float(), sigma)

    # Latents are stored in the model dtype between steps, as the official loop stores them.
    video, audio = Res2s(dtype, inputs.video.device).run(
        [inputs.video, inputs.audio], inputs.sigmas, guided, on_step
    )
    return video.float(), audio.float()
