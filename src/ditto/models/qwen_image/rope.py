"""Qwen-Image's 3-axis RoPE (frame, height, width) with centred image positions, text on the diagonal.

Positions, as diffusers' QwenEmbedRope (scale_rope=True):
- image `i` of a request (0 = the generated image, then the reference images of an edit): frame i;
  height rows -(h - h//2) .. h//2 - 1 and the same for width (centred on 0);
- text token j: position m + j on all three axes, where m = max over images of max(h//2, w//2).
With `layer3d=True` (QwenEmbedLayer3DRope, Qwen-Image-Layered) the last image is the condition image at
frame -1 and m is at least the number of layers.

The reference builds its frequency table in float32 (`torch.pow(theta, arange/dim)` and `torch.polar`),
not float64, and angles reach thousands of radians, so ditto builds it the same way: a float64 grid would
move the angles by ~1e-4 rad and the output with them.

Each table is kept in two forms (`Rope`): the reference's complex one, which the eager block multiplies
with as the reference does, and real cos/sin, which a compiled block uses (inductor has no complex kernels).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Rope(NamedTuple):
    """One stream's RoPE table, a row per token, in both forms; the values are the same numbers."""

    cos: torch.Tensor  # [seq, head_dim] float32, each value repeated for its channel pair
    sin: torch.Tensor  # [seq, head_dim] float32, likewise
    cis: torch.Tensor  # [seq, head_dim / 2] complex64: cos + i sin, one per pair (the reference's table)


ImageShape = tuple[int, int, int]  # (frames, latent height / 2, latent width / 2)


def axis_inverse_frequencies(dim: int, theta: float, device: torch.device) -> torch.Tensor:
    """1 / theta**(2k/dim) in float32, exactly as the reference's `rope_params`."""
    exponents = torch.arange(0, dim, 2, device=device).to(torch.float32).div(dim)
    return 1.0 / torch.pow(theta, exponents)


def centred(n: int) -> torch.Tensor:
    """-(n - n//2) .. n//2 - 1: the reference's negative half followed by its positive half."""
    return torch.arange(-(n - n // 2), n // 2)


def image_positions(frame: int, height: int, width: int, frame_index: int) -> torch.Tensor:
    """[frame*height*width, 3] integer positions of one image's tokens, row-major (f, h, w)."""
    f = torch.arange(frame_index, frame_index + frame)
    grid = torch.meshgrid(f, centred(height), centred(width), indexing="ij")
    return torch.stack([g.reshape(-1) for g in grid], dim=-1)


def text_offset(shapes: list[ImageShape], layer3d: bool) -> int:
    offset = max(max(h // 2, w // 2) for _, h, w in shapes)
    return max(offset, len(shapes) - 1) if layer3d else offset


def positions(
    shapes: list[ImageShape], text_len: int, layer3d: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer positions [S_img, 3] of all image tokens (in order) and [S_txt, 3] of the text tokens."""
    last = len(shapes) - 1
    parts = []
    for index, (frame, height, width) in enumerate(shapes):
        frame_index = -1 if layer3d and index == last else index
        parts.append(image_positions(frame, height, width, frame_index))
    start = text_offset(shapes, layer3d)
    text = torch.arange(start, start + text_len)[:, None].expand(text_len, 3)
    return torch.cat(parts), text


def rope_tables(pos: torch.Tensor, axes_dim: tuple[int, ...], theta: float, device: torch.device) -> Rope:
    """The table for integer positions [seq, 3]: sum(axes_dim) channels, axis after axis."""
    units = []
    for axis, dim in enumerate(axes_dim):
        inv = axis_inverse_frequencies(dim, theta, device)
        # Integer positions are exact in float32, so this is the reference's single rounding of index * inv.
        angles = pos[:, axis].to(device=device, dtype=torch.float32)[:, None] * inv[None, :]
        units.append(torch.polar(torch.ones_like(angles), angles))
    cis = torch.cat(units, dim=-1)
    return Rope(cis.real.repeat_interleave(2, dim=-1), cis.imag.repeat_interleave(2, dim=-1), cis)


def qwen_rope(
    shapes: list[ImageShape],
    text_len: int,
    axes_dim: tuple[int, ...],
    theta: float,
    device: torch.device,
    layer3d: bool = False,
) -> tuple[Rope, Rope]:
    """(image rope, text rope) for one request's image shapes and padded text length."""
    img_pos, txt_pos = positions(shapes, text_len, layer3d)
    return rope_tables(img_pos, axes_dim, theta, device), rope_tables(txt_pos, axes_dim, theta, device)
