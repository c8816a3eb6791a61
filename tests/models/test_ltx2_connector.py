"""ditto's LTX2TextConnectors against diffusers' LTX2TextConnectors on tiny random weights (fp32, CPU)."""

from __future__ import annotations

import inspect

import pytest
import torch

pytest.importorskip("diffusers")
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors as ReferenceConnectors

from ditto.models.ltx2.connector import LTX2TextConnectors

TOLERANCE = 1e-5
BATCH, TEXT, CHANNELS, LAYERS = 2, 8, 16, 3

TINY = dict(
    caption_channels=CHANNELS,
    text_proj_in_factor=LAYERS,
    video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=16,
    video_connector_num_layers=2,
    video_connector_num_learnable_registers=4,
    audio_connector_num_attention_heads=2,
    audio_connector_attention_head_dim=8,
    audio_connector_num_layers=2,
    audio_connector_num_learnable_registers=4,
    connector_rope_base_seq_len=32,
)
# LTX-2.3: gated attention, per-modality projections with bias, widths = the transformer's.
LTX23 = dict(
    video_gated_attn=True,
    audio_gated_attn=True,
    per_modality_projections=True,
    video_hidden_dim=32,
    audio_hidden_dim=16,
    proj_bias=True,
)
# LTX-2.0: both connectors run at caption_channels width (the shared projection's output).
LTX20 = dict(TINY, video_connector_attention_head_dim=8)
LAYOUTS = {
    "2.0-split": dict(LTX20, rope_type="split"),
    "2.0-interleaved": dict(LTX20, rope_type="interleaved"),
    "2.0-no-registers": dict(
        LTX20,
        rope_type="split",
        video_connector_num_learnable_registers=None,
        audio_connector_num_learnable_registers=None,
    ),
    "2.3-split": dict(TINY, rope_type="split", **LTX23),
    "2.3-interleaved": dict(TINY, rope_type="interleaved", **LTX23),
}


def _pair(layout: str, std: float = 0.02) -> tuple[torch.nn.Module, LTX2TextConnectors]:
    torch.manual_seed(0)
    reference = ReferenceConnectors(**LAYOUTS[layout]).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, std)
        if reference.video_connector.learnable_registers is not None:
            reference.video_connector.learnable_registers.normal_(0, 1.0)
            reference.audio_connector.learnable_registers.normal_(0, 1.0)
    ours = LTX2TextConnectors(**LAYOUTS[layout]).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _inputs(padding_side: str, flat: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    states = torch.randn(BATCH, TEXT, CHANNELS, LAYERS, generator=g) * 3.0
    mask = torch.ones(BATCH, TEXT, dtype=torch.long)
    if padding_side == "left":
        mask[1, :5] = 0
    else:
        mask[1, 3:] = 0
    return (states.flatten(2) if flat else states), mask


@pytest.mark.parametrize("std", [0.02, 0.1])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_connectors_match_diffusers(layout: str, padding_side: str, std: float) -> None:
    reference, ours = _pair(layout, std)
    for flat in (False, True):
        states, mask = _inputs(padding_side, flat)
        with torch.no_grad():
            expected = reference(states, mask, padding_side=padding_side)
            got = ours(states, mask, padding_side=padding_side)
        for name, e, o in zip(("video", "audio", "mask"), expected, got):
            assert e.shape == o.shape and e.dtype == o.dtype, f"{layout}/{name}: {o.shape} {o.dtype}"
            measured = (e.double() - o.double()).abs().max().item()
            assert measured <= TOLERANCE, f"{layout}/{padding_side}/{name}: {measured:.3e} > {TOLERANCE:.1e}"


def test_keep_mask_is_all_ones_with_registers() -> None:
    """Registers fill the padding slots, so the transformer must attend to every text position."""
    _, ours = _pair("2.3-split")
    states, mask = _inputs("left", flat=False)
    with torch.no_grad():
        video, audio, keep = ours(states, mask)
    assert keep.dtype == torch.int64 and bool((keep == 1).all())
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()


def test_constructor_keys_equal_diffusers() -> None:
    ref_keys = set(inspect.signature(ReferenceConnectors.__init__).parameters) - {"self"}
    our_keys = set(inspect.signature(LTX2TextConnectors.__init__).parameters) - {"self"}
    assert ref_keys == our_keys, f"config keys differ: {sorted(ref_keys ^ our_keys)}"


def test_config_is_kept_and_model_deep_copies() -> None:
    import copy

    ours = LTX2TextConnectors(**LAYOUTS["2.3-split"])
    assert ours.config.video_hidden_dim == 32 and ours.config["per_modality_projections"] is True
    assert copy.deepcopy(ours).config == ours.config
