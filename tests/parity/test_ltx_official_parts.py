"""The official ltx-core transformer and guided step vs ditto's, on identical inputs (tiny official files).

Each side gets the same raw latent grid and builds its own tokens and positions from it (the official
VideoLatentTools / AudioLatentTools; ditto's pack_* and rope coordinates), so these tests also prove the
position grids and the token order agree.
"""

from __future__ import annotations

import pytest
import torch
from ltx_official_reference import (
    official_guided_step,
    official_perturbations,
    official_states,
    official_transformer,
)

from ditto.pipelines.ltx2.denoise import DenoiseInputs, Denoiser
from ditto.pipelines.ltx2.latents import LatentShape, pack_audio, pack_video
from ditto.pipelines.ltx2.text import PromptEmbeddings
from ditto.sampling.guidance import GuiderParams

from helpers.metrics import max_abs
from helpers.thresholds import check_official

VERSIONS = ("2.0", "2.3")
FPS = 24.0
TEXT_TOKENS = 8
STG_BLOCKS = [1]  # the tiny transformer has 2 blocks: perturb the last, as the one-stage test does
# A perturbed pass must move the outputs by more than this, or the comparison would prove nothing.
MOVES = 1e-3
# The one-stage test's guidance: CFG 3 / audio CFG 7, STG 1, modality 3, rescale 0.7.
GUIDANCE = {
    "video": dict(cfg_scale=3.0, stg_scale=1.0, modality_scale=3.0, rescale_scale=0.7),
    "audio": dict(cfg_scale=7.0, stg_scale=1.0, modality_scale=3.0, rescale_scale=0.7),
}


@pytest.fixture(scope="module")
def models(official_checkpoints):
    """version -> (official X0Model, ditto components), both loaded from the same tiny official file."""
    from ditto.pipelines.ltx2.official import load_official_components

    cpu = torch.device("cpu")
    return {
        version: (
            official_transformer(path, gemma),
            load_official_components(path, gemma, cpu, torch.float32),
        )
        for version, (path, gemma) in official_checkpoints.items()
    }


def latent_shape(components, frames=2, height=2, width=3, audio_frames=9) -> LatentShape:
    audio_vae = components.audio_vae
    return LatentShape(
        frames=frames,
        height=height,
        width=width,
        channels=components.vae.config.latent_channels,
        audio_frames=audio_frames,
        audio_channels=audio_vae.config.latent_channels,
        audio_mel_bins=audio_vae.config.mel_bins // audio_vae.mel_compression_ratio,
    )


def context_widths(official) -> tuple[int, int]:
    """Text context widths the transformer takes: the caption projection's input (2.0), else the
    stream widths (2.3 projects in the text connectors)."""
    model = official.velocity_model
    if getattr(model, "caption_projection", None) is not None:
        return (
            model.caption_projection.linear_1.in_features,
            model.audio_caption_projection.linear_1.in_features,
        )
    return model.inner_dim, model.audio_inner_dim


def raw_latents(shape: LatentShape, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Raw grids as the VAEs lay them out: video [B,C,F,H,W], audio [B,C,L,M]."""
    video = torch.randn(batch, shape.channels, shape.frames, shape.height, shape.width, generator=generator)
    audio = torch.randn(
        batch, shape.audio_channels, shape.audio_frames, shape.audio_mel_bins, generator=generator
    )
    return video, audio


def text_mask(batch: int, padding: list[int]) -> torch.Tensor:
    """Left-padded keep-mask (1 = token), as the Gemma tokenizer pads; a different padding per sample."""
    mask = torch.ones(batch, TEXT_TOKENS, dtype=torch.long)
    for row, pad in enumerate(padding):
        mask[row, :pad] = 0
    return mask


# --- 1. one transformer forward -------------------------------------------------------------------------


def forward_inputs(official, shape: LatentShape, seed: int = 11) -> dict:
    """Batch 2 so per-sample sigmas and masks are exercised; per-token timesteps include 0 (kept tokens)."""
    g = torch.Generator().manual_seed(seed)
    batch = 2
    video, audio = raw_latents(shape, batch, g)
    video_mask = torch.rand(batch, shape.video_tokens, generator=g)
    video_mask[:, : shape.height * shape.width] = 0.0  # a kept first frame, as image conditioning makes it
    video_width, audio_width = context_widths(official)
    return dict(
        video=video,
        audio=audio,
        video_mask=video_mask,
        audio_mask=torch.rand(batch, shape.audio_frames, generator=g),
        # Different video and audio sigmas: the cross-modal modulation must follow the other one's.
        video_sigma=torch.tensor([0.9, 0.4]),
        audio_sigma=torch.tensor([0.7, 0.2]),
        video_context=torch.randn(batch, TEXT_TOKENS, video_width, generator=g),
        audio_context=torch.randn(batch, TEXT_TOKENS, audio_width, generator=g),
        video_text_mask=text_mask(batch, [0, 3]),
        audio_text_mask=text_mask(batch, [2, 5]),
    )


def official_forward(official, x: dict, case: str) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """The LTXModel on Modality inputs built as modality_from_latent_state builds them (timesteps =
    denoise mask * sigma), with the context masks given; returns (video, audio, positions)."""
    from ltx_core.model.transformer import Modality

    video_state, audio_state = official_states(x["video"], x["audio"], FPS)

    def modality(state, name: str) -> Modality:
        sigma = x[f"{name}_sigma"]
        return Modality(
            latent=state.latent,
            sigma=sigma,
            timesteps=x[f"{name}_mask"][..., None] * sigma[:, None, None],
            positions=state.positions,
            context=x[f"{name}_context"],
            context_mask=x[f"{name}_text_mask"],
        )

    perturbations = official_perturbations(x["video"].shape[0], case, STG_BLOCKS)
    with torch.no_grad():
        video, audio = official.velocity_model(
            modality(video_state, "video"), modality(audio_state, "audio"), perturbations
        )
    return video, audio, (video_state.positions, audio_state.positions)


def ditto_forward(transformer, shape: LatentShape, x: dict, case: str) -> tuple[torch.Tensor, ...]:
    """ditto's transformer called as denoise.Denoiser calls it: tokens from pack_*, coordinates from
    its own rope, timesteps and sigmas already scaled by 1000."""
    batch = x["video"].shape[0]
    video_coords = transformer.rope.prepare_video_coords(
        batch, shape.frames, shape.height, shape.width, "cpu", fps=FPS
    )
    audio_coords = transformer.audio_rope.prepare_audio_coords(batch, shape.audio_frames, "cpu")
    perturbation = {
        "plain": {},
        "stg": dict(spatio_temporal_guidance_blocks=STG_BLOCKS),  # diffusers' keyword: both modalities
        "stg_video": dict(video_stg_blocks=STG_BLOCKS),
        "stg_audio": dict(audio_stg_blocks=STG_BLOCKS),
        "isolated": dict(isolate_modalities=True),
        "no_v2a": dict(skip_v2a_cross_attn=True),
    }[case]
    with torch.no_grad():
        video, audio = transformer(
            hidden_states=pack_video(x["video"]),
            audio_hidden_states=pack_audio(x["audio"]),
            encoder_hidden_states=x["video_context"],
            audio_encoder_hidden_states=x["audio_context"],
            timestep=(x["video_mask"] * x["video_sigma"][:, None]) * 1000,
            audio_timestep=(x["audio_mask"] * x["audio_sigma"][:, None]) * 1000,
            sigma=x["video_sigma"] * 1000,
            audio_sigma=x["audio_sigma"] * 1000,
            encoder_attention_mask=x["video_text_mask"],
            audio_encoder_attention_mask=x["audio_text_mask"],
            video_coords=video_coords,
            audio_coords=audio_coords,
            use_cross_timestep=True,
            **perturbation,
        )
    return video, audio, (video_coords, audio_coords)


@pytest.mark.parametrize("case", ["plain", "stg", "stg_video", "stg_audio", "isolated", "no_v2a"])
@pytest.mark.parametrize("version", VERSIONS)
def test_transformer_forward(models, version, case):
    official, components = models[version]
    shape = latent_shape(components)
    x = forward_inputs(official, shape)
    ref_video, ref_audio, ref_positions = official_forward(official, x, case)
    video, audio, positions = ditto_forward(components.transformer, shape, x, case)
    check_official("positions", max(max_abs(a, b) for a, b in zip(positions, ref_positions)))
    check_official("transformer_forward_video", max_abs(video, ref_video))
    check_official("transformer_forward_audio", max_abs(audio, ref_audio))
    if case != "plain":
        plain_video, plain_audio, _ = ditto_forward(components.transformer, shape, x, "plain")
        assert max_abs(video, plain_video) > MOVES, f"{case} does not change the video output"
        assert max_abs(audio, plain_audio) > MOVES, f"{case} does not change the audio output"


# --- 2. one guided step -----------------------------------------------------------------------------------


def step_inputs(official, shape: LatentShape, seed: int = 12) -> dict:
    """Batch 1 (where the official whole-batch rescale std and ditto's per-sample one agree)."""
    g = torch.Generator().manual_seed(seed)
    video, audio = raw_latents(shape, 1, g)
    video_width, audio_width = context_widths(official)
    contexts = {}
    for sign in ("", "negative_"):
        contexts[f"{sign}video"] = torch.randn(1, TEXT_TOKENS, video_width, generator=g)
        contexts[f"{sign}audio"] = torch.randn(1, TEXT_TOKENS, audio_width, generator=g)
    return dict(video=video, audio=audio, contexts=contexts)


def ditto_guided_step(components, shape: LatentShape, x: dict, sigmas, index: int, guidance: dict):
    """(guided x0 video, guided x0 audio, stepped video, stepped audio) from ditto's Denoiser."""
    contexts = x["contexts"]
    ones = torch.ones(1, TEXT_TOKENS, dtype=torch.long)  # the official loop passes no context mask

    def guider(name: str) -> GuiderParams:
        p = guidance[name]
        blocks = tuple(STG_BLOCKS)
        return GuiderParams(p["cfg_scale"], p["stg_scale"], p["modality_scale"], p["rescale_scale"], blocks)

    inputs = DenoiseInputs(
        video=pack_video(x["video"]),
        audio=pack_audio(x["audio"]),
        positive=PromptEmbeddings(contexts["video"], contexts["audio"], ones),
        negative=PromptEmbeddings(contexts["negative_video"], contexts["negative_audio"], ones),
        sigmas=sigmas,
        shape=shape,
        frame_rate=FPS,
        video_guider=guider("video"),
        audio_guider=guider("audio"),
    )
    denoiser = Denoiser(components.transformer, torch.float32, inputs)
    with torch.no_grad():
        x0 = denoiser.guided_x0(inputs.video, inputs.audio, sigmas[index], denoiser.at(index))
        stepped = denoiser.step(inputs.video, inputs.audio, index)
    return (*x0, *stepped)


# One-modality STG: the official guider skips only the self-attention of the modality whose STG scale is
# non-zero (docs/parity.md); the full case has both.
STEP_CASES = {
    "full": GUIDANCE,
    "video_stg_only": {"video": GUIDANCE["video"], "audio": dict(GUIDANCE["audio"], stg_scale=0.0)},
    "audio_stg_only": {"video": dict(GUIDANCE["video"], stg_scale=0.0), "audio": GUIDANCE["audio"]},
}


@pytest.mark.parametrize("case", sorted(STEP_CASES))
@pytest.mark.parametrize("version", VERSIONS)
def test_one_guided_step(models, version, case):
    from ltx_core.components.schedulers import LTX2Scheduler

    official, components = models[version]
    shape = latent_shape(components)
    x = step_inputs(official, shape)
    guidance = STEP_CASES[case]
    # The official schedule, given to both sides; a sigma strictly inside (0, 1).
    sigmas, index = LTX2Scheduler().execute(steps=3), 1
    guiders = {name: dict(params, stg_blocks=STG_BLOCKS) for name, params in guidance.items()}
    with torch.no_grad():
        states = official_states(x["video"], x["audio"], FPS)
        ref = official_guided_step(official, states, x["contexts"], guiders, sigmas, index)
    ours = ditto_guided_step(components, shape, x, sigmas, index, guidance)
    names = ("guided_x0_video", "guided_x0_audio", "guided_step_video", "guided_step_audio")
    for name, a, b in zip(names, ours, ref):
        check_official(name, max_abs(a, b))
    # Guidance must matter: with every scale neutral the guided x0 is the plain conditional one.
    neutral = dict(cfg_scale=1.0, stg_scale=0.0, modality_scale=1.0, rescale_scale=0.0)
    plain = ditto_guided_step(components, shape, x, sigmas, index, {"video": neutral, "audio": neutral})
    assert max_abs(ours[0], plain[0]) > MOVES and max_abs(ours[1], plain[1]) > MOVES
    if case != "full":
        # ... and so must which modality STG perturbs: both perturbed moves the one-modality result.
        both = dict(guidance, **{k: dict(v, stg_scale=1.0) for k, v in guidance.items()})
        full = ditto_guided_step(components, shape, x, sigmas, index, both)
        off = "audio" if case == "video_stg_only" else "video"
        assert max_abs(ours[names.index(f"guided_x0_{off}")], full[names.index(f"guided_x0_{off}")]) > MOVES
