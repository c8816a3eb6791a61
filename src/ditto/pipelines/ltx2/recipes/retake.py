"""Retake, as ltx-pipelines 1.0.0 runs it (retake.py): regenerate [start_time, end_time) of a source video
and/or its sound from a prompt, one guided Euler stage at the source's size, frame count and rate.

The source's frames are encoded as the initial video latent and its sound (when it has one) as the
initial audio latent, trimmed or zero-padded to the video's length; a window (conditioning/video.py
RetakeWindow) keeps every token outside it. `regenerate="video"` keeps all of the audio, `"audio"` all of
the video (the official regenerate_audio / regenerate_video flags). Official defaults: 40 steps, an empty
negative prompt, the checkpoint's guidance (params.PIPELINE_DEFAULTS["retake"])."""

from __future__ import annotations

import dataclasses

import torch

from ditto.errors import InvalidParameter
from ditto.media.audio import decode_audio
from ditto.media.video import decode_video, probe_mp4
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint, LTX2Components
from ditto.pipelines.ltx2.conditioning.audio import encode_audio
from ditto.pipelines.ltx2.conditioning.video import RetakeWindow, encode_frames
from ditto.pipelines.ltx2.latents import latent_shape, pack_video
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes import one_stage
from ditto.pipelines.ltx2.recipes.base import Recipe, check_euler
from ditto.result import Result

SOURCE_FIELDS = ("height", "width", "num_frames", "frame_rate")


def adapt(raw: LTX2Params) -> LTX2Params:
    """The output's size, frame count and rate are the source video's (a different given value is an error)."""
    if raw.video is None:
        raise InvalidParameter("video", None, "is required by pipeline='retake'", "give the source MP4")
    try:
        info = probe_mp4(raw.video)
    except Exception:
        decode_video(raw.video, "video", 1)  # names the problem (unreadable, no video stream)
        raise
    source = dict(
        height=info.height, width=info.width, num_frames=info.frame_count, frame_rate=info.frame_rate
    )
    if (info.frame_count - 1) % 8:
        usable = (info.frame_count - 1) // 8 * 8 + 1
        raise InvalidParameter("video", f"{info.frame_count} frames", "is not 8k + 1 frames",
                               f"trim it to {usable} frames")  # fmt: skip
    for side in ("width", "height"):
        if source[side] % 32:
            raise InvalidParameter("video", f"{info.width}x{info.height}", f"has a {side} that is not a multiple of 32",
                                   f"resize it to {source[side] // 32 * 32 or 32}")  # fmt: skip
    for name in SOURCE_FIELDS:
        given = getattr(raw, name)
        if given is not None and given != source[name]:
            raise InvalidParameter(
                name, given, "is set by the retake's source video", f"leave it out ({source[name]})"
            )
    return dataclasses.replace(raw, **source)


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    check_euler(params)
    duration = params.num_frames / params.frame_rate
    for name in ("start_time", "end_time"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= duration:
            raise InvalidParameter(name, value, f"is not a time inside the source (0..{duration:g} s)",
                                   f"give seconds in 0..{duration:g}")  # fmt: skip
    if params.start_time >= params.end_time:
        raise InvalidParameter("end_time", params.end_time, f"is not after start_time={params.start_time:g}",
                               f"e.g. end_time={min(duration, params.start_time + 1):g}")  # fmt: skip


def source_items(components: LTX2Components, params: LTX2Params) -> steps.Items:
    """The source's video (and sound) as latents, each kept outside its window."""
    frames = decode_video(params.video, "video", params.num_frames).frames
    video = pack_video(encode_frames(components.vae, frames, params.height, params.width))
    window = (params.start_time, params.end_time)
    video_window = window if params.regenerate in ("both", "video") else (0.0, 0.0)
    items = steps.Items(video=[RetakeWindow(video, *video_window)])
    if probe_mp4(params.video).audio_codec is None:
        return items  # no sound: the audio is generated whole, as officially
    audio = encode_audio(components.audio_vae, decode_audio(params.video, "video"))
    frames_needed = latent_shape(components, params).audio_frames
    audio = audio[:, :frames_needed]
    if audio.shape[1] < frames_needed:  # zero-padded in the normalised latent space, as officially
        audio = torch.cat([audio, audio.new_zeros(1, frames_needed - audio.shape[1], audio.shape[2])], dim=1)
    audio_window = window if params.regenerate in ("both", "audio") else (0.0, 0.0)
    return dataclasses.replace(items, audio=[RetakeWindow(audio, *audio_window)])


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    return one_stage.run_with(kit, params, progress, lambda: source_items(kit.components, params))


RECIPE = Recipe("retake", run, check, adapt)
