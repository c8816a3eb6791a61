"""What a generation returns, and how it is written to disk."""

from __future__ import annotations

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
    stats: what the request's loop features did (runtime.LoopInfo.stats), e.g. a step cache's counts.
    """

    frames: Any = None
    images: Any = None
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    frame_rate: float | None = None
    latents: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    batch_frames: list[np.ndarray] | None = None
    batch_audio: list[np.ndarray] | None = None

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

    def timing_line(self) -> str:
        parts = [f"{name} {seconds:.2f}s" for name, seconds in self.timings.items()]
        return "time per stage: " + ", ".join(parts)
