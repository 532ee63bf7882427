"""``interp models`` and ``interp generate``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from interp.chat import as_messages
from interp.config import ConfigError, option
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, list_models, load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelsConfig:
    """List the model registry and what is available offline."""


def run_models(config: ModelsConfig, console: Console | None = None) -> int:
    console = console or Console()
    table = Table(title="interp model registry")
    for col in ("name", "family", "source", "available", "where", "description"):
        table.add_column(col, no_wrap=col == "name")
    for row in list_models():
        table.add_row(
            *(Text(str(row[k])) for k in ("name", "family", "source")),
            "yes" if row["cached"] else "no",
            Text(row["where"]),
            Text(row["description"]),
        )
    console.print(table)
    console.print(
        "Any Hugging Face id (org/name) or local model folder also works with --model; "
        "add --adapter FOLDER for a LoRA adapter."
    )
    return 0


@dataclass(frozen=True)
class GenerateConfig(LoadOptions):
    """Generate one reply to a prompt."""

    prompt: str = option(help="the user message", positional=True)
    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(None, help="PEFT adapter folder to apply on top of the model")
    system: str | None = option(None, help="system prompt (default: the chat template's own)")
    max_new_tokens: int = option(200, help="tokens to generate at most")
    temperature: float = option(0.0, help="sampling temperature; 0 is greedy")
    top_p: float = option(1.0, help="nucleus sampling mass")
    seed: int = option(0, help="sampling seed")
    backend: Literal["torch", "transformerlens", "nnsight"] = option(
        "torch", help="hook backend that runs the model"
    )

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ConfigError("prompt: expected a non-empty message, found an empty string")


def run_generate(config: GenerateConfig, console: Console | None = None) -> int:
    console = console or Console()
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    backend = get_backend(loaded, config.backend)
    sampling = SamplingConfig(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
        batch_size=1,
    )
    [reply] = generate_replies(
        backend, [as_messages(config.prompt, system=config.system)], sampling
    )
    console.print(reply, markup=False, highlight=False)
    return 0
