"""A study step: one CLI command with a fixed config, the files it must write and the figures it
feeds.

A step's config may depend on earlier steps' output folders (the warm adapter for the evaluation,
the directions for the verdict), so a step holds a function from a resolver (step id -> folder)
to its config. The same function renders the plan with placeholders (``<01-finetune-warm>``)
before anything has run.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.commands.registry import runner
from interp.config import config_hash
from interp.models import DeviceOptions

Resolver = Callable[[str], Path]


@dataclass(frozen=True)
class Step:
    """One numbered step of the study.

    ``words``: the ``interp`` subcommand (its config class and runner come from
    :mod:`interp.commands.registry`); ``build``: resolver -> config dataclass (its ``out`` field
    is set by the pipeline); ``outputs``: files the step must leave in its folder; ``figures``:
    figure ids drawn from it; ``needs``: step ids whose folders the config reads; ``gpu``: needs
    a GPU for real models; ``folder``: config -> the folder the runner itself writes (for configs
    without ``out``); ``cost``: expected work (:func:`interp.study.parallel.priorities`).
    """

    id: str
    title: str
    words: tuple[str, ...]
    build: Callable[[Resolver], Any]
    outputs: tuple[str, ...]
    figures: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    gpu: bool = False
    folder: Callable[[Any], Path] | None = None
    # expected work, in minutes alone on the machine the preset is sized for: only the order in
    # which a study running several steps at once starts ready steps depends on it
    cost: float = 1.0

    def own_folder(self, config: Any) -> Path | None:
        """Where the runner writes when its config has no ``out`` field (e.g. a named fine-tuning
        run that resumes in place); None when the pipeline chooses the folder."""
        return self.folder(config) if self.folder is not None else None

    def run(self, config: Any, console: Any) -> int:
        """Run the step's command (the registry's runner for its words) on ``config``."""
        return int(runner(self.words)(config, console))

    def config(self, resolve: Resolver) -> Any:
        """The step's config with ``out`` unset (the pipeline names the folder by its hash)."""
        config = self.build(resolve)
        if any(f.name == "out" for f in dataclasses.fields(config)):
            config = dataclasses.replace(config, out=None)
        return config

    def folder_name(self, resolve: Resolver) -> str:
        """``<id>-<config hash>``: a changed config (or input folder) gets a new folder."""
        return f"{self.id}-{config_hash(self.config(resolve))[:10]}"


ALWAYS_WRITTEN = ("device", "dtype")  # where and in what a step's model loads


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _quote(value: str) -> str:
    return shlex.quote(value)


def command_line(words: tuple[str, ...], config: Any) -> str:
    """The ``interp ...`` command that reproduces ``config`` (only fields that differ from
    their defaults are written, except where the model loads: ``--device`` and ``--dtype`` of a
    model-loading command always are)."""
    parts = ["interp", *words]
    loads = isinstance(config, DeviceOptions)
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        factory: Any = f.default_factory
        default: Any = f.default
        if default is dataclasses.MISSING and factory is not dataclasses.MISSING:
            default = factory()
        if value == default and not (loads and f.name in ALWAYS_WRITTEN):
            continue
        positional = f.metadata.get("positional", False)
        if isinstance(value, bool):
            parts.append(_flag(f.name) if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, tuple):
            parts.append(_flag(f.name))
            parts.extend(_quote(str(v)) for v in value)
        elif value is None:
            continue
        elif positional:
            parts.append(_quote(str(value)))
        else:
            parts.extend([_flag(f.name), _quote(str(value))])
    return " ".join(parts)
