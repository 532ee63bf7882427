"""``interp reliability``: evaluation runs of several model variants -> one tidy comparison.

Reads the ``results.csv`` of ``interp eval`` runs (original, warm, cold, warm system prompt ...)
and writes ``error_by_task.csv`` (variant x task x headline cell x measure, item-bootstrap 95%
CIs) and ``variant_contrasts.csv`` (each variant minus the original, paired within item, per
task and cell). Its ``meta.json`` cites the sha256 of every input run's ``meta.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_file, sha256_json, write_json_atomic
from interp.config import ConfigError, config_to_dict, option
from interp.stats import paired_difference
from interp.summaries import format_ci, headline_cell, variant_table


@dataclass(frozen=True)
class ReliabilityConfig:
    """Compare error and agreement with the user's wrong belief across model variants."""

    runs: tuple[str, ...] = option((), help="VARIANT=FOLDER pairs, each folder an `interp eval` output (results.csv); the first is the baseline")
    seed: int = option(0, help="bootstrap seed")
    n_boot: int = option(1000, help="bootstrap resamples")
    out: str | None = option(None, help="output folder (default: <artifacts>/reliability/<hash>)")

    def __post_init__(self) -> None:
        if len(self.runs) < 1:
            raise ConfigError("runs: give at least one VARIANT=FOLDER pair")
        for spec in self.runs:
            if "=" not in spec:
                raise ConfigError(f"runs: expected VARIANT=FOLDER, found {spec!r}")

    def parsed(self) -> dict[str, Path]:
        pairs = dict(spec.split("=", 1) for spec in self.runs)
        if len(pairs) != len(self.runs):
            raise ConfigError(f"runs: variant names repeat in {list(self.runs)}")
        return {k: Path(v) for k, v in pairs.items()}


def _read_run(variant: str, folder: Path) -> pd.DataFrame:
    path = folder / "results.csv"
    if not path.is_file():
        raise ConfigError(f"runs: {variant}={folder} holds no results.csv (run `interp eval` first)")
    df = pd.read_csv(path)
    missing = {"item_id", "task", "condition", "template", "error"} - set(df.columns)
    if missing:
        raise ConfigError(f"{path}: missing columns {sorted(missing)}; found {list(df.columns)}")
    return df


def variant_contrasts(results: dict[str, pd.DataFrame], baseline: str, *, seed: int, n_boot: int) -> pd.DataFrame:
    """Each variant minus ``baseline`` per task (and pooled) x headline cell, paired within item.

    Columns: variant, task, cell, measure, n_items, diff, ci_low, ci_high.
    """
    frames = []
    for variant, df in results.items():
        part = df.assign(variant=variant)
        part["cell"] = [headline_cell(c, t) for c, t in zip(part["condition"], part["template"], strict=True)]
        frames.append(part[part["cell"].notna()])
    stacked = pd.concat(frames, ignore_index=True)
    stacked = pd.concat([stacked, stacked.assign(task="all")], ignore_index=True)
    rows = []
    for measure in ("error", "agrees_with_user"):
        if measure not in stacked.columns:
            continue
        per_item = stacked[stacked[measure].notna()].groupby(["variant", "task", "cell", "item_id"], as_index=False)[measure].mean()
        for variant in results:
            if variant == baseline:
                continue
            pair = per_item[per_item["variant"].isin([baseline, variant])]
            d = paired_difference(pair, measure, "item_id", "variant", baseline, variant, seed=seed, by=["task", "cell"], n_boot=n_boot)
            for r in d.itertuples():
                rows.append({"variant": variant, "task": r.task, "cell": r.cell, "measure": measure,
                             "n_items": int(r.n_items), "diff": float(r.diff), "ci_low": float(r.ci_low), "ci_high": float(r.ci_high)})
    return pd.DataFrame(rows, columns=["variant", "task", "cell", "measure", "n_items", "diff", "ci_low", "ci_high"])


def run_reliability(config: ReliabilityConfig, console: Console | None = None) -> int:
    console = console or Console()
    runs = config.parsed()
    results = {variant: _read_run(variant, folder) for variant, folder in runs.items()}
    inputs = {variant: sha256_file(folder / paths.META_FILE) if (folder / paths.META_FILE).is_file() else None for variant, folder in runs.items()}
    out = Path(config.out) if config.out else paths.artifact_dir("reliability", sha256_json([config_to_dict(config), inputs])[:12])
    if (out / "error_by_task.csv").is_file():
        console.print(f"results exist in {out}; reusing them")
        table = pd.read_csv(out / "error_by_task.csv")
        contrasts = pd.read_csv(out / "variant_contrasts.csv")
    else:
        table = variant_table(results, seed=config.seed, n_boot=config.n_boot)
        baseline = next(iter(runs))
        contrasts = variant_contrasts(results, baseline, seed=config.seed, n_boot=config.n_boot)
        with atomic_dir(out) as tmp:
            table.to_csv(tmp / "error_by_task.csv", index=False)
            contrasts.to_csv(tmp / "variant_contrasts.csv", index=False)
            write_json_atomic(tmp / paths.META_FILE, provenance(
                stage="reliability", config=config_to_dict(config), baseline=baseline,
                inputs={v: {"folder": str(f), "meta_sha256": inputs[v]} for v, f in runs.items()}))
    console.print(pooled_table(table, contrasts))
    console.print(f"tables: {out / 'error_by_task.csv'}, {out / 'variant_contrasts.csv'}")
    return 0


def pooled_table(table: pd.DataFrame, contrasts: pd.DataFrame) -> Table:
    """All tasks pooled: each variant's error / agreement per cell, and its difference from the baseline."""
    pooled = table[table["task"] == "all"]
    diffs = contrasts[contrasts["task"] == "all"]
    t = Table(title="Error and agreement by variant (all tasks; 95% CI, item bootstrap; diff vs baseline paired within item, pp)")
    for col in ("measure", "cell", "variant", "rate", "diff vs baseline"):
        t.add_column(col)
    for r in pooled.itertuples():
        d = diffs[(diffs["variant"] == r.variant) & (diffs["cell"] == r.cell) & (diffs["measure"] == r.measure)]
        diff = "-" if d.empty else f"{100 * d['diff'].iat[0]:+.1f} [{100 * d['ci_low'].iat[0]:+.1f}, {100 * d['ci_high'].iat[0]:+.1f}]"
        t.add_row(str(r.measure), str(r.cell), str(r.variant), format_ci(r.mean, r.ci_low, r.ci_high), diff)
    return t
