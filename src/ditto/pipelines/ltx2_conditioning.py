"""LTX-2 image conditioning on the packed video state, as ltx-core 1.0.0 applies it.

* An image at frame 0 replaces the tokens of latent frame 0 (VideoConditionByLatentIndex).
* An image at frame k > 0 is encoded alone and its tokens are appended after the generated ones, with
  the positions of a one-latent-frame clip starting at pixel frame k (no causal shift), in seconds
  (VideoConditionByKeyframeIndex, as the ti2vid pipelines combine them). Appended tokens are dropped
  when denoising ends.
* Each conditioned token gets a denoise mask of 1 - strength: the initial state is
  noise * mask + image * (1 - mask), the transformer sees the per-token timestep sigma * mask, x0 comes
  from that timestep, and every x0 prediction is blended back: x0 * mask + image * (1 - mask).

With strength 1 (the default) the conditioned tokens stay the image latent exactly, in every step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ditto.pipelines.ltx2_images import (
    ImageCondition,
    check_compressible,
    check_image_crf,
    image_conditions,
    prepared_pixels,
)
from ditto.pipelines.ltx2_latents import LatentShape, normalize_video, pack_video
from ditto.pipelines.ltx2_params import LTX2Params


@dataclass
class VideoConditioning:
    clean: torch.Tensor  # [B, N, C] float32: image latents where conditioned, 0 elsewhere
    mask: torch.Tensor  # [B, N, 1] float32 denoise mask: 1 = generate, 1 - strength where conditioned
    replaced: (
        torch.Tensor
    )  # [B, N, 1] float32: 1 where an image's tokens were written (whatever the strength)
    coords: torch.Tensor  # [B, 3, N, 2] positions of all N tokens (generated, then appended keyframes)
    generated_tokens: int  # the first T = F*H*W tokens; the rest are appended keyframes
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
        a fresh run, the upsampled stage-1 latent in stage 2) with the image tokens written over it and
        the keyframes appended, mixed with noise by denoise_mask * noise_scale."""
        state = self.clean
        if base is not None:
            padded = torch.cat([base, torch.zeros_like(self.clean[:, base.shape[1] :])], dim=1)
            state = padded * (1 - self.replaced) + self.clean * self.replaced
        scaled = self.mask * noise_scale
        return noise * scaled + state * (1 - scaled)

    def blend(self, x0: torch.Tensor) -> torch.Tensor:
        """ltx_pipelines post_process_latent: conditioned tokens are pulled back to the image."""
        return x0 * self.mask + self.clean * (1 - self.mask)

    def repeat(self, times: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask [B*times, N], coords) for a batch stacked `times` over (the CFG pair)."""
        return self.mask[..., 0].repeat(times, 1), self.coords.repeat(times, 1, 1, 1)


def encode_image(vae: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """[1, 3, 1, H, W] in [-1, 1] -> normalised latent [1, C, 1, h, w]: the posterior mean (the official
    VideoEncoder returns the normalised means; diffusers takes the distribution's mode, the same tensor)."""
    posterior = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    return normalize_video(posterior.mode().float(), vae)


def build_conditioning(
    conditions: list[ImageCondition],
    vae: torch.nn.Module,
    rope: torch.nn.Module,
    shape: LatentShape,
    batch: int,
    frame_rate: float,
    pixel_size: tuple[int, int],
    crf: int,
) -> VideoConditioning:
    """Encode every image and lay the conditioned tokens, masks and positions out as ltx-core does."""
    device = vae.device
    tokens = shape.video_tokens
    clean = torch.zeros(batch, tokens, shape.channels, device=device)
    mask = torch.ones(batch, tokens, 1, device=device)
    replaced = torch.zeros(batch, tokens, 1, device=device)
    coords = [
        rope.prepare_video_coords(batch, shape.frames, shape.height, shape.width, device, fps=frame_rate)
    ]
    extra_clean, extra_mask = [], []
    for condition in conditions:
        latent = pack_video(encode_image(vae, prepared_pixels(condition, *pixel_size, crf)))
        latent = latent.expand(batch, -1, -1)
        if condition.frame_index == 0:
            frame = latent.shape[1]  # latent frame 0 is the first H*W tokens
            clean[:, :frame] = latent
            mask[:, :frame] = 1.0 - condition.strength
            replaced[:, :frame] = 1.0
            continue
        extra_clean.append(latent)
        extra_mask.append(torch.full((batch, latent.shape[1], 1), 1.0 - condition.strength, device=device))
        coords.append(keyframe_coords(rope, batch, shape, condition.frame_index, frame_rate, device))
    return VideoConditioning(
        clean=torch.cat([clean, *extra_clean], dim=1),
        mask=torch.cat([mask, *extra_mask], dim=1),
        replaced=torch.cat([replaced, *[torch.ones_like(m) for m in extra_mask]], dim=1),
        coords=torch.cat(coords, dim=2),
        generated_tokens=tokens,
    )


def keyframe_coords(
    rope: torch.nn.Module, batch: int, shape: LatentShape, frame: int, frame_rate: float, device: torch.device
) -> torch.Tensor:
    """Positions of one appended latent frame: height/width as any frame's; time [frame, frame + 8) pixel
    frames in seconds, without the causal first-frame shift (get_pixel_coords(causal_fix=False) + frame)."""
    coords = rope.prepare_video_coords(batch, 1, shape.height, shape.width, device, fps=frame_rate).clone()
    span = rope.scale_factors[0] * rope.patch_size_t
    time = torch.tensor([0.0, float(span)], dtype=torch.float32, device=device) + frame
    coords[:, 0] = (time / frame_rate).view(1, 1, 2)
    return coords


def with_image_conditions(params: LTX2Params) -> LTX2Params:
    """`image=` checked and decoded once, at validation (every pipeline and sampler conditions on it)."""
    conditions = image_conditions(params.image, params.num_frames)
    if not conditions:
        return dataclasses.replace(params, image=None)
    crf = check_image_crf(params.image_crf)
    for condition in conditions:
        check_compressible(condition, crf)
    return dataclasses.replace(params, image=conditions)
