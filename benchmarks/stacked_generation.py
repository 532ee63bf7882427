"""Benchmark: greedy replies under many edit sets, one arm at a time vs stacked in one batch.

The verdict measures the warmth of every arm's greedy replies to held-out requests (its 20 null
arms per target included) and grades greedy replies for the generation measure. Baseline: each
edit set under its own hooked context, the requests in batches of ``--batch-size`` (the path the
verdict used before). Ours: :func:`interp.causal.stacked_generation.stacked_greedy`, the edit
sets' copies of the requests stacked into batches of at most ``--max-rows`` rows, each set
editing its own block. The arms are ``--arms`` random directions shifted at ``--layer`` by
``--shift`` (the embedded verdict's null: layer 28, shift 51) plus the unedited model; the share
of replies that come out identical is reported (a different batch shape can move a near-tie),
and the two paths alternate for ``--rounds`` rounds (best kept). Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/stacked_generation.py [--arms 20 --requests 8 --max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform

import torch
from alternating import best_of_alternating  # benchmarks/alternating.py
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)
from verdict_prompts import shifted_random_edits  # benchmarks/verdict_prompts.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", type=int, default=20)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--layer", type=int, default=28)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-rows", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    from interp.causal.arms import greedy_replies
    from interp.causal.stacked_generation import stacked_greedy
    from interp.chat import as_messages
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.warmth.pairs import load_split

    loaded = load_model()
    backend = get_backend(loaded, "torch")
    requests = [t.request for t in load_split().held_out[: args.requests]]
    nulls = shifted_random_edits(loaded.d_model, args.arms, args.layer, args.shift)
    edit_sets = [{}, *nulls.values()]

    def one_at_a_time() -> list[list[str]]:
        out = []
        for edits in edit_sets:
            with backend.hooked(edit=edits):
                out.append(
                    greedy_replies(backend, requests, None, args.max_new_tokens, args.batch_size)
                )
        return out

    def stacked() -> list[list[str]]:
        convs = [tuple(as_messages(r)) for r in requests]
        return stacked_greedy(backend, convs, edit_sets, args.max_new_tokens, args.max_rows)

    base, ours, base_s, our_s = best_of_alternating(one_at_a_time, stacked, args.rounds)
    pairs = [(a, b) for ra, rb in zip(base, ours, strict=True) for a, b in zip(ra, rb, strict=True)]
    same = sum(a == b for a, b in pairs) / len(pairs)
    assert same >= 0.9, f"only {same:.0%} of the replies agree between the two paths"
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"
    print(
        markdown_row(
            [
                f"greedy replies ({args.max_new_tokens} tokens) to {len(requests)} held-out "
                f"requests under {len(edit_sets)} edit sets (unedited + {args.arms} random "
                f"directions shifted at layer {args.layer} of {loaded.n_layers}) (s, lower is "
                "better)",
                "`.venv/bin/python benchmarks/stacked_generation.py "
                f"--arms {args.arms} --requests {args.requests} "
                f"--max-new-tokens {args.max_new_tokens} --layer {args.layer} "
                f"--max-rows {args.max_rows} --rounds {args.rounds}`",
                f"{base_s:.1f} s (one edit set at a time, batches of {args.batch_size})",
                f"{our_s:.1f} s (edit sets stacked, at most {args.max_rows} rows a batch; "
                f"{same:.0%} of replies identical; best of {args.rounds} alternating rounds)",
                f"{base_s / our_s:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
