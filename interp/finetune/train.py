"""The LoRA training loop: assistant-only loss, seeded data order, checkpoints that resume exactly.

One optimizer step sees ``effective_batch`` examples (:mod:`.schedule`), split into micro-batches
of ``micro_batch`` with gradient accumulation. The loss of a step is the summed cross-entropy of
its assistant tokens divided by their count, so the gradient does not depend on how the step is
split. Logits are computed only at target positions (the vocabulary projection is a large share
of a small model's compute), and the leading tokens every example of a micro-batch shares (the
chat template's system header: a fifth of the embedded warm data's tokens, more of the cold's)
run once per micro-batch, the rows continuing their key/value cache (``share_prefix``).

A checkpoint ``checkpoints/epoch-<e>/`` is a PEFT adapter folder (``adapter_config.json``,
``adapter_model.safetensors``) with a ``meta.json`` (epoch, step, base weights hash, variant,
data hash, config) and the resume state (optimizer, scheduler, RNG states, step): its tensors in
``resume_state.safetensors`` and everything else in ``resume_state.json``, so resuming from a
folder someone shared never unpickles anything. A killed run started again with the same config
continues from its last complete checkpoint and ends with the same weights as an uninterrupted
one (checkpoint folders appear atomically).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_json, write_json_atomic
from interp.config import ConfigError, config_to_dict, option
from interp.errors import InterpError
from interp.finetune.examples import IGNORE_INDEX, TrainingExample, collate
from interp.finetune.schedule import Schedule, checkpoint_name, micro_batches
from interp.models import LoadedModel

log = logging.getLogger(__name__)

RESUME_TENSORS = "resume_state.safetensors"
RESUME_JSON = "resume_state.json"
LEGACY_RESUME_FILE = "resume_state.pt"
"""Older runs' resume state: read with ``torch.load(weights_only=True)`` (tensors and plain
containers only; any other pickled object is refused)."""
RUN_CONFIG_FILE = "run_config.json"
# every linear layer of a decoder block; Phi-3 fuses q/k/v and gate/up (peft skips names a model
# lacks, so one list serves Llama, Mistral, Qwen2, Gemma and Phi-3)
LINEAR_MODULES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "qkv_proj",
    "gate_up_proj",
)


@dataclass(frozen=True)
class TrainConfig:
    """LoRA hyperparameters (defaults: the paper's, section 1 of STUDY.md) and the loop's knobs."""

    lora_r: int = option(8, help="LoRA rank (paper: 8)")
    lora_alpha: int = option(16, help="LoRA alpha (paper: 16)")
    lora_dropout: float = option(0.1, help="LoRA dropout (paper: 0.1)")
    target_modules: tuple[str, ...] = option(
        LINEAR_MODULES,
        help="modules that get LoRA (the paper does not say; all linear layers of a block)",
    )
    learning_rate: float = option(1e-5, help="AdamW learning rate (paper: 1e-5)")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    scheduler: Literal["constant", "linear", "cosine"] = option(
        "linear", help="learning-rate schedule after warm-up (the paper does not say)"
    )
    warmup_steps: int = option(0, help="linear warm-up steps")
    max_grad_norm: float = option(1.0, help="gradient clipping norm (0: none)")
    max_length: int = option(1024, help="tokens per example; longer ones are cut (paper: 1024)")
    effective_batch: int = option(16, help="examples per optimizer step (paper: 16)")
    micro_batch: int = option(
        4, help="examples per forward pass (gradient accumulation fills the effective batch)"
    )
    epochs: float = option(10.0, help="epochs of training (paper: 10)")
    checkpoint_epochs: tuple[float, ...] = option(
        (0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 8.0, 10.0),
        help="epochs at which a checkpoint is written (the last epoch always is)",
    )
    seed: int = option(0, help="seed of LoRA initialisation, data order and dropout")
    gradient_checkpointing: bool = option(
        False, help="recompute activations in the backward pass (large models)"
    )
    share_prefix: bool = option(
        True,
        help=(
            "run the leading tokens every example of a micro-batch shares (the chat template's "
            "system header, no labels) once per micro-batch, the rows continuing its key/value "
            "cache: a fifth to a quarter fewer tokens on the embedded data; those tokens' "
            "LoRA dropout mask is then one for the micro-batch (off with gradient "
            "checkpointing)"
        ),
    )

    def __post_init__(self) -> None:
        checks = [
            (self.lora_r >= 1, f"lora_r must be >= 1, found {self.lora_r}"),
            (
                0 <= self.lora_dropout < 1,
                f"lora_dropout must be in [0, 1), found {self.lora_dropout}",
            ),
            (self.learning_rate > 0, f"learning_rate must be > 0, found {self.learning_rate}"),
            (self.max_length >= 8, f"max_length must be >= 8, found {self.max_length}"),
            (
                self.effective_batch >= 1 and self.micro_batch >= 1,
                "effective_batch and micro_batch must be >= 1",
            ),
            (self.epochs > 0, f"epochs must be > 0, found {self.epochs}"),
            (all(e > 0 for e in self.checkpoint_epochs), "checkpoint_epochs must be > 0"),
            (
                self.warmup_steps >= 0 and self.max_grad_norm >= 0,
                "warmup_steps and max_grad_norm must be >= 0",
            ),
            (bool(self.target_modules), "target_modules must not be empty"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"TrainConfig: {msg}")


@dataclass
class TrainResult:
    """What a run did: checkpoint folders by nominal epoch, timings and token counts."""

    checkpoints: dict[float, Path]
    steps_run: int
    resumed_from_step: int
    train_seconds: float
    tokens: int
    target_tokens: int
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_seconds if self.train_seconds > 0 else float("nan")


StepCallback = Callable[[int, int, float], None]
"""Called after every optimizer step with (step done, total steps, step loss)."""


def lora_model(loaded: LoadedModel, config: TrainConfig) -> Any:
    """``loaded.hf_model`` wrapped by peft with a fresh LoRA adapter (seeded), in train mode."""
    from peft import LoraConfig, get_peft_model  # heavy (seconds): keeps `interp --help` fast

    lcfg = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules), task_type="CAUSAL_LM", bias="none",
    )  # fmt: skip
    state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    base = loaded.hf_model
    try:
        with warnings.catch_warnings():
            # peft reads transformers' deprecated is_gradient_checkpointing alias: noise only
            warnings.filterwarnings(
                "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
            )
            if getattr(base, "is_loaded_in_4bit", False):  # QLoRA: norms in fp32, grads in
                from peft import prepare_model_for_kbit_training

                base = prepare_model_for_kbit_training(
                    base, use_gradient_checkpointing=config.gradient_checkpointing
                )
            model = get_peft_model(base, lcfg)
    finally:
        torch.random.set_rng_state(state)
    if config.gradient_checkpointing:
        # non-reentrant: the recomputed forward is exact and needs no input that requires grad
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
        model.enable_input_require_grads()
    model.train()
    return model


def _lr_lambda(config: TrainConfig, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        if config.scheduler == "constant":
            return 1.0
        frac = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
        if config.scheduler == "linear":
            return max(0.0, 1.0 - frac)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))

    return f


def target_loss_sum(
    model: Any,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    labels: Int[Tensor, "batch pos"],
    shared: int = 0,
) -> Float[Tensor, ""]:
    """Summed next-token cross-entropy over label positions (labels -100 are skipped).

    The decoder runs on every position through the model's own forward (so accelerate's
    device-map hooks apply: the last hidden state may sit on another device than the inputs);
    the vocabulary projection runs only where a label exists.

    ``shared`` > 0: the first ``shared`` tokens are the same in every row and carry no label
    (nor does the token after them; :func:`shared_prefix` finds such a length): they run once as
    one row, whose key/value cache every row continues, and the gradient flows back through
    that one row (what the rows' own copies would give, except that LoRA dropout draws one mask
    for the shared tokens instead of one per row).
    """  # fmt: skip
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    if shared <= 0:
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=False,
            output_hidden_states=True,
            logits_to_keep=1,  # the full logits are never built
        )
        hidden = out.hidden_states[-1]  # after the final norm (transformers ties it to the last)
        shifted = labels[:, 1:].to(hidden.device)
    else:
        if (labels[:, : shared + 1] != IGNORE_INDEX).any():
            raise ValueError(f"a label lies within the {shared} shared tokens or right after them")
        rows = input_ids.shape[0]
        prefix = model(
            input_ids=input_ids[:1, :shared],
            attention_mask=attention_mask[:1, :shared],
            use_cache=True,
            logits_to_keep=1,
        ).past_key_values
        prefix.batch_repeat_interleave(rows)
        out = model(
            input_ids=input_ids[:, shared:],
            attention_mask=attention_mask,  # the shared tokens and each row's own
            past_key_values=prefix,
            use_cache=True,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        hidden = out.hidden_states[-1]  # positions shared.. of every row
        shifted = labels[:, shared + 1 :].to(hidden.device)
    keep = shifted != IGNORE_INDEX
    logits = hf.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), shifted[keep].to(logits.device), reduction="sum")


def shared_prefix(examples: Sequence[TrainingExample]) -> int:
    """How many leading tokens every example shares without a label on them or on the token
    after them (the chat template's system header on the embedded data: 24 tokens), leaving each
    example at least two tokens of its own; 0 when there are none."""
    if not examples:
        return 0
    ids = [e.input_ids for e in examples]
    limit = min(len(i) for i in ids) - 2
    for e in examples:
        labelled = [t for t, x in enumerate(e.labels) if x != IGNORE_INDEX]
        if labelled:
            limit = min(limit, labelled[0] - 1)
    n = 0
    first = ids[0]
    while n < limit and all(i[n] == first[n] for i in ids):
        n += 1
    return n


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeStateError(InterpError, ValueError):
    """A checkpoint's resume state is unreadable, malformed or holds something other than
    tensors and plain values (a tampered file is refused, never executed)."""


def split_tensors(obj: Any, tensors: dict[str, Tensor], prefix: str = "t") -> Any:
    """``obj`` (nested dicts, lists, tuples, tensors and JSON values) as a JSON skeleton whose
    tensors are moved into ``tensors`` under generated names (``{"__tensor__": name}``).

    Dicts are stored as key-value pairs so that integer keys (optimizer state) survive."""
    if isinstance(obj, Tensor):
        name = f"{prefix}{len(tensors)}"
        tensors[name] = obj.detach().contiguous().clone()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {"__dict__": [[k, split_tensors(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [split_tensors(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [split_tensors(v, tensors) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"resume state: cannot store a {type(obj).__name__}")


def join_tensors(skeleton: Any, tensors: dict[str, Tensor]) -> Any:
    """The inverse of :func:`split_tensors` (a malformed skeleton raises ResumeStateError)."""
    if isinstance(skeleton, list):
        return [join_tensors(v, tensors) for v in skeleton]
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"} and skeleton["__tensor__"] in tensors:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__tuple__"} and isinstance(skeleton["__tuple__"], list):
            return tuple(join_tensors(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__dict__"} and isinstance(skeleton["__dict__"], list):
            pairs = skeleton["__dict__"]
            if all(isinstance(p, list) and len(p) == 2 for p in pairs):
                return {k: join_tensors(v, tensors) for k, v in pairs}
        raise ResumeStateError(f"resume state: unexpected entry {str(skeleton)[:80]}")
    if skeleton is None or isinstance(skeleton, bool | int | float | str):
        return skeleton
    raise ResumeStateError(f"resume state: unexpected value {skeleton!r:.80}")


def write_resume_state(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as ``resume_state.safetensors`` (tensors) + ``resume_state.json``."""
    tensors: dict[str, Tensor] = {}
    skeleton = split_tensors(state, tensors)
    save_file({k: v.cpu() for k, v in tensors.items()}, str(folder / RESUME_TENSORS))
    write_json_atomic(folder / RESUME_JSON, {"format": "interp-resume-v1", "state": skeleton})


def read_resume_state(folder: Path) -> dict[str, Any]:
    """A checkpoint's resume state (tensors on the CPU); nothing is unpickled except, for older
    runs, ``resume_state.pt`` through ``torch.load(weights_only=True)``.

    Raises :class:`ResumeStateError` for a missing, malformed or tampered state."""
    if (folder / RESUME_JSON).is_file() or (folder / RESUME_TENSORS).is_file():
        try:
            tensors = load_file(str(folder / RESUME_TENSORS), device="cpu")
            payload = json.loads((folder / RESUME_JSON).read_text())
        except (SafetensorError, OSError, ValueError) as exc:
            raise ResumeStateError(
                f"{folder}: the resume state is unreadable ({type(exc).__name__}: {exc}); "
                "delete this checkpoint folder to resume from the one before"
            ) from None
        if not isinstance(payload, dict) or payload.get("format") != "interp-resume-v1":
            raise ResumeStateError(f"{folder / RESUME_JSON}: not an interp resume state")
        state = join_tensors(payload["state"], tensors)
    elif (folder / LEGACY_RESUME_FILE).is_file():
        try:
            state = torch.load(folder / LEGACY_RESUME_FILE, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
            raise ResumeStateError(
                f"{folder / LEGACY_RESUME_FILE}: refused: it holds more than tensors and plain "
                f"values, or is damaged ({str(exc).splitlines()[0][:200]}); it is not loaded"
            ) from None
    else:
        raise ResumeStateError(f"{folder}: no resume state ({RESUME_JSON} + {RESUME_TENSORS})")
    if not isinstance(state, dict) or not {"optimizer", "scheduler", "rng"} <= set(state):
        raise ResumeStateError(f"{folder}: the resume state lacks optimizer, scheduler or rng")
    return state


def has_resume_state(folder: Path) -> bool:
    """Whether a checkpoint folder holds a resume state (new or legacy format)."""
    new = (folder / RESUME_JSON).is_file() and (folder / RESUME_TENSORS).is_file()
    return new or (folder / LEGACY_RESUME_FILE).is_file()


def complete_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Step -> folder of every complete checkpoint (one with its resume state) in ``run_dir``."""
    out = {}
    root = run_dir / "checkpoints"
    for folder in sorted(root.glob("epoch-*")) if root.is_dir() else []:
        meta = folder / paths.META_FILE
        adapter = folder / "adapter_model.safetensors"
        if meta.is_file() and has_resume_state(folder) and adapter.is_file():
            out[int(json.loads(meta.read_text())["step"])] = folder
    return out


def check_run_config(run_dir: Path, identity: dict[str, Any]) -> None:
    """Write ``run_config.json`` on a new run; on an existing one refuse a different identity."""
    f = run_dir / RUN_CONFIG_FILE
    if not f.is_file():
        write_json_atomic(f, identity)
        return
    old = json.loads(f.read_text())
    if sha256_json(old) != sha256_json(json.loads(json.dumps(identity, default=str))):
        diff = sorted(
            k
            for k in set(old) | set(identity)
            if old.get(k) != json.loads(json.dumps(identity, default=str)).get(k)
        )
        raise ConfigError(
            f"{run_dir} holds a run with a different configuration (differs in: "
            f"{', '.join(diff)}); "
            "choose another --run-name or delete that folder"
        )


def train(
    loaded: LoadedModel,
    examples: Sequence[TrainingExample],
    config: TrainConfig,
    run_dir: Path,
    *,
    meta: dict[str, Any] | None = None,
    on_step: StepCallback | None = None,
) -> tuple[Any, TrainResult]:
    """Train a LoRA adapter on ``examples``, checkpointing under ``run_dir/checkpoints``.

    Resumes from the last complete checkpoint in ``run_dir`` (its config must match). Returns
    the peft model (in eval mode, holding the final weights) and a :class:`TrainResult`.
    ``meta`` adds fields to every checkpoint's meta.json (preset, variant, data hash, ...).
    """
    from peft import set_peft_model_state_dict  # heavy (seconds): keeps `interp --help` fast

    schedule = Schedule(
        len(examples), config.effective_batch, config.epochs, config.checkpoint_epochs, config.seed
    )
    identity = {
        "train_config": config_to_dict(config),
        "base_weights_hash": loaded.weights_hash,
        **(meta or {}),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_config(run_dir, identity)
    model = lora_model(loaded, config)
    device = loaded.device
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config, schedule.total_steps)
    )
    pad = int(loaded.tokenizer.pad_token_id)
    ckpt_steps = schedule.checkpoints()
    done = complete_checkpoints(run_dir)
    start = max(done) if done else 0
    torch.manual_seed(config.seed + 1)  # LoRA dropout stream
    if start:
        folder = done[start]
        log.info("resuming from %s (step %d of %d)", folder, start, schedule.total_steps)
        state = read_resume_state(folder)  # before any weights change: a bad state stops here
        adapter = load_file(str(folder / "adapter_model.safetensors"), device=str(device))
        set_peft_model_state_dict(model, adapter)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
    lengths = [e.n_tokens for e in examples]
    # gradient checkpointing recomputes the forward without a key/value cache to continue
    share = config.share_prefix and not config.gradient_checkpointing
    result = TrainResult(
        {e: p for s, p in done.items() if (e := ckpt_steps.get(s)) is not None}, 0, start, 0.0, 0, 0
    )
    model.train()
    for step in range(start, schedule.total_steps):
        t0 = time.perf_counter()
        idx = schedule.batch_indices(step)
        n_target = sum(sum(1 for x in examples[i].labels[1:] if x != IGNORE_INDEX) for i in idx)
        loss_total = 0.0
        for chunk in micro_batches(idx, lengths, config.micro_batch):
            batch = [examples[i] for i in chunk]
            ids, mask, labels = (t.to(device) for t in collate(batch, pad))
            shared = shared_prefix(batch) if share else 0
            loss = target_loss_sum(model, ids, mask, labels, shared) / n_target
            loss.backward()
            loss_total += float(loss.detach())
            result.tokens += int(mask.sum())
        result.target_tokens += n_target
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.train_seconds += time.perf_counter() - t0
        result.steps_run += 1
        result.losses.append(loss_total)
        if on_step is not None:
            on_step(step + 1, schedule.total_steps, loss_total)
        if step + 1 in ckpt_steps:
            epoch = ckpt_steps[step + 1]
            fields = {
                **identity,
                "epoch": epoch,
                "epoch_exact": schedule.exact_epoch(step + 1),
                "step": step + 1,
                "total_steps": schedule.total_steps,
                "base_model": loaded.name,
                "loss": loss_total,
            }
            result.checkpoints[epoch] = save_checkpoint(
                model, optimizer, scheduler, run_dir, epoch, fields
            )
    model.eval()
    return model, result


def save_checkpoint(
    model: Any, optimizer: Any, scheduler: Any, run_dir: Path, epoch: float, fields: dict[str, Any]
) -> Path:
    """Write ``checkpoints/epoch-<e>/`` atomically: adapter, meta.json and the resume state."""
    final = run_dir / "checkpoints" / checkpoint_name(epoch)
    with atomic_dir(final) as tmp:
        model.save_pretrained(tmp)
        write_resume_state(tmp, {
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": _rng_state(), "step": fields["step"],
        })  # fmt: skip
        write_json_atomic(tmp / paths.META_FILE, provenance(stage="finetune-checkpoint", **fields))
    log.info("checkpoint %s (step %d)", final.name, fields["step"])
    return final
