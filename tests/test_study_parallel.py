"""Steps run several at a time, each in a process of its own: the order in which ready steps
start, how many run at once, what a failed step leaves, and that a step computes there what it
computes in the sequential study."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from interp.commands.registry import config_class
from interp.models import LoadOptions
from interp.study.command import StudyConfig, jobs_for, run_study
from interp.study.parallel import LOG_FOLDER, priorities, run_steps_parallel
from interp.study.pipeline import StudyError
from interp.study.presets import study_steps
from interp.study.state import STATE_FILE
from interp.study.steps import Step


def _step(step_id: str, cost: float, needs: tuple[str, ...] = ()) -> Step:
    return Step(step_id, step_id, ("eval",), lambda resolve: None, (), needs=needs, cost=cost)


def test_the_costliest_chain_behind_a_step_starts_it_first():
    steps = [
        _step("a", 5.0),
        _step("b", 4.0),
        _step("c", 1.0),
        _step("d", 4.0, needs=("a",)),
        _step("v", 16.0, needs=("a", "b", "d")),
        _step("s", 3.0, needs=("d",)),
        _step("r", 0.5, needs=("v", "s", "c")),
    ]
    rank = priorities(steps)
    assert rank["r"] == 0.5 and rank["v"] == 16.5 and rank["s"] == 3.5
    assert rank["d"] == 4.0 + 16.5  # the verdict behind it, not the shorter chain
    assert rank["a"] == 5.0 + 20.5 and rank["b"] == 4.0 + 16.5 and rank["c"] == 1.5
    # on the embedded preset the verdict outranks every step that could run beside it
    embedded = priorities(study_steps("embedded"))
    after_directions = {"09", "10", "11", "13", "14", "15", "16", "03", "04", "05", "06"}
    verdict = embedded["17-verdict"]
    assert all(embedded[s] < verdict for s in embedded if s[:2] in after_directions)


def test_two_steps_at_a_time_only_for_the_embedded_presets_on_a_cpu():
    embedded = StudyConfig(preset="embedded")
    assert jobs_for(embedded, None, cores=2) == 2
    assert jobs_for(embedded, None, cores=1) == 1
    assert jobs_for(embedded, LoadOptions(device="cuda"), cores=16) == 1
    assert jobs_for(StudyConfig(preset="tiny"), None, cores=2) == 1
    assert jobs_for(StudyConfig(preset="tiny", jobs=3), None, cores=2) == 3
    with pytest.raises(Exception, match="jobs must be >= 0"):
        StudyConfig(jobs=-1)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    env = pytest.MonkeyPatch()
    env.setenv("INTERP_ARTIFACTS", str(root / "artifacts"))
    env.setenv("INTERP_PLOTS", str(root / "plots"))
    yield root
    env.undo()


def test_steps_in_processes_of_their_own_compute_what_the_sequential_study_does(artifacts):
    sequential, parallel = artifacts / "sequential", artifacts / "parallel"
    config = StudyConfig(preset="tiny", only=("07",), out=str(sequential))
    assert run_study(config, Console(width=100)) == 0
    console = Console(width=100, record=True)
    two = StudyConfig(preset="tiny", only=("07",), out=str(parallel), jobs=2)
    assert run_study(two, console) == 0
    seq = json.loads((sequential / STATE_FILE).read_text())
    par = json.loads((parallel / STATE_FILE).read_text())
    assert list(par["steps"]) != [] and set(par["steps"]) == set(seq["steps"])
    assert par["study"]["jobs"] == 2 and seq["study"]["jobs"] == 1
    # the fine-tunes write their own run folders: the second study reuses them
    assert par["steps"]["01-finetune-warm"]["reused"]
    ran = [s for s, r in par["steps"].items() if not r["reused"]]
    assert {"03-eval-original", "06-eval-warm-sysprompt", "07-reliability"} <= set(ran)
    for step in ran:
        assert par["steps"][step]["jobs"] == 2
        assert (parallel / LOG_FOLDER / f"{step}.log").is_file()
        a = Path(seq["steps"][step]["out"])
        b = Path(par["steps"][step]["out"])
        if step != "07-reliability":  # its config names the study's own folders
            assert a.name == b.name  # the same config, so the same folder name
        for name in ("results.csv", "error_by_task.csv"):
            if (a / name).exists():
                pd.testing.assert_frame_equal(
                    pd.read_csv(a / name), pd.read_csv(b / name), rtol=1e-5
                )
    text = console.export_text()
    assert "running up to 2 steps at a time" in text and "07-reliability finished in" in text


@pytest.mark.parametrize("fork", [True, False])
def test_a_failed_step_names_itself_and_shows_its_log(artifacts, tmp_path, fork):
    """Forked from the preloaded server or started as a fresh interpreter, a failed step's
    status and log reach the parent."""
    EvalConfig = config_class(("eval",))
    missing = str(tmp_path / "no-such-adapter")

    def build(resolve):  # type: ignore[no-untyped-def]
        return EvalConfig(model="tiny-does-not-matter", adapter=missing, per_task=1)

    bad = Step("03-eval-broken", "a step whose adapter is missing", ("eval",), build, ("x.csv",))
    with pytest.raises(StudyError, match=r"step 03-eval-broken exited with status \d"):
        run_steps_parallel([bad], tmp_path / "study", Console(width=100), jobs=2, fork=fork)
    log = tmp_path / "study" / LOG_FOLDER / "03-eval-broken.log"
    assert log.is_file() and "no-such-adapter" in log.read_text()
