"""Conditioning on images, as ltx-core 1.0.0 applies them (conditioning/item.py has the interface).

* An image at frame 0 replaces the tokens of latent frame 0 (`FirstFrameImage`, ltx-core's
  VideoConditionByLatentIndex).
* An image at frame k > 0 is encoded alone and its tokens are appended after the generated ones, with
  the positions of a one-latent-frame clip starting at pixel frame k (no causal shift), in seconds
  (`KeyframeImage`, VideoConditionByKeyframeIndex, as the ti2vid pipelines combine them).
* Each conditioned token gets a denoise mask of 1 - strength: the initial state is
  noise * mask + image * (1 - mask), the transformer sees the per-token timestep sigma * mask, x0 comes
  from that timestep, and every x0 prediction is blended back: x0 * mask + image * (1 - mask).

With strength 1 (the default) the conditioned tokens stay the image latent exactly, in every step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ditto.pipelines.ltx2.conditioning.image_input import (
    ImageCondition,
    check_compressible,
    check_image_crf,
    image_conditions,
    prepared_pixels,
)
from ditto.pipelines.ltx2.conditioning.item import (
    ConditioningItem,
    ConditioningTools,
    VideoConditioning,
    apply_items,
)
from ditto.pipelines.ltx2.latents import LatentShape, normalize_video, pack_video
from ditto.pipelines.ltx2.params import LTX2Params


def encode_image(vae: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """[1, 3, 1, H, W] in [-1, 1] -> normalised latent [1, C, 1, h, w]: the posterior mean (the official
    VideoEncoder returns the normalised means; diffusers takes the distribution's mode, the same tensor)."""
    posterior = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    return normalize_video(posterior.mode().float(), vae)


def image_tokens(image: ImageCondition, tools: ConditioningTools) -> torch.Tensor:
    """The image at the request's size, encoded and packed: [batch, h*w, C]."""
    pixels = prepared_pixels(image, *tools.pixel_size, tools.crf)
    return pack_video(encode_image(tools.vae, pixels)).expand(tools.batch, -1, -1)


@dataclass(frozen=True)
class FirstFrameImage:
    """An image at frame 0: its tokens replace those of latent frame 0 (the first h*w tokens)."""

    image: ImageCondition

    def apply_to(self, state: VideoConditioning, tools: ConditioningTools) -> VideoConditioning:
        return state.write(0, image_tokens(self.image, tools), self.image.strength)


@dataclass(frozen=True)
class KeyframeImage:
    """An image at pixel frame k > 0: its tokens appended, at the positions of a clip starting at frame k."""

    image: ImageCondition

    def apply_to(self, state: VideoConditioning, tools: ConditioningTools) -> VideoConditioning:
        coords = keyframe_coords(
            tools.rope, tools.batch, tools.shape, self.image.frame_index, tools.frame_rate, tools.device
        )
        return state.append(image_tokens(self.image, tools), self.image.strength, coords)


def keyframe_coords(
    rope: torch.nn.Module, batch: int, shape: LatentShape, frame: int, frame_rate: float, device: torch.device
) -> torch.Tensor:
    """Positions of one appended latent frame: height/width as any frame's; time [frame, frame + 8) pixel
    frames in seconds, without the causal first-frame shift (get_pixel_coords(causal_fix=False) + frame).
    At frame 0 (keyframe interpolation appends its first frame too) the shift applies, as the official
    VideoConditionByKeyframeIndex keeps causal_fix there: the first latent frame's own positions."""
    coords = rope.prepare_video_coords(batch, 1, shape.height, shape.width, device, fps=frame_rate).clone()
    if frame == 0:
        return coords
    span = rope.scale_factors[0] * rope.patch_size_t
    time = torch.tensor([0.0, float(span)], dtype=torch.float32, device=device) + frame
    coords[:, 0] = (time / frame_rate).view(1, 1, 2)
    return coords


def image_items(conditions: list[ImageCondition], guiding: bool = False) -> list[ConditioningItem]:
    """One item per conditioning image, in the order given: frame 0 replaces the first latent frame
    (combined_image_conditionings), or, with `guiding`, every image is an appended keyframe, frame 0 too
    (keyframe interpolation's image_conditionings_by_adding_guiding_latent)."""
    if guiding:
        return [KeyframeImage(c) for c in conditions]
    return [FirstFrameImage(c) if c.frame_index == 0 else KeyframeImage(c) for c in conditions]


def conditioning_tools(
    params: LTX2Params, vae: torch.nn.Module, rope: torch.nn.Module, shape: LatentShape, batch: int
) -> ConditioningTools:
    """What items need at `shape` for this request."""
    return ConditioningTools(
        vae=vae,
        rope=rope,
        shape=shape,
        batch=batch,
        frame_rate=float(params.frame_rate),
        pixel_size=(params.height, params.width),
        crf=check_image_crf(params.image_crf),
    )


def image_conditioning(
    params: LTX2Params,
    vae: torch.nn.Module,
    rope: torch.nn.Module,
    shape: LatentShape,
    batch: int,
    guiding: bool = False,
) -> VideoConditioning | None:
    """The request's images applied at `shape` (None without images): encoded, masked and positioned."""
    if not params.image:
        return None
    tools = conditioning_tools(params, vae, rope, shape, batch)
    return apply_items(image_items(params.image, guiding), tools, params.image_conditioning)


def with_image_conditions(params: LTX2Params) -> LTX2Params:
    """`image=` checked and decoded once, at validation (every recipe and sampler conditions on it)."""
    conditions = image_conditions(params.image, params.num_frames)
    if not conditions:
        return dataclasses.replace(params, image=None)
    crf = check_image_crf(params.image_crf)
    for condition in conditions:
        check_compressible(condition, crf)
    return dataclasses.replace(params, image=conditions)
