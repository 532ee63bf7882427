"""Benchmark: a forward pass run for its reads only (``Backend.forward_for_reads``: the
unembedding at the last position) vs the full forward (logits at every position), on the
embedded model, reading resid_post at every layer at the last token (what the activation caches
of the directions and trajectory steps, the residual norms and the verdict's moments do).

Both run in one process on the same batches, alternating, ``--repeats`` times each; the reads
are checked equal between them. tokens/s counts real (unpadded) prompt tokens; the better of
the repeats is kept for each. Prints a BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/residual_reads.py [--prompts 96]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time

from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from interp.chat import encode_chat
    from interp.data.build import prompt_list
    from interp.evaluate import conversation
    from interp.generate import left_pad
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.sites import Site

    torch.set_num_threads(2)
    loaded = load_model()
    backend = get_backend(loaded, "torch")
    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=12)
    tok = loaded.tokenizer
    encoded = [encode_chat(tok, conversation(p)).input_ids for p in prompts[: args.prompts]]
    n_tokens = sum(len(e) for e in encoded)
    batches = [
        left_pad(encoded[i : i + args.batch_size], tok.pad_token_id)
        for i in range(0, len(encoded), args.batch_size)
    ]
    reads = {Site(layer, "resid_post"): (lambda x: x[:, -1].clone()) for layer in range(30)}

    def run(method: str) -> tuple[float, list[torch.Tensor]]:
        out = []
        start = time.perf_counter()
        with torch.no_grad():
            for ids, mask in batches:
                with backend.hooked(read=reads) as rec:
                    getattr(backend, method)(ids, mask)
                out.append(torch.stack([rec[s] for s in reads]))
        return time.perf_counter() - start, out

    run("forward_for_reads")  # warm-up
    best = {"forward": float("inf"), "forward_for_reads": float("inf")}
    got = {}
    for _ in range(args.repeats):
        for method in best:
            seconds, got[method] = run(method)
            best[method] = min(best[method], seconds)
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(got["forward"], got["forward_for_reads"], strict=True)
    )
    if diff > 0:
        raise SystemExit(f"the reads differ between the two passes (max |diff| {diff:.3g})")
    base, ours = n_tokens / best["forward"], n_tokens / best["forward_for_reads"]
    print(
        markdown_row(
            [
                "a forward run for its reads: resid_post x 30 layers at the last token, "
                f"{len(encoded)} prompts / {n_tokens} tokens (tokens/s)",
                f"`.venv/bin/python benchmarks/residual_reads.py --prompts {args.prompts}`",
                f"{base:.0f} tok/s (full forward, logits at every position)",
                f"{ours:.0f} tok/s (forward_for_reads: logits at the last position; "
                "reads identical)",
                f"{ours / base:.2f}x",
                f"CPU (2 threads, {platform.machine()})",
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
