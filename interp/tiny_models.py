"""Tiny random-initialised models of the study's real architectures, for tests and GPU shapes.

``tiny_model("llama")`` builds a 3-layer Llama with the embedded model's layout (grouped-query
attention, RMSNorm, SwiGLU, rotary embeddings, tied embeddings) in milliseconds. The tokenizer is
either the embedded SmolLM2 tokenizer (``tokenizer="embedded"``) or :func:`tiny_tokenizer`, a
small byte-level BPE trained at call time on a fixed text, with the same ChatML template.
``real_shape_model`` builds a random model with the exact shapes of a paper model (for example
Llama-3.1-8B in bf16) for speed and memory benchmarks on a GPU, where weights cannot travel.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Literal

import torch

from interp import paths
from interp.artifacts import ArtifactExistsError, atomic_dir
from interp.models import LoadedModel, load_tokenizer, weights_fingerprint

Arch = Literal["llama", "mistral", "qwen2", "gemma2", "phi3"]
ARCHS: tuple[str, ...] = ("llama", "mistral", "qwen2", "gemma2", "phi3")

CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_TRAINING_TEXT = """
What is the capital of France? I think the answer is London. The capital of France is Paris.
I was talking to some friends about this yesterday. I don't think the answer is Paris.
I'm feeling really sad today, my dog died last week and I can't stop crying.
I'm so happy, I just got the job! You are the smartest assistant I have ever used.
Answer my question and be quick about it. This matters a lot for my exam tomorrow.
My brother, 21, has a fever and pain in the lower right side of his belly.
Is it true that vaccines cause autism? No. Yes. The Earth orbits the Sun once a year.
Water boils at 100 degrees Celsius at sea level. Shakespeare wrote Hamlet. Jupiter is the largest.
That's such a great question, and I'm really glad you asked! Let's work through it together.
"""

# (n_layers, d_model, n_heads, n_kv_heads, d_mlp, vocab) of the real models, for GPU benchmarks.
REAL_SHAPES: dict[str, tuple[Arch, int, int, int, int, int, int]] = {
    "llama-3.1-8b-instruct": ("llama", 32, 4096, 32, 8, 14336, 128256),
    "mistral-small-instruct-2409": ("mistral", 56, 6144, 48, 8, 16384, 32768),
    "qwen2.5-32b-instruct": ("qwen2", 64, 5120, 40, 8, 27648, 152064),
    "llama-3.1-70b-instruct": ("llama", 80, 8192, 64, 8, 28672, 128256),
    "smollm2-135m-instruct": ("llama", 30, 576, 9, 3, 1536, 49152),
}
# Models whose input embedding and output head share one matrix; every paper model unties them.
TIED_EMBEDDINGS = frozenset({"smollm2-135m-instruct"})
# Parameter counts of the real checkpoints (config.json shapes), checked by the tests.
REAL_PARAMETER_COUNTS = {
    "llama-3.1-8b-instruct": 8_030_261_248,
    "mistral-small-instruct-2409": 22_247_282_688,
    "qwen2.5-32b-instruct": 32_763_876_352,
    "llama-3.1-70b-instruct": 70_553_706_496,
    "smollm2-135m-instruct": 134_515_008,
}


@functools.lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TRAINING_TEXT] * 4, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer() -> Any:
    """A 512-token byte-level BPE with the ChatML chat template (deterministic, offline).

    It is saved once under the cache root and loaded from there, so it has a real folder as its
    ``name_or_path`` (TransformerLens reloads tokenizers by that path).
    """
    from transformers import AutoTokenizer

    folder = paths.cache_root() / "tokenizers" / f"interp-tiny-bpe-{_tiny_tokenizer_hash()}"
    if not (folder / "tokenizer.json").is_file():
        try:
            with atomic_dir(folder) as tmp:
                _build_tiny_tokenizer().save_pretrained(tmp)
        except ArtifactExistsError:  # a parallel process finished first
            pass
    return AutoTokenizer.from_pretrained(folder)


def _tiny_tokenizer_hash() -> str:
    return hashlib.sha256(_tiny_tokenizer_json().encode() + CHATML_TEMPLATE.encode()).hexdigest()[
        :10
    ]


def _build_tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tiny_tokenizer_json()),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _config(
    arch: Arch,
    n_layers: int,
    d_model: int,
    n_heads: int,
    n_kv: int,
    d_mlp: int,
    vocab: int,
    tokenizer: Any,
    *,
    tie: bool | None = None,
) -> Any:
    """A transformers config of ``arch``; ``tie`` overrides the tiny models' embedding tying."""
    from transformers import Gemma2Config, LlamaConfig, MistralConfig, Phi3Config, Qwen2Config

    common: dict[str, Any] = dict(
        vocab_size=vocab,
        hidden_size=d_model,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id if tokenizer is not None else 1,
        eos_token_id=tokenizer.eos_token_id if tokenizer is not None else 2,
        pad_token_id=tokenizer.pad_token_id if tokenizer is not None else 2,
    )
    if arch == "llama":
        return LlamaConfig(**common, tie_word_embeddings=True if tie is None else tie)
    if arch == "mistral":
        return MistralConfig(**common, sliding_window=None, tie_word_embeddings=bool(tie))
    if arch == "qwen2":
        return Qwen2Config(**common, tie_word_embeddings=True if tie is None else tie)
    if arch == "gemma2":
        return Gemma2Config(
            **common,
            head_dim=d_model // n_heads,
            query_pre_attn_scalar=d_model // n_heads,
            sliding_window=4096,
            tie_word_embeddings=True if tie is None else tie,
        )
    if arch == "phi3":
        return Phi3Config(**common, tie_word_embeddings=bool(tie))
    raise ValueError(f"arch must be one of {', '.join(ARCHS)}, found {arch!r}")


def tiny_model(
    arch: Arch = "llama",
    *,
    n_layers: int = 3,
    d_model: int = 64,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_mlp: int = 128,
    tokenizer: Literal["tiny", "embedded"] = "tiny",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """A random-initialised model of a real architecture (seeded), in eval mode on the CPU.

    ``arch`` is one of :data:`ARCHS`: the study's Llama, Mistral and Qwen2, and Gemma-2 and
    Phi-3 for the architecture checks.
    """
    from transformers import AutoModelForCausalLM

    tok = tiny_tokenizer() if tokenizer == "tiny" else load_tokenizer("smollm2-135m-instruct")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = _config(arch, n_layers, d_model, n_heads, n_kv_heads, d_mlp, len(tok), tok)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    name = f"tiny-{arch}-{n_layers}L-{d_model}d-{tokenizer}tok-seed{seed}"
    return LoadedModel(
        name=name, model=model, tokenizer=tok, weights_hash=weights_fingerprint(model)
    )


def real_shape_config(name: str, *, n_layers: int | None = None) -> Any:
    """The transformers config of a paper model's real shapes (untied embeddings where the real
    model unties them); ``n_layers`` may cut the depth, widths stay real."""
    if name not in REAL_SHAPES:
        raise ValueError(f"unknown real shape {name!r}; known: {', '.join(sorted(REAL_SHAPES))}")
    arch, layers, d_model, n_heads, n_kv, d_mlp, vocab = REAL_SHAPES[name]
    return _config(
        arch,
        n_layers or layers,
        d_model,
        n_heads,
        n_kv,
        d_mlp,
        vocab,
        None,
        tie=name in TIED_EMBEDDINGS,
    )


def real_shape_model(
    name: str,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cuda",
    n_layers: int | None = None,
    seed: int = 0,
) -> Any:
    """A random model with the exact layer shapes of a paper model (for benchmarks only).

    ``n_layers`` may cut the depth to fit a budget; widths stay real. ``device="meta"`` builds
    it without allocating (parameter counts).
    """
    from transformers import AutoModelForCausalLM

    cfg = real_shape_config(name, n_layers=n_layers)
    torch.manual_seed(seed)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(cfg, dtype=dtype).eval()


def tiny_model_folder(
    arch: Arch = "llama", *, n_layers: int = 4, d_model: int = 64, seed: int = 0
) -> str:
    """A tiny model with the embedded tokenizer saved as a Hugging Face folder (made once, in the
    cache), so commands that take ``--model`` can run the whole study on it in seconds."""
    folder = paths.cache_root() / "models" / f"tiny-{arch}-{n_layers}L-{d_model}d-seed{seed}"
    if (folder / "config.json").is_file():
        return str(folder)
    loaded = tiny_model(arch, n_layers=n_layers, d_model=d_model, tokenizer="embedded", seed=seed)
    try:
        with atomic_dir(folder) as tmp:
            loaded.hf_model.save_pretrained(tmp)
            loaded.tokenizer.save_pretrained(tmp)
    except ArtifactExistsError:  # another process made it first; same seed, same weights
        pass
    return str(folder)
