"""Conditioning videos as LTX-2 latents: an IC-LoRA reference video (ltx-core 1.0.0
VideoConditionByReferenceLatent) and a retake's source video (retake.py's _encode_video_for_retake).

Pixels as ltx_pipelines' load_video_conditioning prepares them: each RGB frame filled and centre-cropped
to the target size with a bilinear resize (no antialias, as for images but without H.264 re-compression),
scaled to [-1, 1]; the clip is encoded by the video VAE (posterior mean, normalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ditto.pipelines.ltx2.conditioning.image import encode_image
from ditto.pipelines.ltx2.conditioning.image_input import fill_and_crop
from ditto.pipelines.ltx2.conditioning.item import ConditioningTools, LatentConditioning
from ditto.pipelines.ltx2.latents import pack_video


def encode_frames(vae: torch.nn.Module, frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """RGB uint8 [F, H, W, 3] (F = 8k + 1) -> normalised latent [1, C, f, height/32, width/32]."""
    pixels = torch.cat([fill_and_crop(frame, height, width) for frame in frames], dim=2)
    return encode_image(vae, pixels)


@dataclass(frozen=True)
class ReferenceVideo:
    """An IC-LoRA control video (depth, pose, edges...): encoded at the stage's size / `downscale`, its
    tokens appended with the positions of a clip of that size starting at frame 0, height and width
    scaled back by `downscale` (the factor the IC-LoRA was trained with), kept with `strength`."""

    frames: np.ndarray  # RGB uint8 [F, H, W, 3]
    strength: float = 1.0
    downscale: int = 1

    def apply_to(self, state: LatentConditioning, tools: ConditioningTools) -> LatentConditioning:
        height, width = (side // self.downscale for side in tools.pixel_size)
        latent = encode_frames(tools.vae, self.frames, height, width)
        frames, lat_h, lat_w = latent.shape[2:]
        coords = tools.rope.prepare_video_coords(
            tools.batch, frames, lat_h, lat_w, tools.device, fps=tools.frame_rate
        ).clone()
        coords[:, 1:] *= self.downscale
        tokens = pack_video(latent).expand(tools.batch, -1, -1)
        return state.append(tokens, self.strength, coords)


@dataclass(frozen=True)
class RetakeWindow:
    """Given tokens (a source's video or audio latent), kept outside [start, end) seconds and regenerated
    inside it: a token is regenerated when its time span overlaps the window (retake.py TemporalRegionMask,
    on the stream's positions, which are in seconds for both streams). An empty window keeps them all."""

    tokens: torch.Tensor  # [1, T, C] normalised packed latent of the source
    start: float
    end: float

    def apply_to(self, state: LatentConditioning, tools: ConditioningTools) -> LatentConditioning:
        time = state.coords[:, 0, : state.generated_tokens]  # [B, T, 2] start/end in seconds
        inside = (time[..., 1] > self.start) & (time[..., 0] < self.end)
        tokens = self.tokens.to(state.clean.device).expand(tools.batch, -1, -1)
        return state.keep(tokens, inside.float().unsqueeze(-1))
