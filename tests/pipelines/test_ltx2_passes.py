"""Named passes on the tiny LTX-2 model: a block-loop feature (runtime.LoopFeature) in each sampling loop sees
exactly which guidance passes each transformer call computes, at which step and sigma, and may run the
block plan itself without changing a bit of the result."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from ditto import Engine
from ditto.runtime import PassKind
from ditto.sampling.schedules import ltx2_sigmas
from ditto.tiny.ltx2 import build_tiny

from helpers.ltx2 import ditto_engine

PAIR, COND, UNCOND = (PassKind.UNCOND, PassKind.COND), (PassKind.COND,), (PassKind.UNCOND,)
PERTURBED, ISOLATED = (PassKind.PERTURBED,), (PassKind.ISOLATED,)
SMALL = dict(prompt="a red fox", height=64, width=64, num_frames=9, seed=3, output_type="latent")
GUIDED = dict(guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, pipeline="one-stage")
UNGUIDED = dict(
    guidance_scale=1.0, audio_guidance_scale=1.0, stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0,
    audio_modality_scale=1.0, pipeline="one-stage",
)  # fmt: skip


@functools.cache
def _engine(stages: bool) -> Engine:
    """The tiny 2.0 model; with `stages`, with its latent upsampler and distilled LoRA (two-stage)."""
    if not stages:
        return ditto_engine("2.0")
    folder = Path(tempfile.mkdtemp(prefix="ditto-ltx2-passes-")) / "ltx2"
    atexit.register(shutil.rmtree, folder.parent, True)
    build_tiny(folder, "2.0", with_upsampler=True, with_distilled_lora=True)
    return Engine.from_pretrained(folder, device="cpu", dtype="float32")


class Recorder:
    """Logs each pass it wraps; optionally runs the plan itself, split in two ranges."""

    handles_resumed_plans = True  # it reads plan.first (a resumed STG pass starts after the shared prefix)

    def __init__(self, log: list, blocks: list[torch.nn.Module], split: bool = False) -> None:
        self.log, self.blocks, self.split = log, blocks, split

    def run_blocks(self, plan, streams, ctx, inner):
        # One call per block, in order, from the block the pass starts at (a resumed STG pass: its first
        # perturbed one).
        assert [call.module for call in plan.calls] == self.blocks[plan.first :]
        self.log.append((ctx.kinds, ctx.step, ctx.substep, ctx.sigma, ctx.loop.num_steps, plan.first))
        if not self.split:
            return inner(plan, streams, ctx)
        return plan.run(plan.run(streams, 0, 1), 1)


def generate(request: dict, log: list | None = None, split: bool = False, stages: bool = False):
    pipe = _engine(stages).pipeline
    if log is not None:
        blocks = list(pipe.components.transformer.transformer_blocks)
        pipe.loop_features.append(lambda info: Recorder(log, blocks, split))
    try:
        return _engine(stages).generate(**request).latents
    finally:
        pipe.loop_features.clear()


def test_a_feature_sees_every_guided_pass_by_name_and_step() -> None:
    """With STG the four passes are separate calls, the official ones; the STG pass (perturbing block 1, the
    tiny model's last) runs right after the conditional pass and resumes from its streams at block 1
    (pipelines/ltx2/passes.py)."""
    log: list = []
    generate({**SMALL, **GUIDED, "num_inference_steps": 3}, log)
    sigmas = ltx2_sigmas(3).tolist()
    passes = ((COND, 0), (PERTURBED, 1), (UNCOND, 0), (ISOLATED, 0))
    expected = [(kinds, step, 0, sigmas[step], 3, first) for step in range(3) for kinds, first in passes]
    assert log == expected


def test_without_stg_the_cfg_pair_is_one_batch() -> None:
    log: list = []
    generate({**SMALL, **GUIDED, "stg_scale": 0.0, "audio_stg_scale": 0.0, "num_inference_steps": 2}, log)
    assert [(kinds, step, first) for kinds, step, *_, first in log] == [
        (PAIR, 0, 0), (ISOLATED, 0, 0), (PAIR, 1, 0), (ISOLATED, 1, 0),
    ]  # fmt: skip


def test_an_unguided_request_runs_one_conditional_pass_per_step() -> None:
    log: list = []
    generate({**SMALL, **UNGUIDED, "num_inference_steps": 2}, log)
    assert [(kinds, step) for kinds, step, *_ in log] == [(COND, 0), (COND, 1)]


def test_res2s_names_its_two_calls_per_step_and_the_final_one() -> None:
    log: list = []
    generate({**SMALL, **UNGUIDED, "num_inference_steps": 2, "sampler": "res2s"}, log)
    assert [(kinds, step, substep) for kinds, step, substep, *_ in log] == [
        (COND, 0, 0), (COND, 0, 1), (COND, 1, 0), (COND, 1, 1), (COND, 1, 2),
    ]  # fmt: skip
    midpoint = log[1][3]
    assert log[0][3] > midpoint > log[2][3]  # the midpoint's sigma lies between the step's sigmas


def test_each_loop_of_a_two_stage_request_has_its_own_state() -> None:
    log: list = []
    request = {**SMALL, "height": 128, "width": 128, "num_inference_steps": 2, "pipeline": "two-stage"}
    no_stg = dict(stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0, audio_modality_scale=1.0)
    generate({**request, **no_stg}, log, stages=True)
    assert [(kinds, step, num_steps) for kinds, step, _, _, num_steps, _ in log] == [
        (PAIR, 0, 2), (PAIR, 1, 2), (COND, 0, 3), (COND, 1, 3), (COND, 2, 3),
    ]  # fmt: skip


@pytest.mark.parametrize("sampler", ["euler", "res2s"])
def test_a_feature_running_the_plan_itself_changes_no_bit(sampler: str) -> None:
    request = {**SMALL, **GUIDED, "num_inference_steps": 2, "sampler": sampler}
    plain = generate(request)
    split = generate(request, [], split=True)
    assert torch.equal(plain["video"], split["video"]) and torch.equal(plain["audio"], split["audio"])
