"""The conditioning interface, in the manner of ltx-core's `ConditioningItem` (conditioning/item.py): each kind
of conditioning is a small item that applies itself to the packed, conditioned video state.

The state (`LatentConditioning`) is ltx-core's `LatentState` for what ditto's loops read: the clean tokens
the prediction is pulled back to, the per-token denoise mask (1 = generate), which tokens an item wrote,
and the positions of every token. An item either writes over generated tokens (an image at frame 0,
ltx-core's VideoConditionByLatentIndex) or appends its own after them (a keyframe,
VideoConditionByKeyframeIndex), with their positions; appended tokens are dropped when denoising ends.

The same state serves the audio stream (`unconditioned_audio`): a retake window or an input audio track
keeps given audio tokens with a per-token mask, as ltx-core applies its items to either stream's
LatentState. The items: image.py (first frame, keyframes), reference_video.py (IC-LoRA), window.py (a
retake's time window), audio.py (input audio).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ditto.pipelines.ltx2.latents import LatentShape


@dataclass(frozen=True)
class ConditioningTools:
    """What items need to apply themselves (ltx-core's LatentTools): the encoders, the target grid, the
    request's size, frame rate and image re-compression."""

    vae: torch.nn.Module
    rope: torch.nn.Module  # the transformer's video RoPE: it lays out token positions
    shape: LatentShape
    batch: int
    frame_rate: float
    pixel_size: tuple[int, int]  # (height, width) in pixels
    crf: int  # H.264 re-compression of conditioning images (0: none)
    audio_rope: torch.nn.Module | None = None  # the transformer's audio RoPE (audio-stream items)

    @property
    def device(self) -> torch.device:
        return self.vae.device


@dataclass(frozen=True)
class LatentConditioning:
    """One stream's conditioned state (video tokens [B, N, C], or audio tokens [B, L, C*M])."""

    clean: torch.Tensor  # [B, N, C] float32: conditioning latents where conditioned, 0 elsewhere
    mask: torch.Tensor  # [B, N, 1] float32 denoise mask: 1 = generate, 1 - strength where conditioned
    replaced: torch.Tensor  # [B, N, 1] float32: 1 where an item wrote tokens (whatever the strength)
    coords: torch.Tensor  # [B, 3, N, 2] positions of all N tokens (generated, then appended ones)
    generated_tokens: int  # the first T = F*H*W tokens; the rest were appended by items
    # "official": a kept token's x0 uses its own timestep (sigma * mask); "diffusers": sigma, as
    # LTX2ImageToVideoPipeline converts every token (only guidance rescale's std sees the difference).
    x0_rule: str = "official"

    @property
    def extra_tokens(self) -> int:
        return self.clean.shape[1] - self.generated_tokens

    def initial(
        self, noise: torch.Tensor, base: torch.Tensor | None = None, noise_scale: float | torch.Tensor = 1.0
    ) -> torch.Tensor:
        """ltx_core GaussianNoiser on the conditioned state: `base` (the generated tokens' latent, zeros for
        a fresh run, the upsampled stage-1 latent in stage 2) with the items' tokens written over it and
        the appended ones after it, mixed with noise by denoise_mask * noise_scale."""
        state = self.clean
        if base is not None:
            padded = torch.cat([base, torch.zeros_like(self.clean[:, base.shape[1] :])], dim=1)
            state = padded * (1 - self.replaced) + self.clean * self.replaced
        scaled = self.mask * noise_scale
        return noise * scaled + state * (1 - scaled)

    def blend(self, x0: torch.Tensor) -> torch.Tensor:
        """ltx_pipelines post_process_latent: conditioned tokens are pulled back to their clean values."""
        return x0 * self.mask + self.clean * (1 - self.mask)

    def repeat(self, times: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask [B*times, N], coords) for a batch stacked `times` over (the CFG pair)."""
        return self.mask[..., 0].repeat(times, 1), self.coords.repeat(times, 1, 1, 1)

    def append(self, tokens: torch.Tensor, strength: float, coords: torch.Tensor) -> LatentConditioning:
        """This state with `tokens` [B, n, C] appended at `coords` [B, 3, n, 2], kept with `strength`."""
        mask = torch.full((*tokens.shape[:2], 1), 1.0 - strength, device=tokens.device)
        return dataclasses.replace(
            self,
            clean=torch.cat([self.clean, tokens], dim=1),
            mask=torch.cat([self.mask, mask], dim=1),
            replaced=torch.cat([self.replaced, torch.ones_like(mask)], dim=1),
            coords=torch.cat([self.coords, coords], dim=2),
        )

    def write(self, start: int, tokens: torch.Tensor, strength: float) -> LatentConditioning:
        """This state with generated tokens [start, start + n) replaced by `tokens`, kept with `strength`."""
        clean, mask, replaced = self.clean.clone(), self.mask.clone(), self.replaced.clone()
        stop = start + tokens.shape[1]
        clean[:, start:stop] = tokens
        mask[:, start:stop] = 1.0 - strength
        replaced[:, start:stop] = 1.0
        return dataclasses.replace(self, clean=clean, mask=mask, replaced=replaced)

    def keep(self, tokens: torch.Tensor, mask: torch.Tensor) -> LatentConditioning:
        """Every generated token given (`tokens` [B, T, C], ltx-core's initial latent) with its own denoise
        mask [B, T, 1] (0 = kept as given, 1 = generated): a retake window, an input audio track."""
        clean, denoise, replaced = self.clean.clone(), self.mask.clone(), self.replaced.clone()
        stop = tokens.shape[1]
        clean[:, :stop] = tokens
        denoise[:, :stop] = mask
        replaced[:, :stop] = 1.0
        return dataclasses.replace(self, clean=clean, mask=denoise, replaced=replaced)


# The name the video path has always used; the same class holds the audio stream's state.
VideoConditioning = LatentConditioning


class ConditioningItem(Protocol):
    """One conditioning of a request (ltx-core's ConditioningItem): returns the state with itself applied.
    An item that adds tokens appends them after every token already there."""

    def apply_to(self, state: LatentConditioning, tools: ConditioningTools) -> LatentConditioning: ...


def unconditioned(tools: ConditioningTools, x0_rule: str = "official") -> LatentConditioning:
    """The state before any item: nothing kept, every token generated, at its place on the latent grid."""
    shape, batch, device = tools.shape, tools.batch, tools.device
    tokens = shape.video_tokens
    coords = tools.rope.prepare_video_coords(
        batch, shape.frames, shape.height, shape.width, device, fps=tools.frame_rate
    )
    return LatentConditioning(
        clean=torch.zeros(batch, tokens, shape.channels, device=device),
        mask=torch.ones(batch, tokens, 1, device=device),
        replaced=torch.zeros(batch, tokens, 1, device=device),
        coords=coords,
        generated_tokens=tokens,
        x0_rule=x0_rule,
    )


def unconditioned_audio(tools: ConditioningTools) -> LatentConditioning:
    """The audio stream's state before any item: every token generated, at its place in time."""
    shape, batch, device = tools.shape, tools.batch, tools.device
    coords = tools.audio_rope.prepare_audio_coords(batch, shape.audio_frames, device)
    return LatentConditioning(
        clean=torch.zeros(batch, shape.audio_frames, shape.audio_token_channels, device=device),
        mask=torch.ones(batch, shape.audio_frames, 1, device=device),
        replaced=torch.zeros(batch, shape.audio_frames, 1, device=device),
        coords=coords,
        generated_tokens=shape.audio_frames,
    )


def apply_items(
    items: Sequence[ConditioningItem],
    tools: ConditioningTools,
    x0_rule: str = "official",
    start: LatentConditioning | None = None,
) -> LatentConditioning:
    """Every item applied in order to `start` (default: the unconditioned video state)."""
    state = unconditioned(tools, x0_rule) if start is None else start
    for item in items:
        state = item.apply_to(state, tools)
    return state
