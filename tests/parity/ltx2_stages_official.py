"""The official two-stage and distilled recipes (ltx_pipelines 1.0.0 ti2vid_two_stages.py / distilled.py),
composed from the official building blocks in float32: the pipeline classes hard-code bfloat16, which on
a CPU differs from float32 by ~0.04 and would hide real differences. Same calls, same order, same
generator; only the dtype differs. Two more shims: the official LoRA fuser accepts only bf16/fp8 weights
(it raises for float32), so float32 is fused the way it fuses bf16 (delta + weight); and the upsampler is
the official LatentUpsampler class filled with the tiny folder's tensors (the same keys)."""

from __future__ import annotations

import torch
from ltx_official_reference import official_guiders
from official_shims import official_ledger

DTYPE = torch.float32


def allow_float32_lora_fusing() -> None:
    from ltx_core.loader import fuse_loras

    if getattr(fuse_loras, "_ditto_float32", False):
        return
    original = fuse_loras._fuse_deltas

    def fuse(deltas, weight, key, sd, target_dtype, *args):
        if deltas is not None and weight.dtype == torch.float32:
            return {key: (deltas + weight).to(target_dtype)}  # what the bf16 branch does: deltas.add_(weight)
        return original(deltas, weight, key, sd, target_dtype, *args)

    fuse_loras._fuse_deltas = fuse
    fuse_loras._ditto_float32 = True


def tiny_latent_channels() -> None:
    """The official pipelines size the audio state with the real model's 8 channels x 16 latent mel bins;
    the tiny official model (ditto/tiny/ltx_official.py) has 4 x 16."""
    from ltx_core.types import AudioLatentShape

    if getattr(AudioLatentShape, "_ditto_tiny", False):
        return
    original = AudioLatentShape.from_video_pixel_shape

    def sized(shape, channels: int = 4, **kwargs):
        return original(shape, channels=channels, **kwargs)

    AudioLatentShape.from_video_pixel_shape = staticmethod(sized)
    AudioLatentShape._ditto_tiny = True


def official_upsampler(upsampler_dir):
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator

    source = LTX2LatentUpsamplerModel.from_pretrained(str(upsampler_dir), torch_dtype=DTYPE)
    config = dict(source.config)
    model = LatentUpsamplerConfigurator.from_config(
        dict(
            in_channels=config["in_channels"],
            mid_channels=config["mid_channels"],
            num_blocks_per_stage=config["num_blocks_per_stage"],
            dims=config["dims"],
            spatial_upsample=config["spatial_upsample"],
            temporal_upsample=config["temporal_upsample"],
            rational_resampler=config["use_rational_resampler"],
        )
    )
    model.load_state_dict(source.state_dict(), strict=True)
    return model.to(DTYPE).eval()


def run_official(checkpoint, gemma, upsampler_dir, lora, request: dict, distilled: bool, images: tuple = ()):
    """Returns the final normalised latent states (video [B, C, F, H, W], audio [B, C, L, M]).

    images: (path, frame_idx, strength, crf) tuples, encoded at each stage's size (ti2vid_two_stages)."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps
    from ltx_core.model.upsampler import upsample_video
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES
    from ltx_pipelines.utils.helpers import denoise_audio_video, encode_prompts
    from ltx_pipelines.utils.types import PipelineComponents

    allow_float32_lora_fusing()
    tiny_latent_channels()
    ledger = official_ledger(checkpoint, gemma, DTYPE, "cpu")
    distilled_ledger = ledger.with_additional_loras(
        (LoraPathStrengthAndSDOps(str(lora), 1.0, LTXV_LORA_COMFY_RENAMING_MAP),)
    )
    components = PipelineComponents(dtype=DTYPE, device=torch.device("cpu"))
    components.video_latent_channels = 16  # the pipelines assume the real 128; the tiny model has 16
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(request["seed"]))
    prompts = [request["prompt"]] if distilled else [request["prompt"], request["negative_prompt"]]
    contexts = encode_prompts(prompts, ledger)
    height, width, frames, fps = (
        request["height"],
        request["width"],
        request["num_frames"],
        request["frame_rate"],
    )
    stage_1 = (distilled_ledger if distilled else ledger).transformer()
    if distilled:
        sigmas = torch.Tensor(DISTILLED_SIGMA_VALUES)
        loop = _simple_loop(contexts[0], stage_1)
    else:
        sigmas = LTX2Scheduler().execute(steps=request["num_inference_steps"]).to(DTYPE)
        loop = _guided_loop(contexts, stage_1, official_guiders(checkpoint, request))
    half = VideoPixelShape(batch=1, frames=frames, width=width // 2, height=height // 2, fps=fps)
    common = dict(noiser=noiser, stepper=EulerDiffusionStep(), components=components)
    common.update(dtype=DTYPE, device=torch.device("cpu"))
    video, audio = denoise_audio_video(
        output_shape=half,
        sigmas=sigmas,
        denoising_loop_fn=loop,
        conditionings=_conditionings(images, half, ledger),
        **common,
    )
    upscaled = upsample_video(video.latent[:1], ledger.video_encoder(), official_upsampler(upsampler_dir))
    stage_2 = stage_1 if distilled else distilled_ledger.transformer()
    sigmas_2 = torch.Tensor(STAGE_2_DISTILLED_SIGMA_VALUES)
    full = VideoPixelShape(batch=1, frames=frames, width=width, height=height, fps=fps)
    video, audio = denoise_audio_video(
        output_shape=full,
        sigmas=sigmas_2,
        denoising_loop_fn=_simple_loop(contexts[0], stage_2),
        noise_scale=sigmas_2[0],
        initial_video_latent=upscaled,
        initial_audio_latent=audio.latent,
        conditionings=_conditionings(images, full, ledger),
        **common,
    )
    return video.latent, audio.latent


def _conditionings(images: tuple, shape, ledger) -> list:
    if not images:
        return []
    from ltx_pipelines.utils.args import ImageConditioningInput
    from ltx_pipelines.utils.helpers import combined_image_conditionings

    inputs = [ImageConditioningInput(*image) for image in images]
    return combined_image_conditionings(
        inputs, shape.height, shape.width, ledger.video_encoder(), DTYPE, torch.device("cpu")
    )


def _simple_loop(context, transformer):
    from ltx_pipelines.utils.helpers import simple_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    def loop(sigmas, video_state, audio_state, stepper):
        step = simple_denoising_func(context.video_encoding, context.audio_encoding, transformer)
        return euler_denoising_loop(sigmas, video_state, audio_state, stepper, step)

    return loop


def _guided_loop(contexts, transformer, guiders):
    from ltx_core.components.guiders import create_multimodal_guider_factory
    from ltx_pipelines.utils.helpers import multi_modal_guider_factory_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop

    positive, negative = contexts
    video, audio = guiders

    def loop(sigmas, video_state, audio_state, stepper):
        step = multi_modal_guider_factory_denoising_func(
            video_guider_factory=create_multimodal_guider_factory(video, negative.video_encoding),
            audio_guider_factory=create_multimodal_guider_factory(audio, negative.audio_encoding),
            v_context=positive.video_encoding,
            a_context=positive.audio_encoding,
            transformer=transformer,
        )
        return euler_denoising_loop(sigmas, video_state, audio_state, stepper, step)

    return loop
