"""Qwen-Image's components and stages as the offload planner sees them (acceleration/offload).

encode_text runs Qwen2.5-VL's language model (text-to-image; the edit model adds its vision tower), whose
decoder layers stream through hooks; prepare_latents the VAE (edit: the reference images); denoise the
transformer, whose blocks stream through the block loop; decode the VAE. The LM head never runs (ditto reads
the last hidden state), so it stays on the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ditto.acceleration.offload import activations
from ditto.acceleration.offload.spec import Component, OffloadSpec, Stage, text_encoder_component
from ditto.pipelines.qwen_image.params import QwenImageParams, resolved_size
from ditto.pipelines.qwen_image.text import T2I_DROP, T2I_TEMPLATE, TOKENIZER_MAX_LENGTH

if TYPE_CHECKING:
    from ditto.acceleration.offload.residency import Residency

# The pipeline class (QwenImagePipeline) is not imported here: its module imports this one.
QwenImagePipeline = Any

EDIT_IMAGE_TOKENS = 1024  # what one ~384^2 condition image adds to an edit prompt, rounded up


def offload_spec(pipeline: QwenImagePipeline) -> OffloadSpec:
    c = pipeline.components
    text = c.text_encoder
    runs = (text.model,) if pipeline.edit else (text.get_decoder(),)
    components = (
        text_encoder_component(text, runs),
        Component("transformer", (c.transformer,), blocks=c.transformer.transformer_blocks),
        Component("vae", (c.vae,)),
    )
    return OffloadSpec(
        pipeline.family, components, lambda request: stages(pipeline, request), lambda r: attach(pipeline, r)
    )


def stages(pipeline: QwenImagePipeline, request: QwenImageParams | None) -> tuple[Stage, ...]:
    """The stages of `request` (None: a 1024^2 text-to-image request with true CFG, 50 steps)."""
    c = pipeline.components
    params = (
        request if request is not None else QwenImageParams(prompt="the default request", negative_prompt="")
    )
    height, width = resolved_size(params, None, c.multiple)
    batch = len(params.prompts) * params.num_images_per_prompt
    images = 0 if params.image is None else len(params.image) if isinstance(params.image, list) else 1
    config = c.text_encoder.config
    config = getattr(config, "text_config", config)
    tokens = _prompt_tokens(c.tokenizer, params if request is not None else None) + images * EDIT_IMAGE_TOKENS
    size = c.dtype.itemsize
    text = activations.text_encoder(
        len(params.prompts), tokens, config.hidden_size, 2, config.intermediate_size, size
    )
    image_tokens = (height // 16) * (width // 16) * (1 + images)  # the generated image and the references
    rows = batch * (image_tokens + params.max_sequence_length)
    width_dim = c.transformer.proj_out.in_features
    references = activations.vae_decode(
        images * 1024 * 1024, c.vae, itemsize=size
    )  # each reference at ~1024^2
    passes = params.num_inference_steps * (2 if params.do_true_cfg else 1)
    decode = Stage("decode", ("vae",), activations.vae_decode(batch * height * width, c.vae, itemsize=size))
    return (
        Stage("encode_text", ("text_encoder",), text),
        Stage("prepare_latents", ("vae",) if images else (), references),
        Stage("denoise", ("transformer",), activations.dit_rows(rows, width_dim, size), passes),
        *([] if params.output_type == "latent" else [decode]),
    )


def _prompt_tokens(tokenizer: object, params: QwenImageParams | None) -> int:
    """The longest prompt's tokens as the encoder sees them (the template around it, truncated as the
    encoder truncates); without a request, the most the encoder takes."""
    most = TOKENIZER_MAX_LENGTH + T2I_DROP
    if params is None:
        return most
    texts = [*params.prompts, *(params.negative_prompts or [])]
    lengths = [len(tokenizer(T2I_TEMPLATE.format(text)).input_ids) for text in texts]  # type: ignore[operator]
    return min(max(lengths), most)


def attach(pipeline: QwenImagePipeline, residency: Residency) -> None:
    pipeline.components.device = residency.mover.device
