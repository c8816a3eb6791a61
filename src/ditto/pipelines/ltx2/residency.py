"""LTX-2's components and stages as the offload planner sees them (acceleration/offload).

Stages and what they run: encode_text (Gemma's language model, its layers streamable through hooks; the
connectors), denoise / denoise_stage_1 / denoise_stage_2 (the transformer, its blocks streamable through the
block loop; the VAE encoder for image conditioning), upsample (the latent upsampler), decode (VAEs, vocoder).
Gemma's vision tower is never run for text and stays on the host. With stage 2's distilled LoRA beside the
weights (the default), its factors move with their blocks and are part of the stage's block sizes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch

from ditto.acceleration.offload import activations
from ditto.acceleration.offload.spec import Component, OffloadSpec, Stage, text_encoder_component
from ditto.pipelines.ltx2.denoise import Passes
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.steps import STAGE_2_SIGMAS

if TYPE_CHECKING:
    from ditto.acceleration.offload.residency import Residency

# The pipeline class (LTX2Pipeline) is not imported here: its module imports this one.
LTX2Pipeline = Any

_BLOCK = re.compile(r"transformer_blocks\.(\d+)\.")


def offload_spec(pipeline: LTX2Pipeline) -> OffloadSpec:
    c = pipeline.components
    components = [
        text_encoder_component(c.text_encoder),  # the LM head (tied embeddings) makes the last token's logits
        Component("connectors", (c.connectors,)),
        Component("transformer", (c.transformer,), blocks=c.transformer.transformer_blocks),
        Component("vae", (c.vae,)),
        Component("vae_encoder", (c.vae.encoder,), part_of="vae"),
        Component("audio_vae", (c.audio_vae,)),
        Component("vocoder", (c.vocoder,)),
    ]
    if c.latent_upsampler is not None:
        components.append(Component("latent_upsampler", (c.latent_upsampler,)))
    return OffloadSpec(
        "ltx2",
        tuple(components),
        lambda request: stages(pipeline, request),
        lambda residency: attach(pipeline, residency),
        lambda: detach(pipeline),
    )


def stages(pipeline: LTX2Pipeline, request: LTX2Params | None) -> tuple[Stage, ...]:
    """The stages `request` runs (None: the checkpoint's default request), with their activation estimates.
    The VAE encoder joins the denoising stages only for images (or raw-space latents) to encode; a request
    for latents has no decode stage."""
    params = request if request is not None else pipeline.validate(prompt="the default request")
    _refuse_fused_distilled_lora(pipeline)
    passes = Passes.of(*params.guiders())
    batch = len(params.prompts) * params.num_videos_per_prompt
    text = Stage("encode_text", ("text_encoder", "connectors"), _text_workspace(pipeline, params, passes))
    encodes = params.image is not None or (params.latents is not None and params.latents.ndim == 5)
    denoising = ("transformer", "vae_encoder") if encodes else ("transformer",)
    decode = ()
    if params.output_type != "latent":
        decode = (
            Stage("decode", ("vae", "audio_vae", "vocoder"), _decode_workspace(pipeline, params, batch)),
        )
    steps = len(params.sigmas) if params.sigmas is not None else params.num_inference_steps
    if params.pipeline == "one-stage":
        workspace = _denoise_workspace(pipeline, params, passes, batch)
        return text, Stage("denoise", denoising, workspace, steps * _calls(passes)), *decode
    half = _half(params)
    distilled = params.pipeline == "distilled"
    first_steps = 8 if distilled else steps
    lora = _side_lora_bytes(pipeline)
    stage_one = Stage(
        "denoise_stage_1", denoising, _denoise_workspace(pipeline, half, passes, batch),
        first_steps * _calls(passes), *(lora if distilled else ({}, {})),
    )  # fmt: skip
    unguided = Passes(uncond=False, perturbed=False, isolated=False)
    stage_two = Stage(
        "denoise_stage_2", denoising, _denoise_workspace(pipeline, params, unguided, batch),
        len(STAGE_2_SIGMAS) - 1, *lora,
    )  # fmt: skip
    upsample = Stage("upsample", ("latent_upsampler",), _upsample_workspace(pipeline, half, batch))
    return text, stage_one, upsample, stage_two, *decode


def _calls(passes: Passes) -> int:
    return 1 + passes.perturbed + passes.isolated


def _half(params: LTX2Params) -> LTX2Params:
    import dataclasses

    return dataclasses.replace(params, height=params.height // 2, width=params.width // 2)


def _text_workspace(pipeline: LTX2Pipeline, params: LTX2Params, passes: Passes) -> int:
    config = pipeline.components.text_encoder.config
    config = getattr(config, "text_config", config)
    prompts = len(params.prompts) * (2 if passes.uncond else 1)
    states = config.num_hidden_layers + 1
    size = pipeline.components.dtype.itemsize
    return activations.text_encoder(
        prompts, params.max_sequence_length, config.hidden_size, states, config.intermediate_size, size
    )


def _denoise_workspace(pipeline: LTX2Pipeline, params: LTX2Params, passes: Passes, batch: int) -> int:
    """The widest pass's rows through the blocks, and (LTX-2.0) the loop's text keys/values: one set per
    prompt tensor (the CFG pair's, and the lone positive prompt's for STG / modality isolation)."""
    transformer = pipeline.components.transformer
    shape = pipeline.latent_shape(params)
    rows = batch * (2 if passes.uncond else 1)
    width, audio_width = transformer.inner_dim, transformer.audio_inner_dim
    size = pipeline.components.dtype.itemsize
    work = activations.dit_rows(rows * shape.video_tokens, width, size) + activations.dit_rows(
        rows * shape.audio_frames, audio_width, size
    )
    if transformer.prompt_modulation:
        return work  # LTX-2.3: no text K/V cache
    prompt_rows = (2 * batch if passes.uncond else 0) + (batch if passes.perturbed or passes.isolated else 0)
    prompt_rows = prompt_rows or batch
    per_block = 2 * params.max_sequence_length * (width + audio_width) * size
    return work + prompt_rows * per_block * len(transformer.transformer_blocks)


def _upsample_workspace(pipeline: LTX2Pipeline, half: LTX2Params, batch: int) -> int:
    shape = pipeline.latent_shape(half)
    upsampler = pipeline.components.latent_upsampler
    channels = getattr(getattr(upsampler, "config", None), "mid_channels", None) or 1024
    size = pipeline.components.dtype.itemsize
    return batch * shape.video_tokens * 4 * channels * size * 4  # x2 in height and width, a few conv maps


def _decode_workspace(pipeline: LTX2Pipeline, params: LTX2Params, batch: int) -> int:
    pixels = batch * params.num_frames * params.height * params.width
    return activations.vae_decode(pixels, pipeline.components.vae, True, pipeline.components.dtype.itemsize)


def _side_lora_bytes(pipeline: LTX2Pipeline) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """What the distilled LoRA's side factors add to each transformer block (and outside the blocks) while it
    is attached: (block extras, fixed extras) for the stages that run with it; nothing in "fuse" mode."""
    distilled = pipeline.distilled
    if distilled.path is None or distilled.mode != "side":
        return {}, {}
    itemsize = pipeline.components.dtype.itemsize
    blocks = [0] * len(pipeline.components.transformer.transformer_blocks)
    fixed = 0
    for name, numel in _lora_sizes(distilled):
        match = _BLOCK.search(name)
        if match is not None and int(match.group(1)) < len(blocks):
            blocks[int(match.group(1))] += numel * itemsize
        else:
            fixed += numel * itemsize
    return {"transformer": tuple(blocks)}, {"transformer": fixed}


def _lora_sizes(distilled: Any) -> list[tuple[str, int]]:
    """(name, numel) of each factor: from the file already read, else from its header (no tensor is read)."""
    if distilled.file is not None:
        return [(name, pair.down.numel() + pair.up.numel()) for name, pair in distilled.file.pairs.items()]
    from safetensors import safe_open

    sizes = []
    with safe_open(str(distilled.path), framework="pt") as handle:
        for key in handle.keys():
            if "lora" in key.lower() and key.endswith(".weight"):
                shape = handle.get_slice(key).get_shape()
                sizes.append((key, int(torch.Size(shape).numel())))
    return sizes


def _refuse_fused_distilled_lora(pipeline: LTX2Pipeline) -> None:
    from ditto.errors import InvalidParameter

    if pipeline.distilled.mode == "fuse" and pipeline.distilled.path is not None:
        raise InvalidParameter(
            "distilled_lora_mode", "fuse",
            "cannot be combined with offload: each request would fuse the LoRA into 18.5 B weights that wait "
            "in host memory, on the CPU", 'use distilled_lora_mode="side" (the default)',
        )  # fmt: skip


def attach(pipeline: LTX2Pipeline, residency: Residency) -> None:
    """Compute on the residency's device; LoRA originals kept on the host; fused weights written home; the
    distilled LoRA's side factors made on the host and given homes (they move with their blocks)."""
    device = residency.mover.device
    pipeline.components.device = device
    if device.type != "cpu":
        pipeline.loras.keep_device = torch.device("cpu")
    pipeline.loras.on_write = residency.write_home
    pipeline.distilled.factor_device = torch.device("cpu")
    pipeline.distilled.adopt_factors = residency.adopt
    factors = pipeline.distilled.factors
    store = residency.mover.store
    if factors is not None and not all(t in store for pair in factors[1].factors.values() for t in pair):
        pipeline.distilled.factors = None  # made before offloading (on the device): made again on the host


def detach(pipeline: LTX2Pipeline) -> None:
    """Offload off or re-planned: factors already made keep their place (re-planned: their homes; turned off:
    the device, where `disable_offload` brings every managed tensor)."""
    pipeline.loras.on_write = None
    pipeline.distilled.factor_device = pipeline.distilled.adopt_factors = None
