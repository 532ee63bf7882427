"""benchmarks/gpu_check.py runs on the CPU in tiny mode: every check PASS or SKIP, and it imports
nothing the GPU image lacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCK = """
import runpy, sys
for name in ("transformer_lens", "nnsight", "sae_lens", "bitsandbytes", "gguf", \
"plotly", "kaleido"):
    sys.modules[name] = None  # as if not installed: import raises, find_spec returns None
sys.argv = ["gpu_check.py", "--device", "cpu", "--tiny", "--out", sys.argv[1]]
runpy.run_path(%r, run_name="__main__")
"""


def test_gpu_check_tiny_on_cpu_passes_without_gpu_only_packages(tmp_path):
    out = tmp_path / "rows.tsv"
    script = BLOCK % str(ROOT / "benchmarks" / "gpu_check.py")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    checks = {r[1]: r[2] for r in rows}
    assert set(checks) == {
        "forward",
        "cache",
        "choice",
        "steer",
        "ablate",
        "runner",
        "lora",
        "lora_ckpt",
        "split",
    }
    assert all(status in ("PASS", "SKIP") for status in checks.values()), rows
    assert checks["split"] == "SKIP"
