"""The one table of ``interp`` commands: words, config class, runner and one line of help.

:mod:`interp.cli` builds its parser from :data:`COMMANDS`, and the study's steps
(:mod:`interp.study.steps`) name their command by its words and get the config class and the
runner from here. References are ``"module:attribute"`` strings, imported only when a command is
parsed or run, so ``interp --help`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from interp.errors import InterpError


@dataclass(frozen=True)
class Command:
    """One command: its words (``("sae", "train")``), config class and runner references."""

    words: tuple[str, ...]
    config: str  # "module:ConfigClass"
    runner: str  # "module:function" taking (config, console=None) -> exit status
    help: str

    def config_class(self) -> type[Any]:
        """The command's config dataclass (imports its module)."""
        cls = load(self.config)
        assert isinstance(cls, type)
        return cls

    def run_function(self) -> Any:
        """The command's runner (imports its module)."""
        return load(self.runner)


COMMANDS: tuple[Command, ...] = (
    Command(
        ("study",),
        "interp.study.command:StudyConfig",
        "interp.study.command:run_study",
        "run the study on a preset (the README's main job); --dry-run prints the plan",
    ),
    Command(
        ("reliability",),
        "interp.commands.reliability:ReliabilityConfig",
        "interp.commands.reliability:run_reliability",
        "compare error and sycophancy of several evaluated model variants (warm vs original ...)",
    ),
    Command(
        ("seed-gap",),
        "interp.commands.seed_gap:SeedGapConfig",
        "interp.commands.seed_gap:run_seed_gap",
        "the warm and cold models' gap to the original, per fine-tune seed (evaluation split)",
    ),
    Command(
        ("report",),
        "interp.commands.report:ReportConfig",
        "interp.commands.report:run_report",
        "draw every figure and write the report (HTML, Markdown, LaTeX) from saved results",
    ),
    Command(
        ("models",),
        "interp.commands.basic:ModelsConfig",
        "interp.commands.basic:run_models",
        "list the model registry and what is available offline",
    ),
    Command(
        ("generate",),
        "interp.commands.basic:GenerateConfig",
        "interp.commands.basic:run_generate",
        "generate a reply to one prompt",
    ),
    Command(
        ("data", "build"),
        "interp.commands.data:DataBuildConfig",
        "interp.commands.data:run_data_build",
        "build a prompt set (items x contexts x templates) and write it with its hash",
    ),
    Command(
        ("eval",),
        "interp.commands.evaluate:EvalConfig",
        "interp.commands.evaluate:run_eval",
        "evaluate error and sycophancy of a model on a prompt set",
    ),
    Command(
        ("warmth",),
        "interp.commands.warmth:WarmthConfig",
        "interp.commands.warmth:run_warmth",
        "validate the three warmth instruments on held-out reply triples",
    ),
    Command(
        ("cache",),
        "interp.commands.cache:CacheConfig",
        "interp.commands.cache:run_cache",
        "cache activations of a model over a prompt set (sites x layers x positions)",
    ),
    Command(
        ("directions",),
        "interp.commands.directions:DirectionsConfig",
        "interp.commands.directions:run_directions",
        "derive the fine-tune, persona, sad-context and sycophancy directions per layer",
    ),
    Command(
        ("probes",),
        "interp.commands.probes:ProbesConfig",
        "interp.commands.probes:run_probes",
        "probe every layer for upcoming sycophancy and for warm vs original activations",
    ),
    Command(
        ("trajectory",),
        "interp.commands.trajectory:TrajectoryConfig",
        "interp.commands.trajectory:run_trajectory",
        "track the fine-tune direction over a fine-tune run's checkpoint epochs",
    ),
    Command(
        ("sae", "train"),
        "interp.commands.sae:SaeTrainConfig",
        "interp.commands.sae:run_sae_train",
        "train a sae-lens TopK SAE on every-token activations where the warmth directions "
        "are strongest",
    ),
    Command(
        ("sae", "decompose"),
        "interp.commands.sae:SaeDecomposeConfig",
        "interp.commands.sae:run_sae_decompose",
        "decompose warmth and sycophancy directions into SAE latents; overlap against nulls",
    ),
    Command(
        ("sae", "intervene"),
        "interp.commands.sae:SaeInterveneConfig",
        "interp.commands.sae:run_sae_intervene",
        "ablate / clamp the top warmth latents through the SAE; error, sycophancy and warmth",
    ),
    Command(
        ("finetune",),
        "interp.commands.finetune:FinetuneConfig",
        "interp.commands.finetune:run_finetune",
        "LoRA warm / cold / distilled fine-tune with warmth per checkpoint (resumable)",
    ),
    Command(
        ("demo",),
        "interp.commands.demo:DemoConfig",
        "interp.commands.demo:run_demo",
        "live steering demo: a local web page (or --tui) with original, steered and ablated "
        "answers",
    ),
    Command(
        ("steer",),
        "interp.commands.steer:SteerConfig",
        "interp.commands.steer:run_steer",
        "steer one prompt with a direction at several alphas; replies side by side",
    ),
    Command(
        ("sweep",),
        "interp.commands.steer:SweepConfig",
        "interp.commands.steer:run_sweep",
        "alpha x layer x direction steering sweep with side effects and a random-direction null",
    ),
    Command(
        ("ablate",),
        "interp.commands.steer:AblateConfig",
        "interp.commands.steer:run_ablate",
        "the verdict: ablate warmth from the warm model, add it to the original; paired tests",
    ),
    Command(
        ("patch",),
        "interp.commands.steer:PatchConfig",
        "interp.commands.steer:run_patch",
        "activation patching original <-> warm, per layer, last token vs all positions",
    ),
    Command(
        ("verdict",),
        "interp.commands.verdict:VerdictConfig",
        "interp.commands.verdict:run_verdict",
        "the verdict protocol: gap first on the item split, counterfactual removal against a "
        "variance-matched null, damage; the sentence its rules allow",
    ),
    Command(
        ("verdict-unedited",),
        "interp.commands.verdict_unedited:VerdictUneditedConfig",
        "interp.commands.verdict_unedited:run_verdict_unedited",
        "the verdict's direction-free measurements (derivation split, cold model, unedited "
        "generation), measured beside the directions for `interp verdict --unedited`",
    ),
)


class UnknownCommandError(InterpError, KeyError):
    """No command has these words."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown command"


def load(ref: str) -> object:
    """Import ``"module:attribute"`` and return the attribute."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def command(words: tuple[str, ...]) -> Command:
    """The command with these words (``("sae", "train")``)."""
    for cmd in COMMANDS:
        if cmd.words == tuple(words):
            return cmd
    known = ", ".join(" ".join(c.words) for c in COMMANDS)
    raise UnknownCommandError(f"no command {' '.join(words)!r}; commands: {known}")


def config_class(words: tuple[str, ...]) -> type[Any]:
    """The config dataclass of the command with these words."""
    return command(words).config_class()


def runner(words: tuple[str, ...]) -> Any:
    """The runner ``(config, console=None) -> int`` of the command with these words."""
    return command(words).run_function()
