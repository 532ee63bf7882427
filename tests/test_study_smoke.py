"""The whole study on the tiny model: every step runs, writes what it promises, and reruns reuse
it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from interp.study.command import StudyConfig, run_study
from interp.study.presets import study_steps
from interp.study.state import STATE_FILE

PAPER_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "warm_ai_2025"

# meta.json keys every result folder must carry (provenance), beyond what each stage adds
META_KEYS = {"versions", "created"}
STAGE_META_KEYS = {
    "01-finetune-warm": {
        "base_weights_hash",
        "train_data_hash",
        "final_checkpoint",
        "tokens_per_s",
    },
    "03-eval-original": {"config", "prompts_sha256", "weights_hash"},
    "07-reliability": {"inputs", "baseline"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    env = pytest.MonkeyPatch()
    env.setenv("INTERP_ARTIFACTS", str(root / "artifacts"))
    env.setenv("INTERP_PLOTS", str(root / "plots"))
    paper = str(PAPER_DATA) if PAPER_DATA.is_dir() else None
    console = Console(width=120, record=True)
    assert (
        run_study(StudyConfig(preset="tiny", paper_data=paper, out=str(root / "study")), console)
        == 0
    )
    yield root / "study", paper, console
    env.undo()


def test_every_step_writes_its_outputs_and_meta(study):
    folder, paper, _ = study
    state = json.loads((folder / STATE_FILE).read_text())["steps"]
    steps = study_steps("tiny", paper)
    assert [s.id for s in steps] == list(state)
    for step in steps:
        out = Path(state[step.id]["out"])
        for name in (*step.outputs, "meta.json"):
            assert (out / name).exists(), f"{step.id}: {name} missing in {out}"
        meta = json.loads((out / "meta.json").read_text())
        missing = (META_KEYS | STAGE_META_KEYS.get(step.id, set())) - set(meta)
        assert not missing, f"{step.id}: meta.json lacks {sorted(missing)}"
        assert state[step.id]["meta_sha256"] and len(state[step.id]["meta_sha256"]) == 64


def test_report_has_every_figure_and_table(study):
    folder, paper, _ = study
    state = json.loads((folder / STATE_FILE).read_text())["steps"]
    report = Path(state["99-report"]["out"])
    html = (report / "report.html").read_text()
    figures = {
        "warmth_by_epoch",
        "error_by_task",
        "sycophancy_scatter",
        "direction_cosines",
        "probe_auroc",
        "steering_dose_response",
        "patching",
        "sae_decomposition",
        "sae_interventions",
        "verdict_gap",
        "verdict_null",
        "verdict_damage",
    }
    if paper:
        figures |= {"paper_reliability_warm", "paper_warmth", "paper_benchmarks"}
    for fig in figures:
        assert (report / "figures" / f"{fig}.html").is_file(), fig
    assert "verdict" in html.lower()
    assert (report / "report.md").is_file() and (report / "appendix.tex").is_file()
    assert list((report / "tables").glob("*.tex"))


def test_second_run_reuses_every_step(study):
    folder, paper, _ = study
    before = json.loads((folder / STATE_FILE).read_text())["steps"]
    console = Console(width=120, record=True)
    assert run_study(StudyConfig(preset="tiny", paper_data=paper, out=str(folder)), console) == 0
    assert console.export_text().count(": reusing ") == len(before)
    # the state still says how long each step took when it was computed
    assert json.loads((folder / STATE_FILE).read_text())["steps"] == before


def test_no_evaluated_item_derived_anything(study):
    """On the default study path, every item that derives a direction, a label or the SAE is on
    the derivation side of the split, and every item a causal step evaluates is on the other."""
    import pandas as pd

    from interp.data.split import side_of

    folder, _, _ = study
    state = json.loads((folder / STATE_FILE).read_text())["steps"]

    def items(step: str, csv: str) -> set[str]:
        return set(pd.read_csv(Path(state[step]["out"]) / csv)["item_id"].astype(str))

    derived = items("08-directions", "sycophancy_labels.csv")
    evaluated = (
        items("16-sae-intervene", "per_prompt.csv")
        | items("17-verdict", "per_prompt.csv")
    )
    assert derived and evaluated
    assert derived.isdisjoint(evaluated)
    assert {side_of(i) for i in derived} == {"derivation"}
    assert {side_of(i) for i in evaluated} == {"evaluation"}
    meta = json.loads((Path(state["17-verdict"]["out"]) / "meta.json").read_text())
    assert set(meta["split"]["derivation"]["item_ids"]).isdisjoint(
        meta["split"]["evaluation"]["item_ids"]
    )
    assert items("17-verdict", "per_prompt.csv") <= set(meta["split"]["evaluation"]["item_ids"])
    # the run names the directions it removed (what the exported facts quote)
    assert meta["targets"] and set(meta["targets"]) == set(
        json.loads((Path(state["17-verdict"]["out"]) / "null_match.json").read_text())
    )
    # where its time went, phase by phase, travels with it
    phases = meta["phase_seconds"]
    assert phases[-1]["phase"] == "total" and len(phases) > 5
    assert sum(p["seconds"] for p in phases[:-1]) <= phases[-1]["seconds"] + 0.1
