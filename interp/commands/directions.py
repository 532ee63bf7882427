"""``interp directions``: the study's direction definitions per layer, their stability and overlap.

Writes ``<artifacts>/directions/<config hash>/`` with one Direction folder per definition and
method (label ``persona``, ``persona-pca``, ...), ``direction_stability.csv`` (direction, layer,
cosine, ci_low, ci_high, null_cosine, null_high, relative_norm), ``direction_cosines.csv``
(layer, a, b, cosine: every pair of definitions of the same method) and meta.json. Activations
come from caches shared with ``interp probes``; a finished run folder is reused as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import (
    result_folder,
    writing_result,
)
from interp.config import ConfigError, option
from interp.data.split import split_record
from interp.definitions.compute import definition_cosines, definition_directions
from interp.definitions.inputs import DefinitionInputs, inputs_digest, prepare
from interp.definitions.sources import label_balance
from interp.directions import METHODS, random_cosine_null
from interp.sites import SITE_KINDS

log = logging.getLogger(__name__)

STABILITY_FILE = "direction_stability.csv"
COSINES_FILE = "direction_cosines.csv"


@dataclass(frozen=True)
class DirectionsConfig(DefinitionInputs):
    """Derive the fine-tune, persona, sad-context and sycophancy directions at every layer, with
    split-half stability, norms relative to the residual stream and cosines between them."""

    methods: tuple[str, ...] = option(
        ("mean_diff",),
        help=(
            f"direction methods ({', '.join(METHODS)}); pca skips the unpaired sycophancy "
            "definition"
        ),
    )
    site: str = option("resid_post", help="site kind the directions live at")
    layers: tuple[int, ...] = option((), help="layers (none: every layer)")
    n_splits: int = option(
        50, help="random item halves for split-half stability (and as many for its null)"
    )
    out: str | None = option(
        None, help="output folder (default: <artifacts>/directions/<config hash>)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ConfigError(f"methods: unknown or none {bad}; choose from {list(METHODS)}")
        if self.site not in SITE_KINDS:
            raise ConfigError(f"site must be one of {list(SITE_KINDS)}, found {self.site!r}")
        if self.n_splits < 2:
            raise ConfigError(f"n_splits must be >= 2, found {self.n_splits}")
        if any(layer < 0 for layer in self.layers):
            raise ConfigError(f"layers must be >= 0, found {list(self.layers)}")


def output_folder(config: DirectionsConfig) -> Path:
    return result_folder("directions", config)


def compute(config: DirectionsConfig, out: Path, console: Console) -> None:
    """Run the definitions and write the run folder atomically."""
    source = config.source()
    prepared = prepare(config, source)
    if prepared.labels is not None:
        console.print(
            f"sycophancy labels (forced choice, original model): {label_balance(prepared.labels)}"
        )
    caches = source.caches(prepared.needs(), [config.site])
    n_layers = next(iter(caches.values())).manifest["request"]["model"]["n_layers"]
    layers = config.layers or tuple(range(n_layers))
    if max(layers) >= n_layers:
        raise ConfigError(
            f"layers: the model has {n_layers} layers (0..{n_layers - 1}), found {max(layers)}"
        )
    directions, stability = definition_directions(
        prepared,
        caches,
        site_kind=config.site,
        layers=layers,
        methods=config.methods,
        n_splits=config.n_splits,
        seed=config.seed,
    )
    cosines = definition_cosines(directions)
    d_model = int(directions[0].vectors.shape[1])
    null = random_cosine_null(d_model, seed=config.seed)
    with writing_result(
        out,
        stage="directions",
        config=config,
        split=split_record("derivation", [p.item_id for p in prepared.prompts]),
        models=source.model_meta,
        inputs_sha256=inputs_digest(prepared),
        site=config.site,
        layers=list(layers),
        random_direction_null=null,
        labels=label_balance(prepared.labels) if prepared.labels is not None else None,
        directions={
            str(d.meta["label"]): {
                "name": d.name,
                "method": d.method,
                "position": d.position,
                "n_pos": d.meta["n_pos"],
                "n_neg": d.meta["n_neg"],
                "n_items": d.meta["n_items"],
                "description": d.meta["description"],
            }
            for d in directions
        },
        caches={f"{side}:{key}:{kind}": str(c.folder) for (side, key, kind), c in caches.items()},
    ) as tmp:
        for d in directions:
            d.save(tmp / str(d.meta["label"]))
        stability.to_csv(tmp / STABILITY_FILE, index=False)
        cosines.to_csv(tmp / COSINES_FILE, index=False)
        if prepared.labels is not None:
            prepared.labels.to_csv(tmp / "sycophancy_labels.csv", index=False)


def run_directions(config: DirectionsConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = output_folder(config)
    if (out / STABILITY_FILE).is_file():
        console.print(f"directions exist in {out}; reusing them (delete the folder to recompute)")
    else:
        console.print(
            f"deriving {', '.join(config.chosen)} at {config.site} ({', '.join(config.methods)}) "
            f"on {config.model} ..."
        )
        compute(config, out, console)
    stability = pd.read_csv(out / STABILITY_FILE)
    cosines = pd.read_csv(out / COSINES_FILE)
    meta = json.loads((out / paths.META_FILE).read_text())
    console.print(stability_table(stability, meta.get("random_direction_null", {})))
    console.print(cosine_grid(cosines, meta.get("random_direction_null", {})))
    console.print(f"directions and tables: {out}")
    return 0


SHORT = {
    "finetune": "ft",
    "persona": "per",
    "sad_context": "sad",
    "sycophancy": "syc",
    "sycophancy_ab": "ab",
}


def _short(label: str) -> str:
    name, _, method = label.partition("-")
    return SHORT.get(name, name) + (f"-{method}" if method else "")


def stability_table(stability: pd.DataFrame, null: dict[str, float]) -> Table:
    """Per layer: split-half cosine of each direction (* when its 2.5% bound clears the null's
    97.5%) and its norm relative to the residual norm."""
    labels = list(dict.fromkeys(stability["direction"]))
    table = Table(
        title=(
            "Split-half stability over items (mean cosine, * = 95% interval above the null) / "
            "norm relative to the residual"
        ),
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    table.add_column("layer", justify="right")
    for label in labels:
        table.add_column(_short(label), justify="right", no_wrap=True)
    for layer, rows in stability.groupby("layer", sort=True):
        cells = []
        for label in labels:
            r = rows[rows["direction"] == label]
            if r.empty:
                cells.append("")
                continue
            x = r.iloc[0]
            star = "*" if x["ci_low"] > x["null_high"] else " "
            cells.append(f"{x['cosine']:.2f}{star} {x['relative_norm']:.3f}")
        table.add_row(str(layer), *cells)
    legend = ", ".join(f"{v}={k}" for k, v in SHORT.items())
    table.caption = legend + (
        f"; random directions: |cos| 95th pct {null['q95_abs']:.3f}" if null else ""
    )
    return table


def cosine_grid(cosines: pd.DataFrame, null: dict[str, float]) -> Table:
    """Per layer: cosine between every pair of definitions (the first result figure as a table)."""
    pairs = list(dict.fromkeys(zip(cosines["a"], cosines["b"], strict=True)))
    table = Table(
        title="Cosine between definitions per layer",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("L", justify="right", no_wrap=True, min_width=2)
    for a, b in pairs:
        table.add_column(f"{_short(a)}\n{_short(b)}", justify="right", no_wrap=True)
    for layer, rows in cosines.groupby("layer", sort=True):
        lookup = {(r.a, r.b): r.cosine for r in rows.itertuples()}
        table.add_row(str(layer), *[f"{lookup[p]:+.2f}" if p in lookup else "" for p in pairs])
    legend = ", ".join(f"{v}={k}" for k, v in SHORT.items())
    table.caption = legend + (f"; random |cos| 95th pct {null['q95_abs']:.3f}" if null else "")
    return table
