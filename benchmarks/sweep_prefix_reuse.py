"""Benchmark: an 8-value alpha sweep at a middle layer, prefix reuse vs the naive sweep.

Both score the same forced-choice rows (two candidates per prompt; KL kept on neutral prompts)
plus held-out reply rows. The naive sweep runs one full forward per alpha and batch with the edit
hooked in (``interp.causal.sweep.run_naive``); ours runs layers 0..L once per batch and only layers
L+1.. per alpha, unembedding only the scored positions (``interp.causal.sweep.run_prefix_reuse``).
The readings are checked equal before the row is printed.
The two engines alternate for ``--rounds`` rounds (medians reported) so that both see the same
machine load; CPU time is reported beside wall time.
Run: .venv/bin/python benchmarks/sweep_prefix_reuse.py [--prompts 32] [--layer 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time

import numpy as np
import torch
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--triples", type=int, default=8)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from interp.causal.readouts import build_rows
    from interp.causal.sweep import grid, run_naive, run_prefix_reuse
    from interp.data.build import prompt_list
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.steer import constant_direction
    from interp.warmth.pairs import load_split

    loaded = load_model(args.model)
    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=8)
    study = build_rows(
        loaded.tokenizer, prompts[: args.prompts], load_split().held_out[: args.triples]
    )
    vec = torch.randn(loaded.d_model, generator=torch.Generator().manual_seed(0))
    direction = constant_direction("random", vec, [args.layer])
    alphas = [-4.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 4.0]
    settings = grid([direction], [args.layer], alphas)
    norms = {args.layer: 10.0}
    backend = get_backend(loaded, "torch")
    run_prefix_reuse(loaded, study.rows.subset(range(4)), settings[:1], norms)  # warm-up
    # alternate the two engines for --rounds rounds so both see the same machine load; report
    # the median wall time and the median process CPU time of each
    times: dict[str, list[tuple[float, float]]] = {"naive": [], "ours": []}
    for _ in range(args.rounds):
        for name in ("naive", "ours"):
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "naive":
                naive = run_naive(backend, study.rows, settings, norms, batch_size=args.batch_size)
            else:
                ours = run_prefix_reuse(
                    loaded, study.rows, settings, norms, batch_size=args.batch_size
                )
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    diff = max(float(np.abs(ours.arrays(k)[0] - naive.arrays(k)[0]).max()) for k in ours.measured())
    assert diff < 1e-3, f"readings differ by {diff}"
    t_naive, cpu_naive = (float(np.median([t[i] for t in times["naive"]])) for i in (0, 1))
    t_ours, cpu_ours = (float(np.median([t[i] for t in times["ours"]])) for i in (0, 1))
    tokens = sum(len(r) for r in study.rows.ids)
    device = (
        f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load avg "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(
        markdown_row(
            [
                f"steering sweep, 8 alphas at layer {args.layer} of {loaded.n_layers}, "
                f"{len(study.rows)} rows / {tokens} tokens (s, lower is better)",
                f"`.venv/bin/python benchmarks/sweep_prefix_reuse.py --prompts {args.prompts} "
                f"--layer {args.layer}`",
                f"{t_naive:.1f} s wall, {cpu_naive:.1f} s CPU (naive: full forward per alpha, "
                "hooked)",
                f"{t_ours:.1f} s wall, {cpu_ours:.1f} s CPU (prefix once, layers "
                f"{args.layer + 1}.. per "
                f"alpha; max |diff| {diff:.1e})",
                f"{t_naive / t_ours:.2f}x wall, {cpu_naive / cpu_ours:.2f}x CPU (median of "
                f"{args.rounds} "
                "alternating rounds)",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
