"""The official one-stage text-to-video run (ltx_pipelines TI2VidOneStagePipeline.__call__'s steps), in
float32: the official pipeline hard-codes bfloat16, so its steps are called here with dtype=float32."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import official_shims
import torch


def official_one_stage(
    checkpoint: Path,
    gemma: Path,
    kwargs: dict,
    sampler: str = "euler",
    images: tuple = (),
    dtype: torch.dtype = torch.float32,
    noise_dtype: torch.dtype | None = None,
):
    """(video latent [B,C,F,H,W], audio latent [B,C,L,M], waveform [B,2,S]) — official normalised latents.

    kwargs: the request in ditto's (diffusers') keywords; what it leaves unset keeps the official default
    of the checkpoint's version (official_guiders). `skip_v2a_cross_attn_for_video_gt` runs the official
    model with its video-to-audio cross-attention skipped in every pass (without_v2a).
    images: (path, frame_idx, strength, crf) tuples, conditioned as TI2VidOneStagePipeline does
    (combined_image_conditionings: frame 0 replaces latent frame 0, later frames are appended keyframes).
    dtype: the pipeline's dtype (the official pipelines hard-code bfloat16); noise_dtype: draw the initial
    noise in this dtype instead of `dtype` (drawn_in), so a float32 run can start from a bf16 run's noise."""
    official_shims.install()
    from ltx_core.components.diffusion_steps import EulerDiffusionStep, Res2sDiffusionStep
    from ltx_core.components.guiders import create_multimodal_guider_factory
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.model.audio_vae import decode_audio
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.utils import (
        combined_image_conditionings,
        denoise_audio_video,
        encode_prompts,
        euler_denoising_loop,
        multi_modal_guider_factory_denoising_func,
    )
    from ltx_pipelines.utils.samplers import res2s_audio_video_denoising_loop

    device = torch.device("cpu")
    ledger = official_shims.official_ledger(checkpoint, gemma, dtype, device)
    ctx_p, ctx_n = encode_prompts([kwargs["prompt"], kwargs["negative_prompt"]], ledger)
    transformer = ledger.transformer()
    if kwargs.get("skip_v2a_cross_attn_for_video_gt"):
        transformer = without_v2a(transformer)
    sigmas = LTX2Scheduler().execute(steps=kwargs["num_inference_steps"]).to(dtype=torch.float32)
    video_params, audio_params = official_guiders(checkpoint, kwargs)
    denoise_fn = multi_modal_guider_factory_denoising_func(
        video_guider_factory=create_multimodal_guider_factory(video_params, ctx_n.video_encoding),
        audio_guider_factory=create_multimodal_guider_factory(audio_params, ctx_n.audio_encoding),
        v_context=ctx_p.video_encoding,
        a_context=ctx_p.audio_encoding,
        transformer=transformer,
    )

    def loop(sigmas, video_state, audio_state, stepper):
        if sampler == "res2s":
            return res2s_audio_video_denoising_loop(
                sigmas, video_state, audio_state, stepper, denoise_fn, model_dtype=dtype
            )
        return euler_denoising_loop(
            sigmas=sigmas,
            video_state=video_state,
            audio_state=audio_state,
            stepper=stepper,
            denoise_fn=denoise_fn,
        )

    shape = VideoPixelShape(
        batch=1,
        frames=kwargs["num_frames"],
        width=kwargs["width"],
        height=kwargs["height"],
        fps=kwargs["frame_rate"],
    )
    generator = torch.Generator(device=device).manual_seed(kwargs["seed"])
    conditionings = []
    if images:
        from ltx_pipelines.utils.args import ImageConditioningInput

        conditionings = combined_image_conditionings(
            images=[ImageConditioningInput(*image) for image in images],
            height=shape.height,
            width=shape.width,
            video_encoder=ledger.video_encoder(),
            dtype=dtype,
            device=device,
        )
    with _audio_latent_channels(ledger):
        video_state, audio_state = denoise_audio_video(
            output_shape=shape,
            conditionings=conditionings,
            noiser=drawn_in(GaussianNoiser(generator=generator), noise_dtype or dtype),
            sigmas=sigmas,
            stepper=Res2sDiffusionStep() if sampler == "res2s" else EulerDiffusionStep(),
            denoising_loop_fn=loop,
            components=_components(dtype, device, video_state_channels(ledger)),
            dtype=dtype,
            device=device,
        )
    audio = decode_audio(audio_state.latent, ledger.audio_decoder(), ledger.vocoder())
    return video_state.latent, audio_state.latent, audio


# The official guider parameters by ditto's (diffusers') keyword, per modality prefix ("" or "audio_").
GUIDER_KEYWORDS = dict(
    cfg_scale="guidance_scale",
    stg_scale="stg_scale",
    modality_scale="modality_scale",
    rescale_scale="guidance_rescale",
    skip_step="skip_step",
)


def official_guiders(checkpoint: Path, kwargs: dict):
    """(video, audio) MultiModalGuiderParams: the official defaults of the checkpoint's version
    (ltx_pipelines detect_params: LTX_2_PARAMS or LTX_2_3_PARAMS), with the request's explicit values.
    `spatio_temporal_guidance_blocks` (diffusers' keyword) names both guiders' stg_blocks, the
    `audio_spatio_temporal_guidance_blocks` the audio guider's alone."""
    from dataclasses import replace

    from ltx_pipelines.utils.constants import detect_params

    defaults = detect_params(str(checkpoint))
    blocks = kwargs.get("spatio_temporal_guidance_blocks")
    audio_blocks = kwargs.get("audio_spatio_temporal_guidance_blocks", blocks)

    def given(params, prefix: str, stg_blocks):
        changes = {
            name: kwargs[prefix + key] for name, key in GUIDER_KEYWORDS.items() if prefix + key in kwargs
        }
        if stg_blocks is not None:
            changes["stg_blocks"] = list(stg_blocks)
        return replace(params, **changes)

    return (
        given(defaults.video_guider_params, "", blocks),
        given(defaults.audio_guider_params, "audio_", audio_blocks),
    )


class without_v2a:  # noqa: N801 (used like a function)
    """The official X0Model with its video-to-audio cross-attention skipped in every block of every pass:
    the official SKIP_V2A_CROSS_ATTN perturbation added to whatever each call perturbs."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, video, audio, perturbations):
        from ltx_core.guidance.perturbations import (
            BatchedPerturbationConfig,
            Perturbation,
            PerturbationConfig,
            PerturbationType,
        )

        skip = Perturbation(type=PerturbationType.SKIP_V2A_CROSS_ATTN, blocks=None)
        batch = video.latent.shape[0]
        configs = (
            perturbations.perturbations if perturbations is not None else [PerturbationConfig([])] * batch
        )
        merged = [PerturbationConfig([*(config.perturbations or []), skip]) for config in configs]
        return self.model(video=video, audio=audio, perturbations=BatchedPerturbationConfig(merged))


def drawn_in(noiser, dtype: torch.dtype):
    """The official noiser applied to the state in `dtype`, its result cast back to the state's dtype: the
    initial state (zeros, all-ones mask) becomes exactly the noise drawn in `dtype`."""
    from dataclasses import replace

    def noise(state, noise_scale: float = 1.0):
        drawn = noiser(replace(state, latent=state.latent.to(dtype)), noise_scale)
        return replace(drawn, latent=drawn.latent.to(state.latent.dtype))

    return noise


def video_state_channels(ledger) -> int:
    """The official pipelines assume 128 latent channels; the tiny model has its own width."""
    return ledger.video_decoder().per_channel_statistics.get_buffer("mean-of-means").shape[0]


def _components(dtype, device, channels: int):
    from ltx_pipelines.utils.types import PipelineComponents

    components = PipelineComponents(dtype=dtype, device=device)
    components.video_latent_channels = channels
    return components


@contextlib.contextmanager
def _audio_latent_channels(ledger):
    """The official pipelines assume 8 audio latent channels (x 16 mel bins); the tiny model has 4."""
    from ltx_core.types import AudioLatentShape

    channels = ledger.audio_decoder().per_channel_statistics.get_buffer("mean-of-means").shape[0] // 16
    original = AudioLatentShape.from_video_pixel_shape
    AudioLatentShape.from_video_pixel_shape = staticmethod(functools.partial(original, channels=channels))
    try:
        yield
    finally:
        AudioLatentShape.from_video_pixel_shape = staticmethod(original)


# --- Single transformer calls and one guided step, as the official one-stage loop makes them ---------------


def official_transformer(checkpoint: Path, gemma: Path):
    """The official X0Model (its .velocity_model is the LTXModel), built by the official ledger in float32."""
    official_shims.install()
    ledger = official_shims.official_ledger(checkpoint, gemma, torch.float32, torch.device("cpu"))
    return ledger.transformer()


def official_states(video: torch.Tensor, audio: torch.Tensor, fps: float):
    """(video, audio) LatentStates for raw latents [B,C,F,H,W] / [B,C,L,M]: patchified tokens, positions and
    denoise masks from the official VideoLatentTools / AudioLatentTools, as noise_video_state builds them."""
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape

    components = _components(torch.float32, torch.device("cpu"), video.shape[1])
    video_tools = VideoLatentTools(
        components.video_patchifier, VideoLatentShape(*video.shape), fps, components.video_scale_factors
    )
    audio_tools = AudioLatentTools(components.audio_patchifier, AudioLatentShape(*audio.shape))
    cpu = torch.device("cpu")
    return (
        video_tools.create_initial_state(cpu, torch.float32, video),
        audio_tools.create_initial_state(cpu, torch.float32, audio),
    )


def official_perturbations(batch: int, case: str, blocks: list[int]):
    """The BatchedPerturbationConfig the official guider passes for its STG / isolated-modality passes."""
    from ltx_core.guidance.perturbations import (
        BatchedPerturbationConfig,
        Perturbation,
        PerturbationConfig,
        PerturbationType,
    )

    video, audio = PerturbationType.SKIP_VIDEO_SELF_ATTN, PerturbationType.SKIP_AUDIO_SELF_ATTN
    cases = {
        # multi_modal_guider_denoising_func's STG pass: each guider doing STG adds its modality
        "stg": ((video, audio), blocks),
        "stg_video": ((video,), blocks),
        "stg_audio": ((audio,), blocks),
        # the modality-guidance pass skips both cross-modal attentions everywhere
        "isolated": ((PerturbationType.SKIP_A2V_CROSS_ATTN, PerturbationType.SKIP_V2A_CROSS_ATTN), None),
        "no_v2a": ((PerturbationType.SKIP_V2A_CROSS_ATTN,), None),
    }
    if case == "plain":
        return None
    kinds, where = cases[case]
    config = PerturbationConfig(perturbations=[Perturbation(type=kind, blocks=where) for kind in kinds])
    return BatchedPerturbationConfig(perturbations=[config] * batch)


def official_guided_step(
    transformer, states, contexts: dict, guiders: dict, sigmas: torch.Tensor, index: int
) -> tuple[torch.Tensor, ...]:
    """One step of the official one-stage loop (euler_denoising_loop's body with the multimodal guider
    factory's denoise function): (guided x0 video, guided x0 audio, stepped video, stepped audio), tokens.

    contexts: video / audio / negative_video / negative_audio; guiders: "video" / "audio" ->
    MultiModalGuiderParams keyword arguments."""
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.guiders import MultiModalGuiderParams, create_multimodal_guider_factory
    from ltx_pipelines.utils import multi_modal_guider_factory_denoising_func
    from ltx_pipelines.utils.helpers import post_process_latent

    def factory(name: str):
        params = MultiModalGuiderParams(**guiders[name])
        return create_multimodal_guider_factory(params=params, negative_context=contexts[f"negative_{name}"])

    denoise_fn = multi_modal_guider_factory_denoising_func(
        video_guider_factory=factory("video"),
        audio_guider_factory=factory("audio"),
        v_context=contexts["video"],
        a_context=contexts["audio"],
        transformer=transformer,
    )
    video_state, audio_state = states
    denoised = denoise_fn(video_state, audio_state, sigmas, index)
    stepped = []
    for state, x0 in zip(states, denoised):
        x0 = post_process_latent(x0, state.denoise_mask, state.clean_latent)
        stepped.append(EulerDiffusionStep().step(state.latent, x0, sigmas, index))
    return (*denoised, *stepped)
