"""ditto's LTX2Transformer against diffusers' LTX2VideoTransformer3DModel on tiny random weights (fp32, CPU)."""

from __future__ import annotations

import inspect

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import LTX2VideoTransformer3DModel  # noqa: E402

from ditto.models.ltx2 import LTX2Transformer  # noqa: E402

TOLERANCE = 1e-5
BATCH, FRAMES, HEIGHT, WIDTH, AUDIO_FRAMES, TEXT = 2, 2, 3, 4, 5, 7

TINY = dict(
    in_channels=8,
    out_channels=8,
    num_attention_heads=2,
    attention_head_dim=16,
    cross_attention_dim=32,
    audio_in_channels=4,
    audio_out_channels=4,
    audio_num_attention_heads=2,
    audio_attention_head_dim=8,
    audio_cross_attention_dim=16,
    num_layers=2,
    caption_channels=12,
)
# The flags the LTX-2.3 checkpoint turns on (diffusers' conversion script, version "2.3").
LTX23 = dict(
    gated_attn=True,
    cross_attn_mod=True,
    audio_gated_attn=True,
    audio_cross_attn_mod=True,
    use_prompt_embeddings=False,
    perturbed_attn=True,
)
LAYOUTS = {
    "2.0-interleaved": dict(TINY, rope_type="interleaved"),
    "2.0-split": dict(TINY, rope_type="split"),
    "2.0-split-stg": dict(TINY, rope_type="split", perturbed_attn=True),
    "2.3-split": dict(TINY, rope_type="split", **LTX23),
    "2.3-interleaved": dict(TINY, rope_type="interleaved", **LTX23),
    # The later flags diffusers' class has: no video FF bias, static prompt K/V table, keyframe marker.
    "2.5-split": dict(
        TINY,
        rope_type="split",
        **LTX23,
        ff_bias=False,
        use_prompt_adaln_single=False,
        use_keyframes_abs_pos_embedding=True,
    ),
}
VIDEO_TOKENS = FRAMES * HEIGHT * WIDTH
CASES = {
    "plain": {},
    "stg": dict(spatio_temporal_guidance_blocks=[1]),
    "stg_mask": dict(spatio_temporal_guidance_blocks=[0, 1], perturbation_mask=torch.tensor([0.0, 1.0])),
    "isolate": dict(isolate_modalities=True),
    "cross_timestep": dict(use_cross_timestep=True),
    "self_mask": dict(
        video_self_attention_mask=torch.rand(
            BATCH, VIDEO_TOKENS, VIDEO_TOKENS, generator=torch.Generator().manual_seed(5)
        )
    ),
    "keyframes": dict(
        video_keyframes_mask=(torch.arange(VIDEO_TOKENS) < HEIGHT * WIDTH).float().view(1, -1, 1)
    ),
    # Image-to-video: one timestep per video token (0 on the conditioning frame), audio per sample.
    "token_timestep": dict(
        timestep=torch.linspace(100.0, 900.0, BATCH * VIDEO_TOKENS).view(BATCH, -1),
        audio_timestep=torch.tensor([400.0, 800.0]),
    ),
}


def _randomize(model: torch.nn.Module, std: float = 0.02) -> None:
    # normal(0, std) everywhere, so parameters the reference zero-initialises take part too.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)


# std 0.02 is checkpoint-like but leaves the blocks' residual updates small (a 1% error in one gate
# moves the output by ~1e-6); std 0.1 makes every block weigh on the output (outputs ~2).
@pytest.fixture(
    scope="module",
    params=[(layout, std) for layout in LAYOUTS for std in (0.02, 0.1)],
    ids=lambda p: f"{p[0]}-std{p[1]}",
)
def pair(request) -> tuple[str, torch.nn.Module, LTX2Transformer]:
    layout, std = request.param
    torch.manual_seed(0)
    reference = LTX2VideoTransformer3DModel(**LAYOUTS[layout]).eval()
    _randomize(reference, std)
    ours = LTX2Transformer(**LAYOUTS[layout]).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return layout, reference, ours


def _inputs(layout: str) -> dict:
    g = torch.Generator().manual_seed(1)
    v23 = not layout.startswith("2.0")
    video_ctx, audio_ctx = (32, 16) if v23 else (12, 12)
    text_mask = torch.ones(BATCH, TEXT, dtype=torch.long)
    text_mask[1, :3] = 0  # left padding on the second prompt
    return dict(
        hidden_states=torch.randn(BATCH, VIDEO_TOKENS, 8, generator=g),
        audio_hidden_states=torch.randn(BATCH, AUDIO_FRAMES, 4, generator=g),
        encoder_hidden_states=torch.randn(BATCH, TEXT, video_ctx, generator=g),
        audio_encoder_hidden_states=torch.randn(BATCH, TEXT, audio_ctx, generator=g),
        timestep=torch.tensor([300.0, 700.0]),
        sigma=torch.tensor([300.0, 700.0]),
        audio_sigma=torch.tensor([550.0, 150.0]),
        encoder_attention_mask=text_mask,
        audio_encoder_attention_mask=text_mask,
        num_frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        fps=24.0,
        audio_num_frames=AUDIO_FRAMES,
    )


def _assert_close(name: str, measured: float, allowed: float = TOLERANCE) -> None:
    assert measured <= allowed, f"{name}: max abs diff {measured:.3e} > allowed {allowed:.1e}"


@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_diffusers(pair, case: str) -> None:
    layout, reference, ours = pair
    kwargs = {**_inputs(layout), **CASES[case]}
    with torch.no_grad():
        expected = reference(**kwargs, return_dict=False)
        got = ours(**kwargs, attention_kwargs=None, return_dict=False)
    for stream, e, o in zip(("video", "audio"), expected, got):
        assert e.shape == o.shape
        _assert_close(f"{layout}/{case}/{stream}", (e - o).abs().max().item())


def test_guidance_cases_change_the_output() -> None:
    """Each guidance pass must really differ from the plain pass, or the parity cases above prove nothing."""
    torch.manual_seed(0)
    model = LTX2Transformer(**LAYOUTS["2.5-split"]).eval()
    _randomize(model)
    kwargs = _inputs("2.5-split")
    with torch.no_grad():
        plain = model(**kwargs)
        for case in ("stg", "stg_mask", "isolate", "cross_timestep", "self_mask", "keyframes"):
            out = model(**kwargs, **CASES[case])
            moved = max((a - b).abs().max().item() for a, b in zip(plain, out))
            assert moved > 1e-6, f"{case} left the output unchanged ({moved:.3e})"


def test_stg_enabled_applies_stg_to_a_2_0_config() -> None:
    """diffusers skips STG when perturbed_attn=False (the LTX-2.0 config); stg_enabled=True follows the
    official code instead and must then equal diffusers built with perturbed_attn=True."""
    torch.manual_seed(0)
    reference = LTX2VideoTransformer3DModel(**LAYOUTS["2.0-split-stg"]).eval()
    _randomize(reference)
    ours = LTX2Transformer(**LAYOUTS["2.0-split"]).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    kwargs = {**_inputs("2.0-split"), **CASES["stg"]}
    with torch.no_grad():
        plain = ours(**kwargs)
        ours.stg_enabled = True
        perturbed = ours(**kwargs)
        expected = reference(**kwargs, return_dict=False)
    assert max((a - b).abs().max().item() for a, b in zip(plain, perturbed)) > 1e-6
    for e, o in zip(expected, perturbed):
        _assert_close("2.0 stg_enabled", (e - o).abs().max().item())


def test_precomputed_coords_match_internal_ones() -> None:
    torch.manual_seed(0)
    model = LTX2Transformer(**LAYOUTS["2.0-split"]).eval()
    kwargs = _inputs("2.0-split")
    video_coords = model.rope.prepare_video_coords(BATCH, FRAMES, HEIGHT, WIDTH, "cpu", fps=24.0)
    audio_coords = model.audio_rope.prepare_audio_coords(BATCH, AUDIO_FRAMES, "cpu")
    with torch.no_grad():
        a = model(**kwargs)
        b = model(**kwargs, video_coords=video_coords, audio_coords=audio_coords)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_coords_match_diffusers_helpers() -> None:
    torch.manual_seed(0)
    reference = LTX2VideoTransformer3DModel(**LAYOUTS["2.3-split"])
    ours = LTX2Transformer(**LAYOUTS["2.3-split"])
    for fps in (24.0, 25.0):
        torch.testing.assert_close(
            ours.rope.prepare_video_coords(2, 3, 4, 5, "cpu", fps=fps),
            reference.rope.prepare_video_coords(2, 3, 4, 5, "cpu", fps=fps),
            rtol=0,
            atol=0,
        )
    for shift in (0, 3):
        torch.testing.assert_close(
            ours.audio_rope.prepare_audio_coords(2, 7, "cpu", shift=shift),
            reference.audio_rope.prepare_audio_coords(2, 7, "cpu", shift=shift),
            rtol=0,
            atol=0,
        )
    # Cached results come back as copies: editing one must not change the next call.
    coords = ours.rope.prepare_video_coords(2, 3, 4, 5, "cpu")
    coords.zero_()
    assert ours.rope.prepare_video_coords(2, 3, 4, 5, "cpu").abs().sum() > 0


def test_constructor_and_forward_signatures_cover_diffusers() -> None:
    ref_init = set(inspect.signature(LTX2VideoTransformer3DModel.__init__).parameters) - {"self"}
    our_init = set(inspect.signature(LTX2Transformer.__init__).parameters) - {"self"}
    assert ref_init == our_init, f"config keys differ: {sorted(ref_init ^ our_init)}"
    ref_fwd = set(inspect.signature(LTX2VideoTransformer3DModel.forward).parameters) - {"self"}
    our_fwd = set(inspect.signature(LTX2Transformer.forward).parameters) - {"self"}
    assert ref_fwd <= our_fwd, f"forward keywords missing: {sorted(ref_fwd - our_fwd)}"


@pytest.mark.parametrize(("name", "value"), [("activation_fn", "gelu"), ("qk_norm", "rms_norm")])
def test_an_unsupported_checkpoint_config_is_a_checkpoint_error(name: str, value: str) -> None:
    from ditto.errors import CheckpointError

    with pytest.raises(CheckpointError, match=f"{name}='{value}' is not supported"):
        LTX2Transformer(**TINY, **{name: value})
