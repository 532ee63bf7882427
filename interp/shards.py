"""One writer of sharded tensor folders: a manifest, atomic shard files, sha256 checksums, resume.

A folder holds ``manifest.json`` (the request that made it, provenance, the finished shards with
their row range and sha256, and a status) and ``shard-NNNNN.safetensors`` files. A shard appears
only complete: it is written under a temporary name and renamed. The manifest is rewritten
atomically after each shard, so a run killed at any point (even by SIGKILL) resumes from its last
finished shard; when the caller computes each shard from the same rows in the same batches, the
resumed folder is bit-identical to an uninterrupted one.

:class:`ShardWriter` writes; :func:`read_manifest` opens a finished folder (checksums verified).
:mod:`interp.cache` builds the activation cache on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from interp import paths
from interp.artifacts import ArtifactExistsError, provenance, sha256_file, write_json_atomic
from interp.errors import InterpError

log = logging.getLogger(__name__)


class CacheError(InterpError, RuntimeError):
    """A cache folder is inconsistent with its request, corrupt, or incomplete (a user error:
    the message names the folder and what to do)."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


class ShardWriter:
    """Open (or start) the shard folder ``folder`` for ``request``.

    A folder holding another request is refused (:class:`~interp.artifacts.ArtifactExistsError`
    naming the differing keys); a non-empty folder without a manifest is refused; shards that are
    missing or fail their checksum are dropped so that they are computed again.
    """

    def __init__(
        self,
        folder: Path,
        request: Mapping[str, Any],
        *,
        extra_meta: Mapping[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        # the form the request has in the manifest (lists, not tuples)
        self.request = json.loads(json.dumps(dict(request)))
        self.manifest = self._load_or_start(dict(extra_meta or {}))

    @property
    def complete(self) -> bool:
        return bool(self.manifest["status"] == "complete")

    @property
    def done(self) -> set[int]:
        """Indices of the shards already written."""
        return {int(s["index"]) for s in self.manifest["shards"]}

    def write(
        self, index: int, tensors: Mapping[str, Tensor], rows: tuple[int, int], **fields: Any
    ) -> None:
        """Write shard ``index`` (rows ``[start, end)``) atomically and record it in the manifest
        with its sha256 and ``fields``."""
        name = shard_name(index)
        tmp = self.folder / f".{name}.tmp"
        save_file(dict(tensors), str(tmp), metadata={"index": str(index)})
        tmp.replace(self.folder / name)
        entry = {
            "index": index,
            "file": name,
            "rows": list(rows),
            **fields,
            "sha256": sha256_file(self.folder / name),
        }
        self.manifest["shards"] = [s for s in self.manifest["shards"] if s["index"] != index]
        self.manifest["shards"].append(entry)
        self.manifest["shards"].sort(key=lambda s: s["index"])
        self._save()

    def finish(self, **fields: Any) -> None:
        """Mark the folder complete (``fields`` are added to the manifest)."""
        self.manifest.update(fields)
        self.manifest["status"] = "complete"
        self._save()

    def _save(self) -> None:
        write_json_atomic(self.folder / paths.MANIFEST_FILE, self.manifest, overwrite=True)

    def _load_or_start(self, extra_meta: dict[str, Any]) -> dict[str, Any]:
        out_dir = self.folder
        manifest_file = out_dir / paths.MANIFEST_FILE
        if manifest_file.is_file():
            manifest: dict[str, Any] = json.loads(manifest_file.read_text())
            held = manifest.get("request", {})
            if held != self.request:
                differs = [k for k in self.request if held.get(k) != self.request[k]]
                raise ArtifactExistsError(
                    f"{out_dir} holds a cache of a different request (differs in: "
                    f"{', '.join(differs)}); refusing to overwrite it: choose another folder"
                )
            # temporary files of a run killed while writing a shard or the manifest
            for stale in (
                *out_dir.glob(".shard-*.tmp"),
                *out_dir.glob(f".{paths.MANIFEST_FILE}.*.tmp"),
            ):
                stale.unlink()
            kept = []
            for shard in manifest["shards"]:
                f = out_dir / shard["file"]
                if f.is_file() and sha256_file(f) == shard["sha256"]:
                    kept.append(shard)
                else:
                    log.warning("shard %s is missing or corrupt; recomputing it", shard["file"])
            if len(kept) != len(manifest["shards"]):
                manifest["status"] = "in_progress"
            manifest["shards"] = kept
            return manifest
        if out_dir.exists() and any(out_dir.iterdir()):
            raise ArtifactExistsError(
                f"{out_dir} exists, is not empty and has no manifest; refusing to write there"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = {
            **provenance(**extra_meta),
            "request": self.request,
            "status": "in_progress",
            "shards": [],
        }
        write_json_atomic(manifest_file, manifest)
        return manifest


def read_manifest(folder: Path, *, verify: bool = True) -> dict[str, Any]:
    """The manifest of a complete shard folder; ``verify`` checks every shard's sha256 first."""
    folder = Path(folder)
    manifest_file = folder / paths.MANIFEST_FILE
    if not manifest_file.is_file():
        raise CacheError(f"{folder} has no {paths.MANIFEST_FILE}: not a cache folder")
    manifest: dict[str, Any] = json.loads(manifest_file.read_text())
    if manifest.get("status") != "complete":
        raise CacheError(f"cache {folder} is incomplete; rerun the same command to resume it")
    if verify:
        for shard in manifest["shards"]:
            f = folder / shard["file"]
            if not f.is_file() or sha256_file(f) != shard["sha256"]:
                raise CacheError(f"shard {f} is missing or fails its checksum")
    return manifest


def iter_tensor(folder: Path, manifest: Mapping[str, Any], key: str) -> Iterator[Tensor]:
    """Each shard's tensor ``key``, memory-mapped, in shard order."""
    for shard in manifest["shards"]:
        with safe_open(str(Path(folder) / shard["file"]), framework="pt") as fh:
            yield fh.get_tensor(key)
