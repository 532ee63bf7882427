"""Benchmark: the verdict step (``interp verdict``) at a baseline commit vs this checkout.

Both run at once, one thread each, on the same artifacts (the embedded study's fine-tunes and
directions under ``--artifacts``), so that they share the machine's speed of the moment (on this
machine it varies by half between hours): the baseline from a ``git worktree`` of ``--baseline``
in a temporary folder, ours from this checkout, both with this checkout's Python. The timed
quantity is each process's wall clock. Before the row is printed, the unedited models'
forced choice per prompt (which no engine change may move) is checked equal to 1e-4 in
p(wrong answer), and the error flips of near-ties are counted.
Run: .venv/bin/python benchmarks/verdict_commits.py --artifacts activations --baseline 611b435
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)

REPO = Path(__file__).resolve().parent.parent


def verdict_args(artifacts: Path) -> list[str]:
    """The study's step-17 command on the artifacts' embedded study."""
    runs = artifacts / "finetune"
    found = sorted((artifacts / "study" / "embedded").glob("08-directions-*"))
    if not found:
        raise SystemExit(
            f"no 08-directions-* folder under {artifacts}/study/embedded: run the study"
        )
    return [
        "verdict", "--device", "cpu", "--dtype", "float32",
        "--warm", str(runs / "embedded-warm" / "checkpoints" / "epoch-2.0"),
        "--cold", str(runs / "embedded-cold" / "checkpoints" / "epoch-2.0"),
        "--directions", str(found[-1]), "--targets", "finetune",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=Path("activations"))
    parser.add_argument("--baseline", required=True, help="commit of the baseline verdict")
    args = parser.parse_args()
    artifacts = args.artifacts.resolve()
    env = {
        **os.environ,
        "INTERP_ARTIFACTS": str(artifacts),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), args.baseline],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        try:
            procs, started, seconds = {}, {}, {}
            for name, tree in (("baseline", base_tree), ("ours", REPO)):
                out = Path(tmp) / f"out-{name}"
                command = [sys.executable, "-m", "interp.cli", *verdict_args(artifacts)]
                procs[name] = subprocess.Popen(
                    [*command, "--out", str(out)],
                    cwd=tree,  # python -m imports the interp package of that tree
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                started[name] = time.perf_counter()
            while len(seconds) < len(procs):  # each one's own finish, whichever ends first
                time.sleep(1.0)
                for name, p in procs.items():
                    if name in seconds or p.poll() is None:
                        continue
                    if p.returncode:
                        raise SystemExit(f"the {name} verdict exited with status {p.returncode}")
                    seconds[name] = time.perf_counter() - started[name]
            rows = [pd.read_csv(Path(tmp) / f"out-{n}" / "per_prompt.csv") for n in procs]
            unedited = [r[r.intervention == "none"] for r in rows]
            both = unedited[0].merge(unedited[1], on=["model", "prompt_id"], suffixes=("_a", "_b"))
            if len(both) != len(unedited[0]) or both.empty:
                raise SystemExit("the two verdicts scored different unedited prompts")
            p_diff = float((both["p_incorrect_a"] - both["p_incorrect_b"]).abs().max())
            flips = int((both["error_a"] != both["error_b"]).sum())
            if p_diff > 1e-4:
                raise SystemExit(f"the unedited models' p(wrong) differ by {p_diff:.3g}")
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    a, b = seconds["baseline"], seconds["ours"]
    print(
        f"unedited forced choice on {len(both)} prompt-model pairs: max |p diff| {p_diff:.2g}, "
        f"{flips} error flips (near-ties)"
    )
    print(
        markdown_row(
            [
                "the verdict step of the embedded study, at a baseline commit vs this checkout, "
                "run at once with one thread each (s of wall clock, lower is better)",
                "`.venv/bin/python benchmarks/verdict_commits.py --artifacts activations "
                f"--baseline {args.baseline}`",
                f"{a:.0f} s ({args.baseline})",
                f"{b:.0f} s (this checkout)",
                f"{a / b:.2f}x",
                f"CPU (1 thread each of {os.cpu_count()}, {platform.machine()})",
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
