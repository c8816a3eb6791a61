"""`ditto make-tiny FAMILY DIR`: a tiny random-weight checkpoint, as the embedded `tiny-*` models are built."""

from __future__ import annotations

import argparse
from pathlib import Path

from ditto.errors import DittoError


def tiny_families() -> list[str]:
    """The registry's families, and its tiny model names without `tiny-`."""
    from ditto.registry import FAMILIES, tiny_names

    return sorted({*FAMILIES, *(name.removeprefix("tiny-") for name in tiny_names())})


def add_make_tiny(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("make-tiny", help="write a tiny random-weight checkpoint (for tests and demos)")
    parser.add_argument("family", choices=tiny_families(), help="which model family's layout")
    parser.add_argument("folder", help="where to write the diffusers-format folder")
    parser.add_argument(
        "--with-upsampler", action="store_true", help="LTX-2: add the x2 latent upsampler (two-stage recipes)"
    )
    parser.add_argument(
        "--with-distilled-lora",
        action="store_true",
        help="LTX-2: add a distilled LoRA for stage 2 (two-stage recipe)",
    )
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
