"""Every LTX-2 parity bound is a measured value times a stated margin (at most 3), with the reason beside it
(tests/helpers/thresholds.py describes the format); the FLUX.2 and Qwen-Image groups still hold plain bounds."""

from __future__ import annotations

import pytest

from helpers.thresholds import MAX_MARGIN, THRESHOLDS, allowed

LTX_GROUPS = sorted(group for group in THRESHOLDS if group.startswith("ltx"))


def test_the_ltx_groups_are_found() -> None:
    assert {"ltx2_vs_diffusers", "ltx2_stages", "ltx2_i2v_vs_diffusers", "ltx_official/sigmas"} <= set(
        LTX_GROUPS
    )


@pytest.mark.parametrize("group", LTX_GROUPS)
def test_every_ltx_bound_is_measured_times_a_stated_margin(group: str) -> None:
    for metric, entry in THRESHOLDS[group].items():
        assert isinstance(entry, dict), f"{group}/{metric} is a bare bound: give measured, margin and why"
        assert set(entry) == {"measured", "margin", "why"}, f"{group}/{metric}: {sorted(entry)}"
        assert entry["measured"] >= 0 and 1 <= entry["margin"] <= MAX_MARGIN, f"{group}/{metric}: {entry}"
        assert len(entry["why"]) > 20, f"{group}/{metric}: say what the difference is made of"


def test_the_bound_follows_the_measurement() -> None:
    entry = THRESHOLDS["ltx2_vs_diffusers"]
    assert allowed("ltx2_vs_diffusers", "latents_max_abs") == entry["latents_max_abs"]["measured"] * 2
    psnr = allowed("ltx2_vs_diffusers", "frames_psnr_db", minimum=True)
    assert psnr == pytest.approx(entry["frames_psnr_db"]["measured"] - 4.771, abs=1e-3)
