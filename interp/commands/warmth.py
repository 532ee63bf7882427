"""``interp warmth``: validate the three warmth instruments on held-out reply triples."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp.artifacts import is_complete, result_folder, writing_result
from interp.config import ConfigError, option
from interp.models import EMBEDDED, load_model
from interp.warmth import DEFAULT_DROPOUT, DEFAULT_PASSES
from interp.warmth.pairs import load_split
from interp.warmth.report import WarmthInstruments, evaluate_instruments

OUTPUTS = ("scores.csv", "win_rates.csv")


@dataclass(frozen=True)
class WarmthConfig:
    """Score held-out warm / neutral / cold replies with SocioT, the embedding classifier and the
    lexical markers, and report each instrument's paired win rate with a 95% CI."""

    scorer: str = option(
        EMBEDDED, help="SocioT scoring model (the paper uses GPT-2; here the embedded model)"
    )
    n_passes: int = option(DEFAULT_PASSES, help="SocioT stochastic passes (the paper: 100)")
    dropout: float = option(
        DEFAULT_DROPOUT,
        help="SocioT attention dropout during the passes (-1 keeps the scorer's own)",
    )
    seed: int = option(0, help="seed of passes and bootstrap")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/warmth-validation/<config hash>)"
    )

    def __post_init__(self) -> None:
        if self.n_passes < 1:
            raise ConfigError(f"n_passes must be >= 1, found {self.n_passes}")
        if not (self.dropout == -1 or 0 <= self.dropout < 1):
            raise ConfigError(f"dropout must be in [0, 1) or -1, found {self.dropout}")


def run_warmth(config: WarmthConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = result_folder("warmth-validation", config)
    if is_complete(out, OUTPUTS):
        console.print(f"results exist in {out}; reusing them")
        wins = pd.read_csv(out / "win_rates.csv")
    else:
        split = load_split()
        instruments = WarmthInstruments.load(
            load_model(config.scorer),
            split=split,
            seed=config.seed,
            n_passes=config.n_passes,
            dropout=None if config.dropout == -1 else config.dropout,
        )
        n = len(split.held_out)
        console.print(f"scoring {n} held-out triples (never seen by the classifier) ...")
        scores, wins = evaluate_instruments(split.held_out, instruments, seed=config.seed)
        with writing_result(
            out,
            stage="warmth-validation",
            config=config,
            held_out_ids=split.held_out_ids,
            timings_s=instruments.timings,
        ) as tmp:
            scores.to_csv(tmp / "scores.csv", index=False)
            wins.to_csv(tmp / "win_rates.csv", index=False)
    table = Table(title="Warmth instruments: paired win rate on held-out triples (95% CI)")
    for col in ("instrument", "scorer", "comparison", "win rate [95% CI]", "pairs"):
        table.add_column(col)
    for row in wins.itertuples():
        table.add_row(
            str(row.instrument),
            str(row.scorer),
            str(row.comparison),
            f"{row.win_rate:.3f} [{row.ci_lo:.3f}, {row.ci_hi:.3f}]",
            str(row.n_pairs),
        )
    console.print(table)
    console.print(f"written to {out}")
    return 0
