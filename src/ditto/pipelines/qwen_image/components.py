"""Loading a Qwen-Image(-Edit) diffusers folder: the native transformer, and the reference VAE, Qwen2.5-VL
text encoder, tokenizer and (edit) image processor through diffusers / transformers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError
from ditto.loading.folder import config_value, read_json
from ditto.loading.modules import build_from_config
from ditto.models.qwen_image.transformer import QwenImageTransformer
from ditto.pipelines.qwen_image.schedule import check_scheduler_config


@dataclass
class QwenImageComponents:
    transformer: QwenImageTransformer
    vae: Any  # diffusers AutoencoderKLQwenImage
    text_encoder: Any  # transformers Qwen2_5_VLForConditionalGeneration
    tokenizer: Any
    image_processor: Any | None  # Qwen2VLImageProcessor (edit checkpoints)
    scheduler_config: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    # Where the weights go stage by stage when the engine has a memory budget (acceleration/offload).
    residency: Any = None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** len(self.vae.temperal_downsample)

    @property
    def multiple(self) -> int:
        """Image sizes must be multiples of this: VAE compression times the 2x2 latent packing."""
        return size_multiple(len(self.vae.temperal_downsample))

    @property
    def latent_channels(self) -> int:
        return self.transformer.img_in.in_features // 4


def size_multiple(vae_downsamples: int) -> int:
    """Image sizes must be multiples of this: the VAE's 2**n compression times the 2x2 latent packing."""
    return 2**vae_downsamples * 2


def read_multiple(folder: Path) -> int:
    """`multiple` from the VAE's config alone (no weight is read): all request validation needs to know."""
    config = read_json(folder / "vae" / "config.json")
    return size_multiple(len(config_value(config, "temperal_downsample", "diffusers:AutoencoderKLQwenImage")))


def _require(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        if not (folder / name).is_dir():
            raise CheckpointError(
                f"{folder} has no {name}/ folder (a Qwen-Image checkpoint needs {list(names)})"
            )


def _image_processor(folder: Path) -> Any:
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor.from_pretrained(str(folder / "processor"))


def load_components(
    folder: Path, device: torch.device, dtype: torch.dtype, edit: bool
) -> QwenImageComponents:
    from diffusers import AutoencoderKLQwenImage
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer

    # The edit reference tokenizes through its processor, whose folder carries its own tokenizer files.
    text_folder = "processor" if edit else "tokenizer"
    _require(folder, ("transformer", "vae", "text_encoder", "scheduler", text_folder))
    scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json")
    check_scheduler_config(scheduler_config)
    text_encoder = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(folder / "text_encoder"), dtype=dtype
    )
    return QwenImageComponents(
        transformer=build_from_config(QwenImageTransformer, folder, "transformer", dtype, device),
        vae=AutoencoderKLQwenImage.from_pretrained(str(folder / "vae"), torch_dtype=dtype).to(device).eval(),
        text_encoder=text_encoder.to(device).eval(),
        tokenizer=Qwen2Tokenizer.from_pretrained(str(folder / text_folder)),
        image_processor=_image_processor(folder) if edit else None,
        scheduler_config=scheduler_config,
        device=device,
        dtype=dtype,
    )
