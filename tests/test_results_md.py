"""RESULTS.md's verdict block is what the code writes from the committed summary tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from interp.errors import InterpError
from interp.report.results_md import (
    END,
    FACTS_FILE,
    block,
    export_summary,
    replace_block,
    verdict_from_tables,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("key", "folder"), [("verdict", "embedded"), ("step-times", "embedded")])
def test_results_md_blocks_match_the_committed_tables(key, folder):
    text = (ROOT / "RESULTS.md").read_text()
    expected = block(ROOT / "results" / folder, f"results/{folder}", key)
    assert expected in text, f"RESULTS.md's {key} block differs from what the committed tables give"


def _tables(folder: Path) -> None:
    gap = pd.DataFrame(
        [
            {
                "split": s,
                "contrast": "warm - original",
                "condition": "neutral",
                "task": "all",
                "measure": "error",
                "n_items": 40,
                "gap": g,
                "gap_low": lo,
                "gap_high": hi,
                "p_value": 0.5,
                "q_value": 0.5,
            }
            for s, g, lo, hi in (
                ("derivation", -0.01, -0.05, 0.03),
                ("evaluation", 0.02, -0.02, 0.06),
            )
        ]
    )
    gap.to_csv(folder / "verdict_gap.csv", index=False)
    for name in ("verdict_arms", "verdict_null", "verdict_damage"):
        pd.DataFrame({"arm": []}).to_csv(folder / f"{name}.csv", index=False)
    (folder / FACTS_FILE).write_text(
        json.dumps(
            {
                "targets": ["finetune"],
                "headline_threshold_pp": 0.0,
                "n_random": 20,
                "warm": "w",
                "model": "m",
                "n_derivation_items": 40,
                "n_evaluation_items": 40,
            }
        )
    )


def test_the_block_round_trips_and_says_no_gap(tmp_path):
    _tables(tmp_path)
    text = verdict_from_tables(tmp_path)
    assert "no cell carries a headline" in text and "claims neither" in text
    end = END.format(key="verdict")
    md = "# Results\n\nbefore\n<!-- verdict: old -->\nold words\n" + end + "\nafter\n"
    new = replace_block(md, block(tmp_path, "x"))
    assert new.startswith("# Results\n\nbefore\n<!-- verdict: written by") and new.endswith(
        end + "\nafter\n"
    )
    assert "old words" not in new and replace_block(new, block(tmp_path, "x")) == new
    with pytest.raises(InterpError, match="no verdict block"):
        replace_block("# Results\n", block(tmp_path, "x"))
    planted = block(tmp_path, "y", "planted-verdict")
    both = new + "\n<!-- planted-verdict: old -->\nold\n<!-- /planted-verdict -->\n"
    replaced = replace_block(both, planted, "planted-verdict")
    assert planted in replaced and replaced.startswith(new), "the other block is untouched"


def test_export_needs_a_finished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        export_summary(tmp_path, tmp_path / "dest")


def test_seed_gap_sentence_names_every_seed_and_counts_cis_above_zero(tmp_path):
    from interp.report.results_md import seed_gap_from_table

    rows = [
        {
            "split": "evaluation",
            "contrast": "warm - original",
            "condition": "neutral",
            "task": "all",
            "measure": "error",
            "n_items": 152,
            "gap": g,
            "gap_low": lo,
            "gap_high": hi,
            "q_value": q,
            "seed": seed,
        }
        for seed, g, lo, hi, q in ((0, 0.05, 0.01, 0.09, 0.04), (1, 0.02, -0.02, 0.06, 0.5))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "seed_gap.csv", index=False)
    text = seed_gap_from_table(tmp_path)
    assert "seed 0 +5.0 pp [+1.0, +9.0]" in text and "seed 1 +2.0 pp" in text
    assert "CI above zero in 1 of 2 seeds" in text and "n = 152 items" in text
    with pytest.raises(FileNotFoundError, match=r"seed_gap\.csv"):
        seed_gap_from_table(tmp_path / "none")


def test_step_times_round_trip_from_a_study_state(tmp_path):
    from interp.report.results_md import export_step_times, step_times_from_table

    study = tmp_path / "study"
    study.mkdir()
    steps = {
        "08-directions": {"seconds": 0.0, "reused": True, "finished_at": "2026-12-02T04:00:00"},
        "17-verdict": {"seconds": 900.0, "reused": False, "finished_at": "2026-12-02T04:15:00"},
    }
    (study / "state.json").write_text(json.dumps({"steps": steps}))
    export_step_times(study, tmp_path / "dest", "embedded")
    export_step_times(study, tmp_path / "dest", "embedded")  # replaces the preset's rows
    text = step_times_from_table(tmp_path / "dest")
    assert text.count("17-verdict 15.0 min") == 1 and "(reused: 08-directions)" in text
    assert "15.0 min for the 1 step it computed" in text


def test_step_times_of_a_preset_run_in_another_presets_folder(tmp_path):
    from interp.report.results_md import export_step_times, step_times_from_table

    study = tmp_path / "study"
    study.mkdir()
    own = {"17-verdict": {"seconds": 600.0, "reused": False, "finished_at": "2026-12-02T05:00"}}
    full = {"17-verdict": {"seconds": 1800.0, "reused": False, "finished_at": "2026-12-02T06:00"}}
    (study / "state.json").write_text(json.dumps({"steps": own}))
    (study / "state-embedded-full-verdict.json").write_text(json.dumps({"steps": full}))
    export_step_times(study, tmp_path / "dest", "embedded")
    export_step_times(study, tmp_path / "dest", "embedded-full-verdict")
    text = step_times_from_table(tmp_path / "dest")
    assert "--preset embedded` (run finished 2026-12-02T05:00): 17-verdict 10.0 min" in text
    assert (
        "--preset embedded-full-verdict` (run finished 2026-12-02T06:00): 17-verdict 30.0" in text
    )
    with pytest.raises(InterpError, match=r"neither state\.json nor state-paper\.json"):
        export_step_times(tmp_path / "dest", tmp_path / "x", "paper")
