"""One study step in a process of its own: ``python -m interp.study.child`` reads a pickled
``(words, config)`` pair from standard input and runs that command's runner on the config.

:func:`interp.study.parallel.run_steps_parallel` starts steps this way when it runs several at
once: the config object itself travels (not a command line parsed back), so the step computes
exactly what the sequential study would, in the folder the parent chose. ``INTERP_THREADS``
sets torch's intra-op threads (the parent divides the machine's cores among the steps it runs).
Exit status: the runner's; 2 with one line on standard output for an
:class:`interp.errors.InterpError`, as :mod:`interp.cli` does.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

THREADS_ENV = "INTERP_THREADS"


def main() -> int:
    """Run the step read from standard input; its exit status."""
    words, config = pickle.loads(sys.stdin.buffer.read())
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
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


if __name__ == "__main__":
    sys.exit(main())
