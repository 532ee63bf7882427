"""Benchmark: loading the embedded model from the cached float checkpoint vs dequantising the GGUF.

Both are measured in the same run, on this machine. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/model_load.py
"""

from __future__ import annotations

import datetime as dt
import platform
import time

import torch
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def main() -> None:
    from transformers import AutoModelForCausalLM

    from interp.models import EMBEDDED, embedded_checkpoint, embedded_gguf_path, load_model

    embedded_checkpoint()  # make sure the cache exists (not timed)
    gguf = embedded_gguf_path()
    t0 = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_model(EMBEDDED)  # includes the sha256 verification of the cached checkpoint
    ours = time.perf_counter() - t0
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()})"
    print(
        markdown_row(
            [
                "embedded model load (s, lower is better)",
                "`.venv/bin/python benchmarks/model_load.py`",
                f"{baseline:.1f} s (GGUF dequantise)",
                f"{ours:.1f} s (cached safetensors, verified)",
                f"{baseline / ours:.1f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
