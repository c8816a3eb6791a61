"""One stage at full size: the official one-stage text/image-to-video (ltx-pipelines' ti2vid_one_stage), with
the Euler or the res2s sampler."""

from __future__ import annotations

from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes.base import Recipe
from ditto.result import Result
from ditto.runtime.progress import Progress


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    components = kit.components
    timer = StageTimer(components.device, components.residency)
    timer.begin(params)
    with timer.stage("encode_text"):
        prompts = steps.encode_prompts(components, params)
    with timer.stage("denoise"):
        inputs = steps.prepare(components, params, prompts, steps.request_generator(components, params))
        counter = Progress(inputs.num_steps, progress)
        video, audio = steps.denoise(kit, inputs, counter, "denoise", params.sampler)
    return steps.finish(components, params, inputs.shape, video, audio, timer)


RECIPE = Recipe("one-stage", run)
