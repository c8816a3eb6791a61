"""The official res2s sampler (ltx-pipelines 1.0.0, utils/res2s.py + utils/samplers.py
res2s_audio_video_denoising_loop, ltx-core Res2sDiffusionStep), for any number of latents (video, audio).

Per step, from sigma to sigma_next with h = log(sigma / sigma_next):
  x0_1 = D(x, sigma); x_mid = x + h a21 (x0_1 - x), then SDE noise to sub_sigma = sqrt(sigma sigma_next);
  anchor refinement ("bong" iteration) when h < 0.5 and sigma > 0.03;
  x0_2 = D(x_mid, sub_sigma); x_next = x + h (b1 eps_1 + b2 eps_2), then SDE noise to sigma_next.
A final 0 sigma is replaced by [0.0011, 0] and the last step returns the denoised prediction.
Each call of the denoiser is told where it sits (`StepPoint`): substep 0 at sigma, 1 at sub_sigma, and the
final x0 call after the last step is substep 2 of that step.

Conditioned latents (image-to-video): the official loop runs in its default legacy mode, where the SDE
steps use the scalar sigmas for every token and each re-noised state (x_mid, x_next) is then pulled back
to the conditioning (post_process_latent); `project` is that pull-back, applied after both SDE steps.

Precision as the official code: h and the Runge-Kutta coefficients are Python floats (double), the
latent arithmetic is float64, the step-level SDE coefficients are computed from the float32 schedule in
float32 (the substep ones from float64 sigmas), and latents are stored back in the model dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ditto.sampling.points import StepPoint

# The official HQ pipeline never passes a seed: its SDE noise always comes from these two generators.
OFFICIAL_NOISE_SEED = -1
SUBSTEP_SEED_OFFSET = 10000
C2 = 0.5  # midpoint: sub_sigma = sqrt(sigma * sigma_next)
BONG_ITERATIONS = 100
FINAL_SIGMA = 0.0011  # replaces a final 0 so that log(sigma / sigma_next) stays finite

# (latents, sigma on the device, where the call sits) -> denoised latents
Denoise = Callable[[Sequence[torch.Tensor], torch.Tensor, StepPoint], Sequence[torch.Tensor]]
# Maps re-noised float64 latents to the states the loop keeps (the conditioning blend); None = as they are.
Project = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def phi(j: int, neg_h: float) -> float:
    """phi_j(z) = (e^z - sum_{k<j} z^k / k!) / z^j, with its limit 1/j! near z = 0."""
    if abs(neg_h) < 1e-10:
        return 1.0 / math.factorial(j)
    remainder = sum(neg_h**k / math.factorial(k) for k in range(j))
    return (math.exp(neg_h) - remainder) / neg_h**j


def res2s_coefficients(h: float, c2: float = C2) -> tuple[float, float, float]:
    """(a21, b1, b2) as Python floats."""
    a21 = c2 * phi(1, -h * c2)
    b2 = phi(2, -h) / c2
    b1 = phi(1, -h) - b2
    return a21, b1, b2


def sde_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float64 Gaussian, standardised globally, then per sample over (tokens, channels) — the official draw."""
    noise = torch.randn(like.shape, generator=generator, dtype=torch.float64, device=generator.device)
    noise = (noise - noise.mean()) / noise.std()
    return (noise - noise.mean(dim=(-2, -1), keepdim=True)) / noise.std(dim=(-2, -1), keepdim=True)


def sde_step(
    sample: torch.Tensor,
    denoised: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Res2sDiffusionStep.step with sigma_up = sigma_next / 2 (sigma_max 1): variance-preserving re-noising."""
    if sigma_next == 0:
        return denoised
    sigma_up = torch.minimum(sigma_next * 0.5, sigma_next * 0.9999)
    residual = (sigma_next**2 - sigma_up**2).clamp(min=0) ** 0.5
    alpha_ratio = (torch.ones_like(sigma_next) - sigma_next) + residual
    sigma_down = residual / alpha_ratio
    eps = (sample - denoised) / (sigma - sigma_next)
    return alpha_ratio * (sample - sigma * eps + sigma_down * eps) + sigma_up * noise


class Res2s:
    """The res2s loop over a list of latents sharing one schedule and one denoiser."""

    def __init__(
        self, model_dtype: torch.dtype, device: torch.device, noise_seed: int = OFFICIAL_NOISE_SEED
    ) -> None:
        self.model_dtype = model_dtype
        self.step_noise = torch.Generator(device=device).manual_seed(noise_seed)
        self.substep_noise = torch.Generator(device=device).manual_seed(noise_seed + SUBSTEP_SEED_OFFSET)

    def run(
        self,
        latents: Sequence[torch.Tensor],
        sigmas: torch.Tensor,
        denoise: Denoise,
        on_step: Callable[[int, int, Callable[[], list[torch.Tensor]]], None] | None = None,
        project: Project | None = None,
    ) -> list[torch.Tensor]:
        steps = len(sigmas) - 1
        if sigmas[-1] == 0:
            tail = torch.tensor([FINAL_SIGMA, 0.0], dtype=sigmas.dtype, device=sigmas.device)
            sigmas = torch.cat([sigmas[:-1], tail])
        sigmas_cpu = sigmas.double().cpu()
        hs = [-math.log(float(sigmas_cpu[i + 1] / sigmas_cpu[i])) for i in range(steps)]
        host = sigmas_cpu.tolist()
        latents = list(latents)
        for index in range(steps):
            latents = self.step(latents, sigmas, host, index, hs[index], denoise, project)
            if on_step is not None:
                on_step(index + 1, steps, lambda now=latents: now)  # (done, steps, the state on demand)
        if sigmas[-1] == 0:
            final = StepPoint(steps - 1, host[steps], substep=2)
            latents = [x.to(self.model_dtype) for x in denoise(latents, sigmas[steps], final)]
        return latents

    def step(
        self,
        latents: list[torch.Tensor],
        sigmas: torch.Tensor,
        host: list[float],
        index: int,
        h: float,
        denoise: Denoise,
        project: Project | None = None,
    ) -> list[torch.Tensor]:
        """One step; `host` is the schedule as host floats (it names the calls, the math reads `sigmas`)."""
        sigma, sigma_next = sigmas[index].double(), sigmas[index + 1].double()
        anchors = [x.double() for x in latents]
        first = denoise(latents, sigmas[index], StepPoint(index, host[index]))
        a21, b1, b2 = res2s_coefficients(h)
        sub_sigma = torch.sqrt(sigma * sigma_next)
        eps_1 = [d.double() - x for d, x in zip(first, anchors)]
        mids = [x + h * a21 * e for x, e in zip(anchors, eps_1)]
        mids = [
            sde_step(x, m, sigma, sub_sigma, sde_noise(latent, self.substep_noise))
            for x, m, latent in zip(anchors, mids, latents)
        ]
        if project is not None:
            mids = project(mids)
        if h < 0.5 and sigma > 0.03:
            # The official loop always runs all iterations: the anchor converges to x_mid - h a21 eps_1.
            for _ in range(BONG_ITERATIONS):
                anchors = [m - h * a21 * e for m, e in zip(mids, eps_1)]
                eps_1 = [d.double() - x for d, x in zip(first, anchors)]
        midpoint = StepPoint(index, math.sqrt(host[index] * host[index + 1]), substep=1)
        # sub_sigma is float64, as in the official loop
        second = denoise([m.to(self.model_dtype) for m in mids], sub_sigma, midpoint)
        eps_2 = [d.double() - x for d, x in zip(second, anchors)]
        nexts = [x + h * (b1 * e1 + b2 * e2) for x, e1, e2 in zip(anchors, eps_1, eps_2)]
        nexts = [
            sde_step(x, n, sigmas[index], sigmas[index + 1], sde_noise(latent, self.step_noise))
            for x, n, latent in zip(anchors, nexts, latents)
        ]
        if project is not None:
            nexts = project(nexts)
        return [n.to(self.model_dtype) for n in nexts]
