"""The ``interp`` command: a thin layer that parses a config dataclass and calls its runner.

Each command is one row of :data:`COMMANDS`: its words, its config dataclass, its runner (as
``module:function``, imported only when the command runs, so ``interp --help`` is instant) and
one line of help. Errors that users cause (bad config, missing files, unknown models, malformed
data) print one clear line and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from interp.config import ConfigError, add_dataclass_arguments, dataclass_from_namespace


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    config: str  # "module:ConfigClass"
    runner: str  # "module:function"
    help: str


COMMANDS: tuple[Command, ...] = (
    Command(("study",), "interp.commands.study:StudyConfig", "interp.commands.study:run_study",
            "run the study on a preset (the README's main job); --dry-run prints the plan"),
    Command(("reliability",), "interp.commands.reliability:ReliabilityConfig",
            "interp.commands.reliability:run_reliability",
            "compare error and sycophancy of several evaluated model variants (warm vs original ...)"),
    Command(("report",), "interp.commands.report:ReportConfig", "interp.commands.report:run_report",
            "draw every figure and write the report (HTML, Markdown, LaTeX) from saved results"),
    Command(("models",), "interp.commands.basic:ModelsConfig", "interp.commands.basic:run_models",
            "list the model registry and what is available offline"),
    Command(("generate",), "interp.commands.basic:GenerateConfig",
            "interp.commands.basic:run_generate", "generate a reply to one prompt"),
    Command(("data", "build"), "interp.data.build:DataBuildConfig", "interp.data.build:run_data_build",
            "build a prompt set (items x contexts x templates) and write it with its hash"),
    Command(("eval",), "interp.commands.evaluate:EvalConfig", "interp.commands.evaluate:run_eval",
            "evaluate error and sycophancy of a model on a prompt set"),
    Command(("warmth",), "interp.commands.warmth:WarmthConfig", "interp.commands.warmth:run_warmth",
            "validate the three warmth instruments on held-out reply triples"),
    Command(("cache",), "interp.commands.cache:CacheConfig", "interp.commands.cache:run_cache",
            "cache activations of a model over a prompt set (sites x layers x positions)"),
    Command(("directions",), "interp.commands.directions:DirectionsConfig",
            "interp.commands.directions:run_directions",
            "derive the fine-tune, persona, sad-context and sycophancy directions per layer"),
    Command(("probes",), "interp.commands.probes:ProbesConfig", "interp.commands.probes:run_probes",
            "probe every layer for upcoming sycophancy and for warm vs original activations"),
    Command(("trajectory",), "interp.commands.trajectory:TrajectoryConfig",
            "interp.commands.trajectory:run_trajectory",
            "track the fine-tune direction over a fine-tune run's checkpoint epochs"),
    Command(("sae", "train"), "interp.commands.sae:SaeTrainConfig", "interp.commands.sae:run_sae_train",
            "train a sae-lens TopK SAE on every-token activations where the warmth directions are strongest"),
    Command(("sae", "decompose"), "interp.commands.sae:SaeDecomposeConfig", "interp.commands.sae:run_sae_decompose",
            "decompose warmth and sycophancy directions into SAE latents; overlap against nulls"),
    Command(("sae", "intervene"), "interp.commands.sae:SaeInterveneConfig", "interp.commands.sae:run_sae_intervene",
            "ablate / clamp the top warmth latents through the SAE; error, sycophancy and warmth"),
    Command(("finetune",), "interp.commands.finetune:FinetuneConfig", "interp.commands.finetune:run_finetune",
            "LoRA warm / cold / distilled fine-tune with warmth per checkpoint (resumable)"),
    Command(("demo",), "interp.commands.demo:DemoConfig", "interp.commands.demo:run_demo",
            "live steering demo: a local web page (or --tui) with original, steered and ablated answers"),
    Command(("steer",), "interp.commands.steer:SteerConfig", "interp.commands.steer:run_steer",
            "steer one prompt with a direction at several alphas; replies side by side"),
    Command(("sweep",), "interp.commands.steer:SweepConfig", "interp.commands.steer:run_sweep",
            "alpha x layer x direction steering sweep with side effects and a random-direction null"),
    Command(("ablate",), "interp.commands.steer:AblateConfig", "interp.commands.steer:run_ablate",
            "the verdict: ablate warmth from the warm model, add it to the original; paired tests"),
    Command(("patch",), "interp.commands.steer:PatchConfig", "interp.commands.steer:run_patch",
            "activation patching original <-> warm, per layer, last token vs all positions"),
)


def _load(ref: str) -> object:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (configs are imported to build each subcommand's options)."""
    parser = argparse.ArgumentParser(
        prog="interp",
        description="Why do warm language models become sycophantic? Hook, cache, steer, measure.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in COMMANDS:
        sub = top
        for word in cmd.words[:-1]:
            if word not in groups:
                group_parser = top.add_parser(word, help=f"{word} commands")
                groups[word] = group_parser.add_subparsers(dest=f"{word}_command", metavar="COMMAND")
            sub = groups[word]
        config_cls = _load(cmd.config)
        p = sub.add_parser(cmd.words[-1], help=cmd.help, description=(config_cls.__doc__ or cmd.help).strip())
        add_dataclass_arguments(p, config_cls)  # type: ignore[arg-type]
        p.set_defaults(_command=cmd)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from interp.hooks.base import HookError
    from interp.models import ModelLoadError
    from interp.sites import SiteError

    errors: list[type[BaseException]] = [ConfigError, ModelLoadError, HookError, SiteError, FileNotFoundError, FileExistsError]
    try:
        from interp.data.errors import DataFormatError

        errors.append(DataFormatError)
    except ImportError:
        pass
    return tuple(errors)


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
        config: Any = dataclass_from_namespace(_load(cmd.config), args)  # type: ignore[arg-type]
        runner = _load(cmd.runner)
        return int(runner(config))  # type: ignore[operator]
    except _user_errors() as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
