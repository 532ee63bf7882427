"""Benchmark: LoRA training throughput of interp.finetune.train vs a minimal hand-written peft loop.

Both train the embedded model (same LoRA config, same AdamW, same examples in the same optimizer
steps, same micro-batch size) on the shipped warm training triples. The minimal loop collates each
micro-batch in data order and calls ``model(..., labels=labels)``; ours is the package's loop
(length-grouped micro-batches, vocabulary projection only at assistant positions, checkpoint
written at the end). Tokens/s counts the non-padding tokens of the examples trained on, wall time
of the whole call (setup and ours' checkpoint included). The two alternate ``--repeats`` times and
the best of each is reported. Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/finetune_throughput.py [--steps 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def minimal_loop(loaded, examples, config, steps: int) -> int:  # type: ignore[no-untyped-def]
    """The reference: plain peft + AdamW + HF loss, gradient accumulation; returns tokens seen."""
    from peft import LoraConfig, get_peft_model

    from interp.finetune.examples import collate
    from interp.finetune.schedule import Schedule

    torch.manual_seed(config.seed)
    model = get_peft_model(
        loaded.hf_model,
        LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    schedule = Schedule(len(examples), config.effective_batch, 100.0, (), config.seed)
    tokens = 0
    for step in range(steps):
        idx = schedule.batch_indices(step)
        chunks = [idx[k : k + config.micro_batch] for k in range(0, len(idx), config.micro_batch)]
        for chunk in chunks:
            ids, mask, labels = collate([examples[i] for i in chunk], loaded.tokenizer.pad_token_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss / len(chunks)
            loss.backward()
            tokens += int(mask.sum())
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.unload()
    return tokens


def ours(loaded, examples, config, steps: int) -> int:  # type: ignore[no-untyped-def]
    import dataclasses

    from interp.finetune.train import train

    cfg = dataclasses.replace(
        config, epochs=steps * config.effective_batch / len(examples), checkpoint_epochs=()
    )
    with tempfile.TemporaryDirectory() as tmp:
        model, result = train(loaded, examples, cfg, Path(tmp) / "run")
    model.unload()
    return result.tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from interp.finetune.examples import tokenize_all, triple_conversations
    from interp.finetune.presets import EMBEDDED_TRAIN
    from interp.models import load_model
    from interp.warmth.pairs import load_split

    loaded = load_model()
    config = EMBEDDED_TRAIN
    examples = tokenize_all(
        loaded.tokenizer, triple_conversations(load_split().train, "warm"), config.max_length
    )
    best = {"minimal": 0.0, "ours": 0.0}
    for _ in range(args.repeats):
        for name, fn in (("minimal", minimal_loop), ("ours", ours)):
            t0 = time.perf_counter()
            tokens = fn(loaded, examples, config, args.steps)
            rate = tokens / (time.perf_counter() - t0)
            best[name] = max(best[name], rate)
            print(f"# {name}: {tokens} tokens, {rate:.1f} tokens/s", flush=True)
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load avg {load:.1f})"
    print(
        markdown_row(
            [
                f"LoRA training throughput, embedded model, {args.steps} steps x "
                f"{config.effective_batch} warm examples (tokens/s)",
                f"`.venv/bin/python benchmarks/finetune_throughput.py --steps {args.steps} "
                f"--repeats {args.repeats}`",
                f"{best['minimal']:.1f} (minimal peft loop, HF loss)",
                f"{best['ours']:.1f} (interp.finetune.train)",
                f"{best['ours'] / best['minimal']:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
