"""Read the authors' published data (github.com/lujainibrahim/warm_ai_2025) into tidy frames.

The folder is passed by the user (``<root>/summary_data/*.csv``, ``<root>/source_data/
sociot_ft.csv``); nothing is copied. Model names differ between the authors' files
("70b-cold", "qwen-32-sys-prompt"); they are mapped to one set of names here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from interp.figures.tables import TableError

log = logging.getLogger(__name__)

RELIABILITY_FILES = {
    "warm": "summary_data/results_warm_ft.csv",
    "cold": "summary_data/results_cold_ft.csv",
    "warm-sysprompt": "summary_data/results_warm_sysprompt.csv",
}
BENCHMARK_FILE = "summary_data/general_benchmark_results.csv"
SOCIOT_FILE = "source_data/sociot_ft.csv"

PAPER_MODELS = ("llama-8b", "mistral-small", "qwen-32b", "llama-70b", "gpt-4o")
TEST_TYPE_CELLS = {"Normal": "no belief", "Sycophancy": "wrong belief"}
# our task names (interp.data.items.PAPER_TASKS) -> the authors' dataset names
TASK_TO_DATASET = {
    "general_knowledge": "trivia",
    "misconceptions": "truthfulqa",
    "disinformation": "disinfo",
    "medical": "medqa",
}
_RELIABILITY_COLUMNS = (
    "Amendment_type",
    "Original Accuracy (%)",
    "Raw Diff (pp)",
    "p-value (FDR corrected)",
    "Model",
    "Dataset",
    "Test_Type",
)


def paper_model_name(raw: str) -> str:
    """``70b-cold`` / ``llama-70b-sys-prompt`` / ``Qwen-32B`` -> ``llama-70b`` / ``qwen-32b``."""
    name = str(raw).strip().lower()
    for suffix in ("-sys-prompt", "-cold", "-warm"):
        name = name.removesuffix(suffix)
    aliases = {
        "70b": "llama-70b",
        "8b": "llama-8b",
        "qwen-32": "qwen-32b",
        "mistral": "mistral-small",
    }
    return aliases.get(name, name)


def _read(root: Path, rel: str, required: tuple[str, ...]) -> pd.DataFrame:
    path = Path(root) / rel
    if not path.is_file():
        raise FileNotFoundError(
            f"paper data: {path} not found (expected the authors' warm_ai_2025 folder at {root})"
        )
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    return df


def _drop_duplicate_rows(df: pd.DataFrame, keys: list[str], source: str) -> pd.DataFrame:
    """Keep, for a duplicated key, the row whose raw model name has the most rows in the file
    (the authors' sysprompt file holds one stray ``llama-70b-sys-prompt`` row beside the full
    ``70b-sys-prompt`` block)."""
    counts = df["raw_model"].map(df["raw_model"].value_counts())
    df = df.assign(_count=counts).sort_values("_count", ascending=False)
    dup = df.duplicated(keys, keep="first")
    for row in df[dup].itertuples():
        log.warning(
            "%s: dropped duplicate row for %s %s %s %s (raw model %s)",
            source,
            row.model,
            row.dataset,
            row.condition,
            row.cell,
            row.raw_model,
        )
    return df[~dup].drop(columns="_count").sort_index()


def load_reliability(root: Path) -> pd.DataFrame:
    """All three reliability files as one tidy frame.

    Columns: amendment (warm | cold | warm-sysprompt), model, raw_model, dataset, condition
    (``unmodified``, ``emotion:sad``, ...), cell (no belief | wrong belief), original_accuracy,
    amended_accuracy (%), error_increase_pp (amended minus original error = -Raw Diff),
    p_fdr, significant_fdr.
    """
    frames = []
    for amendment, rel in RELIABILITY_FILES.items():
        df = _read(root, rel, _RELIABILITY_COLUMNS)
        acc = [c for c in df.columns if c.endswith("Accuracy (%)") and c != "Original Accuracy (%)"]
        if len(acc) != 1:
            raise TableError(
                f"{Path(root) / rel}: expected one amended accuracy column beside 'Original "
                f"Accuracy (%)', found {acc}"
            )
        unknown = sorted(set(df["Test_Type"]) - set(TEST_TYPE_CELLS))
        if unknown:
            raise TableError(
                f"{Path(root) / rel}: Test_Type values {unknown} not in {sorted(TEST_TYPE_CELLS)}"
            )
        tidy = pd.DataFrame(
            {
                "amendment": amendment,
                "model": df["Model"].map(paper_model_name),
                "raw_model": df["Model"].astype(str),
                "dataset": df["Dataset"].astype(str),
                # "emotion:sad\r\noriginal" (Normal rows) -> "emotion:sad"
                "condition": df["Amendment_type"]
                .astype(str)
                .map(lambda s: s.splitlines()[0].strip() if s.strip() else s),
                "cell": df["Test_Type"].map(TEST_TYPE_CELLS),
                "original_accuracy": pd.to_numeric(df["Original Accuracy (%)"]),
                "amended_accuracy": pd.to_numeric(df[acc[0]]),
                "error_increase_pp": -pd.to_numeric(df["Raw Diff (pp)"]),
                "p_fdr": pd.to_numeric(df["p-value (FDR corrected)"], errors="coerce"),
            }
        )
        tidy["significant_fdr"] = tidy["p_fdr"] < 0.05
        frames.append(_drop_duplicate_rows(tidy, ["model", "dataset", "condition", "cell"], rel))
    return pd.concat(frames, ignore_index=True)


def load_sociot(root: Path) -> pd.DataFrame:
    """SocioT warmth per model and epoch (model, epoch, mean, sem), plus ``normalised`` and
    ``sem_normalised``: min-max normalised over all rows, as the paper's Figure 1."""
    df = _read(root, SOCIOT_FILE, ("model_name", "epoch", "mean", "sem"))
    lo, hi = float(df["mean"].min()), float(df["mean"].max())
    if not hi > lo:
        raise TableError(f"{Path(root) / SOCIOT_FILE}: all means equal; cannot min-max normalise")
    return pd.DataFrame(
        {
            "model": df["model_name"].map(paper_model_name),
            "epoch": pd.to_numeric(df["epoch"]),
            "mean": df["mean"],
            "sem": df["sem"],
            "normalised": (df["mean"] - lo) / (hi - lo),
            "sem_normalised": df["sem"] / (hi - lo),
        }
    )


def load_benchmarks(root: Path) -> pd.DataFrame:
    """General benchmarks in long form: model, benchmark, variant (original | warm), accuracy,
    ci_low, ci_high (all in %)."""
    cols = (
        "model",
        "benchmark",
        "original_accuracy",
        "original_CI_lower",
        "original_CI_upper",
        "warm_accuracy",
        "warm_CI_lower",
        "warm_CI_upper",
    )
    df = _read(root, BENCHMARK_FILE, cols)
    parts = [
        pd.DataFrame(
            {
                "model": df["model"].map(paper_model_name),
                "benchmark": df["benchmark"],
                "variant": v,
                "accuracy": df[f"{v}_accuracy"],
                "ci_low": df[f"{v}_CI_lower"],
                "ci_high": df[f"{v}_CI_upper"],
            }
        )
        for v in ("original", "warm")
    ]
    return pd.concat(parts, ignore_index=True)
