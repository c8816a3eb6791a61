"""FLUX.2 Klein: text-to-image and multi-reference editing (diffusers' Flux2KleinPipeline keyword names).

Stages: validate -> encode_text -> encode_image -> prepare_latents -> denoise -> decode.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.engine_options import EngineOptions
from ditto.errors import CheckpointError, InvalidParameter
from ditto.loading.folder import read_config, read_json, read_model_index
from ditto.loading.lora import LoraStack, parse_lora_spec, read_lora
from ditto.loading.lora_flux2 import flux2_lora_key
from ditto.loading.modules import build_native
from ditto.media.pixels import to_pil
from ditto.models.flux2 import Flux2Transformer
from ditto.pipelines.base import ProgressCallback, StageTimer, model_dtype
from ditto.pipelines.flux2_latents import (
    encode_references,
    first_reference_size,
    grid_ids,
    latent_norm,
    pack,
    reference_ids,
    text_ids,
    unpack,
    unpatchify,
)
from ditto.pipelines.flux2_params import DEFAULT_SIDE, Flux2KleinParams, KleinDefaults, parse_params
from ditto.pipelines.flux2_schedule import check_scheduler_config, euler_step, klein_sigmas
from ditto.pipelines.flux2_text import KleinTextEncoder
from ditto.result import Result
from ditto.runtime.progress import Progress
from ditto.sampling.noise import draw_ahead


@dataclass
class Conditioning:
    """What the denoiser reads besides the latents, fixed for the whole request."""

    prompt_embeds: torch.Tensor
    negative_embeds: torch.Tensor | None
    rope: tuple[torch.Tensor, torch.Tensor]
    reference_tokens: torch.Tensor | None  # [B, S_ref, C], appended after the image tokens


class Flux2KleinPipeline:
    family: ClassVar[str] = "flux2-klein"
    compiles_vae_decoder: ClassVar[bool] = True  # compile=True also compiles the VAE decoder
    compiles_text_encoder: ClassVar[bool] = True  # ... and Qwen3's layers (prompts padded to one length)
    output_kind: ClassVar[str] = "image"
    load_options: ClassVar[frozenset[str]] = frozenset({"loras"})

    def __init__(
        self, transformer, vae, text_encoder: KleinTextEncoder, scheduler_config, is_distilled, device
    ):
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.scheduler_config = scheduler_config
        self.is_distilled = is_distilled
        self.device = device
        self.defaults = KleinDefaults.for_checkpoint(is_distilled)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.multiple = self.vae_scale_factor * 2  # VAE downsampling, then 2x2 patches
        # Fused LoRAs, unfused exactly; on an accelerator the touched originals wait in host memory.
        keep = None if torch.device(device).type == "cpu" else torch.device("cpu")
        self.loras = LoraStack({"transformer": transformer}, keep)

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> Flux2KleinPipeline:
        from diffusers import AutoencoderKLFlux2

        path = Path(path)
        dtype = model_dtype(dtype, device)
        # diffusers' Flux2KleinPipeline.__init__: is_distilled defaults to False when model_index lacks it.
        is_distilled = bool(read_model_index(path).get("is_distilled", False))
        scheduler_config = read_json(path / "scheduler" / "scheduler_config.json")
        check_scheduler_config(scheduler_config)
        config = read_config(path, "transformer")
        transformer = build_native(
            lambda: Flux2Transformer.from_config(config), path / "transformer", dtype, device
        )
        try:
            vae = AutoencoderKLFlux2.from_pretrained(str(path / "vae"), dtype=dtype).to(device).eval()
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path / 'vae'}: cannot load the FLUX.2 VAE: {exc}") from None
        text_encoder = KleinTextEncoder.from_pretrained(path, device, dtype)
        pipeline = cls(transformer, vae, text_encoder, scheduler_config, is_distilled, device)
        for spec in (options or EngineOptions()).loras:
            pipeline.load_lora(*parse_lora_spec(spec))
        return pipeline

    def load_lora(self, path: str | Path, scale: float = 1.0) -> None:
        """Fuse a LoRA file (diffusers/PEFT, BFL or kohya layout) into the transformer in place."""
        modules = {"transformer": self.transformer}
        self.loras.fuse(read_lora(path, flux2_lora_key, modules, "a FLUX.2 transformer"), scale)

    def unload_lora(self) -> None:
        """Unfuse every LoRA: the weights are the loaded ones again, bit for bit."""
        self.loras.unfuse_all()

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.x_embedder.weight.dtype

    def validate(self, **kwargs: Any) -> Flux2KleinParams:
        return parse_params(kwargs, self.defaults, self.multiple, self.text_encoder.num_hidden_states)

    def uses_cfg(self, params: Flux2KleinParams) -> bool:
        # diffusers: CFG only for the base model, and only when guidance_scale > 1.
        return params.guidance_scale > 1 and not self.is_distilled

    def generate(self, progress: ProgressCallback | None = None, **kwargs: Any) -> Result:
        timer = StageTimer(self.device)
        with timer.stage("validate"):
            params = self.validate(**kwargs)
            height, width = self.output_size(params)
            noise = self.noise_ahead(params, height, width)  # drawn while the prompt is encoded
        with torch.inference_mode():
            with timer.stage("encode_text"):
                prompt_embeds, negative_embeds = self.encode_text(params)
            with timer.stage("encode_image"):
                references, ref_grids = self.encode_images(params)
            with timer.stage("prepare_latents"):
                grid = self.noise_shape(params, height, width)[2:]
                # Positions first: built while the noise draw may still be running on the worker thread.
                cond = self.conditioning(params, prompt_embeds, negative_embeds, references, ref_grids, grid)
                latents = self.initial_latents(params, height, width, noise)
            with timer.stage("denoise"):
                latents = self.denoise(params, latents, cond, progress)
            with timer.stage("decode"):
                result = self.decode(params, latents, grid)
        result.timings = timer.timings
        return result

    def encode_text(self, params: Flux2KleinParams) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B * n, L, D] prompt embeddings (each prompt repeated n = num_images_per_prompt times)."""
        n = params.num_images_per_prompt
        prompts = [p for p in params.prompt for _ in range(n)]
        if self.uses_cfg(params):
            prompts = prompts + [""] * len(prompts)  # diffusers' negative prompt is always ""
        embeds = self.text_encoder.encode(
            prompts, params.max_sequence_length, params.text_encoder_out_layers, self.dtype
        )
        batch = params.batch_size
        return embeds[:batch], (embeds[batch:] if self.uses_cfg(params) else None)

    def encode_images(self, params: Flux2KleinParams) -> tuple[torch.Tensor | None, list[tuple[int, int]]]:
        if params.image is None:
            return None, []
        tokens, grids = encode_references(self.vae, params.image, self.multiple)
        return tokens.expand(params.batch_size, -1, -1), grids

    def output_size(self, params: Flux2KleinParams) -> tuple[int, int]:
        # diffusers: a missing side comes from the first reference image, else 1024.
        ref_h, ref_w = first_reference_size(params.image, self.multiple) if params.image else (None, None)
        return params.height or ref_h or DEFAULT_SIDE, params.width or ref_w or DEFAULT_SIDE

    def noise_shape(self, params: Flux2KleinParams, height: int, width: int) -> tuple[int, int, int, int]:
        """[B, C, h, w] of the latents (before packing)."""
        grid = (height // self.multiple, width // self.multiple)
        return (params.batch_size, self.transformer.x_embedder.in_features, *grid)

    def noise_ahead(self, params: Flux2KleinParams, height: int, width: int) -> Future[torch.Tensor] | None:
        """The initial noise's draw, started now on the worker thread (None when `latents` are given)."""
        if params.latents is not None:
            return None
        return draw_ahead(self.noise_shape(params, height, width), params.seed, self.dtype)

    def initial_latents(
        self, params: Flux2KleinParams, height: int, width: int, noise: Future[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Packed noise [B, h*w, C] drawn as diffusers' randn_tensor does with a CPU generator seeded `seed`
        (`noise`: that draw, already started by `draw_ahead`)."""
        shape = self.noise_shape(params, height, width)
        if params.latents is not None:
            if tuple(params.latents.shape) != shape:
                raise InvalidParameter(
                    "latents", tuple(params.latents.shape), "has the wrong shape", f"expected {shape}"
                )
            return pack(params.latents.to(self.device, self.dtype))
        noise = noise if noise is not None else self.noise_ahead(params, height, width)
        return pack(noise.result().to(self.device))

    def conditioning(
        self, params, prompt_embeds, negative_embeds, references, ref_grids, grid
    ) -> Conditioning:
        img_ids = grid_ids(0, *grid, self.device)
        if references is not None:
            img_ids = torch.cat([img_ids, reference_ids(ref_grids, self.device)], dim=0)
        rope = self.transformer.rope(text_ids(prompt_embeds.shape[1], self.device), img_ids)
        refs = None if references is None else references.to(self.dtype)
        return Conditioning(prompt_embeds, negative_embeds, rope, refs)

    def velocity(self, latents: torch.Tensor, t: torch.Tensor, cond: Conditioning, guidance_scale: float):
        """One denoiser evaluation (two with CFG), on image tokens followed by reference tokens."""
        x = latents.to(self.dtype)
        if cond.reference_tokens is not None:
            x = torch.cat([x, cond.reference_tokens], dim=1)
        timestep = t.expand(latents.shape[0]).to(latents.dtype) / 1000
        v = self.transformer(x, cond.prompt_embeds, timestep, rope=cond.rope)[:, : latents.shape[1]]
        if cond.negative_embeds is None:
            return v
        v_neg = self.transformer(x, cond.negative_embeds, timestep, rope=cond.rope)[:, : latents.shape[1]]
        return v_neg + guidance_scale * (v - v_neg)

    def denoise(self, params, latents, cond: Conditioning, progress: ProgressCallback | None) -> torch.Tensor:
        sigmas = klein_sigmas(
            self.scheduler_config, params.num_inference_steps, latents.shape[1], params.sigmas
        )
        sigmas = sigmas.to(self.device)
        timesteps = sigmas[:-1] * self.scheduler_config.get("num_train_timesteps", 1000)
        total = len(timesteps)
        with Progress(total, progress).loop("denoise", total) as step:
            for i in range(total):
                v = self.velocity(latents, timesteps[i], cond, params.guidance_scale)
                latents = euler_step(latents, v, sigmas[i], sigmas[i + 1])
                step()
        return latents

    def decode(self, params: Flux2KleinParams, latents: torch.Tensor, grid: tuple[int, int]) -> Result:
        latents = unpack(latents, *grid)
        mean, std = latent_norm(self.vae)
        latents = unpatchify(
            latents * std.to(latents.device, latents.dtype) + mean.to(latents.device, latents.dtype)
        )
        if params.output_type == "latent":
            return Result(latents={"image": latents})
        pixels = self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0]
        # Channels-last and float32 on the device (exact conversions): the host gets a finished array instead of
        # a strided bf16 -> float32 copy of 3M values on the CPU.
        images = (pixels * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        if params.output_type == "pil":
            return Result(images=to_pil(images))
        return Result(images=images)
