"""LTX-2 sampling parameters: diffusers' LTX2Pipeline keyword names, the official defaults, validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from ditto.acceleration.step_cache.spec import check_cache_spec
from ditto.errors import InvalidParameter
from ditto.pipelines.ltx2.conditioning.image_input import check_image_crf
from ditto.request import (
    check_at_least,
    check_frames,
    check_multiple,
    check_one_of,
    check_prompt,
    reject_unknown,
)
from ditto.sampling.guidance import GuiderParams

# Every guidance term off: the distilled pipeline's stage 1, every stage 2, and tests that compare unguided.
NO_GUIDANCE = dict(
    guidance_scale=1.0,
    stg_scale=0.0,
    modality_scale=1.0,
    guidance_rescale=0.0,
    audio_guidance_scale=1.0,
    audio_stg_scale=0.0,
    audio_modality_scale=1.0,
    audio_guidance_rescale=0.0,
)
# The official negative prompt (ltx_pipelines/utils/constants.py DEFAULT_NEGATIVE_PROMPT, ltx-pipelines 1.0.0).
OFFICIAL_NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)


@dataclass(frozen=True)
class OfficialDefaults:
    """Per-version defaults of ltx-pipelines 1.0.0 (utils/constants.py: LTX_2_PARAMS / LTX_2_3_PARAMS: the
    video_guider_params and audio_guider_params; each guider has its own values, and an audio value left
    unset takes the audio guider's default, never the video value given: diffusers' LTX2Pipeline has the
    same audio defaults). stg_blocks are both guiders' (equal in both versions)."""

    num_inference_steps: int
    stg_blocks: tuple[int, ...]
    guidance_scale: float = 3.0  # video cfg_scale
    stg_scale: float = 1.0
    modality_scale: float = 3.0
    guidance_rescale: float = 0.7  # rescale_scale
    skip_step: int = 0
    audio_guidance_scale: float = 7.0  # audio cfg_scale
    audio_stg_scale: float = 1.0
    audio_modality_scale: float = 3.0
    audio_guidance_rescale: float = 0.7
    audio_skip_step: int = 0
    height: int = 512
    width: int = 768
    num_frames: int = 121
    frame_rate: float = 24.0


OFFICIAL_DEFAULTS = {
    "2.0": OfficialDefaults(num_inference_steps=40, stg_blocks=(29,)),
    "2.3": OfficialDefaults(num_inference_steps=30, stg_blocks=(28,)),
}
# The official two-stage command lines default to the stage-2 size of their params (utils/args.py
# default_2_stage_arg_parser: 2 x 512 x 768).
_TWO_STAGE_SIZE = dict(height=1024, width=1536)
# Per pipeline, the ltx-pipelines 1.0.0 defaults that differ from OFFICIAL_DEFAULTS (whatever the version
# where the official command line does not read it from the checkpoint).
PIPELINE_DEFAULTS: dict[str, dict[str, Any]] = {
    # ti2vid_two_stages_hq.py: hq_2_stage_arg_parser(LTX_2_3_HQ_PARAMS), 1088 x 1920, 15 res2s steps.
    "hq": dict(
        height=1088,
        width=1920,
        num_inference_steps=15,
        stg_scale=0.0,
        guidance_rescale=0.45,
        audio_stg_scale=0.0,
        audio_guidance_rescale=1.0,
        stg_blocks=(),
    ),
    "keyframe-interpolation": _TWO_STAGE_SIZE,  # keyframe_interpolation.py: detect_params + 2-stage parser
    "ic-lora": _TWO_STAGE_SIZE,  # ic_lora.py: default_2_stage_distilled_arg_parser
    # a2vid_two_stage.py: default_2_stage_arg_parser() with its LTX_2_3_PARAMS for every checkpoint.
    "audio-to-video": dict(**_TWO_STAGE_SIZE, num_inference_steps=30, stg_blocks=(28,)),
    # retake.py RetakePipeline.__call__: 40 steps and an empty negative prompt whatever the version.
    "retake": dict(num_inference_steps=40, negative_prompt=""),
}
# HQ: the distilled LoRA's strength in each stage (hq_2_stage_arg_parser).
HQ_LORA_STRENGTHS = (0.25, 0.5)
# Which streams a retake regenerates inside its window (retake.py regenerate_video / regenerate_audio).
REGENERATE = ("both", "video", "audio")


# Filled from OfficialDefaults when None.
_OFFICIAL_FIELDS = (
    "height", "width", "num_frames", "frame_rate", "num_inference_steps",
    "guidance_scale", "stg_scale", "modality_scale", "guidance_rescale", "skip_step",
    "audio_guidance_scale", "audio_stg_scale", "audio_modality_scale", "audio_guidance_rescale", "audio_skip_step",
)  # fmt: skip


@dataclass
class LTX2Params:
    """One LTX-2 request. None means "the official default for this checkpoint"."""

    prompt: str | list[str] = ""
    negative_prompt: str | list[str] | None = None
    height: int | None = None
    width: int | None = None
    num_frames: int | None = None
    frame_rate: float | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    stg_scale: float | None = None
    modality_scale: float | None = None
    guidance_rescale: float | None = None
    audio_guidance_scale: float | None = None
    audio_stg_scale: float | None = None
    audio_modality_scale: float | None = None
    audio_guidance_rescale: float | None = None
    # diffusers' keyword: the STG blocks of both modalities (the video's alone when the audio's are given).
    spatio_temporal_guidance_blocks: list[int] | None = None
    # The official audio guider's own stg_blocks; None: the same as spatio_temporal_guidance_blocks.
    audio_spatio_temporal_guidance_blocks: list[int] | None = None
    # The official guiders' skip_step: only steps with step % (skip_step + 1) == 0 run the transformer, the
    # others reuse the last guided x0. Both modalities must skip alike (see validate).
    skip_step: int | None = None
    audio_skip_step: int | None = None
    # "official": the STG pass skips the self-attention of the modalities with a non-zero STG scale only;
    # "diffusers": of both whenever either scale is non-zero (diffusers' LTX2Pipeline; docs/parity.md).
    stg_rule: str = "official"
    # No video-to-audio cross-attention in any pass (SGLang's switch to reproduce older ground truth).
    skip_v2a_cross_attn_for_video_gt: bool = False
    num_videos_per_prompt: int = 1
    seed: int | None = None
    generator: torch.Generator | None = None
    sigmas: list[float] | None = None
    latents: torch.Tensor | None = None
    audio_latents: torch.Tensor | None = None
    max_sequence_length: int = 1024  # the official tokenizer always pads to 1024 tokens
    output_type: str = "np"
    # "euler" (official one-stage) or "res2s" (official second-order, sampling/res2s.py).
    sampler: str = "euler"
    # A recipe of recipes/: "one-stage" | "two-stage" | "distilled"; None: the checkpoint's default.
    pipeline: str | None = None
    # Image-to-video / keyframes (conditioning/): one image (frame 0) or a list of conditionings.
    image: Any = None
    # The frame of each `image` item, "0,120" or [0, 120], where the images cannot say it themselves (uploaded
    # files, the CLI's paths): conditioning/image_frames.py pairs them once num_frames is known.
    image_frames: Any = None
    image_crf: int | None = None  # None: the official 33; 0 skips the H.264 re-compression
    # "official" (default) or "diffusers": how a kept image token's x0 is formed (docs/parity.md).
    image_conditioning: str = "official"
    # Step cache spec (acceleration/step_cache/spec.py); None: the engine's default (none unless served so).
    cache: str | None = None
    # ic-lora: the control video (a path or RGB uint8 frames [F, H, W, 3]) and how strongly it is kept;
    # None: the IC-LoRA file's reference_downscale_factor (ic_lora.py reads its metadata).
    reference_video: Any = None
    reference_strength: float = 1.0
    reference_downscale_factor: int | None = None
    # retake: the source MP4 (its size, frames and rate are the output's), the window in seconds, and
    # which streams are regenerated inside it ("both", "video" or "audio").
    video: Any = None
    start_time: float | None = None
    end_time: float | None = None
    regenerate: str = "both"
    # audio-to-video: the sound (WAV, MP3, AAC, or an MP4's sound), read from audio_start_time for
    # audio_max_duration seconds (None: num_frames / frame_rate).
    audio: Any = None
    audio_start_time: float = 0.0
    audio_max_duration: float | None = None

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> LTX2Params:
        """The request's keywords; one the family does not take is an InvalidParameter naming it."""
        reject_unknown(cls, kwargs, "ltx2")
        return cls(**kwargs)

    def resolved(self, version: str, num_layers: int, pipeline: str = "one-stage") -> LTX2Params:
        """Fill every None with the official default of `version` (and `pipeline`), then validate."""
        name = self.pipeline or pipeline
        official = {**dataclasses.asdict(OFFICIAL_DEFAULTS[version]), **PIPELINE_DEFAULTS.get(name, {})}
        values: dict[str, Any] = {"pipeline": name}
        for field in _OFFICIAL_FIELDS:
            values[field] = getattr(self, field) if getattr(self, field) is not None else official[field]
        if self.negative_prompt is None:
            values["negative_prompt"] = official.get("negative_prompt", OFFICIAL_NEGATIVE_PROMPT)
        blocks = self.spatio_temporal_guidance_blocks
        if blocks is None:
            # A model shallower than the official STG block (the tiny test models) perturbs its last block;
            # a pipeline whose official default has no STG block perturbs none.
            stg = official["stg_blocks"]
            blocks = ([b for b in stg if b < num_layers] or [num_layers - 1]) if stg else []
        values["spatio_temporal_guidance_blocks"] = list(blocks)
        audio_blocks = self.audio_spatio_temporal_guidance_blocks
        values["audio_spatio_temporal_guidance_blocks"] = list(
            blocks if audio_blocks is None else audio_blocks
        )
        resolved = dataclasses.replace(self, **values)
        resolved.validate(num_layers)
        return resolved

    def validate(self, num_layers: int) -> None:
        prompts = check_prompt("prompt", self.prompt)
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            if not isinstance(self.negative_prompt, list) or len(self.negative_prompt) != len(prompts):
                raise InvalidParameter(
                    "negative_prompt", self.negative_prompt, f"must be a string or a list of {len(prompts)}"
                )
        # The video VAE decoder pads spatially by more than one latent pixel: 2 latent pixels (64) at least.
        check_multiple("height", self.height, 32, minimum=64)
        check_multiple("width", self.width, 32, minimum=64)
        check_frames("num_frames", self.num_frames, 8)
        check_at_least("frame_rate", self.frame_rate, 1.0)
        check_at_least("num_inference_steps", self.num_inference_steps, 1, int)
        check_at_least("num_videos_per_prompt", self.num_videos_per_prompt, 1, int)
        for name in ("guidance_scale", "audio_guidance_scale", "modality_scale", "audio_modality_scale"):
            check_at_least(name, getattr(self, name), 0.0)
        for name in ("stg_scale", "audio_stg_scale", "guidance_rescale", "audio_guidance_rescale"):
            check_at_least(name, getattr(self, name), 0.0)
        for name in ("spatio_temporal_guidance_blocks", "audio_spatio_temporal_guidance_blocks"):
            _check_blocks(name, getattr(self, name), num_layers)
        self._check_skip_steps()
        check_one_of("stg_rule", self.stg_rule, ("official", "diffusers"))
        if not isinstance(self.skip_v2a_cross_attn_for_video_gt, bool):
            raise InvalidParameter(
                "skip_v2a_cross_attn_for_video_gt", self.skip_v2a_cross_attn_for_video_gt, "is not a boolean"
            )
        if self.sampler not in ("euler", "res2s"):
            raise InvalidParameter("sampler", self.sampler, "is not known", 'use "euler" or "res2s"')
        if self.output_type not in ("np", "pil", "latent"):
            raise InvalidParameter(
                "output_type", self.output_type, "is not known", 'use "np", "pil" or "latent"'
            )
        if self.sigmas is not None:
            _check_sigmas(self.sigmas)
        check_image_crf(self.image_crf)
        check_cache_spec(self.cache)
        if self.image_conditioning not in ("official", "diffusers"):
            raise InvalidParameter(
                "image_conditioning", self.image_conditioning, "is not known", 'use "official" or "diffusers"'
            )
        if self.regenerate not in REGENERATE:
            raise InvalidParameter(
                "regenerate", self.regenerate, "is not known", f"use one of {list(REGENERATE)}"
            )
        check_fraction("reference_strength", self.reference_strength)
        check_at_least("audio_start_time", self.audio_start_time, 0.0)
        if self.audio_max_duration is not None:
            check_at_least("audio_max_duration", self.audio_max_duration, 1e-3)

    def _check_skip_steps(self) -> None:
        check_at_least("skip_step", self.skip_step, 0, int)
        check_at_least("audio_skip_step", self.audio_skip_step, 0, int)
        if self.audio_skip_step != self.skip_step:
            # The official loop runs a step where only one modality skips with that modality switched off in
            # the transformer (Modality.enabled=False: its blocks leave it as embedded, the other stream reads
            # it so); ditto skips whole steps only, and says so rather than run something else.
            raise InvalidParameter(
                "audio_skip_step",
                self.audio_skip_step,
                f"differs from skip_step={self.skip_step}: ditto skips whole steps (both modalities) only",
                f"set audio_skip_step={self.skip_step}",
            )

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def guiders(self) -> tuple[GuiderParams, GuiderParams]:
        """The official multimodal guider's parameters: (video, audio)."""
        video = GuiderParams(
            self.guidance_scale,
            self.stg_scale,
            self.modality_scale,
            self.guidance_rescale,
            tuple(self.spatio_temporal_guidance_blocks),
            self.skip_step,
        )
        audio = GuiderParams(
            self.audio_guidance_scale,
            self.audio_stg_scale,
            self.audio_modality_scale,
            self.audio_guidance_rescale,
            tuple(self.audio_spatio_temporal_guidance_blocks),
            self.audio_skip_step,
        )
        return video, audio

    @property
    def negative_prompts(self) -> list[str]:
        if isinstance(self.negative_prompt, str):
            return [self.negative_prompt] * len(self.prompts)
        return list(self.negative_prompt)


def check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidParameter(name, value, "is not in [0, 1]", "1 keeps the conditioning exactly")


def _check_blocks(name: str, blocks: list[int], num_layers: int) -> None:
    for block in blocks:
        if not isinstance(block, int) or not 0 <= block < num_layers:
            raise InvalidParameter(name, blocks, f"names a block outside 0..{num_layers - 1}")


def _check_sigmas(sigmas: list[float]) -> None:
    values = list(sigmas)
    if (
        not values
        or any(not 0.0 <= s <= 1.0 for s in values)
        or any(a <= b for a, b in zip(values, values[1:]))
    ):
        raise InvalidParameter("sigmas", sigmas, "must be a non-empty, strictly decreasing list in [0, 1]")
