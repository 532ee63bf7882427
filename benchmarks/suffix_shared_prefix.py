"""Benchmark: the verdict's target arms through the suffix engine, with and without the shared
chat prefix run once.

Baseline: :func:`interp.causal.suffix_arms.score_arms_at_site` with ``share_prefix=False`` (each
batch runs every prompt whole below the edited layer and every arm runs the layers above it on
the whole rows: the path before the shared prefix). Ours: the same call with the tokens every
prompt starts with (SmolLM2's system header and the user turn's opening) run once, and once
per edit set above the site, each batch running only the rows' own tokens. The arms are the
verdict warm model's: ``--arms`` random directions shifted by ``--shift`` at ``--layer`` (the
embedded verdict's removal: layer 28, shift 51) with the unedited model riding as an identity
edit, on the verdict's prompt mix; the scores are checked equal before timing is reported.
Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/suffix_shared_prefix.py [--arms 2 --prompts 96 --layer 28]
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
    parser.add_argument("--arms", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--layer", type=int, default=28)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a study lane: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from interp.causal.arms import Arm
    from interp.causal.readouts import build_rows
    from interp.causal.suffix_arms import identity_edit, score_arms_at_site, shared_site
    from interp.hooks import get_backend
    from interp.models import load_model

    prompts = verdict_prompt_mix(args.prompts)
    loaded = load_model()
    backend = get_backend(loaded, "torch")
    edits = shifted_random_edits(loaded.d_model, args.arms, args.layer, args.shift)
    arms = [Arm("warm", label, backend, None, (e,)) for label, e in edits.items()]
    site = shared_site(arms)
    assert site is not None
    arms.append(Arm("warm", "none", backend, None, ({site: identity_edit},)))
    unedited = Arm("warm", "none", backend)
    rows = build_rows(loaded.tokenizer, prompts).rows
    shared = len(rows.shared_prefix())
    tokens = sum(len(r) for r in rows.ids) / len(rows)
    score_arms_at_site(unedited, arms, prompts[:4], site)  # warm-up

    def baseline() -> pd.DataFrame:
        return score_arms_at_site(
            unedited, arms, prompts, site, args.batch_size, share_prefix=False
        )

    def ours() -> pd.DataFrame:
        return score_arms_at_site(unedited, arms, prompts, site, args.batch_size)

    base_result, our_result, base_s, our_s = best_of_alternating(baseline, ours, args.rounds)
    both = our_result.merge(base_result, on=["intervention", "prompt_id"], suffixes=("_o", "_b"))
    assert len(both) == len(prompts) * len(arms)
    diff = float((both["p_incorrect_o"] - both["p_incorrect_b"]).abs().max())
    flips = int((both["error_o"] != both["error_b"]).sum())
    assert diff < 1e-3, f"p_incorrect differs by {diff}"
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} thread(s), {platform.machine()}, load {load:.1f})"
    print(
        markdown_row(
            [
                f"verdict target arms: forced choice, {args.arms} arms shifted at layer "
                f"{args.layer} of {loaded.n_layers} + the unedited model, {len(prompts)} prompts "
                f"(a shared prefix of {shared} of {tokens:.0f} tokens per row) "
                "(s, lower is better)",
                "`.venv/bin/python benchmarks/suffix_shared_prefix.py "
                f"--arms {args.arms} --prompts {len(prompts)} --layer {args.layer} "
                f"--rounds {args.rounds} --threads {args.threads}`",
                f"{base_s:.1f} s (suffix engine, every row whole)",
                f"{our_s:.1f} s (shared prefix run once, and once per arm above the site; max "
                f"\\|diff\\| in p(wrong) {diff:.1e}, {flips} error flips; best of {args.rounds} "
                "alternating rounds)",
                f"{base_s / our_s:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
