"""Benchmark: the verdict's damage measures for its null arms, hooked forward vs clean prefix.

Every verdict arm (and every sweep setting) reports its damage: KL to the unedited model over the
unedited model's greedy continuation of neutral prompts, and the increase of next-token loss on
held-out neutral replies (:func:`interp.causal.damage.damage_rows`). Baseline: each edit set
through a full hooked forward with full-vocabulary logits (``suffix=False``, the path the verdict
used before). Ours: the clean residual at the edited site once per batch, only the blocks above
it per edit set, the LM head only at the scored positions (``suffix=True``). The arms are
``--arms`` random directions shifted at ``--layer`` by ``--shift`` (the embedded verdict's
removal: layer 28, shift 51); the two engines' values are checked equal before timing is
reported, and they alternate for ``--rounds`` rounds (best kept).
Prints one BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/verdict_damage.py [--arms 10 --prompts 8 --texts 8 --layer 28]
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
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--layer", type=int, default=28)
    parser.add_argument("--shift", type=float, default=51.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    args = parser.parse_args()

    from interp.causal.damage import continuation_units, damage_rows, text_units
    from interp.data.build import prompt_list
    from interp.evaluate import conversation
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.warmth.pairs import load_split

    loaded = load_model()
    backend = get_backend(loaded, "torch")
    prompts, _ = prompt_list(conditions=("unmodified",), templates=("no_belief",), per_task=4)
    convs = [(p.prompt_id, conversation(p)) for p in prompts[: args.prompts]]
    continuations = continuation_units(backend, convs, max_new_tokens=args.max_new_tokens)
    triples = load_split().held_out[: args.texts]
    heldout = text_units(loaded.tokenizer, [(t.id, t.request, t.neutral) for t in triples])
    edits = shifted_random_edits(loaded.d_model, args.arms, args.layer, args.shift)
    edit_sets = {label: [e] for label, e in edits.items()}

    def engine(suffix: bool):
        return lambda: damage_rows(
            backend, edit_sets, continuations, heldout, batch_size=args.batch_size, suffix=suffix
        )

    hooked, ours, base_s, our_s = best_of_alternating(engine(False), engine(True), args.rounds)
    key = ["label", "replicate", "measure", "unit_id"]
    both = ours.merge(hooked, on=key, suffixes=("_o", "_h"))
    assert len(both) == len(hooked) == len(ours)
    diff = float((both["value_o"] - both["value_h"]).abs().max())
    assert diff < 1e-3, f"damage values differ by {diff}"
    units = len(continuations.ids) + len(heldout.ids)
    load = os.getloadavg()[0]
    device = f"CPU ({torch.get_num_threads()} threads, {platform.machine()}, load {load:.1f})"
    print(
        markdown_row(
            [
                f"verdict damage (KL over the continuation, held-out loss) of {args.arms} arms "
                f"shifted at layer {args.layer} of {loaded.n_layers}, {len(continuations.ids)} "
                f"continuations + {len(heldout.ids)} held-out replies (s, lower is better)",
                "`.venv/bin/python benchmarks/verdict_damage.py "
                f"--arms {args.arms} --prompts {args.prompts} --texts {args.texts} "
                f"--max-new-tokens {args.max_new_tokens} --layer {args.layer} "
                f"--rounds {args.rounds}`",
                f"{base_s:.1f} s (hooked forward per arm, full-vocabulary logits)",
                f"{our_s:.1f} s (clean prefix once per batch, layers above {args.layer} per arm, "
                f"LM head at the {units} units' scored positions only; max |diff| {diff:.1e}; "
                f"best of {args.rounds} alternating rounds)",
                f"{base_s / our_s:.2f}x",
                device,
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
