"""Chat formatting in one place: every stage renders conversations through this module.

The tokenizer's own chat template is the single source of truth. On top of it this module
locates every message's content inside the rendered text and maps it to token spans, which the
data stage (matched-pair validation), the cache (question / response spans) and fine-tuning
(loss on assistant tokens only) all need.

System prompts. Templates place them differently: Llama-3.1 and Qwen2.5 (ChatML) render them
first; Gemma-3 merges them into the first user turn; Mistral-7B-v0.3 and Mistral-Small-2409
render them inside the LAST user turn only, so a conversation ending with an assistant turn
loses its system prompt; Gemma-2 refuses the system role. :func:`encode_chat` finds the system
prompt wherever the template put it. Where the template drops or refuses it, the system prompt
is merged into a user turn the way the model family does itself (``system + "\n\n" + user``):
into the last user turn for a template that drops it (what Mistral renders when the reply is
generated), into the first for a template that refuses the role (what Gemma-3 does). The
encoding records this in ``system_placement``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from interp.errors import InterpError

Role = Literal["system", "user", "assistant"]


SystemPlacement = Literal["none", "native", "merged-first-user", "merged-last-user"]


class ChatTemplateError(InterpError, ValueError):
    """A conversation could not be rendered or located by the tokenizer's chat template."""


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str


@dataclass(frozen=True)
class MessageSpan:
    """Where one message's content sits in a rendered conversation.

    ``char_start``/``char_end`` index the rendered text; ``tok_start``/``tok_end`` index
    ``ChatEncoding.input_ids`` (half-open, tokens that overlap the content at all).
    """

    index: int
    role: Role
    char_start: int
    char_end: int
    tok_start: int
    tok_end: int


@dataclass(frozen=True)
class ChatEncoding:
    """A rendered, tokenized conversation with the token span of every message.

    ``input_ids``: list of ``seq`` token ids; ``offsets``: ``seq`` (start, end) character offsets
    into ``text``. ``system_placement`` says how a system message was rendered (module doc):
    ``"none"`` (no system message), ``"native"`` (by the template, wherever it put it) or merged
    into the first / last user turn (the template dropped or refused it).
    """

    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    spans: list[MessageSpan]
    system_placement: SystemPlacement = "none"

    def span_of(self, role: Role, occurrence: int = -1) -> MessageSpan:
        """The span of the ``occurrence``-th message with ``role`` (default: the last one)."""
        found = [s for s in self.spans if s.role == role]
        if not found:
            raise ChatTemplateError(f"no {role!r} message in this conversation")
        return found[occurrence]

    def assistant_mask(self) -> list[bool]:
        """``seq`` booleans: True on tokens inside any assistant message's content."""
        mask = [False] * len(self.input_ids)
        for span in self.spans:
            if span.role == "assistant":
                for i in range(span.tok_start, span.tok_end):
                    mask[i] = True
        return mask


def as_messages(
    user: str | Sequence[Message] | Sequence[dict[str, str]],
    system: str | None = None,
    assistant: str | None = None,
) -> list[Message]:
    """Normalise the common call forms into a list of messages.

    ``user`` is either one user turn (then ``system`` and ``assistant`` may wrap it) or a whole
    conversation as ``Message`` objects or ``{"role", "content"}`` dicts.
    """
    if isinstance(user, str):
        messages: list[Message] = []
        if system is not None:
            messages.append(Message("system", system))
        messages.append(Message("user", user))
        if assistant is not None:
            messages.append(Message("assistant", assistant))
        return messages
    if system is not None or assistant is not None:
        raise ChatTemplateError("pass system/assistant only with a single user string")
    out = []
    for i, m in enumerate(user):
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict) and m.get("role") in ("system", "user", "assistant"):
            out.append(Message(m["role"], str(m.get("content", ""))))  # type: ignore[arg-type]
        else:
            raise ChatTemplateError(
                f"message {i}: expected role system/user/assistant, found {m!r}"
            )
    return out


def template_name(tokenizer: Any) -> str:
    """How error messages name a tokenizer's chat template (its model folder or id)."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return f"the chat template of {name}"


def chat_text(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool) -> str:
    """Render ``messages`` with the tokenizer's chat template to a string (not tokenized)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ChatTemplateError(
            f"tokenizer {type(tokenizer).__name__} has no chat_template; "
            "load an instruct model or set tokenizer.chat_template"
        )
    try:
        rendered = tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    except Exception as exc:  # jinja2 TemplateError, or raise_exception() inside the template
        if type(exc).__module__.startswith("jinja2") or "TemplateError" in type(exc).__name__:
            raise ChatTemplateError(
                f"{template_name(tokenizer)} refused the conversation "
                f"({', '.join(m.role for m in messages)}): {exc}"
            ) from None
        raise
    if not isinstance(rendered, str):
        raise ChatTemplateError(f"chat template returned {type(rendered).__name__}, expected str")
    return rendered


def merge_system(messages: Sequence[Message], into: Literal["first", "last"]) -> list[Message]:
    """``messages`` with the leading system message merged into the first or last user turn as
    ``system + "\n\n" + user`` (how Gemma-3 and Mistral render a system prompt)."""
    if not messages or messages[0].role != "system":
        return list(messages)
    system, rest = messages[0], list(messages[1:])
    users = [i for i, m in enumerate(rest) if m.role == "user"]
    if not users:
        raise ChatTemplateError("a system message can only be merged into a user turn; none found")
    at = users[0] if into == "first" else users[-1]
    merged = rest[at].content if not system.content else f"{system.content}\n\n{rest[at].content}"
    rest[at] = Message("user", merged)
    return rest


def encode_chat(
    tokenizer: Any,
    messages: Sequence[Message],
    add_generation_prompt: bool = True,
) -> ChatEncoding:
    """Render and tokenize a conversation and locate every message's tokens.

    The rendered text is tokenized without extra special tokens (the template already holds
    them). Messages are located by their verbatim content, in order; a system prompt that the
    template moved (Mistral: into the last user turn) is found where it is, and one it dropped
    or refused is merged into a user turn (module doc). A template that rewrites content
    (strips or escapes it) raises ``ChatTemplateError`` naming the message.
    """
    messages = list(messages)
    systems = [i for i, m in enumerate(messages) if m.role == "system"]
    placement: SystemPlacement = "native" if systems else "none"
    try:
        text = chat_text(tokenizer, messages, add_generation_prompt)
        refused = False
    except ChatTemplateError:
        if systems != [0]:
            raise
        text, refused = "", True
    if systems == [0] and (refused or not _contains(text, messages[0].content)):
        into: Literal["first", "last"] = "first" if refused else "last"
        how = "refused the system role" if refused else "dropped the system prompt"
        try:
            text = chat_text(tokenizer, merge_system(messages, into), add_generation_prompt)
        except ChatTemplateError as exc:
            raise ChatTemplateError(
                f"{template_name(tokenizer)} {how}, and merging it into the {into} user turn "
                f"failed too: {exc}"
            ) from None
        if not _contains(text, messages[0].content):
            raise ChatTemplateError(
                f"{template_name(tokenizer)} {how}, even merged into the {into} user turn; "
                "this conversation cannot carry a system prompt with this model"
            )
        placement = "merged-first-user" if into == "first" else "merged-last-user"
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    chars = _locate_in_order(text, messages)
    if chars is None:
        chars = _locate_system_anywhere(text, messages)
    spans = [
        MessageSpan(i, m.role, a, b, *char_span_to_token_span(offsets, a, b))
        for i, (m, (a, b)) in enumerate(zip(messages, chars, strict=True))
    ]
    return ChatEncoding(
        text=text, input_ids=ids, offsets=offsets, spans=spans, system_placement=placement
    )


def _contains(text: str, content: str) -> bool:
    return not content.strip() or content in text or content.strip() in text


def _find(
    text: str, content: str, start: int, taken: Sequence[tuple[int, int]] = ()
) -> tuple[int, int] | None:
    """First occurrence of ``content`` (verbatim, else stripped) at or after ``start`` that
    overlaps no span in ``taken``."""
    if not content:
        return start, start
    for needle in dict.fromkeys((content, content.strip())):
        if not needle:
            continue
        at = text.find(needle, start)
        while at >= 0:
            end = at + len(needle)
            if not any(at < b and a < end for a, b in taken):
                return at, end
            at = text.find(needle, at + 1)
    return None


def _not_found(i: int, m: Message) -> ChatTemplateError:
    return ChatTemplateError(
        f"message {i} ({m.role}) is not found verbatim in the rendered chat; "
        "the template changed its content"
    )


def _locate_in_order(text: str, messages: Sequence[Message]) -> list[tuple[int, int]] | None:
    """Character spans of every message, each found after the previous one; ``None`` when a
    system message is out of order (a non-system message not found raises)."""
    out: list[tuple[int, int]] = []
    cursor = 0
    for i, m in enumerate(messages):
        found = _find(text, m.content, cursor)
        if found is None:
            if any(x.role == "system" for x in messages):
                return None
            raise _not_found(i, m)
        out.append(found)
        cursor = found[1]
    return out


def _locate_system_anywhere(text: str, messages: Sequence[Message]) -> list[tuple[int, int]]:
    """Each system message wherever the template put it, and the other messages in order
    outside its span; if that fails, the other messages first and the system messages in what
    is left (a user turn may quote the system prompt, or the system prompt a user turn)."""
    systems = [i for i, m in enumerate(messages) if m.role == "system"]
    others = [i for i in range(len(messages)) if i not in systems]
    attempt: list[int] = []
    for first, then in ((systems, others), (others, systems)):
        found: dict[int, tuple[int, int]] = {}
        for group in (first, then):
            cursor = 0
            for i in group:
                span = _find(text, messages[i].content, cursor, list(found.values()))
                if span is None:
                    break
                found[i] = span
                cursor = span[1] if messages[i].role != "system" else 0
        if len(found) == len(messages):
            return [found[i] for i in range(len(messages))]
        attempt = [i for i in range(len(messages)) if i not in found]
    i = attempt[0] if attempt else 0
    raise _not_found(i, messages[i])


def char_span_to_token_span(
    offsets: Sequence[tuple[int, int]], char_start: int, char_end: int
) -> tuple[int, int]:
    """Half-open token range of the tokens that overlap characters ``[char_start, char_end)``.

    An empty character span maps to an empty token range at the first token at or after it.
    """
    first = None
    last = None
    for t, (a, b) in enumerate(offsets):
        if b <= a:  # zero-width (special) tokens never belong to content
            continue
        if b > char_start and a < char_end:
            if first is None:
                first = t
            last = t
    if first is None or last is None:
        at = next((t for t, (a, _) in enumerate(offsets) if a >= char_start), len(offsets))
        return at, at
    return first, last + 1
