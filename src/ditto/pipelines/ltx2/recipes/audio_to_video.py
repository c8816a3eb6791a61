"""Audio-to-video, as ltx-pipelines 1.0.0 runs it (a2vid_two_stage.py): the two stages of two_stage.py with the
given sound encoded as the audio latent and kept in both (denoise_video_only: audio mask 0), stage 1's
guidance on the video only (the audio guider is neutral, so its unconditional pass keeps the positive
audio text), and the given sound, not the decoded latent, on the output video.

The sound is read from `audio_start_time` for `audio_max_duration` seconds (default: the video's length),
resampled and encoded as the official AudioProcessor does (conditioning/audio.py); sound shorter than
the video is an error. Official defaults: its command line's LTX-2.3 parameters for every checkpoint
(params.PIPELINE_DEFAULTS["audio-to-video"])."""

from __future__ import annotations

from ditto.errors import InvalidParameter
from ditto.media.audio import DecodedAudio, decode_audio
from ditto.pipelines.base import ProgressCallback
from ditto.pipelines.ltx2 import steps
from ditto.pipelines.ltx2.components import LTX2Checkpoint
from ditto.pipelines.ltx2.conditioning.audio import InputAudio, encode_audio, fit_audio
from ditto.pipelines.ltx2.latents import latent_shape
from ditto.pipelines.ltx2.params import LTX2Params
from ditto.pipelines.ltx2.recipes import two_stage
from ditto.pipelines.ltx2.recipes.base import Recipe
from ditto.result import Result

NEUTRAL_AUDIO = dict(
    audio_guidance_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0
)


def read_sound(params: LTX2Params) -> DecodedAudio:
    if params.audio is None:
        raise InvalidParameter(
            "audio", None, "is required by pipeline='audio-to-video'", "give a WAV, MP3, AAC or MP4 file"
        )
    duration = params.num_frames / params.frame_rate
    length = params.audio_max_duration if params.audio_max_duration is not None else duration
    sound = decode_audio(params.audio, "audio", params.audio_start_time, length)
    if sound.duration < duration - 1.0 / sound.sample_rate:
        raise InvalidParameter(
            "audio", f"{sound.duration:.3f} s from {params.audio_start_time:g} s",
            f"is shorter than the video ({duration:.3f} s)",
            "give longer audio, an earlier audio_start_time, or fewer num_frames",
        )  # fmt: skip
    return sound


def check(raw: LTX2Params, params: LTX2Params, checkpoint: LTX2Checkpoint) -> None:
    two_stage.check(raw, params, checkpoint)
    read_sound(params)


def run(kit: steps.Toolkit, params: LTX2Params, progress: ProgressCallback | None) -> Result:
    components = kit.components
    sound = read_sound(params)
    frames = latent_shape(components, params).audio_frames
    tokens = fit_audio(encode_audio(components.audio_vae, sound), frames, "audio", sound.duration)
    items = steps.Items(audio=[InputAudio(tokens)])
    first = steps.half_size(params, steps.request_generator(components, params), **NEUTRAL_AUDIO)
    plan = two_stage.StagePlan(
        items_stage_1=items, items_stage_2=items, positive_audio_text=True, sound=sound
    )
    return two_stage.run_stages(kit, params, first, progress, plan)


RECIPE = Recipe("audio-to-video", run, check)
