"""Prompt records and prompt sets on disk.

A :class:`Prompt` is one cell of the grid for one item: the user message, which statement and
template made it, the answers a grader needs, the character span of every segment, and the keys
of its matched pairs (the same item and template without the statement; the same item and
condition without the belief). A prompt set is written as ``prompts.jsonl`` plus a
``manifest.json`` holding the sha256 of that file; later stages name their inputs by that hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_file, write_json_atomic
from interp.data.contexts import UNMODIFIED, Condition, assign_statement, group_of
from interp.data.errors import DataFormatError
from interp.data.items import Item
from interp.data.records import Where, iter_jsonl
from interp.data.templates import TemplateStyle, Variant, render_user

log = logging.getLogger(__name__)

PROMPT_SET_FORMAT = "interp.prompt_set/1"
PROMPTS_FILE = "prompts.jsonl"


@dataclass(frozen=True)
class Prompt:
    """One prompt of a set (one item in one variant).

    ``spans`` maps segment names (statement, preface, question, belief) to ``[start, end)``
    character offsets in ``user``. ``context_base`` is the prompt id of the same item and template
    under ``unmodified`` (``context_edit`` says whether the statement is inserted, or replaces the
    preface as stake statements do); ``belief_base`` is the prompt id of the same item and
    condition without the belief. Both are None where that prompt is not in the set.
    """

    prompt_id: str
    item_id: str
    task: str
    condition: str
    template: str
    belief: str
    statement_id: str | None
    user: str
    spans: Mapping[str, tuple[int, int]]
    question: str
    correct: str
    incorrect: str
    aliases: tuple[str, ...] = ()
    incorrect_aliases: tuple[str, ...] = ()
    claim: str | None = None
    context_base: str | None = None
    context_edit: str | None = None
    belief_base: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def group(self) -> str:
        """The condition's group (none, emotion, relation, stake)."""
        return group_of(self.condition)

    def segment(self, name: str) -> str | None:
        """The text of one segment, or None if this prompt has no such segment."""
        if name not in self.spans:
            return None
        a, b = self.spans[name]
        return self.user[a:b]

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (spans as lists)."""
        rec = asdict(self)
        rec["spans"] = {k: list(v) for k, v in self.spans.items()}
        rec["aliases"] = list(self.aliases)
        rec["incorrect_aliases"] = list(self.incorrect_aliases)
        rec["extra"] = dict(self.extra)
        return rec


def prompt_id(item_id: str, variant: Variant) -> str:
    """``item/condition/template``."""
    return f"{item_id}/{variant.condition}/{variant.template}"


def build_prompts(
    items: Sequence[Item],
    variants: Sequence[Variant],
    contexts: Mapping[str, Condition],
    seed: int = 0,
    style: TemplateStyle | None = None,
) -> list[Prompt]:
    """Every item in every variant (item-major, variants in the given order), with pair keys."""
    style = style or TemplateStyle()
    chosen = list(dict.fromkeys(variants))
    in_set = set(chosen)
    out: list[Prompt] = []
    for item in items:
        for v in chosen:
            statement = assign_statement(item.id, contexts[v.condition], seed)
            rendered = render_user(item, v, statement, style)
            context_base = context_edit = belief_base = None
            if v.condition != UNMODIFIED:
                base = Variant(v.template, UNMODIFIED)
                if base in in_set:
                    context_base = prompt_id(item.id, base)
                    context_edit = (
                        "insertion" if base.has_preface == v.has_preface else "replacement"
                    )
            if v.belief != "none":
                base = Variant("preface" if v.has_preface else "no_belief", v.condition)
                if base in in_set:
                    belief_base = prompt_id(item.id, base)
            out.append(
                Prompt(
                    prompt_id=prompt_id(item.id, v),
                    item_id=item.id,
                    task=item.task,
                    condition=v.condition,
                    template=v.template,
                    belief=v.belief,
                    statement_id=statement.id if statement else None,
                    user=rendered.text,
                    spans=rendered.spans,
                    question=item.question.strip(),
                    correct=item.correct,
                    incorrect=item.incorrect,
                    aliases=item.aliases,
                    incorrect_aliases=item.incorrect_aliases,
                    claim=item.claim,
                    context_base=context_base,
                    context_edit=context_edit,
                    belief_base=belief_base,
                )
            )
    return out


def count_prompts(prompts: Iterable[Prompt]) -> Counter[tuple[str, str, str]]:
    """Number of prompts per (task, condition, template)."""
    return Counter((p.task, p.condition, p.template) for p in prompts)


# --------------------------------------------------------------------------- on disk


def serialize_prompts(prompts: Sequence[Prompt]) -> bytes:
    """The bytes of ``prompts.jsonl`` (one sorted-key JSON object per line)."""
    return b"".join(
        (json.dumps(p.to_record(), sort_keys=True, ensure_ascii=False) + "\n").encode()
        for p in prompts
    )


def prompts_hash(prompts: Sequence[Prompt]) -> str:
    """sha256 of a prompt set's ``prompts.jsonl`` content: the set's name everywhere later."""
    return hashlib.sha256(serialize_prompts(prompts)).hexdigest()


@dataclass(frozen=True)
class PromptSet:
    """A prompt set read from (or written to) disk."""

    path: Path
    content_sha256: str
    prompts: list[Prompt]
    manifest: dict[str, Any]

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of the content hash (the folder name by default)."""
        return self.content_sha256[:12]

    def by_id(self) -> dict[str, Prompt]:
        """Prompts keyed by prompt id."""
        return {p.prompt_id: p for p in self.prompts}


def default_prompt_set_dir(content_sha256: str) -> Path:
    """``<artifacts>/prompts/<first 12 hex digits of the content hash>``."""
    return paths.artifact_dir("prompts", content_sha256[:12])


def write_prompt_set(
    prompts: Sequence[Prompt],
    folder: Path | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    extra_manifest: Mapping[str, Any] | None = None,
) -> PromptSet:
    """Write ``prompts.jsonl`` + ``manifest.json`` (content hash, counts) + ``meta.json``.

    The folder defaults to :func:`default_prompt_set_dir`. A folder that already holds the same
    content is kept as it is (same hash, same set); one with other content is refused.
    """
    if not prompts:
        raise DataFormatError("refusing to write an empty prompt set")
    ids = [p.prompt_id for p in prompts]
    if len(set(ids)) != len(ids):
        dup = next(i for i, n in Counter(ids).items() if n > 1)
        raise DataFormatError(f"prompt id {dup} occurs twice", field="prompt_id")
    payload = serialize_prompts(prompts)
    digest = hashlib.sha256(payload).hexdigest()
    folder = Path(folder) if folder is not None else default_prompt_set_dir(digest)
    manifest = {
        "format": PROMPT_SET_FORMAT,
        "content_sha256": digest,
        "files": {PROMPTS_FILE: digest},
        "n_prompts": len(prompts),
        "n_items": len({p.item_id for p in prompts}),
        "counts": _nested_counts(prompts),
        "pairs": {
            "context": sum(p.context_base is not None for p in prompts),
            "belief": sum(p.belief_base is not None for p in prompts),
        },
        "config": dict(config or {}),
        **dict(extra_manifest or {}),
    }
    existing = folder / paths.MANIFEST_FILE
    if existing.is_file():
        try:
            old = read_prompt_set(folder)
        except DataFormatError:
            old = None
        if old is not None and old.content_sha256 == digest:
            log.info("prompt set %s already exists at %s", digest[:12], folder)
            return old
    with atomic_dir(folder) as tmp:
        (tmp / PROMPTS_FILE).write_bytes(payload)
        write_json_atomic(tmp / paths.MANIFEST_FILE, manifest)
        write_json_atomic(
            tmp / paths.META_FILE,
            provenance(stage="prompts", prompt_set=digest, config=dict(config or {})),
        )
    return PromptSet(folder, digest, list(prompts), manifest)


def _nested_counts(prompts: Sequence[Prompt]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (task, cond, tmpl), n in sorted(count_prompts(prompts).items()):
        out.setdefault(task, {}).setdefault(cond, {})[tmpl] = n
    return out


def read_prompt_set(folder: Path) -> PromptSet:
    """Read a prompt set and check ``prompts.jsonl`` against the manifest's sha256."""
    folder = Path(folder)
    manifest_path = folder / paths.MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no prompt-set manifest")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"unreadable manifest ({exc})", file=manifest_path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != PROMPT_SET_FORMAT:
        raise DataFormatError(
            f"not a prompt-set manifest (format {PROMPT_SET_FORMAT!r})",
            file=manifest_path,
            field="format",
        )
    expected = manifest.get("content_sha256")
    data = folder / PROMPTS_FILE
    if not data.is_file():
        raise FileNotFoundError(f"{data}: prompt set file is missing")
    actual = sha256_file(data)
    if actual != expected:
        raise DataFormatError(
            "prompts.jsonl does not match its manifest (edited or corrupted)",
            file=data,
            field="content_sha256",
            expected=str(expected),
            found=actual,
        )
    prompts = []
    for line, rec in iter_jsonl(data):
        if isinstance(rec, DataFormatError):
            raise rec
        prompts.append(prompt_from_record(rec, Where(str(data), line)))
    return PromptSet(folder, actual, prompts, manifest)


def prompt_from_record(rec: Mapping[str, Any], where: Where) -> Prompt:
    """Parse one line of ``prompts.jsonl``."""
    try:
        spans = {str(k): (int(v[0]), int(v[1])) for k, v in rec["spans"].items()}
        fields = {k: rec[k] for k in Prompt.__dataclass_fields__ if k not in ("spans", "extra")}
        fields["aliases"] = tuple(fields["aliases"])
        fields["incorrect_aliases"] = tuple(fields["incorrect_aliases"])
        return Prompt(**fields, spans=spans, extra=dict(rec.get("extra") or {}))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise where.error(f"not a prompt record ({type(exc).__name__}: {exc})") from None
