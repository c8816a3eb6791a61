"""One stage at full size: the official one-stage text/image-to-video (ltx-pipelines' ti2vid_one_stage), with
the Euler or the res2s sampler."""

from __future__ import annotations

from collections.abc import Callable

from ditto.pipelines.base import ProgressCallback, StageTimer
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes.base import Recipe
from ditto.result import Result
from ditto.runtime.progress import Progress


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    return run_with(kit, params, progress)


def run_with(
    kit: steps.Toolkit,
    params: LTX2Params,
    progress: ProgressCallback | None,
    items: Callable[[], steps.Items] | None = None,
) -> Result:
    """The one stage, conditioned by `items()` (made inside the denoise stage, where encoding sits; None:
    the request's images): one-stage itself, and retake."""
    components = kit.components
    timer = StageTimer(components.device, components.residency)
    timer.begin(params)
    with timer.stage("encode_text"):
        prompts = steps.encode_prompts(components, params)
    with timer.stage("denoise"):
        given = items() if items is not None else None
        generator = steps.request_generator(components, params)
        inputs = steps.prepare(components, params, prompts, generator, given)
        counter = Progress(inputs.num_steps, progress)
        video, audio = steps.denoise(kit, inputs, counter, "denoise", params.sampler)
    return steps.finish(components, params, inputs.shape, video, audio, timer)


RECIPE = Recipe("one-stage", run)
