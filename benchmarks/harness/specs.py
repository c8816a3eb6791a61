"""What to benchmark: each model's configs (full size and tiny), both classes, and one forward's inputs.

Full-size configs are the published layouts (LTX-2 19B = diffusers' defaults; FLUX.2 Klein 4B; Qwen-Image
20B = diffusers' defaults). Inputs are random with the shapes a 1-step call of the pipeline makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Shape:
    height: int
    width: int
    num_frames: int = 1
    text_tokens: int = 512
    batch: int = 1

    def label(self) -> str:
        frames = f"x{self.num_frames}" if self.num_frames > 1 else ""
        return f"{self.width}x{self.height}{frames} text{self.text_tokens} b{self.batch}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    reference_class: str  # diffusers class name
    config: dict[str, Any]
    default_shape: Shape
    native: Callable[[dict[str, Any]], nn.Module]
    # (config, shape, device, dtype, generator) -> (reference kwargs, native kwargs)
    inputs: Callable[..., tuple[dict[str, Any], dict[str, Any]]]
    extra_shapes: tuple[Shape, ...] = field(default=())
    weights: str | None = None  # a diffusers transformer folder to load instead of random weights

    def reference(self) -> nn.Module:
        import diffusers

        return getattr(diffusers, self.reference_class)(**self.config)


def _outputs(out: Any) -> tuple[torch.Tensor, ...]:
    """Both libraries' results as a tuple of tensors (diffusers returns tuples with return_dict=False)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for t in out if isinstance(t, torch.Tensor))


outputs = _outputs


# ---------------------------------------------------------------- LTX-2
def _ltx2_native(config: dict[str, Any]) -> nn.Module:
    from ditto.models.ltx2 import LTX2Transformer

    return LTX2Transformer(**config)


def ltx2_latent_sizes(config: dict[str, Any], shape: Shape, fps: float = 24.0) -> tuple[int, int, int, int]:
    """(latent frames, latent height, latent width, audio latent frames) as diffusers' LTX2Pipeline computes."""
    t, h, w = config.get("vae_scale_factors", (8, 32, 32))
    frames = (shape.num_frames - 1) // t + 1
    rate = config.get("audio_sampling_rate", 16000) / config.get("audio_hop_length", 160)
    audio_frames = round(shape.num_frames / fps * rate / config.get("audio_scale_factor", 4))
    return frames, shape.height // h, shape.width // w, audio_frames


def _ltx2_inputs(config, shape: Shape, device, dtype, g) -> tuple[dict, dict]:
    frames, h, w, audio_frames = ltx2_latent_sizes(config, shape)
    b, text = shape.batch, shape.text_tokens
    caption = config.get("caption_channels", 3840)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=g, device="cpu").to(device=device, dtype=dtype)

    # The text mask as both pipelines send it: the connectors' learnable registers fill the padding, so the
    # mask after them is all ones. diffusers' LTX2Pipeline passes it on (a zero bias: cuDNN's masked kernel);
    # ditto's pipeline drops an all-kept mask (pipelines/ltx2/text.py), so its forward gets none.
    mask = torch.ones(b, text, dtype=torch.long)
    kwargs = dict(
        hidden_states=randn(b, frames * h * w, config.get("in_channels", 128)),
        audio_hidden_states=randn(b, audio_frames, config.get("audio_in_channels", 128)),
        encoder_hidden_states=randn(b, text, caption),
        audio_encoder_hidden_states=randn(b, text, caption),
        timestep=torch.full((b,), 700.0, device=device),
        encoder_attention_mask=mask.to(device),
        audio_encoder_attention_mask=mask.to(device),
        num_frames=frames,
        height=h,
        width=w,
        fps=24.0,
        audio_num_frames=audio_frames,
        return_dict=False,
    )
    return kwargs, dict(kwargs, encoder_attention_mask=None, audio_encoder_attention_mask=None)


# ---------------------------------------------------------------- FLUX.2 Klein
def _flux2_native(config: dict[str, Any]) -> nn.Module:
    from ditto.models.flux2 import Flux2Transformer

    return Flux2Transformer(**config)


def _flux2_inputs(config, shape: Shape, device, dtype, g) -> tuple[dict, dict]:
    h, w = shape.height // 16, shape.width // 16  # VAE 8x, then 2x2 patches packed into channels
    img_ids = torch.cartesian_prod(torch.tensor([0]), torch.arange(h), torch.arange(w), torch.tensor([0]))
    txt_ids = torch.cartesian_prod(
        torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.arange(shape.text_tokens)
    )
    b = shape.batch
    kwargs = dict(
        hidden_states=torch.randn(b, h * w, config["in_channels"], generator=g).to(device, dtype),
        encoder_hidden_states=torch.randn(
            b, shape.text_tokens, config["joint_attention_dim"], generator=g
        ).to(device, dtype),
        timestep=torch.full((b,), 0.7, device=device, dtype=dtype),
        img_ids=img_ids.expand(b, -1, -1).to(device),
        txt_ids=txt_ids.expand(b, -1, -1).to(device),
    )
    return dict(kwargs, return_dict=False), kwargs


# ---------------------------------------------------------------- Qwen-Image
def _qwen_native(config: dict[str, Any]) -> nn.Module:
    from ditto.models.qwen_image.transformer import QwenImageTransformer

    return QwenImageTransformer(**config)


def _qwen_inputs(config, shape: Shape, device, dtype, g) -> tuple[dict, dict]:
    h, w = shape.height // 16, shape.width // 16
    b = shape.batch
    hidden = torch.randn(b, h * w, config.get("in_channels", 64), generator=g).to(device, dtype)
    text = torch.randn(b, shape.text_tokens, config.get("joint_attention_dim", 3584), generator=g).to(
        device, dtype
    )
    # Both pipelines drop an all-valid text mask (attention then runs unmasked, on the fast kernels); one
    # prompt of exactly TEXT tokens is that case, so the forward is timed the way the pipelines call it.
    mask = None
    timestep = torch.full((b,), 0.7, device=device, dtype=dtype)
    reference = dict(
        hidden_states=hidden,
        encoder_hidden_states=text,
        encoder_hidden_states_mask=mask,
        timestep=timestep,
        img_shapes=[[(1, h, w)]] * b,
        return_dict=False,
    )
    native = dict(
        hidden_states=hidden,
        encoder_hidden_states=text,
        encoder_hidden_states_mask=mask,
        timestep=timestep,
        img_shapes=[(1, h, w)],
    )
    return reference, native


LTX2_CONFIG: dict[str, Any] = {}  # diffusers' LTX2VideoTransformer3DModel defaults = the LTX-2 19B layout
FLUX2_KLEIN_4B_CONFIG: dict[str, Any] = dict(
    patch_size=1, in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128,
    num_attention_heads=24, joint_attention_dim=7680, timestep_guidance_channels=256, mlp_ratio=3.0,
    axes_dims_rope=(32, 32, 32, 32), rope_theta=2000, eps=1e-6, guidance_embeds=False,
)  # fmt: skip
QWEN_IMAGE_CONFIG: dict[str, Any] = {}  # diffusers' defaults = Qwen-Image 20B

TINY_LTX2_CONFIG: dict[str, Any] = dict(
    in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, cross_attention_dim=32,
    audio_in_channels=16, audio_out_channels=16, audio_num_attention_heads=2, audio_attention_head_dim=8,
    audio_cross_attention_dim=16, num_layers=2, caption_channels=32,
)  # fmt: skip

TINY_FLUX2_CONFIG: dict[str, Any] = dict(
    patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
    num_attention_heads=2, joint_attention_dim=24, timestep_guidance_channels=32, mlp_ratio=3.0,
    axes_dims_rope=(4, 4, 4, 4), rope_theta=2000, eps=1e-6, guidance_embeds=False,
)  # fmt: skip
TINY_QWEN_CONFIG: dict[str, Any] = dict(
    patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
    joint_attention_dim=24, axes_dims_rope=(4, 6, 6),
)  # fmt: skip

SPECS: dict[str, ModelSpec] = {
    "ltx2": ModelSpec(
        "ltx2", "LTX2VideoTransformer3DModel", LTX2_CONFIG,
        Shape(704, 1280, 121, 1024, 2), _ltx2_native, _ltx2_inputs, (Shape(512, 768, 121, 1024, 2),),
    ),
    "flux2-klein-4b": ModelSpec(
        "flux2-klein-4b", "Flux2Transformer2DModel", FLUX2_KLEIN_4B_CONFIG,
        Shape(1024, 1024, 1, 512, 1), _flux2_native, _flux2_inputs,
    ),
    "qwen-image": ModelSpec(
        "qwen-image", "QwenImageTransformer2DModel", QWEN_IMAGE_CONFIG,
        Shape(1024, 1024, 1, 256, 1), _qwen_native, _qwen_inputs,
    ),
    "tiny-ltx2": ModelSpec(
        "tiny-ltx2", "LTX2VideoTransformer3DModel", TINY_LTX2_CONFIG,
        Shape(128, 192, 9, 16, 2), _ltx2_native, _ltx2_inputs,
    ),
    "tiny-flux2": ModelSpec(
        "tiny-flux2", "Flux2Transformer2DModel", TINY_FLUX2_CONFIG,
        Shape(128, 128, 1, 8, 1), _flux2_native, _flux2_inputs,
    ),
    "tiny-qwen-image": ModelSpec(
        "tiny-qwen-image", "QwenImageTransformer2DModel", TINY_QWEN_CONFIG,
        Shape(128, 128, 1, 8, 1), _qwen_native, _qwen_inputs,
    ),
}  # fmt: skip


def spec_for(model: str) -> ModelSpec:
    """`full-size-random:<name>`, a tiny name, or a diffusers folder (its transformer/config.json)."""
    name = model.removeprefix("full-size-random:")
    if name in SPECS:
        return SPECS[name]
    from pathlib import Path

    from ditto.errors import InvalidParameter

    config_path = Path(model) / "transformer" / "config.json"
    if not config_path.is_file():
        raise InvalidParameter(
            "model", model, "is neither a known benchmark model nor a folder with transformer/config.json",
            f"use one of {['full-size-random:' + n for n in SPECS if not n.startswith('tiny')]}, tiny-ltx2 or DIR",
        )  # fmt: skip
    import json

    config = json.loads(config_path.read_text())
    by_class = {spec.reference_class: spec for spec in SPECS.values() if not spec.name.startswith("tiny")}
    spec = by_class.get(config.get("_class_name", ""))
    if spec is None:
        raise InvalidParameter("model", model, f"has transformer class {config.get('_class_name')!r}", "")
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    return ModelSpec(
        spec.name, spec.reference_class, clean, spec.default_shape, spec.native, spec.inputs,
        weights=str(config_path.parent),
    )  # fmt: skip
