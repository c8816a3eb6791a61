"""`ditto generate --config FILE`: a JSON or YAML mapping of request fields (and the command's other flags)
by name; a flag given on the command line wins over the file.

A key is a flag without its dashes, in any of its spellings: `steps`, `num_inference_steps` and
`num-inference-steps` all mean --steps. Values go through the same parser as the command line, so a file
gets the same checks and the same messages, prefixed with its name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ditto.cli.parser import ArgumentsError, DittoArgumentParser, closest, known_flags, raising
from ditto.errors import InvalidParameter

NOT_IN_FILES = ("--config", "--help")


def read_mapping(path: Path) -> dict[str, Any]:
    """The file's mapping: YAML for .yaml/.yml, JSON otherwise."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidParameter("config", str(path), f"cannot be read ({exc.strerror or exc})") from None
    data = _parse(text, path)
    if not isinstance(data, dict):
        raise InvalidParameter("config", str(path), f"holds a {type(data).__name__}, not a mapping of fields")
    return data


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameter(
                "config", str(path), f"is not valid YAML ({exc})".replace("\n", " ")
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(
            "config", str(path), f"is not valid JSON ({exc})", "or name it .yaml"
        ) from None


def flag_for(key: str, parser: argparse.ArgumentParser, path: Path) -> str:
    flags = set(known_flags(parser)) - set(NOT_IN_FILES)
    for flag in ("--" + key, "--" + key.replace("_", "-")):
        if flag in flags:
            return flag
    matches = [m.lstrip("-") for m in closest("--" + key.replace("_", "-"), sorted(flags))]
    hint = (
        f"did you mean {' or '.join(matches)}?"
        if matches
        else "keys are the flags of `ditto generate --help`"
    )
    raise InvalidParameter("config", str(path), f"has an unknown key {key!r}", hint)


def tokens(config: dict[str, Any], parser: argparse.ArgumentParser, path: Path) -> list[str]:
    """The file as command-line words, so argparse checks its values exactly as it checks flags."""
    words: list[str] = []
    for key, value in config.items():
        flag = flag_for(str(key), parser, path)
        action = parser._option_string_actions[flag]
        if value is None:
            continue
        if isinstance(value, bool):
            if action.nargs != 0:
                raise InvalidParameter("config", str(path), f"gives {key}={value}, which takes a value")
            if value or isinstance(action, argparse.BooleanOptionalAction):
                words.append(flag if value else "--no-" + flag.removeprefix("--"))
            continue
        values = value if isinstance(value, list) else [value]
        if len(values) > 1 and not isinstance(action, argparse._AppendAction):
            raise InvalidParameter("config", str(path), f"gives a list for {key}, which takes one value")
        words += [f"{flag}={item}" for item in values]  # one word: a value may start with a dash
    return words


def apply_config(args: argparse.Namespace, path: Path, parser: DittoArgumentParser) -> None:
    """Fill every flag not given on the command line (None) from the file."""
    words = tokens(read_mapping(path), parser, path)
    try:
        with raising(parser):
            from_file = parser.parse_args(words)
    except ArgumentsError as exc:
        raise InvalidParameter("config", str(path), f"has a bad value: {exc}") from None
    for name, value in vars(from_file).items():
        if getattr(args, name, None) is None and value is not None:
            setattr(args, name, value)
