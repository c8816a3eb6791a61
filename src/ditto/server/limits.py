"""How much work one request may ask for: steps, pixels, frames, seconds, prompt size, images, uploads, and
the wall-clock time of a job. Each has a safe default per model family; `ditto serve` flags and its
`--config` file override them. A request over a limit is a 400 that names the field, its value, the limit
and the limit's value, before anything is queued.

Uploads are limited per kind (`image` today; a new kind such as `video` or `audio` is one more entry of
`UPLOAD_KINDS` here and one checker in uploads.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ditto.fields import KLEIN, LTX2, QWEN, QWEN_EDIT
from ditto.server.errors import APIError

MIB = 1 << 20


@dataclass(frozen=True)
class UploadLimit:
    """One kind of upload: its bytes, and (where it has them) its decoded pixels."""

    max_bytes: int = 20 * MIB
    max_pixels: int | None = 4096 * 4096


@dataclass(frozen=True)
class Limits:
    max_steps: int = 100
    max_pixels: int = 2048 * 2048  # width * height of the output
    max_frames: int = 257
    max_seconds: float = 20.0  # clip length: frames / frame rate
    max_prompt_bytes: int = 16 << 10  # UTF-8 bytes of each prompt (prompt, negative_prompt)
    max_prompt_tokens: int = 1024  # tokens of each prompt, where the model's tokenizer can count them
    max_images: int = 10  # images made per request (n), and images uploaded per request
    job_timeout_s: float = 1800.0  # wall-clock seconds a job may run before it is stopped
    uploads: dict[str, UploadLimit] = field(default_factory=lambda: {"image": UploadLimit()})

    @classmethod
    def for_family(cls, family: str, **given: Any) -> Limits:
        """The family's defaults, then every limit in `given` that is not None."""
        values = {**FAMILY_DEFAULTS.get(family, {}), **{k: v for k, v in given.items() if v is not None}}
        upload_bytes = values.pop("max_upload_bytes", None)
        upload_pixels = values.pop("max_upload_pixels", None)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(LIMIT_NAMES)}")
        limits = cls(**values)
        if upload_bytes is not None or upload_pixels is not None:
            image = limits.uploads["image"]
            image = UploadLimit(upload_bytes or image.max_bytes, upload_pixels or image.max_pixels)
            limits = dataclasses.replace(limits, uploads={**limits.uploads, "image": image})
        return limits

    def describe(self) -> dict[str, Any]:
        """JSON-ready (a web page shows them beside its form)."""
        values = dataclasses.asdict(self)
        values["uploads"] = {kind: dataclasses.asdict(limit) for kind, limit in self.uploads.items()}
        return values

    # ---- checks (each raises the 400) -----------------------------------------------------------------
    def check_count(self, param: str, value: int, limit: str) -> None:
        if value > getattr(self, limit):
            raise over_limit(param, value, limit, getattr(self, limit))

    def check_prompt(self, param: str, text: str, count_tokens: Any = None) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_prompt_bytes:
            raise over_limit(param, f"<{size} bytes>", "max_prompt_bytes", self.max_prompt_bytes)
        if count_tokens is not None:
            tokens = count_tokens(text)
            if tokens > self.max_prompt_tokens:
                raise over_limit(param, f"<{tokens} tokens>", "max_prompt_tokens", self.max_prompt_tokens)

    def check_request(self, kwargs: dict[str, Any], validated: Any = None) -> None:
        """The engine keywords of one request (after size and seconds were turned into them); with the
        family's `validated` params, a side given alone is checked with the default of the other."""
        if "num_inference_steps" in kwargs:
            self.check_count("num_inference_steps", kwargs["num_inference_steps"], "max_steps")
        given = [name for name in ("width", "height") if name in kwargs]
        width = kwargs.get("width", getattr(validated, "width", None))
        height = kwargs.get("height", getattr(validated, "height", None))
        if given and width is not None and height is not None and width * height > self.max_pixels:
            param = "size" if len(given) == 2 else given[0]
            raise over_limit(
                param,
                f"{width}x{height}" if param == "size" else kwargs[param],
                "max_pixels",
                self.max_pixels,
            )
        if "num_frames" in kwargs:
            self.check_count("num_frames", kwargs["num_frames"], "max_frames")
            rate = kwargs.get("frame_rate")
            if rate:
                seconds = kwargs["num_frames"] / rate
                if seconds > self.max_seconds:
                    raise over_limit("num_frames", kwargs["num_frames"], "max_seconds", self.max_seconds)
        if "num_images_per_prompt" in kwargs:
            self.check_count("n", kwargs["num_images_per_prompt"], "max_images")


def over_limit(param: str, value: Any, limit: str, limit_value: float, flag: str = "") -> APIError:
    flag = flag or LIMIT_FLAGS.get(limit, "")
    shown = f"{limit_value:g}" if isinstance(limit_value, float) else str(limit_value)
    message = f"{param}={value} is over this server's limit {limit}={shown} (ditto serve {flag})"
    if not flag:
        message = f"{param}={value} is over this server's limit {limit}={shown}"
    return APIError(400, message, param=param, code="limit_exceeded")


# Safe defaults: about twice the official defaults, so one request cannot hold the worker for long.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    # Official 768x512, 121 frames at 24 fps, 40 steps; 1920x1088 and 10 s are the largest the model card shows.
    LTX2: {"max_pixels": 1920 * 1088, "max_frames": 257, "max_seconds": 20.0, "job_timeout_s": 3600.0},
    # Official 1024x1024 (Klein: 4 steps, Qwen-Image: 50); 2048x2048 is the largest either documents.
    KLEIN: {"max_pixels": 2048 * 2048, "job_timeout_s": 600.0},
    QWEN: {"max_pixels": 2048 * 2048, "job_timeout_s": 1800.0},
    QWEN_EDIT: {"max_pixels": 2048 * 2048, "job_timeout_s": 1800.0},
}

# Every name a flag or the config file may set (upload limits are those of the image kind).
LIMIT_NAMES = {f.name for f in dataclasses.fields(Limits)} - {"uploads"} | {
    "max_upload_bytes",
    "max_upload_pixels",
}


def limits_table() -> str:
    """The README's table (markdown) of every limit, its flag and its default per family."""
    families = {"LTX-2": LTX2, "FLUX.2 Klein": KLEIN, "Qwen-Image(-Edit)": QWEN}
    defaults = {family: Limits.for_family(family) for family in families.values()}
    lines = ["| limit | flag | " + " | ".join(families) + " |", "|---|---|" + "---|" * len(families)]
    for name, flag in LIMIT_FLAGS.items():
        values = [_limit_value(name, family, limits) for family, limits in defaults.items()]
        lines.append(f"| `{name}` | `{flag}` | " + " | ".join(values) + " |")
    return "\n".join(lines)


# Each limit's `ditto serve` flag, in the README's order.
LIMIT_FLAGS = {
    "max_steps": "--max-steps", "max_pixels": "--max-pixels", "max_frames": "--max-frames",
    "max_seconds": "--max-seconds", "max_prompt_bytes": "--max-prompt-bytes",
    "max_prompt_tokens": "--max-prompt-tokens", "max_images": "--max-images",
    "max_upload_bytes": "--max-upload-mb", "max_upload_pixels": "--max-upload-pixels",
    "job_timeout_s": "--job-timeout",
}  # fmt: skip


def _limit_value(name: str, family: str, limits: Limits) -> str:
    if name in ("max_frames", "max_seconds") and family != LTX2:
        return "—"
    if name == "max_upload_bytes":
        return f"{limits.uploads['image'].max_bytes / MIB:g} MiB"
    if name == "max_upload_pixels":
        return f"{limits.uploads['image'].max_pixels:,}"
    if name == "job_timeout_s":
        return f"{limits.job_timeout_s:g} s"
    value = getattr(limits, name)
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"
