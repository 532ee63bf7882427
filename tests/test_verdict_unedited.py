"""The verdict's direction-free rows travel between two study steps: ``interp verdict-unedited``
writes them, ``interp verdict --unedited`` reads them only when they were measured with its own
models, split and settings (the protocol-level equality is in test_causal_protocol.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from interp.artifacts import writing_result
from interp.commands.verdict import VerdictConfig
from interp.commands.verdict_unedited import FILES, VerdictUneditedConfig, read_unedited
from interp.config import ConfigError
from interp.study.presets import study_steps


def _folder(path: Path, config: VerdictUneditedConfig) -> Path:
    rows = pd.DataFrame(
        {
            "prompt_id": ["0012", "7"],
            "item_id": ["0012", "7"],
            "error": [1, 0],
            "agrees_with_user": [float("nan"), 1.0],
            "model": ["original", "warm"],
            "intervention": ["none", "none"],
        }
    )
    with writing_result(path, stage="verdict-unedited", config=config) as tmp:
        for file in FILES.values():
            rows.to_csv(tmp / file, index=False)
    return path


def test_rows_of_the_same_config_are_read_with_their_ids_as_text(tmp_path):
    config = VerdictUneditedConfig(per_task_evaluation=10)
    folder = _folder(tmp_path / "u", config)
    rows = read_unedited(folder, config)
    assert list(rows.derivation.prompt_id) == ["0012", "7"]  # not the numbers 12 and 7
    assert rows.generation.agrees_with_user.isna().iloc[0]
    # a folder's own ``out`` does not count as a difference
    read_unedited(folder, VerdictUneditedConfig(per_task_evaluation=10, out=str(folder)))


def test_a_folder_measured_otherwise_or_unfinished_is_refused(tmp_path):
    folder = _folder(tmp_path / "u", VerdictUneditedConfig(per_task_evaluation=10))
    with pytest.raises(ConfigError, match="per_task_evaluation: folder 10, this run 38"):
        read_unedited(folder, VerdictUneditedConfig(per_task_evaluation=38))
    with pytest.raises(ConfigError, match="cold: folder 'embedded-cold', this run None"):
        read_unedited(folder, VerdictUneditedConfig(per_task_evaluation=10, cold=None))
    (folder / FILES["generation"]).unlink()
    with pytest.raises(ConfigError, match="not a finished `interp verdict-unedited` folder"):
        read_unedited(folder, VerdictUneditedConfig(per_task_evaluation=10))


def test_the_verdict_names_the_unedited_config_it_needs():
    verdict = VerdictConfig(
        warm="w", cold="c", per_task_evaluation=0, generation_tokens=32, dtype="bfloat16"
    )
    unedited = verdict.unedited_config()
    assert (unedited.warm, unedited.cold, unedited.per_task_evaluation) == ("w", "c", 0)
    assert (unedited.generation_tokens, unedited.dtype) == (32, "bfloat16")
    with pytest.raises(ConfigError, match="cannot be given with --plant"):
        VerdictConfig(plant="finetune", unedited="/some/folder")


def test_the_study_measures_the_unedited_rows_beside_the_directions():
    def resolve(step_id: str) -> Path:
        return Path(f"/nonexistent/{step_id}")

    steps = {s.id: s for s in study_steps("embedded")}
    unedited, verdict = steps["12-verdict-unedited"], steps["17-verdict"]
    assert "08-directions" not in unedited.needs and "12-verdict-unedited" in verdict.needs
    config = verdict.config(resolve)
    assert config.unedited == str(resolve("12-verdict-unedited"))
    assert unedited.config(resolve) == config.unedited_config()
