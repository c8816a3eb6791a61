"""Where `ditto generate` writes: the given `--output`, or a new name in `--output-dir` made from the date,
the time and the prompt's first words, never one that exists. Both are checked before anything loads."""

from __future__ import annotations

import datetime
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ditto.errors import InvalidParameter
from ditto.media.writer import check_output_path, numbered, output_count
from ditto.result import Result

DEFAULT_DIR = "outputs"
SUFFIXES = {"video": ".mp4", "image": ".png"}
SLUG_WORDS = 6
SLUG_CHARS = 48


def check_writable(folder: Path, field: str, value: str) -> None:
    """The folder exists (or can be made) and takes a new file: one clear error instead of a traceback
    after the whole generation."""
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(
            field, value, f"cannot be written: {folder} is a file, not a folder", "give a path in a folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ditto-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InvalidParameter(
            field, value, f"cannot be written ({reason}: {folder})", "give a path in a writable folder"
        ) from None


def slug(prompt: str) -> str:
    """'A red fox, in the snow!' -> 'a-red-fox-in-the-snow': the first words, lowercase, letters and digits."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:SLUG_WORDS]
    return "-".join(words)[:SLUG_CHARS].strip("-") or "untitled"


@dataclass(frozen=True)
class OutputPlan:
    """A file path as given (`path`), or a folder to name new files in (`folder`)."""

    path: Path | None
    folder: Path | None
    suffix: str

    def target(self, result: Result, now: datetime.datetime | None = None) -> Path:
        """The path to save `result` to: the given one, or a fresh automatic name whose numbered
        outputs (name-0, name-1, ... for a batch) are all new files."""
        if self.path is not None:
            return self.path
        count = max(output_count(result), 1)
        stamp = (now or datetime.datetime.now()).strftime("%Y-%m-%d_%H%M%S")
        prompts = result.prompts or [""]
        stem = f"{stamp}_{slug(prompts[0])}"
        for attempt in range(1, 10_000):
            name = stem if attempt == 1 else f"{stem}_{attempt}"
            base = self.folder / f"{name}{self.suffix}"
            if not any(numbered(base, i, count).exists() for i in range(count)):
                return base
        raise InvalidParameter("output_dir", str(self.folder), "has no free name left for this prompt")


def plan_output(output: str | None, output_dir: str | None, output_kind: str) -> OutputPlan:
    """Check the output path's suffix against what the model makes, and that its folder takes files."""
    if output is not None and output_dir is not None:
        raise InvalidParameter(
            "output_dir",
            output_dir,
            "names a folder for automatic file names",
            "give --output or --output-dir",
        )
    if output is not None:
        path = Path(output).expanduser()
        if path.is_dir() or output.endswith(("/", "\\")):
            raise InvalidParameter(
                "output", output, "is a folder", "give a file name, or --output-dir DIR for automatic names"
            )
        check_output_path(path, output_kind)
        check_writable(path.parent, "output", output)
        return OutputPlan(path, None, path.suffix)
    folder = Path(output_dir or DEFAULT_DIR).expanduser()
    check_writable(folder, "output_dir", str(folder))
    return OutputPlan(None, folder, SUFFIXES[output_kind])
