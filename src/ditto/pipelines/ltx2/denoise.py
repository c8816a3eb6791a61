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

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ditto.acceleration.cuda_graph import PassGraphs, cuda_graphs_wanted
from ditto.models.ltx2.stg import StreamTap
from ditto.pipelines.ltx2.conditioning.item import VideoConditioning
from ditto.pipelines.ltx2.latents import LatentShape
from ditto.pipelines.ltx2.passes import Passes
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
# (steps done, steps of the loop, the packed video tokens on demand: for previews, read only when asked)
OnStep = Callable[[int, int, Callable[[], torch.Tensor]], None]


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
    # Image / keyframe conditioning (conditioning/); None for text-to-video.
    conditioning: VideoConditioning | None = None
    # Given audio kept with a per-token mask (retake, audio-to-video); None: all audio generated.
    audio_conditioning: VideoConditioning | None = None
    # The sigmas as host floats, copied before they went to the device (they name the passes' steps);
    # None: read from `sigmas` when the loop starts (one device sync, before the first step).
    host_sigmas: list[float] | None = None
    stg_rule: str = "official"  # which self-attentions the STG pass skips (passes.py)
    skip_v2a: bool = False  # no video-to-audio cross-attention in any pass (skip_v2a_cross_attn_for_video_gt)
    share_prefix: bool = True  # the STG pass resumes from the conditional pass (passes.py); same bits

    @property
    def num_steps(self) -> int:
        return len(self.sigmas) - 1


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
        self.num_blocks = len(transformer.transformer_blocks)
        # Prefix reuse hands the STG pass a plan that starts at its first perturbed block: only for loops
        # whose features all say they handle such plans (a step cache that splits plans by position does not).
        share = inputs.share_prefix and all(
            getattr(feature, "handles_resumed_plans", False) for feature in features
        )
        self.passes = Passes.of(
            inputs.video_guider, inputs.audio_guider, inputs.stg_rule, self.num_blocks, share
        )
        self.loop = LoopState(num_steps=inputs.num_steps, features=tuple(features))
        self.host_sigmas = inputs.sigmas.tolist() if inputs.host_sigmas is None else inputs.host_sigmas
        batch, shape, device = inputs.video.shape[0], inputs.shape, inputs.video.device
        self.conditioning = inputs.conditioning
        self.audio_conditioning = inputs.audio_conditioning
        if self.conditioning is not None:
            self.video_coords = self.conditioning.coords
        else:
            self.video_coords = transformer.rope.prepare_video_coords(
                batch, shape.frames, shape.height, shape.width, device, fps=inputs.frame_rate
            )
        self.audio_coords = transformer.audio_rope.prepare_audio_coords(batch, shape.audio_frames, device)
        self.pair = concat_embeddings(inputs.negative, inputs.positive) if self.passes.pair else None
        # The last guided x0 (before the image blend): what a step the guiders skip (skip_step) reuses.
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
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
        resumed: tuple[torch.Tensor, ...] = (),
        tap_at: int | None = None,
        resume_at: int | None = None,
        resumes: PassKind | None = None,
        **perturbation,
    ) -> tuple[torch.Tensor, ...]:
        """One transformer pass; only the latents and sigma change between the steps of a loop.

        tap_at: also return the streams entering that block (after the outputs), if the pass ran it;
        resume_at: start at that block from `resumed` (the streams the tapping pass of kind `resumes`
        returned in this step)."""
        ctx = PassContext(kinds, at.step, at.sigma, self.loop, at.substep, tap_at, resumes)

        def run(v, a, s, *streams):
            tap = None if tap_at is None else StreamTap(tap_at)
            resume = None if resume_at is None else StreamTap(resume_at, streams)
            out = self.forward(v, a, embeds, s, ctx, tap=tap, resume=resume, **perturbation)
            return out if tap is None or tap.streams is None else (*out, *tap.streams)

        return self.graphs.call(kinds, run, video, audio, sigma, *resumed)

    def forward(
        self, video, audio, embeds: PromptEmbeddings, sigma, ctx: PassContext, **options
    ) -> tuple[torch.Tensor, ...]:
        repeat = embeds.video.shape[0] // video.shape[0]
        timestep = (sigma * 1000).expand(video.shape[0] * repeat)
        video_timestep = audio_timestep = timestep
        if self.conditioning is not None:
            # Per-token timestep sigma * denoise_mask (ltx_pipelines timesteps_from_mask): 0 on kept images.
            mask = self.conditioning.repeat(repeat)[0]
            video_timestep = (mask * sigma) * 1000
        if self.audio_conditioning is not None:
            audio_timestep = (self.audio_conditioning.repeat(repeat)[0] * sigma) * 1000
        shape = self.inputs.shape
        out_video, out_audio = self.transformer(
            hidden_states=video.repeat(repeat, 1, 1).to(self.dtype),
            audio_hidden_states=audio.repeat(repeat, 1, 1).to(self.dtype),
            encoder_hidden_states=embeds.video,
            audio_encoder_hidden_states=embeds.audio,
            timestep=video_timestep,
            audio_timestep=audio_timestep,
            sigma=timestep,
            encoder_attention_mask=embeds.attention_mask,
            audio_encoder_attention_mask=embeds.attention_mask,
            num_frames=shape.frames,
            height=shape.height,
            width=shape.width,
            fps=self.inputs.frame_rate,
            audio_num_frames=shape.audio_frames,
            video_coords=self.video_coords.repeat(repeat, 1, 1, 1),
            audio_coords=self.audio_coords.repeat(repeat, 1, 1, 1),
            use_cross_timestep=True,  # the official transformer always modulates cross-attention by the other sigma
            ctx=ctx,
            skip_v2a_cross_attn=self.inputs.skip_v2a,
            **options,
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
        """The guided x0 at `at` (blended back to the images, if any); a step the guiders skip (skip_step:
        both modalities alike, params.py) reuses the last one, as the official denoising function does."""
        if self.last is None or not self.inputs.video_guider.skips(official_step_index(at)):
            self.last = self.combined_x0(video, audio, sigma, at)
        video_x0, audio_x0 = self.last
        if self.conditioning is not None:
            video_x0 = self.conditioning.blend(video_x0)
        if self.audio_conditioning is not None:
            audio_x0 = self.audio_conditioning.blend(audio_x0)
        return video_x0, audio_x0

    def combined_x0(
        self, video: torch.Tensor, audio: torch.Tensor, sigma: torch.Tensor, at: StepPoint
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every needed pass at `at`, converted to x0 (denoised), combined by the guider per modality."""
        video_sigma = self.video_x0_sigma(sigma)
        # Kept audio tokens convert with their own timestep too (retake, audio-to-video: official X0Model).
        audio_sigma = sigma if self.audio_conditioning is None else self.audio_conditioning.mask * sigma
        x0 = {
            kind: (velocity_to_x0(video, out[0], video_sigma), velocity_to_x0(audio, out[1], audio_sigma))
            for kind, out in self.pass_outputs(video, audio, sigma, at).items()
        }
        none = (None, None)
        cond, uncond = x0[PassKind.COND], x0.get(PassKind.UNCOND, none)
        perturbed, isolated = x0.get(PassKind.PERTURBED, none), x0.get(PassKind.ISOLATED, none)
        video_x0 = guide(self.inputs.video_guider, cond[0], uncond[0], perturbed[0], isolated[0])
        audio_x0 = guide(self.inputs.audio_guider, cond[1], uncond[1], perturbed[1], isolated[1])
        return video_x0, audio_x0

    def pass_outputs(
        self, video: torch.Tensor, audio: torch.Tensor, sigma: torch.Tensor, at: StepPoint
    ) -> dict[PassKind, tuple[torch.Tensor, ...]]:
        """Each needed pass's (video, audio) velocity, by kind, laid out as passes.py says: the step's calls
        run through `runtime.run_passes` (with one process in order; a CFG-parallel loop feature runs some
        on other processes, parallel/cfg.py). `taps` holds what this process's conditional pass tapped in
        this step, for the STG pass to resume from (prefix reuse)."""
        run = functools.partial(self.run_pass, video=video, audio=audio, sigma=sigma, at=at)
        taps: dict[PassKind, Outputs] = {}
        groups = pass_groups(self.passes)
        outputs = run_passes(self.loop, groups, lambda kinds: self.run_kinds(run, kinds, taps))
        if self.passes.perturbs_nothing:  # the STG pass is the conditional pass: no call of its own
            outputs[PassKind.PERTURBED] = outputs[PassKind.COND]
        return outputs

    def run_kinds(self, run, kinds: tuple[PassKind, ...], taps: dict[PassKind, Outputs]) -> Outputs:
        """One call computing `kinds`: the CFG pair batched, or one kind alone."""
        inputs = self.inputs
        if kinds == PAIR:
            return run(PAIR, embeds=self.pair)
        (kind,) = kinds
        if kind == PassKind.COND:
            return self.conditional(run, taps)
        if kind == PassKind.UNCOND:
            return run(kinds, embeds=inputs.negative)
        if kind == PassKind.PERTURBED:
            return self.perturbed(run, taps)
        return run(kinds, embeds=inputs.positive, isolate_modalities=True)

    def conditional(self, run, taps: dict[PassKind, Outputs]) -> Outputs:
        """The conditional pass; with prefix reuse it taps its streams entering the STG pass's first
        perturbed block into `taps` (left empty when no feature ran that block: a step cache skipping it)."""
        branch_at = self.passes.branch_at
        tap_at = branch_at if branch_at is not None and not self.passes.perturbs_nothing else None
        out = run((PassKind.COND,), embeds=self.inputs.positive, tap_at=tap_at)
        taps[PassKind.COND] = out[2:]
        return out[:2]

    def perturbed(self, run, taps: dict[PassKind, Outputs]) -> Outputs:
        """The STG pass: resumed from the conditional pass's tapped streams when this process ran that pass
        earlier in this step and it tapped, else whole. With one process the conditional pass always runs
        first; CFG-parallel runs it elsewhere when the split deals the two apart (`pass_groups`)."""
        stg = self.passes.stg
        kinds, positive = (PassKind.PERTURBED,), self.inputs.positive
        options = dict(embeds=positive, video_stg_blocks=stg.video, audio_stg_blocks=stg.audio)
        tapped = taps.get(PassKind.COND)
        if not tapped:
            return run(kinds, **options)
        return run(kinds, resumed=tapped, resume_at=self.passes.branch_at, resumes=PassKind.COND, **options)

    def video_x0_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The official X0Model converts each token with its own timestep (sigma * mask), so a kept image
        token's x0 is the token itself; diffusers uses sigma everywhere (docs/parity.md)."""
        if self.conditioning is None or self.conditioning.x0_rule == "diffusers":
            return sigma
        return self.conditioning.mask * sigma


def pass_groups(passes: Passes) -> list[tuple[PassKind, ...]]:
    """A step's independent transformer calls, in order (runtime/passes.py): the CFG pair batched, then STG,
    then isolation; or, when the pair is split (the STG pass shares a prefix), the conditional pass with the
    STG pass right after it, then the unconditional pass and isolation. A CFG split deals these in
    contiguous runs (parallel/cfg.py), so the STG pass lands on the conditional pass's group (and resumes
    there) whenever that group runs more than one pass: with P passes over d groups that is P > d, where
    the saved blocks shorten the longest group or cost nothing; at d = P each pass has a group of its own
    and the STG pass runs whole beside the others, sooner than both passes in a row on one group."""
    perturbed = [(PassKind.PERTURBED,)] * (passes.perturbed and not passes.perturbs_nothing)
    isolated = [(PassKind.ISOLATED,)] * passes.isolated
    if passes.pair:
        return [PAIR, *perturbed, *isolated]
    return [(PassKind.COND,), *perturbed, *[(PassKind.UNCOND,)] * passes.uncond, *isolated]


def official_step_index(at: StepPoint) -> int:
    """The step index the official loops give the denoising function (what skip_step reads): Euler and
    res2s's first call the step's own, res2s's midpoint call 0, its final x0 call the number of steps."""
    return (at.step, 0, at.step + 1)[at.substep]


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
            on_step(index + 1, inputs.num_steps, lambda now=video: now)
    if inputs.conditioning is not None:
        video = video[:, : inputs.conditioning.generated_tokens]  # appended keyframes are dropped
    return video, audio
