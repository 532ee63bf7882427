"""Every-token residual activations for SAE training, streamed to sharded safetensors.

The package's activation cache (:mod:`interp.cache`) keeps reduced positions (last token, means);
an SAE needs every token. Here a list of :class:`TextRow` (chat conversations or plain text) is
run through a backend with a read at one site, and the activations of every kept token are
written shard by shard with their token id, row index and position:

- ``shard-NNNNN.safetensors`` with ``acts (tokens, d_model)``, ``token_ids``, ``row``, ``pos``
  (int32 / int64, one entry per kept token);
- ``rows.jsonl`` (id, source, number of tokens kept), ``manifest.json`` (the request, shards with
  their sha256, status).

Kept tokens: in a conversation, every token from the first non-system message on (the default
system prompt, identical in every row, is left out); in plain text, every token. Rows are cut into
fixed shards, so an interrupted run resumes from its last finished shard with identical files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from rich.progress import Progress
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from interp import paths
from interp.artifacts import (
    ArtifactExistsError,
    provenance,
    sha256_file,
    sha256_json,
    write_json_atomic,
)
from interp.chat import Message, encode_chat
from interp.hooks.base import Backend
from interp.sites import Site, check_layers

log = logging.getLogger(__name__)

ROWS_FILE = "rows.jsonl"


class ActivationStoreError(RuntimeError):
    """A token-activation folder is inconsistent with its request, corrupt or incomplete."""


class _Stop(Exception):
    """Raised in a hook once the requested site has been read."""


@dataclass(frozen=True)
class TextRow:
    """One text to read: a chat ``conversation`` or a plain ``text`` (exactly one of them)."""

    id: str
    source: str
    conversation: tuple[Message, ...] | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.conversation is None) == (self.text is None):
            raise ValueError(f"row {self.id}: give exactly one of conversation and text")

    def to_json(self) -> list[Any]:
        conv = None if self.conversation is None else [[m.role, m.content] for m in self.conversation]
        return [self.id, self.source, conv, self.text]


def encode_row(tokenizer: Any, row: TextRow, max_tokens: int) -> tuple[list[int], int]:
    """Token ids of ``row`` (cut to ``max_tokens``) and the index of the first kept token."""
    if row.conversation is not None:
        last_is_assistant = row.conversation[-1].role == "assistant"
        enc = encode_chat(tokenizer, row.conversation, add_generation_prompt=not last_is_assistant)
        keep_from = next((s.tok_start for s in enc.spans if s.role != "system"), 0)
        ids = list(enc.input_ids)
    else:
        assert row.text is not None
        ids = list(tokenizer(row.text, add_special_tokens=False)["input_ids"])
        keep_from = 0
    ids = ids[:max_tokens]
    return ids, min(keep_from, len(ids))


def read_text_file(path: Path, *, min_chars: int = 20) -> list[TextRow]:
    """A user's local text corpus: one row per blank-line-separated paragraph (UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ActivationStoreError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    paragraphs = [p.strip() for p in content.split("\n\n")]
    rows = [TextRow(f"text-{i:06d}", "text", text=p) for i, p in enumerate(paragraphs) if len(p) >= min_chars]
    if not rows:
        raise ActivationStoreError(f"{path}: no paragraph of at least {min_chars} characters")
    return rows


def cap_rows(rows: Sequence[TextRow], tokenizer: Any, max_total: int, max_tokens: int, seed: int) -> list[TextRow]:
    """A seeded random subset of ``rows`` holding at most ``max_total`` kept tokens (row order kept)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    chosen, total = [], 0
    for i in order:
        ids, keep = encode_row(tokenizer, rows[i], max_tokens)
        if total + len(ids) - keep > max_total:
            continue
        chosen.append(i)
        total += len(ids) - keep
    return [rows[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class TokenSpec:
    """Which site to read and how to batch."""

    site: Site
    max_tokens: int = 256
    batch_size: int = 8
    shard_rows: int = 64
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.shard_rows % self.batch_size:
            raise ValueError(f"shard_rows ({self.shard_rows}) must be a multiple of batch_size ({self.batch_size})")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, found {self.dtype!r}")

    def to_json(self) -> dict[str, Any]:
        return {"site": str(self.site), "max_tokens": self.max_tokens, "batch_size": self.batch_size,
                "shard_rows": self.shard_rows, "dtype": self.dtype}


def read_kept(backend: Backend, encoded: Sequence[tuple[list[int], int]], site: Site, pad: int) -> list[Tensor]:
    """Per encoded row ``(ids, keep_from)``, the ``(kept tokens, d_model)`` float32 activations at
    ``site`` from one right-padded batch (the forward stops after ``site`` where it can)."""
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (row_ids, _) in enumerate(encoded):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        mask[i, : len(row_ids)] = 1
    got: dict[str, Tensor] = {}

    def keep(x: Tensor) -> Tensor:
        got["x"] = x.detach().float().cpu()
        return x[:0]

    reads: dict[Site, Any] = {site: keep}
    nxt = Site(site.layer + 1, "resid_pre")
    if site.kind == "resid_post" and nxt.layer < backend.n_layers and backend.name in ("torch", "transformerlens"):

        def stop(_x: Tensor) -> Tensor:
            raise _Stop

        reads[nxt] = stop
    device = backend.loaded.device
    with torch.no_grad(), backend.hooked(read=reads), contextlib.suppress(_Stop):
        backend.forward(ids.to(device), mask.to(device))
    return [got["x"][i, keep_from : len(row_ids)] for i, (row_ids, keep_from) in enumerate(encoded)]


def build_token_activations(
    backend: Backend,
    rows: Sequence[TextRow],
    spec: TokenSpec,
    out_dir: Path,
    *,
    extra_meta: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> Path:
    """Write every kept token's activation at ``spec.site`` for ``rows`` into ``out_dir``,
    resuming a partial run there; refuses a folder that holds a different request."""
    out_dir = Path(out_dir)
    check_layers([spec.site], backend.n_layers)
    if len({r.id for r in rows}) != len(rows):
        raise ActivationStoreError("row ids must be unique")
    tok = backend.loaded.tokenizer
    request = json.loads(json.dumps({
        "model": backend.loaded.provenance(), "backend": backend.name, "spec": spec.to_json(),
        "rows_hash": sha256_json([r.to_json() for r in rows])[:16], "n_rows": len(rows),
        "d_model": backend.loaded.d_model,
    }))
    manifest = _load_or_start(out_dir, request, extra_meta or {})
    if manifest["status"] == "complete":
        return out_dir
    done = {s["index"] for s in manifest["shards"]}
    n_shards = (len(rows) + spec.shard_rows - 1) // spec.shard_rows
    dtype = getattr(torch, spec.dtype)
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("reading token activations", total=len(rows), completed=len(done) * spec.shard_rows)
        for index in range(n_shards):
            if index in done:
                continue
            start = index * spec.shard_rows
            shard_rows = rows[start : start + spec.shard_rows]
            acts, tids, row_idx, pos = [], [], [], []
            for b in range(0, len(shard_rows), spec.batch_size):
                chunk = shard_rows[b : b + spec.batch_size]
                encoded = [encode_row(tok, r, spec.max_tokens) for r in chunk]
                for j, (x, (ids, keep_from)) in enumerate(zip(read_kept(backend, encoded, spec.site, tok.pad_token_id), encoded, strict=True)):
                    acts.append(x.to(dtype))
                    tids.append(torch.tensor(ids[keep_from:], dtype=torch.int64))
                    row_idx.append(torch.full((x.shape[0],), start + b + j, dtype=torch.int64))
                    pos.append(torch.arange(keep_from, len(ids), dtype=torch.int64))
            tensors = {"acts": torch.cat(acts).contiguous(), "token_ids": torch.cat(tids), "row": torch.cat(row_idx), "pos": torch.cat(pos)}
            if not torch.isfinite(tensors["acts"].float()).all():
                raise ActivationStoreError(f"non-finite activations in shard {index}")
            name = f"shard-{index:05d}.safetensors"
            tmp = out_dir / f".{name}.tmp"
            save_file(tensors, str(tmp))
            tmp.replace(out_dir / name)
            manifest["shards"].append({"index": index, "file": name, "rows": [start, start + len(shard_rows)],
                                       "n_tokens": int(tensors["acts"].shape[0]), "sha256": sha256_file(out_dir / name)})
            manifest["shards"].sort(key=lambda s: s["index"])
            write_json_atomic(out_dir / paths.MANIFEST_FILE, manifest, overwrite=True)
            progress.update(task, advance=len(shard_rows))
    with open(out_dir / f".{ROWS_FILE}.tmp", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"id": r.id, "source": r.source}) + "\n")
    (out_dir / f".{ROWS_FILE}.tmp").replace(out_dir / ROWS_FILE)
    manifest["status"] = "complete"
    manifest["n_tokens"] = sum(s["n_tokens"] for s in manifest["shards"])
    write_json_atomic(out_dir / paths.MANIFEST_FILE, manifest, overwrite=True)
    return out_dir


def _load_or_start(out_dir: Path, request: dict[str, Any], extra_meta: dict[str, Any]) -> dict[str, Any]:
    manifest_file = out_dir / paths.MANIFEST_FILE
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("request") != request:
            differs = [k for k in request if manifest.get("request", {}).get(k) != request[k]]
            raise ArtifactExistsError(f"{out_dir} holds token activations of a different request (differs in: {', '.join(differs)})")
        kept = [s for s in manifest["shards"] if (out_dir / s["file"]).is_file() and sha256_file(out_dir / s["file"]) == s["sha256"]]
        if len(kept) != len(manifest["shards"]):
            log.warning("%d shard(s) missing or corrupt in %s; recomputing them", len(manifest["shards"]) - len(kept), out_dir)
            manifest["status"] = "in_progress"
        manifest["shards"] = kept
        return manifest
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ArtifactExistsError(f"{out_dir} exists, is not empty and has no manifest; refusing to write there")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {**provenance(**extra_meta), "request": request, "status": "in_progress", "shards": []}
    write_json_atomic(manifest_file, manifest)
    return manifest


@dataclass
class TokenActivations:
    """A finished token-activation folder loaded in memory.

    ``acts``: ``(tokens, d_model)``; ``token_ids``, ``row``, ``pos``: ``(tokens,)``;
    ``row_ids`` / ``row_sources``: one entry per row.
    """

    folder: Path
    site: Site
    acts: Float[Tensor, "tokens d_model"]
    token_ids: Int[Tensor, " tokens"]
    row: Int[Tensor, " tokens"]
    pos: Int[Tensor, " tokens"]
    row_ids: list[str]
    row_sources: list[str]
    manifest: dict[str, Any]

    def context(self, tokenizer: Any, index: int, window: int = 10) -> str:
        """The text of up to ``window`` kept tokens before token ``index`` with it in [brackets]."""
        r = int(self.row[index])
        lo = index
        while lo > 0 and int(self.row[lo - 1]) == r and index - lo < window:
            lo -= 1
        before = tokenizer.decode(self.token_ids[lo:index].tolist())
        at = tokenizer.decode(self.token_ids[index : index + 1].tolist())
        return " ".join(f"{before}[{at}]".split())


def load_token_activations(folder: Path, verify: bool = True) -> TokenActivations:
    """Load a complete folder written by :func:`build_token_activations` (checksums verified)."""
    folder = Path(folder)
    mf = folder / paths.MANIFEST_FILE
    if not mf.is_file():
        raise ActivationStoreError(f"{folder} has no {paths.MANIFEST_FILE}: not a token-activation folder")
    manifest = json.loads(mf.read_text())
    if manifest.get("status") != "complete":
        raise ActivationStoreError(f"{folder} is incomplete; rerun the same command to resume it")
    parts: dict[str, list[Tensor]] = {k: [] for k in ("acts", "token_ids", "row", "pos")}
    for shard in manifest["shards"]:
        f = folder / shard["file"]
        if verify and (not f.is_file() or sha256_file(f) != shard["sha256"]):
            raise ActivationStoreError(f"shard {f} is missing or fails its checksum")
        with safe_open(str(f), framework="pt") as fh:
            for k in parts:
                parts[k].append(fh.get_tensor(k))
    rows = [json.loads(line) for line in (folder / ROWS_FILE).read_text().splitlines() if line.strip()]
    return TokenActivations(
        folder=folder, site=Site.parse(manifest["request"]["spec"]["site"]),
        acts=torch.cat(parts["acts"]).float(), token_ids=torch.cat(parts["token_ids"]),
        row=torch.cat(parts["row"]), pos=torch.cat(parts["pos"]),
        row_ids=[r["id"] for r in rows], row_sources=[r["source"] for r in rows], manifest=manifest,
    )
