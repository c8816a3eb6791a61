"""Cheap previews of a running job: its current latents projected linearly to RGB, one pixel per latent cell.

No decoder runs: a preview is one [cells, C] x [C, 3] product on the model's device, a copy of a few KiB to
the host and a PNG of rows x cols pixels (e.g. 38x22 for a 1216x704 LTX-2 video, 64x64 for a 1024x1024
FLUX.2 image); the page scales it up.

The projection is learned from this server's own finished jobs: each one's last latents against the
output they decoded to (each latent cell against the mean colour of the pixels it stands for), summed as
least-squares normal equations over jobs, so it fits whatever checkpoint (and fused LoRA) is served, and no
model needs a table of colour factors. Until a job has finished, the three principal directions of the
current latents show the picture's structure in false colours.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import torch
from PIL import Image

from ditto.runtime.progress import PreviewLatents

RIDGE = 1e-3  # relative to the mean diagonal of X^T X: keeps a map fitted on few cells (tiny models) finite
SPREAD = 2.5  # false colours: a principal component's +-SPREAD standard deviations span 0..255


class LatentPreviewer:
    """One per server (its engine's latent space); thread-safe: the worker renders and learns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._xtx: np.ndarray | None = None  # [C+1, C+1] sum over learned cells of [x, 1]^T [x, 1]
        self._xty: np.ndarray | None = None  # [C+1, 3]
        self._weights: torch.Tensor | None = None  # [C+1, 3] float32 on the host, solved after each job
        self.jobs_learned = 0

    def render(self, latents: PreviewLatents) -> bytes:
        """The preview as PNG bytes: rows x cols pixels."""
        grid = latents.grid.detach()
        channels, rows, cols = grid.shape
        cells = grid.reshape(channels, rows * cols).t().float()  # [N, C], still on the model's device
        weights = self._weights_for(channels)
        if weights is not None:
            weights = weights.to(cells.device)
            rgb = (cells @ weights[:channels] + weights[channels]).clamp(0, 1) * 255
        else:
            rgb = false_colours(cells)
        pixels = rgb.round().to(torch.uint8).reshape(rows, cols, 3).cpu().numpy()
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
        return out.getvalue()

    def learn(self, latents: PreviewLatents, output: np.ndarray) -> None:
        """Add one finished job: its last latents (`latents.grid` on the host) and its output pixels in
        [0, 1] ([frames, H, W, 3] for a video, [images, H, W, 3] for images: the first is the grid's)."""
        grid = latents.grid.detach().float().cpu()
        channels, rows, cols = grid.shape
        if latents.frames is not None:
            start, stop = latents.frames
            picture = output[start:stop].mean(axis=0)
        else:
            picture = output[0]
        target = torch.from_numpy(np.ascontiguousarray(picture, dtype=np.float32)).permute(2, 0, 1)
        target = torch.nn.functional.adaptive_avg_pool2d(target[None], (rows, cols))[0]
        x = torch.cat([grid.reshape(channels, -1).t(), torch.ones(rows * cols, 1)], dim=1).double().numpy()
        y = target.reshape(3, -1).t().double().numpy()
        with self._lock:
            if self._xtx is None or self._xtx.shape[0] != channels + 1:
                self._xtx, self._xty = np.zeros((channels + 1,) * 2), np.zeros((channels + 1, 3))
            self._xtx += x.T @ x
            self._xty += x.T @ y
            ridge = RIDGE * max(float(np.trace(self._xtx)) / (channels + 1), 1e-12)
            solved = np.linalg.solve(self._xtx + ridge * np.eye(channels + 1), self._xty)
            self._weights = torch.from_numpy(solved).float()
            self.jobs_learned += 1

    def _weights_for(self, channels: int) -> torch.Tensor | None:
        with self._lock:
            weights = self._weights
        return weights if weights is not None and weights.shape[0] == channels + 1 else None

    def describe(self) -> dict[str, Any]:
        return {
            "colours": "learned" if self._weights is not None else "false",
            "jobs_learned": self.jobs_learned,
        }


def false_colours(cells: torch.Tensor) -> torch.Tensor:
    """[N, C] -> [N, 3] in 0..255: the cells along their three principal directions (each direction's sign
    chosen so its largest loading is positive, so colours do not flip from one step to the next)."""
    centred = cells - cells.mean(dim=0)
    covariance = centred.t() @ centred / max(cells.shape[0] - 1, 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    top = vectors[:, -3:].flip(1)
    if top.shape[1] < 3:  # fewer than 3 channels: repeat the last direction
        top = torch.cat([top, top[:, -1:].expand(-1, 3 - top.shape[1])], dim=1)
    largest = top.abs().argmax(dim=0)
    loading = top[largest, torch.arange(3, device=top.device)]
    top = top * torch.where(loading >= 0, 1.0, -1.0)
    projected = centred @ top
    scale = projected.std(dim=0).clamp(min=1e-6) * SPREAD
    return ((projected / scale + 1) * 127.5).clamp(0, 255)
