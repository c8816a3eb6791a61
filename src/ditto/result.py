"""What a generation returns, and how it is written to disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Result:
    """Output of `Engine.generate`.

    frames: video frames np.float32 [F, H, W, 3] in [0, 1] (video families, first prompt), or a list for batches.
    images: still images np.float32 [N, H, W, 3] in [0, 1] (image families).
    audio: np.float32 [channels, samples]; sample_rate in Hz.
    latents: {"video": tensor, "audio": tensor} (or {"image": ...}) when output_type="latent".
    timings: seconds per stage, in the order the stages ran.
    memory: bytes per stage, the device allocator's peak while the stage ran (read, not estimated; GPU only).
    stats: what the request's loop features did (runtime.LoopInfo.stats), e.g. a step cache's counts.
    seed: the seed the request ran with (Engine.generate draws one when none is given); None with a generator.
    request: the request as it ran (defaults filled in), the model and ditto's version: written into every
        saved file's metadata (PNG text chunks, MP4 tags; media/metadata.py), each file with its own prompt.
    """

    frames: Any = None
    images: Any = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    frame_rate: float | None = None
    latents: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    batch_frames: list[np.ndarray] | None = None
    batch_audio: list[np.ndarray] | None = None
    seed: int | None = None
    request: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> list[Path]:
        """Write the result: `.mp4` (H.264 + AAC) for video; for images `.png`, `.jpg`/`.jpeg` (JPEG, quality
        95) or `.webp` (lossless), as name-0.png, name-1.png, ... for several."""
        from ditto.media.writer import save_result

        return save_result(self, Path(path))

    @property
    def cache_stats(self) -> dict[str, Any] | None:
        """The step cache's record (acceleration/step_cache): its spec, and per sampling loop the computed
        and cached passes of each pass kind (or why the loop ran uncached); None without a cache."""
        return self.stats.get("cache")

    def prompt_index(self, index: int, count: int) -> int:
        """Which prompt output `index` of `count` came from: each prompt's outputs are consecutive (the
        families repeat each prompt's row num_images/num_videos_per_prompt times, prompt by prompt)."""
        prompts = self.prompts
        per_prompt = max(count // max(len(prompts), 1), 1)
        return min(index // per_prompt, max(len(prompts) - 1, 0))

    @property
    def prompts(self) -> list[str]:
        prompt = self.request.get("prompt", [])
        return [prompt] if isinstance(prompt, str) else list(prompt)

    def file_metadata(self, index: int, count: int) -> dict[str, str]:
        """What output `index` of `count` records: the request with that output's own prompt and negative
        prompt, its place in the batch, the seed; text values (numbers as Python writes them)."""
        if not self.request:
            return {}
        k = self.prompt_index(index, count)
        record = {**self.request, "seed": self.seed}
        for name in ("prompt", "negative_prompt"):
            value = record.get(name)
            if isinstance(value, list):
                record[name] = value[k]
        if count > 1:
            record.update(batch_index=index, batch_size=count)
        return {key: _text(value) for key, value in record.items() if value is not None}

    def timing_line(self) -> str:
        parts = [f"{name} {seconds:.2f}s" for name, seconds in self.timings.items()]
        return "time per stage: " + ", ".join(parts)

    def memory_line(self) -> str | None:
        """The device's peak memory per stage, or None where none was read (the CPU)."""
        if not self.memory:
            return None
        parts = [f"{name} {size / 2**30:.2f} GiB" for name, size in self.memory.items()]
        return "peak device memory per stage: " + ", ".join(parts)


def _text(value: Any) -> str:
    """A metadata value as text: strings as they are, lists as JSON, numbers as Python writes them."""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
