"""FLUX.2 Klein's components and stages as the offload planner sees them (acceleration/offload).

encode_text runs the Qwen3 text encoder (its layers stream through hooks), encode_image the VAE (reference
images), denoise the transformer (double- then single-stream blocks, streaming through the block loop),
decode the VAE. The text encoder's CUDA graph reads its weights by address for the pipeline's life, so it is
turned off when those weights move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ditto.acceleration.offload import activations
from ditto.acceleration.offload.spec import Component, OffloadSpec, Stage, text_encoder_component
from ditto.pipelines.flux2.params import Flux2KleinParams

if TYPE_CHECKING:
    from ditto.acceleration.offload.residency import Residency

# The pipeline class (Flux2KleinPipeline) is not imported here: its module imports this one.
Flux2KleinPipeline = Any

DEFAULT_SIDE = 1024


def offload_spec(pipeline: Flux2KleinPipeline) -> OffloadSpec:
    c = pipeline.components
    blocks = [*c.transformer.transformer_blocks, *c.transformer.single_transformer_blocks]
    components = (
        text_encoder_component(c.text_encoder.model),
        Component("transformer", (c.transformer,), blocks=blocks),
        Component("vae", (c.vae,)),
    )
    return OffloadSpec(
        pipeline.family,
        components,
        lambda request: stages(pipeline, request),
        lambda residency: attach(pipeline, residency),
        lambda: detach(pipeline),
    )


def stages(pipeline: Flux2KleinPipeline, request: Flux2KleinParams | None) -> tuple[Stage, ...]:
    """The stages of `request` (None: the checkpoint's defaults at 1024^2)."""
    c = pipeline.components
    params = request if request is not None else pipeline.validate(prompt="the default request")
    height, width = params.height or DEFAULT_SIDE, params.width or DEFAULT_SIDE
    prompts = len(params.prompt)
    batch = params.batch_size
    references = len(params.image or ())
    config = c.text_encoder.model.config
    size = c.dtype.itemsize
    kept = len(params.text_encoder_out_layers) + 1
    text = activations.text_encoder(
        prompts * 2, params.max_sequence_length, config.hidden_size, kept, config.intermediate_size, size
    )
    rows = batch * ((height // 16) * (width // 16) * (1 + references) + params.max_sequence_length)
    cfg = params.guidance_scale > 1 and not c.is_distilled
    side = references * DEFAULT_SIDE * DEFAULT_SIDE  # reference pixels the VAE encodes (about 1024^2 each)
    decode = Stage("decode", ("vae",), activations.vae_decode(batch * height * width, c.vae, itemsize=size))
    return (
        Stage("encode_text", ("text_encoder",), text),
        Stage(
            "encode_image", ("vae",) if references else (), activations.vae_decode(side, c.vae, itemsize=size)
        ),
        Stage("prepare_latents", (), 0),
        Stage(
            "denoise",
            ("transformer",),
            activations.dit_rows(rows, c.transformer.proj_out.in_features, size),
            params.num_inference_steps * (2 if cfg else 1),
        ),  # fmt: skip
        *([] if params.output_type == "latent" else [decode]),
    )


def attach(pipeline: Flux2KleinPipeline, residency: Residency) -> None:
    device = residency.mover.device
    c = pipeline.components
    c.device = c.text_encoder.device = device
    if "text_encoder" not in residency.plan.always:
        c.text_encoder.cuda_graphs = False
    # Its kept graphs were recorded on the weights' old addresses (the planner places the resident ones
    # anew too): dropped, a later request records again.
    c.text_encoder.graphs = None
    if device.type != "cpu":
        pipeline.loras.keep_device = torch.device("cpu")
    pipeline.loras.on_write = residency.write_home


def detach(pipeline: Flux2KleinPipeline) -> None:
    """Offload off or re-planned: LoRA writes stay on the device, and the weights move back, so the text
    encoder's kept graphs (which read them by address) go."""
    pipeline.loras.on_write = None
    pipeline.components.text_encoder.graphs = None
