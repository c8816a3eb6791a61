"""What a recipe is: a name, the checks it adds to the one-stage ones, and its run (a composition of steps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ditto.errors import InvalidParameter
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2.components import UPSAMPLER_DIR, LTX2Checkpoint
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.steps import Toolkit
from ditto.request import check_multiple
from ditto.result import Result

# (the request as given, the request with the defaults filled in, the checkpoint's facts) -> None or
# InvalidParameter. Checks read the facts, not loaded components: a request is checked before loading.
Check = Callable[[LTX2Params, LTX2Params, LTX2Checkpoint], None]
Run = Callable[[Toolkit, LTX2Params, ProgressCallback | None], Result]


def no_check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    """A recipe that runs whatever the one-stage checks let through."""


@dataclass(frozen=True)
class Recipe:
    name: str  # the request's `pipeline=`
    run: Run
    check: Check = no_check


def check_upsampled(params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    """What a recipe with a half-size stage 1 and the x2 latent upsampler needs."""
    if params.sampler != "euler":
        # The stages run Euler only; running it silently when res2s was asked would mislead.
        raise InvalidParameter(
            "sampler", params.sampler, f"is not supported by pipeline={params.pipeline!r} (Euler only)",
            'use pipeline="one-stage" for res2s',
        )  # fmt: skip
    # Stage 1 runs at half size and the VAE compresses 32x, so both sides must be multiples of 64.
    check_multiple("height", params.height, 64)
    check_multiple("width", params.width, 64)
    if not checkpoint.has_upsampler:
        raise InvalidParameter(
            "pipeline",
            params.pipeline,
            f"needs a latent upsampler ({UPSAMPLER_DIR}/ in the checkpoint folder)",
        )
