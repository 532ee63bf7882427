"""The texts an SAE is trained on: the study's prompts, the model's own replies to them, the
shipped reply triples (request + neutral / warm / cold reply) and an optional local corpus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from interp.artifacts import ArtifactExistsError
from interp.chat import Message
from interp.data.build import prompt_list
from interp.data.prompt_sets import Prompt
from interp.generate import SamplingConfig, generate_replies
from interp.hooks.base import Backend
from interp.sae.activations import TextRow
from interp.warmth.pairs import TONES, ReplyTriple, load_triples


def study_prompts(per_task: int | None, seed: int = 0) -> list[Prompt]:
    """Every condition x template of the derivation-side embedded items (at most ``per_task``
    items per task): the SAE is trained where directions are derived, never on evaluated items."""
    prompts, _ = prompt_list(side="derivation", per_task=per_task, seed=seed)
    return prompts


def prompt_rows(prompts: Sequence[Prompt]) -> list[TextRow]:
    """One row per prompt: the user turn with the generation prompt."""
    return [
        TextRow(f"prompt:{p.prompt_id}", "prompt", conversation=(Message("user", p.user),))
        for p in prompts
    ]


def triple_rows(triples: Sequence[ReplyTriple] | None = None) -> list[TextRow]:
    """One row per triple and tone: the request and that reply (the packaged triples by default)."""
    triples = load_triples() if triples is None else triples
    return [
        TextRow(
            f"triple:{t.id}:{tone}",
            f"triple:{tone}",
            conversation=(Message("user", t.request), Message("assistant", t.reply(tone))),
        )
        for t in triples
        for tone in TONES
    ]


def response_rows(
    backend: Backend,
    prompts: Sequence[Prompt],
    store: Path,
    *,
    max_new_tokens: int = 48,
    batch_size: int = 16,
) -> list[TextRow]:
    """The model's own greedy replies to ``prompts`` as rows (prompt + reply).

    Replies are generated once and kept in ``store`` (JSON lines); a later call with the same
    prompts reads them back instead of generating again.
    """
    store = Path(store)
    ids = [p.prompt_id for p in prompts]
    if store.is_file():
        saved = [
            json.loads(line)
            for line in store.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if [s["prompt_id"] for s in saved] != ids:
            raise ArtifactExistsError(
                f"{store} holds replies to other prompts; choose another folder"
            )
        replies = [s["reply"] for s in saved]
    else:
        sampling = SamplingConfig(
            max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size
        )
        replies = generate_replies(backend, [(Message("user", p.user),) for p in prompts], sampling)
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{store.name}.tmp")
        tmp.write_text(
            "".join(
                json.dumps({"prompt_id": i, "reply": r}) + "\n"
                for i, r in zip(ids, replies, strict=True)
            ),
            encoding="utf-8",
        )
        tmp.replace(store)
    return [
        TextRow(
            f"response:{p.prompt_id}",
            "response",
            conversation=(Message("user", p.user), Message("assistant", r)),
        )
        for p, r in zip(prompts, replies, strict=True)
        if r.strip()
    ]
