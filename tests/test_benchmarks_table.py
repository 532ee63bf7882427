"""BENCHMARKS.md's table renders: every row has exactly the header's seven cells."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def cells(line: str) -> list[str]:
    """A Markdown table row split on unescaped ``|`` (the outer pipes dropped)."""
    return [c.strip() for c in UNESCAPED_PIPE.split(line.strip())[1:-1]]


def test_every_benchmark_row_has_seven_cells():
    rows = [
        line for line in (ROOT / "BENCHMARKS.md").read_text().splitlines() if line.startswith("|")
    ]
    assert rows, "BENCHMARKS.md has no table"
    assert cells(rows[0]) == ["benchmark", "command", "baseline", "ours", "ratio", "device", "date"]
    for line in rows:
        assert len(cells(line)) == 7, f"{len(cells(line))} cells in: {line[:120]}"


def test_benchmark_scripts_escape_pipes_inside_cells():
    spec = importlib.util.spec_from_file_location("bench_rows", ROOT / "benchmarks" / "rows.py")
    assert spec is not None and spec.loader is not None
    rows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rows)
    line = rows.markdown_row(["a", "b", "c", "ours (max |diff| 0.0e+00)", "2x", "CPU", "today"])
    assert len(cells(line)) == 7 and r"max \|diff\| 0.0e+00" in line
    assert rows.escape_cell(r"already \| escaped") == r"already \| escaped"
