"""Running diffusers' LTX2Pipeline on the same folder, inputs and sigmas as ditto (reference side of the tests)."""

from __future__ import annotations

import functools
from typing import Any

import torch


def load_diffusers_ltx2(folder, verbatim_sigmas: bool, dtype: torch.dtype = torch.float32):
    """diffusers' LTX2Pipeline; with verbatim_sigmas the scheduler uses given sigmas unshifted (as ditto)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline

    pipe = LTX2Pipeline.from_pretrained(str(folder), torch_dtype=dtype)
    if verbatim_sigmas:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            pipe.scheduler.config, use_dynamic_shifting=False, shift=1.0, shift_terminal=None
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@functools.cache
def diffusers_pipe(folder, verbatim_sigmas: bool):
    """diffusers' pipeline on `folder`, loaded once per process."""
    return load_diffusers_ltx2(folder, verbatim_sigmas)


def run_diffusers(pipe, kwargs: dict[str, Any]):
    """Call diffusers with ditto's keyword set (the same names, except seed -> generator)."""
    kwargs = dict(kwargs)
    seed = kwargs.pop("seed", 0)
    kwargs.pop("stg_rule", None)  # ditto's choice of STG rule; diffusers has one (both self-attentions)
    kwargs.setdefault("negative_prompt", "")
    out = pipe(generator=torch.Generator().manual_seed(seed), use_cross_timestep=True, **kwargs)
    return out.frames, out.audio
