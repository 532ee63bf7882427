"""RESULTS.md's blocks are what the code writes from the committed summary tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interp.errors import InterpError
from interp.report.results_md import (
    END,
    FACTS_FILE,
    STUDY_KEYS,
    block,
    export_summary,
    replace_block,
    required_files,
    run_targets,
    verdict_from_tables,
)
from interp.report.study_blocks import PENDING

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(
    r"^<!-- (?P<key>[a-z-]+): written by `python -m interp\.report\.results_md` from the tables "
    r"in (?P<folder>\S+) -->\n(?P<body>.*?)\n<!-- /(?P=key) -->",
    re.M | re.S,
)


def marked_blocks(text: str) -> dict[str, tuple[str, str]]:
    """Every marked block of a RESULTS.md text: key -> (its tables folder, its body)."""
    return {m["key"]: (m["folder"], m["body"]) for m in MARKED.finditer(text)}


def check_block(text: str, key: str, root: Path) -> None:
    """Fail unless block ``key`` of ``text`` equals what the code writes from the tables in the
    folder its marker names (relative to ``root``). A pending block passes only while none of
    its tables is committed; a block whose tables are missing fails."""
    folder, body = marked_blocks(text)[key]
    if body == PENDING.format(key=key):
        present = [f for f in required_files(key) if (root / folder / f).is_file()]
        assert not present, (
            f"RESULTS.md's {key} block is pending, but its tables are committed in {folder} "
            f"({', '.join(present)}): rewrite it with python -m interp.report.results_md "
            f"--block {key} --dest {Path(folder).parent.as_posix()}"
        )
        return
    expected = block(root / folder, folder, key)
    assert expected in text, f"RESULTS.md's {key} block differs from what the committed tables give"


RESULTS_TEXT = (ROOT / "RESULTS.md").read_text()


@pytest.mark.parametrize("key", sorted(marked_blocks(RESULTS_TEXT)))
def test_results_md_blocks_match_the_committed_tables(key):
    check_block(RESULTS_TEXT, key, ROOT)


def test_results_md_has_every_study_block_once():
    keys = [m["key"] for m in MARKED.finditer(RESULTS_TEXT)]
    assert {"verdict", "step-times", *STUDY_KEYS} <= set(keys)
    assert len(keys) == len(set(keys)), f"a block appears twice: {keys}"


def test_a_pending_block_fails_once_its_tables_are_committed(tmp_path):
    label = "results/embedded/tables"
    begin = (
        "<!-- patching: written by `python -m interp.report.results_md` from the tables in "
        f"{label} -->"
    )
    pending = f"# R\n\n{begin}\n{PENDING.format(key='patching')}\n<!-- /patching -->\n"
    check_block(pending, "patching", tmp_path)  # no tables yet: pending is allowed
    rows = [
        {
            "layer": 0,
            "positions": "last",
            "patch": "original->warm",
            "recovered": 0.5,
            "ci_low": -1.0,
            "ci_high": 2.0,
            "n_items": 16,
        }
    ]
    (tmp_path / label / "13-patch").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / label / "13-patch" / "patching.csv", index=False)
    with pytest.raises(AssertionError, match="pending, but its tables are committed"):
        check_block(pending, "patching", tmp_path)
    written = replace_block(pending, block(tmp_path / label, label, "patching"), "patching")
    check_block(written, "patching", tmp_path)
    with pytest.raises(AssertionError, match="differs"):
        check_block(written.replace("+0.50 [", "+0.40 ["), "patching", tmp_path)
    (tmp_path / label / "13-patch" / "patching.csv").unlink()
    with pytest.raises(InterpError, match=r"patching\.csv is missing"):
        check_block(written, "patching", tmp_path)


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


def test_the_exported_targets_are_the_directions_the_run_removed(tmp_path):
    """A planted run removes planted-<name> and planted-random, not the --targets it was given:
    the facts name what the run removed, from meta.json or (older runs) null_match.json."""
    config = {"targets": ["finetune", "persona"]}
    (tmp_path / "null_match.json").write_text(
        json.dumps({"planted-random": {}, "planted-sycophancy": {}})
    )
    assert run_targets(tmp_path, {"config": config}) == ["planted-sycophancy", "planted-random"]
    (tmp_path / "null_match.json").write_text(json.dumps({"persona": {}, "finetune": {}}))
    assert run_targets(tmp_path, {"config": config}) == ["finetune", "persona"]
    meta = {"config": config, "targets": ["persona"]}
    assert run_targets(tmp_path, meta) == ["persona"]
    (tmp_path / "null_match.json").unlink()
    with pytest.raises(FileNotFoundError, match="records no targets"):
        run_targets(tmp_path, {"config": config})


def test_negative_zero_is_not_written():
    from interp.causal.verdict_text import _ci, _pp

    assert _pp(-1e-18) == "+0.0 pp" and _ci(-1e-18, 0.1) == "[+0.0, +10.0]"


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


def test_step_times_of_a_study_that_ran_two_steps_at_a_time(tmp_path):
    from interp.report.results_md import export_step_times, step_times_from_table

    study = tmp_path / "study"
    study.mkdir()
    old = {"17-verdict": {"seconds": 600.0, "reused": False, "finished_at": "2026-12-02T05:00"}}
    (study / "state-embedded-full-verdict.json").write_text(json.dumps({"steps": old}))
    export_step_times(study, tmp_path / "dest", "embedded-full-verdict")  # before jobs existed
    run = tmp_path / "finetune" / "warm"  # recorded relative to the study's root
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"tokens_per_s": 66.4}))
    steps = {
        "01-finetune-warm": {
            "seconds": 420.0,
            "reused": False,
            "finished_at": "T1",
            "jobs": 2,
            "out": "finetune/warm",
        },
        "02-finetune-cold": {"seconds": 300.0, "reused": False, "finished_at": "T2", "jobs": 2},
    }
    state = {"steps": steps, "study": {"seconds": 450.0, "jobs": 2}}
    (study / "state.json").write_text(json.dumps(state))
    export_step_times(study, tmp_path / "dest", "embedded")
    text = step_times_from_table(tmp_path / "dest")
    assert "01-finetune-warm 7.0 min; 02-finetune-cold 5.0 min" in text
    assert "7.5 min of wall clock for the 2 steps it computed, 2 at a time" in text
    assert "their sum is 12.0 min" in text
    assert "Its fine-tunes trained at 66 (01-finetune-warm) tokens/s" in text
    assert "17-verdict 10.0 min; 10.0 min for the 1 step it computed." in text
    assert text.count("trained at") == 1  # the other run has no fine-tune throughput


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
    with pytest.raises(InterpError, match=r"has no state\.json"):
        export_step_times(tmp_path / "dest", tmp_path / "x", "paper")


def test_the_steering_block_says_where_the_null_band_was_not_measured(tmp_path):
    from interp.figures.tables import SCHEMAS
    from interp.report.study_mechanism_blocks import steering

    rows = []
    for direction, alpha, band in (
        ("none", 0.0, (np.nan, np.nan)),
        ("finetune", -1.0, (0.30, 0.50)),
        ("finetune", -0.25, (np.nan, np.nan)),
        ("finetune", 1.0, (0.30, 0.50)),
    ):
        for metric, mean in (("error", 0.6), ("p_agree", 0.4)):
            rows.append(
                {
                    "direction": direction,
                    "layer": -1 if direction == "none" else 15,
                    "alpha": alpha,
                    "metric": metric,
                    "mean": mean,
                    "ci_low": mean - 0.1,
                    "ci_high": mean + 0.1,
                    "null_low": band[0],
                    "null_high": band[1],
                }
            )
    (tmp_path / "11-sweep").mkdir()
    table = pd.DataFrame(rows, columns=list(SCHEMAS["steering_sweep"]))
    table.to_csv(tmp_path / "11-sweep" / "steering_sweep.csv", index=False)
    text = steering(tmp_path)
    assert "measured at alpha -1, +1 only; at -0.25 no setting can be marked" in text
    # error 0.6 lies above the band at -1 and +1 (marked), and is not marked at -0.25
    assert "finetune at layer 15, alpha -1: " in text and "alpha -0.25: " not in text
