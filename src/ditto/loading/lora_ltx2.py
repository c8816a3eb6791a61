"""LTX-2 LoRA key names: the official layout (`diffusion_model.*`, `text_embedding_projection.*`, as
Lightricks publishes the distilled and IC LoRAs) and the diffusers layout (`transformer.*`, `connectors.*`)
both name ditto's modules, which carry diffusers' names.

The official -> diffusers module names that differ, in ditto's own table (the facts are the same as
diffusers' `_convert_non_diffusers_ltx2_lora_to_diffusers` and its conversion script).
"""

from __future__ import annotations

# Official first path segment of the transformer -> (component, diffusers name).
OFFICIAL_TOP_LEVEL = {
    "patchify_proj": ("transformer", "proj_in"),
    "audio_patchify_proj": ("transformer", "audio_proj_in"),
    "adaln_single": ("transformer", "time_embed"),
    "audio_adaln_single": ("transformer", "audio_time_embed"),
    "prompt_adaln_single": ("transformer", "prompt_adaln"),  # LTX-2.3
    "audio_prompt_adaln_single": ("transformer", "audio_prompt_adaln"),  # LTX-2.3
    "av_ca_video_scale_shift_adaln_single": ("transformer", "av_cross_attn_video_scale_shift"),
    "av_ca_a2v_gate_adaln_single": ("transformer", "av_cross_attn_video_a2v_gate"),
    "av_ca_audio_scale_shift_adaln_single": ("transformer", "av_cross_attn_audio_scale_shift"),
    "av_ca_v2a_gate_adaln_single": ("transformer", "av_cross_attn_audio_v2a_gate"),
    "video_embeddings_connector": ("connectors", "video_connector"),
    "audio_embeddings_connector": ("connectors", "audio_connector"),
}
# Official names inside any path (whole segments only).
OFFICIAL_SEGMENTS = {"q_norm": "norm_q", "k_norm": "norm_k", "transformer_1d_blocks": "transformer_blocks"}
# text_embedding_projection.<name> -> connectors.<name>
OFFICIAL_PROJECTIONS = {
    "aggregate_embed": "text_proj_in",
    "video_aggregate_embed": "video_text_proj_in",  # LTX-2.3: one projection per modality
    "audio_aggregate_embed": "audio_text_proj_in",
}
DIFFUSERS_COMPONENTS = ("transformer", "connectors")


def ltx2_lora_key(module: str) -> str | None:
    """A LoRA file's module path -> "component.module.path" of ditto's LTX-2 modules (None: unknown)."""
    module = module.removeprefix("base_model.model.")  # a bare PEFT model save
    head, _, rest = module.partition(".")
    if head == "diffusion_model":
        return _official_transformer(rest)
    if head == "text_embedding_projection":
        first, _, tail = rest.partition(".")
        name = OFFICIAL_PROJECTIONS.get(first)
        return None if name is None else ".".join(filter(None, ("connectors", name, tail)))
    if head in DIFFUSERS_COMPONENTS:
        return module
    # A bare transformer state dict (PEFT's get_peft_model_state_dict on the transformer alone).
    return f"transformer.{module}"


def _official_transformer(path: str) -> str:
    first, _, tail = path.partition(".")
    component, first = OFFICIAL_TOP_LEVEL.get(first, ("transformer", first))
    segments = [OFFICIAL_SEGMENTS.get(s, s) for s in tail.split(".")] if tail else []
    return ".".join([component, first, *segments])
