"""Benchmark: forced-choice scoring, batched with a shared prompt cache vs the naive reference.

The naive reference runs one unpadded forward per (prompt, candidate); ours runs one batched
prompt pass and scores both candidates from its key/value cache. Same prompts, same run; the
numbers are checked equal before timing is reported. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/forced_choice.py [--prompts 64]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time

import numpy as np
import torch
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from interp.data.build import prompt_list
    from interp.evaluate import conversation
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.scoring import ChoicePrompt, score_choices, score_choices_naive

    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=8)
    prompts = prompts[: args.prompts]
    choice = [ChoicePrompt(conversation(p), (p.correct, p.incorrect)) for p in prompts]
    backend = get_backend(load_model(), "torch")
    score_choices(backend, choice[:4])  # warm-up
    t0 = time.perf_counter()
    naive = score_choices_naive(backend, choice)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = score_choices(backend, choice, batch_size=args.batch_size)
    t_ours = time.perf_counter() - t0
    diff = float(np.abs(ours.logprob_sum - naive.logprob_sum).max())
    assert diff < 1e-3, f"scores differ by {diff}"
    base, mine = len(choice) / t_naive, len(choice) / t_ours
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()})"
    print(
        markdown_row(
            [
                f"forced-choice scoring, {len(choice)} prompts x 2 answers (prompts/s)",
                f"`.venv/bin/python benchmarks/forced_choice.py --prompts {len(choice)}`",
                f"{base:.2f} (naive, one pair at a time)",
                f"{mine:.2f} (batched, shared prompt cache; max |diff| {diff:.1e})",
                f"{mine / base:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
