"""The `ditto` command: generate | make-tiny | serve | bench | convert. Thin: parse, call the Engine, print."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ditto.engine_options import EngineOptions
from ditto.errors import DittoError
from ditto.fields import FAMILIES, cli_fields


def add_generate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("generate", help="generate a video (MP4 with sound) or images (PNG, JPEG, WebP)")
    parser.add_argument(
        "--model",
        default="tiny-ltx2",
        help="checkpoint folder/file, or a tiny model name (default: tiny-ltx2, random weights: its output is noise)",
    )
    parser.add_argument(
        "--output", required=True, help="output path: .mp4 for video; .png, .jpg/.jpeg or .webp for images"
    )
    add_request_flags(parser)
    add_engine_flags(parser)
    parser.set_defaults(handler=run_generate)


METAVARS = {int: "N", float: "X"}


def add_request_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per CLI field of the request table (fields.py), with its help; the underscore spellings
    (diffusers' keyword names, `--num_frames`) are accepted and left out of the help."""
    group = parser.add_argument_group("request (a family refuses the ones it does not take)")
    for entry in cli_fields():
        help = entry.help
        if entry.families != FAMILIES:
            help += f" [{', '.join(entry.families)}]"
        options = dict(dest=entry.name, type=entry.kind, action="append" if entry.repeatable else "store")
        metavar = "{" + ",".join(entry.choices) + "}" if entry.choices else METAVARS.get(entry.kind)
        shown = [flag for flag in entry.flags if "_" not in flag]
        group.add_argument(*shown, **options, metavar=metavar, required=entry.required, help=help)
        hidden = [flag for flag in entry.flags if "_" in flag]
        if hidden:
            group.add_argument(*hidden, **options, help=argparse.SUPPRESS)


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """The loading flags that `engine_options` reads, shared by `generate` and `serve`."""
    from ditto.acceleration import QUANTIZATIONS

    group = parser.add_argument_group("engine (how the model is loaded and run)")
    group.add_argument("--lora", action="append", help="LoRA file PATH[:SCALE] (repeatable)")
    group.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the transformer's blocks, and for FLUX.2/LTX-2 the VAE decoder and the text encoder's "
        "layers (GPU: faster after a one-off compile at each new shape)",
    )
    group.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        help="on a GPU, record repeated work as CUDA graphs and replay it: LTX-2's denoising passes, FLUX.2 "
        "Klein's text encoder (default: on with --compile)",
    )
    group.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        help="fp8: the transformer blocks' matrix products in FP8 (Hopper/Ada GPUs; faster, outputs move by a few percent)",
    )
    group.add_argument(
        "--text-encoder", help="text encoder folder (for official single-file LTX checkpoints)"
    )
    group.add_argument(
        "--dtype",
        help="float32 | bfloat16 | float16 (default: the model's official precision on GPU, float32 on CPU)",
    )
    group.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    add_parallel_flags(parser)


def add_parallel_flags(parser: argparse.ArgumentParser) -> None:
    """Several processes, one per GPU (ParallelConfig); torchrun's WORLD_SIZE when run under torchrun."""
    from ditto.parallel.config import AUDIO_CHOICES, TEXT_CHOICES

    group = parser.add_argument_group("parallel (one process per GPU; with --device cpu, gloo processes)")
    group.add_argument(
        "--gpus", type=int, help="processes, one per GPU: the guidance passes of a step are split over them as "
        "far as they go, the rest sequence parallel (default: 1, or torchrun's WORLD_SIZE)",
    )  # fmt: skip
    group.add_argument(
        "--ulysses", type=int, help="sequence-parallel processes within each pass (divides --gpus)"
    )
    group.add_argument(
        "--parallel-audio", choices=AUDIO_CHOICES, default="replicate",
        help="LTX-2 audio tokens under sequence parallelism: whole on every process, or split like video",
    )  # fmt: skip
    group.add_argument(
        "--parallel-vae", action=argparse.BooleanOptionalAction, default=True,
        help="decode LTX-2 video over the processes (bands of rows; default: on)",
    )  # fmt: skip
    group.add_argument(
        "--parallel-text", choices=TEXT_CHOICES, default="replicate",
        help="the prompt sets: encoded by every process, or split over them",
    )  # fmt: skip


def generate_kwargs(args: argparse.Namespace) -> dict:
    """The request fields given on the command line, under their engine keywords."""
    kwargs = {}
    for entry in cli_fields():
        value = getattr(args, entry.name)
        if value is not None:
            kwargs[entry.name] = value
    if len(args.prompt) == 1:
        kwargs["prompt"] = args.prompt[0]
    return kwargs


def quiet_third_party() -> None:
    """transformers/diffusers print weight-loading bars and advice to stderr; ditto prints its own progress."""
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        library.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The loading flags `generate` and `serve` share, as typed Engine options."""
    return EngineOptions(
        compile=args.compile,
        cuda_graphs=args.cuda_graphs,
        quantization=args.quantization,
        loras=tuple(args.lora or ()),
        text_encoder=args.text_encoder,
        parallel=parallel_config(args),
    )


def parallel_config(args: argparse.Namespace):
    """--gpus N (or torchrun's WORLD_SIZE) and the other parallel flags; None for one process."""
    import os

    from ditto.parallel.config import ParallelConfig
    from ditto.parallel.launch import launched_by_torchrun

    gpus = args.gpus
    if gpus is None:
        gpus = int(os.environ["WORLD_SIZE"]) if launched_by_torchrun() else 1
    if gpus == 1 and args.ulysses in (None, 1):
        return None
    options = dict(audio=args.parallel_audio, vae=args.parallel_vae, text=args.parallel_text)
    return ParallelConfig.for_gpus(gpus, args.ulysses, **options)


def run_generate(args: argparse.Namespace) -> int:
    from ditto.engine import Engine

    quiet_third_party()
    engine = Engine.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, options=engine_options(args)
    )
    if not engine.leads:  # a torchrun rank other than 0: it runs rank 0's request with it
        engine.follow()
        engine.close()
        return 0
    try:
        result = generate_checked(engine, args)
    finally:
        engine.close()
    start = time.perf_counter()
    paths = result.save(args.output)
    result.timings["write"] = time.perf_counter() - start
    for path in paths:
        print(f"wrote {path}")
    print(result.timing_line())
    if result.cache_stats:
        from ditto.acceleration.step_cache import summary

        print(summary(result.cache_stats))  # the last line: what the step cache computed and skipped
    return 0


def generate_checked(engine, args: argparse.Namespace):
    """The request, checked (fields and output path) before it runs."""
    from ditto.media.writer import check_output_path

    kwargs = generate_kwargs(args)
    engine.validate(**kwargs)
    check_output_path(Path(args.output), engine.output_kind)
    return engine.generate(**kwargs)


def add_make_tiny(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("make-tiny", help="write a tiny random-weight checkpoint (for tests and demos)")
    parser.add_argument("family", help="ltx2 | ltx2.3 | flux2-klein | qwen-image | qwen-image-edit")
    parser.add_argument("folder")
    parser.add_argument("--with-upsampler", action="store_true")
    parser.add_argument("--with-distilled-lora", action="store_true")
    parser.set_defaults(handler=run_make_tiny)


def run_make_tiny(args: argparse.Namespace) -> int:
    from ditto.registry import FAMILIES, family_by_tiny_name

    family = FAMILIES.get(args.family) or family_by_tiny_name(f"tiny-{args.family}")
    if family is None:
        raise DittoError(f"family={args.family!r} has no tiny builder; known: {sorted(FAMILIES)}")
    options = {key: True for key in ("with_upsampler", "with_distilled_lora") if getattr(args, key)}
    family.build_tiny(Path(args.folder), **options)
    print(f"wrote a tiny random {family.name} checkpoint to {args.folder}")
    return 0


def add_optional(sub: argparse._SubParsersAction, name: str, target: str) -> None:
    """Subcommands whose code lives in its own module, each adding its own arguments."""
    import importlib

    module = importlib.import_module(target)
    module.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ditto", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_generate(sub)
    add_make_tiny(sub)
    for name, target in (
        ("serve", "ditto.server.cli"),
        ("bench", "ditto.bench"),
        ("convert", "ditto.loading.convert_cli"),
    ):
        try:
            add_optional(sub, name, target)
        except ModuleNotFoundError as exc:
            if exc.name == target:
                continue  # the subcommand is not part of this build
            if (exc.name or "").startswith("ditto"):
                raise
            add_unavailable(sub, name, exc.name or "a package")
    return parser


def add_unavailable(sub: argparse._SubParsersAction, name: str, missing: str) -> None:
    """A subcommand whose package is missing: `generate` still works, `name` says why not."""
    if missing.startswith("benchmarks"):  # the dev-only harness beside src/, never installed
        needs, fix = "a source checkout", "run it from a clone of the ditto repository (benchmarks/harness/)"
    else:
        needs, fix = f"the package {missing!r}", "install ditto with its dependencies"

    def handler(args: argparse.Namespace) -> int:
        raise DittoError(f"`ditto {name}` needs {needs}; {fix}")

    # prefix_chars="+": every word after the name, "--model" too, is swallowed as a positional.
    parser = sub.add_parser(name, help=f"(unavailable: needs {needs})", add_help=False, prefix_chars="+")
    parser.add_argument("rest", nargs="*")
    parser.set_defaults(handler=handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except DittoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
