"""LTX-2 / LTX-2.3 from Lightricks' official single-file checkpoint plus a Gemma folder.

The file's weights go through ditto's rename table (loading/ltx_official.py) into the same modules a
diffusers folder fills; generation is LTX2Pipeline's, unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from ditto.engine_options import EngineOptions
from ditto.errors import CheckpointError, InvalidParameter
from ditto.loading.ltx_official import check_keys, read_official, read_official_config
from ditto.loading.ltx_official_config import to_diffusers
from ditto.loading.modules import load_into
from ditto.pipelines.base import model_dtype
from ditto.pipelines.ltx2.components import LTX2Checkpoint, LTX2Components, detect_version, transformer_layers
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.pipeline import LTX2Pipeline, validate_request


def _reference_module(cls: type, config: dict[str, Any], state: dict[str, torch.Tensor], name: str):
    """A diffusers class built from its config, filled strictly (every key checked before loading)."""
    module = cls(**config)
    check_keys(f"official checkpoint, {name}", module.state_dict().keys(), state.keys())
    module.load_state_dict(state, strict=True)
    return module.eval().requires_grad_(False)


def text_encoder_folder(options: EngineOptions) -> Path:
    """The Gemma-3 folder an official file needs beside it (`text_encoder=`): given, and a folder."""
    if options.text_encoder is None:
        raise InvalidParameter(
            "text_encoder",
            None,
            "is required for an official single-file LTX-2 checkpoint",
            "pass the Gemma-3 folder (--text-encoder GEMMA_DIR)",
        )
    folder = Path(options.text_encoder)
    if not folder.is_dir():
        raise InvalidParameter(
            "text_encoder", str(folder), "is not a folder", "give the Gemma-3 folder (weights and tokenizer)"
        )
    return folder


def read_official_checkpoint(path: Path) -> LTX2Checkpoint:
    """Version and depth from the file's metadata (its header): no weight is read. An official file
    carries no upsampler and no distilled LoRA, so it runs the one-stage recipe."""
    configs = to_diffusers(read_official_config(path))
    version = detect_version(configs["transformer"])
    return LTX2Checkpoint(version, transformer_layers(configs["transformer"]), False, None)


def _gemma(folder: Path, device: torch.device, dtype: torch.dtype):
    from transformers import AutoTokenizer, Gemma3ForConditionalGeneration

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = Gemma3ForConditionalGeneration.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"text_encoder={str(folder)!r} is not a loadable Gemma-3 folder: {exc}"
        ) from None
    return tokenizer, model.to(device).eval()


def load_official_components(
    path: Path, text_encoder: Path, device: torch.device, dtype: torch.dtype
) -> LTX2Components:
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    from ditto.models.ltx2.connector import LTX2TextConnectors
    from ditto.models.ltx2.transformer import LTX2Transformer

    configs, parts, _ = read_official(path)
    with torch.device("meta"):
        transformer = LTX2Transformer(**configs["transformer"])
        connectors = LTX2TextConnectors(**configs["connectors"])
    transformer = load_into(
        transformer, parts["transformer"], "official checkpoint, transformer", dtype, device
    )
    connectors = load_into(connectors, parts["connectors"], "official checkpoint, connectors", dtype, device)
    vocoder_class = LTX2VocoderWithBWE if "bwe_hidden_channels" in configs["vocoder"] else LTX2Vocoder
    tokenizer, gemma = _gemma(Path(text_encoder), device, dtype)
    vae = _reference_module(AutoencoderKLLTX2Video, configs["vae"], parts["vae"], "vae")
    audio_vae = _reference_module(
        AutoencoderKLLTX2Audio, configs["audio_vae"], parts["audio_vae"], "audio_vae"
    )
    # The vocoder runs in float32, as the official code does, whatever the model dtype.
    vocoder = _reference_module(vocoder_class, configs["vocoder"], parts["vocoder"], "vocoder")
    return LTX2Components(
        tokenizer=tokenizer,
        text_encoder=gemma,
        connectors=connectors,
        transformer=transformer,
        vae=vae.to(device=device, dtype=dtype),
        audio_vae=audio_vae.to(device=device, dtype=dtype),
        vocoder=vocoder.to(device),
        scheduler_config={},  # official files carry none; ditto uses the official sigma rule (schedules.py)
        version=detect_version(configs["transformer"]),
        dtype=dtype,
        device=device,
    )


class LTX2OfficialPipeline(LTX2Pipeline):
    """LTX2Pipeline loaded from an official single file; `text_encoder=GEMMA_DIR` is required."""

    load_options: ClassVar[frozenset[str]] = frozenset({"text_encoder"})

    @classmethod
    def from_pretrained(
        cls, path: Path, device: torch.device, dtype: torch.dtype | None, options: EngineOptions | None = None
    ) -> LTX2OfficialPipeline:
        text_encoder = text_encoder_folder(options or EngineOptions())
        # The official pipelines run in bfloat16; on the CPU ditto defaults to float32 (bf16 matmuls there
        # are slow and move outputs by ~4e-2), so CPU results are compared with the official code in fp32.
        dtype = model_dtype(dtype, device)
        return cls(load_official_components(Path(path), text_encoder, device, dtype))

    @classmethod
    def request_checker(cls, path: Path, options: EngineOptions) -> Callable[..., LTX2Params]:
        """`validate` for the official file at `path`, from its metadata alone (nothing loaded)."""
        text_encoder_folder(options)
        return functools.partial(validate_request, read_official_checkpoint(Path(path)))
