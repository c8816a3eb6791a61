"""A controllable stand-in for Engine, for the in-process server tests (queueing, cancel, 429, errors).

It validates like a family (clear InvalidParameter), reports progress per step, and can be held at a
step by a gate so tests decide exactly when a job runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import torch

from ditto.errors import InvalidParameter, JobCancelled
from ditto.result import Result
from ditto.runtime.progress import PreviewLatents, StepEvent

LATENT_CHANNELS, CELL = 4, 32  # previews: a latent cell per 32x32 pixels

KNOWN = {
    "prompt", "negative_prompt", "width", "height", "num_frames", "frame_rate", "num_inference_steps",
    "guidance_scale", "seed", "num_images_per_prompt", "image",
}  # fmt: skip


class Params:
    def __init__(self, width: int, height: int, num_frames: int, frame_rate: float) -> None:
        self.width, self.height, self.num_frames, self.frame_rate = width, height, num_frames, frame_rate


class FakeEngine:
    def __init__(self, output_kind: str = "video", step_seconds: float = 0.0) -> None:
        self.output_kind = output_kind
        self.family = "fake-video" if output_kind == "video" else "fake-image"
        self.model = "fake"
        self.step_seconds = step_seconds
        self.gate = threading.Event()  # cleared: jobs wait before their first step
        self.gate.set()
        self.hold_after_step: int | None = None  # set: the gate closes after that step (a job held mid-run)
        self.started = threading.Event()
        self.calls: list[dict[str, Any]] = []

    def validate(self, **kwargs: Any) -> Params:
        for name in kwargs:
            if name not in KNOWN:
                raise InvalidParameter(name, kwargs[name], "is not a parameter of this family")
        prompt = kwargs.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidParameter("prompt", prompt, "is empty", "give a non-empty text prompt")
        width, height = kwargs.get("width", 64), kwargs.get("height", 32)
        for name, value in (("width", width), ("height", height)):
            if value % 32:
                nearest = max(32, round(value / 32) * 32)
                raise InvalidParameter(name, value, "is not a multiple of 32", f"try {nearest}", nearest)
        steps = kwargs.get("num_inference_steps", 4)
        if not isinstance(steps, int) or steps < 1:
            raise InvalidParameter("num_inference_steps", steps, "must be an integer >= 1")
        frames = kwargs.get("num_frames", 9)
        if (frames - 1) % 8:
            raise InvalidParameter("num_frames", frames, "is not 8k+1", f"try {(frames - 1) // 8 * 8 + 1}")
        return Params(width, height, frames, kwargs.get("frame_rate", 24.0))

    def latents(self, params: Params, step: int) -> PreviewLatents:
        """Latents for previews: a grid of random cells, a new one each step."""
        shape = (LATENT_CHANNELS, max(1, params.height // CELL), max(1, params.width // CELL))
        grid = torch.randn(shape, generator=torch.Generator().manual_seed(step))
        return PreviewLatents(grid, (0, 1) if self.output_kind == "video" else None)

    def generate(self, progress: Any = None, **kwargs: Any) -> Result:
        params = self.validate(**kwargs)
        self.calls.append(kwargs)
        self.started.set()
        steps = kwargs.get("num_inference_steps", 4)
        for step in range(1, steps + 1):
            while not self.gate.wait(0.05):
                pass
            if self.step_seconds:
                time.sleep(self.step_seconds)
            if progress is not None:
                latents = self.latents(params, step)
                progress(StepEvent("denoise", step, steps, step, steps, 0.0, latents=lambda now=latents: now))
            if step == self.hold_after_step:
                self.gate.clear()
        shape = (params.height, params.width, 3)
        if self.output_kind == "image":
            count = kwargs.get("num_images_per_prompt", 1)
            return Result(images=np.full((count, *shape), 0.5, np.float32), timings={"denoise": 0.01})
        frames = np.random.default_rng(0).random((params.num_frames, *shape), dtype=np.float32)
        audio = np.zeros((2, int(16000 * params.num_frames / params.frame_rate)), np.float32)
        return Result(
            frames=frames,
            audio=audio,
            sample_rate=16000,
            frame_rate=params.frame_rate,
            timings={"denoise": 0.01},
        )


__all__ = ["FakeEngine", "JobCancelled"]
