"""One study step in a process of its own, started one of two ways.

- Forked (:func:`forked_step`, the default where the platform has a forkserver): the step is
  forked from a server process that imported the study's heavy modules once
  (:mod:`interp.study.preload`: torch, transformers, peft, pandas, scipy, statsmodels and every
  command's module), so a step does not spend seconds importing them again; its standard output
  and error go to the step's log.
- A fresh interpreter: ``python -m interp.study.child`` reads a pickled ``(words, config)`` pair
  from standard input and runs that command's runner on the config.

:func:`interp.study.parallel.run_steps_parallel` starts steps this way when it runs several at
once: the config object itself travels (not a command line parsed back), so the step computes
exactly what the sequential study would, in the folder the parent chose. ``threads`` (or
``INTERP_THREADS``) sets torch's intra-op threads (the parent divides the machine's cores among
the steps it runs). Exit status: the runner's; 2 with one line on standard output for an
:class:`interp.errors.InterpError`, as :mod:`interp.cli` does.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

THREADS_ENV = "INTERP_THREADS"


def step_environment(threads: int, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a step's environment sets over ``base`` (the parent's): its thread count, for
    torch and the libraries under it, and no tokenizer threads (two steps share the cores)."""
    return {
        THREADS_ENV: str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "COLUMNS": base.get("COLUMNS", "100"),
    }


def run_step(words: tuple[str, ...], config: Any, threads: int | None) -> int:
    """Run the command ``words`` on ``config`` with ``threads`` torch threads (None: torch's
    default); its exit status."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=Console(stderr=True))],
    )
    from interp.commands.registry import runner
    from interp.errors import InterpError

    console = Console()
    try:
        return int(runner(tuple(words))(config, console))
    except InterpError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        return 2


def forked_step(
    words: tuple[str, ...],
    config: Any,
    log: str,
    threads: int,
    environment: dict[str, str],
    folder: str,
) -> None:
    """The target of a forked step: standard output and error appended to ``log``; the
    parent's ``environment`` (as it is now, not as it was when the server started) with the
    step's on top, and the parent's working ``folder``; then the step (torch's thread count
    set by :func:`run_step`: the OpenMP library read ``OMP_NUM_THREADS`` when the server
    imported torch); exits with its status."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update({**environment, **step_environment(threads, environment)})
    os.chdir(folder)
    sys.exit(run_step(words, config, threads))


def main() -> int:
    """Run the step read from standard input; its exit status."""
    words, config = pickle.loads(sys.stdin.buffer.read())
    threads = os.environ.get(THREADS_ENV)
    return run_step(words, config, int(threads) if threads else None)


if __name__ == "__main__":
    sys.exit(main())
