"""Benchmark: forced-choice scoring on the verdict's prompt mix (no belief, sad, wrong belief,
sad + wrong belief).

Row 1 (``--against naive``): the naive reference runs one unpadded forward per (prompt,
candidate); ours runs one batched prompt pass and scores both candidates from its key/value
cache. Row 2 (``--against unshared``): the batched, cached path without the shared chat prefix
and length-ordered batches (the path before them) against the default. Same prompts, same run;
the scores are checked equal before timing is reported. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/forced_choice.py [--prompts 64] [--against naive|unshared]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform

import numpy as np
import torch
from alternating import best_of_alternating  # benchmarks/alternating.py
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)
from verdict_prompts import verdict_prompt_mix  # benchmarks/verdict_prompts.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--against", choices=("naive", "unshared"), default="naive")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    from interp.evaluate import conversation
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.scoring import ChoicePrompt, ChoiceScores, score_choices, score_choices_naive

    prompts = verdict_prompt_mix(args.prompts)
    choice = [ChoicePrompt(conversation(p), (p.correct, p.incorrect)) for p in prompts]
    backend = get_backend(load_model(), "torch")
    score_choices(backend, choice[:4])  # warm-up

    def baseline() -> ChoiceScores:
        if args.against == "naive":
            return score_choices_naive(backend, choice)
        return score_choices(backend, choice, batch_size=args.batch_size, share_prefix=False)

    def ours() -> ChoiceScores:
        return score_choices(backend, choice, batch_size=args.batch_size)

    base_result, our_result, base_s, our_s = best_of_alternating(baseline, ours, args.rounds)
    diff = float(np.abs(our_result.logprob_sum - base_result.logprob_sum).max())
    assert diff < 1e-3, f"scores differ by {diff}"
    base, mine = len(choice) / base_s, len(choice) / our_s
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"
    label = {
        "naive": "naive, one pair at a time",
        "unshared": "batched, shared prompt cache, prompts in given order",
    }[args.against]
    print(
        markdown_row(
            [
                f"forced-choice scoring, {len(choice)} verdict prompts x 2 answers (prompts/s)",
                "`.venv/bin/python benchmarks/forced_choice.py "
                f"--prompts {len(choice)} --against {args.against}`",
                f"{base:.2f} ({label})",
                f"{mine:.2f} (shared chat prefix once per batch, length-ordered batches; "
                f"max |diff| {diff:.1e}; best of {args.rounds} alternating rounds)",
                f"{mine / base:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
