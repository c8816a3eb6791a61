"""STG prefix reuse in parallel sampling loops, run on each rank by tests/parallel/test_parallel_prefix_reuse.py
(helpers/spawn.py).

Every rank runs the same LTX-2 sampling loop (helpers.ltx2.denoise_loop: a 6-block tiny model, STG at block 3)
with the parallel loop feature on a mesh of the case's layout, twice: with prefix reuse and with every STG
pass whole; then the one-process loop. Each rank reports whether its two parallel results are equal bit for
bit, their largest difference from the one-process result, the blocks each pass kind ran on this rank in
each run (a counting feature inside the parallel one: what this rank computed), and the split each used.
"""

from __future__ import annotations

from typing import Any

import torch

from ditto import Engine
from ditto.acceleration.step_cache.feature import StepCache
from ditto.acceleration.step_cache.spec import parse_cache_spec
from ditto.parallel import ParallelConfig
from ditto.parallel.loop import ParallelLoop
from ditto.parallel.mesh import Mesh
from ditto.runtime.contract import LoopInfo

from helpers.ltx2 import FULL_GUIDANCE, BlockCounter, denoise_loop

TIMEOUT_S = 60.0  # a rank silent this long fails its collective: no case waits longer for a dead rank
STEPS = 3
BRANCH = 3  # the first perturbed block (of 6): the STG pass shares blocks 0-2 with the conditional pass
REQUEST = {
    **FULL_GUIDANCE, "prompt": "a red fox", "negative_prompt": "blurry", "height": 64, "width": 64,
    "num_frames": 9, "num_inference_steps": STEPS, "pipeline": "one-stage", "seed": 3, "output_type": "latent",
    "spatio_temporal_guidance_blocks": [BRANCH], "audio_spatio_temporal_guidance_blocks": [BRANCH],
}  # fmt: skip
NO_ISOLATION = dict(modality_scale=1.0, audio_modality_scale=1.0)  # 3 passes: cond, STG, uncond
STG_ONLY = dict(guidance_scale=1.0, audio_guidance_scale=1.0, **NO_ISOLATION)  # 2 passes: cond, STG
MASK_WHOLE = "mask:compute=0+2,Fn=0,Bn=0"  # the cache hands its middle (every block) on as the whole plan
MASK_TAIL = "mask:compute=0+2,Fn=1,Bn=3"  # the branch is in the tail: the resumed plan passes whole
MASK_MIDDLE = "mask:compute=0+2,Fn=1,Bn=1"

# name -> (ParallelConfig fields, request changes, step cache spec or None)
CASES: dict[int, dict[str, tuple[dict, dict, str | None]]] = {
    2: {
        "ulysses 2, 4 passes": (dict(ulysses=2), {}, None),
        "ulysses 2, audio sharded, 3 passes": (dict(ulysses=2, audio="shard"), NO_ISOLATION, None),
        "cfg 2, 4 passes": (dict(cfg=2), {}, None),
        "cfg 2, 3 passes": (dict(cfg=2), NO_ISOLATION, None),
        "cfg 2, 2 passes": (dict(cfg=2), STG_ONLY, None),
        "ulysses 2, step cache, whole-plan middle": (dict(ulysses=2), {}, MASK_WHOLE),
        "ulysses 2, step cache, branch in the tail": (dict(ulysses=2), {}, MASK_TAIL),
        "cfg 2, step cache": (dict(cfg=2), {}, MASK_MIDDLE),
    },
    4: {
        "cfg 2 x ulysses 2, audio sharded": (dict(cfg=2, ulysses=2, audio="shard"), {}, None),
        "cfg 4, 4 passes": (dict(cfg=4), {}, None),
        "cfg 4, 3 passes": (dict(cfg=4), NO_ISOLATION, None),
    },
}


def run_cases(rank: int, world: int, model: str) -> dict[str, Any]:
    engine = Engine.from_pretrained(model, device="cpu", dtype="float32")
    return {name: run_case(engine, *case) for name, case in CASES[world].items()}


def run_case(engine: Engine, fields: dict, changes: dict, cache: str | None) -> dict[str, Any]:
    mesh = Mesh(ParallelConfig(**fields, timeout_s=TIMEOUT_S))  # every rank makes the same groups in order
    request = {**REQUEST, **changes}
    shared, whole = (parallel_loop(engine, mesh, request, cache, share) for share in (True, False))
    one = denoise_loop(engine.pipeline, request, True, cache_features(cache, {}))
    return {
        "equal": all(torch.equal(x, y) for x, y in zip(shared["out"], whole["out"], strict=True)),
        "vs one process": max((x - y).abs().max().item() for x, y in zip(shared["out"], one, strict=True)),
        **{f"{key} {run}": value[key] for run, value in (("shared", shared), ("whole", whole)) for key in
           ("blocks", "split", "cache")},
    }  # fmt: skip


def parallel_loop(
    engine: Engine, mesh: Mesh, request: dict, cache: str | None, share: bool
) -> dict[str, Any]:
    """One parallel sampling loop: its outputs, blocks per kind on this rank, split and cache record."""
    stats: dict[str, Any] = {}
    record: dict[str, Any] = {}
    counter = BlockCounter()
    info = LoopInfo("ltx2", "denoise", STEPS, None, stats)
    features = [*cache_features(cache, record), ParallelLoop(mesh, info), counter]
    out = denoise_loop(engine.pipeline, request, share, features)
    split = stats["parallel"]["denoise"]
    return {
        "out": out,
        "blocks": {kind.value: n for kind, n in counter.blocks.items()},
        "split": (split["cfg"], split["sequence"]),
        "cache": record,
    }


def cache_features(spec: str | None, record: dict[str, Any]) -> list[StepCache]:
    """The step cache (outermost, as an engine registers it) of `spec`, or none."""
    if spec is None:
        return []
    parsed = parse_cache_spec(spec)
    return [StepCache(parsed, STEPS, parsed.thresholds[:2], record)]
