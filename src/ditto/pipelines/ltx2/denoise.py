"""The LTX-2 denoising loop: named transformer passes, the multimodal guider, Euler updates.

Each loop makes one `LoopState` (its text K/V store and its block-loop features, fresh per loop) and gives
every transformer call a `PassContext`: the batched CFG pair is (UNCOND, COND) in that batch order, the lone
conditional pass (COND,), the STG pass (PERTURBED,), the modality-isolation pass (ISOLATED,); with the step
and its sigma as a host float. No host synchronisation happens inside the loop: the sigmas the math uses
live on the device, their host copy (for the contexts) is made once before the first step, guidance
decisions are made from Python floats before the loop, and progress is reported from the host side only.
The host copy of the sigmas comes with the inputs (made before the sigmas went to the device).

CUDA graphs (acceleration/cuda_graph.py): each kind of pass is recorded once per loop and replayed; only the
latents and the device sigma are copied in. A replay runs no Python: what the recorded pass saw of its
context is that of the call that first ran it (its kinds and the loop; the step and host sigma of that
first call), and nothing per step reaches the model as a tensor but the device sigma. So graphs are used
only when every loop feature says it is `replayable` (makes no per-step decision in Python).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ditto.acceleration.cuda_graph import PassGraphs, cuda_graphs_wanted
from ditto.pipelines.ltx2.conditioning.item import VideoConditioning
from ditto.pipelines.ltx2.latents import LatentShape
from ditto.pipelines.ltx2.text import PromptEmbeddings, concat_embeddings
from ditto.runtime.contract import LoopFeature, LoopState, PassContext, PassKind
from ditto.runtime.passes import Outputs, run_passes
from ditto.sampling.euler import euler_step, velocity_to_x0, x0_to_velocity
from ditto.sampling.guidance import GuiderParams, guide
from ditto.sampling.points import StepPoint

# Recording a pass costs about one pass of host time plus the graph's instantiation; replays save the
# launch gaps. Measured on an H100 (benchmarks/NOTES.md): the 40-step stage 1 gains 0.5 s in FP8, the
# 3-step stage 2 (GPU-bound, 6,144 tokens) loses 0.24 s. Shorter loops run eagerly.
MIN_GRAPHED_STEPS = 10
PAIR = (PassKind.UNCOND, PassKind.COND)  # the CFG pair's batch order: [negative, positive], as diffusers
NO_PASS = (None, None)
OnStep = Callable[[int, int], None]  # (steps done, steps of the loop)


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
    # Image / keyframe conditioning (conditioning/); None for text-to-video.
    conditioning: VideoConditioning | None = None
    # The sigmas as host floats, copied before they went to the device (they name the passes' steps);
    # None: read from `sigmas` when the loop starts (one device sync, before the first step).
    host_sigmas: list[float] | None = None

    @property
    def num_steps(self) -> int:
        return len(self.sigmas) - 1


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

    def groups(self) -> list[tuple[PassKind, ...]]:
        """A step's transformer calls (runtime/passes.py): the CFG pair batched, then STG, then isolation."""
        groups = [PAIR if self.uncond else (PassKind.COND,)]
        groups += [(PassKind.PERTURBED,)] * self.perturbed + [(PassKind.ISOLATED,)] * self.isolated
        return groups


class Denoiser:
    """The guided passes of one sampling loop, with the loop's state (`self.loop`) and CUDA graphs."""

    def __init__(
        self,
        transformer: torch.nn.Module,
        dtype: torch.dtype,
        inputs: DenoiseInputs,
        features: Sequence[LoopFeature] = (),
    ) -> None:
        self.transformer = transformer
        self.dtype = dtype
        self.inputs = inputs
        self.passes = Passes.of(inputs.video_guider, inputs.audio_guider)
        self.loop = LoopState(num_steps=inputs.num_steps, features=tuple(features))
        self.host_sigmas = inputs.sigmas.tolist() if inputs.host_sigmas is None else inputs.host_sigmas
        batch, shape, device = inputs.video.shape[0], inputs.shape, inputs.video.device
        self.conditioning = inputs.conditioning
        if self.conditioning is not None:
            self.video_coords = self.conditioning.coords
        else:
            self.video_coords = transformer.rope.prepare_video_coords(
                batch, shape.frames, shape.height, shape.width, device, fps=inputs.frame_rate
            )
        self.audio_coords = transformer.audio_rope.prepare_audio_coords(batch, shape.audio_frames, device)
        self.pair = concat_embeddings(inputs.negative, inputs.positive) if self.passes.uncond else None
        # The loop that owns this denoiser opens and closes `graphs` (see the module docstring).
        long_loop = inputs.num_steps >= MIN_GRAPHED_STEPS
        replayable = all(getattr(feature, "replayable", False) for feature in features)
        self.graphs = PassGraphs(cuda_graphs_wanted(transformer, device) and long_loop and replayable)

    def at(self, step: int) -> StepPoint:
        """Step `step`'s point of the loop: its index and its sigma on the host."""
        return StepPoint(step, self.host_sigmas[step])

    def run_pass(
        self,
        kinds: tuple[PassKind, ...],
        video,
        audio,
        embeds: PromptEmbeddings,
        sigma,
        at: StepPoint,
        **perturbation,
    ) -> tuple[torch.Tensor, ...]:
        """One transformer pass; only the latents and sigma change between the steps of a loop."""
        ctx = PassContext(kinds, at.step, at.sigma, self.loop, at.substep)
        run = lambda v, a, s: self.forward(v, a, embeds, s, ctx, **perturbation)  # noqa: E731
        return self.graphs.call(kinds, run, video, audio, sigma)

    def forward(
        self, video, audio, embeds: PromptEmbeddings, sigma, ctx: PassContext, **perturbation
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
            ctx=ctx,
            **perturbation,
        )
        return out_video.float(), out_audio.float()

    def step(self, video: torch.Tensor, audio: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sigma, sigma_next = self.inputs.sigmas[index], self.inputs.sigmas[index + 1]
        video_x0, audio_x0 = self.guided_x0(video, audio, sigma, self.at(index))
        video_velocity = x0_to_velocity(video, video_x0, sigma)
        audio_velocity = x0_to_velocity(audio, audio_x0, sigma)
        return euler_step(video, video_velocity, sigma, sigma_next), euler_step(
            audio, audio_velocity, sigma, sigma_next
        )

    def guided_x0(
        self, video: torch.Tensor, audio: torch.Tensor, sigma: torch.Tensor, at: StepPoint
    ) -> tuple[torch.Tensor, ...]:
        """Every needed pass at `at` (runtime.run_passes: here, or some on other processes with CFG-parallel),
        converted to x0 (denoised), combined by the guider per modality."""
        video_sigma = self.video_x0_sigma(sigma)
        to_x0 = lambda out: (velocity_to_x0(video, out[0], video_sigma), velocity_to_x0(audio, out[1], sigma))  # noqa: E731
        run = lambda kinds: self.run_kinds(kinds, video, audio, sigma, at)  # noqa: E731
        x0 = {kind: to_x0(out) for kind, out in run_passes(self.loop, self.passes.groups(), run).items()}
        cond, uncond = x0[PassKind.COND], x0.get(PassKind.UNCOND, NO_PASS)
        perturbed, isolated = x0.get(PassKind.PERTURBED, NO_PASS), x0.get(PassKind.ISOLATED, NO_PASS)
        video_x0 = guide(self.inputs.video_guider, cond[0], uncond[0], perturbed[0], isolated[0])
        audio_x0 = guide(self.inputs.audio_guider, cond[1], uncond[1], perturbed[1], isolated[1])
        if self.conditioning is not None:
            video_x0 = self.conditioning.blend(video_x0)
        return video_x0, audio_x0

    def run_kinds(self, kinds: tuple[PassKind, ...], video, audio, sigma, at: StepPoint) -> Outputs:
        """One transformer call computing `kinds` (the CFG pair batched, or one kind alone)."""
        inputs = self.inputs
        if kinds == PAIR:
            return self.run_pass(kinds, video, audio, self.pair, sigma, at)
        (kind,) = kinds
        if kind == PassKind.UNCOND:
            return self.run_pass(kinds, video, audio, inputs.negative, sigma, at)
        perturbation = {}
        if kind == PassKind.PERTURBED:
            perturbation = dict(spatio_temporal_guidance_blocks=inputs.stg_blocks)
        elif kind == PassKind.ISOLATED:
            perturbation = dict(isolate_modalities=True)
        return self.run_pass(kinds, video, audio, inputs.positive, sigma, at, **perturbation)

    def video_x0_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The official X0Model converts each token with its own timestep (sigma * mask), so a kept image
        token's x0 is the token itself; diffusers uses sigma everywhere (docs/parity.md)."""
        if self.conditioning is None or self.conditioning.x0_rule == "diffusers":
            return sigma
        return self.conditioning.mask * sigma


def denoise(
    transformer: torch.nn.Module,
    dtype: torch.dtype,
    inputs: DenoiseInputs,
    on_step: OnStep,
    features: Sequence[LoopFeature] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Euler loop over `inputs.sigmas`; `features` wrap its block loop (fresh ones per loop)."""
    denoiser = Denoiser(transformer, dtype, inputs, features)
    video, audio = inputs.video, inputs.audio
    with denoiser.graphs:
        for index in range(inputs.num_steps):
            video, audio = denoiser.step(video, audio, index)
            on_step(index + 1, inputs.num_steps)
    if inputs.conditioning is not None:
        video = video[:, : inputs.conditioning.generated_tokens]  # appended keyframes are dropped
    return video, audio
