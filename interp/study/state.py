"""The study's progress record: which steps finished, where their results are, and their hashes.

``state.json`` lives in the preset's study folder (a preset that shares another preset's folder,
reusing its steps, keeps its own ``state-<preset>.json`` there:
:func:`interp.paths.study_state_file`). A step counts as done when its folder holds
``meta.json`` and every output it promises; the state file records the command line, the
sha256 of the step's ``meta.json`` (the hash later steps cite as their input) and the seconds it
took. It is rewritten atomically after each step, so a killed
study resumes at the first unfinished step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp import paths
from interp.artifacts import sha256_file, write_json_atomic

STATE_FILE = paths.STUDY_STATE_FILE


def step_done(folder: Path, outputs: tuple[str, ...]) -> bool:
    """Whether ``folder`` holds ``meta.json`` and every promised output."""
    meta = folder / paths.META_FILE
    return meta.is_file() and all((folder / name).exists() for name in outputs)


@dataclass
class StudyState:
    """Finished steps of one preset (``steps``: id -> record)."""

    folder: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_name: str = STATE_FILE
    study: dict[str, Any] = field(default_factory=dict)  # the latest run: seconds, jobs

    @classmethod
    def load(cls, folder: Path, file_name: str = STATE_FILE) -> StudyState:
        path = folder / file_name
        if not path.is_file():
            return cls(folder, file_name=file_name)
        data = json.loads(path.read_text())
        return cls(folder, dict(data.get("steps", {})), file_name, dict(data.get("study", {})))

    def record(
        self,
        step_id: str,
        out: Path,
        command: str,
        seconds: float,
        reused: bool,
        jobs: int = 1,
    ) -> None:
        """Note a finished step and write the state file atomically. ``jobs``: how many steps
        the study ran at a time (its ``seconds`` are then shared with other steps' work).

        A reused step whose result this state file already records as computed (same folder,
        same ``meta.json`` hash) keeps that record: a study resumed after a stop, or run again,
        still says how long each of its steps took to compute."""
        meta = out / paths.META_FILE
        sha = sha256_file(meta) if meta.is_file() else None
        earlier = self.steps.get(step_id)
        if (
            reused
            and earlier is not None
            and not earlier.get("reused", True)
            and earlier.get("out") == str(out)
            and earlier.get("meta_sha256") == sha
        ):
            return
        self.steps[step_id] = {
            "out": str(out),
            "command": command,
            "meta_sha256": sha,
            "seconds": round(seconds, 2),
            "reused": reused,
            "jobs": jobs,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._write()

    def record_study(self, seconds: float, jobs: int) -> None:
        """Note a whole run of the study: its wall-clock ``seconds`` and how many steps it ran
        at a time (kept beside the steps, the latest run only)."""
        self.study = {
            "seconds": round(seconds, 2),
            "jobs": jobs,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self._write()

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"steps": self.steps}
        if self.study:
            data["study"] = self.study
        write_json_atomic(self.folder / self.file_name, data, overwrite=True)
