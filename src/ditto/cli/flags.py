"""The flags of `ditto generate` and `ditto serve`, built from the two tables: request fields (fields.py)
and engine options (engine_options.py). A field or option added there gets its flag and help here with no
CLI code.

Every flag defaults to None, meaning "not given": a `--config` file fills those (flags win over it), and
the engine and the family then apply their own defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from ditto.engine_options import DTYPE_NAMES, EngineOptions
from ditto.errors import InvalidParameter
from ditto.fields import FAMILIES, IMAGE_FAMILIES, LTX2, cli_fields, family_fields

METAVARS = {int: "N", float: "X"}
DEVICE_HELP = "cpu | cuda | cuda:N (default: cpu)"


def add_request_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per CLI field of the request table, with its help and its closed set of values; the
    underscore spellings (diffusers' keyword names, `--num_frames`) are accepted and left out of the help."""
    group = parser.add_argument_group("request (a family refuses the ones it does not take)")
    for entry in cli_fields():
        help = entry.help
        if entry.families != FAMILIES:
            help += f" [{', '.join(entry.families)}]"
        if entry.required:
            help += " (required: here or in --config)"  # so argparse itself does not require it
        options = dict(dest=entry.name, type=entry.kind, action="append" if entry.repeatable else "store")
        metavar = "{" + ",".join(entry.choices) + "}" if entry.choices else METAVARS.get(entry.kind)
        if entry.choices:
            options["choices"] = entry.choices
        shown = [flag for flag in entry.flags if "_" not in flag]
        group.add_argument(*shown, **options, metavar=metavar, help=help)
        hidden = [flag for flag in entry.flags if "_" in flag]
        if hidden:
            group.add_argument(*hidden, **options, help=argparse.SUPPRESS)


def option_flag(option: dataclasses.Field) -> str:
    return option.metadata.get("flag", "--" + option.name.replace("_", "-"))


def cli_options() -> list[dataclasses.Field]:
    """The engine options that have a flag."""
    return [option for option in dataclasses.fields(EngineOptions) if option_flag(option)]


def _argument(option: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """argparse keywords for one engine option, from its annotation and metadata."""
    meta = option.metadata
    spec: dict[str, Any] = dict(dest=option.name, default=None, help=meta["help"])
    if meta.get("choices"):
        spec["choices"] = meta["choices"]
    if meta.get("parse"):
        return {**spec, "type": meta["parse"], "metavar": meta.get("metavar")}
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if hint is bool:
        return {**spec, "action": "store_true"}
    if args == [bool]:  # bool | None: --x / --no-x, None when neither is given
        return {**spec, "action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:
        return {**spec, "action": "append", "metavar": meta.get("metavar", "VALUE")}
    kind = hint if hint in (int, float) else next((a for a in args if a in (int, float)), str)
    return {**spec, "type": kind, "metavar": meta.get("metavar", METAVARS.get(kind))}


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """How the model is loaded and run: a flag per engine option, plus --dtype and --device. An option whose
    flag the parser already has (a request field of the same name, e.g. a per-request setting that `ditto
    serve` also takes as its default) is left to that flag; `engine_options` reads only those added here."""
    group = parser.add_argument_group("engine (how the model is loaded and run)")
    hints = typing.get_type_hints(EngineOptions)
    added = []
    for option in cli_options():
        if option_flag(option) in parser._option_string_actions:
            continue
        group.add_argument(option_flag(option), **_argument(option, hints[option.name]))
        added.append(option.name)
    parser.set_defaults(engine_option_names=tuple(added))
    group.add_argument(
        "--dtype",
        choices=list(DTYPE_NAMES),
        help="precision of the weights and the computation (default: the model's official precision on a "
        "GPU, float32 on a CPU)",
    )
    group.add_argument("--device", metavar="DEVICE", help=DEVICE_HELP)


def engine_options(args: argparse.Namespace) -> EngineOptions:
    """The engine flags given, as typed Engine options (the ones not given keep their defaults)."""
    given = {name: getattr(args, name, None) for name in args.engine_option_names}
    given = {name: value for name, value in given.items() if value is not None}
    if "parallel" in args.engine_option_names and "parallel" not in given:
        from ditto.parallel.launch import torchrun_world_size

        given["parallel"] = torchrun_world_size()  # under torchrun: its ranks; else None (one process)
    return EngineOptions.from_keywords({name: value for name, value in given.items() if value is not None})


def refuse_untaken(kwargs: dict[str, Any], family: str) -> None:
    """A request flag the model's family does not take names the family and lists the flags it does take
    (a Python-level message would list keyword names, some of them not on the command line)."""
    taken = family_fields(family)
    for entry in cli_fields():
        if entry.name not in kwargs or entry in taken:
            continue
        flags = ", ".join(field.flag for field in taken if field.flag)
        if family in IMAGE_FAMILIES and set(entry.families) <= {LTX2}:
            problem, hint = "is a video parameter", f"{family} makes still images; it takes {flags}"
        else:
            problem, hint = f"is not taken by {family} models", f"{family} takes {flags}"
        raise InvalidParameter(entry.flag, kwargs[entry.name], problem, hint)


def generate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields given (on the command line or in --config), under their engine keywords."""
    kwargs = {}
    for entry in cli_fields():
        value = getattr(args, entry.name, None)
        if value is not None:
            kwargs[entry.name] = value
    if len(kwargs.get("prompt", ())) == 1:
        kwargs["prompt"] = kwargs["prompt"][0]
    return kwargs
