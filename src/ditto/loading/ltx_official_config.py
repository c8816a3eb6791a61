"""Official LTX-2 single-file config (safetensors metadata "config") <-> diffusers component configs.

The official config has `transformer`, `vae`, `audio_vae`, `vocoder` sections (ltx-core 1.0.0
configurators read them with defaults; see ltx_core/model/*/model_configurator.py). diffusers splits
the same information over `transformer`, `connectors`, `vae`, `audio_vae` and `vocoder` config.json files.
Values the official code reads with a default are filled with that default when absent, so a config
written by Lightricks and one written here give the same diffusers configs.
"""

from __future__ import annotations

from typing import Any

from ditto.errors import CheckpointError

# ltx_core's LTXModelConfigurator insists on these values (check_config_value); written so the official
# loader accepts files ditto writes.
FIXED_TRANSFORMER_VALUES: dict[str, Any] = {
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
    "use_middle_indices_grid": True,
}
# LTX-2.3 ("V2") text path: the projection moved from the transformer into the text encoder side.
V2_TEXT_KEYS: dict[str, Any] = {
    "caption_proj_before_connector": True,
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
}
# The official connectors always have 128 learnable registers (Embeddings1DConnector default, not configurable).
OFFICIAL_REGISTERS = 128
# The official vocoder's first convolution always takes 2 stereo channels x 64 mel bins.
OFFICIAL_VOCODER_IN_CHANNELS = 128
DOWNSAMPLE_BLOCKS = {
    "spatial": "compress_space_res",
    "temporal": "compress_time_res",
    "spatiotemporal": "compress_all_res",
}
UPSAMPLE_BLOCKS = {"spatial": "compress_space", "temporal": "compress_time", "spatiotemporal": "compress_all"}


def is_v23(official: dict[str, Any]) -> bool:
    """LTX-2.3 layout: model_version "2.3..." or the V2 text-projection keys."""
    version = str(official.get("model_version", ""))
    return version.startswith("2.3") or bool(
        official.get("transformer", {}).get("caption_proj_before_connector")
    )


# ----------------------------------------------------------------------------------------- official -> diffusers


def to_diffusers(official: dict[str, Any], text_proj_in_factor: int = 49) -> dict[str, dict[str, Any]]:
    """The five diffusers component configs of an official single-file config.

    The number of Gemma hidden states the connectors take (layers + 1) is not in the official config (the
    official code hard-codes Gemma-3-12B: 49); the loader reads it from the projection weight's shape."""
    for section in ("transformer", "vae", "audio_vae", "vocoder"):
        if section not in official:
            raise CheckpointError(
                f"official LTX config has no {section!r} section (sections: {sorted(official)})"
            )
    t = official["transformer"]
    return {
        "transformer": _transformer_to_diffusers(t),
        "connectors": _connectors_to_diffusers(t, text_proj_in_factor),
        "vae": _vae_to_diffusers(official["vae"]),
        "audio_vae": _audio_vae_to_diffusers(official["audio_vae"]),
        "vocoder": _vocoder_to_diffusers(official["vocoder"]),
    }


def _transformer_to_diffusers(t: dict[str, Any]) -> dict[str, Any]:
    max_pos = t.get("positional_embedding_max_pos", [20, 2048, 2048])
    gated = bool(t.get("apply_gated_attention", False))
    cross_mod = bool(t.get("cross_attention_adaln", False))
    return {
        "in_channels": t.get("in_channels", 128),
        "out_channels": t.get("out_channels", 128),
        "num_attention_heads": t.get("num_attention_heads", 32),
        "attention_head_dim": t.get("attention_head_dim", 128),
        "cross_attention_dim": t.get("cross_attention_dim", 4096),
        "pos_embed_max_pos": max_pos[0],
        "base_height": max_pos[1],
        "base_width": max_pos[2],
        "audio_in_channels": t.get("audio_in_channels", 128),
        "audio_out_channels": t.get("audio_out_channels", 128),
        "audio_num_attention_heads": t.get("audio_num_attention_heads", 32),
        "audio_attention_head_dim": t.get("audio_attention_head_dim", 64),
        "audio_cross_attention_dim": t.get("audio_cross_attention_dim", 2048),
        "audio_pos_embed_max_pos": t.get("audio_positional_embedding_max_pos", [20])[0],
        "num_layers": t.get("num_layers", 48),
        "norm_eps": t.get("norm_eps", 1e-6),
        "caption_channels": t.get("caption_channels", 3840),
        "rope_theta": t.get("positional_embedding_theta", 10000.0),
        "rope_double_precision": t.get("frequencies_precision", False) == "float64",
        "rope_type": t.get("rope_type", "interleaved"),
        "timestep_scale_multiplier": t.get("timestep_scale_multiplier", 1000),
        "cross_attn_timestep_scale_multiplier": t.get("av_ca_timestep_scale_multiplier", 1),
        "gated_attn": gated,
        "audio_gated_attn": gated,
        "cross_attn_mod": cross_mod,
        "audio_cross_attn_mod": cross_mod,
        "use_prompt_embeddings": not t.get("caption_proj_before_connector", False),
        # The official transformer always supports STG (perturbed attention): diffusers needs the flag.
        "perturbed_attn": True,
    }


def _connectors_to_diffusers(t: dict[str, Any], text_proj_in_factor: int) -> dict[str, Any]:
    heads = t.get("connector_num_attention_heads", 30)
    head_dim = t.get("connector_attention_head_dim", 128)
    layers = t.get("connector_num_layers", 2)
    gated = bool(t.get("connector_apply_gated_attention", False))
    config = {
        "caption_channels": t.get("caption_channels", 3840),
        "text_proj_in_factor": text_proj_in_factor,
        "video_connector_num_attention_heads": heads,
        "video_connector_attention_head_dim": head_dim,
        "video_connector_num_layers": layers,
        "video_connector_num_learnable_registers": OFFICIAL_REGISTERS,
        "video_gated_attn": gated,
        "audio_connector_num_attention_heads": t.get("audio_connector_num_attention_heads", heads),
        "audio_connector_attention_head_dim": t.get("audio_connector_attention_head_dim", head_dim),
        "audio_connector_num_layers": t.get("audio_connector_num_layers", layers),
        "audio_connector_num_learnable_registers": OFFICIAL_REGISTERS,
        "audio_gated_attn": gated,
        "connector_rope_base_seq_len": t.get("connector_positional_embedding_max_pos", [1])[0],
        "rope_theta": t.get("positional_embedding_theta", 10000.0),
        "rope_double_precision": t.get("frequencies_precision", False) == "float64",
        "rope_type": t.get("rope_type", "interleaved"),
    }
    if t.get("caption_proj_before_connector", False):
        config.update(
            per_modality_projections=True,
            video_hidden_dim=t["num_attention_heads"] * t["attention_head_dim"],
            audio_hidden_dim=t["audio_num_attention_heads"] * t["audio_attention_head_dim"],
            proj_bias=True,
        )
    return config


def _vae_to_diffusers(v: dict[str, Any]) -> dict[str, Any]:
    latent = v.get("latent_channels", 128)
    encoder = [_block(b) for b in v.get("encoder_blocks", [])]
    decoder = [_block(b) for b in v.get("decoder_blocks", [])]
    res = [params["num_layers"] for name, params in encoder if name == "res_x"]
    downs = [(name, params) for name, params in encoder if name != "res_x"]
    inverse = {value: key for key, value in DOWNSAMPLE_BLOCKS.items()}
    channels, block_out = latent, []
    for name, params in downs:
        if name not in inverse:
            raise CheckpointError(f"official video VAE encoder block {name!r} has no diffusers equivalent")
        channels = channels * params.get("multiplier", 2)
        block_out.append(channels)
    dec_res = [params for name, params in decoder if name == "res_x"]
    ups = [(name, params) for name, params in decoder if name != "res_x"]
    up_inverse = {value: key for key, value in UPSAMPLE_BLOCKS.items()}
    base = v.get("decoder_base_channels", 128)
    return {
        "in_channels": v.get("in_channels", 3),
        "out_channels": v.get("out_channels", 3),
        "latent_channels": latent,
        "block_out_channels": tuple(block_out),
        "down_block_types": ("LTX2VideoDownBlock3D",) * len(downs),
        "layers_per_block": tuple(res),
        "downsample_type": tuple(inverse[name] for name, _ in downs),
        "spatio_temporal_scaling": (True,) * len(downs),
        "decoder_block_out_channels": tuple(base * 2 ** (i + 1) for i in range(len(ups))),
        "decoder_layers_per_block": tuple(p["num_layers"] for p in dec_res),
        "decoder_spatio_temporal_scaling": (True,) * len(ups),
        "decoder_inject_noise": tuple(bool(p.get("inject_noise", False)) for p in dec_res),
        "upsample_type": tuple(up_inverse[name] for name, _ in ups),
        "upsample_residual": tuple(bool(p.get("residual", False)) for _, p in ups),
        "upsample_factor": tuple(p.get("multiplier", 1) for _, p in ups),
        "timestep_conditioning": v.get("timestep_conditioning", True),
        "patch_size": v.get("patch_size", 4),
        "patch_size_t": 1,
        "encoder_causal": True,
        "decoder_causal": v.get("causal_decoder", False),
        "encoder_spatial_padding_mode": v.get("spatial_padding_mode", "zeros"),
        "decoder_spatial_padding_mode": v.get("spatial_padding_mode", "reflect"),
        "spatial_compression_ratio": 32,
        "temporal_compression_ratio": 8,
    }


def _block(entry: list[Any]) -> tuple[str, dict[str, Any]]:
    name, params = entry
    return name, ({"num_layers": params} if isinstance(params, int) else dict(params))


def _audio_vae_to_diffusers(a: dict[str, Any]) -> dict[str, Any]:
    params = a.get("model", {}).get("params", {})
    dd = params.get("ddconfig", {})
    stft = a.get("preprocessing", {}).get("stft", {})
    mel = a.get("preprocessing", {}).get("mel", {})
    mel_bins = dd.get("mel_bins") or mel.get("n_mel_channels") or a.get("variables", {}).get("mel_bins")
    attn = dd.get("attn_resolutions", [8, 16, 32])
    return {
        "base_channels": dd.get("ch", 128),
        "output_channels": dd.get("out_ch", 2),
        "ch_mult": tuple(dd.get("ch_mult", (1, 2, 4))),
        "num_res_blocks": dd.get("num_res_blocks", 2),
        "attn_resolutions": tuple(attn) if attn else None,
        "in_channels": dd.get("in_channels", 2),
        "resolution": dd.get("resolution", 256),
        "latent_channels": dd.get("z_channels", 8),
        "norm_type": dd.get("norm_type", "pixel"),
        "causality_axis": dd.get("causality_axis", "height"),
        "dropout": dd.get("dropout", 0.0),
        "mid_block_add_attention": dd.get("mid_block_add_attention", True),
        "sample_rate": params.get("sampling_rate", 16000),
        "mel_hop_length": stft.get("hop_length", 160),
        "is_causal": stft.get("causal", True),
        "mel_bins": mel_bins,
        "double_z": dd.get("double_z", True),
    }


def _generator_to_diffusers(c: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    amp = c.get("resblock", "1") == "AMP1"
    final = "tanh" if c.get("use_tanh_at_final", True) else "clamp"
    return {
        f"{prefix}in_channels": OFFICIAL_VOCODER_IN_CHANNELS,
        f"{prefix}hidden_channels": c.get("upsample_initial_channel", 1024),
        f"{prefix}out_channels": 2,
        f"{prefix}upsample_kernel_sizes": list(c.get("upsample_kernel_sizes", [16, 15, 8, 4, 4])),
        f"{prefix}upsample_factors": list(c.get("upsample_rates", [6, 5, 2, 2, 2])),
        f"{prefix}resnet_kernel_sizes": list(c.get("resblock_kernel_sizes", [3, 7, 11])),
        f"{prefix}resnet_dilations": [list(d) for d in c.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)],
        f"{prefix}act_fn": c.get("activation", "snakebeta") if amp else "leaky_relu",
        f"{prefix}antialias": amp,
        f"{prefix}final_bias": c.get("use_bias_at_final", True),
        f"{prefix}final_act_fn": final,
    }


def _vocoder_to_diffusers(c: dict[str, Any]) -> dict[str, Any]:
    if "bwe" not in c:
        config = _generator_to_diffusers(c)
        config["output_sampling_rate"] = c.get("output_sampling_rate", 24000)
        return config
    bwe = c["bwe"]
    config = _generator_to_diffusers(c.get("vocoder", {}))
    generator = _generator_to_diffusers(bwe, "bwe_")
    # The bandwidth extender's generator runs without its final activation (official apply_final_activation=False).
    generator["bwe_final_act_fn"] = None
    config.update(generator)
    config.update(
        filter_length=bwe["n_fft"],
        hop_length=bwe["hop_length"],
        window_length=bwe["n_fft"],
        num_mel_channels=bwe["num_mels"],
        input_sampling_rate=bwe["input_sampling_rate"],
        output_sampling_rate=bwe["output_sampling_rate"],
    )
    return config


# ----------------------------------------------------------------------------------------- diffusers -> official


def to_official(configs: dict[str, dict[str, Any]], version: str) -> dict[str, Any]:
    """The official single-file config for diffusers component configs; refuses what the official code
    cannot express (its fixed register count, vocoder input width, shared gating flags)."""
    t, c = configs["transformer"], configs["connectors"]
    _require(
        c.get("video_connector_num_learnable_registers") == OFFICIAL_REGISTERS, "connector registers", 128
    )
    _require(
        c.get("audio_connector_num_learnable_registers") == OFFICIAL_REGISTERS, "connector registers", 128
    )
    _require(
        bool(t.get("gated_attn")) == bool(t.get("audio_gated_attn")), "audio_gated_attn", t.get("gated_attn")
    )
    _require(bool(c.get("video_gated_attn")) == bool(c.get("audio_gated_attn")), "connector gating", "shared")
    transformer = dict(FIXED_TRANSFORMER_VALUES)
    transformer.update(
        num_attention_heads=t["num_attention_heads"],
        attention_head_dim=t["attention_head_dim"],
        in_channels=t["in_channels"],
        out_channels=t.get("out_channels") or t["in_channels"],
        num_layers=t["num_layers"],
        cross_attention_dim=t["cross_attention_dim"],
        norm_eps=t.get("norm_eps", 1e-6),
        caption_channels=t["caption_channels"],
        positional_embedding_theta=t.get("rope_theta", 10000.0),
        positional_embedding_max_pos=[
            t.get("pos_embed_max_pos", 20),
            t.get("base_height", 2048),
            t.get("base_width", 2048),
        ],
        timestep_scale_multiplier=t.get("timestep_scale_multiplier", 1000),
        audio_num_attention_heads=t["audio_num_attention_heads"],
        audio_attention_head_dim=t["audio_attention_head_dim"],
        audio_in_channels=t["audio_in_channels"],
        audio_out_channels=t.get("audio_out_channels") or t["audio_in_channels"],
        audio_cross_attention_dim=t["audio_cross_attention_dim"],
        audio_positional_embedding_max_pos=[t.get("audio_pos_embed_max_pos", 20)],
        av_ca_timestep_scale_multiplier=t.get("cross_attn_timestep_scale_multiplier", 1000),
        rope_type=t.get("rope_type", "interleaved"),
        frequencies_precision="float64" if t.get("rope_double_precision", True) else "float32",
        apply_gated_attention=bool(t.get("gated_attn", False)),
        cross_attention_adaln=bool(t.get("cross_attn_mod", False)),
        connector_num_attention_heads=c["video_connector_num_attention_heads"],
        connector_attention_head_dim=c["video_connector_attention_head_dim"],
        connector_num_layers=c["video_connector_num_layers"],
        audio_connector_num_attention_heads=c["audio_connector_num_attention_heads"],
        audio_connector_attention_head_dim=c["audio_connector_attention_head_dim"],
        audio_connector_num_layers=c["audio_connector_num_layers"],
        connector_positional_embedding_max_pos=[c.get("connector_rope_base_seq_len", 4096)],
        connector_apply_gated_attention=bool(c.get("video_gated_attn", False)),
    )
    if c.get("per_modality_projections"):
        transformer.update(V2_TEXT_KEYS)
    return {
        "model_version": version,
        "transformer": transformer,
        "vae": _vae_to_official(configs["vae"]),
        "audio_vae": _audio_vae_to_official(configs["audio_vae"]),
        "vocoder": _vocoder_to_official(configs["vocoder"]),
    }


def _require(ok: bool, name: str, expected: Any) -> None:
    if not ok:
        raise CheckpointError(
            f"this diffusers checkpoint cannot be written in the official layout: {name} must be {expected}"
        )


def _vae_to_official(v: dict[str, Any]) -> dict[str, Any]:
    channels, encoder = v["latent_channels"], []
    layers, downs, block_out = v["layers_per_block"], v["downsample_type"], v["block_out_channels"]
    for i, kind in enumerate(downs):
        multiplier = block_out[i] // channels
        _require(multiplier * channels == block_out[i], "block_out_channels", "integer multiples")
        encoder += [
            ["res_x", {"num_layers": layers[i]}],
            [DOWNSAMPLE_BLOCKS[kind], {"multiplier": multiplier}],
        ]
        channels = block_out[i]
    encoder.append(["res_x", {"num_layers": layers[len(downs)]}])
    dec_out, dec_layers = v["decoder_block_out_channels"], v["decoder_layers_per_block"]
    factors, residual = (
        v.get("upsample_factor", (2,) * len(dec_out)),
        v.get("upsample_residual", (True,) * len(dec_out)),
    )
    kinds = v.get("upsample_type", ("spatiotemporal",) * len(dec_out))
    noise = v.get("decoder_inject_noise", (False,) * (len(dec_out) + 1))
    base = dec_out[-1] // 8
    _require(
        tuple(dec_out) == tuple(base * 2 ** (i + 1) for i in range(len(dec_out))),
        "decoder channels",
        "base x 2^k",
    )
    decoder = []
    for i in range(len(dec_out)):
        decoder.append(["res_x", {"num_layers": dec_layers[i], "inject_noise": bool(noise[i])}])
        decoder.append([UPSAMPLE_BLOCKS[kinds[i]], {"residual": bool(residual[i]), "multiplier": factors[i]}])
    decoder.append(
        ["res_x", {"num_layers": dec_layers[len(dec_out)], "inject_noise": bool(noise[len(dec_out)])}]
    )
    _require(
        v.get("encoder_spatial_padding_mode", "zeros") == "zeros", "encoder_spatial_padding_mode", "zeros"
    )
    _require(
        v.get("decoder_spatial_padding_mode", "reflect") == "reflect",
        "decoder_spatial_padding_mode",
        "reflect",
    )
    return {
        "dims": 3,
        "in_channels": v.get("in_channels", 3),
        "out_channels": v.get("out_channels", 3),
        "latent_channels": v["latent_channels"],
        "patch_size": v.get("patch_size", 4),
        "encoder_blocks": encoder,
        "decoder_blocks": decoder,
        "decoder_base_channels": base,
        "norm_layer": "pixel_norm",
        "latent_log_var": "uniform",
        "causal_decoder": bool(v.get("decoder_causal", False)),
        "timestep_conditioning": bool(v.get("timestep_conditioning", False)),
    }


def _audio_vae_to_official(a: dict[str, Any]) -> dict[str, Any]:
    ddconfig = {
        "ch": a["base_channels"],
        "out_ch": a.get("output_channels", 2),
        "ch_mult": list(a.get("ch_mult", (1, 2, 4))),
        "num_res_blocks": a.get("num_res_blocks", 2),
        "attn_resolutions": list(a.get("attn_resolutions") or []),
        "in_channels": a.get("in_channels", 2),
        "resolution": a.get("resolution", 256),
        "z_channels": a["latent_channels"],
        "norm_type": a.get("norm_type", "pixel"),
        "causality_axis": a.get("causality_axis", "height"),
        "dropout": a.get("dropout", 0.0),
        "mid_block_add_attention": bool(a.get("mid_block_add_attention", False)),
        "double_z": a.get("double_z", True),
        "mel_bins": a.get("mel_bins", 64),
    }
    return {
        "model": {"params": {"sampling_rate": a.get("sample_rate", 16000), "ddconfig": ddconfig}},
        "preprocessing": {
            "stft": {"hop_length": a.get("mel_hop_length", 160), "causal": a.get("is_causal", True)}
        },
    }


def _generator_to_official(v: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    _require(v.get(f"{prefix}in_channels", 128) == OFFICIAL_VOCODER_IN_CHANNELS, "vocoder in_channels", 128)
    act = v.get(f"{prefix}act_fn", "leaky_relu")
    config = {
        "resblock_kernel_sizes": list(v[f"{prefix}resnet_kernel_sizes"]),
        "upsample_rates": list(v[f"{prefix}upsample_factors"]),
        "upsample_kernel_sizes": list(v[f"{prefix}upsample_kernel_sizes"]),
        "resblock_dilation_sizes": [list(d) for d in v[f"{prefix}resnet_dilations"]],
        "upsample_initial_channel": v[f"{prefix}hidden_channels"],
        "resblock": "1" if act == "leaky_relu" else "AMP1",
        "stereo": True,
        "use_tanh_at_final": v.get(f"{prefix}final_act_fn", "tanh") == "tanh",
        "use_bias_at_final": bool(v.get(f"{prefix}final_bias", True)),
    }
    if act != "leaky_relu":
        config["activation"] = act
    return config


def _vocoder_to_official(v: dict[str, Any]) -> dict[str, Any]:
    if "bwe_hidden_channels" not in v:
        config = _generator_to_official(v)
        config["output_sampling_rate"] = v.get("output_sampling_rate", 24000)
        return config
    _require(v.get("filter_length") == v.get("window_length"), "window_length", "filter_length")
    bwe = _generator_to_official(v, "bwe_")
    bwe.update(
        input_sampling_rate=v.get("input_sampling_rate", 16000),
        output_sampling_rate=v.get("output_sampling_rate", 48000),
        n_fft=v["filter_length"],
        hop_length=v["hop_length"],
        num_mels=v["num_mel_channels"],
    )
    return {"vocoder": _generator_to_official(v), "bwe": bwe}
