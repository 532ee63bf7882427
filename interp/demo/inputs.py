"""What the speaker asks for, checked, and the conversation it becomes.

A :class:`DemoRequest` is one state of the demo's controls: a question (one of interp's items, or
typed), the sad-context and wrong-belief toggles, a direction, a layer and alpha. Every check
names the control that is wrong (:class:`DemoInputError` carries the field), so the page can show
the message beside it. :func:`build_prompt` renders the request through the study's own templates
(:func:`interp.data.render_user`): the same statement assignment, preface and belief wording as the
evaluation, so what the audience sees is a prompt of the study.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from interp.chat import Message
from interp.data.contexts import UNMODIFIED, Condition, assign_statement
from interp.data.items import Item
from interp.data.templates import Variant, render_user
from interp.errors import InterpError

SAD = "emotion:sad"
MAX_QUESTION_CHARS = 600
# fill the Item fields of a typed question that the chosen template never renders
_NO_CORRECT, _NO_WRONG = "(correct answer not stated)", "(wrong answer not stated)"


class DemoInputError(InterpError, ValueError):
    """A control holds an invalid value; ``field`` names the control."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DemoRequest:
    """One state of the controls.

    ``item_id`` picks one of interp's items (its question and answers); without it ``question``
    is typed, and ``wrong`` (and optionally ``correct``) give the answers. ``wrong`` also
    overrides an item's incorrect answer (e.g. "London" for the capital of France).
    """

    question: str = ""
    item_id: str | None = None
    correct: str | None = None
    wrong: str | None = None
    sad: bool = False
    belief: bool = False
    direction: str = ""
    layer: int = 0
    alpha: float = 0.0

    def key(self) -> str:
        """Everything but alpha: the page's agreement-vs-alpha chart restarts when this changes."""
        return "|".join(
            str(v)
            for v in (
                self.item_id,
                self.question,
                self.correct,
                self.wrong,
                self.sad,
                self.belief,
                self.direction,
                self.layer,
            )
        )


@dataclass(frozen=True)
class BuiltPrompt:
    """The conversation a request asks, its user text, and the forced-choice candidates
    ``(correct, wrong)`` (None when the answers are not both known); ``item`` is the item as
    asked (its wrong answer overridden when the request gives one), ``belief`` whether the user
    states the wrong answer."""

    conversation: tuple[Message, ...]
    user: str
    candidates: tuple[str, str] | None
    item: Item | None = None
    belief: bool = False


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _parse_bool(field: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "on", "yes"):
        return True
    if low in ("0", "false", "off", "no", ""):
        return False
    raise DemoInputError(field, f"expected on/off, found {raw!r}")


def _parse_number(field: str, raw: str | None, kind: type[int] | type[float]) -> int | float:
    if raw is None or not raw.strip():
        raise DemoInputError(field, "missing")
    try:
        value = kind(raw.strip())
    except ValueError:
        raise DemoInputError(
            field, f"expected {'an integer' if kind is int else 'a number'}, found {raw!r}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise DemoInputError(field, f"expected a finite number, found {raw!r}")
    return value


def request_from_params(params: Mapping[str, str]) -> DemoRequest:
    """A request from the page's query parameters (strings); malformed values name their field."""
    return DemoRequest(
        question=params.get("question", ""),
        item_id=_clean(params.get("item")),
        correct=_clean(params.get("correct")),
        wrong=_clean(params.get("wrong")),
        sad=_parse_bool("sad", params.get("sad", "")),
        belief=_parse_bool("belief", params.get("belief", "")),
        direction=params.get("direction", "").strip(),
        layer=int(_parse_number("layer", params.get("layer"), int)),
        alpha=float(_parse_number("alpha", params.get("alpha"), float)),
    )


def check_request(
    request: DemoRequest, directions: Mapping[str, tuple[int, ...]], alpha_limit: float
) -> None:
    """Raise :class:`DemoInputError` for the first invalid control.

    ``directions`` maps each known direction name to its layers.
    """
    if request.item_id is None and not request.question.strip():
        raise DemoInputError("question", "type a question or pick a preset")
    if len(request.question) > MAX_QUESTION_CHARS:
        raise DemoInputError(
            "question", f"at most {MAX_QUESTION_CHARS} characters, found {len(request.question)}"
        )
    if request.direction not in directions:
        known = ", ".join(directions) or "none"
        raise DemoInputError(
            "direction", f"unknown direction {request.direction!r}; known: {known}"
        )
    layers = directions[request.direction]
    if request.layer not in layers:
        raise DemoInputError(
            "layer",
            f"direction {request.direction!r} has layers {_span(layers)}, not {request.layer}",
        )
    if not -alpha_limit <= request.alpha <= alpha_limit:
        raise DemoInputError(
            "alpha", f"must lie in [{-alpha_limit:g}, {alpha_limit:g}], found {request.alpha:g}"
        )
    if request.item_id is None and request.belief and request.wrong is None:
        raise DemoInputError("wrong", "a stated wrong belief needs the wrong answer")


def _span(layers: tuple[int, ...]) -> str:
    if layers and layers == tuple(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}..{layers[-1]}"
    return str(list(layers))


def _typed_item(request: DemoRequest) -> Item:
    digest = hashlib.sha256(request.question.strip().encode()).hexdigest()[:10]
    try:
        return Item(
            id=f"typed-{digest}",
            task="general_knowledge",
            question=request.question.strip(),
            correct=request.correct or _NO_CORRECT,
            incorrect=request.wrong or _NO_WRONG,
        )
    except ValueError as exc:
        raise DemoInputError("wrong", str(exc)) from None


def build_prompt(
    request: DemoRequest, items: Mapping[str, Item], contexts: Mapping[str, Condition]
) -> BuiltPrompt:
    """The conversation of a checked request, rendered by the study's templates.

    Belief on: the paper's "incorrect" template (friends preface, question, "I think the answer
    is {wrong}."); off: the bare question. Sad on: the sad statement the study assigns to this
    item, prepended.
    """
    if request.item_id is not None:
        if request.item_id not in items:
            raise DemoInputError("item", f"unknown item {request.item_id!r}")
        item = items[request.item_id]
        if request.wrong is not None and request.wrong.casefold() != item.incorrect.casefold():
            if request.wrong.casefold() == item.correct.casefold():
                raise DemoInputError("wrong", f"{request.wrong!r} is the correct answer")
            item = replace(item, incorrect=request.wrong, incorrect_aliases=())
        candidates: tuple[str, str] | None = (item.correct, item.incorrect)
    else:
        item = _typed_item(request)
        candidates = (request.correct, request.wrong) if request.correct and request.wrong else None
    condition = SAD if request.sad else UNMODIFIED
    variant = Variant("incorrect" if request.belief else "no_belief", condition)
    statement = assign_statement(item.id, contexts[SAD]) if request.sad else None
    user = render_user(item, variant, statement).text
    return BuiltPrompt((Message("user", user),), user, candidates, item, request.belief)
