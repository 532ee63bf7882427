"""Benchmark: LoRA training with the micro-batch's shared header run once
(``TrainConfig.share_prefix``, the default) vs every row computing its own copy.

Both are the package's loop (:func:`interp.finetune.train.train`) on the embedded model and the
shipped warm (or cold) training triples, the same steps and examples; they alternate
``--repeats`` times and the best of each is kept. Tokens/s counts the examples' non-padding
tokens (the shared ones once per row, as the loop reports them), wall time of the whole call.
LoRA dropout is off here so that the two compute the same thing: the first step's loss is checked
equal between them. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/finetune_shared_prefix.py [--steps 3] [--repeats 2]
[--variant warm] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def run(loaded, examples, config, steps: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Train ``steps`` optimizer steps; (tokens trained, first step's loss)."""
    from interp.finetune.train import train

    cfg = dataclasses.replace(
        config, epochs=steps * config.effective_batch / len(examples), checkpoint_epochs=()
    )
    with tempfile.TemporaryDirectory() as tmp:
        model, result = train(loaded, examples, cfg, Path(tmp) / "run")
    model.unload()
    return result.tokens, result.losses[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variant", choices=("warm", "cold"), default="warm")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the study's steps run with 1)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from interp.finetune.examples import tokenize_all, triple_conversations
    from interp.finetune.presets import EMBEDDED_TRAIN
    from interp.finetune.train import shared_prefix
    from interp.models import load_model
    from interp.warmth.pairs import load_split

    loaded = load_model()
    base = dataclasses.replace(EMBEDDED_TRAIN, lora_dropout=0.0)  # first losses comparable
    examples = tokenize_all(
        loaded.tokenizer, triple_conversations(load_split().train, args.variant), base.max_length
    )
    configs = {
        "own rows": dataclasses.replace(base, share_prefix=False),
        "shared": dataclasses.replace(base, share_prefix=True),
    }
    best = dict.fromkeys(configs, 0.0)
    first: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, config in configs.items():
            t0 = time.perf_counter()
            tokens, first[name] = run(loaded, examples, config, args.steps)
            rate = tokens / (time.perf_counter() - t0)
            best[name] = max(best[name], rate)
            print(f"# {name}: {tokens} tokens, {rate:.1f} tokens/s", flush=True)
    if abs(first["shared"] - first["own rows"]) > 1e-4 * abs(first["own rows"]):
        raise SystemExit(f"the first step's losses differ: {first}")
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load avg {load:.1f})"
    print(
        markdown_row(
            [
                f"LoRA training, the shared header ({shared_prefix(examples)} tokens) once per "
                f"micro-batch, embedded model, {args.steps} steps x {base.effective_batch} "
                f"{args.variant} examples (tokens/s)",
                f"`.venv/bin/python benchmarks/finetune_shared_prefix.py --steps {args.steps} "
                f"--repeats {args.repeats} --variant {args.variant} --threads {args.threads}`",
                f"{best['own rows']:.1f} (every row its own copy)",
                f"{best['shared']:.1f} (share_prefix; first step's loss equal)",
                f"{best['shared'] / best['own rows']:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
