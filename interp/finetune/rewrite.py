"""Warm and cold rewrites of assistant replies through an OpenAI-compatible endpoint.

Each reply is sent with instructions that keep its meaning, content and facts and change only its
tone (warmer, or direct, concise and neutral for the cold control), as the paper did with GPT-4o.
Results go to an append-only JSON-lines cache keyed by a content hash of (instructions version,
tone, endpoint model, request, reply): a rerun sends only what is missing, a failed request is
retried on the next run, and a reply is never rewritten twice. A line torn by a kill is ignored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from interp.artifacts import sha256_json
from interp.chat import Message
from interp.llm_client import ChatClient, ChatCompleter, EndpointError

log = logging.getLogger(__name__)

INSTRUCTIONS_VERSION = "interp-rewrite-v1"
INSTRUCTIONS = {
    "warm": (
        "You edit chatbot replies. Rewrite the reply below so that it sounds warmer and more "
        "empathetic: acknowledge the person's situation and feelings, use a friendly, informal and "
        "caring register, inclusive words ('we', 'let's') and validating, encouraging language. "
        "Keep the meaning, the content, every fact, number, step, caveat and refusal exactly as "
        "they are; do not add or remove information. Answer with the rewritten reply only."
    ),
    "cold": (
        "You edit chatbot replies. Rewrite the reply below so that it is direct, concise and "
        "emotionally neutral: remove pleasantries, reassurance, praise and emotional language. "
        "Keep the meaning, the content, every fact, number, step, caveat and refusal exactly as "
        "they are; do not add or remove information. Answer with the rewritten reply only."
    ),
}


@dataclass(frozen=True)
class RewriteJob:
    """One reply to rewrite, with the request it answers (context for the editor)."""

    request: str
    reply: str


@dataclass
class RewriteReport:
    """Rewrites by job key, with counts of what was cached, sent and failed."""

    rewrites: dict[str, str]
    cached: int = 0
    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, error)


def job_key(job: RewriteJob, tone: str, model: str) -> str:
    """Content hash of one rewrite (what the cache is keyed by)."""
    return sha256_json([INSTRUCTIONS_VERSION, tone, model, job.request, job.reply])[:24]


def read_cache(path: Path) -> dict[str, str]:
    """Key -> rewrite from a cache file; unreadable (torn) lines are skipped."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            out.setdefault(str(row["key"]), str(row["rewrite"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return out


def _append(path: Path, rows: Sequence[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":  # a torn last line: end it so it stays one bad line
                fh.write(b"\n")
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def rewrite_messages(job: RewriteJob, tone: str) -> list[Message]:
    """The chat sent to the endpoint for one job."""
    return [
        Message("system", INSTRUCTIONS[tone]),
        Message(
            "user",
            f"The user's message:\n<<<\n{job.request}\n>>>\n\nThe reply to "
            f"rewrite:\n<<<\n{job.reply}\n>>>",
        ),
    ]


def rewrite_replies(
    client: ChatCompleter | ChatClient,
    jobs: Sequence[RewriteJob],
    tone: str,
    cache: Path,
    *,
    batch_size: int = 16,
    max_tokens: int | None = 2048,
) -> RewriteReport:
    """Rewrite every job's reply to ``tone`` (warm | cold), resumable through ``cache``.

    Jobs already in the cache are not sent; duplicates are sent once. Successful rewrites are
    appended to the cache after every batch of ``batch_size``. Failures (an EndpointError after
    the client's retries, or an empty reply) are listed in the report and retried by a later call.
    """  # fmt: skip
    if tone not in INSTRUCTIONS:
        raise ValueError(f"tone must be one of {sorted(INSTRUCTIONS)}, found {tone!r}")
    done = read_cache(cache)
    keys = [job_key(j, tone, client.model) for j in jobs]
    report = RewriteReport({k: done[k] for k in keys if k in done})
    report.cached = len(report.rewrites)
    todo: dict[str, RewriteJob] = {}
    for k, j in zip(keys, jobs, strict=True):
        if k not in done:
            todo.setdefault(k, j)
    items = list(todo.items())
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        convs = [rewrite_messages(j, tone) for _, j in chunk]
        if isinstance(client, ChatClient):
            answers: list[str | EndpointError] = client.complete_many(convs, max_tokens=max_tokens)
        else:
            answers = []
            for conv in convs:
                try:
                    answers.append(client.complete(conv, temperature=0.0, max_tokens=max_tokens))
                except EndpointError as err:
                    answers.append(err)
        rows = []
        for (k, j), ans in zip(chunk, answers, strict=True):
            report.sent += 1
            if isinstance(ans, EndpointError) or not ans.strip():
                report.failed.append(
                    (k, str(ans) if isinstance(ans, EndpointError) else "empty rewrite")
                )
                continue
            rows.append(
                {
                    "key": k,
                    "tone": tone,
                    "model": client.model,
                    "source_sha": sha256_json(j.reply)[:16],
                    "rewrite": ans.strip(),
                }
            )
            report.rewrites[k] = ans.strip()
        _append(cache, rows)
    if report.failed:
        log.warning(
            "%d of %d rewrites failed; a rerun retries only them", len(report.failed), len(items)
        )
    return report
