"""The LTX-2 denoising loop: transformer passes, the multimodal guider, Euler updates.

No host synchronisation happens inside the loop: sigmas live on the device, guidance decisions are made
from Python floats before the loop, and progress is reported from the host side only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from ditto.acceleration.cuda_graph import PassGraphs, cuda_graphs_wanted
from ditto.pipelines.ltx2_conditioning import VideoConditioning
from ditto.pipelines.ltx2_latents import LatentShape
from ditto.pipelines.ltx2_text import PromptEmbeddings, concat_embeddings
from ditto.sampling.euler import euler_step, velocity_to_x0, x0_to_velocity
from ditto.sampling.guidance import GuiderParams, guide

# Recording a pass costs about one pass of host time plus the graph's instantiation; replays save the
# launch gaps. Measured on an H100 (benchmarks/NOTES.md): the 40-step stage 1 gains 0.5 s in FP8, the
# 3-step stage 2 (GPU-bound, 6,144 tokens) loses 0.24 s. Shorter loops run eagerly.
MIN_GRAPHED_STEPS = 10


@dataclass
class DenoiseInputs:
    video: torch.Tensor  # [B, T, C] float32
    audio: torch.Tensor  # [B, L, C*M] float32
    positive: PromptEmbeddings
    negative: PromptEmbeddings | None  # present when either modality uses CFG
    sigmas: torch.Tensor  # [steps + 1] float32 on the device
    shape: LatentShape
    frame_rate: float
    video_guider: GuiderParams
    audio_guider: GuiderParams
    stg_blocks: list[int]
    # Image / keyframe conditioning (ltx2_conditioning.py); None for text-to-video.
    conditioning: VideoConditioning | None = None


@dataclass
class Passes:
    """Which transformer passes a step needs, decided once from the guidance scales."""

    uncond: bool
    perturbed: bool
    isolated: bool

    @classmethod
    def of(cls, video: GuiderParams, audio: GuiderParams) -> Passes:
        return cls(
            uncond=video.needs_uncond or audio.needs_uncond,
            perturbed=video.needs_perturbed or audio.needs_perturbed,
            isolated=video.needs_isolated or audio.needs_isolated,
        )


class Denoiser:
    def __init__(self, transformer: torch.nn.Module, dtype: torch.dtype, inputs: DenoiseInputs) -> None:
        self.transformer = transformer
        self.dtype = dtype
        self.inputs = inputs
        self.passes = Passes.of(inputs.video_guider, inputs.audio_guider)
        batch, shape, device = inputs.video.shape[0], inputs.shape, inputs.video.device
        self.conditioning = inputs.conditioning
        if self.conditioning is not None:
            self.video_coords = self.conditioning.coords
        else:
            self.video_coords = transformer.rope.prepare_video_coords(
                batch, shape.frames, shape.height, shape.width, device, fps=inputs.frame_rate
            )
        self.audio_coords = transformer.audio_rope.prepare_audio_coords(batch, shape.audio_frames, device)
        # The CFG pair runs as one batch: [negative, positive], as diffusers batches it.
        self.pair = concat_embeddings(inputs.negative, inputs.positive) if self.passes.uncond else None
        # compile=True on a GPU: each kind of pass is recorded once as a CUDA graph and replayed
        # (acceleration/cuda_graph.py); the loop that owns this denoiser opens and closes `graphs`.
        long_loop = len(inputs.sigmas) - 1 >= MIN_GRAPHED_STEPS
        self.graphs = PassGraphs(cuda_graphs_wanted(transformer, device) and long_loop)

    def run_pass(
        self, kind: str, video, audio, embeds: PromptEmbeddings, sigma, **perturbation
    ) -> tuple[torch.Tensor, ...]:
        """One transformer pass; only the latents and sigma change between the steps of a loop."""
        run = lambda v, a, s: self.forward(v, a, embeds, s, **perturbation)  # noqa: E731
        return self.graphs.call(kind, run, video, audio, sigma)

    def forward(
        self, video, audio, embeds: PromptEmbeddings, sigma, **perturbation
    ) -> tuple[torch.Tensor, ...]:
        repeat = embeds.video.shape[0] // video.shape[0]
        timestep = (sigma * 1000).expand(video.shape[0] * repeat)
        video_timestep = timestep
        if self.conditioning is not None:
            # Per-token timestep sigma * denoise_mask (ltx_pipelines timesteps_from_mask): 0 on kept images.
            mask = self.conditioning.repeat(repeat)[0]
            video_timestep = (mask * sigma) * 1000
        shape = self.inputs.shape
        out_video, out_audio = self.transformer(
            hidden_states=video.repeat(repeat, 1, 1).to(self.dtype),
            audio_hidden_states=audio.repeat(repeat, 1, 1).to(self.dtype),
            encoder_hidden_states=embeds.video,
            audio_encoder_hidden_states=embeds.audio,
            timestep=video_timestep,
            audio_timestep=timestep,
            sigma=timestep,
            encoder_attention_mask=embeds.mask,
            audio_encoder_attention_mask=embeds.mask,
            num_frames=shape.frames,
            height=shape.height,
            width=shape.width,
            fps=self.inputs.frame_rate,
            audio_num_frames=shape.audio_frames,
            video_coords=self.video_coords.repeat(repeat, 1, 1, 1),
            audio_coords=self.audio_coords.repeat(repeat, 1, 1, 1),
            use_cross_timestep=True,  # the official transformer always modulates cross-attention by the other sigma
            **perturbation,
        )
        return out_video.float(), out_audio.float()

    def step(self, video: torch.Tensor, audio: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sigma, sigma_next = self.inputs.sigmas[index], self.inputs.sigmas[index + 1]
        video_x0, audio_x0 = self.guided_x0(video, audio, sigma)
        video_velocity = x0_to_velocity(video, video_x0, sigma)
        audio_velocity = x0_to_velocity(audio, audio_x0, sigma)
        return euler_step(video, video_velocity, sigma, sigma_next), euler_step(
            audio, audio_velocity, sigma, sigma_next
        )

    def guided_x0(
        self, video: torch.Tensor, audio: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Every needed pass, converted to x0 (denoised), combined by the guider per modality."""
        passes, positive = self.passes, self.inputs.positive
        video_sigma = self.video_x0_sigma(sigma)
        to_x0 = lambda out: (velocity_to_x0(video, out[0], video_sigma), velocity_to_x0(audio, out[1], sigma))  # noqa: E731
        uncond = perturbed = isolated = (None, None)
        if passes.uncond:
            pair_video, pair_audio = self.run_pass("pair", video, audio, self.pair, sigma)
            uncond = to_x0((pair_video.chunk(2)[0], pair_audio.chunk(2)[0]))
            cond = to_x0((pair_video.chunk(2)[1], pair_audio.chunk(2)[1]))
        else:
            cond = to_x0(self.run_pass("cond", video, audio, positive, sigma))
        if passes.perturbed:
            perturbed = to_x0(
                self.run_pass(
                    "perturbed",
                    video,
                    audio,
                    positive,
                    sigma,
                    spatio_temporal_guidance_blocks=self.inputs.stg_blocks,
                )
            )
        if passes.isolated:
            isolated = to_x0(
                self.run_pass("isolated", video, audio, positive, sigma, isolate_modalities=True)
            )
        video_x0 = guide(self.inputs.video_guider, cond[0], uncond[0], perturbed[0], isolated[0])
        audio_x0 = guide(self.inputs.audio_guider, cond[1], uncond[1], perturbed[1], isolated[1])
        if self.conditioning is not None:
            video_x0 = self.conditioning.blend(video_x0)
        return video_x0, audio_x0

    def video_x0_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The official X0Model converts each token with its own timestep (sigma * mask), so a kept image
        token's x0 is the token itself; diffusers uses sigma everywhere (docs/parity.md)."""
        if self.conditioning is None or self.conditioning.x0_rule == "diffusers":
            return sigma
        return self.conditioning.mask * sigma


def text_kv_scope(transformer: torch.nn.Module) -> AbstractContextManager[None]:
    """One sampling loop at fixed weights: the text keys/values are computed once (ditto's transformer;
    a reference model passed in by a test has no cache)."""
    scope = getattr(transformer, "text_kv_scope", None)
    return scope() if scope is not None else nullcontext()


def denoise(
    transformer: torch.nn.Module,
    dtype: torch.dtype,
    inputs: DenoiseInputs,
    on_step: Callable[[int, int], None],
) -> tuple[torch.Tensor, torch.Tensor]:
    denoiser = Denoiser(transformer, dtype, inputs)
    video, audio = inputs.video, inputs.audio
    steps = len(inputs.sigmas) - 1
    with text_kv_scope(transformer), denoiser.graphs:
        for index in range(steps):
            video, audio = denoiser.step(video, audio, index)
            on_step(index + 1, steps)
    if inputs.conditioning is not None:
        video = video[:, : inputs.conditioning.generated_tokens]  # appended keyframes are dropped
    return video, audio
