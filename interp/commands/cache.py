"""``interp cache``: run a model (any backend, optional adapter) over a prompt set and keep the
requested sites at the requested positions, in ``<artifacts>/cache/<hash>/`` (resumable).

The folder name hashes the model's provenance (weights and adapter), the backend, the rows and the
cache spec, so the same request always lands in the same folder: an interrupted run resumes there
and a finished one is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from interp.cache import CacheSpec, build_cache, open_cache, rows_hash
from interp.config import ConfigError, option
from interp.data.build import prompt_list
from interp.data.prompt_sets import read_prompt_set
from interp.definitions.activations import cache_folder
from interp.definitions.sources import prompt_rows
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, load_model
from interp.positions import PositionError, PositionSpec
from interp.sites import SITE_KINDS, sites


@dataclass(frozen=True)
class CacheConfig(LoadOptions):
    """Cache activations of a model over a prompt set (sites x layers x positions)."""

    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(None, help="PEFT adapter folder on top of the model")
    prompts: str | None = option(
        None,
        help=(
            "a prompt-set folder written by `interp data build`; none builds one from the options "
            "below"
        ),
    )
    tasks: tuple[str, ...] = option((), help="tasks to build (none: all four)")
    conditions: tuple[str, ...] = option(("unmodified", "emotion:sad"), help="conditions to build")
    templates: tuple[str, ...] = option(
        ("no_belief", "incorrect", "doubt"), help="templates to build"
    )
    per_task: int | None = option(12, help="at most this many items per task (none: all)")
    seed: int = option(0, help="seed of the statement assignment")
    system: str | None = option(None, help="system prompt for every prompt")
    sites: tuple[str, ...] = option(("resid_post",), help=f"site kinds ({', '.join(SITE_KINDS)})")
    layers: tuple[int, ...] = option((), help="layers (none: every layer)")
    positions: tuple[str, ...] = option(
        ("last",),
        help=(
            "positions: last, last:K, mean_user (the question only), mean_assistant, last_assistant"
        ),
    )
    batch_size: int = option(8, help="prompts per forward batch")
    shard_rows: int = option(128, help="rows per shard (a multiple of batch_size)")
    backend: Literal["torch", "transformerlens", "nnsight"] = option("torch", help="hook backend")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/cache/<hash of the request>)"
    )

    def __post_init__(self) -> None:
        bad = [s for s in self.sites if s not in SITE_KINDS]
        if bad or not self.sites:
            raise ConfigError(f"sites: unknown or none {bad}; choose from {list(SITE_KINDS)}")
        try:
            for p in self.positions:
                PositionSpec.parse(p)
        except PositionError as exc:
            raise ConfigError(f"positions: {exc}") from None
        if not self.positions:
            raise ConfigError("positions: give at least one")
        if self.batch_size < 1 or self.shard_rows % self.batch_size:
            raise ConfigError(
                f"shard_rows ({self.shard_rows}) must be a positive multiple of batch_size "
                f"({self.batch_size})"
            )
        if self.prompts is not None and not Path(self.prompts).is_dir():
            raise ConfigError(f"prompts: {self.prompts} is not a prompt-set folder")
        if any(layer < 0 for layer in self.layers):
            raise ConfigError(f"layers must be >= 0, found {list(self.layers)}")


def run_cache(config: CacheConfig, console: Console | None = None) -> int:
    console = console or Console()
    if config.prompts is not None:
        prompts = read_prompt_set(Path(config.prompts)).prompts
    else:
        prompts, _ = prompt_list(
            tasks=config.tasks,
            conditions=config.conditions,
            templates=config.templates,
            per_task=config.per_task,
            seed=config.seed,
        )
    rowset = prompt_rows(prompts, config.system, question_span=True)
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    layers = config.layers or tuple(range(loaded.n_layers))
    if max(layers) >= loaded.n_layers:
        raise ConfigError(
            f"layers: {config.model} has {loaded.n_layers} layers (0..{loaded.n_layers - 1}), "
            f"found {max(layers)}"
        )
    backend = get_backend(loaded, config.backend)
    spec = CacheSpec(
        sites=tuple(sites(config.sites, layers)),
        positions=config.positions,
        dtype=config.dtype,
        batch_size=config.batch_size,
        shard_rows=config.shard_rows,
    )
    out = Path(config.out) if config.out else cache_folder(backend, rows_hash(rowset.rows), spec)
    console.print(
        f"caching {len(rowset.rows)} prompts x {len(spec.sites)} sites x {len(spec.positions)} "
        f"positions into {out} ..."
    )
    build_cache(
        backend, rowset.rows, spec, out, extra_meta={"stage": "cache", "model": loaded.provenance()}
    )
    cache = open_cache(out)
    table = Table(title=f"cache {out}")
    for col in ("key", "rows x slots x d_model", "mean norm"):
        table.add_column(col)
    for key in cache.keys[:: max(1, len(cache.keys) // 12)]:
        site, pos = key.split("|")
        x = cache.load(
            site,
            config.positions[[PositionSpec.parse(p).label for p in config.positions].index(pos)],
        )
        table.add_row(key, " x ".join(map(str, x.shape)), f"{x.float().norm(dim=-1).mean():.2f}")
    console.print(table)
    return 0
