"""RESULTS.md's verdict block, written by code from committed summary tables.

``python -m interp.report.results_md --run <17-verdict folder> --dest results/embedded`` copies the
verdict protocol's small summary tables (CSV, no activations) and the facts the sentence needs
into ``results/<preset>/``, and rewrites the block between the markers in RESULTS.md with the
sentence :func:`interp.causal.verdict_text.verdict_sentences` writes from those tables.
``--block planted-verdict --dest results/embedded-planted`` does the same for the protocol's
check on a planted effect (``interp verdict --plant``; ``planted-verdict-fewer-items`` for its
first run on fewer evaluation items), ``--block full-verdict --dest
results/embedded-full-verdict`` for the verdict on the whole evaluation split (``interp study
--preset embedded-full-verdict``), and ``--block seed-gap --dest
results/embedded-seeds`` for the gap over fine-tune seeds (``interp seed-gap``); ``--block
step-times --run <study folder> --preset P`` records how long a study's steps took.
``--block study --run <study folder> --dest results/embedded`` copies an ``interp study`` run's
summary tables into ``results/embedded/tables/`` (:mod:`interp.report.study_tables`) and rewrites
every study block (:data:`interp.report.study_blocks.STUDY_BLOCKS`); ``--block <study key>`` does
the same for one block. A test checks that each block equals what the code writes from the
committed tables, so the numbers in RESULTS.md cannot drift from them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from interp import paths
from interp.artifacts import write_json_atomic
from interp.causal.protocol import gaps, headline_cells
from interp.causal.verdict_text import seed_sentences, verdict_sentences
from interp.errors import InputNotFoundError, InterpError
from interp.report.study_blocks import REQUIRED_TABLES, STUDY_BLOCKS
from interp.report.study_tables import export_study_tables

TABLES = ("verdict_gap", "verdict_arms", "verdict_null", "verdict_damage")
FACTS_FILE = "verdict_facts.json"
BEGIN = "<!-- {key}: written by `python -m interp.report.results_md` from the tables in {dest} -->"
END = "<!-- /{key} -->"
BLOCKS = (
    "verdict",
    "full-verdict",
    "planted-verdict",
    "planted-verdict-fewer-items",
    "seed-gap",
    "step-times",
)
SEED_GAP_FILE = "seed_gap.csv"
STEP_TIMES_FILE = "step_times.csv"
STUDY_KEYS = tuple(STUDY_BLOCKS)
STUDY_TABLES_DIR = "tables"  # under --dest: the study blocks' tables


def required_files(key: str) -> tuple[str, ...]:
    """The files (relative to the block's tables folder) block ``key`` is written from."""
    if key in REQUIRED_TABLES:
        return REQUIRED_TABLES[key]
    if key == "seed-gap":
        return (SEED_GAP_FILE,)
    if key == "step-times":
        return (STEP_TIMES_FILE,)
    return (*(f"{t}.csv" for t in TABLES), FACTS_FILE)


def run_targets(run: Path, meta: dict) -> list[str]:
    """The names of the directions a verdict run removed, in the run's order.

    ``meta.json`` records them (``targets``); runs from before that record are read from
    ``null_match.json`` (one entry per target), ordered as ``--targets`` named them, a plant's
    own direction before its random control (:func:`interp.causal.plant.plant_targets`)."""
    if "targets" in meta:
        return [str(t) for t in meta["targets"]]
    match_file = run / "null_match.json"
    if not match_file.is_file():
        raise InputNotFoundError(
            f"run: {run} records no targets in {paths.META_FILE} and has no null_match.json"
        )
    names = list(json.loads(match_file.read_text()))
    named = [t for t in meta["config"]["targets"] if t in names]
    rest = sorted((n for n in names if n not in named), key=lambda n: n == "planted-random")
    return named + rest


def export_summary(run: Path, dest: Path) -> None:
    """Copy a verdict run's summary tables and facts (targets, rule threshold, split sizes,
    the warm model, provenance) into ``dest``."""
    meta_file = run / paths.META_FILE
    if not meta_file.is_file():
        raise InputNotFoundError(
            f"run: {run} has no {paths.META_FILE} (not a finished verdict run)"
        )
    meta = json.loads(meta_file.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        shutil.copyfile(run / f"{name}.csv", dest / f"{name}.csv")
    config = meta["config"]
    facts = {
        "targets": run_targets(run, meta),
        "headline_threshold_pp": config["headline_threshold_pp"],
        "n_random": config["n_random"],
        "warm": meta.get("warm"),
        "cold": meta.get("cold"),
        "model": config["model"],
        "n_derivation_items": meta["split"]["derivation"]["n_items"],
        "n_evaluation_items": meta["split"]["evaluation"]["n_items"],
        "git_commit": meta.get("git_commit"),
        "created": meta.get("created"),
        "source_run": str(run),
        "engine_check": meta.get("engine_check"),
    }
    write_json_atomic(dest / FACTS_FILE, facts, overwrite=True)


def verdict_from_tables(folder: Path) -> str:
    """The verdict sentence from committed tables, by the same rules as the run."""
    missing = [n for n in (*[f"{t}.csv" for t in TABLES], FACTS_FILE) if not (folder / n).is_file()]
    if missing:
        raise InputNotFoundError(f"{folder} lacks {', '.join(missing)}")
    t = {name: pd.read_csv(folder / f"{name}.csv") for name in TABLES}
    facts = json.loads((folder / FACTS_FILE).read_text())
    gap = t["verdict_gap"]
    headline = headline_cells(gap[gap.split == "derivation"], facts["headline_threshold_pp"])
    gap_cells = gaps(gap[gap.split == "evaluation"], headline)
    text = verdict_sentences(
        gap,
        headline,
        gap_cells,
        t["verdict_arms"],
        t["verdict_null"],
        t["verdict_damage"],
        facts["targets"],
        facts["headline_threshold_pp"],
    )
    return (
        f"{text}\n\nModel {facts['model']}, warm model {facts['warm']}; "
        f"{facts['n_derivation_items']} derivation and {facts['n_evaluation_items']} evaluation "
        f"items; {facts['n_random']} random directions per target, matched in variance, each "
        "with the fine-tune's own shift along it removed."
    )


def seed_gap_from_table(folder: Path) -> str:
    """The per-seed gap sentence from a committed ``seed_gap.csv`` (``interp seed-gap``)."""
    if not (folder / SEED_GAP_FILE).is_file():
        raise InputNotFoundError(f"{folder} lacks {SEED_GAP_FILE}")
    return seed_sentences(pd.read_csv(folder / SEED_GAP_FILE))


def _train_throughput(out: str, study: Path) -> float:
    """``tokens_per_s`` of the fine-tune run in ``out`` (its ``meta.json``; a relative ``out``,
    as the study recorded it from its root, is looked for under each folder above ``study``,
    nearest first, then under the working directory), NaN if none."""
    if not out:
        return float("nan")
    path = Path(out)
    places = [path] if path.is_absolute() else [*(p / path for p in study.resolve().parents), path]
    for folder in places:
        meta = folder / paths.META_FILE
        if meta.is_file():
            return float(json.loads(meta.read_text()).get("tokens_per_s", float("nan")))
    return float("nan")


def export_step_times(study: Path, dest: Path, preset: str) -> None:
    """The step times of a study folder's state file (``interp study``) as ``step_times.csv``:
    ``preset, step, seconds, reused, finished_at, jobs, study_seconds, train_tokens_per_s``, one
    row per step of that run (``jobs``: steps the study ran at a time; ``study_seconds``: the
    run's wall clock, NaN where the state file predates its record; ``train_tokens_per_s``: a
    fine-tune step's training throughput from its run's ``meta.json``, a gauge of the machine's
    speed during the run, NaN for other steps and where the run folder is not found)."""
    state_file = study / paths.study_state_file(preset)
    if not state_file.is_file():
        raise InputNotFoundError(
            f"run: {study} has no {state_file.name} (not a folder where `interp study --preset "
            f"{preset}` ran)"
        )
    state = json.loads(state_file.read_text())
    run = state.get("study", {})
    rows = [
        {
            "preset": preset,
            "step": step,
            "seconds": rec["seconds"],
            "reused": bool(rec["reused"]),
            "finished_at": rec["finished_at"],
            "jobs": int(rec.get("jobs", 1)),
            "study_seconds": run.get("seconds", float("nan")),
            "train_tokens_per_s": _train_throughput(rec.get("out", ""), study),
        }
        for step, rec in state["steps"].items()
    ]
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / STEP_TIMES_FILE
    old = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=list(rows[0]))
    merged = pd.concat([old[old.preset != preset], pd.DataFrame(rows)], ignore_index=True)
    merged.to_csv(out, index=False)


def step_times_from_table(folder: Path) -> str:
    """Per preset, the minutes of each step its last run computed (reused steps are named as
    such), from a committed ``step_times.csv``."""
    if not (folder / STEP_TIMES_FILE).is_file():
        raise InputNotFoundError(f"{folder} lacks {STEP_TIMES_FILE}")
    t = pd.read_csv(folder / STEP_TIMES_FILE)
    out = []
    for preset, sub in t.groupby("preset", sort=False):
        ran = sub[~sub.reused.astype(bool)]
        parts = [f"{r.step} {r.seconds / 60:.1f} min" for r in ran.itertuples()]
        reused = ", ".join(sub[sub.reused.astype(bool)].step)
        total = ran.seconds.sum() / 60
        jobs = int(sub["jobs"].max()) if "jobs" in sub and sub["jobs"].notna().any() else 1
        wall = sub["study_seconds"].iloc[0] if "study_seconds" in sub else float("nan")
        steps = f"{len(ran)} step{'s' * (len(ran) != 1)}"
        if jobs > 1:
            ending = (
                f"; {wall / 60:.1f} min of wall clock for the {steps} it computed, {jobs} "
                f"at a time (each step's minutes include the time it shared the cores; "
                f"their sum is {total:.1f} min)."
            )
        else:
            ending = f"; {total:.1f} min for the {steps} it computed."
        speed = (
            ran.dropna(subset=["train_tokens_per_s"])
            if "train_tokens_per_s" in ran
            else ran.iloc[:0]
        )
        if len(speed):
            rates = ", ".join(f"{r.train_tokens_per_s:.0f} ({r.step})" for r in speed.itertuples())
            ending += (
                f" Its fine-tunes trained at {rates} tokens/s, a gauge of the machine's speed "
                "during the run."
            )
        out.append(
            f"`interp study --preset {preset}` (run finished {sub.finished_at.max()}): "
            + "; ".join(parts)
            + (f" (reused: {reused})" if reused else "")
            + ending
        )
    return " ".join(out)


def block(folder: Path, dest_label: str, key: str = "verdict") -> str:
    """The whole marked block ``key`` for RESULTS.md."""
    body = {
        "seed-gap": seed_gap_from_table,
        "step-times": step_times_from_table,
        **STUDY_BLOCKS,
    }.get(key, verdict_from_tables)(folder)
    return f"{BEGIN.format(key=key, dest=dest_label)}\n{body}\n{END.format(key=key)}"


def replace_block(text: str, new_block: str, key: str = "verdict") -> str:
    """``text`` with its marked block ``key`` replaced (an error if the markers are missing)."""
    start = text.find(f"<!-- {key}:")
    end_marker = END.format(key=key)
    end = text.find(end_marker)
    if start < 0 or end < start:
        raise InterpError(
            f"RESULTS.md has no {key} block (expected the markers {end_marker!r} and the "
            f"'<!-- {key}: ...' line before it)"
        )
    return text[:start] + new_block + text[end + len(end_marker) :]


def main(argv: list[str] | None = None) -> int:
    """Export a run's tables (``--run``) and rewrite the block in ``--results-md``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="a finished `interp verdict` folder to export")
    parser.add_argument("--dest", type=Path, default=Path("results/embedded"))
    parser.add_argument("--results-md", type=Path, default=Path("RESULTS.md"))
    parser.add_argument(
        "--block",
        choices=(*BLOCKS, *STUDY_KEYS, "study"),
        default="verdict",
        help="study: every study block (--run: an `interp study` folder)",
    )
    parser.add_argument("--preset", default="embedded", help="step-times: the study's preset")
    args = parser.parse_args(argv)
    if args.block == "study" or args.block in STUDY_KEYS:
        tables = args.dest / STUDY_TABLES_DIR
        if args.run is not None:
            export_study_tables(args.run, tables)
        md = args.results_md.read_text()
        for key in STUDY_KEYS if args.block == "study" else (args.block,):
            md = replace_block(md, block(tables, tables.as_posix(), key), key)
        args.results_md.write_text(md)
        return 0
    if args.run is not None and args.block == "step-times":
        export_step_times(args.run, args.dest, args.preset)
    elif args.run is not None and args.block == "seed-gap":
        args.dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.run / SEED_GAP_FILE, args.dest / SEED_GAP_FILE)
    elif args.run is not None:
        export_summary(args.run, args.dest)
    md = args.results_md.read_text()
    new = block(args.dest, args.dest.as_posix(), args.block)
    args.results_md.write_text(replace_block(md, new, args.block))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
