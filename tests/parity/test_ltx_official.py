"""ditto vs the official ltx-core / ltx-pipelines 1.0.0 on tiny random weights in the official layout."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from ltx_official_reference import official_one_stage

from ditto.engine import Engine
from ditto.pipelines.ltx2.latents import (
    LatentShape,
    denormalize_audio_tokens,
    denormalize_video,
    official_noise,
    pack_audio,
    unpack_audio,
)
from ditto.sampling import res2s
from ditto.sampling.schedules import ltx2_sigmas

from helpers.metrics import max_abs
from helpers.thresholds import check_official

VERSIONS = ("2.0", "2.3")
REQUEST = dict(
    prompt="a red fox in the snow",
    negative_prompt="blurry",
    height=64,
    width=64,
    num_frames=9,
    frame_rate=24.0,
    num_inference_steps=2,
    guidance_scale=3.0,
    audio_guidance_scale=7.0,
    stg_scale=1.0,
    modality_scale=3.0,
    guidance_rescale=0.7,
    spatio_temporal_guidance_blocks=[1],
    seed=7,
)


@pytest.fixture(scope="module")
def engines(official_checkpoints):
    return {
        v: Engine.from_pretrained(path, text_encoder=gemma, dtype="float32")
        for v, (path, gemma) in official_checkpoints.items()
    }


def test_roundtrip_and_official_loader_takes_every_key(official_checkpoints, tmp_path):
    from safetensors.torch import load_file

    from ditto.loading.convert_cli import folder_to_official, official_to_folder

    for version, (path, gemma) in official_checkpoints.items():
        folder, back = tmp_path / f"d{version}", tmp_path / f"o{version}.safetensors"
        official_to_folder(path, folder)
        folder_to_official(folder, back)
        a, b = load_file(str(path)), load_file(str(back))
        assert sorted(a) == sorted(b)
        check_official("roundtrip", max(max_abs(a[k], b[k]) for k in a))
        _diffusers_classes_load(folder)
        _official_builders_take_every_key(path, gemma)


def _diffusers_classes_load(folder) -> None:
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    classes = dict(
        transformer=LTX2VideoTransformer3DModel,
        connectors=LTX2TextConnectors,
        vae=AutoencoderKLLTX2Video,
        audio_vae=AutoencoderKLLTX2Audio,
    )
    bwe = "LTX2VocoderWithBWE" in (folder / "vocoder" / "config.json").read_text()
    classes["vocoder"] = LTX2VocoderWithBWE if bwe else LTX2Vocoder
    for name, cls in classes.items():
        _, info = cls.from_pretrained(str(folder / name), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], (name, info)


def _official_builders_take_every_key(path, gemma) -> None:
    import official_shims

    ledger = official_shims.official_ledger(path, gemma, torch.float32, "cpu")
    names = ("transformer", "vae_decoder", "vae_encoder", "audio_encoder", "audio_decoder", "vocoder")
    for name in (*names, "embeddings_processor"):
        builder = getattr(ledger, f"{name}_builder")
        model = builder.meta_model(builder.model_config(), builder.module_ops)
        sd = builder.load_sd(
            [str(path)], registry=builder.registry, device=None, sd_ops=builder.model_sd_ops
        ).sd
        expected = model.state_dict()
        found = {
            k for k in sd if not k.startswith(("video_embeddings_connector", "audio_embeddings_connector"))
        }
        assert set(expected) == found, (name, sorted(set(expected) ^ found)[:8])
        assert all(expected[k].shape == sd[k].shape for k in expected), name


@pytest.mark.parametrize("steps", [1, 2, 3, 30, 40])
def test_sigmas(steps):
    """The official schedule to the bit, 1 step included (official [0.1, 0]: the stretch divides the first
    sigma's float32 distance to 1 by itself; diffusers gives NaN there)."""
    import official_shims

    official_shims.install()
    from ltx_core.components.schedulers import LTX2Scheduler

    check_official("sigmas", max_abs(ltx2_sigmas(steps), LTX2Scheduler().execute(steps=steps).float()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_initial_noise(dtype):
    """ditto's draw against the official GaussianNoiser on the official latent states (video, then audio,
    one generator, in the model dtype), as noise_video_state / noise_audio_state apply it. ditto keeps the
    drawn values in float32 (exactly: a widening), for its float32 Euler state."""
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_official_reference import official_states

    shape = LatentShape(
        frames=2, height=2, width=3, channels=16, audio_frames=9, audio_channels=4, audio_mel_bins=16
    )
    video, audio = official_noise(1, shape, torch.Generator().manual_seed(5), dtype, torch.device("cpu"))
    states = official_states(torch.zeros(1, 16, 2, 2, 3), torch.zeros(1, 4, 9, 16), fps=24.0)
    noiser = GaussianNoiser(generator=torch.Generator().manual_seed(5))
    reference = [noiser(replace(state, latent=state.latent.to(dtype))).latent for state in states]
    assert reference[0].dtype == dtype
    check_official("initial_noise", max(max_abs(video, reference[0]), max_abs(audio, reference[1])))


@pytest.mark.parametrize("h", [0.0, 1e-12, 1e-3, 0.3, 0.7, 2.5])
def test_res2s_coefficients(h):
    from ltx_pipelines.utils.res2s import get_res2s_coefficients

    ours, theirs = res2s.res2s_coefficients(h), get_res2s_coefficients(h, {})
    check_official("res2s_coefficients", max(abs(a - b) for a, b in zip(ours, theirs)))


def test_res2s_loop_with_a_shared_denoiser():
    """The official loop and ditto's on the same toy denoiser: noise draws, coefficients, bong, SDE steps."""
    from dataclasses import dataclass

    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_pipelines.utils.samplers import res2s_audio_video_denoising_loop

    @dataclass
    class State:
        latent: torch.Tensor
        denoise_mask: torch.Tensor
        clean_latent: torch.Tensor

    def toy(x, sigma):
        return torch.tanh(x.float() * 0.5) * (1 - float(sigma))

    g = torch.Generator().manual_seed(3)
    video, audio = torch.randn(1, 12, 16, generator=g), torch.randn(1, 9, 64, generator=g)
    sigmas = ltx2_sigmas(4)
    states = [State(x, torch.ones(1, x.shape[1], 1), torch.zeros_like(x)) for x in (video, audio)]

    def official_denoise(video_state, audio_state, sigmas, step_index):
        return toy(video_state.latent, sigmas[step_index]), toy(audio_state.latent, sigmas[step_index])

    ref_v, ref_a = res2s_audio_video_denoising_loop(
        sigmas, states[0], states[1], Res2sDiffusionStep(), official_denoise, model_dtype=torch.float32
    )
    ours = res2s.Res2s(torch.float32, torch.device("cpu")).run(
        [video, audio], sigmas, lambda latents, sigma, at: [toy(x, sigma) for x in latents]
    )
    check_official("res2s_loop", max(max_abs(ours[0], ref_v.latent), max_abs(ours[1], ref_a.latent)))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("sampler", ["euler", "res2s"])
def test_one_stage_run(engines, official_checkpoints, version, sampler):
    path, gemma = official_checkpoints[version]
    ref_video, ref_audio, ref_wave = official_one_stage(path, gemma, REQUEST, sampler)
    engine = engines[version]
    result = engine.generate(**REQUEST, sampler=sampler, output_type="latent")
    reference = official_latents_as_ditto(engine, ref_video, ref_audio)
    check_official("one_stage_video_latents", max_abs(result.latents["video"], reference["video"]))
    check_official("one_stage_audio_latents", max_abs(result.latents["audio"], reference["audio"]))
    if sampler == "euler":
        waveform = engine.generate(**REQUEST, sampler=sampler).audio
        check_official(
            "one_stage_audio_waveform",
            max_abs(torch.as_tensor(waveform), ref_wave.waveform.reshape(waveform.shape)),
        )


def official_latents_as_ditto(engine, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
    """The official normalised latent states as ditto returns latents: raw VAE space, video [B,C,F,H,W],
    audio [B,C,L,M] (the engine's VAEs hold the same statistics as the official file)."""
    components = engine.pipeline.components
    shape = LatentShape(0, 0, 0, 0, audio.shape[2], audio.shape[1], audio.shape[-1])
    return {
        "video": denormalize_video(video, components.vae),
        "audio": unpack_audio(denormalize_audio_tokens(pack_audio(audio), components.audio_vae), shape),
    }
