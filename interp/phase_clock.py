"""Where a long command's time goes: a progress callback that stamps each phase.

A :class:`PhaseClock` stands in for ``console.print`` as a command's ``progress`` callback.
Each message starts a phase: it is printed after the minutes and seconds since the clock began,
and the phase before it is closed with its seconds. :meth:`PhaseClock.record` gives every
phase's seconds (the last one closed then), for the command's meta.json, so that a run's
profile travels with its results instead of being measured again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _stamp(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"[{minutes:02d}:{rest:02d}]"


@dataclass
class PhaseClock:
    """A progress callback (``clock(message)``) that prints ``[mm:ss] message`` through
    ``show`` and keeps each phase's wall-clock seconds (a phase lasts until the next message,
    or until :meth:`record`)."""

    show: Callable[[str], object]
    timer: Callable[[], float] = time.perf_counter
    started: float = field(init=False)
    phases: list[tuple[str, float]] = field(init=False, default_factory=list)
    _open: tuple[str, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started = self.timer()

    def _close(self, now: float) -> None:
        if self._open is not None:
            message, since = self._open
            self.phases.append((message, now - since))
            self._open = None

    def __call__(self, message: str) -> None:
        now = self.timer()
        self._close(now)
        self._open = (message, now)
        self.show(f"{_stamp(now - self.started)} {message}")

    def record(self) -> list[dict[str, object]]:
        """Every phase so far as ``{"phase": message, "seconds": s}`` (the open one closed
        now), then ``{"phase": "total", ...}`` since the clock began."""
        now = self.timer()
        self._close(now)
        rows: list[dict[str, object]] = [
            {"phase": m, "seconds": round(s, 2)} for m, s in self.phases
        ]
        rows.append({"phase": "total", "seconds": round(now - self.started, 2)})
        return rows
