"""Benchmark: forced choice through a pair's warm view, PEFT's adapter switch vs the direct one.

A pair (:func:`interp.causal.pair.load_pair`) holds one copy of the weights; its warm view
switches the adapter on for every block it runs (:meth:`interp.models.LoadedModel.running`) and
back off after it. Baseline: the switch through PEFT's ``set_adapter`` and
``enable/disable_adapter_layers`` (walks over every module, ``requires_grad`` saved and put back),
the path every switch took before. Ours: :func:`interp.models.adapter_switched` setting each
adapter layer's state directly. The work timed is the verdict's warm arms
(:func:`interp.causal.suffix_arms.score_arms_at_site`: the clean prefix below ``--layer`` once
per batch, then the layers above it per arm) on the verdict's prompt mix, through the warm view of
the embedded model with a random LoRA adapter of the embedded fine-tune's shape (rank 8 on every
attention and MLP projection; weights cannot be shipped, and the switch's cost does not depend on
their values). The scores are checked equal before timing is reported. Prints one BENCHMARKS.md
row.
Run: .venv/bin/python benchmarks/adapter_switch.py [--arms 2 --prompts 48 --layer 28]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
from pathlib import Path
from unittest import mock

import pandas as pd
import torch
from alternating import best_of_alternating  # benchmarks/alternating.py
from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)
from verdict_prompts import (
    shifted_random_edits,
    verdict_prompt_mix,
)  # benchmarks/verdict_prompts.py

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_adapter(out: Path, seed: int = 0) -> None:
    """A rank-8 LoRA adapter (random, non-zero) on the embedded model, saved in ``out``."""
    from peft import LoraConfig, get_peft_model

    from interp.models import load_model

    torch.manual_seed(seed)
    model = get_peft_model(
        load_model().model,
        LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    model.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arms", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--layer", type=int, default=28)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    import interp.models as models
    from interp.causal.arms import Arm
    from interp.causal.pair import load_pair
    from interp.causal.suffix_arms import score_arms_at_site, shared_site
    from interp.models import EMBEDDED

    with tempfile.TemporaryDirectory() as tmp:
        random_adapter(Path(tmp) / "warm")
        pair = load_pair(EMBEDDED, str(Path(tmp) / "warm"), stand_in_if_missing=False)
        backend = pair.backend("warm")
        prompts = verdict_prompt_mix(args.prompts)
        edits = shifted_random_edits(pair.warm.d_model, args.arms, args.layer, args.shift)
        arms = [Arm("warm", label, backend, None, (e,)) for label, e in edits.items()]
        unedited = Arm("warm", "none", backend)
        site = shared_site(arms)
        assert site is not None
        score_arms_at_site(unedited, arms, prompts[:4], site, args.batch_size)  # warm-up

        def ours() -> pd.DataFrame:
            return score_arms_at_site(unedited, arms, prompts, site, args.batch_size)

        def baseline() -> pd.DataFrame:
            with mock.patch.object(models, "_switchable", lambda _layer: False):
                return ours()

        base_result, our_result, base_s, our_s = best_of_alternating(baseline, ours, args.rounds)
    keys = ["intervention", "prompt_id"]
    both = our_result.merge(base_result, on=keys, suffixes=("_o", "_b"))
    assert len(both) == len(prompts) * len(arms), (len(both), len(prompts), len(arms))
    diff = float((both["p_incorrect_o"] - both["p_incorrect_b"]).abs().max())
    assert diff == 0.0, f"p_incorrect differs by {diff}"
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"
    print(
        markdown_row(
            [
                "forced choice through a pair's warm view (adapter switched per block), "
                f"{args.arms} arms shifted at layer {args.layer} x "
                f"{len(prompts)} prompts (s, lower is better)",
                "`.venv/bin/python benchmarks/adapter_switch.py "
                f"--arms {args.arms} --prompts {len(prompts)} --layer {args.layer} "
                f"--rounds {args.rounds}`",
                f"{base_s:.1f} s (PEFT's set_adapter and enable/disable_adapter_layers per switch)",
                f"{our_s:.1f} s (adapter layers switched directly; identical scores; best of "
                f"{args.rounds} alternating rounds)",
                f"{base_s / our_s:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
