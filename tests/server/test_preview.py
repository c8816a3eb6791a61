"""The latent previewer: its colour map, learned from finished jobs, reproduces a linear latent->RGB relation;
before it has learned, false colours show the latents' structure the same way every time."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ditto.runtime.progress import PreviewLatents
from ditto.server.preview import LatentPreviewer

CHANNELS, ROWS, COLS, CELL = 8, 6, 10, 4


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def linear_world(seed: int) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, torch.Tensor]:
    """Latents and the output a decoder that is exactly linear per cell would make of them."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(CHANNELS, 3, generator=torch.Generator().manual_seed(99)) * 0.05
    bias = torch.tensor([0.5, 0.4, 0.6])
    grid = torch.randn(CHANNELS, ROWS, COLS, generator=generator)
    colours = (grid.flatten(1).t() @ weights + bias).reshape(ROWS, COLS, 3)
    pixels = colours.numpy().repeat(CELL, axis=0).repeat(CELL, axis=1)  # each cell: CELL x CELL pixels
    return grid, pixels, weights, bias


def test_learned_colours_match_a_linear_decoder():
    previewer = LatentPreviewer()
    for seed in range(3):  # jobs of a video family: the grid stands for output frames 1..8
        grid, pixels, _, _ = linear_world(seed)
        frames = np.stack([pixels * 0] + [pixels] * 8)  # frame 0 is not the grid's
        previewer.learn(PreviewLatents(grid, (1, 9)), frames)
    assert previewer.describe() == {"colours": "learned", "jobs_learned": 3}
    grid, pixels, weights, bias = linear_world(seed=7)  # a job it never saw
    shown = png_pixels(previewer.render(PreviewLatents(grid)))
    expected = np.clip((grid.flatten(1).t() @ weights + bias).reshape(ROWS, COLS, 3).numpy(), 0, 1) * 255
    assert shown.shape == (ROWS, COLS, 3)
    assert np.abs(shown - expected).max() <= 2.0  # measured 0.71 (rounding to 8 bits, the ridge), x2.8


def test_false_colours_before_any_job_finished():
    previewer = LatentPreviewer()
    grid = torch.zeros(CHANNELS, ROWS, COLS)
    grid[0, :, : COLS // 2] = 1.0  # a left half and a right half
    first = previewer.render(PreviewLatents(grid))
    assert previewer.render(PreviewLatents(grid.clone())) == first  # the same picture every time
    shown = png_pixels(first)
    left, right = shown[:, : COLS // 2].reshape(-1, 3), shown[:, COLS // 2 :].reshape(-1, 3)
    assert np.ptp(left, axis=0).max() == 0 and np.ptp(right, axis=0).max() == 0  # each half one colour
    assert np.abs(left[0] - right[0]).max() > 100  # and the halves far apart


def test_a_map_for_other_channels_is_not_used():
    previewer = LatentPreviewer()
    grid, pixels, _, _ = linear_world(0)
    previewer.learn(PreviewLatents(grid), pixels[None])
    other = torch.randn(CHANNELS + 4, ROWS, COLS)
    assert png_pixels(previewer.render(PreviewLatents(other))).shape == (ROWS, COLS, 3)  # false colours
