"""ditto's step cache against Cache-DiT (PyPI cache-dit, pinned in pyproject's test extra) on the tiny
diffusers pipelines, float32 CPU, the same configuration on both sides: the steps each pass kind skipped must
be the same, and the final latents as close as the uncached pipelines are (thresholds_step_cache.json).

Comparable: Qwen-Image, where Cache-DiT keeps separate state for the CFG branch that diffusers calls second
(ditto's UNCOND pass). Measured: the latents are equal bit for bit (max abs 0 on every case), so the bound
is 0. TaylorSeer order 1 with a warm-up of 4 or more is comparable; order 2 needs 5 (taylorseer.py).

Not comparable, pinned by ditto's own tests instead (test_rules.py): LTX-2 (cache-dit 1.5.3's LTX-2 patch,
functor_ltx2.py, replaces the transformer's forward with one that lacks diffusers 0.42's `sigma` argument,
so the tiny LTX2Pipeline fails under it; and Cache-DiT decides on the video only and once over the batched
CFG pair, ditto per kind on video and audio); FLUX.2 Klein (Cache-DiT caches its double- and single-stream
block lists apart, each with its own Fn/Bn and decision; ditto runs one plan).
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

import pytest
import torch

from ditto import Engine

from helpers.thresholds import check_at_most


def cache_dit():
    """Imported by the tests that use it, not at collection: the rest of the suite runs without it loaded."""
    return pytest.importorskip("cache_dit")


GROUP = "step-cache-vs-cache-dit"
QWEN = dict(prompt="a red fox in the snow", negative_prompt="blurry", true_cfg_scale=4.0, height=32, width=32)


def quiet() -> None:
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("cache_dit"):
            logging.getLogger(name).setLevel(logging.ERROR)


@functools.cache
def qwen_folder() -> Path:
    """A 4-block tiny Qwen-Image (the shared one has 2: too shallow for Fn=1, Bn=1)."""
    from ditto.tiny.qwen_image import build_tiny_qwen_image

    folder = Path(tempfile.mkdtemp(prefix="ditto-cache-qwen-")) / "model"
    build_tiny_qwen_image(folder, layers=4)
    return folder


def cache_dit_run(pipe, config: dict, calibrator=None, **kwargs):
    """The reference side: Cache-DiT enabled on a fresh diffusers pipeline, one run, its stats."""

    cache_dit().enable_cache(
        pipe, cache_config=cache_dit().DBCacheConfig(**config), calibrator_config=calibrator
    )
    quiet()
    out = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(42), output_type="latent")
    (stats,) = cache_dit().summary(pipe, logging=False)[:1]
    return out, stats


QWEN_CASES = {
    # name: (ditto spec, Cache-DiT config, TaylorSeer order, steps)
    "F1B0": ("dbcache:Fn=1,Bn=0,threshold=0.5,warmup=2,max_cached=-1", dict(residual_diff_threshold=0.5), 0, 8),
    "F1B1 capped": (
        "dbcache:Fn=1,Bn=1,threshold=0.5,warmup=2,max_cached=2,max_cached_total=3",
        dict(Bn_compute_blocks=1, residual_diff_threshold=0.5, max_continuous_cached_steps=2, max_cached_steps=3),
        0, 10,
    ),
    "F1B0 taylorseer 1": (
        "dbcache:Fn=1,threshold=0.6,warmup=4,max_cached=-1,taylorseer=1",
        dict(residual_diff_threshold=0.6, max_warmup_steps=4), 1, 10,
    ),
    "F1B0 taylorseer 2": (
        "dbcache:Fn=1,threshold=0.6,warmup=5,max_cached=-1,taylorseer=2",
        dict(residual_diff_threshold=0.6, max_warmup_steps=5), 2, 12,
    ),
}  # fmt: skip
BASE = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, max_warmup_steps=2, max_continuous_cached_steps=-1)


@pytest.mark.parametrize("case", sorted(QWEN_CASES))
def test_qwen_image_dbcache_skips_the_steps_cache_dit_skips(case: str) -> None:
    from diffusers import QwenImagePipeline

    spec, config, order, steps = QWEN_CASES[case]
    calibrator = cache_dit().TaylorSeerCalibratorConfig(taylorseer_order=order) if order else None
    reference = QwenImagePipeline.from_pretrained(str(qwen_folder()))
    config = {**BASE, **config, "num_inference_steps": steps}
    ref, stats = cache_dit_run(reference, config, calibrator, **QWEN, num_inference_steps=steps)
    ours = Engine.from_pretrained(qwen_folder()).generate(
        **QWEN, num_inference_steps=steps, seed=42, output_type="latent", cache=spec
    )
    record = ours.cache_stats["denoise"]
    assert record["cond"]["cached_steps"] == stats.cached_steps, (record, stats.residual_diffs)
    assert record["uncond"]["cached_steps"] == stats.cfg_cached_steps, (record, stats.cfg_residual_diffs)
    assert stats.cached_steps, "a comparison that skips nothing compares nothing"
    uncached = Engine.from_pretrained(qwen_folder()).generate(
        **QWEN, num_inference_steps=steps, seed=42, output_type="latent"
    )
    assert not torch.equal(uncached.latents["image"], ours.latents["image"])
    check_at_most(GROUP, "latents_max_abs", float((ours.latents["image"] - ref.images).abs().max()), case)


def test_qwen_image_static_mask_is_cache_dit_steps_computation_mask() -> None:
    """The "fast" preset at 28 steps is Cache-DiT's steps_mask(28, "fast"), run statically (Fn=1 both)."""
    from diffusers import QwenImagePipeline

    steps_mask = cache_dit().steps_mask

    from ditto.acceleration.step_cache.masks import preset_steps

    mask = steps_mask(total_steps=28, mask_policy="fast")
    assert [int(i in preset_steps("fast", 28)) for i in range(28)] == mask
    config = {
        **BASE, "num_inference_steps": 28, "steps_computation_mask": mask, "steps_computation_policy": "static",
    }  # fmt: skip
    reference = QwenImagePipeline.from_pretrained(str(qwen_folder()))
    ref, stats = cache_dit_run(reference, config, **QWEN, num_inference_steps=28)
    ours = Engine.from_pretrained(qwen_folder()).generate(
        **QWEN, num_inference_steps=28, seed=42, output_type="latent", cache="fast:Fn=1"
    )
    record = ours.cache_stats["denoise"]
    assert record["cond"]["cached_steps"] == stats.cached_steps == [i for i, m in enumerate(mask) if not m]
    assert record["uncond"]["cached_steps"] == stats.cfg_cached_steps
    check_at_most(GROUP, "latents_max_abs", float((ours.latents["image"] - ref.images).abs().max()), "mask")


def test_taylorseer_after_a_short_warmup_is_ditto_s_rule() -> None:
    """Warm-up 2, order 1: ditto's first skipped pass already extrapolates (d1 from the computed steps 0 and
    1); Cache-DiT forms no difference before its third step, so it reuses the residual as it is there. Same
    skipped steps; the latents differ; ditto's equal a mask run that computes the same steps (the
    extrapolation depends only on which passes computed)."""
    from diffusers import QwenImagePipeline

    spec = "dbcache:Fn=1,threshold=0.6,warmup=2,max_cached=-1,taylorseer=1"
    config = {**BASE, "residual_diff_threshold": 0.6, "num_inference_steps": 8}
    reference = QwenImagePipeline.from_pretrained(str(qwen_folder()))
    calibrator = cache_dit().TaylorSeerCalibratorConfig(taylorseer_order=1)
    ref, stats = cache_dit_run(reference, config, calibrator, **QWEN, num_inference_steps=8)
    engine = Engine.from_pretrained(qwen_folder())
    ours = engine.generate(**QWEN, num_inference_steps=8, seed=42, output_type="latent", cache=spec)
    cached = ours.cache_stats["denoise"]["cond"]["cached_steps"]
    assert cached == stats.cached_steps and cached[0] == 2
    assert not torch.equal(ours.latents["image"], ref.images)
    computed = "+".join(str(i) for i in range(8) if i not in cached)
    masked = engine.generate(
        **QWEN,
        num_inference_steps=8,
        seed=42,
        output_type="latent",
        cache=f"mask:compute={computed},Fn=1,taylorseer=1",
    )
    assert torch.equal(masked.latents["image"], ours.latents["image"])
