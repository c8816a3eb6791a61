"""Official LTX-2 / LTX-2.3 single-file checkpoints (Lightricks' layout) <-> ditto's diffusers-named modules.

One explicit rename table, used in both directions:
  1. COMPONENT_PREFIXES says which diffusers component a weight of the single file belongs to;
  2. SEGMENT_RENAMES renames dotted-name segments inside that component (whole segments only, left to
     right, one pass, longest rule first, so no rename is applied twice and every rule reverses);
  3. the video VAE's flat official block list nests into diffusers' blocks by index (vae_block_renames).
Loading is strict: a weight the table does not place, or a module weight the file lacks, is a
CheckpointError naming the keys; the official loader (strict=False) would only warn.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ditto.errors import CheckpointError
from ditto.loading.ltx_official_config import is_v23, to_diffusers, to_official

MAX_KEYS_SHOWN = 8

# (official prefix, diffusers component, prefix inside that component); first match wins, so the
# connector and statistics entries come before the catch-all prefixes of their parents.
COMPONENT_PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("model.diffusion_model.video_embeddings_connector.", "connectors", "video_connector."),
    ("model.diffusion_model.audio_embeddings_connector.", "connectors", "audio_connector."),
    ("text_embedding_projection.aggregate_embed.", "connectors", "text_proj_in."),  # LTX-2.0
    ("text_embedding_projection.video_aggregate_embed.", "connectors", "video_text_proj_in."),  # LTX-2.3
    ("text_embedding_projection.audio_aggregate_embed.", "connectors", "audio_text_proj_in."),  # LTX-2.3
    ("model.diffusion_model.", "transformer", ""),
    ("vae.per_channel_statistics.mean-of-means", "vae", "latents_mean"),
    ("vae.per_channel_statistics.std-of-means", "vae", "latents_std"),
    ("vae.", "vae", ""),
    ("audio_vae.per_channel_statistics.mean-of-means", "audio_vae", "latents_mean"),
    ("audio_vae.per_channel_statistics.std-of-means", "audio_vae", "latents_std"),
    ("audio_vae.", "audio_vae", ""),
    ("vocoder.", "vocoder", ""),
)
COMPONENTS = ("transformer", "connectors", "vae", "audio_vae", "vocoder")

# Statistics published in the official files that no official (or diffusers) module reads.
UNUSED_OFFICIAL_SUFFIXES = (
    "per_channel_statistics.channel",
    "per_channel_statistics.mean-of-stds",
    "per_channel_statistics.mean-of-stds_over_std-of-means",
)

_ATTENTION = {"q_norm": "norm_q", "k_norm": "norm_k"}
# Per component: official segment(s) -> diffusers segment(s).
SEGMENT_RENAMES: dict[str, dict[str, str]] = {
    "transformer": {
        "patchify_proj": "proj_in",
        "audio_patchify_proj": "audio_proj_in",
        "adaln_single": "time_embed",
        "audio_adaln_single": "audio_time_embed",
        "prompt_adaln_single": "prompt_adaln",  # LTX-2.3 prompt cross-attention modulation
        "audio_prompt_adaln_single": "audio_prompt_adaln",
        "av_ca_video_scale_shift_adaln_single": "av_cross_attn_video_scale_shift",
        "av_ca_a2v_gate_adaln_single": "av_cross_attn_video_a2v_gate",
        "av_ca_audio_scale_shift_adaln_single": "av_cross_attn_audio_scale_shift",
        "av_ca_v2a_gate_adaln_single": "av_cross_attn_audio_v2a_gate",
        "scale_shift_table_a2v_ca_video": "video_a2v_cross_attn_scale_shift_table",
        "scale_shift_table_a2v_ca_audio": "audio_a2v_cross_attn_scale_shift_table",
        **_ATTENTION,
    },
    "connectors": {"transformer_1d_blocks": "transformer_blocks", **_ATTENTION},
    "vae": {"res_blocks": "resnets"},
    "audio_vae": {},
    "vocoder": {
        "conv_pre": "conv_in",
        "conv_post": "conv_out",
        "ups": "upsamplers",
        "resblocks": "resnets",
        "act_post": "act_out",
        "downsample.lowpass.filter": "downsample.filter",  # anti-aliasing filter of the 2.3 AMP blocks
    },
}


def vae_block_renames(down_blocks: int, up_blocks: int) -> dict[str, str]:
    """The official VAE's flat block lists -> diffusers' nested blocks, for `down_blocks` encoder stages
    and `up_blocks` decoder stages: encoder [res, down, res, down, ..., res(mid)],
    decoder [res(mid), up, res, up, res, ...] (the decoder list is stored output-last)."""
    table = {
        f"encoder.down_blocks.{2 * down_blocks}": "encoder.mid_block",
        "decoder.up_blocks.0": "decoder.mid_block",
    }
    for i in range(down_blocks):
        table[f"encoder.down_blocks.{2 * i}"] = f"encoder.down_blocks.{i}"
        table[f"encoder.down_blocks.{2 * i + 1}"] = f"encoder.down_blocks.{i}.downsamplers.0"
    for i in range(up_blocks):
        table[f"decoder.up_blocks.{2 * i + 1}"] = f"decoder.up_blocks.{i}.upsamplers.0"
        table[f"decoder.up_blocks.{2 * i + 2}"] = f"decoder.up_blocks.{i}"
    return table


def _rules(component: str, configs: dict[str, dict[str, Any]]) -> list[tuple[list[str], list[str]]]:
    table = dict(SEGMENT_RENAMES[component])
    if component == "vae":
        vae = configs["vae"]
        table.update(
            vae_block_renames(len(vae["block_out_channels"]), len(vae["decoder_block_out_channels"]))
        )
    return [(official.split("."), diffusers.split(".")) for official, diffusers in table.items()]


def _rewrite(key: str, rules: list[tuple[list[str], list[str]]], reverse: bool) -> str:
    """Replace rule matches on whole segments, left to right, longest first, each segment at most once."""
    pairs = sorted(((d, o) if reverse else (o, d) for o, d in rules), key=lambda p: -len(p[0]))
    parts, out, i = key.split("."), [], 0
    while i < len(parts):
        for source, target in pairs:
            if parts[i : i + len(source)] == source:
                out.extend(target)
                i += len(source)
                break
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out)


def _place(key: str) -> tuple[str, str]:
    for official, component, inner in COMPONENT_PREFIXES:
        if key == official or (official.endswith(".") and key.startswith(official)):
            return component, inner + key[len(official) :]
    raise KeyError(key)


def split_official(
    state: dict[str, torch.Tensor], configs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, torch.Tensor]]:
    """Official single-file weights -> {component: diffusers-named weights}; unplaceable keys are an error."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in COMPONENTS}
    rules = {name: _rules(name, configs) for name in COMPONENTS}
    unknown = []
    for key, tensor in state.items():
        if key.endswith(UNUSED_OFFICIAL_SUFFIXES):
            continue
        try:
            component, inner = _place(key)
        except KeyError:
            unknown.append(key)
            continue
        parts[component][_rewrite(inner, rules[component], reverse=False)] = tensor
    if unknown:
        raise CheckpointError(_key_message("official checkpoint", [], unknown))
    return parts


def join_official(
    parts: dict[str, dict[str, torch.Tensor]], configs: dict[str, dict[str, Any]]
) -> dict[str, torch.Tensor]:
    """{component: diffusers-named weights} -> official single-file weights (the inverse of split_official)."""
    state: dict[str, torch.Tensor] = {}
    for component, tensors in parts.items():
        rules = _rules(component, configs)
        entries = sorted(
            (entry for entry in COMPONENT_PREFIXES if entry[1] == component), key=lambda e: -len(e[2])
        )
        for key, tensor in tensors.items():
            for official, _, inner in entries:
                exact = not inner.endswith(".") and inner != ""
                if (exact and key == inner) or (not exact and key.startswith(inner)):
                    rest = key[len(inner) :]
                    state[official + _rewrite(rest, rules, reverse=True)] = tensor
                    break
            else:
                raise CheckpointError(f"{component}: weight {key!r} has no place in the official layout")
    return state


def check_keys(component: str, expected: Iterable[str], found: Iterable[str]) -> None:
    expected, found = set(expected), set(found)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise CheckpointError(_key_message(component, missing, unexpected))


def _key_message(what: str, missing: list[str], unexpected: list[str]) -> str:
    lines = [f"{what}: the weights do not match the model"]
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            shown = ", ".join(keys[:MAX_KEYS_SHOWN]) + (" ..." if len(keys) > MAX_KEYS_SHOWN else "")
            lines.append(f"  {len(keys)} {label}: {shown}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- the file


def read_official_config(path: Path) -> dict[str, Any]:
    """The JSON config in the safetensors metadata (key "config"); a clear error when absent."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for non-safetensors files
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if "config" not in metadata:
        raise CheckpointError(
            f"{path} has no 'config' metadata: it is not an official LTX-2 single-file checkpoint"
        )
    try:
        return json.loads(metadata["config"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata 'config' is not valid JSON ({exc})") from None


def is_official_file(path: Path) -> bool:
    """A .safetensors file whose metadata holds an official LTX config with a transformer section."""
    try:
        return "transformer" in read_official_config(path)
    except CheckpointError:
        return False


def projection_factor(state: dict[str, torch.Tensor], official: dict[str, Any]) -> int:
    """Gemma hidden states per token (layers + 1), read from the text projection's input width."""
    for key in (
        "text_embedding_projection.aggregate_embed.weight",
        "text_embedding_projection.video_aggregate_embed.weight",
    ):
        if key in state:
            return state[key].shape[1] // official["transformer"].get("caption_channels", 3840)
    raise CheckpointError("official checkpoint has no text_embedding_projection weights")


def read_official(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, torch.Tensor]], str]:
    """(diffusers configs, diffusers-named weights per component, version "2.0"/"2.3") of an official file."""
    from ditto.loading.folder import read_weights

    official = read_official_config(path)
    state = read_weights(path)
    configs = to_diffusers(official, projection_factor(state, official))
    return configs, split_official(state, configs), "2.3" if is_v23(official) else "2.0"


def write_official(
    path: Path, configs: dict[str, dict[str, Any]], parts: dict[str, dict[str, torch.Tensor]], version: str
) -> None:
    """Write diffusers-named weights as one official single file, config in the metadata. The version is
    also a metadata key of its own: the official pipelines pick their per-version defaults from it
    (ltx_pipelines.utils.constants.detect_params reads `model_version`, not the config's)."""
    from safetensors.torch import save_file

    official = to_official(configs, version)
    state = {k: v.contiguous() for k, v in join_official(parts, configs).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(official), "model_version": official["model_version"]}
    save_file(state, str(path), metadata=metadata)
