"""The only place that knows artifact roots, cache roots and file names.

Environment variables are read here and nowhere else:

- ``INTERP_CACHE``: where converted model checkpoints live (default ``~/.cache/interp``, or
  ``$XDG_CACHE_HOME/interp``).
- ``INTERP_ARTIFACTS``: the root of study artifacts (default ``activations/`` in the current
  working directory, i.e. the repository root when run from there).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root for derived model files (converted checkpoints, tokenizers)."""
    if "INTERP_CACHE" in os.environ:
        return Path(os.environ["INTERP_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "interp"


def model_cache_dir(model_name: str) -> Path:
    """Folder holding the converted float checkpoint of a registry model."""
    return cache_root() / "models" / model_name


def artifacts_root() -> Path:
    """Root of the study's artifacts (activations, directions, results)."""
    return Path(os.environ.get("INTERP_ARTIFACTS", "activations")).expanduser()


def plots_root() -> Path:
    """Root of generated figures."""
    return Path(os.environ.get("INTERP_PLOTS", "plots")).expanduser()


def artifact_dir(stage: str, name: str) -> Path:
    """Folder for one artifact: ``<artifacts>/<stage>/<name>``. ``name`` is usually a hash."""
    for part, label in ((stage, "stage"), (name, "name")):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"artifact {label} must be a plain folder name, found {part!r}")
    return artifacts_root() / stage / name


def judge_env() -> dict[str, str | None]:
    """Settings of an OpenAI-compatible endpoint (judge, rewriter) from the environment."""
    return {
        "base_url": os.environ.get("INTERP_JUDGE_URL") or os.environ.get("OPENAI_BASE_URL"),
        "model": os.environ.get("INTERP_JUDGE_MODEL"),
        "api_key": os.environ.get("INTERP_JUDGE_KEY") or os.environ.get("OPENAI_API_KEY"),
    }


META_FILE = "meta.json"
MANIFEST_FILE = "manifest.json"
CHECKSUMS_FILE = "checksums.json"
# the per-layer vectors of a Direction folder (beside its meta.json)
VECTORS_FILE = "vectors.safetensors"

# a study preset's progress record in its study folder (interp.study.state)
STUDY_STATE_FILE = "state.json"
# presets that run in another preset's study folder, reusing its steps
STUDY_FOLDER_OF = {"embedded-full-verdict": "embedded"}


def study_state_file(preset: str) -> str:
    """The state file of ``preset``'s runs in its study folder: ``state.json`` when the preset
    owns the folder, else ``state-<preset>.json`` (a preset run in another preset's folder
    records its own run without overwriting that one's). Read by the study and the report."""
    return STUDY_STATE_FILE if preset not in STUDY_FOLDER_OF else f"state-{preset}.json"
