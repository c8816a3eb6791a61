"""Loading an LTX-2 / LTX-2.3 diffusers-format checkpoint: which parts are native, which are reference classes,
and the two-stage parts (the x2 latent upsampler, the distilled LoRA file) where the folder has them.

`read_checkpoint` reads what request validation needs (LTX2Checkpoint) from the config files alone, so a
bad request is refused before any weight is read; a loaded pipeline's components give the same facts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError
from ditto.loading.folder import config_value, read_config, read_json, read_model_index
from ditto.loading.modules import build_native

UPSAMPLER_DIR = "latent_upsampler"
DISTILLED_LORA_DIR = "distilled_lora"
REQUIRED = (
    "transformer",
    "connectors",
    "text_encoder",
    "tokenizer",
    "vae",
    "audio_vae",
    "vocoder",
    "scheduler",
)


@dataclass(frozen=True)
class LTX2Checkpoint:
    """What validating a request needs to know of a checkpoint (no weights)."""

    version: str  # "2.0" or "2.3": selects the official defaults
    num_layers: int  # transformer blocks (the STG block must be one of them)
    has_upsampler: bool  # the x2 latent upsampler of the two-stage recipes
    distilled_lora: Path | None  # stage 2's distilled LoRA file
    ic_lora: Path | None = None  # the ic-lora recipe's IC-LoRA (a load option)

    @property
    def default_recipe(self) -> str:
        """The official recommendation (two-stage) where the checkpoint has what it needs; one-stage otherwise."""
        return "two-stage" if self.has_upsampler and self.distilled_lora is not None else "one-stage"


@dataclass
class LTX2Components:
    tokenizer: Any
    text_encoder: torch.nn.Module
    connectors: torch.nn.Module
    transformer: torch.nn.Module
    vae: torch.nn.Module
    audio_vae: torch.nn.Module
    vocoder: torch.nn.Module
    scheduler_config: dict[str, Any]
    version: str  # "2.0" or "2.3": selects the official defaults
    dtype: torch.dtype
    device: torch.device
    # Two-stage / distilled recipes (recipes/): the x2 latent upsampler and the distilled LoRA file.
    latent_upsampler: torch.nn.Module | None = None
    distilled_lora: Path | None = None
    # A parallel engine's process groups (parallel/mesh.py), set by the Engine: the VAE decode and the text
    # encoding share their work out over the ranks. None in one process.
    parallel: Any = None
    # Where the weights go stage by stage when the engine has a memory budget (acceleration/offload).
    residency: Any = None
    # The ic-lora recipe's IC-LoRA (a load option, not part of a checkpoint) and its strength.
    ic_lora: Path | None = None
    ic_lora_scale: float = 1.0

    @property
    def num_layers(self) -> int:
        return len(self.transformer.transformer_blocks)

    @property
    def checkpoint(self) -> LTX2Checkpoint:
        return LTX2Checkpoint(
            self.version,
            self.num_layers,
            self.latent_upsampler is not None,
            self.distilled_lora,
            self.ic_lora,
        )


def detect_version(transformer_config: dict[str, Any]) -> str:
    """LTX-2.3 is the layout with gated attention / prompt cross-attention modulation."""
    return (
        "2.3" if transformer_config.get("gated_attn") or transformer_config.get("cross_attn_mod") else "2.0"
    )


def check_folder(folder: Path) -> None:
    index = read_model_index(folder)
    missing = [name for name in REQUIRED if name not in index or not (folder / name).exists()]
    if missing:
        raise CheckpointError(f"{folder} is an incomplete LTX-2 checkpoint: missing components {missing}")


def transformer_layers(config: dict[str, Any]) -> int:
    """Blocks of a transformer config (a config without the key has the model's default depth)."""
    return int(config_value(config, "num_layers", "ditto.models.ltx2.transformer:LTX2Transformer"))


def read_checkpoint(
    folder: Path, upsampler: str | Path | None = None, distilled_lora: str | Path | None = None
) -> LTX2Checkpoint:
    """The facts request validation needs, from model_index.json and the configs: no weight is read."""
    check_folder(folder)
    config = read_config(folder, "transformer")
    return LTX2Checkpoint(
        version=detect_version(config),
        num_layers=transformer_layers(config),
        has_upsampler=_upsampler_dir(folder, upsampler) is not None,
        distilled_lora=_find_distilled_lora(folder, distilled_lora),
    )


def load_components(
    folder: Path,
    device: torch.device,
    dtype: torch.dtype,
    upsampler: str | Path | None = None,
    distilled_lora: str | Path | None = None,
) -> LTX2Components:
    """Native transformer and connectors (meta-device init, strict keys); reference VAEs, vocoder, Gemma;
    the stage-two parts: given paths first, else the folder's `latent_upsampler/` and
    `distilled_lora/*.safetensors`."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video
    from transformers import AutoTokenizer, Gemma3ForConditionalGeneration

    from ditto.models.ltx2.connector import LTX2TextConnectors
    from ditto.models.ltx2.transformer import LTX2Transformer

    check_folder(folder)
    transformer_config = read_config(folder, "transformer")
    connector_config = read_config(folder, "connectors")
    transformer = build_native(
        lambda: LTX2Transformer(**transformer_config), folder / "transformer", dtype, device
    )
    connectors = build_native(
        lambda: LTX2TextConnectors(**connector_config), folder / "connectors", dtype, device
    )
    # The official guider always perturbs self-attention at the STG blocks; diffusers does so only when the
    # config says perturbed_attn=True, which its LTX-2.0 conversion leaves False (docs/parity.md).
    transformer.stg_enabled = True
    text_encoder = Gemma3ForConditionalGeneration.from_pretrained(str(folder / "text_encoder"), dtype=dtype)
    return LTX2Components(
        tokenizer=AutoTokenizer.from_pretrained(str(folder / "tokenizer")),
        text_encoder=text_encoder.to(device).eval(),
        connectors=connectors,
        transformer=transformer,
        vae=AutoencoderKLLTX2Video.from_pretrained(str(folder / "vae"), torch_dtype=dtype).to(device).eval(),
        audio_vae=AutoencoderKLLTX2Audio.from_pretrained(str(folder / "audio_vae"), torch_dtype=dtype)
        .to(device)
        .eval(),
        # The vocoder runs in float32, as the official code does, whatever the model dtype.
        vocoder=_load_vocoder(folder / "vocoder").to(device).eval(),
        scheduler_config=read_json(folder / "scheduler" / "scheduler_config.json"),
        version=detect_version(transformer_config),
        dtype=dtype,
        device=device,
        latent_upsampler=_load_upsampler(folder, upsampler, device, dtype),
        distilled_lora=_find_distilled_lora(folder, distilled_lora),
    )


def _load_upsampler(
    folder: Path, given: str | Path | None, device: torch.device, dtype: torch.dtype
) -> torch.nn.Module | None:
    """diffusers' latent upsampler from `given` or the checkpoint's folder; None where there is none."""
    upsampler_dir = _upsampler_dir(folder, given)
    if upsampler_dir is None:
        return None
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    model = LTX2LatentUpsamplerModel.from_pretrained(str(upsampler_dir), torch_dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def _upsampler_dir(folder: Path, given: str | Path | None) -> Path | None:
    """The upsampler folder: `given`, else the checkpoint's latent_upsampler/ when it has one."""
    upsampler_dir = Path(given) if given else folder / UPSAMPLER_DIR
    if upsampler_dir.is_dir():
        return upsampler_dir
    if given:
        raise CheckpointError(f"upsampler={str(given)!r} is not a diffusers latent upsampler folder")
    return None


def _find_distilled_lora(folder: Path, given: str | Path | None) -> Path | None:
    if given:
        return Path(given)
    found = sorted((folder / DISTILLED_LORA_DIR).glob("*.safetensors"))
    if len(found) > 1:
        raise CheckpointError(
            f"{folder / DISTILLED_LORA_DIR} holds {len(found)} LoRA files; pass distilled_lora="
        )
    return found[0] if found else None


def _load_vocoder(folder: Path) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    config = read_json(folder / "config.json")
    cls = LTX2VocoderWithBWE if config.get("_class_name") == "LTX2VocoderWithBWE" else LTX2Vocoder
    return cls.from_pretrained(str(folder), torch_dtype=torch.float32)
