"""Writing artifacts safely: atomic folders, checksums and provenance (meta.json).

Nothing written here is ever overwritten silently: a finished artifact folder is refused as a
target unless the caller explicitly replaces it, and every folder appears only complete (it is
written under a temporary name beside its final place and renamed in one step).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from interp import paths
from interp.config import config_hash, config_to_dict
from interp.errors import InterpError

TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "transformer-lens",
    "nnsight",
    "peft",
    "sae-lens",
    "numpy",
    "safetensors",
)


class ArtifactExistsError(InterpError, FileExistsError):
    """The target artifact already exists and would be overwritten."""


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of an object's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of the packages that shape numerical results."""
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit of the working tree (``+dirty`` if modified), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(**fields: Any) -> dict[str, Any]:
    """A meta.json payload: the caller's fields plus versions, git commit and time."""
    return {
        **fields,
        "versions": library_versions(),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_json_atomic(path: Path, obj: Any, overwrite: bool = False) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactExistsError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_csv_atomic(path: Path, table: Any, overwrite: bool = False) -> None:
    """Write a pandas table (without its index) to ``path`` through a temporary file and an
    atomic rename; an existing ``path`` is refused unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactExistsError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``final`` only if the block finishes.

    On an exception (or a kill) the temporary folder is left behind under a dot-name and never
    mistaken for a result. ``replace=True`` moves an existing ``final`` aside (to
    ``final.replaced-<id>``) instead of refusing: nothing is deleted.
    """
    final = Path(final)
    if final.exists() and not replace:
        raise ArtifactExistsError(f"{final} exists; refusing to overwrite it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        final.rename(final.with_name(f"{final.name}.replaced-{uuid.uuid4().hex[:8]}"))
    os.replace(tmp, final)


def write_checksums(folder: Path, names: list[str]) -> dict[str, str]:
    """sha256 of each named file in ``folder``, as a dict (the caller writes it)."""
    return {n: sha256_file(folder / n) for n in names}


def verify_checksums(folder: Path, expected: Mapping[str, str]) -> list[str]:
    """Names of files in ``folder`` that are missing or whose sha256 differs."""
    bad = []
    for name, digest in expected.items():
        p = folder / name
        if not p.is_file() or sha256_file(p) != digest:
            bad.append(name)
    return bad


def result_folder(stage: str, config: Any) -> Path:
    """Where a command writes: the config's ``out`` field if set, else
    ``<artifacts>/<stage>/<config hash>`` (one hash recipe: :func:`interp.config.config_hash`)."""
    explicit = getattr(config, "out", None)
    return Path(explicit) if explicit else paths.artifact_dir(stage, config_hash(config))


def is_complete(folder: Path, required: Sequence[str]) -> bool:
    """True when ``folder`` holds its meta.json and every required file (a finished result)."""
    return (folder / paths.META_FILE).is_file() and all(
        (folder / name).is_file() for name in required
    )


@contextlib.contextmanager
def writing_result(folder: Path, *, stage: str, config: Any, **meta: Any) -> Iterator[Path]:
    """Write a result folder atomically: yield a temporary folder to fill; on success meta.json
    (the config, ``meta`` and provenance) is added and the folder appears under its final name.
    An existing folder is refused (:class:`ArtifactExistsError`): callers reuse it first."""
    with atomic_dir(folder) as tmp:
        yield tmp
        write_json_atomic(
            tmp / paths.META_FILE, provenance(stage=stage, config=config_to_dict(config), **meta)
        )
