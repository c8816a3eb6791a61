"""LTX-2 positions: patch coordinates in pixel/seconds space and their RoPE cos/sin tables.

Coordinates are [B, axes, tokens, 2] holding each patch's [start, end) bounds; the rope takes the
midpoint, divides by the base extent of each axis and turns it into angles over a float64-built
frequency vector (ditto.layers.rope).
"""

from __future__ import annotations

import torch
from torch import nn

from ditto.layers.rope import rope_tables

_COORDS_CACHE_SIZE = 16


class LTX2Rope(nn.Module):
    """Position helper for one modality ("video": frame/height/width axes, "audio": time axis).

    Has no parameters. prepare_*_coords results are cached per argument tuple (they depend only on
    shapes and scalars); callers get a clone, so in-place edits cannot poison the cache.
    """

    def __init__(
        self,
        dim: int,
        modality: str,
        patch_size: int = 1,
        patch_size_t: int = 1,
        base_num_frames: int = 20,
        base_height: int = 2048,
        base_width: int = 2048,
        sampling_rate: int = 16000,
        hop_length: int = 160,
        scale_factors: tuple[int, ...] = (8, 32, 32),
        theta: float = 10000.0,
        causal_offset: int = 1,
        rope_type: str = "interleaved",
        num_heads: int = 32,
        double_precision: bool = True,
    ) -> None:
        super().__init__()
        if rope_type not in ("interleaved", "split"):
            raise ValueError(f"rope_type={rope_type!r} is not supported; use 'interleaved' or 'split'")
        if modality not in ("video", "audio"):
            raise ValueError(f"modality={modality!r} is not supported; use 'video' or 'audio'")
        self.dim, self.modality, self.rope_type, self.num_heads = dim, modality, rope_type, num_heads
        self.patch_size, self.patch_size_t = patch_size, patch_size_t
        self.theta, self.causal_offset, self.double_precision = theta, causal_offset, double_precision
        self.scale_factors = tuple(scale_factors)
        self.sampling_rate, self.hop_length = sampling_rate, hop_length
        if modality == "video":
            self.max_positions: tuple[float, ...] = (base_num_frames, base_height, base_width)
        else:
            self.max_positions = (base_num_frames,)
        self._coords_cache: dict[tuple, torch.Tensor] = {}
        # Half-width interleaved tables (layers/rope.py `rope_tables(compact=True)`): the same rotation,
        # bit for bit, with half the table reads. A switch so benchmarks can measure both.
        self.compact = True

    def _cached(self, key: tuple, build) -> torch.Tensor:
        coords = self._coords_cache.get(key)
        if coords is None:
            if len(self._coords_cache) >= _COORDS_CACHE_SIZE:
                self._coords_cache.pop(next(iter(self._coords_cache)))
            coords = build()
            self._coords_cache[key] = coords
        return coords.clone()

    def prepare_video_coords(
        self,
        batch_size: int,
        num_frames: int,
        height: int,
        width: int,
        device: torch.device | str,
        fps: float = 24.0,
    ) -> torch.Tensor:
        """[B, 3, F*H*W, 2] patch bounds: frames in seconds (causal first frame), height/width in pixels."""
        device = torch.device(device)
        key = ("video", batch_size, num_frames, height, width, float(fps), device)
        return self._cached(
            key, lambda: self._video_coords(batch_size, num_frames, height, width, device, fps)
        )

    def _video_coords(self, batch: int, frames: int, height: int, width: int, device, fps: float):
        steps = (self.patch_size_t, self.patch_size, self.patch_size)
        axes = [
            torch.arange(0, n, s, dtype=torch.float32, device=device)
            for n, s in zip((frames, height, width), steps)
        ]
        start = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0)  # [3, f, h, w]
        end = start + torch.tensor(steps, dtype=torch.float32, device=device).view(3, 1, 1, 1)
        bounds = torch.stack([start, end], dim=-1).flatten(1, 3)  # [3, tokens, 2] in latent units
        pixels = bounds * torch.tensor(self.scale_factors, dtype=torch.float32, device=device).view(3, 1, 1)
        # The causal VAE maps latent frame 0 to a single pixel frame: shift so frame 0 starts at 0.
        time = (pixels[0] + self.causal_offset - self.scale_factors[0]).clamp(min=0) / fps
        pixels = torch.cat([time.unsqueeze(0), pixels[1:]], dim=0)
        return pixels.unsqueeze(0).repeat(batch, 1, 1, 1)

    def prepare_audio_coords(
        self, batch_size: int, num_frames: int, device: torch.device | str, shift: int = 0
    ) -> torch.Tensor:
        """[B, 1, frames, 2] [start, end) times in seconds of each audio latent frame."""
        device = torch.device(device)
        key = ("audio", batch_size, num_frames, int(shift), device)
        return self._cached(key, lambda: self._audio_coords(batch_size, num_frames, device, shift))

    def _audio_coords(self, batch: int, frames: int, device, shift: int) -> torch.Tensor:
        factor = self.scale_factors[0]
        latent = torch.arange(shift, frames + shift, self.patch_size_t, dtype=torch.float32, device=device)

        def seconds(latent_index: torch.Tensor) -> torch.Tensor:
            mel = (latent_index * factor + self.causal_offset - factor).clip(min=0)
            return mel * self.hop_length / self.sampling_rate

        bounds = torch.stack([seconds(latent), seconds(latent + self.patch_size_t)], dim=-1)
        return bounds.unsqueeze(0).expand(batch, -1, -1).unsqueeze(1)

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables for coords [B, axes, tokens, 2] (bounds) or [B, axes, tokens] (points)."""
        if coords.ndim == 4:
            coords = (coords[..., 0] + coords[..., 1]) / 2.0
        num_axes = coords.shape[1]
        fractions = torch.stack([coords[:, i] / self.max_positions[i] for i in range(num_axes)], dim=-1)
        return rope_tables(
            fractions, self.dim, self.theta, self.rope_type, self.num_heads, self.double_precision,
            compact=self.compact,
        )  # fmt: skip
