"""LTX-2 denoising with the official res2s sampler: the same guided passes as the Euler loop
(denoise.Denoiser), advanced by sampling/res2s.py instead of Euler steps. The sampler tells each call
where it sits (`StepPoint`: substep 0 at the step's sigma, 1 at the midpoint, 2 the final x0 call), and the
passes' contexts carry it.

With images, the transformer sees the per-token timesteps sigma * mask and every x0 is blended back to the
conditioning (Denoiser.guided_x0), as in the Euler loop; on top, the official res2s loop blends each
re-noised state (after both SDE steps) back to the conditioning, since its SDE noise hits every token."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ditto.pipelines.ltx2.conditioning.item import VideoConditioning
from ditto.pipelines.ltx2.denoise import DenoiseInputs, Denoiser, OnStep
from ditto.runtime.contract import LoopFeature
from ditto.sampling.points import StepPoint
from ditto.sampling.res2s import Project, Res2s


def denoise_res2s(
    transformer: torch.nn.Module,
    dtype: torch.dtype,
    inputs: DenoiseInputs,
    on_step: OnStep,
    features: Sequence[LoopFeature] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    denoiser = Denoiser(transformer, dtype, inputs, features)

    def guided(
        latents: Sequence[torch.Tensor], sigma: torch.Tensor, at: StepPoint
    ) -> tuple[torch.Tensor, ...]:
        return denoiser.guided_x0(latents[0].float(), latents[1].float(), sigma, at)

    def stepped(done: int, total: int, state: Callable[[], list[torch.Tensor]]) -> None:
        on_step(done, total, lambda: state()[0])

    # Latents are stored in the model dtype between steps, as the official loop stores them.
    with denoiser.graphs:
        video, audio = Res2s(dtype, inputs.video.device).run(
            [inputs.video, inputs.audio],
            inputs.sigmas,
            guided,
            stepped,
            conditioned(inputs.conditioning, inputs.audio_conditioning),
        )
    if inputs.conditioning is not None:
        video = video[:, : inputs.conditioning.generated_tokens]  # appended keyframes are dropped
    return video.float(), audio.float()


def conditioned(video: VideoConditioning | None, audio: VideoConditioning | None = None) -> Project | None:
    """The states pulled back to their conditioning (post_process_latent); a stream without conditioning
    has an all-ones mask officially, whose blend is the identity, so it is left as it is."""
    if video is None and audio is None:
        return None
    keep = lambda state, latents: latents if state is None else state.blend(latents)  # noqa: E731
    return lambda latents: [keep(video, latents[0]), keep(audio, latents[1])]
