"""The paper preset: every step carries the study's load options, the dry run prints them, a
real run of its first evaluation step on the tiny model goes through the resumable runner, and
the GPU-hour estimate says which utilisations are assumed and which were measured."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from rich.console import Console

from interp.config import ConfigError
from interp.models import DeviceOptions, LoadOptions
from interp.study import presets
from interp.study.command import (
    StudyConfig,
    load_options,
    run_study,
    study_folder,
    study_state_file,
)
from interp.study.paper_plan import (
    CalibrationError,
    PaperWorkload,
    calibrate,
    measured_utilisation,
    n_parameters,
    plan,
)
from interp.study.presets import run_slug, size_of, study_steps
from interp.study.state import STATE_FILE
from interp.tiny_models import tiny_model_folder

LOAD = LoadOptions(device="cuda:1", dtype="bfloat16", device_map="auto", load_in_4bit=True)


def fake_resolve(step_id: str) -> Path:
    """Folders that do not exist yet (a plan): adapters stay run references."""
    return Path(f"/nonexistent/{step_id}")


@pytest.fixture(scope="module")
def tiny() -> str:
    return tiny_model_folder()


def test_every_model_loading_step_of_the_paper_preset_carries_the_load_options(tiny):
    steps = study_steps("paper", model=tiny, load=LOAD)
    loading = 0
    for step in steps:
        config = step.config(fake_resolve)
        if not isinstance(config, DeviceOptions):
            assert step.words in (("reliability",), ("report",)), step.id  # they load no model
            continue
        loading += 1
        assert (config.device, config.device_map, config.load_in_4bit) == (
            "cuda:1",
            "auto",
            True,
        ), step.id
        assert config.dtype == "bfloat16", step.id
        assert config.model == tiny, step.id
    assert loading == len(steps) - 2


def test_the_paper_preset_is_paper_sized_and_names_runs_by_model(tiny):
    size = size_of("paper", tiny, LOAD)
    assert size.per_task is None and size.eval_conditions == () and size.eval_templates == ()
    assert size.mid_layer == 2 and size.patch_layers == (0, 3)  # the tiny model has 4 layers
    assert size.finetune_warm == "paper-warm-tiny-llama-4l-64d-seed0"
    steps = {s.id: s for s in study_steps("paper", model="llama-3.1-8b-instruct", load=LOAD)}
    warm = steps["01-finetune-warm"].config(fake_resolve)
    assert (warm.preset, warm.run_name) == ("paper-warm", "paper-warm-llama-3.1-8b-instruct")
    assert warm.model == "llama-3.1-8b-instruct"
    # the paper's "warm" model is the epoch-2 checkpoint, the layers come from the real shape
    sweep = steps["11-sweep"].config(fake_resolve)
    assert sweep.warm == "01-finetune-warm@2.0" and sweep.layers == (16,)
    assert run_slug("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama--llama-3.1-8b-instruct"


def test_the_paper_preset_needs_a_model_and_the_others_refuse_one(tiny):
    with pytest.raises(ConfigError, match="--model"):
        size_of("paper")
    with pytest.raises(ConfigError, match="--model"):
        StudyConfig(preset="paper")
    with pytest.raises(ConfigError, match="paper preset"):
        StudyConfig(preset="tiny", model=tiny)
    with pytest.raises(ConfigError, match=r"config\.json"):
        presets.model_shape("/nonexistent/model-folder")


def test_load_defaults_per_preset():
    assert load_options(StudyConfig(preset="embedded")) is None  # each command's own defaults
    paper = StudyConfig(preset="paper", model="llama-3.1-8b-instruct")
    # the paper's pairs keep one copy of the weights (adapters run as layers)
    want = LoadOptions(device="cuda", dtype="bfloat16", merge_adapters=False)
    assert load_options(paper, gpus=1) == want
    assert load_options(paper, gpus=4).device_map == "auto"
    off = dataclasses.replace(paper, device_map="none")
    assert load_options(off, gpus=4).device_map is None
    cpu = load_options(StudyConfig(preset="tiny", dtype="bfloat16"))
    assert cpu == LoadOptions(device="cpu", dtype="bfloat16")
    assert study_folder(paper).name == "paper-llama-3.1-8b-instruct"


def test_dry_run_prints_the_plan_and_steps_with_dtype_and_device(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    console = Console(width=400, record=True)
    config = StudyConfig(preset="paper", model=tiny, device="cpu", dtype="float32", dry_run=True)
    assert run_study(config, console) == 0
    text = console.export_text()
    assert "GPU hours" in text and "estimate" in text and "assumed utilisation" in text
    lines = [line for line in text.splitlines() if "interp eval " in line]
    assert len(lines) == 4
    assert all("--device cpu" in line and "--dtype float32" in line for line in lines)
    assert "interp finetune --device cpu --no-merge-adapters --preset paper-warm" in text
    assert not (tmp_path / "study").exists()  # a dry run writes nothing


def test_a_real_paper_run_goes_through_the_resumable_runner(tiny, tmp_path, monkeypatch):
    """Step 03 of the paper preset on the tiny model, run for real with its load options (its
    item counts cut so that it takes seconds), then reused on the rerun."""
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    real = presets.paper_size

    def small(model: str, load: LoadOptions) -> presets.StudySize:
        return dataclasses.replace(
            real(model, load),
            per_task=1,
            eval_conditions=("unmodified",),
            eval_templates=("no_belief", "incorrect"),
            n_boot=20,
        )

    monkeypatch.setattr(presets, "paper_size", small)
    config = StudyConfig(preset="paper", model=tiny, device="cpu", dtype="bfloat16", only=("03",))
    console = Console(width=200, record=True)
    assert run_study(config, console) == 0
    folder = tmp_path / "study" / "paper-tiny-llama-4l-64d-seed0"
    state = json.loads((folder / STATE_FILE).read_text())["steps"]
    assert list(state) == ["03-eval-original"]
    assert "--dtype bfloat16" in state["03-eval-original"]["command"]
    meta = json.loads((Path(state["03-eval-original"]["out"]) / "meta.json").read_text())
    assert meta["config"]["dtype"] == "bfloat16" and meta["config"]["device"] == "cpu"
    assert run_study(config, console) == 0
    assert "reusing" in console.export_text()


def _rows(path: Path, rows: list[str]) -> Path:
    header = "shape\tcheck\tstatus\tseconds\ttokens_per_s\tpeak_gib\tdetail"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_calibration_from_gpu_check_rows(tmp_path):
    assert calibrate().sources == {}  # no file: every stage assumed
    n = n_parameters("llama-3.1-8b-instruct")
    # a forward at 40% MFU and a checkpointed LoRA step at 20% (made-up test rows)
    fwd = 0.40 * 989e12 / (2 * n)
    lora = 0.20 * 989e12 / (6 * n)
    rows = _rows(
        tmp_path / "gpu.tsv",
        [
            f"llama-3.1-8b-instruct\tforward\tPASS\t0.1\t{fwd:.0f}\t20\tok",
            f"llama-3.1-8b-instruct\tlora\tPASS\t0.1\t{3 * lora:.0f}\t30\tok",
            f"llama-3.1-8b-instruct\tlora_ckpt\tPASS\t0.1\t{lora:.0f}\t25\tok",
            f"qwen2.5-32b-instruct[16L]\tforward\tFAIL\t0\t{10 * fwd:.0f}\t0\tbad",
        ],
    )
    cal = calibrate(PaperWorkload(), rows)
    assert cal.workload.prefill_mfu == pytest.approx(0.40, abs=1e-3)
    assert cal.workload.train_mfu == pytest.approx(0.20, abs=1e-3)  # lora_ckpt wins over lora
    assert cal.workload.decode_mfu == PaperWorkload().decode_mfu
    assert "calibrated from" in cal.sources["train"] and "decode" not in cal.sources
    assert "decode MFU 0.050 (assumed utilisation)" in cal.describe()
    slower = plan(cal.workload)["gpu_hours_train"].iloc[0]
    assert slower > plan()["gpu_hours_train"].iloc[0]  # 20% < the assumed 35%
    # a depth-cut shape counts only its layers
    cut = _rows(tmp_path / "cut.tsv", [f"llama-3.1-70b-instruct[8L]\tforward\tPASS\t1\t{fwd}\t1\t"])
    measured = measured_utilisation(cut)["prefill"][0]
    assert measured == pytest.approx(2 * n_parameters("llama-3.1-70b-instruct", 8) * fwd / 989e12)
    with pytest.raises(CalibrationError, match="no passing"):
        calibrate(rows_file=_rows(tmp_path / "none.tsv", ["tiny-llama\tforward\tPASS\t1\t9\t0\t"]))
    other = tmp_path / "other.tsv"
    other.write_text("a\tb\n1\t2\n")
    with pytest.raises(CalibrationError, match="not a gpu_check TSV"):
        calibrate(rows_file=other)


def test_the_full_verdict_preset_runs_in_the_embedded_folder_with_its_own_state(tmp_path):
    from interp.study.state import STATE_FILE, StudyState

    full = StudyConfig(preset="embedded-full-verdict")
    assert study_folder(full) == study_folder(StudyConfig(preset="embedded"))
    assert study_state_file(full) == "state-embedded-full-verdict.json"
    assert study_state_file(StudyConfig(preset="embedded")) == STATE_FILE
    # the two presets' records live side by side in one folder
    step = tmp_path / "17-verdict-x"
    step.mkdir()
    (step / "meta.json").write_text("{}")
    StudyState.load(tmp_path).record("17-verdict", step, "interp verdict", 60.0, False)
    other = StudyState.load(tmp_path, "state-embedded-full-verdict.json")
    other.record("17-verdict", step, "interp verdict --per-task-evaluation 0", 120.0, False)
    assert StudyState.load(tmp_path).steps["17-verdict"]["seconds"] == 60.0
    again = StudyState.load(tmp_path, "state-embedded-full-verdict.json")
    assert again.steps["17-verdict"]["seconds"] == 120.0


def test_the_embedded_sweep_measures_its_null_at_a_subset_of_its_alphas():
    (sweep,) = [s for s in study_steps("embedded") if s.id == "11-sweep"]
    config = sweep.config(fake_resolve)
    assert config.alphas == (-1.0, -0.5, 0.5, 1.0)
    assert config.null_alphas == (-1.0, 1.0)
    assert config.warmth_random == 2
    with pytest.raises(ConfigError, match=r"null_alphas \[0\.75\] are not among"):
        dataclasses.replace(config, null_alphas=(1.0, 0.75))


def test_a_resumed_study_keeps_the_time_each_step_took_to_compute(tmp_path):
    from interp.study.state import StudyState

    step = tmp_path / "08-directions-x"
    step.mkdir()
    (step / "meta.json").write_text('{"a": 1}')
    StudyState.load(tmp_path).record("08-directions", step, "interp directions", 187.0, False)
    resumed = StudyState.load(tmp_path)
    resumed.record("08-directions", step, "interp directions", 0.0, True)
    kept = StudyState.load(tmp_path).steps["08-directions"]
    assert (kept["seconds"], kept["reused"]) == (187.0, False)
    # a result that changed since (another meta.json) is not the one that was timed
    (step / "meta.json").write_text('{"a": 2}')
    StudyState.load(tmp_path).record("08-directions", step, "interp directions", 0.0, True)
    assert StudyState.load(tmp_path).steps["08-directions"]["reused"] is True
