"""Every-token residual activations for SAE training: the package's cache at one site with the
:data:`~interp.cache.EVERY_TOKEN` position.

What is SAE-specific lives here: :class:`TextRow` (a chat conversation or a plain text, with the
source it came from), reading a local text file, capping the rows to a token budget, and
:class:`TokenActivations`, a finished every-token cache loaded in memory. Writing, resuming and
checksums are the cache's (:func:`interp.cache.build_cache`); ``manifest.json`` records each
row's source (``row_sources``).

Kept tokens: in a conversation, every token from the first non-system message on (the default
system prompt, identical in every row, is left out); in plain text, every token; at most
``max_tokens`` tokens per row are read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jaxtyping import Float, Int
from torch import Tensor

from interp.cache import (
    EVERY_TOKEN,
    CacheRow,
    CacheSpec,
    build_cache,
    compute_rows,
    encode_cache_row,
    key_of,
    open_cache,
)
from interp.chat import Message
from interp.errors import InputNotFoundError, InterpError
from interp.hooks.base import Backend
from interp.sites import Site

MAX_TOKENS = 256


class ActivationStoreError(InterpError, ValueError):
    """A text corpus or token-activation folder cannot be used (the message names it)."""


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

    def cache_row(self) -> CacheRow:
        """The row as the cache reads it (a conversation ending with the assistant is read
        without a generation prompt)."""
        if self.conversation is None:
            return CacheRow(self.id, (), text=self.text)
        last_is_assistant = self.conversation[-1].role == "assistant"
        return CacheRow(self.id, self.conversation, add_generation_prompt=not last_is_assistant)


def encode_row(tokenizer: Any, row: TextRow, max_tokens: int) -> tuple[list[int], int]:
    """Token ids of ``row`` (cut to ``max_tokens``) and the index of the first kept token."""
    enc = encode_cache_row(tokenizer, row.cache_row(), max_tokens)
    return enc.ids, enc.keep_from


def read_text_file(path: Path, *, min_chars: int = 20) -> list[TextRow]:
    """A user's local text corpus: one row per blank-line-separated paragraph (UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"text file {path} does not exist")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ActivationStoreError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    paragraphs = [p.strip() for p in content.split("\n\n")]
    rows = [
        TextRow(f"text-{i:06d}", "text", text=p)
        for i, p in enumerate(paragraphs)
        if len(p) >= min_chars
    ]
    if not rows:
        raise ActivationStoreError(f"{path}: no paragraph of at least {min_chars} characters")
    return rows


def cap_rows(
    rows: Sequence[TextRow], tokenizer: Any, max_total: int, max_tokens: int, seed: int
) -> list[TextRow]:
    """A seeded random subset of ``rows`` holding at most ``max_total`` kept tokens (row order
    kept)."""
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


def token_spec(
    site: Site,
    *,
    max_tokens: int = MAX_TOKENS,
    batch_size: int = 8,
    shard_rows: int = 64,
    dtype: Literal["float32", "bfloat16", "float16"] = "float32",
) -> CacheSpec:
    """The cache spec of an SAE's training activations: every token at ``site``, right-padded."""
    return CacheSpec(
        sites=(site,),
        positions=(EVERY_TOKEN,),
        dtype=dtype,
        batch_size=batch_size,
        shard_rows=shard_rows,
        padding_side="right",
        max_tokens=max_tokens,
    )


def build_token_activations(
    backend: Backend,
    rows: Sequence[TextRow],
    spec: CacheSpec,
    out_dir: Path,
    *,
    extra_meta: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> Path:
    """Cache every kept token of ``rows`` (``spec`` from :func:`token_spec`) into ``out_dir``,
    resuming a partial run there; refuses a folder that holds a different request."""
    if not spec.every_token_only or len(spec.sites) != 1:
        raise ValueError(f"token activations need one site and the {EVERY_TOKEN!r} position")
    meta = {**(extra_meta or {}), "row_sources": [r.source for r in rows]}
    return build_cache(
        backend,
        [r.cache_row() for r in rows],
        spec,
        out_dir,
        extra_meta=meta,
        show_progress=show_progress,
    )


def read_rows(
    backend: Backend,
    rows: Sequence[TextRow],
    site: Site,
    *,
    system: str | None = None,
    batch_size: int = 8,
    max_tokens: int = MAX_TOKENS,
) -> Float[Tensor, "tokens d_model"]:
    """Every kept token's float32 activation at ``site`` for ``rows``, in memory (a system
    message prepended to conversations when given)."""
    if system is not None:
        rows = [
            TextRow(r.id, r.source, conversation=(Message("system", system), *r.conversation))
            if r.conversation is not None
            else r
            for r in rows
        ]
    spec = token_spec(site, max_tokens=max_tokens, batch_size=batch_size, shard_rows=batch_size)
    got = compute_rows(backend, [r.cache_row() for r in rows], spec)
    return got[key_of(site, EVERY_TOKEN)].float()


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
        """The text of up to ``window`` kept tokens before token ``index`` with it in
        [brackets]."""
        r = int(self.row[index])
        lo = index
        while lo > 0 and int(self.row[lo - 1]) == r and index - lo < window:
            lo -= 1
        before = tokenizer.decode(self.token_ids[lo:index].tolist())
        at = tokenizer.decode(self.token_ids[index : index + 1].tolist())
        return " ".join(f"{before}[{at}]".split())


def load_token_activations(folder: Path, verify: bool = True) -> TokenActivations:
    """Load a complete folder written by :func:`build_token_activations` (checksums verified)."""
    cache = open_cache(Path(folder), verify=verify)
    sites = cache.sites
    positions = cache.manifest["request"]["spec"]["positions"]
    if len(sites) != 1 or list(positions) != [EVERY_TOKEN]:
        raise ActivationStoreError(
            f"{folder} is not a token-activation folder (one site, position {EVERY_TOKEN!r})"
        )
    index = cache.token_index()
    sources = cache.manifest.get("row_sources") or ["" for _ in cache.row_ids]
    return TokenActivations(
        folder=Path(folder),
        site=sites[0],
        acts=cache.load(sites[0], EVERY_TOKEN).float(),
        token_ids=index["token_ids"],
        row=index["row"],
        pos=index["pos"],
        row_ids=cache.row_ids,
        row_sources=list(sources),
        manifest=cache.manifest,
    )
