"""`ditto generate`: check everything that can be checked before loading (the request against the
checkpoint's configs, the output path), load, generate, write; print the seed, each file and where its
prompt came from, and the time of every stage from the start of the command (loading included)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ditto.cli.flags import (
    add_engine_flags,
    add_request_flags,
    engine_options,
    generate_kwargs,
    refuse_untaken,
)
from ditto.engine_options import EngineOptions
from ditto.errors import DittoError
from ditto.loading.quiet import quiet_third_party

if TYPE_CHECKING:  # imported when run: `ditto --help` stays free of numpy and PIL
    from ditto.cli.outputs import OutputPlan
    from ditto.result import Result

DEFAULT_MODEL = "tiny-ltx2"  # engine.DEFAULT_MODEL, without importing the engine (and torch) for --help
DEFAULT_DEVICE = "cpu"


def add_generate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="generate a video (MP4 with sound) or images (PNG, JPEG, WebP)",
        description=__doc__,
    )
    parser.add_argument(
        "--model",
        help="checkpoint folder or official LTX-2 .safetensors file, or a tiny model name (default: "
        f"{DEFAULT_MODEL}, random weights: its output is noise)",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        help="output path: .mp4 for video; .png, .jpg/.jpeg or .webp for images; several outputs become "
        "NAME-0, NAME-1, ... (default: a new name in --output-dir)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="folder for automatically named files (date, time, the prompt's first words), never "
        "overwriting one (default: outputs/)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON or YAML mapping of request fields (and this command's other flags) by name, e.g. "
        "{prompt: a red fox, steps: 30}; flags given here win over it",
    )
    add_request_flags(parser)
    add_engine_flags(parser)
    parser.set_defaults(handler=run_generate, parser=parser)


class StageClock:
    """Seconds per stage of the whole command, so the printed stages add up to its wall time."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def line(self) -> str:
        parts = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.timings.items())
        wall = time.perf_counter() - self.started
        return f"time per stage: {parts}; total {sum(self.timings.values()):.2f}s of {wall:.2f}s wall"


def complete(args: argparse.Namespace) -> None:
    """The --config file's values where no flag was given, then the defaults; --prompt is required by now."""
    if args.config:
        from ditto.cli.config_file import apply_config

        apply_config(args, Path(args.config).expanduser(), args.parser)
    args.model = args.model or DEFAULT_MODEL
    args.device = args.device or DEFAULT_DEVICE
    if not args.prompt:
        args.parser.error("the following argument is required: --prompt (or `prompt:` in --config)")


def note_slow_compile(args: argparse.Namespace, options: EngineOptions) -> None:
    if options.compile and not args.device.startswith("cuda"):
        print(
            "note: --compile on a CPU compiles every block at each new shape first: expect minutes before the "
            "first step, and little gain after",
            file=sys.stderr,
        )


def run_generate(args: argparse.Namespace) -> int:
    clock = StageClock()
    complete(args)
    options = engine_options(args)
    with clock.stage("validate"):
        from ditto.cli.outputs import plan_output
        from ditto.engine import Engine, inspect_model, with_seed

        kwargs = with_seed(generate_kwargs(args))
        model = inspect_model(args.model, options)
        refuse_untaken(kwargs, model.family)
        model.validate(**kwargs)
        plan = plan_output(args.output, args.output_dir, model.output_kind)
    print(f"seed {kwargs['seed']}", flush=True)
    note_slow_compile(args, options)
    with clock.stage("load"):
        quiet_third_party()
        engine = Engine.from_pretrained(
            args.model, device=args.device, dtype=args.dtype, options=options, plan_for=kwargs
        )
    if not engine.leads:  # a torchrun rank other than 0: it runs rank 0's request with it
        engine.follow()
        engine.close()
        return 0
    try:
        result = engine.generate(**kwargs)
    finally:
        engine.close()  # a parallel engine's other processes stop (nothing for one process)
    for name, seconds in result.timings.items():
        clock.add(name, seconds)
    with clock.stage("write"):
        paths = save(result, plan)
    for index, path in enumerate(paths):
        print(f"wrote {path}{prompt_note(result, index, len(paths))}")
    print(clock.line())
    memory = result.memory_line()
    if memory is not None:
        print(memory)
    if result.cache_stats:
        from ditto.acceleration.step_cache import summary

        print(summary(result.cache_stats))  # the last line: what the step cache computed and skipped
    return 0


def save(result: Result, plan: OutputPlan) -> list[Path]:
    """Write the files; a disk that fills up (or a folder removed meanwhile) is one error line."""
    target = plan.target(result)
    try:
        return result.save(target)
    except OSError as exc:
        raise DittoError(f"output={str(target)!r} could not be written ({exc.strerror or exc})") from None


def prompt_note(result: Result, index: int, count: int) -> str:
    """For a batch of several prompts: which prompt a file came from."""
    prompts = result.prompts
    if len(prompts) < 2:
        return ""
    k = result.prompt_index(index, count)
    return f"  (prompt {k + 1}: {prompts[k]!r})"
