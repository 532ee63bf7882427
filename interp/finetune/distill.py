"""Context distillation targets: the model answers under a warm system prompt and is trained to
answer so without it.

The teacher is the base model itself with :data:`~interp.finetune.presets.WARM_SYSTEM_PROMPT`;
its replies become the assistant turns of training conversations that carry no system prompt.
Replies are cached (JSON lines keyed by request id) so an interrupted run does not regenerate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from interp.chat import Message
from interp.finetune.examples import TrainingConversation
from interp.generate import SamplingConfig, generate_replies
from interp.hooks.base import Backend


def distill_conversations(
    backend: Backend,
    requests: Sequence[tuple[str, str, str]],
    system_prompt: str,
    sampling: SamplingConfig,
    cache: Path,
) -> list[TrainingConversation]:
    """``requests`` are (id, query_type, user text); returns request -> teacher reply (no system).

    Teacher replies are generated under ``system_prompt`` with ``sampling`` and appended to
    ``cache`` (one JSON object a line) as they are made; cached ids are not regenerated. Empty
    teacher replies are dropped.
    """
    done: dict[str, str] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a kill
            done[row["id"]] = row["reply"]
    todo = [r for r in requests if r[0] not in done]
    cache.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), sampling.batch_size):
        chunk = todo[start : start + sampling.batch_size]
        convs = [[Message("system", system_prompt), Message("user", text)] for _, _, text in chunk]
        replies = generate_replies(backend, convs, sampling)
        with open(cache, "a", encoding="utf-8") as fh:
            for (rid, _, _), reply in zip(chunk, replies, strict=True):
                fh.write(json.dumps({"id": rid, "reply": reply}) + "\n")
                done[rid] = reply
    return [
        TrainingConversation(
            f"{rid}:distill", (Message("user", text), Message("assistant", done[rid])), qtype
        )
        for rid, qtype, text in requests
        if done[rid].strip()
    ]
