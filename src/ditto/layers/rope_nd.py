"""Multi-axis rotary position embeddings (FLUX-style): one frequency band per position axis, pairs interleaved.

Each token has an integer position per axis (FLUX.2: time, height, width, text index). Axis `i` owns
`axes_dim[i]` channels of a head; its frequencies are `theta ** (-2k / axes_dim[i])`. As the reference
(diffusers `get_1d_rotary_pos_embed` with `freqs_dtype=float64`), the angle grid is built in float64 and
only the final cos/sin are cast to float32; they are computed once per request, not per step.
Apply them with `ditto.layers.rope.apply_interleaved_rope` (cos/sin broadcast to [1, seq, 1, head_dim]).
"""

from __future__ import annotations

import torch


def rope_cos_sin_nd(
    ids: torch.Tensor, axes_dim: tuple[int, ...], theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape [seq, sum(axes_dim)] (float32) for positions `ids` [seq, n_axes].

    Channels are repeat-interleaved (c0, c0, c1, c1, ...) to match rotation of adjacent pairs.
    """
    # float64 angles where the device has them (MPS has no float64), as the reference does.
    grid_dtype = torch.float32 if ids.device.type == "mps" else torch.float64
    pos = ids.float()
    cos_parts, sin_parts = [], []
    for axis, dim in enumerate(axes_dim):
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=grid_dtype, device=ids.device) / dim))
        angles = torch.outer(pos[:, axis], inv_freq)  # float32 positions x float64 freqs -> float64
        cos_parts.append(angles.cos().repeat_interleave(2, dim=1).float())
        sin_parts.append(angles.sin().repeat_interleave(2, dim=1).float())
    return torch.cat(cos_parts, dim=-1), torch.cat(sin_parts, dim=-1)
