"""Benchmark: the SAE's spliced next-token loss (clean, spliced, spliced + error, mean-ablated)
on the embedded model at resid_post.21 (the study's SAE site), the layers below the site run
once per batch and logits only at scored positions (``interp.sae.quality``'s layer-runner path)
vs a hooked forward per variant (its fallback path, the path before).

Both run in one process on the same rows, alternating, ``--repeats`` times each (the better time
kept); their losses are checked equal. The SAE is an untrained-quality TopK dictionary of the
study's size (its speed does not depend on what it learned). Prints a BENCHMARKS.md row.
Run: .venv/bin/python benchmarks/sae_spliced_loss.py [--rows 32]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import tempfile
import time
from pathlib import Path

from rows import markdown_row  # benchmarks/rows.py (scripts run from benchmarks/)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from interp.data.build import prompt_list
    from interp.evaluate import conversation
    from interp.hooks import get_backend
    from interp.models import load_model
    from interp.sae import quality
    from interp.sae.activations import TextRow
    from interp.sae.train import SaeTrainSpec, to_inference, train_sae
    from interp.sites import Site

    torch.set_num_threads(2)
    torch.manual_seed(0)
    loaded = load_model()
    backend = get_backend(loaded, "torch")
    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=12)
    rows = [
        TextRow(p.prompt_id, "prompt", conversation=tuple(conversation(p)))
        for p in prompts[: args.rows]
    ]
    site = Site(21, "resid_post")
    spec = SaeTrainSpec(d_sae=1152, k=32, batch_size=256, n_samples=2048, n_checkpoints=0)
    trained, _ = train_sae(torch.randn(4096, loaded.d_model), spec)
    with tempfile.TemporaryDirectory() as tmp:
        sae = to_inference(trained, Path(tmp) / "sae")
        mean_act = torch.zeros(loaded.d_model)
        hooked_path = quality._runner_for

        def run(path: str) -> tuple[float, dict[str, float]]:
            quality._runner_for = (lambda b, s: None) if path == "hooked" else hooked_path
            start = time.perf_counter()
            out = quality.spliced_loss(backend, sae, site, rows, mean_act=mean_act)
            return time.perf_counter() - start, out

        best = {"hooked": math.inf, "runner": math.inf}
        got: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for path in best:
                seconds, got[path] = run(path)
                best[path] = min(best[path], seconds)
        quality._runner_for = hooked_path
    for key, value in got["hooked"].items():
        if not math.isclose(value, got["runner"][key], rel_tol=1e-4, abs_tol=1e-5):
            raise SystemExit(f"{key}: hooked {value} vs runner {got['runner'][key]}")
    n = int(got["runner"]["n_scored_tokens"])
    print(
        markdown_row(
            [
                f"SAE spliced loss at resid_post.21 of 30, 4 variants, {len(rows)} prompts / "
                f"{n} scored tokens (s, lower is better)",
                f"`.venv/bin/python benchmarks/sae_spliced_loss.py --rows {args.rows}`",
                f"{best['hooked']:.1f} s (a hooked forward per variant)",
                f"{best['runner']:.1f} s (layers below the site once per batch, logits at "
                "scored positions; losses equal)",
                f"{best['hooked'] / best['runner']:.2f}x",
                f"CPU (2 threads, {platform.machine()})",
                dt.date.today().isoformat(),
            ]
        )
    )


if __name__ == "__main__":
    main()
