"""Benchmark: study steps one at a time (two threads) vs two at a time (one thread each).

Runs ``interp study --preset embedded --only <steps>`` twice in fresh study folders under a
temporary folder: ``--jobs 1`` (the baseline: each step in the study's process, torch on every
core) and ``--jobs 2`` (ours: :mod:`interp.study.parallel`, each step in a process of its own with
half the cores). The steps' inputs come from ``--artifacts`` (the fine-tune runs there are
reused, so only the named steps compute). The timed quantity is the study's wall clock, from
its own record (``state.json``: ``study.seconds``); the steps' result tables are checked equal
(to float rounding) before the row is printed.
Run: .venv/bin/python benchmarks/study_jobs.py --artifacts activations --only 03 04 05 06
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)

TABLES = ("results.csv", "summary.csv", "error_by_task.csv")


def run(folder: Path, jobs: int, only: list[str], artifacts: Path) -> dict:
    env = {**os.environ, "INTERP_ARTIFACTS": str(artifacts.resolve())}
    command = [sys.executable, "-m", "interp.cli", "study", "--preset", "embedded"]
    command += ["--only", *only, "--jobs", str(jobs), "--out", str(folder)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((folder / "state.json").read_text())


def check_equal(a: dict, b: dict) -> int:
    """Compare the result tables of the steps both runs computed; how many were compared."""
    n = 0
    for step, rec in a["steps"].items():
        if rec["reused"]:
            continue
        for name in TABLES:
            x, y = Path(rec["out"]) / name, Path(b["steps"][step]["out"]) / name
            if x.is_file():
                pd.testing.assert_frame_equal(pd.read_csv(x), pd.read_csv(y), rtol=1e-5)
                n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=Path("activations"))
    parser.add_argument("--only", nargs="+", default=["03", "04", "05", "06"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seq = run(Path(tmp) / "one", 1, args.only, args.artifacts)
        par = run(Path(tmp) / "two", 2, args.only, args.artifacts)
        compared = check_equal(seq, par)
    a, b = seq["study"]["seconds"], par["study"]["seconds"]
    computed = [s for s, r in seq["steps"].items() if not r["reused"]]
    cpus = os.cpu_count()
    print(f"{len(computed)} steps computed ({', '.join(computed)}); {compared} tables equal")
    print(
        markdown_row(
            [
                f"study steps {' '.join(args.only)} of the embedded preset, one vs two at a time "
                "(s of wall clock, lower is better)",
                f"`.venv/bin/python benchmarks/study_jobs.py --artifacts activations --only "
                f"{' '.join(args.only)}`",
                f"{a:.0f} s (one step at a time, {cpus} threads)",
                f"{b:.0f} s (two at a time, {max(1, (cpus or 1) // 2)} thread each)",
                f"{a / b:.2f}x",
                f"CPU ({cpus} threads, {platform.machine()})",
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
