"""``interp reliability``: evaluation runs of several model variants -> one tidy comparison.

Reads the ``results.csv`` of ``interp eval`` runs (original, warm, cold, warm system prompt ...)
and writes ``error_by_task.csv`` (variant x task x headline cell x measure, item-bootstrap 95%
CIs), ``variant_contrasts.csv`` (each variant minus the original, paired within item, per
task and cell), and the paper's regressions of each variant against the baseline
(:mod:`interp.reliability_models`): ``regressions.csv`` (coefficients, item-clustered SEs) and
``marginal_effects.csv`` (average marginal effects in pp with BH q-values). Its ``meta.json``
cites the sha256 of every input run's ``meta.json`` and lists the models skipped and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import is_complete, result_folder, sha256_file, writing_result
from interp.config import ConfigError, option
from interp.errors import InputNotFoundError
from interp.reliability_models import paper_models
from interp.summaries import format_ci, variant_contrasts, variant_table

OUTPUTS = ("error_by_task.csv", "variant_contrasts.csv", "regressions.csv", "marginal_effects.csv")


@dataclass(frozen=True)
class ReliabilityConfig:
    """Compare error and agreement with the user's wrong belief across model variants."""

    runs: tuple[str, ...] = option(
        (),
        help="VARIANT=FOLDER pairs, each folder an `interp eval` output (results.csv); the first "
        "is the baseline",
    )
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
        raise InputNotFoundError(
            f"runs: {variant}={folder} holds no results.csv (run `interp eval` first)"
        )
    df = pd.read_csv(path)
    missing = {"item_id", "task", "condition", "template", "error"} - set(df.columns)
    if missing:
        raise ConfigError(f"{path}: missing columns {sorted(missing)}; found {list(df.columns)}")
    return df


def run_reliability(config: ReliabilityConfig, console: Console | None = None) -> int:
    console = console or Console()
    runs = config.parsed()
    out = result_folder("reliability", config)
    if is_complete(out, OUTPUTS):
        console.print(f"results exist in {out}; reusing them")
        table = pd.read_csv(out / "error_by_task.csv")
        contrasts = pd.read_csv(out / "variant_contrasts.csv")
        effects = pd.read_csv(out / "marginal_effects.csv")
    else:
        results = {variant: _read_run(variant, folder) for variant, folder in runs.items()}
        inputs = {
            variant: {"folder": str(folder), "meta_sha256": _meta_sha256(folder)}
            for variant, folder in runs.items()
        }
        table = variant_table(results, seed=config.seed, n_boot=config.n_boot)
        baseline = next(iter(runs))
        contrasts = variant_contrasts(results, baseline, seed=config.seed, n_boot=config.n_boot)
        models = paper_models(results, baseline)
        effects = models.effects
        for key, reason in models.skipped.items():
            console.print(f"regressions: {key} skipped: {reason}")
        with writing_result(out, stage="reliability", config=config, baseline=baseline,
                            inputs=inputs, outputs=list(OUTPUTS),
                            regressions={"skipped": models.skipped, "notes": models.notes,
                                         "cov_type": "clustered by item_id",
                                         "fixed_effects": ["task"]}) as tmp:  # fmt: skip
            table.to_csv(tmp / "error_by_task.csv", index=False)
            contrasts.to_csv(tmp / "variant_contrasts.csv", index=False)
            models.regressions.to_csv(tmp / "regressions.csv", index=False)
            effects.to_csv(tmp / "marginal_effects.csv", index=False)
    console.print(pooled_table(table, contrasts))
    if not effects.empty:
        console.print(effects_table(effects))
    console.print("tables: " + ", ".join(str(out / name) for name in OUTPUTS))
    return 0


def _meta_sha256(folder: Path) -> str | None:
    meta = folder / paths.META_FILE
    return sha256_file(meta) if meta.is_file() else None


def pooled_table(table: pd.DataFrame, contrasts: pd.DataFrame) -> Table:
    """All tasks pooled: each variant's error / agreement per cell, and its difference from the
    baseline."""
    pooled = table[table["task"] == "all"]
    diffs = contrasts[contrasts["task"] == "all"]
    t = Table(
        title="Error and agreement by variant (all tasks; 95% CI, item bootstrap; diff vs "
        "baseline paired within item, pp)"
    )
    for col in ("measure", "cell", "variant", "rate", "diff vs baseline"):
        t.add_column(col)
    for r in pooled.itertuples():
        same = (diffs["variant"] == r.variant) & (diffs["cell"] == r.cell)
        d = diffs[same & (diffs["measure"] == r.measure)]
        diff = "-"
        if not d.empty:
            mid, low, high = (100 * d[c].iat[0] for c in ("diff", "ci_low", "ci_high"))
            diff = f"{mid:+.1f} [{low:+.1f}, {high:+.1f}]"
        t.add_row(
            str(r.measure),
            str(r.cell),
            str(r.variant),
            format_ci(r.mean, r.ci_low, r.ci_high),
            diff,
        )
    return t


def effects_table(effects: pd.DataFrame) -> Table:
    """Average marginal effects of each variant (pp, 95% CI, BH q) from the paper's models."""
    t = Table(title="Average marginal effect vs baseline (pp; 95% CI, item-clustered; BH q)")
    for col in ("effect", "model", "level", "measure", "AME (pp)", "q"):
        t.add_column(col)
    for r in effects.itertuples():
        t.add_row(
            str(r.effect),
            str(r.model),
            str(r.level),
            str(r.measure),
            f"{r.ame_pp:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]",
            f"{r.q_value:.3g}",
        )
    return t
