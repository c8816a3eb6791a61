"""Parallel engines against one-process engines, run on each rank by tests/parallel (helpers/spawn.py).

Every rank builds the same engines in the same order (attached to the gloo group the harness made); rank 0
generates, compares with a one-process engine of the same model, and returns the largest differences;
the others follow its calls.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import torch

from ditto.engine import Engine
from ditto.errors import ParallelError
from ditto.parallel import ParallelConfig

TIMEOUT_S = 60.0  # a rank silent this long fails its collective: no case waits longer for a dead rank
LTX = dict(prompt="a red fox", negative_prompt="blurry", seed=3, num_frames=9, pipeline="one-stage")
FULL = dict(guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, spatio_temporal_guidance_blocks=[1])
CFG_ONLY = dict(guidance_scale=3.0, audio_guidance_scale=3.0, stg_scale=0.0, modality_scale=1.0)
LATENT = dict(output_type="latent")
QWEN = dict(prompt="a red fox", negative_prompt="blurry", true_cfg_scale=4.0, seed=3, height=64, width=48)
KLEIN = dict(prompt="a red fox", guidance_scale=4.0, seed=3, height=64, width=48, max_sequence_length=19)
STEPS = dict(num_inference_steps=3)
CACHE = dict(cache="mask:compute=0+2,Fn=1")  # step 1 reuses step 0's middle residual, every kind


def cases(models: dict[str, str], world: int) -> list[tuple[str, str, dict, dict]]:
    """(name, model, ParallelConfig fields, request) of each case for `world` ranks."""
    ltx, qwen, klein = models["ltx"], models["qwen"], models["klein"]
    small = dict(**LTX, **STEPS, height=64, width=64)
    if world == 2:
        return [
            ("ltx cfg, 4 passes", ltx, dict(cfg=2), {**small, **FULL, **LATENT}),
            ("ltx ulysses, audio whole", ltx, dict(ulysses=2), {**small, **CFG_ONLY, **LATENT}),
            ("ltx ulysses, audio sharded", ltx, dict(ulysses=2, audio="shard"), {**small, **CFG_ONLY, **LATENT}),
            ("ltx keyframes, ulysses", ltx, dict(ulysses=2), {**small, **CFG_ONLY, **LATENT, **keyframes()}),
            ("ltx cfg, step cache", ltx, dict(cfg=2), {**small, **FULL, **LATENT, **CACHE}),
            ("ltx ulysses, step cache", ltx, dict(ulysses=2), {**small, **CFG_ONLY, **LATENT, **CACHE}),
            ("ltx two-stage, VAE, text split", ltx, dict(cfg=2, text="split"), {**LTX, **STEPS, "pipeline": "two-stage", "height": 128, "width": 64}),
            ("qwen true cfg", qwen, dict(cfg=2), {**QWEN, **STEPS, **LATENT}),
            ("klein cfg", klein, dict(cfg=2), {**KLEIN, **STEPS, **LATENT}),
            ("ltx ulysses, audio sharded, compiled", ltx, dict(ulysses=2, audio="shard", compile=True), {**small, **CFG_ONLY, **LATENT}),
        ]  # fmt: skip
    return [
        ("ltx cfg 2 x ulysses 2, audio sharded", ltx, dict(cfg=2, ulysses=2, audio="shard"), {**small, **FULL, **LATENT}),
        ("ltx two-stage over 4, VAE over 4", ltx, dict(cfg=4), {**LTX, **STEPS, **FULL, "pipeline": "two-stage", "height": 256, "width": 64}),
        ("ltx2.3 ulysses 4, audio sharded", "tiny-ltx2.3", dict(ulysses=4, audio="shard"), {**small, **CFG_ONLY, **LATENT}),
        ("qwen ulysses 4", qwen, dict(ulysses=4), {**QWEN, **STEPS, **LATENT}),
        ("klein ulysses 4", klein, dict(ulysses=4), {**KLEIN, **STEPS, **LATENT}),
    ]  # fmt: skip


def keyframes() -> dict[str, Any]:
    """A first frame and a keyframe at frame 8: per-token timesteps, appended keyframe tokens."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return dict(image=[(pixels, 0), (pixels, 8)], image_crf=0)


def run_cases(rank: int, world: int, models: dict[str, str], crash: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, model, fields, request in cases(models, world):
        compiled = fields.pop("compile", False)
        parallel = ParallelConfig(**fields, timeout_s=TIMEOUT_S)
        engine = Engine.from_pretrained(model, parallel=parallel, compile=compiled)
        if rank != 0:
            engine.follow()
            continue
        out = engine.generate(**request)
        engine.close()
        found = differences(out, reference(model, compiled).generate(**request))
        results[name] = {**found, "split": out.stats.get("parallel"), "cache": out.stats.get("cache")}
    results["attention"] = attention_case(rank, world)
    results["vae bands"] = vae_case(rank, world)
    if crash:
        results["crash"] = crash_case(rank, models["ltx"])
    return results


def crash_case(rank: int, model: str) -> dict[str, Any] | None:
    """Rank 1 raises in its second denoising step: rank 0 must fail fast, naming rank 1 and the error."""
    engine = Engine.from_pretrained(model, parallel=ParallelConfig(cfg=2, timeout_s=TIMEOUT_S))
    if rank != 0:
        engine.pipeline.loop_features.append(lambda info: FailAtStep(1))
        try:
            engine.follow()
        except ParallelError:
            return None
        raise AssertionError("rank 1 should have failed")
    started = time.monotonic()
    try:
        engine.generate(**LTX, **STEPS, **FULL, **LATENT, height=64, width=64)
    except ParallelError as exc:
        return {"message": str(exc), "seconds": time.monotonic() - started}
    return {"message": None, "seconds": time.monotonic() - started}


class FailAtStep:
    def __init__(self, step: int) -> None:
        self.step = step

    def run_blocks(self, plan, streams, ctx, inner):
        if ctx.step == self.step:
            raise RuntimeError("injected failure on this rank")
        return inner(plan, streams, ctx)


@functools.cache
def reference(model: str, compiled: bool = False) -> Engine:
    return Engine.from_pretrained(model, compile=compiled)


def differences(out, ref) -> dict[str, float]:
    """Largest absolute differences of everything the two results hold."""
    found: dict[str, float] = {}
    for key, value in (out.latents or {}).items():
        found[f"latents.{key}"] = _max_abs(value, ref.latents[key])
    for key in ("frames", "audio", "images"):
        if getattr(out, key) is not None:
            found[key] = _max_abs(getattr(out, key), getattr(ref, key))
    return found


def _max_abs(a: Any, b: Any) -> float:
    a, b = (torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x for x in (a, b))
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


def attention_case(rank: int, world: int) -> dict[str, float]:
    """The Ulysses attention split against plain attention on whole sequences: joint [text, image] with a
    key mask, queries sharded over whole keys (with a per-query mask), whole queries over sharded keys,
    grouped-query heads, and head counts the group does not divide (3 heads)."""
    import torch.distributed as dist

    from ditto.layers.attention import attention, naive_attention
    from ditto.parallel.comm import Group, even_sizes
    from ditto.parallel.ulysses import AttentionSplit, Segment

    group = Group(dist.group.WORLD, tuple(range(world)), rank)
    gen = torch.Generator().manual_seed(0)
    lengths = {"text": 5, "image": 11, "audio": 3}
    data = {name: torch.randn(3, 2, n, 3, 8, generator=gen) for name, n in lengths.items()}
    seg = {
        name: Segment(name, n, even_sizes(n, world) if name != "audio" else None)
        for name, n in lengths.items()
    }

    def mine(name: str, x: torch.Tensor, axis: int = 2) -> torch.Tensor:
        s = seg[name]
        return x.narrow(axis, s.offset(rank), s.local(rank))

    def check(q: tuple[str, ...], kv: tuple[str, ...], mask=None, kv_heads: int = 3) -> float:
        full = [torch.cat([data[n][i] for n in names], 1) for i, names in ((0, q), (1, kv), (2, kv))]
        full[1], full[2] = full[1][:, :, :kv_heads], full[2][:, :, :kv_heads]
        expected = naive_attention(full[0], full[1].repeat_interleave(3 // kv_heads, 2),
                                   full[2].repeat_interleave(3 // kv_heads, 2), mask)  # fmt: skip
        local = [
            torch.cat([mine(n, data[n][i], 1) for n in names], 1) for i, names in ((0, q), (1, kv), (2, kv))
        ]
        local[1], local[2] = local[1][:, :, :kv_heads], local[2][:, :, :kv_heads]
        split = AttentionSplit(group, tuple(seg[n] for n in q), tuple(seg[n] for n in kv))
        out = attention(*local, mask, split=split)
        starts = torch.cumsum(torch.tensor([0] + [lengths[n] for n in q]), 0)
        want = torch.cat([mine(n, expected[:, starts[i] : starts[i + 1]], 1) for i, n in enumerate(q)], 1)
        return (out - want).abs().max().item()

    keep = torch.ones(2, 1, 1, 16, dtype=torch.bool)
    keep[0, ..., 3] = False
    rows = torch.randn(2, 1, 11, 3, generator=gen)  # an additive mask with a query axis
    return {
        "joint [text, image], key mask": check(("text", "image"), ("text", "image"), keep),
        "image over whole audio, query mask": check(("image",), ("audio",), rows),
        "whole audio over image": check(("audio",), ("image",)),
        "text over image, one key head": check(("text",), ("image",), kv_heads=1),
    }


def vae_case(rank: int, world: int) -> dict[str, float]:
    """The banded decode against the whole decode, for the LTX-2 decoder's reflect padding and for zeros."""
    import torch.distributed as dist
    from diffusers import AutoencoderKLLTX2Video

    from ditto.parallel.comm import Group
    from ditto.parallel.vae import decode_in_bands
    from ditto.tiny.ltx2 import VIDEO_VAE_CONFIG

    group = Group(dist.group.WORLD, tuple(range(world)), rank)
    found = {}
    for mode in ("reflect", "zeros"):
        torch.manual_seed(0)
        decoder = AutoencoderKLLTX2Video(**VIDEO_VAE_CONFIG, decoder_spatial_padding_mode=mode).decoder.eval()
        latents = torch.randn(1, 16, 2, 2 * world + 1, 3, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            found[mode] = (
                (decode_in_bands(decoder, latents, None, group) - decoder(latents)).abs().max().item()
            )
    return found


def silent_rank_case(rank: int, world: int, timeout_s_case: float, silent_s: float) -> dict[str, Any]:
    """4 ranks, cfg 2 x ulysses 2: rank 0 reduces over its sequence group (ranks 0 and 1) while rank 1 stays
    silent for `silent_s`. Returns how long rank 0 waited and what it raised."""
    import torch.distributed as dist

    from ditto.parallel.mesh import Mesh

    mesh = Mesh(ParallelConfig(cfg=2, ulysses=2, timeout_s=timeout_s_case))
    sequence = mesh.splits[2].sequence
    if rank == 1:
        time.sleep(silent_s)
        return {}
    if rank != 0:
        return {}
    start = time.monotonic()
    try:
        dist.all_reduce(torch.ones(1), group=sequence.pg)
        raised = ""
    except Exception as exc:  # noqa: BLE001 (what the collective raises is the point)
        raised = type(exc).__name__
    return {"waited_s": time.monotonic() - start, "raised": raised}
