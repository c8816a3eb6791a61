"""Progress of a request's step loops: one tqdm bar per loop and one callback over the whole request.

A request may run several loops (LTX-2's two stages); its `Progress` counts steps across all of them, so
`StepEvent.step / StepEvent.total` is the request's own fraction. The callback may raise `JobCancelled` to
stop the request between steps (the server's cancel); it is called on the host after the step was queued,
so it never forces a device sync. A callback whose `replaces_bar` attribute is true reports progress its
own way (the server logs lines), and no bar is drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm


@dataclass(frozen=True)
class PreviewLatents:
    """The current latents of a request's first output as one spatial grid, for a cheap preview.

    `grid` is [C, rows, cols] (on the model's device), the latent cells in raster order; each cell stands
    for an equal rectangle of the output. A video gives one latent frame, and `frames` says which output
    frames it stands for ([start, stop)); an image leaves it None."""

    grid: Any
    frames: tuple[int, int] | None = None


@dataclass(frozen=True)
class StepEvent:
    """One finished step. `latents` gives the loop's current latents on demand (for previews, as
    `PreviewLatents`), or is None where the loop offers none; calling it costs a view, never a decode."""

    stage: str
    step: int  # steps done in the whole request
    total: int  # steps of the whole request
    stage_step: int  # steps done in this loop
    stage_total: int  # steps of this loop
    elapsed: float  # seconds since the request's first step began
    latents: Callable[[], PreviewLatents] | None = None


ProgressCallback = Callable[[StepEvent], None]


def token_grid(tokens: Any, rows: int, cols: int, first: int = 0, frames: tuple[int, int] | None = None):
    """`PreviewLatents` of the first request's tokens [B, N, C] read in raster order from token `first`:
    a view, so a loop can offer it every step for nothing."""
    cells = tokens[0, first : first + rows * cols]
    return PreviewLatents(cells.unflatten(0, (rows, cols)).permute(2, 0, 1), frames)


class Progress:
    """Counts the steps of a request's loops and reports each one."""

    def __init__(self, total: int, callback: ProgressCallback | None = None) -> None:
        self.total = total
        self.callback = callback
        self.done = 0
        self.started: float | None = None
        self.bar = not getattr(callback, "replaces_bar", False)

    @contextmanager
    def loop(self, stage: str, steps: int) -> Iterator[Callable[..., None]]:
        """Within it, call the yielded `step(latents=None)` once per finished step of this loop."""
        if self.started is None:
            self.started = time.perf_counter()
        first = self.done
        quiet = {} if self.bar else {"disable": True}  # not disable=False: that would beat TQDM_DISABLE
        with tqdm(total=steps, desc=stage, unit="step", leave=False, **quiet) as bar:

            def step(latents: Callable[[], PreviewLatents] | None = None) -> None:
                self.done += 1
                bar.update(1)
                if self.callback is not None:
                    self.callback(
                        StepEvent(
                            stage=stage,
                            step=self.done,
                            total=self.total,
                            stage_step=self.done - first,
                            stage_total=steps,
                            elapsed=time.perf_counter() - (self.started or 0.0),
                            latents=latents,
                        )
                    )

            yield step
