"""The ``interp`` command: a thin layer that parses a config dataclass and calls its runner.

Each command is one row of :data:`interp.commands.registry.COMMANDS`: its words, its config
dataclass and its runner (as ``module:attribute`` strings, imported only when the command runs,
so ``interp --help`` is instant) and one line of help. Errors that users cause (bad config,
missing files, unknown models, malformed data: every :class:`interp.errors.InterpError`) print
one clear line and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from interp.commands.registry import COMMANDS, Command
from interp.config import add_dataclass_arguments, dataclass_from_namespace
from interp.errors import InterpError

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (configs are imported to build each subcommand's options)."""
    parser = argparse.ArgumentParser(
        prog="interp",
        description="Why do warm language models become sycophantic? Hook, cache, steer, measure.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, Any] = {}
    for cmd in COMMANDS:
        sub = top
        for word in cmd.words[:-1]:
            if word not in groups:
                group_parser = top.add_parser(word, help=f"{word} commands")
                groups[word] = group_parser.add_subparsers(
                    dest=f"{word}_command", metavar="COMMAND"
                )
            sub = groups[word]
        config_cls = cmd.config_class()
        p = sub.add_parser(
            cmd.words[-1], help=cmd.help, description=(config_cls.__doc__ or cmd.help).strip()
        )
        add_dataclass_arguments(p, config_cls)
        p.set_defaults(_command=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``interp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=Console(stderr=True))],
    )
    cmd: Command | None = getattr(args, "_command", None)
    if cmd is None:
        parser.print_help()
        return 0
    console = Console()
    try:
        config: Any = dataclass_from_namespace(cmd.config_class(), args)
        return int(cmd.run_function()(config))
    except InterpError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
