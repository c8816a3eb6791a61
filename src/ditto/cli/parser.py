"""argparse as a new user meets it: each mistake is one `error:` line, and a mistyped flag gets a
"did you mean" from the flags of its own subcommand (aliases included)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from ditto.errors import DittoError


class ArgumentsError(DittoError):
    """A command-line (or config file) value argparse refused, raised instead of exiting where asked."""


class DittoArgumentParser(argparse.ArgumentParser):
    """Errors print one line, `error: ...; see `ditto generate --help``, not the whole usage block; unknown
    flags get the closest known ones. Subparsers are made of this class too (argparse's parser_class)."""

    raise_errors = False  # `raising()`: raise ArgumentsError instead of printing and exiting

    def __init__(self, *args, **kwargs) -> None:
        # No prefix abbreviations (--guid for --guidance-scale): one would break when a flag is added.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise ArgumentsError(message)
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)

    def parse_args(self, args: Sequence[str] | None = None, namespace=None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = self.parser_for(parsed)
            chosen.error(unrecognized(extras, chosen))
        return parsed

    def parser_for(self, parsed: argparse.Namespace) -> DittoArgumentParser:
        """The subcommand's parser that read `parsed` (this parser when it has no subcommands)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(parsed, action.dest, None)
                return action.choices.get(chosen, self)
        return self


@contextmanager
def raising(parser: DittoArgumentParser) -> Iterator[DittoArgumentParser]:
    """Within: the parser raises ArgumentsError instead of printing and exiting (config files)."""
    parser.raise_errors = True
    try:
        yield parser
    finally:
        parser.raise_errors = False


def known_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string the parser takes, hidden aliases (`--num_frames`) included."""
    return [flag for flag in parser._option_string_actions if flag.startswith("--")]


def closest(word: str, candidates: Sequence[str]) -> list[str]:
    """The nearest candidates: the best match, and a second one only when it is about as near."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in candidates), reverse=True)
    best = scored[0][0] if scored else 0.0
    return [c for score, c in scored[:2] if score >= max(0.7, best - 0.05)]


def shown_flag(parser: argparse.ArgumentParser, flag: str) -> str:
    """The flag the help shows for the same setting (`--num_frames` -> `--num-frames`)."""
    dest = parser._option_string_actions[flag].dest
    for action in parser._actions:
        if action.dest == dest and action.help != argparse.SUPPRESS and action.option_strings:
            return action.option_strings[0]
    return flag


def unrecognized(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """'unrecognized argument --stpes; did you mean --steps?' (or how to give a value that lost its flag)."""
    flags = known_flags(parser)
    for word in extras:
        flag = word.split("=", 1)[0]
        if flag.startswith("-"):
            matches = list(dict.fromkeys(shown_flag(parser, m) for m in closest(flag, flags)))
            hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
            return f"unrecognized argument {flag}{hint}"
    shown = " ".join(extras)
    return (
        f"unrecognized arguments: {shown} (each value follows its flag; quote text with spaces, "
        f'e.g. --prompt "a red fox")'
    )
