"""GPU check: random-initialised models of the paper's real shapes, PASS/FAIL per check.

Runs in at most about 5 minutes on one GPU and imports only what the GPU image has (torch,
transformers, accelerate, peft, numpy; never transformer-lens, nnsight, sae-lens or bitsandbytes).
Checks: forward; reading every layer (the cache's hooks) against a bare forward; forced-choice
scoring with a shared prompt cache against the naive one; steering and ablation with a direction
loaded on the CPU in fp32; the layer runner against the forward; a LoRA step with and without
gradient checkpointing; a model split across two devices (SKIP with one). Every row gives the
peak memory and tokens/s; rows go to stdout and, with ``--out``, to a TSV file.

    PYTHONPATH=. python3 benchmarks/gpu_check.py                  # on a GPU
    PYTHONPATH=. python3 benchmarks/gpu_check.py --device cpu --tiny   # anywhere, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interp.chat import Message
from interp.directions import Direction
from interp.hooks import get_backend
from interp.models import LoadedModel
from interp.scoring import ChoicePrompt, score_choices, score_choices_naive
from interp.sites import Site
from interp.steer import Intervention, projection, steered
from interp.tiny_models import real_shape_model, tiny_model, tiny_tokenizer

try:  # the layer runner moves to interp.causal
    from interp.causal.layer_runner import LayerRunner
except ImportError:  # pragma: no cover - depends on the checkout
    from interp.layer_runner import LayerRunner  # type: ignore[no-redef]

# (shape, depth cut or None, checks): the 8B shape gets every check, the larger ones a subset
GPU_PLAN: list[tuple[str, int | None, tuple[str, ...]]] = [
    (
        "llama-3.1-8b-instruct",
        None,
        ("forward", "cache", "choice", "steer", "ablate", "runner", "lora", "lora_ckpt", "split"),
    ),
    ("mistral-small-instruct-2409", 16, ("forward", "steer", "ablate", "runner")),
    ("qwen2.5-32b-instruct", 16, ("forward", "steer", "ablate", "runner")),
    ("llama-3.1-70b-instruct", 8, ("forward", "steer", "ablate", "runner", "lora_ckpt")),
]
TINY_PLAN: list[tuple[str, int | None, tuple[str, ...]]] = [
    ("tiny-llama", None, GPU_PLAN[0][2]),
]


@dataclass
class Row:
    shape: str
    check: str
    status: str  # PASS, FAIL, SKIP
    detail: str = ""
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    peak_gib: float = 0.0

    def line(self) -> str:
        return "\t".join(
            [
                self.shape,
                self.check,
                self.status,
                f"{self.seconds:.2f}",
                f"{self.tokens_per_s:.0f}",
                f"{self.peak_gib:.2f}",
                self.detail,
            ]
        )


HEADER = "shape\tcheck\tstatus\tseconds\ttokens_per_s\tpeak_gib\tdetail"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return 0.0


def _timed(device: torch.device, fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    fn()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    _sync(device)
    return out, (time.perf_counter() - t0) / repeat


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


class Checks:
    """Every check on one loaded model; each returns (ok, detail, seconds, tokens)."""

    def __init__(self, loaded: LoadedModel, device: torch.device, batch: int, seq: int):
        self.loaded, self.device = loaded, device
        self.backend = get_backend(loaded, "torch")
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(3, 500, (batch, seq), generator=g).to(device)
        self.mask = torch.ones_like(self.ids)
        self.mask[0, : seq // 4] = 0  # left padding on one row
        self.tokens = int(self.mask.sum())
        self.layer = loaded.n_layers // 2
        vec = torch.randn(1, loaded.d_model, generator=g)  # fp32, on the CPU
        self.direction = Direction("check", "random", "resid_post", "last", (self.layer,), vec)

    def _forward(self) -> torch.Tensor:
        with torch.no_grad():
            return self.backend.forward(self.ids, self.mask)

    def forward(self) -> tuple[bool, str, float, int]:
        logits, dt = _timed(self.device, self._forward, repeat=3)
        ok = bool(torch.isfinite(logits[self.mask.bool()]).all())
        return ok, f"logits {tuple(logits.shape)} {logits.dtype}", dt, self.tokens

    def cache(self) -> tuple[bool, str, float, int]:
        sites = [Site(i, "resid_post") for i in range(self.loaded.n_layers)]

        def read_all() -> tuple[torch.Tensor, int]:
            with torch.no_grad(), self.backend.hooked(read=sites) as rec:
                out = self.backend.forward(self.ids, self.mask)
            return out, len(rec.sites())

        bare, t_bare = _timed(self.device, self._forward, repeat=3)
        (hooked, n), t_hooked = _timed(self.device, read_all, repeat=3)
        ok = torch.equal(bare, hooked) and n == len(sites)
        return (
            ok,
            f"bare/hooked speed {t_bare / t_hooked:.2f}x (goal >= 0.9)",
            t_hooked,
            self.tokens,
        )

    def choice(self) -> tuple[bool, str, float, int]:
        prompts = [
            ChoicePrompt(
                (Message("user", f"Is statement {i} true? I think it is."),),
                ("Yes, it is true.", "No, it is false.", "I am not sure."),
            )
            for i in range(16)
        ]
        cached, t_c = _timed(self.device, lambda: score_choices(self.backend, prompts))
        naive, t_n = _timed(self.device, lambda: score_choices_naive(self.backend, prompts))
        tol = 5e-2 if self.loaded.dtype != torch.float32 else 1e-4
        diff = float(abs(cached.logprob_mean - naive.logprob_mean).max())
        return diff < tol, f"max diff {diff:.2e}; cached {t_n / t_c:.2f}x naive", t_c, 0

    def steer(self) -> tuple[bool, str, float, int]:
        site = Site(self.layer, "resid_post")
        unit = self.direction.unit(self.layer)
        with torch.no_grad(), self.backend.hooked(read=[site]) as rec:
            self.backend.forward(self.ids, self.mask)
        base = projection(rec[site], unit)
        amount = 4.0
        iv = Intervention("add", self.direction, (self.layer,), alpha=1.0)
        t0 = time.perf_counter()
        with torch.no_grad(), steered(self.backend, [iv], {self.layer: amount}, read=[site]) as r2:
            logits = self.backend.forward(self.ids, self.mask)
        _sync(self.device)
        dt = time.perf_counter() - t0
        shift = projection(r2[site], unit) - base
        err = float((shift - amount).abs().max()) / amount
        ok = err < 5e-2 and bool(torch.isfinite(logits).all())
        return (
            ok,
            f"projection shift {amount} +- {err:.1e} (direction on the CPU, fp32)",
            dt,
            self.tokens,
        )

    def ablate(self) -> tuple[bool, str, float, int]:
        site = Site(self.layer, "resid_post")
        unit = self.direction.unit(self.layer)
        iv = Intervention("ablate", self.direction, (self.layer,))
        t0 = time.perf_counter()
        with torch.no_grad(), steered(self.backend, [iv], read=[site]) as rec:
            self.backend.forward(self.ids, self.mask)
        _sync(self.device)
        x = rec[site]
        left = float((projection(x, unit).abs() / x.float().norm(dim=-1).clamp_min(1e-6)).max())
        limit = 1e-2 if x.dtype != torch.float32 else 1e-5
        return (
            left < limit,
            f"component left {left:.1e} of |x| ({x.dtype})",
            time.perf_counter() - t0,
            self.tokens,
        )

    def runner(self) -> tuple[bool, str, float, int]:
        runner = LayerRunner(self.loaded)
        out, dt = _timed(self.device, lambda: runner.forward(self.ids, self.mask))
        ref = self._forward()
        keep = self.mask.bool()
        rel = _rel(out[keep], ref[keep])
        tol = 2e-2 if self.loaded.dtype != torch.float32 else 1e-4
        return rel < tol, f"relative difference {rel:.1e}", dt, self.tokens

    def _lora(self, checkpointing: bool) -> tuple[bool, str, float, int]:
        from peft import LoraConfig, get_peft_model

        hf = self.loaded.hf_model
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        peft_model = get_peft_model(hf, LoraConfig(r=16, lora_alpha=32, target_modules=targets))
        try:
            if checkpointing:
                hf.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
                hf.enable_input_require_grads()
            peft_model.train()
            params = [p for p in peft_model.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=1e-4)
            labels = self.ids.masked_fill(self.mask == 0, -100)

            def step() -> float:
                opt.zero_grad(set_to_none=True)
                loss = peft_model(input_ids=self.ids, attention_mask=self.mask, labels=labels).loss
                loss.backward()
                opt.step()
                return float(loss.detach())

            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            loss, dt = _timed(self.device, step, repeat=2)
            ok = loss == loss and all(p.grad is not None for p in params[:4])
            return ok, f"loss {loss:.3f}, checkpointing {checkpointing}", dt, self.tokens
        finally:
            if checkpointing:
                hf.gradient_checkpointing_disable()
            peft_model.unload()  # the base weights, without LoRA layers, for later checks
            hf.eval()
            for p in hf.parameters():
                p.requires_grad_(False)

    def lora(self) -> tuple[bool, str, float, int]:
        return self._lora(False)

    def lora_ckpt(self) -> tuple[bool, str, float, int]:
        return self._lora(True)

    def split(self) -> tuple[bool, str, float, int] | None:
        if self.device.type != "cuda" or torch.cuda.device_count() < 2:
            return None
        from accelerate import dispatch_model

        hf = self.loaded.hf_model
        ref = self._forward().float().cpu()
        n = self.loaded.n_layers
        device_map = {"model.embed_tokens": 0, "model.rotary_emb": 0, "model.norm": 1, "lm_head": 1}
        device_map.update({f"model.layers.{i}": 0 if i < n // 2 else 1 for i in range(n)})
        dispatch_model(hf, device_map=device_map)
        steer_ok, _, _, _ = self.steer()
        out = self._forward().float().cpu()
        rel = _rel(out, ref)
        return (
            rel < 2e-2 and steer_ok,
            f"2 devices: relative difference {rel:.1e}, steering ok",
            0.0,
            0,
        )


def _build(shape: str, depth: int | None, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    tok = tiny_tokenizer()
    if shape == "tiny-llama":
        return tiny_model("llama", n_layers=4, d_model=64, dtype=dtype)
    model = real_shape_model(shape, dtype=dtype, device=device, n_layers=depth)
    return LoadedModel(name=shape, model=model, tokenizer=tok, weights_hash="random")


def run(
    plan: list[tuple[str, int | None, tuple[str, ...]]],
    device: torch.device,
    dtype: torch.dtype,
    batch: int,
    seq: int,
    deadline: float,
) -> list[Row]:
    rows: list[Row] = []
    for shape, depth, checks in plan:
        label = shape if depth is None else f"{shape}[{depth}L]"
        if time.perf_counter() > deadline:
            rows += [Row(label, c, "SKIP", "time budget spent") for c in checks]
            continue
        try:
            loaded = _build(shape, depth, device, dtype)
            if device.type != "cpu" and loaded.device != device:
                loaded.model.to(device)
        except torch.OutOfMemoryError:
            rows += [Row(label, c, "SKIP", "does not fit in memory") for c in checks]
            continue
        suite = Checks(loaded, device, batch, seq)
        for check in checks:
            if time.perf_counter() > deadline:
                rows.append(Row(label, check, "SKIP", "time budget spent"))
                continue
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                result = getattr(suite, check)()
            except Exception as exc:  # a check that crashes is a FAIL with its reason
                traceback.print_exc(file=sys.stderr)
                rows.append(Row(label, check, "FAIL", f"{type(exc).__name__}: {exc}"[:300]))
                continue
            if result is None:
                rows.append(Row(label, check, "SKIP", "needs two devices"))
                continue
            ok, detail, seconds, tokens = result
            tps = tokens / seconds if seconds > 0 and tokens else 0.0
            rows.append(
                Row(label, check, "PASS" if ok else "FAIL", detail, seconds, tps, _peak_gib(device))
            )
            print(rows[-1].line(), flush=True)
        del suite, loaded
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--tiny", action="store_true", help="a tiny shape (CPU tests)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seq", type=int, default=None)
    parser.add_argument("--budget-s", type=float, default=280.0, help="stop starting checks after")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows here (TSV)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype_name = args.dtype or ("float32" if args.tiny or device.type == "cpu" else "bfloat16")
    dtype = getattr(torch, dtype_name)
    plan = TINY_PLAN if args.tiny else GPU_PLAN
    batch = args.batch or (2 if args.tiny else 8)
    seq = args.seq or (16 if args.tiny else 512)
    print(
        f"# gpu_check on {device} "
        f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
        f"{dtype_name}, batch {batch} x {seq}, torch {torch.__version__}",
        flush=True,
    )
    print(HEADER, flush=True)
    rows = run(plan, device, dtype, batch, seq, time.perf_counter() + args.budget_s)
    for r in rows:
        if r.status == "SKIP":
            print(r.line(), flush=True)
    if args.out is not None:
        args.out.write_text("\n".join([HEADER, *(r.line() for r in rows)]) + "\n")
    failed = [r for r in rows if r.status == "FAIL"]
    print(f"# {len(rows) - len(failed)} of {len(rows)} checks PASS or SKIP", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
