"""Benchmark: the warm model with its LoRA adapter run as layers vs folded into the weights.

Baseline: ``load_model(adapter=...)`` (PEFT's LoRA layers beside every linear layer: the path
every step took before ``--merge-adapters``). Ours: ``load_model(adapter=..., merge_adapters=True)``
(the adapter folded into a copy of the weights). The adapter is the embedded fine-tune's shape
(``TrainConfig``'s rank, alpha and target modules) with random non-zero weights, or a real one
(``--adapter``). Two measurements, one BENCHMARKS.md row each: forced choice on the verdict's
prompt mix (:func:`interp.evaluate.forced_choice`, prompts/s; the scores checked equal first),
and greedy generation of ``--new-tokens`` tokens for ``--requests`` requests (new tokens/s).
Run: .venv/bin/python benchmarks/merged_adapter.py [--prompts 64 --requests 16 --threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
from pathlib import Path

import torch
from alternating import best_of_alternating  # benchmarks/alternating.py
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)
from verdict_prompts import verdict_prompt_mix  # benchmarks/verdict_prompts.py


def random_adapter(folder: Path) -> Path:
    """A LoRA adapter of the embedded fine-tune's shape with random non-zero weights."""
    from peft import LoraConfig, get_peft_model

    from interp.finetune.train import TrainConfig
    from interp.models import load_model

    cfg = TrainConfig()
    model = load_model().model
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
        init_lora_weights=False,
    )
    torch.manual_seed(0)
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    peft_model.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", default=None, help="a real adapter (default: random)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a study lane: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from interp.chat import Message
    from interp.evaluate import forced_choice
    from interp.generate import SamplingConfig, generate_replies
    from interp.hooks import get_backend
    from interp.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        adapter = Path(args.adapter) if args.adapter else random_adapter(Path(tmp) / "lora")
        layers = get_backend(load_model(adapter=adapter), "torch")
        merged = get_backend(load_model(adapter=adapter, merge_adapters=True), "torch")
    prompts = verdict_prompt_mix(args.prompts)
    requests = [
        [Message("user", f"I had a rough week. Could you suggest something to cheer me up ({i})?")]
        for i in range(args.requests)
    ]
    sampling = SamplingConfig(
        max_new_tokens=args.new_tokens, temperature=0.0, batch_size=args.requests
    )
    greedy = dict(sampling.generate_kwargs(), min_new_tokens=args.new_tokens)

    def choices(backend):  # type: ignore[no-untyped-def]
        return lambda: forced_choice(backend, prompts)

    def replies(backend):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            from interp.chat import encode_chat
            from interp.generate import left_pad

            tok = backend.loaded.tokenizer
            enc = [encode_chat(tok, r, add_generation_prompt=True).input_ids for r in requests]
            ids, mask = left_pad(enc, tok.pad_token_id, "cpu")
            with torch.no_grad():
                return backend.generate(ids, mask, **greedy)

        return run

    generate_replies(merged, requests[:2], sampling)  # warm-up
    base_fc, our_fc, base_fc_s, our_fc_s = best_of_alternating(
        choices(layers), choices(merged), args.rounds
    )
    both = base_fc.merge(our_fc, on="prompt_id", suffixes=("_b", "_o"))
    diff = float((both["p_incorrect_b"] - both["p_incorrect_o"]).abs().max())
    flips = int((both["error_b"] != both["error_o"]).sum())
    assert diff < 1e-3, f"p(wrong answer) differs by {diff}"
    _, _, base_gen_s, our_gen_s = best_of_alternating(replies(layers), replies(merged), args.rounds)
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} thread(s), {platform.machine()}, load {load:.1f})"
    today = dt.date.today().isoformat()
    cmd = (
        "`.venv/bin/python benchmarks/merged_adapter.py "
        f"--prompts {args.prompts} --requests {args.requests} --new-tokens {args.new_tokens} "
        f"--rounds {args.rounds} --threads {args.threads}`"
    )
    n, g = len(prompts), args.requests * args.new_tokens
    print(
        markdown_row(
            [
                f"forced choice through the warm model, its LoRA adapter as layers vs folded "
                f"into the weights, {n} verdict prompts (prompts/s)",
                cmd,
                f"{n / base_fc_s:.2f} (adapter layers)",
                f"{n / our_fc_s:.2f} (merged; max \\|diff\\| in p(wrong) {diff:.1e}, {flips} error "
                f"flips; best of "
                f"{args.rounds} alternating rounds)",
                f"{base_fc_s / our_fc_s:.2f}x",
                device,
                today,
            ]
        )
    )
    print(
        markdown_row(
            [
                f"greedy generation through the warm model, its LoRA adapter as layers vs "
                f"folded into the weights, {args.requests} requests x {args.new_tokens} tokens "
                "(new tokens/s)",
                cmd,
                f"{g / base_gen_s:.1f} (adapter layers)",
                f"{g / our_gen_s:.1f} (merged; best of {args.rounds} alternating rounds)",
                f"{base_gen_s / our_gen_s:.2f}x",
                device,
                today,
            ]
        )
    )


if __name__ == "__main__":
    main()
