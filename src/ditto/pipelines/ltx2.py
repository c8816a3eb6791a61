"""LTX-2 / LTX-2.3 text-to-video with sound.

Stages: validate -> encode text (positive and negative separately) -> prepare latents -> denoise -> decode.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.engine_options import EngineOptions
from ditto.loading.lora import LoraStack, parse_lora_spec, read_lora
from ditto.loading.lora_ltx2 import ltx2_lora_key
from ditto.loading.lora_side import LoraSide
from ditto.media.pixels import to_pil
from ditto.pipelines.base import ProgressCallback, StageTimer, model_dtype
from ditto.pipelines.ltx2_components import LTX2Components, load_components
from ditto.pipelines.ltx2_conditioning import VideoConditioning, build_conditioning, with_image_conditions
from ditto.pipelines.ltx2_decode import decode_audio, decode_video, sample_rate
from ditto.pipelines.ltx2_denoise import DenoiseInputs, Passes, denoise
from ditto.pipelines.ltx2_images import check_image_crf
from ditto.pipelines.ltx2_latents import (
    LatentShape,
    denormalize_audio_tokens,
    denormalize_video,
    given_audio_latents,
    given_video_latents,
    official_noise,
    unpack_audio,
    unpack_video,
)
from ditto.pipelines.ltx2_params import LTX2Params
from ditto.pipelines.ltx2_text import encode_prompt_sets, repeat_embeddings
from ditto.pipelines.ltx2_two_stage import (
    attach_stage_two_parts,
    check_distilled_lora_mode,
    check_stages,
    default_pipeline,
    run_stages,
)
from ditto.result import Result
from ditto.runtime.progress import Progress
from ditto.sampling.guidance import GuiderParams
from ditto.sampling.schedules import explicit_sigmas, ltx2_sigmas


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A GPU tensor's copy in page-locked host memory: the 570 MB of float32 frames of a 768x512x121 video
    took 0.36 s through pageable memory on an H100 host (page faults at ~1.6 GB/s; benchmarks/NOTES.md)."""
    if tensor.device.type != "cuda":
        return tensor.cpu()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor)


class LTX2Pipeline:
    family: ClassVar[str] = "ltx2"
    compiles_vae_decoder: ClassVar[bool] = True  # compile=True also compiles the VAE decoder
    compiles_text_encoder: ClassVar[bool] = True  # ... and Gemma's layers (prompts padded to one length)
    output_kind: ClassVar[str] = "video"
    load_options: ClassVar[frozenset[str]] = frozenset(
        {"loras", "upsampler", "distilled_lora", "distilled_lora_mode"}
    )

    def __init__(self, components: LTX2Components, distilled_lora_mode: str = "side") -> None:
        self.components = components
        modules = {"transformer": components.transformer, "connectors": components.connectors}
        # Fused LoRAs, unfused exactly; on an accelerator the touched originals wait in host memory.
        keep = None if components.device.type == "cpu" else torch.device("cpu")
        self.loras = LoraStack(modules, keep)
        # Stage 2's distilled LoRA beside the weights by default (ltx2_two_stage.distilled_weights).
        self.lora_side = LoraSide(modules)
        self.distilled_lora_mode = check_distilled_lora_mode(distilled_lora_mode)

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> LTX2Pipeline:
        options = options or EngineOptions()
        dtype = model_dtype(dtype, device)
        components = load_components(Path(path), device, dtype)
        attach_stage_two_parts(components, Path(path), options.upsampler, options.distilled_lora)
        pipeline = cls(components, options.distilled_lora_mode or "side")
        for spec in options.loras:
            pipeline.load_lora(*parse_lora_spec(spec))
        return pipeline

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Fuse a LoRA file (diffusers/PEFT or official LTX layout) into the transformer/connectors in place."""
        self.loras.fuse(read_lora(path, ltx2_lora_key), scale)

    def unload_lora(self) -> None:
        """Unfuse every LoRA: the weights are the loaded ones again, bit for bit."""
        self.loras.unfuse_all()

    @property
    def version(self) -> str:
        return self.components.version

    def validate(self, **kwargs: Any) -> LTX2Params:
        raw = LTX2Params.from_kwargs(kwargs)
        params = raw.resolved(self.version, self.components.num_layers, default_pipeline(self.components))
        check_stages(raw, params, self.components)
        return with_image_conditions(params)

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        if params.pipeline != "one-stage":
            return run_stages(self, params, progress)
        timer = StageTimer(self.components.device)
        with timer.stage("text encoding"):
            positive, negative = self._encode(params)
        with timer.stage("denoising"):
            inputs = self._prepare(params, positive, negative)
            steps = Progress(len(inputs.sigmas) - 1, progress)
            video, audio = self._denoise(inputs, steps, "denoising", params.sampler)
        return self._finish(params, inputs.shape, video, audio, timer)

    def _finish(
        self,
        params: LTX2Params,
        shape: LatentShape,
        video: torch.Tensor,
        audio: torch.Tensor,
        timer: StageTimer,
    ) -> Result:
        """Denoised packed tokens -> raw latents, then frames and waveform (or the latents when asked)."""
        video_latents = denormalize_video(unpack_video(video, shape), self.components.vae)
        audio_latents = unpack_audio(denormalize_audio_tokens(audio, self.components.audio_vae), shape)
        if params.output_type == "latent":
            return Result(latents={"video": video_latents, "audio": audio_latents}, timings=timer.timings)
        with timer.stage("decoding"):
            frames = decode_video(self.components, video_latents)
            waveform = decode_audio(self.components, audio_latents)
        return self._result(params, frames, waveform, timer)

    def _encode(self, params: LTX2Params):
        components, repeat = self.components, params.num_videos_per_prompt
        uncond = Passes.of(*self._guiders(params)).uncond
        sets = [params.prompts, params.negative_prompts] if uncond else [params.prompts]
        encoded = encode_prompt_sets(components, sets, params.max_sequence_length)
        negative = repeat_embeddings(encoded[1], repeat) if uncond else None
        return repeat_embeddings(encoded[0], repeat), negative

    def _guiders(self, params: LTX2Params) -> tuple[GuiderParams, GuiderParams]:
        video = GuiderParams(
            params.guidance_scale, params.stg_scale, params.modality_scale, params.guidance_rescale
        )
        audio = GuiderParams(
            params.audio_guidance_scale,
            params.audio_stg_scale,
            params.audio_modality_scale,
            params.audio_guidance_rescale,
        )
        return video, audio

    def latent_shape(self, params: LTX2Params) -> LatentShape:
        vae, audio_vae = self.components.vae, self.components.audio_vae
        # Audio latents per second: sample_rate / hop / temporal compression (25 for every LTX-2 checkpoint).
        per_second = (
            audio_vae.config.sample_rate
            / audio_vae.config.mel_hop_length
            / audio_vae.temporal_compression_ratio
        )
        return LatentShape(
            frames=(params.num_frames - 1) // vae.temporal_compression_ratio + 1,
            height=params.height // vae.spatial_compression_ratio,
            width=params.width // vae.spatial_compression_ratio,
            channels=vae.config.latent_channels,
            audio_frames=round(params.num_frames / params.frame_rate * per_second),
            audio_channels=audio_vae.config.latent_channels,
            audio_mel_bins=audio_vae.config.mel_bins // audio_vae.mel_compression_ratio,
        )

    def _prepare(self, params: LTX2Params, positive, negative) -> DenoiseInputs:
        components, shape = self.components, self.latent_shape(params)
        batch = len(params.prompts) * params.num_videos_per_prompt
        generator = params.generator or self._generator(params.seed)
        conditioning = self._conditioning(params, shape, batch)
        extra = conditioning.extra_tokens if conditioning is not None else 0
        video, audio = official_noise(batch, shape, generator, components.dtype, components.device, extra)
        if params.latents is not None:
            given = given_video_latents(params.latents.to(components.device), shape, batch, components.vae)
            video = torch.cat([given, video[:, shape.video_tokens :]], dim=1)
        if conditioning is not None:
            video = conditioning.initial(video)
        if params.audio_latents is not None:
            audio = given_audio_latents(
                params.audio_latents.to(components.device), shape, batch, components.audio_vae
            )
        sigmas = (
            explicit_sigmas(params.sigmas)
            if params.sigmas is not None
            else ltx2_sigmas(params.num_inference_steps)
        )
        video_guider, audio_guider = self._guiders(params)
        return DenoiseInputs(
            video=video,
            audio=audio,
            positive=positive,
            negative=negative,
            sigmas=sigmas.to(components.device),
            shape=shape,
            frame_rate=float(params.frame_rate),
            video_guider=video_guider,
            audio_guider=audio_guider,
            stg_blocks=params.spatio_temporal_guidance_blocks,
            conditioning=conditioning,
        )

    def _conditioning(self, params: LTX2Params, shape: LatentShape, batch: int) -> VideoConditioning | None:
        """Encoded images, masks and positions for image-to-video / keyframes (None without images)."""
        if not params.image:
            return None
        components = self.components
        conditioning = build_conditioning(
            params.image,
            components.vae,
            components.transformer.rope,
            shape,
            batch,
            float(params.frame_rate),
            (params.height, params.width),
            check_image_crf(params.image_crf),
        )
        conditioning.x0_rule = params.image_conditioning
        return conditioning

    def _generator(self, seed: int | None) -> torch.Generator:
        seed = random.randrange(2**31) if seed is None else seed
        return torch.Generator(device=self.components.device).manual_seed(seed)

    def _denoise(self, inputs: DenoiseInputs, progress: Progress, stage: str, sampler: str = "euler"):
        with progress.loop(stage, len(inputs.sigmas) - 1) as step:

            def on_step(done: int, total: int) -> None:
                step()

            if sampler == "res2s":
                from ditto.pipelines.ltx2_res2s import denoise_res2s

                return denoise_res2s(self.components.transformer, self.components.dtype, inputs, on_step)
            return denoise(self.components.transformer, self.components.dtype, inputs, on_step)

    def _result(
        self, params: LTX2Params, frames: torch.Tensor, waveform: torch.Tensor, timer: StageTimer
    ) -> Result:
        if params.output_type == "pil":
            videos = [to_pil(v) for v in to_host(frames).numpy()]
        else:
            videos = list(to_host(frames).numpy())
        audios = list(to_host(waveform).numpy())
        return Result(
            frames=videos[0],
            audio=audios[0],
            sample_rate=sample_rate(self.components),
            frame_rate=float(params.frame_rate),
            timings=timer.timings,
            batch_frames=videos,
            batch_audio=audios,
        )
