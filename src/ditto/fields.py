"""The one table of request fields: what `generate()` takes, and how the CLI and the server spell it.

Each `RequestField` names the engine keyword (diffusers' name), its type, one line of help, the families
that take it, its CLI flag (with the accepted spellings) and its server (JSON/form) names. `ditto generate`
builds its flags from this table and the server reads its extra body fields from it; each family's params
dataclass stays the place that holds the defaults and validates (tests/test_fields.py checks that the
table and the dataclasses agree). Adding a request field: one entry here, plus the family dataclass.

Surfaces, per entry:
- `flag`: the CLI flag; "" when the field is not on the command line. Every flag also accepts the
  engine keyword spelt with dashes and with underscores (`--num-inference-steps`, `--num_inference_steps`).
- `api`: how the server takes it. "extra": a ditto field beside OpenAI's (under `api_names`);
  "openai": an OpenAI field the routes read themselves (`prompt`, `n`, uploaded images); "upload": a
  multipart file (a video or a sound) the video route stores and passes on as a path; "": not taken.

Within LTX-2, `pipelines` names the pipelines (the `pipeline` field's choices) that take a field, where
not every one does (a retake's size is its source video's; the distilled pipeline fixes its steps and runs
unguided): a form shows the field only for those. The engine refuses such a field where it would
otherwise be misread (distilled's steps, a retake's size) and ignores it where it is merely unused.

Values are checked by the family (range, multiple, choice), never here, so the CLI, the server and the
Python API give the same error for the same value. Importing this module imports nothing heavy: the CLI's
`--help` and the server's request parsing read it without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LTX2 = "ltx2"
KLEIN = "flux2-klein"
QWEN = "qwen-image"
QWEN_EDIT = "qwen-image-edit"
# The pipeline families (`Pipeline.family`); LTX-2.3 and official LTX files run as "ltx2".
FAMILIES = (LTX2, KLEIN, QWEN, QWEN_EDIT)
IMAGE_FAMILIES = (KLEIN, QWEN, QWEN_EDIT)
QWEN_FAMILIES = (QWEN, QWEN_EDIT)
# LTX-2's pipelines (pipelines/ltx2/recipes), the `pipeline` field's choices.
LTX2_PIPELINES = (
    "one-stage", "two-stage", "distilled", "hq", "keyframe-interpolation", "ic-lora", "retake", "audio-to-video",
)  # fmt: skip
# The distilled pipeline runs its fixed 8 + 3 sigmas without guidance (recipes/distilled.py): steps and
# guidance are not its to take. A retake's size, frame count and rate are its source video's (recipes/retake.py).
GUIDED = tuple(name for name in LTX2_PIPELINES if name != "distilled")
SIZED = tuple(name for name in LTX2_PIPELINES if name != "retake")

# Params-dataclass fields that no text surface can carry (tensors, generators, lists of numbers): the
# Python API only. tests/test_fields.py checks every dataclass field is in the table or here.
PYTHON_ONLY = (
    "generator", "latents", "audio_latents", "sigmas", "spatio_temporal_guidance_blocks",
    "audio_spatio_temporal_guidance_blocks", "text_encoder_out_layers",
)  # fmt: skip


@dataclass(frozen=True)
class RequestField:
    name: str  # the engine keyword: diffusers' name, as `Engine.generate` takes it
    kind: type  # int | float | str: what a CLI or form value is parsed to, and what JSON must carry
    help: str  # one line
    families: tuple[str, ...]  # the pipeline families that take it
    flag: str = ""  # the CLI flag; "" when not on the command line
    aliases: tuple[str, ...] = ()  # more CLI spellings besides the generated ones
    api: str = "extra"  # "extra" | "openai" | "": see the module docstring
    api_names: tuple[str, ...] = ()  # server names; empty: the engine keyword itself
    choices: tuple[str, ...] = ()  # the closed set of values, where there is one
    repeatable: bool = False  # a list: the CLI flag may be given several times
    required: bool = False
    pipelines: tuple[str, ...] = ()  # the LTX-2 pipelines that take it; empty: every one

    def takes(self, pipeline: str) -> bool:
        """Whether the LTX-2 `pipeline` takes this field."""
        return not self.pipelines or pipeline in self.pipelines

    @property
    def flags(self) -> tuple[str, ...]:
        """Every CLI spelling: the flag first, then its aliases, the keyword with dashes and underscores."""
        if not self.flag:
            return ()
        spellings = (self.flag, *self.aliases, "--" + self.name.replace("_", "-"), "--" + self.name)
        underscored = tuple(s[:2] + s[2:].replace("-", "_") for s in spellings)
        return tuple(dict.fromkeys(spellings + underscored))

    @property
    def server_names(self) -> tuple[str, ...]:
        if not self.api:
            return ()
        return self.api_names or (self.name,)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (for a web page or an API schema)."""
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "help": self.help,
            "families": list(self.families),
            "flags": list(self.flags),
            "api": self.api,
            "api_names": list(self.server_names),
            "choices": list(self.choices),
            "repeatable": self.repeatable,
            "required": self.required,
            "pipelines": list(self.pipelines),
        }


def _field(name: str, kind: type, help: str, families: tuple[str, ...], **more: Any) -> RequestField:
    """An entry whose flag is the keyword with dashes unless `flag` says otherwise (`cli=False`: none)."""
    cli = more.pop("cli", True)
    flag = more.pop("flag", "--" + name.replace("_", "-")) if cli else ""
    return RequestField(name, kind, help, families, flag=flag, **more)


TABLE = (
    _field("prompt", str, "text prompt (repeat for a batch)", FAMILIES, api="openai", repeatable=True,
           required=True),
    _field("negative_prompt", str, "what to steer away from (LTX-2: the official one when unset; Qwen-Image: "
           "turns true CFG on)", (LTX2, *QWEN_FAMILIES), pipelines=GUIDED),
    _field("image", str, "conditioning/reference image (repeatable); PATH or PATH:FRAME for LTX keyframes",
           (LTX2, KLEIN, QWEN_EDIT), api="openai", api_names=("image", "input_reference"), repeatable=True),
    # Keyframes where an image cannot carry its frame (an uploaded file; a path given apart): each image's frame.
    _field("image_frames", str, "keyframes: the frame of each image, in order, e.g. 0,120: one index in "
           "0..num_frames-1 per image (or give each --image as PATH:FRAME)", (LTX2,),
           aliases=("--input-reference-frames",), api_names=("input_reference_frames",)),
    _field("width", int, "width in pixels (default: the family's)", FAMILIES, pipelines=SIZED),
    _field("height", int, "height in pixels (default: the family's)", FAMILIES, pipelines=SIZED),
    _field("num_frames", int, "video frames, 8k+1 (e.g. 121)", (LTX2,), pipelines=SIZED),
    _field("frame_rate", float, "frames per second", (LTX2,), aliases=("--fps",),
           api_names=("fps", "frame_rate"), pipelines=SIZED),
    _field("num_inference_steps", int, "denoising steps (default: the checkpoint's official count)", FAMILIES,
           flag="--steps", pipelines=GUIDED),
    _field("guidance_scale", float, "classifier-free guidance scale (LTX-2: of the video)", FAMILIES,
           pipelines=GUIDED),
    _field("true_cfg_scale", float, "true CFG scale, used with a negative prompt", QWEN_FAMILIES),
    _field("stg_scale", float, "spatio-temporal guidance scale of the video", (LTX2,), pipelines=GUIDED),
    _field("modality_scale", float, "modality-isolation guidance scale of the video", (LTX2,), pipelines=GUIDED),
    _field("guidance_rescale", float, "guidance rescale of the video (0: none)", (LTX2,), pipelines=GUIDED),
    _field("audio_guidance_scale", float, "classifier-free guidance scale of the audio", (LTX2,),
           pipelines=GUIDED),
    # Unset audio values keep the official audio guider's defaults, never the video values given.
    _field("audio_stg_scale", float, "spatio-temporal guidance scale of the audio (default: the official 1.0)",
           (LTX2,), pipelines=GUIDED),
    _field("audio_modality_scale", float, "modality-isolation guidance scale of the audio (default: the "
           "official 3.0)", (LTX2,), pipelines=GUIDED),
    _field("audio_guidance_rescale", float, "guidance rescale of the audio (default: the official 0.7)", (LTX2,),
           pipelines=GUIDED),
    _field("skip_step", int, "guidance skip step N: the model runs on every (N+1)-th step, the others reuse "
           "the last guided x0 (0: every step)", (LTX2,), pipelines=GUIDED),
    _field("audio_skip_step", int, "the audio guider's skip step (must equal skip_step)", (LTX2,),
           pipelines=GUIDED),
    _field("stg_rule", str, "which self-attentions the STG pass skips: official (the modalities with a non-zero "
           "STG scale) or diffusers (both)", (LTX2,), choices=("official", "diffusers"), pipelines=GUIDED),
    # A boolean: the CLI and the server parse no booleans yet, so Python only for now.
    _field("skip_v2a_cross_attn_for_video_gt", bool, "no video-to-audio cross-attention in any pass (reproduces "
           "ground truth made without it)", (LTX2,), cli=False, api=""),
    # The server takes OpenAI's `n` (bounded by the route), never this name, which would skip that bound.
    _field("num_images_per_prompt", int, "images per prompt", IMAGE_FAMILIES, flag="--num-images",
           api="openai", api_names=("n",)),
    # Not on the CLI or the server yet: the server stores one video per job.
    _field("num_videos_per_prompt", int, "videos per prompt", (LTX2,), cli=False, api=""),
    _field("seed", int, "random seed: the same seed and request give the same output", FAMILIES),
    _field("cache", str, "step cache: none, a preset (slow, medium, fast, ultra), dbcache[:Fn=1,threshold=0.24,"
           "...] or mask:compute=0-7+12 (docs/architecture.md)", FAMILIES),
    # HQ samples with res2s whatever it says; the other pipelines run Euler and refuse res2s (recipes/).
    _field("sampler", str, "sampler of the denoising loop (one-stage; the other pipelines have their own)",
           (LTX2,), choices=("euler", "res2s"), pipelines=("one-stage",)),
    _field("pipeline", str, "LTX-2 pipeline (default: two-stage when the checkpoint has its upsampler and "
           "distilled LoRA)", (LTX2,), choices=LTX2_PIPELINES),
    _field("reference_video", str, "ic-lora: the control video (depth, pose, edges...), an MP4", (LTX2,),
           api="upload", pipelines=("ic-lora",)),
    _field("reference_strength", float, "ic-lora: how strongly the control video is kept (1: exactly)",
           (LTX2,), pipelines=("ic-lora",)),
    _field("reference_downscale_factor", int, "ic-lora: target size / control video size (default: the "
           "IC-LoRA file's)", (LTX2,), pipelines=("ic-lora",)),
    _field("video", str, "retake: the source MP4 (with sound) whose window is regenerated", (LTX2,),
           api="upload", pipelines=("retake",)),
    _field("start_time", float, "retake: start of the regenerated window, seconds", (LTX2,),
           pipelines=("retake",)),
    _field("end_time", float, "retake: end of the regenerated window, seconds", (LTX2,), pipelines=("retake",)),
    _field("regenerate", str, "retake: what the window regenerates", (LTX2,),
           choices=("both", "video", "audio"), pipelines=("retake",)),
    _field("audio", str, "audio-to-video: the sound (WAV, MP3, AAC or MP4)", (LTX2,), api="upload",
           pipelines=("audio-to-video",)),
    _field("audio_start_time", float, "audio-to-video: where the sound is read from, seconds", (LTX2,),
           pipelines=("audio-to-video",)),
    _field("audio_max_duration", float, "audio-to-video: seconds of sound read (default: the video's "
           "length)", (LTX2,), pipelines=("audio-to-video",)),
    _field("image_crf", int, "H.264 CRF applied to conditioning images, as the official code (default 33; 0: "
           "none)", (LTX2,)),
    _field("image_conditioning", str, "how a kept image token's x0 is formed (docs/parity.md)", (LTX2,),
           choices=("official", "diffusers")),
    # A bound on work per request, left to the server's limits (issue 20) before it is exposed.
    _field("max_sequence_length", int, "prompt tokens the text encoder reads", FAMILIES, cli=False, api=""),
    # The CLI and the server write files from float pixels ("np"); the other types are for Python callers.
    _field("output_type", str, "what generate() returns", FAMILIES, cli=False, api="",
           choices=("np", "pil", "latent")),
)  # fmt: skip

FIELDS: dict[str, RequestField] = {entry.name: entry for entry in TABLE}


def cli_fields() -> list[RequestField]:
    return [entry for entry in TABLE if entry.flag]


def extra_fields() -> dict[str, RequestField]:
    """Server name -> entry, for the fields the server takes as extra body fields (`fps` and
    `frame_rate` both mean frame_rate)."""
    return {name: entry for entry in TABLE if entry.api == "extra" for name in entry.server_names}


def upload_fields() -> dict[str, RequestField]:
    """Server name -> entry, for the fields the server takes as uploaded files."""
    return {name: entry for entry in TABLE if entry.api == "upload" for name in entry.server_names}


def family_fields(family: str) -> list[RequestField]:
    return [entry for entry in TABLE if family in entry.families]


def describe(family: str | None = None) -> list[dict[str, Any]]:
    """The table as JSON-ready dicts: every field, or only those `family` takes (a web page's form)."""
    entries = TABLE if family is None else family_fields(family)
    return [entry.describe() for entry in entries]
