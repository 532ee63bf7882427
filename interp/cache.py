"""Prompts -> residual-stream activations on disk: shards of safetensors plus a manifest.

Only the requested sites at the requested positions are kept: the reduction happens inside the
hook, so memory stays bounded by one batch (plus one shard of reduced vectors) whatever the
number of prompts. Rows are cut into fixed shards and each shard into fixed batches, so a run
computes the same batches whether or not it was interrupted: a run killed at any point (even by
SIGKILL) resumes from its last finished shard and ends with bit-identical files (the folder is
written by :class:`interp.shards.ShardWriter`: manifest, atomic shards, sha256). Reading is
memory-mapped.

Positions are :mod:`interp.positions` specs (one or a few vectors per row), or
:data:`EVERY_TOKEN`: every kept token of the row (in a conversation every token from the first
non-system message on, so a system prompt shared by every row is left out; in a plain-text row
every token), cut to the spec's ``max_tokens``. Every-token keys hold ``(tokens, d_model)`` per
shard, with ``token_ids``, ``row`` (global row index) and ``pos`` (token position) beside them;
this is what an SAE trains on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from rich.progress import Progress
from torch import Tensor

from interp.artifacts import sha256_json
from interp.chat import ChatEncoding, Message, encode_chat
from interp.hooks.base import Backend
from interp.length_batches import length_batches
from interp.positions import PositionSpec, token_weights
from interp.shards import CacheError, ShardWriter, iter_tensor, read_manifest
from interp.sites import Site, check_layers, sort_sites

__all__ = [
    "DTYPES",
    "EVERY_TOKEN",
    "TOKEN_INDEX_KEYS",
    "CacheError",
    "CacheRow",
    "CacheSpec",
    "CachedActivations",
    "EncodedRow",
    "build_cache",
    "compute_encoded",
    "compute_rows",
    "encode_cache_row",
    "key_of",
    "open_cache",
    "rows_hash",
]

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
EVERY_TOKEN = "every_token"
TOKEN_INDEX_KEYS = ("token_ids", "row", "pos")


class _StopForward(Exception):
    """Raised inside a hook once every requested site has been recorded."""


@dataclass(frozen=True)
class CacheRow:
    """One prompt to cache: an id, the conversation and how to render it, or a plain ``text``
    (read without a chat template; every-token positions only)."""

    id: str
    conversation: tuple[Message, ...]
    add_generation_prompt: bool = True
    user_span: tuple[int, int] | None = None  # character span inside the last user message
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (not self.conversation):
            raise ValueError(f"row {self.id}: give exactly one of a conversation and a text")


def _parse(position: str) -> PositionSpec | None:
    """The parsed position, or None for :data:`EVERY_TOKEN`."""
    return None if position.strip() == EVERY_TOKEN else PositionSpec.parse(position)


@dataclass(frozen=True)
class CacheSpec:
    """What to keep and how to batch. ``positions`` are :class:`PositionSpec` strings or
    :data:`EVERY_TOKEN`; ``max_tokens`` cuts each row (every-token caches only)."""

    sites: tuple[Site, ...]
    positions: tuple[str, ...] = ("last",)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = 8
    shard_rows: int = 128
    padding_side: Literal["left", "right"] = "left"
    stop_early: bool = True
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not self.sites:
            raise ValueError("sites: expected at least one site, found none")
        if not self.positions:
            raise ValueError("positions: expected at least one position, found none")
        for p in self.positions:
            _parse(p)
        if self.batch_size < 1 or self.shard_rows < 1:
            raise ValueError("batch_size and shard_rows must be >= 1")
        if self.shard_rows % self.batch_size:
            raise ValueError(
                f"shard_rows ({self.shard_rows}) must be a multiple of batch_size "
                f"({self.batch_size}) so that resumed runs compute identical batches"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, found {self.dtype!r}")
        if self.max_tokens is not None:
            if self.max_tokens < 1:
                raise ValueError(f"max_tokens must be >= 1, found {self.max_tokens}")
            if not self.every_token_only:
                raise ValueError(f"max_tokens applies to {EVERY_TOKEN!r} positions only")

    @property
    def every_token(self) -> bool:
        return any(_parse(p) is None for p in self.positions)

    @property
    def every_token_only(self) -> bool:
        return all(_parse(p) is None for p in self.positions)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sites"] = [str(s) for s in sort_sites(self.sites)]
        if d["max_tokens"] is None:  # the form caches had before max_tokens existed
            del d["max_tokens"]
        return d


def key_of(site: Site, position: str) -> str:
    """Tensor name inside a shard, e.g. ``resid_post.5|last`` or ``resid_post.5|every_token``."""
    parsed = _parse(position)
    return f"{site}|{EVERY_TOKEN if parsed is None else parsed.label}"


def _row_json(r: CacheRow) -> list[Any]:
    out: list[Any] = [
        r.id,
        [[m.role, m.content] for m in r.conversation],
        r.add_generation_prompt,
        r.user_span,
    ]
    return out if r.text is None else [*out, r.text]


def rows_hash(rows: Sequence[CacheRow]) -> str:
    """Content hash of a prompt set as the cache sees it."""
    return sha256_json([_row_json(r) for r in rows])[:16]


@dataclass(frozen=True)
class EncodedRow:
    """A row's token ids (cut to ``max_tokens``), its first kept token (every-token positions)
    and its chat encoding (None for plain text)."""

    ids: list[int]
    keep_from: int
    chat: ChatEncoding | None
    user_span: tuple[int, int] | None = None
    id: str = ""


def encode_cache_row(tokenizer: Any, row: CacheRow, max_tokens: int | None = None) -> EncodedRow:
    """Token ids of ``row`` as the cache reads them (see :data:`EVERY_TOKEN` for kept tokens)."""
    if row.text is not None:
        ids = list(tokenizer(row.text, add_special_tokens=False)["input_ids"])
        keep_from, chat = 0, None
    else:
        chat = encode_chat(tokenizer, row.conversation, row.add_generation_prompt)
        ids = list(chat.input_ids)
        keep_from = next((s.tok_start for s in chat.spans if s.role != "system"), 0)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    return EncodedRow(ids, min(keep_from, len(ids)), chat, row.user_span, row.id)


@dataclass
class _Batch:
    ids: Tensor
    mask: Tensor
    weights: dict[str, Float[Tensor, "batch slots pos"]] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)  # kept tokens, padded coordinates


def _prepare_batch(encs: Sequence[EncodedRow], spec: CacheSpec, pad: int) -> _Batch:
    width = max(len(e.ids) for e in encs)
    ids = torch.full((len(encs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encs), width), dtype=torch.long)
    specs = {p: s for p in spec.positions if (s := _parse(p)) is not None}
    weights = {p: torch.zeros(len(encs), s.n_slots, width) for p, s in specs.items()}
    spans = []
    for i, enc in enumerate(encs):
        n = len(enc.ids)
        off = width - n if spec.padding_side == "left" else 0
        ids[i, off : off + n] = torch.tensor(enc.ids)
        mask[i, off : off + n] = 1
        spans.append((off + enc.keep_from, off + n))
        for p, s in specs.items():
            if enc.chat is None:
                raise CacheError(f"row {enc.id}: a plain-text row has no chat spans for {p!r}")
            weights[p][i, :, off : off + n] = token_weights(s, enc.chat, enc.user_span)
    return _Batch(ids, mask, weights, spans)


def _run_batch(backend: Backend, batch: _Batch, spec: CacheSpec) -> dict[str, Tensor]:
    """Reduced activations for one batch: ``{key: (batch, slots, d_model)}`` for positions,
    ``{key: (kept tokens, d_model)}`` for :data:`EVERY_TOKEN`."""
    device = backend.loaded.device
    ids, mask = batch.ids.to(device), batch.mask.to(device)
    weights = {p: w.to(device) for p, w in batch.weights.items()}
    every = [p for p in spec.positions if _parse(p) is None]
    dtype = DTYPES[spec.dtype]
    out: dict[str, Tensor] = {}

    def reducer(site: Site):  # type: ignore[no-untyped-def]
        def reduce(x: Tensor) -> Tensor:
            for p, w in weights.items():
                # x sits on its layer's device (several devices under a device map)
                reduced = torch.einsum("bsp,bpd->bsd", w.to(x.device, x.dtype), x)
                out[key_of(site, p)] = reduced.to(dtype).cpu()
            for p in every:
                kept = torch.cat([x[i, a:b] for i, (a, b) in enumerate(batch.spans)])
                out[key_of(site, p)] = kept.detach().float().to(dtype).cpu()
            return x[:0]  # nothing else is kept

        return reduce

    reads: dict[Site, Any] = {s: reducer(s) for s in spec.sites}
    last = max(spec.sites, key=lambda s: s.order)
    can_stop = spec.stop_early and backend.name in ("torch", "transformerlens")
    if can_stop and last.layer + 1 < backend.n_layers:
        stop_site = Site(last.layer + 1, "resid_pre")
        if stop_site not in reads:

            def stop(_x: Tensor) -> Tensor:
                raise _StopForward

            reads[stop_site] = stop
    with torch.no_grad(), backend.hooked(read=reads), contextlib.suppress(_StopForward):
        backend.forward_for_reads(ids, mask)
    return out


def compute_rows(
    backend: Backend, rows: Sequence[CacheRow], spec: CacheSpec, *, first_row: int = 0
) -> dict[str, Tensor]:
    """What a shard of ``rows`` holds, computed in memory (batches of ``spec.batch_size``):
    ``{key_of(site, position): tensor}`` and, for every-token positions, ``token_ids``, ``row``
    (``first_row`` + index in ``rows``) and ``pos``."""
    tok = backend.loaded.tokenizer
    encs = [encode_cache_row(tok, r, spec.max_tokens) for r in rows]
    return compute_encoded(backend, encs, spec, first_row=first_row)


def compute_encoded(
    backend: Backend, encs: Sequence[EncodedRow], spec: CacheSpec, *, first_row: int = 0
) -> dict[str, Tensor]:
    """:func:`compute_rows` for rows already encoded (:func:`encode_cache_row`). Rows of
    similar length share a batch (:mod:`interp.length_batches`: in prompt order a batch mixes
    short and long rows and pads them all to the longest); what comes back is in ``encs``'
    order, as if the rows had been batched in that order."""
    pad = backend.loaded.tokenizer.pad_token_id
    every = {key_of(site, p) for site in spec.sites for p in spec.positions if _parse(p) is None}
    per_row: list[dict[str, Tensor]] = [{} for _ in encs]
    for members in length_batches([len(e.ids) for e in encs], spec.batch_size):
        chunk = [encs[i] for i in members]
        got = _run_batch(backend, _prepare_batch(chunk, spec, pad), spec)
        kept = [len(e.ids) - e.keep_from for e in chunk]
        for key, value in got.items():
            # every-token keys hold the batch's kept tokens row after row; the rest one row each
            pieces = value.split(kept) if key in every else value.split(1)
            for i, piece in zip(members, pieces, strict=True):
                per_row[i][key] = piece
    parts: dict[str, list[Tensor]] = {}
    for j, (e, row) in enumerate(zip(encs, per_row, strict=True)):
        if every:
            n = len(e.ids) - e.keep_from
            row["token_ids"] = torch.tensor(e.ids[e.keep_from :], dtype=torch.int64)
            row["row"] = torch.full((n,), first_row + j, dtype=torch.int64)
            row["pos"] = torch.arange(e.keep_from, len(e.ids), dtype=torch.int64)
        for key, value in row.items():
            parts.setdefault(key, []).append(value)
    tensors = {k: torch.cat(v).contiguous() for k, v in parts.items()}
    for k, v in tensors.items():
        if k not in TOKEN_INDEX_KEYS and not torch.isfinite(v.float()).all():
            raise CacheError(f"non-finite activations at {k}")
    return tensors


def build_cache(
    backend: Backend,
    rows: Sequence[CacheRow],
    spec: CacheSpec,
    out_dir: Path,
    *,
    extra_meta: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> Path:
    """Cache ``spec`` for ``rows`` into ``out_dir`` (resuming a partial run there).

    Refuses a folder that holds a different request (other model, prompts or spec).
    """
    out_dir = Path(out_dir)
    check_layers(spec.sites, backend.n_layers)
    if len({r.id for r in rows}) != len(rows):
        raise CacheError("row ids must be unique")
    request = {
        "model": backend.loaded.provenance(),
        "backend": backend.name,
        "rows_hash": rows_hash(rows),
        "n_rows": len(rows),
        "spec": spec.to_json(),
        "d_model": backend.loaded.d_model,
        "row_ids": [r.id for r in rows],
    }
    with building(out_dir):
        writer = ShardWriter(out_dir, request, extra_meta=extra_meta)
        if writer.complete:
            log.info("cache %s is complete; reusing it", out_dir)
            return out_dir
        done = writer.done
        n_shards = (len(rows) + spec.shard_rows - 1) // spec.shard_rows
        with Progress(disable=not show_progress, transient=True) as progress:
            task = progress.add_task(
                "caching activations", total=len(rows), completed=len(done) * spec.shard_rows
            )
            for index in range(n_shards):
                if index in done:
                    continue
                start = index * spec.shard_rows
                shard_rows = rows[start : start + spec.shard_rows]
                tensors = compute_rows(backend, shard_rows, spec, first_row=start)
                fields = {"n_tokens": int(tensors["row"].shape[0])} if spec.every_token else {}
                writer.write(index, tensors, (start, start + len(shard_rows)), **fields)
                progress.update(task, advance=len(shard_rows))
        if spec.every_token:
            writer.finish(n_tokens=sum(int(s["n_tokens"]) for s in writer.manifest["shards"]))
        else:
            writer.finish()
    return out_dir


@contextlib.contextmanager
def building(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` while it is built (``.<name>.lock`` beside it): a
    second process asking for the same cache (two study steps at once) waits, then finds it
    complete and reuses it, instead of writing the same shards beside the first. Without
    ``fcntl`` (not Unix) nothing is locked."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Unix
        yield
        return
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class CachedActivations:
    """A finished cache folder, read through memory maps."""

    def __init__(self, folder: Path, manifest: dict[str, Any]):
        self.folder = folder
        self.manifest = manifest

    @property
    def row_ids(self) -> list[str]:
        return list(self.manifest["request"]["row_ids"])

    @property
    def sites(self) -> list[Site]:
        return [Site.parse(s) for s in self.manifest["request"]["spec"]["sites"]]

    @property
    def keys(self) -> list[str]:
        spec = self.manifest["request"]["spec"]
        return [key_of(Site.parse(s), p) for s in spec["sites"] for p in spec["positions"]]

    def iter_shards(self, key: str) -> Iterator[Tensor]:
        """Each shard's tensor for ``key`` (``(rows, slots, d_model)``, or ``(tokens,
        d_model)`` for every-token keys), memory-mapped."""
        if key not in self.keys:
            raise KeyError(f"{key!r} is not cached here; cached keys: {', '.join(self.keys)}")
        return iter_tensor(self.folder, self.manifest, key)

    def load(self, site: Site | str, position: str = "last") -> Tensor:
        """All rows of one site and position, in row order: ``(rows, slots, d_model)``, or
        ``(tokens, d_model)`` for :data:`EVERY_TOKEN`."""
        site = Site.parse(site) if isinstance(site, str) else site
        return torch.cat(list(self.iter_shards(key_of(site, position))))

    def token_index(self) -> dict[str, Int[Tensor, " tokens"]]:
        """``token_ids``, ``row`` and ``pos`` of every kept token (every-token caches)."""
        if not any(_parse(p) is None for p in self.manifest["request"]["spec"]["positions"]):
            raise KeyError(f"{self.folder} is not an {EVERY_TOKEN} cache")
        return {
            k: torch.cat(list(iter_tensor(self.folder, self.manifest, k))) for k in TOKEN_INDEX_KEYS
        }


def open_cache(folder: Path, verify: bool = True) -> CachedActivations:
    """Open a complete cache; ``verify`` checks every shard's sha256 first."""
    return CachedActivations(Path(folder), read_manifest(folder, verify=verify))
