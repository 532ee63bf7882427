"""The phase clock stamps each phase and keeps its seconds for meta.json."""

from __future__ import annotations

from interp.phase_clock import PhaseClock


def test_each_phase_lasts_until_the_next_and_the_record_closes_the_last():
    now = iter([0.0, 1.5, 62.0, 90.0]).__next__
    shown: list[str] = []
    clock = PhaseClock(shown.append, timer=now)  # started at 0.0
    clock("loading")  # 1.5
    clock("scoring 608 prompts")  # 62.0
    assert shown == ["[00:01] loading", "[01:02] scoring 608 prompts"]
    assert clock.record() == [  # recorded at 90.0
        {"phase": "loading", "seconds": 60.5},
        {"phase": "scoring 608 prompts", "seconds": 28.0},
        {"phase": "total", "seconds": 90.0},
    ]
