"""Benchmark: packed forced-choice rows (the prompt once, each candidate a branch) vs two rows.

The engines that run a slice of layers from a saved residual, the steering sweep's prefix reuse
(:func:`interp.causal.sweep.run_prefix_reuse`) and the verdict's clean-prefix arms
(:func:`interp.causal.suffix_arms.score_arms_at_site`), scored two rows per prompt (prompt +
correct answer, prompt + wrong answer): the baseline, ``pack=False``. Ours packs a prompt's two
candidates into one row (:mod:`interp.causal.packing`), so the prompt is computed once. Both
score the verdict's prompt mix; the readings are checked equal before timing is reported, and
the two alternate for ``--rounds`` rounds (best kept) so that both see the same machine load.
Prints two BENCHMARKS.md rows: the sweep (``--alphas`` alphas at ``--layer``, with held-out
reply rows, which are not packed) and the verdict null (``--arms`` shifted random directions at
``--layer``).
Run: .venv/bin/python benchmarks/packed_rows.py [--prompts 32 --layer 15 --arms 20]
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
from verdict_prompts import (
    shifted_random_edits,
    verdict_prompt_mix,
)  # benchmarks/verdict_prompts.py


def _device() -> str:
    load = os.getloadavg()[0]
    return f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--triples", type=int, default=8)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--alphas", type=int, default=8)
    parser.add_argument("--arms", type=int, default=20)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    from interp.causal.arms import Arm
    from interp.causal.readouts import build_rows
    from interp.causal.suffix_arms import score_arms_at_site, shared_site
    from interp.causal.sweep import grid, run_prefix_reuse
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.steer import constant_direction
    from interp.warmth.pairs import load_split

    prompts = verdict_prompt_mix(args.prompts)
    loaded = load_model()
    backend = get_backend(loaded, "torch")
    g = torch.Generator().manual_seed(0)
    command = (
        f"`.venv/bin/python benchmarks/packed_rows.py --prompts {len(prompts)} --layer "
        f"{args.layer} --alphas {args.alphas} --arms {args.arms} --rounds {args.rounds}`"
    )
    today = dt.date.today().isoformat()

    # the sweep: alphas x one direction at one layer, forced-choice and held-out rows
    study = build_rows(loaded.tokenizer, prompts, load_split().held_out[: args.triples])
    direction = constant_direction("random", torch.randn(loaded.d_model, generator=g), [args.layer])
    alphas = list(np.linspace(-4.0, 4.0, args.alphas))
    settings = grid([direction], [args.layer], alphas)
    norms = {args.layer: 10.0}
    run_prefix_reuse(loaded, study.rows.subset(range(4)), settings[:1], norms)  # warm-up

    def sweep(pack: bool):
        return lambda: run_prefix_reuse(
            loaded, study.rows, settings, norms, batch_size=args.batch_size, pack=pack
        )

    two, packed, base_s, our_s = best_of_alternating(sweep(False), sweep(True), args.rounds)
    diff = max(
        float(np.abs(packed.arrays(k)[0] - two.arrays(k)[0]).max()) for k in packed.measured()
    )
    assert diff < 1e-3, f"sweep readings differ by {diff}"
    print(
        markdown_row(
            [
                f"steering sweep, packed rows vs two rows per prompt, {args.alphas} alphas at "
                f"layer {args.layer} of {loaded.n_layers}, {len(prompts)} prompts + "
                f"{args.triples} held-out replies (s, lower is better)",
                command,
                f"{base_s:.1f} s (prefix reuse, two rows per prompt)",
                f"{our_s:.1f} s (prefix reuse, one packed row per prompt; max |diff| in "
                f"summed log-prob {diff:.1e}; best of {args.rounds} alternating rounds)",
                f"{base_s / our_s:.2f}x",
                _device(),
                today,
            ]
        )
    )

    # the verdict null: shifted random directions at one layer, forced choice
    edits = shifted_random_edits(loaded.d_model, args.arms, args.layer, args.shift)
    arms = [Arm("warm", label, backend, None, (e,)) for label, e in edits.items()]
    unedited = Arm("warm", "none", backend)
    site = shared_site(arms)
    assert site is not None

    def null(pack: bool):
        return lambda: score_arms_at_site(unedited, arms, prompts, site, args.batch_size, pack=pack)

    two_rows, packed_rows, base_s, our_s = best_of_alternating(null(False), null(True), args.rounds)
    both = packed_rows.merge(two_rows, on=["intervention", "prompt_id"], suffixes=("_o", "_b"))
    assert len(both) == len(prompts) * len(arms)
    p_diff = float((both["p_incorrect_o"] - both["p_incorrect_b"]).abs().max())
    flips = int((both["error_o"] != both["error_b"]).sum())
    assert p_diff < 1e-3, f"p_incorrect differs by {p_diff}"
    n = len(prompts) * len(arms)
    print(
        markdown_row(
            [
                f"verdict null arms, packed rows vs two rows per prompt: forced choice under a "
                f"shift at layer {args.layer} of {loaded.n_layers}, {args.arms} arms x "
                f"{len(prompts)} prompts (arm-prompts/s)",
                command,
                f"{n / base_s:.2f} (clean prefix once, two rows per prompt)",
                f"{n / our_s:.2f} (clean prefix once, one packed row per prompt; max |diff| "
                f"in p(wrong) {p_diff:.1e}, {flips} error flips; best of {args.rounds} "
                "alternating rounds)",
                f"{base_s / our_s:.2f}x",
                _device(),
                today,
            ]
        )
    )


if __name__ == "__main__":
    main()
