"""Run a list of study steps in order, reusing every step that already finished.

Each step runs its ``interp`` command's runner with a config whose ``out`` is
``<study folder>/<step id>-<config hash>``; a changed config, or a changed input folder (which is
part of the config), gets a new folder, so nothing written earlier is overwritten. The state file
records each finished step (see :mod:`interp.study.state`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from interp.config import ConfigError
from interp.errors import InterpError
from interp.study.state import STATE_FILE, StudyState, step_done
from interp.study.steps import Resolver, Step, command_line

log = logging.getLogger(__name__)


class StudyError(InterpError, RuntimeError):
    """A step ran but did not leave the outputs it promises (or needs a step that did not run)."""


def select(steps: Sequence[Step], only: Sequence[str] = ()) -> list[Step]:
    """The steps named in ``only`` (by id or id prefix like ``03``) plus everything they need."""
    if not only:
        return list(steps)
    by_id = {s.id: s for s in steps}
    wanted: set[str] = set()
    for name in only:
        hits = [
            s.id
            for s in steps
            if s.id == name or s.id.split("-", 1)[0] == name or s.id.split("-", 1)[-1] == name
        ]
        if not hits:
            raise ConfigError(f"unknown step {name!r}; steps: {', '.join(by_id)}")
        wanted.update(hits)
    todo = list(wanted)
    while todo:
        for need in by_id[todo.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                todo.append(need)
    return [s for s in steps if s.id in wanted]


def plan_table(
    steps: Sequence[Step], folder: Path, title: str, state_file: str = STATE_FILE
) -> Table:
    """step -> command -> artifact -> figures, with placeholders for folders not yet made."""
    state = StudyState.load(folder, state_file)

    def resolve(step_id: str) -> Path:
        record = state.steps.get(step_id)
        return Path(record["out"]) if record else Path(f"<{step_id}>")

    table = Table(title=title, show_lines=False)
    for col in ("step", "command", "writes", "figures", "done"):
        table.add_column(col, overflow="fold")
    for step in steps:
        try:
            command = command_line(step.words, step.config(resolve))
        except (ConfigError, FileNotFoundError, OSError):  # its inputs do not exist yet
            needs = ", ".join(step.needs)
            words = " ".join(step.words)
            command = f"interp {words} ... (configured from {needs} once they finish)"
        done = step.id in state.steps
        table.add_row(
            step.id,
            command,
            ", ".join(step.outputs) or "-",
            ", ".join(step.figures) or "-",
            "yes" if done else "",
        )
    return table


@dataclass(frozen=True)
class Prepared:
    """A step ready to run: its config (``out`` set), folder, command line, and whether its
    folder already holds every output (then it is reused, not run)."""

    step: Step
    config: Any
    out: Path
    command: str
    reused: bool


def prepare(step: Step, resolve: Resolver, folder: Path) -> Prepared:
    """The step's config with its output folder (its own, or ``<folder>/<id>-<hash>``)."""
    config = step.config(resolve)
    own = step.own_folder(config)
    out = own if own is not None else folder / step.folder_name(resolve)
    if any(f.name == "out" for f in dataclasses.fields(config)):
        config = dataclasses.replace(config, out=str(out))
    command = command_line(step.words, config)
    return Prepared(step, config, out, command, step_done(out, step.outputs))


def missing_outputs(step: Step, out: Path) -> list[str]:
    """The promised outputs (and ``meta.json``) a finished step did not leave in ``out``."""
    return [name for name in (*step.outputs, "meta.json") if not (out / name).exists()]


def resolver_of(outs: dict[str, Path]) -> Resolver:
    """step id -> the folder that step finished in, read from ``outs`` as it fills (a
    :class:`StudyError` for a step that has not run in this study)."""

    def resolve(step_id: str) -> Path:
        if step_id not in outs:
            raise StudyError(f"step needs {step_id!r}, which has not run in this study")
        return outs[step_id]

    return resolve


def run_steps(
    steps: Sequence[Step], folder: Path, console: Console, state_file: str = STATE_FILE
) -> StudyState:
    """Run (or reuse) every step in order, recording them in ``folder / state_file``; returns
    the final state."""
    state = StudyState.load(folder, state_file)
    outs: dict[str, Path] = {}
    resolve = resolver_of(outs)

    start = time.perf_counter()
    for i, step in enumerate(steps, 1):
        prepared = prepare(step, resolve, folder)
        out = prepared.out
        t0 = time.perf_counter()
        if prepared.reused:
            console.print(f"[dim][{i}/{len(steps)}] {step.id}: reusing {out}[/]")
        else:
            console.rule(f"[bold][{i}/{len(steps)}] {step.title}")
            console.print(f"[dim]$ {prepared.command}[/]")
            status = step.run(prepared.config, console)
            if status:
                raise StudyError(f"step {step.id} exited with status {status}")
            missing = missing_outputs(step, out)
            if missing:
                raise StudyError(
                    f"step {step.id} finished without writing {', '.join(missing)} in {out}"
                )
        outs[step.id] = out
        state.record(step.id, out, prepared.command, time.perf_counter() - t0, prepared.reused)
    wall = time.perf_counter() - start
    state.record_study(wall, 1)
    console.print(f"study finished in {wall:.0f} s; state in {folder / state_file}")
    return state
