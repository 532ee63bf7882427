"""Run a study's steps several at a time: each step in a process of its own
(:mod:`interp.study.child`), started as soon as every step it needs has finished, the machine's
cores divided among the steps that run (``INTERP_THREADS``).

Why: on 2 CPU cores one step with two threads keeps the cores busy only while it multiplies large
matrices; decoding, SocioT, tokenising, bootstraps and file work leave one core idle. Two steps
with one thread each use both (``benchmarks/study_jobs.py`` measures it).

Where the platform has a forkserver (Linux, macOS), a step is forked from a server that imported
the heavy modules once (:mod:`interp.study.preload`); elsewhere it starts a fresh interpreter.

Which ready step starts first: the one with the costliest chain of work behind it
(:func:`priorities`, from each step's ``cost``), so the long verdict does not wait at the end.
Each step's output goes to ``<study folder>/logs/<step id>.log``; the state file records a step
when it finishes (with the number of steps that ran at once), so a killed study resumes at the
first unfinished step, as the sequential one does. A failed step stops new starts; the steps
still running finish (their work is kept), then :class:`~interp.study.pipeline.StudyError`
names the failed step and shows the end of its log.

A step computes exactly what it computes in the sequential study (the config object itself is
handed to the child, in the folder the parent chose); only float rounding may differ, where a
matrix product splits its work over another number of threads.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from rich.console import Console

from interp.study.child import forked_step, step_environment
from interp.study.pipeline import (
    Prepared,
    StudyError,
    missing_outputs,
    prepare,
    resolver_of,
)
from interp.study.state import STATE_FILE, StudyState
from interp.study.steps import Step

LOG_FOLDER = "logs"
POLL_SECONDS = 0.5


def priorities(steps: Sequence[Step]) -> dict[str, float]:
    """Per step, its ``cost`` plus the costliest chain of steps that need it (transitively,
    among ``steps``): the expected work that cannot start before it ends."""
    by_id = {s.id: s for s in steps}
    dependents: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for need in s.needs:
            if need in dependents:
                dependents[need].append(s.id)
    memo: dict[str, float] = {}

    def chain(step_id: str) -> float:
        if step_id not in memo:
            behind = [chain(d) for d in dependents[step_id]]
            memo[step_id] = by_id[step_id].cost + max(behind, default=0.0)
        return memo[step_id]

    return {s.id: chain(s.id) for s in steps}


class StepProcess(Protocol):
    """A running step's process, as :class:`subprocess.Popen` offers it."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def wait(self) -> Any: ...


class _Forked:
    """A forked step (:func:`interp.study.child.forked_step`) behind :class:`StepProcess`."""

    def __init__(self, process: Any):
        self.process = process

    def poll(self) -> int | None:
        return None if self.process.is_alive() else int(self.process.exitcode)

    def terminate(self) -> None:
        self.process.terminate()

    def wait(self) -> None:
        self.process.join()


@dataclass
class _Running:
    prepared: Prepared
    process: StepProcess
    log: Path
    handle: IO[bytes]
    started: float


def forkserver() -> Any | None:
    """The multiprocessing context that forks steps from a server holding the preloaded modules
    (:mod:`interp.study.preload`), or None where the platform has no forkserver. The preload
    list is the standard library's own setting for its one forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["interp.study.preload"])
    return context


def _launch(prepared: Prepared, folder: Path, threads: int, context: Any | None) -> _Running:
    logs = folder / LOG_FOLDER
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{prepared.step.id}.log"
    if log.exists():  # an earlier try's log (a failed or killed run) is kept beside the new one
        log.rename(log.with_name(f"{log.stem}.{time.strftime('%Y%m%d-%H%M%S')}.log"))
    handle = log.open("wb")
    process: StepProcess
    if context is not None:
        forked = context.Process(
            target=forked_step,
            args=(
                prepared.step.words,
                prepared.config,
                str(log),
                threads,
                dict(os.environ),
                os.getcwd(),
            ),
            name=prepared.step.id,
        )
        forked.start()
        process = _Forked(forked)
    else:
        popen = subprocess.Popen(
            [sys.executable, "-m", "interp.study.child"],
            stdin=subprocess.PIPE,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **step_environment(threads)},
        )
        assert popen.stdin is not None
        popen.stdin.write(pickle.dumps((prepared.step.words, prepared.config)))
        popen.stdin.close()
        process = popen
    return _Running(prepared, process, log, handle, time.perf_counter())


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def run_steps_parallel(
    steps: Sequence[Step],
    folder: Path,
    console: Console,
    state_file: str = STATE_FILE,
    jobs: int = 2,
    cores: int | None = None,
    fork: bool = True,
) -> StudyState:
    """Run (or reuse) every step, at most ``jobs`` at a time, each with ``cores // jobs``
    threads (``cores``: the machine's, unless told), recording them in ``folder / state_file``;
    returns the final state. ``fork``: fork steps from the preloaded server where the platform
    has one (:func:`forkserver`), else start each in a fresh interpreter."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, found {jobs}")
    threads = max(1, (cores or os.cpu_count() or 1) // jobs)
    context = forkserver() if fork else None
    state = StudyState.load(folder, state_file)
    outs: dict[str, Path] = {}
    resolve = resolver_of(outs)

    rank = priorities(steps)
    order = {s.id: i for i, s in enumerate(steps)}
    number = {s.id: i for i, s in enumerate(steps, 1)}
    pending = list(steps)
    running: list[_Running] = []
    failed: list[str] = []
    prepared_of: dict[str, Prepared] = {}
    start = time.perf_counter()
    console.print(
        f"running up to {jobs} steps at a time, {threads} thread(s) each; "
        f"each step's output in {folder / LOG_FOLDER}"
    )
    try:
        while pending or running:
            ready = [s for s in pending if all(n in outs for n in s.needs)]
            for step in sorted(ready, key=lambda s: (-rank[s.id], order[s.id])):
                if failed:
                    break
                # once per step: its config is fixed once the steps it needs have finished
                if step.id not in prepared_of:
                    prepared_of[step.id] = prepare(step, resolve, folder)
                prepared = prepared_of[step.id]
                if prepared.reused:
                    console.print(
                        f"[dim][{number[step.id]}/{len(steps)}] {step.id}: reusing "
                        f"{prepared.out}[/]"
                    )
                    pending.remove(step)
                    outs[step.id] = prepared.out
                    state.record(step.id, prepared.out, prepared.command, 0.0, True)
                    continue
                if len(running) >= jobs:
                    continue
                pending.remove(step)
                running.append(_launch(prepared, folder, threads, context))
                console.print(
                    f"[bold][{number[step.id]}/{len(steps)}] started {step.title}[/]\n"
                    f"[dim]$ {prepared.command}[/]"
                )
            if not running:
                if pending and not failed:
                    names = ", ".join(s.id for s in pending)
                    raise StudyError(f"steps {names} need steps that are not in this study")
                break
            time.sleep(POLL_SECONDS)
            for r in list(running):
                code = r.process.poll()
                if code is None:
                    continue
                running.remove(r)
                r.handle.close()
                seconds = time.perf_counter() - r.started
                step = r.prepared.step
                missing = [] if code else missing_outputs(step, r.prepared.out)
                if code or missing:
                    why = (
                        f"exited with status {code}"
                        if code
                        else f"finished without writing {', '.join(missing)} in {r.prepared.out}"
                    )
                    failed.append(f"step {step.id} {why}; the end of {r.log}:\n{_tail(r.log)}")
                    console.print(f"[red]{step.id} {why} (log: {r.log})[/]")
                    continue
                outs[step.id] = r.prepared.out
                state.record(step.id, r.prepared.out, r.prepared.command, seconds, False, jobs=jobs)
                console.print(f"[green]{step.id} finished in {seconds:.0f} s[/]")
    except BaseException:
        for r in running:  # an interrupted study stops its steps (each resumes on the next run)
            r.process.terminate()
        for r in running:
            r.process.wait()
            r.handle.close()
        raise
    if failed:
        raise StudyError("\n\n".join(failed))
    wall = time.perf_counter() - start
    state.record_study(wall, jobs)
    console.print(f"study finished in {wall:.0f} s; state in {folder / state_file}")
    return state
