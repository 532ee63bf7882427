"""``interp probes``: per layer and site, linear probes for sycophancy and for warm vs original.

- ``sycophancy``: on belief prompts read by the original model (last prompt token), predict
  whether the model will agree with the user's wrong belief (forced-choice ``agrees_with_user``);
- ``warm_vs_original`` (with ``--adapter``): the same prompts read by base+adapter vs the base.

Folds are grouped by item; AUROC and accuracy are out of fold with item-bootstrap 95% CIs, plus a
shuffled-label control. Writes ``<artifacts>/probes/<config hash>/probe_auroc.csv`` (probe, site,
layer, n, auroc, auroc_low, auroc_high, accuracy, accuracy_low, accuracy_high, shuffled_auroc),
``probe_direction_cosines.csv`` (probe, layer, direction, cosine) and meta.json. Activations come
from the caches ``interp directions`` builds (the same ones, reused).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich import box
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import (
    result_folder,
    writing_result,
)
from interp.cache import CachedActivations
from interp.causal.inputs import check_direction_folders
from interp.commands.directions import SHORT
from interp.config import ConfigError, option
from interp.data.split import split_record
from interp.definitions.compute import definition_directions
from interp.definitions.contrasts import ModelSide, RowSet
from interp.definitions.inputs import DefinitionInputs, Prepared, inputs_digest, prepare
from interp.definitions.sources import belief_prompts, label_balance
from interp.directions import Direction, load_directions
from interp.figures.tables import SCHEMAS
from interp.probes import probe_layers, weight_direction_cosines
from interp.sites import SITE_KINDS, Site

log = logging.getLogger(__name__)

AUROC_FILE = "probe_auroc.csv"
COSINES_FILE = "probe_direction_cosines.csv"
AUROC_COLUMNS = list(SCHEMAS["probe_auroc"])
COSINE_COLUMNS = ["probe", "layer", "direction", "cosine"]


@dataclass(frozen=True)
class ProbesConfig(DefinitionInputs):
    """Probe every layer and site for upcoming agreement with a wrong belief, and for warm vs
    original activations; compare each probe's weights with the definition directions."""

    sites: tuple[str, ...] = option(
        ("resid_post",), help=f"site kinds to probe ({', '.join(SITE_KINDS)})"
    )
    layers: tuple[int, ...] = option((), help="layers (none: every layer)")
    n_folds: int = option(5, help="folds, grouped by item")
    n_boot: int = option(500, help="item-bootstrap resamples for the CIs")
    c: float = option(1.0, help="inverse L2 strength of the logistic probes")
    directions: str | None = option(
        None,
        help=(
            "an `interp directions` run folder to compare the probes with (default: "
            "mean-difference directions from the same caches)"
        ),
    )
    out: str | None = option(None, help="output folder (default: <artifacts>/probes/<config hash>)")

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [s for s in self.sites if s not in SITE_KINDS]
        if bad or not self.sites:
            raise ConfigError(f"sites: unknown or none {bad}; choose from {list(SITE_KINDS)}")
        if self.n_folds < 2 or self.n_boot < 10 or self.c <= 0:
            raise ConfigError("n_folds must be >= 2, n_boot >= 10 and c > 0")


def probe_data(
    prepared: Prepared,
    caches: dict[tuple[ModelSide, str, str], CachedActivations],
    site_kind: str,
    layers: tuple[int, ...],
    with_adapter: bool,
) -> dict[str, tuple[dict[int, torch.Tensor], np.ndarray, np.ndarray]]:
    """``{probe: ({layer: (n, d)}, y, groups)}`` for the sycophancy and warm-vs-original probes."""
    out = {}
    base = caches[("base", "prompts", site_kind)]
    index = {rid: i for i, rid in enumerate(base.row_ids)}
    labels = prepared.labels
    if labels is not None:
        rows = labels[labels["agrees_with_user"].notna()]
        take = [index[str(p)] for p in rows["prompt_id"]]
        site = {layer: Site(layer, site_kind) for layer in layers}  # type: ignore[arg-type]
        x = {layer: base.load(site[layer], "last")[take, 0].float() for layer in layers}
        out["sycophancy"] = (
            x,
            rows["agrees_with_user"].to_numpy().astype(int),
            rows["item_id"].astype(str).to_numpy(),
        )
    if with_adapter:
        warm = caches[("adapter", "prompts", site_kind)]
        if warm.row_ids != base.row_ids:
            raise ConfigError("the base and adapter caches hold different rows")
        groups = np.array([p.item_id for p in prepared.prompts] * 2)
        y = np.r_[np.zeros(len(base.row_ids)), np.ones(len(warm.row_ids))].astype(int)
        site = {layer: Site(layer, site_kind) for layer in layers}  # type: ignore[arg-type]
        x = {
            layer: torch.cat(
                [base.load(site[layer], "last")[:, 0], warm.load(site[layer], "last")[:, 0]]
            ).float()
            for layer in layers
        }
        out["warm_vs_original"] = (x, y, groups)
    return out


def compute(config: ProbesConfig, out: Path, console: Console) -> None:
    """Fit the probes (and get the directions) and write the run folder atomically."""
    source = config.source()
    prepared = prepare(config, source, need_labels=True)
    assert prepared.labels is not None
    console.print(
        f"sycophancy labels on {len(belief_prompts(prepared.prompts))} belief prompts: "
        f"{label_balance(prepared.labels)}"
    )
    with_adapter = config.adapter is not None
    prompt_set = prepared.rowsets["prompts"]
    needs: list[tuple[ModelSide, RowSet]] = [("base", prompt_set)]
    if with_adapter:
        needs.append(("adapter", prompt_set))
    own_directions = config.directions is None
    if own_directions:
        needs += prepared.needs()
    kinds = list(dict.fromkeys([*config.sites, "resid_post"] if own_directions else config.sites))
    caches = source.caches(needs, kinds)
    n_layers = next(iter(caches.values())).manifest["request"]["model"]["n_layers"]
    layers = config.layers or tuple(range(n_layers))
    if max(layers) >= n_layers:
        raise ConfigError(
            f"layers: the model has {n_layers} layers (0..{n_layers - 1}), found {max(layers)}"
        )
    directions = _directions(config, prepared, caches, layers)
    tables, cosines = [], []
    for kind in config.sites:
        for probe, (x, y, groups) in probe_data(
            prepared, caches, kind, layers, with_adapter
        ).items():
            console.print(
                f"probing {probe} at {kind} ({len(y)} rows, {len(set(groups))} items, "
                f"{len(layers)} layers) ..."
            )
            table, weights = probe_layers(
                x,
                y,
                groups,
                n_folds=config.n_folds,
                c=config.c,
                n_boot=config.n_boot,
                seed=config.seed,
            )
            table.insert(0, "site", kind)
            table.insert(0, "probe", probe)
            tables.append(table)
            same_site = [d for d in directions if d.site_kind == kind]
            cosines.append(weight_direction_cosines(weights, same_site, probe))
    auroc = pd.concat(tables, ignore_index=True)[AUROC_COLUMNS]
    cos = (
        pd.concat(cosines, ignore_index=True)[COSINE_COLUMNS]
        if cosines
        else pd.DataFrame(columns=COSINE_COLUMNS)
    )
    with writing_result(
        out,
        stage="probes",
        split=split_record("derivation", [p.item_id for p in prepared.prompts]),
        config=config,
        models=source.model_meta,
        inputs_sha256=inputs_digest(prepared),
        labels=label_balance(prepared.labels),
        layers=list(layers),
        directions_from=config.directions or "mean-difference directions from the same caches",
        caches={f"{side}:{key}:{kind}": str(c.folder) for (side, key, kind), c in caches.items()},
    ) as tmp:
        auroc.to_csv(tmp / AUROC_FILE, index=False)
        cos.to_csv(tmp / COSINES_FILE, index=False)


def _directions(
    config: ProbesConfig,
    prepared: Prepared,
    caches: dict[tuple[ModelSide, str, str], CachedActivations],
    layers: tuple[int, ...],
) -> list[Direction]:
    if config.directions is not None:
        return load_directions([Path(config.directions)])
    directions, _ = definition_directions(
        prepared,
        caches,
        site_kind="resid_post",
        layers=layers,
        seed=config.seed,
        with_stability=False,
    )
    return directions


def run_probes(config: ProbesConfig, console: Console | None = None) -> int:
    console = console or Console()
    if config.directions is not None:
        check_direction_folders("directions", [config.directions])
    out = result_folder("probes", config)
    if (out / AUROC_FILE).is_file():
        console.print(f"probes exist in {out}; reusing them (delete the folder to recompute)")
    else:
        compute(config, out, console)
    auroc = pd.read_csv(out / AUROC_FILE)
    cosines = pd.read_csv(out / COSINES_FILE)
    labels = json.loads((out / paths.META_FILE).read_text()).get("labels")
    for (probe, site), rows in auroc.groupby(["probe", "site"], sort=False):
        console.print(
            probe_table(
                str(probe),
                str(site),
                rows,
                cosines[cosines["probe"] == probe] if site == "resid_post" else None,
                labels,
            )
        )
    console.print(f"probe tables: {out}")
    return 0


def probe_table(
    probe: str, site: str, rows: pd.DataFrame, cosines: pd.DataFrame | None, labels: object
) -> Table:
    """Per layer: AUROC [95% CI], accuracy (its CI is in the CSV), shuffled-label AUROC and the
    cosine of the probe's weights with each direction."""
    best = rows.loc[rows["auroc"].idxmax()]
    table = Table(
        title=f"probe {probe} at {site}, out of fold, folds grouped by item (best layer "
        f"{int(best['layer'])}: "
        f"AUROC {best['auroc']:.3f} [{best['auroc_low']:.3f}, {best['auroc_high']:.3f}])",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("L", "n", "AUROC [95%]", "acc", "shuf"):
        table.add_column(col, justify="right", no_wrap=True)
    names = list(dict.fromkeys(cosines["direction"])) if cosines is not None else []
    for name in names:
        table.add_column(f"cos\n{SHORT.get(name, name)}", justify="right", no_wrap=True)
    for r in rows.sort_values("layer").itertuples():
        cells = [
            str(r.layer),
            str(r.n),
            f"{r.auroc:.2f} [{r.auroc_low:.2f},{r.auroc_high:.2f}]",
            f"{r.accuracy:.2f}",
            f"{r.shuffled_auroc:.2f}",
        ]
        if cosines is not None:
            at = cosines[cosines["layer"] == r.layer].set_index("direction")["cosine"]
            cells += [f"{at[n]:+.2f}" if n in at.index else "" for n in names]
        table.add_row(*cells)
    caption = ", ".join(f"{SHORT[n]}={n}" for n in names if n in SHORT)
    if probe == "sycophancy" and labels:
        caption += f"; labels (forced choice, original model): {labels}"
    table.caption = caption
    return table
