"""Items x contexts x templates -> a list of prompts (the library behind ``interp data build``).

Plain arguments only: the command (:mod:`interp.commands.data`) parses options, loads the items
of a user's file, loads a tokenizer for pair validation and writes the prompt set; every other
caller asks :func:`prompt_list` for the prompts it needs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from interp.artifacts import sha256_json
from interp.config import ConfigError
from interp.data.contexts import CONDITIONS, contexts_fingerprint, load_contexts
from interp.data.items import ALL_TASKS, PAPER_TASKS, Item, load_embedded_items, select_items
from interp.data.loaders import load_items
from interp.data.prompt_sets import Prompt, build_prompts
from interp.data.split import Side, side_of
from interp.data.templates import TEMPLATES, VARIANT_SETS, TemplateStyle, variant_set

log = logging.getLogger(__name__)

Separator = Literal["blank-line", "space"]
SEPARATORS: dict[str, str] = {"blank-line": "\n\n", "space": " "}


def check_choices(
    *,
    tasks: Sequence[str] = (),
    conditions: Sequence[str] = (),
    templates: Sequence[str] = (),
    variants: str = "grid",
    per_task: int | None = None,
    seed: int = 0,
) -> None:
    """Refuse unknown tasks, conditions, templates or variant sets (the message names the
    argument and the allowed values)."""
    for name, values, allowed in (
        ("tasks", tasks, ALL_TASKS), ("conditions", conditions, CONDITIONS),
        ("templates", templates, TEMPLATES),
    ):  # fmt: skip
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ConfigError(f"{name}: unknown {bad}; choose from {list(allowed)}")
    if variants not in VARIANT_SETS:
        raise ConfigError(f"variants must be one of {sorted(VARIANT_SETS)}, found {variants!r}")
    if per_task is not None and per_task < 1:
        raise ConfigError(f"per_task must be at least 1, found {per_task}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, found {seed}")


def source_items(
    source: Path, format: str, *, task: str | None = None, skip_invalid: bool = False
) -> tuple[list[Item], dict[str, object]]:
    """Items read from a user's data file, and a description of where they came from."""
    result = load_items(Path(source), format, skip_invalid=skip_invalid, task=task)
    if result.report.count or result.report.merged:
        log.warning("%s", result.report.summary())
    origin: dict[str, object] = {
        "source": str(source), "format": format, "skipped": result.report.count,
        "skipped_by_field": result.report.by_reason(), "merged": result.report.merged,
    }  # fmt: skip
    return result.items, origin


def prompt_list(
    *,
    tasks: Sequence[str] = (),
    conditions: Sequence[str] = (),
    templates: Sequence[str] = (),
    per_task: int | None = None,
    seed: int = 0,
    separator: Separator = "blank-line",
    variants: str = "grid",
    contexts: Path | None = None,
    items: Sequence[Item] | None = None,
    origin: dict[str, object] | None = None,
    side: Side | None = None,
) -> tuple[list[Prompt], dict[str, object]]:
    """The prompts for items x interpersonal contexts x templates, and manifest fields that
    describe their inputs.

    ``tasks`` / ``conditions`` / ``templates``: only these (empty: all); ``per_task``: at most
    this many items per task (the first ones); ``seed``: the statement assignment (the same for
    every model); ``separator``: what joins statement, preface and question; ``variants``: the
    named variant set; ``contexts``: a contexts JSON file instead of the embedded statements;
    ``items``: items to use instead of the embedded ones (``origin`` describes them);
    ``side``: only the items on this side of the derivation / evaluation split
    (:mod:`interp.data.split`), chosen before ``per_task``.
    """
    check_choices(tasks=tasks, conditions=conditions, templates=templates, variants=variants,
                  per_task=per_task, seed=seed)  # fmt: skip
    if items is None:
        items = load_embedded_items([t for t in PAPER_TASKS if not tasks or t in tasks])
        origin = origin or {"source": "preset:embedded"}
    if side is not None:
        items = [i for i in items if side_of(i.id) == side]
    selected = select_items(items, tasks or None, per_task)
    if not selected:
        raise ConfigError("no items left after selecting tasks " + (", ".join(tasks) or "(all)"))
    loaded_contexts = load_contexts(Path(contexts) if contexts else None)
    chosen = variant_set(variants, templates or None, conditions or None)
    if not chosen:
        raise ConfigError(
            f"no variant of set {variants!r} matches the chosen templates and conditions"
        )
    style = TemplateStyle(sep=SEPARATORS[separator])
    prompts = build_prompts(selected, chosen, loaded_contexts, seed=seed, style=style)
    extra: dict[str, object] = {
        "items": origin or {"source": "given"},
        "items_sha256": sha256_json([i.to_record() for i in selected]),
        "contexts_sha256": contexts_fingerprint(loaded_contexts),
        "style": dataclasses.asdict(style),
        "variants": [v.key for v in chosen],
        "split": side or "none",
    }
    return prompts, extra
