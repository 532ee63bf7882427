"""Benchmark: caching residual activations vs a bare forward pass and vs TransformerLens'
``run_with_cache`` of every hook, on the embedded model.

Each method runs in its own subprocess on the same prompts and batches (so peak RSS is its own);
tokens/s counts real (unpadded) prompt tokens. Ours caches resid_post at every layer at two
positions (last token, mean over the user message) to disk in shards. Prints BENCHMARKS.md rows.
Run: .venv/bin/python benchmarks/cache_throughput.py [--prompts 96]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time

from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def _rows(n: int):  # type: ignore[no-untyped-def]
    from interp.cache import CacheRow
    from interp.data.build import prompt_list
    from interp.evaluate import conversation

    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=12)
    return [CacheRow(p.prompt_id, conversation(p)) for p in prompts[:n]]


def measure(method: str, n: int, batch: int) -> dict[str, float]:
    import torch

    from interp.cache import CacheSpec, build_cache
    from interp.chat import encode_chat
    from interp.generate import left_pad
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.sites import sites

    torch.set_num_threads(2)
    loaded = load_model()
    rows = _rows(n)
    tok = loaded.tokenizer
    encoded = [encode_chat(tok, r.conversation).input_ids for r in rows]
    n_tokens = sum(len(e) for e in encoded)
    batches = [
        left_pad(encoded[i : i + batch], tok.pad_token_id) for i in range(0, len(encoded), batch)
    ]
    with torch.no_grad():
        loaded.model(*batches[0])  # warm-up
        start = time.perf_counter()
        if method == "bare":
            for ids, mask in batches:
                loaded.model(input_ids=ids, attention_mask=mask)
        elif method == "ours":
            spec = CacheSpec(
                sites=tuple(sites(["resid_post"], range(loaded.n_layers))),
                positions=("last", "mean_user"),
                batch_size=batch,
                shard_rows=batch * 4,
            )
            with tempfile.TemporaryDirectory() as tmp:
                build_cache(
                    get_backend(loaded, "torch"),
                    rows,
                    spec,
                    __import__("pathlib").Path(tmp) / "c",
                    show_progress=False,
                )
        elif method == "tl_run_with_cache":
            bridge = get_backend(loaded, "transformerlens").bridge
            start = time.perf_counter()
            for ids, mask in batches:
                _, cache = bridge.run_with_cache(ids, attention_mask=mask)
                del cache
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tokens_per_s": n_tokens / seconds, "peak_rss_mb": peak_mb, "tokens": n_tokens}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(measure(args.method, args.prompts, args.batch_size)))
        return
    out = {}
    for method in ("bare", "ours", "tl_run_with_cache"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--method",
                method,
                "--prompts",
                str(args.prompts),
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[method] = json.loads(proc.stdout.strip().splitlines()[-1])
    device = f"CPU (2 threads, {platform.machine()})"
    today = dt.date.today().isoformat()
    cmd = f"`.venv/bin/python benchmarks/cache_throughput.py --prompts {args.prompts}`"
    ours = out["ours"]
    for base_name, label in (
        ("bare", "bare forward, no hooks"),
        ("tl_run_with_cache", "TransformerLens run_with_cache, every hook"),
    ):
        base = out[base_name]
        print(
            markdown_row(
                [
                    f"activation caching vs {label} (tokens/s; peak RSS)",
                    cmd,
                    f"{base['tokens_per_s']:.0f} tok/s; {base['peak_rss_mb']:.0f} MB",
                    f"{ours['tokens_per_s']:.0f} tok/s; {ours['peak_rss_mb']:.0f} MB "
                    "(resid_post x 30 layers x 2 positions, to disk)",
                    f"{ours['tokens_per_s'] / base['tokens_per_s']:.2f}x",
                    device,
                    today,
                ]
            )
        )


if __name__ == "__main__":
    main()
