"""The official HQ, keyframe-interpolation, IC-LoRA, retake and audio-to-video pipelines (ltx_pipelines 1.0.0),
composed from the official building blocks in float32, in the order their `__call__`s run them (the
pipeline classes hard-code bfloat16; on a CPU that differs from float32 by ~0.04 and would hide real
differences). Same calls, same generator, same conditioning items; the shims are those of
ltx2_stages_official.py (float32 LoRA fusing, the tiny model's latent channels, the upsampler class).

Each function returns the final normalised latent states (video [B, C, F, H, W], audio [B, C, L, M]).
Where the official pipeline loads a second checkpoint (IC-LoRA: a distilled one), the tiny base checkpoint
with the distilled LoRA fused stands in for it, as ditto applies the distilled LoRA to a base checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from ltx2_stages_official import (
    DTYPE,
    _conditionings,
    _guided_loop,
    _simple_loop,
    allow_float32_lora_fusing,
    official_upsampler,
    tiny_latent_channels,
)
from ltx_pipelines.utils.constants import (  # conftest.py installed the shims before this import
    DISTILLED_SIGMA_VALUES as DISTILLED_SIGMAS,
)
from ltx_pipelines.utils.constants import STAGE_2_DISTILLED_SIGMA_VALUES as STAGE_2_SIGMAS
from official_shims import official_ledger

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Checkpoint:
    path: Path  # the official single file
    gemma: Path
    folder: Path  # the same weights as a diffusers folder, with latent_upsampler/ and distilled_lora/
    distilled_lora: Path
    ic_lora: Path


def _lora(path: Path, strength: float = 1.0):
    from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps

    return LoraPathStrengthAndSDOps(str(path), strength, LTXV_LORA_COMFY_RENAMING_MAP)


def _setup(checkpoint: Checkpoint):
    from ltx_pipelines.utils.types import PipelineComponents

    allow_float32_lora_fusing()
    tiny_latent_channels()
    ledger = official_ledger(checkpoint.path, checkpoint.gemma, DTYPE, "cpu")
    components = PipelineComponents(dtype=DTYPE, device=CPU)
    components.video_latent_channels = 16  # the pipelines assume the real 128; the tiny model has 16
    return ledger, components


def _shapes(request: dict):
    from ltx_core.types import VideoPixelShape

    height, width, frames, fps = (request[k] for k in ("height", "width", "num_frames", "frame_rate"))
    half = VideoPixelShape(batch=1, frames=frames, width=width // 2, height=height // 2, fps=fps)
    full = VideoPixelShape(batch=1, frames=frames, width=width, height=height, fps=fps)
    return half, full


def _guider_params(request: dict, prefix: str):
    from ltx_core.components.guiders import MultiModalGuiderParams

    return MultiModalGuiderParams(
        cfg_scale=request[f"{prefix}guidance_scale"],
        stg_scale=request[f"{prefix}stg_scale"],
        rescale_scale=request[f"{prefix}guidance_rescale"],
        modality_scale=request[f"{prefix}modality_scale"],
        stg_blocks=request["spatio_temporal_guidance_blocks"],
    )


def _guiders(request: dict):
    return _guider_params(request, ""), _guider_params(request, "audio_")


def _upscaled(ledger, checkpoint: Checkpoint, video_state):
    from ltx_core.model.upsampler import upsample_video

    upsampler = official_upsampler(checkpoint.folder / "latent_upsampler")
    return upsample_video(video_state.latent[:1], ledger.video_encoder(), upsampler)


def official_hq(checkpoint: Checkpoint, request: dict):
    """ti2vid_two_stages_hq.py: res2s in both stages, the distilled LoRA at 0.25 then 0.5."""
    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_core.components.guiders import MultiModalGuider
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.tools import VideoLatentShape
    from ltx_pipelines.utils.helpers import (
        denoise_audio_video,
        encode_prompts,
        multi_modal_guider_denoising_func,
        simple_denoising_func,
    )
    from ltx_pipelines.utils.samplers import res2s_audio_video_denoising_loop

    ledger, components = _setup(checkpoint)
    stage_1_ledger = ledger.with_additional_loras((_lora(checkpoint.distilled_lora, 0.25),))
    stage_2_ledger = ledger.with_additional_loras((_lora(checkpoint.distilled_lora, 0.5),))
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(request["seed"]))
    positive, negative = encode_prompts([request["prompt"], request["negative_prompt"]], ledger)
    half, full = _shapes(request)
    empty = torch.empty(VideoLatentShape.from_pixel_shape(half).to_torch_shape())
    sigmas = LTX2Scheduler().execute(latent=empty, steps=request["num_inference_steps"]).to(DTYPE)
    stepper = Res2sDiffusionStep()
    transformer = stage_1_ledger.transformer()

    def first(sigmas, video_state, audio_state, stepper):
        denoise = multi_modal_guider_denoising_func(
            MultiModalGuider(_guider_params(request, ""), negative.video_encoding),
            MultiModalGuider(_guider_params(request, "audio_"), negative.audio_encoding),
            positive.video_encoding,
            positive.audio_encoding,
            transformer,
        )
        return res2s_audio_video_denoising_loop(
            sigmas, video_state, audio_state, stepper, denoise, model_dtype=DTYPE
        )

    common = dict(noiser=noiser, stepper=stepper, components=components, dtype=DTYPE, device=CPU)
    video, audio = denoise_audio_video(
        output_shape=half, conditionings=[], sigmas=sigmas, denoising_loop_fn=first, **common
    )
    upscaled = _upscaled(ledger, checkpoint, video)
    transformer_2 = stage_2_ledger.transformer()

    def second(sigmas, video_state, audio_state, stepper):
        denoise = simple_denoising_func(positive.video_encoding, positive.audio_encoding, transformer_2)
        return res2s_audio_video_denoising_loop(
            sigmas, video_state, audio_state, stepper, denoise, model_dtype=DTYPE
        )

    sigmas_2 = torch.tensor(STAGE_2_SIGMAS)
    video, audio = denoise_audio_video(
        output_shape=full, conditionings=[], sigmas=sigmas_2, denoising_loop_fn=second,
        noise_scale=sigmas_2[0], initial_video_latent=upscaled, initial_audio_latent=audio.latent, **common,
    )  # fmt: skip
    return video.latent, audio.latent


def _guiding_keyframes(images: tuple, shape, ledger) -> list:
    from ltx_pipelines.utils.args import ImageConditioningInput
    from ltx_pipelines.utils.helpers import image_conditionings_by_adding_guiding_latent

    inputs = [ImageConditioningInput(*image) for image in images]
    return image_conditionings_by_adding_guiding_latent(
        inputs, shape.height, shape.width, ledger.video_encoder(), DTYPE, CPU
    )


def official_keyframe_interpolation(checkpoint: Checkpoint, request: dict, images: tuple):
    """keyframe_interpolation.py: every image an appended guiding keyframe, in both stages."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_pipelines.utils.helpers import denoise_audio_video, encode_prompts

    ledger, components = _setup(checkpoint)
    stage_2_ledger = ledger.with_additional_loras((_lora(checkpoint.distilled_lora),))
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(request["seed"]))
    contexts = encode_prompts([request["prompt"], request["negative_prompt"]], ledger)
    half, full = _shapes(request)
    sigmas = LTX2Scheduler().execute(steps=request["num_inference_steps"]).to(DTYPE)
    common = dict(noiser=noiser, stepper=EulerDiffusionStep(), components=components, dtype=DTYPE, device=CPU)
    video, audio = denoise_audio_video(
        output_shape=half, conditionings=_guiding_keyframes(images, half, ledger), sigmas=sigmas,
        denoising_loop_fn=_guided_loop(contexts, ledger.transformer(), _guiders(request)), **common,
    )  # fmt: skip
    upscaled = _upscaled(ledger, checkpoint, video)
    sigmas_2 = torch.Tensor(STAGE_2_SIGMAS)
    video, audio = denoise_audio_video(
        output_shape=full, conditionings=_guiding_keyframes(images, full, ledger), sigmas=sigmas_2,
        denoising_loop_fn=_simple_loop(contexts[0], stage_2_ledger.transformer()), noise_scale=sigmas_2[0],
        initial_video_latent=upscaled, initial_audio_latent=audio.latent, **common,
    )  # fmt: skip
    return video.latent, audio.latent


def official_ic_lora(checkpoint: Checkpoint, request: dict, reference: Path, downscale: int, images: tuple):
    """ic_lora.py: stage 1 with the IC-LoRA and the reference video appended after the images, stage 2
    with the images only; 8 + 3 distilled sigmas, no guidance, distilled weights in both."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.conditioning import VideoConditionByReferenceLatent
    from ltx_pipelines.utils.helpers import denoise_audio_video, encode_prompts
    from ltx_pipelines.utils.media_io import load_video_conditioning

    ledger, components = _setup(checkpoint)
    distilled = ledger.with_additional_loras((_lora(checkpoint.distilled_lora),))
    stage_1_ledger = distilled.with_additional_loras((_lora(checkpoint.ic_lora),))
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(request["seed"]))
    (context,) = encode_prompts([request["prompt"]], ledger)
    half, full = _shapes(request)
    pixels = load_video_conditioning(
        str(reference), half.height // downscale, half.width // downscale, request["num_frames"], DTYPE, CPU
    )
    encoder = ledger.video_encoder()
    stage_1_items = _conditionings(images, half, ledger) + [
        VideoConditionByReferenceLatent(latent=encoder(pixels), downscale_factor=downscale, strength=1.0)
    ]
    common = dict(noiser=noiser, stepper=EulerDiffusionStep(), components=components, dtype=DTYPE, device=CPU)
    video, audio = denoise_audio_video(
        output_shape=half, conditionings=stage_1_items, sigmas=torch.Tensor(DISTILLED_SIGMAS),
        denoising_loop_fn=_simple_loop(context, stage_1_ledger.transformer()), **common,
    )  # fmt: skip
    upscaled = _upscaled(ledger, checkpoint, video)
    sigmas_2 = torch.Tensor(STAGE_2_SIGMAS)
    video, audio = denoise_audio_video(
        output_shape=full, conditionings=_conditionings(images, full, ledger), sigmas=sigmas_2,
        denoising_loop_fn=_simple_loop(context, distilled.transformer()), noise_scale=sigmas_2[0],
        initial_video_latent=upscaled, initial_audio_latent=audio.latent, **common,
    )  # fmt: skip
    return video.latent, audio.latent


def official_retake(checkpoint: Checkpoint, request: dict, source: Path, regenerate: str = "both"):
    """retake.py RetakePipeline.__call__ (not distilled): the source encoded, windows kept, guided Euler."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.guiders import MultiModalGuider
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.retake import TemporalRegionMask, _encode_audio_for_retake, _encode_video_for_retake
    from ltx_pipelines.utils.helpers import (
        encode_prompts,
        multi_modal_guider_denoising_func,
        noise_audio_state,
        noise_video_state,
    )
    from ltx_pipelines.utils.media_io import decode_audio_from_file, get_videostream_metadata
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    ledger, components = _setup(checkpoint)
    generator = torch.Generator().manual_seed(request["seed"])
    fps, frames, width, height = get_videostream_metadata(str(source))
    shape = VideoPixelShape(batch=1, frames=frames, width=width, height=height, fps=fps)
    video_latent = _encode_video_for_retake(ledger.video_encoder(), str(source), shape, DTYPE, CPU)
    start, end = request["start_time"], request["end_time"]
    video_window = (start, end) if regenerate in ("both", "video") else (0.0, 0.0)
    audio_window = (start, end) if regenerate in ("both", "audio") else (0.0, 0.0)
    sound = decode_audio_from_file(str(source), CPU)
    audio_latent = _encode_audio_for_retake(
        ledger.audio_encoder(), sound.waveform.squeeze(0), sound.sampling_rate, shape, DTYPE
    )
    positive, negative = encode_prompts([request["prompt"], request["negative_prompt"]], ledger)
    transformer = ledger.transformer()
    sigmas = LTX2Scheduler().execute(steps=request["num_inference_steps"]).to(DTYPE)
    denoise = multi_modal_guider_denoising_func(
        MultiModalGuider(_guider_params(request, ""), negative.video_encoding),
        MultiModalGuider(_guider_params(request, "audio_"), negative.audio_encoding),
        v_context=positive.video_encoding,
        a_context=positive.audio_encoding,
        transformer=transformer,
    )
    noiser = GaussianNoiser(generator=generator)
    common = dict(noiser=noiser, components=components, dtype=DTYPE, device=CPU)
    video_state, video_tools = noise_video_state(
        output_shape=shape, conditionings=[TemporalRegionMask(*video_window, fps=fps)],
        initial_latent=video_latent, **common,
    )  # fmt: skip
    audio_state, audio_tools = noise_audio_state(
        output_shape=shape, conditionings=[TemporalRegionMask(*audio_window, fps=fps)],
        initial_latent=audio_latent, **common,
    )  # fmt: skip
    video_state, audio_state = euler_denoising_loop(
        sigmas, video_state, audio_state, EulerDiffusionStep(), denoise
    )
    video_state = video_tools.unpatchify(video_tools.clear_conditioning(video_state))
    audio_state = audio_tools.unpatchify(audio_tools.clear_conditioning(audio_state))
    return video_state.latent, audio_state.latent


def official_audio_to_video(checkpoint: Checkpoint, request: dict, audio_path: Path):
    """a2vid_two_stage.py: the sound encoded and kept in both stages, the video guided in stage 1 (the
    audio guider neutral, without a negative context), the distilled LoRA in stage 2."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.model.audio_vae import encode_audio
    from ltx_core.types import AudioLatentShape
    from ltx_pipelines.utils.helpers import (
        denoise_video_only,
        encode_prompts,
        multi_modal_guider_denoising_func,
    )
    from ltx_pipelines.utils.media_io import decode_audio_from_file
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    ledger, components = _setup(checkpoint)
    stage_2_ledger = ledger.with_additional_loras((_lora(checkpoint.distilled_lora),))
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(request["seed"]))
    positive, negative = encode_prompts([request["prompt"], request["negative_prompt"]], ledger)
    duration = request["num_frames"] / request["frame_rate"]
    sound = decode_audio_from_file(str(audio_path), CPU, 0.0, duration)
    audio_latent = encode_audio(sound, ledger.audio_encoder())
    audio_latent = audio_latent[:, :, : AudioLatentShape.from_duration(batch=1, duration=duration).frames]
    half, full = _shapes(request)
    sigmas = LTX2Scheduler().execute(steps=request["num_inference_steps"]).to(DTYPE)
    transformer = ledger.transformer()

    def first(sigmas, video_state, audio_state, stepper):
        denoise = multi_modal_guider_denoising_func(
            MultiModalGuider(_guider_params(request, ""), negative.video_encoding),
            MultiModalGuider(MultiModalGuiderParams()),
            positive.video_encoding,
            positive.audio_encoding,
            transformer,
        )
        return euler_denoising_loop(sigmas, video_state, audio_state, stepper, denoise)

    common = dict(noiser=noiser, stepper=EulerDiffusionStep(), components=components, dtype=DTYPE, device=CPU)
    video = denoise_video_only(
        output_shape=half, conditionings=[], sigmas=sigmas, denoising_loop_fn=first,
        initial_audio_latent=audio_latent, **common,
    )  # fmt: skip
    upscaled = _upscaled(ledger, checkpoint, video)
    sigmas_2 = torch.Tensor(STAGE_2_SIGMAS)
    video = denoise_video_only(
        output_shape=full, conditionings=[], sigmas=sigmas_2,
        denoising_loop_fn=_simple_loop(positive, stage_2_ledger.transformer()), noise_scale=sigmas_2[0],
        initial_video_latent=upscaled, initial_audio_latent=audio_latent, **common,
    )  # fmt: skip
    return video.latent, audio_latent, sound
