"""The public steps of an LTX-2 request; a recipe (recipes/) is a short composition of them.

encode_prompts -> prepare (conditioning, noise, sigmas, guidance) -> denoise (one sampling loop, with
progress) -> [upsample -> stage_two_inputs -> denoise] -> finish (decode, Result). Each step takes what it
needs and returns what the next one takes; none keeps state between requests.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ditto.media.audio import DecodedAudio
from ditto.media.pixels import to_pil
from ditto.pipelines.base import StageTimer
from ditto.pipelines.ltx2.components import LTX2Components
from ditto.pipelines.ltx2.conditioning.image import conditioning_tools, image_items
from ditto.pipelines.ltx2.conditioning.item import (
    ConditioningItem,
    VideoConditioning,
    apply_items,
    unconditioned_audio,
)
from ditto.pipelines.ltx2.decode import decode_audio, decode_video, sample_rate, to_host
from ditto.pipelines.ltx2.denoise import DenoiseInputs
from ditto.pipelines.ltx2.denoise import denoise as denoise_euler
from ditto.pipelines.ltx2.latents import (
    LatentShape,
    denormalize_audio_tokens,
    denormalize_video,
    given_audio_latents,
    given_video_latents,
    latent_shape,
    normalize_video,
    official_noise,
    pack_video,
    unpack_audio,
    unpack_video,
)
from ditto.pipelines.ltx2.lora import DistilledLora
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.passes import Passes
from ditto.pipelines.ltx2.res2s import denoise_res2s
from ditto.pipelines.ltx2.text import PromptEmbeddings, encode_prompt_sets, repeat_embeddings
from ditto.result import Result
from ditto.runtime.contract import RequestLoops
from ditto.runtime.progress import PreviewLatents, Progress, token_grid
from ditto.sampling.guidance import GuiderParams
from ditto.sampling.schedules import explicit_sigmas, ltx2_sigmas

# ltx_pipelines/utils/constants.py (1.0.0): STAGE_2_DISTILLED_SIGMA_VALUES.
STAGE_2_SIGMAS = [0.909375, 0.725, 0.421875, 0.0]
UNGUIDED = GuiderParams(cfg_scale=1.0, stg_scale=0.0, modality_scale=1.0, rescale=0.0)


@dataclass(frozen=True)
class Toolkit:
    """What a recipe runs with besides the request: the loaded components, the distilled LoRA, and the
    request's loops (each sampling loop's fresh block-loop features, and the request's stats)."""

    components: LTX2Components
    distilled: DistilledLora
    loops: RequestLoops
    ic_lora: DistilledLora | None = None  # the IC-LoRA (stage 1 of ic-lora), when one is loaded


@dataclass(frozen=True)
class Prompts:
    positive: PromptEmbeddings
    negative: PromptEmbeddings | None  # encoded only when a modality uses CFG


def request_generator(components: LTX2Components, params: LTX2Params) -> torch.Generator:
    """The request's generator, or one seeded from `seed` (a random seed if none)."""
    if params.generator is not None:
        return params.generator
    seed = random.randrange(2**31) if params.seed is None else params.seed
    return torch.Generator(device=components.device).manual_seed(seed)


def encode_prompts(components: LTX2Components, params: LTX2Params) -> Prompts:
    """Gemma + connectors for the prompts (and the negative prompts, when CFG needs them)."""
    repeat = params.num_videos_per_prompt
    uncond = Passes.of(*params.guiders()).uncond
    sets = [params.prompts, params.negative_prompts] if uncond else [params.prompts]
    encoded = encode_prompt_sets(components, sets, params.max_sequence_length)
    negative = repeat_embeddings(encoded[1], repeat) if uncond else None
    return Prompts(repeat_embeddings(encoded[0], repeat), negative)


@dataclass(frozen=True)
class Items:
    """The conditioning items of one sampling loop, per stream (conditioning/). None: the request's images
    for the video (combined_image_conditionings) and nothing for the audio."""

    video: list[ConditioningItem] | None = None
    audio: list[ConditioningItem] = dataclasses.field(default_factory=list)


def positive_audio_text(prompts: Prompts) -> Prompts:
    """The unconditional pass with the negative video text but the positive audio text: a2vid's stage 1,
    whose audio guider has no negative context (the official pass then takes the positive one)."""
    if prompts.negative is None:
        return prompts
    negative = dataclasses.replace(prompts.negative, audio=prompts.positive.audio)
    return Prompts(prompts.positive, negative)


def conditioning(
    components: LTX2Components, params: LTX2Params, shape: LatentShape, batch: int, items: Items | None = None
) -> tuple[VideoConditioning | None, VideoConditioning | None]:
    """The loop's (video, audio) conditioned states at `shape`; None for a stream nothing conditions."""
    items = items or Items()
    video_items = image_items(params.image or []) if items.video is None else items.video
    tools = conditioning_tools(params, components.vae, components.transformer.rope, shape, batch)
    tools = dataclasses.replace(tools, audio_rope=components.transformer.audio_rope)
    video = apply_items(video_items, tools, params.image_conditioning) if video_items else None
    audio = apply_items(items.audio, tools, start=unconditioned_audio(tools)) if items.audio else None
    return video, audio


def prepare(
    components: LTX2Components,
    params: LTX2Params,
    prompts: Prompts,
    generator: torch.Generator,
    items: Items | None = None,
    sigmas: torch.Tensor | None = None,
) -> DenoiseInputs:
    """One sampling loop's inputs: the conditioned initial latents, the sigmas (given, the request's, or
    the official schedule) and the guidance."""
    shape = latent_shape(components, params)
    batch = len(params.prompts) * params.num_videos_per_prompt
    conditions, audio_conditions = conditioning(components, params, shape, batch, items)
    video, audio = initial_latents(components, params, shape, batch, generator, conditions, audio_conditions)
    if sigmas is None:
        sigmas = (
            explicit_sigmas(params.sigmas)
            if params.sigmas is not None
            else ltx2_sigmas(params.num_inference_steps)
        )  # on the host: its copy names the passes' sigmas without a device sync
    video_guider, audio_guider = params.guiders()
    return DenoiseInputs(
        video=video,
        audio=audio,
        positive=prompts.positive,
        negative=prompts.negative,
        sigmas=sigmas.to(components.device),
        host_sigmas=sigmas.tolist(),
        shape=shape,
        frame_rate=float(params.frame_rate),
        video_guider=video_guider,
        audio_guider=audio_guider,
        conditioning=conditions,
        audio_conditioning=audio_conditions,
        stg_rule=params.stg_rule,
        skip_v2a=params.skip_v2a_cross_attn_for_video_gt,
    )


def initial_latents(
    components: LTX2Components,
    params: LTX2Params,
    shape: LatentShape,
    batch: int,
    generator: torch.Generator,
    conditions: VideoConditioning | None,
    audio_conditions: VideoConditioning | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official noise (or the given latents), with the conditioning applied: packed video and audio."""
    device = components.device
    extra = conditions.extra_tokens if conditions is not None else 0
    video, audio = official_noise(batch, shape, generator, components.dtype, device, extra)
    if params.latents is not None:
        given = given_video_latents(params.latents.to(device), shape, batch, components.vae)
        video = torch.cat([given, video[:, shape.video_tokens :]], dim=1)
    if conditions is not None:
        video = conditions.initial(video)
    if params.audio_latents is not None:
        audio = given_audio_latents(params.audio_latents.to(device), shape, batch, components.audio_vae)
    if audio_conditions is not None:
        audio = audio_conditions.initial(audio)
    return video, audio


def denoise(
    kit: Toolkit, inputs: DenoiseInputs, progress: Progress, stage: str, sampler: str = "euler"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sampling loop (Euler or res2s), with its progress bar and fresh loop features."""
    loop = denoise_res2s if sampler == "res2s" else denoise_euler
    features = kit.loops.features(stage, inputs.num_steps)
    components = kit.components
    preview = middle_frame_preview(inputs.shape, components.vae.temporal_compression_ratio)
    with progress.loop(stage, inputs.num_steps) as step:
        on_step = lambda done, total, video: step(latents=lambda: preview(video()))  # noqa: E731
        return loop(components.transformer, components.dtype, inputs, on_step, features)


def middle_frame_preview(
    shape: LatentShape, frames_per_latent: int
) -> Callable[[torch.Tensor], PreviewLatents]:
    """Packed video tokens -> the middle latent frame as a preview grid, with the output frames it stands
    for (latent frame 0 is output frame 0; frame f >= 1 the `frames_per_latent` frames ending at f * that + 1)."""
    middle = shape.frames // 2
    first_frame = 0 if middle == 0 else (middle - 1) * frames_per_latent + 1
    frames = (first_frame, middle * frames_per_latent + 1)
    cells = shape.height * shape.width
    return lambda tokens: token_grid(tokens, shape.height, shape.width, middle * cells, frames)


def half_size(params: LTX2Params, generator: torch.Generator | None, **changes) -> LTX2Params:
    """A two-stage request's stage 1: half width and height, the shared generator, the recipe's changes."""
    return dataclasses.replace(
        params, height=params.height // 2, width=params.width // 2, generator=generator, **changes
    )


def upsample(components: LTX2Components, tokens: torch.Tensor, shape: LatentShape) -> torch.Tensor:
    """Packed normalised video tokens of stage 1 -> packed normalised tokens at twice the height and width:
    the x2 latent upsampler in VAE space (un-normalised before, normalised after, as ltx_core's
    upsample_video)."""
    upsampler, vae = components.latent_upsampler, components.vae
    latents = denormalize_video(unpack_video(tokens, shape), vae)
    upsampled = upsampler(latents.to(upsampler.dtype)).float()
    return pack_video(normalize_video(upsampled, vae))


def stage_two_inputs(
    components: LTX2Components,
    params: LTX2Params,
    first: DenoiseInputs,
    video: torch.Tensor,
    audio: torch.Tensor,
    generator: torch.Generator,
    items: Items | None = None,
) -> DenoiseInputs:
    """Stage 2 at full size from stage 1's upsampled video and its audio: noise * sigma_0 + latent *
    (1 - sigma_0) (ltx_core GaussianNoiser with noise_scale = sigma_0), video then audio from the shared
    generator, in float32 (the official noiser's arithmetic), the 3 fixed stage-2 sigmas and no guidance.
    Images condition stage 2 again, re-encoded at full size (ti2vid_two_stages' stage_2_conditionings);
    `items` replace them (and may keep the audio: audio-to-video)."""
    shape = latent_shape(components, params)
    host_sigmas = torch.tensor(STAGE_2_SIGMAS, dtype=torch.float32)
    sigmas = host_sigmas.to(components.device)
    conditions, audio_conditions = conditioning(components, params, shape, video.shape[0], items)
    extra = conditions.extra_tokens if conditions is not None else 0
    noise_video, noise_audio = official_noise(
        video.shape[0], shape, generator, components.dtype, components.device, extra
    )
    scale = sigmas[0]
    if conditions is not None:
        video = conditions.initial(noise_video, base=video, noise_scale=scale)
    else:
        video = noise_video * scale + video * (1 - scale)
    if audio_conditions is not None:
        audio = audio_conditions.initial(noise_audio, base=audio, noise_scale=scale)
    else:
        audio = noise_audio * scale + audio * (1 - scale)
    return dataclasses.replace(
        first,
        conditioning=conditions,
        audio_conditioning=audio_conditions,
        video=video,
        audio=audio,
        negative=None,
        sigmas=sigmas,
        host_sigmas=host_sigmas.tolist(),
        shape=shape,
        video_guider=UNGUIDED,
        audio_guider=UNGUIDED,
    )


def finish(
    components: LTX2Components,
    params: LTX2Params,
    shape: LatentShape,
    video: torch.Tensor,
    audio: torch.Tensor,
    timer: StageTimer,
    sound: DecodedAudio | None = None,
) -> Result:
    """Denoised packed tokens -> raw latents, then frames and waveform (or the latents when asked); with
    `sound`, the video carries that sound instead of the decoded audio (audio-to-video)."""
    video_latents = denormalize_video(unpack_video(video, shape), components.vae)
    audio_latents = unpack_audio(denormalize_audio_tokens(audio, components.audio_vae), shape)
    if params.output_type == "latent":
        latents = {"video": video_latents, "audio": audio_latents}
        return Result(latents=latents, timings=timer.timings, memory=timer.memory)
    with timer.stage("decode"):
        frames = decode_video(components, video_latents)
        if sound is None:
            waveform, rate = decode_audio(components, audio_latents), sample_rate(components)
        else:
            waveform = torch.from_numpy(sound.waveform)[None].expand(frames.shape[0], -1, -1)
            rate = sound.sample_rate
    return build_result(components, params, frames, waveform, timer, rate)


def build_result(
    components: LTX2Components,
    params: LTX2Params,
    frames: torch.Tensor,
    waveform: torch.Tensor,
    timer: StageTimer,
    rate: int | None = None,
) -> Result:
    """Frames [B, F, H, W, 3] and waveforms [B, C, S] -> the Result (numpy or PIL frames, first of the batch
    up front)."""
    videos = list(to_host(frames).numpy())
    if params.output_type == "pil":
        videos = [to_pil(v) for v in videos]
    audios = list(to_host(waveform).numpy())
    return Result(
        frames=videos[0],
        audio=audios[0],
        sample_rate=sample_rate(components) if rate is None else rate,
        frame_rate=float(params.frame_rate),
        timings=timer.timings,
        memory=timer.memory,
        batch_frames=videos,
        batch_audio=audios,
    )
