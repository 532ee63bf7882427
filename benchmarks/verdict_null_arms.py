"""Benchmark: the verdict's null arms, forced choice under a shift at one layer.

Baseline: every arm scored by :func:`interp.causal.arms.score_prompts` (a full forward with
the edit installed as a hook, shared prompt cache and chat prefix: the path the protocol used).
Ours: :func:`interp.causal.suffix_arms.score_arms_at_site` (the clean prefix below the edited
layer once per batch, then only the layers above it per arm). The arms are ``--arms`` random
directions at ``--layer`` shifted by ``--shift`` (the embedded verdict's removal: layer 28,
shift 51), on the verdict's prompt mix; the scores are checked equal before timing is reported.
Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/verdict_null_arms.py [--arms 6 --prompts 64 --layer 28]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform

import pandas as pd
import torch
from alternating import best_of_alternating  # benchmarks/alternating.py
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)
from verdict_prompts import (
    shifted_random_edits,
    verdict_prompt_mix,
)  # benchmarks/verdict_prompts.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", type=int, default=6)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--layer", type=int, default=28)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    from interp.causal.arms import Arm, score_prompts
    from interp.causal.suffix_arms import score_arms_at_site, shared_site
    from interp.hooks import get_backend
    from interp.models import load_model

    prompts = verdict_prompt_mix(args.prompts)
    loaded = load_model()
    backend = get_backend(loaded, "torch")
    edits = shifted_random_edits(loaded.d_model, args.arms, args.layer, args.shift)
    arms = [Arm("warm", label, backend, None, (e,)) for label, e in edits.items()]
    unedited = Arm("warm", "none", backend)
    site = shared_site(arms)
    assert site is not None
    score_prompts(unedited, prompts[:4])  # warm-up

    def baseline() -> pd.DataFrame:
        return pd.concat([score_prompts(a, prompts, args.batch_size) for a in arms])

    def ours() -> pd.DataFrame:
        return score_arms_at_site(unedited, arms, prompts, site, args.batch_size)

    base_result, our_result, base_s, our_s = best_of_alternating(baseline, ours, args.rounds)
    both = our_result.merge(base_result, on=["intervention", "prompt_id"], suffixes=("_o", "_b"))
    assert len(both) == len(prompts) * len(arms)
    diff = float((both["p_incorrect_o"] - both["p_incorrect_b"]).abs().max())
    flips = int((both["error_o"] != both["error_b"]).sum())
    assert diff < 1e-3, f"p_incorrect differs by {diff}"
    n = len(prompts) * len(arms)
    base, mine = n / base_s, n / our_s
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"
    print(
        markdown_row(
            [
                f"verdict null arms: forced choice under a shift at layer {args.layer} of "
                f"{loaded.n_layers}, {args.arms} arms x {len(prompts)} prompts (arm-prompts/s)",
                "`.venv/bin/python benchmarks/verdict_null_arms.py "
                f"--arms {args.arms} --prompts {len(prompts)} --layer {args.layer} "
                f"--rounds {args.rounds}`",
                f"{base:.2f} (hooked forward per arm, shared prompt cache and chat prefix)",
                f"{mine:.2f} (clean prefix once per batch, layers above {args.layer} per arm; "
                f"max |diff| in p(wrong) {diff:.1e}, {flips} error flips; best of "
                f"{args.rounds} alternating rounds)",
                f"{mine / base:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
