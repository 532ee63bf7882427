"""Matched pairs and their validator.

A matched pair is two prompts of the same item that differ by one inserted segment: a context
pair adds the condition's statement to the unmodified prompt of the same template (with stake
statements in belief templates the statement replaces the friends preface); a belief pair adds
the belief sentence to the prompt without it. Contrasts between the two (activation differences,
answer flips) are then attributable to the statement alone.

The validator renders both prompts with the tokenizer's chat template and checks, per pair, that
the token sequences are a common prefix, a differing middle, and a common suffix; that the
differing middle lies inside the inserted segment (with its separator); and that every token of
the question lies in the common part with identical ids in both. A tokenizer that merges across a
boundary (for example a space-prefixed first word of the question) fails with the item and the
tokens that did not line up.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from interp.chat import ChatEncoding, as_messages, encode_chat
from interp.data.errors import DataFormatError
from interp.data.prompt_sets import Prompt

PairKind = Literal["context", "belief"]


class PairMisalignedError(DataFormatError):
    """Matched pairs whose tokens do not line up; the message lists the items and why."""


@dataclass(frozen=True)
class MatchedPair:
    """``a`` is ``b`` plus one inserted (or, for ``edit="replacement"``, swapped) segment."""

    kind: PairKind
    edit: str
    a: Prompt
    b: Prompt

    @property
    def key(self) -> str:
        """``<a prompt id>~<b prompt id>``."""
        return f"{self.a.prompt_id}~{self.b.prompt_id}"

    @property
    def edited(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The segment names that differ in ``a`` and in ``b``."""
        if self.kind == "belief":
            return ("belief",), ()
        return ("statement",), (("preface",) if self.edit == "replacement" else ())


def matched_pairs(
    prompts: Sequence[Prompt], kinds: Sequence[str] = ("context", "belief")
) -> list[MatchedPair]:
    """All matched pairs named by the prompts' ``context_base`` / ``belief_base`` keys.

    A key naming a prompt that is not in ``prompts`` is an error (the set is inconsistent).
    """
    by_id = {p.prompt_id: p for p in prompts}
    out = []
    for p in prompts:
        for kind, base_id, edit in (
            ("context", p.context_base, p.context_edit or "insertion"),
            ("belief", p.belief_base, "insertion"),
        ):
            if base_id is None or kind not in kinds:
                continue
            if base_id not in by_id:
                raise DataFormatError(
                    f"prompt {p.prompt_id} names {kind} pair {base_id}, which is not in the set"
                )
            out.append(MatchedPair(kind, edit, p, by_id[base_id]))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class PairCheck:
    """The validator's verdict on one pair.

    ``a_tokens``/``b_tokens``: the half-open token range that differs in each rendered chat;
    ``a_diff``/``b_diff``: those tokens' text.
    """

    key: str
    item_id: str
    condition: str
    template: str
    kind: str
    ok: bool
    reason: str
    a_tokens: tuple[int, int] = (0, 0)
    b_tokens: tuple[int, int] = (0, 0)
    a_diff: str = ""
    b_diff: str = ""

    def describe(self) -> str:
        """One line naming the item, the pair and the verdict."""
        head = f"{self.item_id} {self.condition}/{self.template} ({self.kind} pair)"
        if self.ok:
            return (
                f"{head}: ok, tokens {self.a_tokens} vs {self.b_tokens} differ ({self.a_diff!r} "
                f"vs {self.b_diff!r})"
            )
        return f"{head}: {self.reason}"


@dataclass(frozen=True)
class PairReport:
    """All checks of one validation run."""

    tokenizer: str
    checks: list[PairCheck]

    @property
    def failures(self) -> list[PairCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        """Whether every pair lined up."""
        return not self.failures

    def summary(self, limit: int = 5) -> str:
        """How many pairs lined up, and the first ``limit`` failures."""
        bad = self.failures
        text = (
            f"{len(self.checks) - len(bad)} of {len(self.checks)} matched pairs line up for "
            f"{self.tokenizer}"
        )
        if bad:
            text += "; failures:\n" + "\n".join("  " + c.describe() for c in bad[:limit])
            if len(bad) > limit:
                text += f"\n  ... and {len(bad) - limit} more"
        return text


def _window(prompt: Prompt, names: Sequence[str], at: int | None = None) -> tuple[int, int]:
    """Characters of the named segments with one separator: the one after them, or (for the last
    segment) the one before. With no named segment present: the empty window at ``at``."""
    chosen = [prompt.spans[n] for n in names if n in prompt.spans]
    if not chosen:
        return (at, at) if at is not None else (0, 0)
    start, end = min(a for a, _ in chosen), max(b for _, b in chosen)
    following = [a for a, _ in prompt.spans.values() if a >= end]
    if following:
        return start, min(following)
    return max([b for _, b in prompt.spans.values() if b <= start], default=start), len(prompt.user)


def _windows(pair: MatchedPair) -> tuple[tuple[int, int], tuple[int, int]]:
    edits_a, edits_b = pair.edited
    wa = _window(pair.a, edits_a)
    return wa, _window(pair.b, edits_b, at=wa[0])


def _text_problem(pair: MatchedPair) -> str | None:
    a, b = pair.a, pair.b
    if a.item_id != b.item_id:
        return f"the two prompts belong to different items ({a.item_id} vs {b.item_id})"
    qa, qb = a.segment("question"), b.segment("question")
    if qa is None or qb is None or qa != qb:
        return f"the question text differs between the two prompts ({qa!r} vs {qb!r})"
    if any(n not in a.spans for n in pair.edited[0]) or any(
        n not in b.spans for n in pair.edited[1]
    ):
        return (
            f"the {pair.kind} pair lacks its edited segment ({'/'.join(pair.edited[0])} in "
            f"{a.prompt_id})"
        )
    (a0, a1), (b0, b1) = _windows(pair)
    if a.user[:a0] != b.user[:b0] or a.user[a1:] != b.user[b1:]:
        return (
            f"outside the edited segment the two texts differ: {a.user[:a0]!r}...{a.user[a1:]!r} "
            f"vs {b.user[:b0]!r}...{b.user[b1:]!r}"
        )
    if a.user == b.user:
        return "the two prompts are identical"
    return None


def _decode(enc: ChatEncoding, span: tuple[int, int]) -> str:
    return (
        enc.text[enc.offsets[span[0]][0] : enc.offsets[span[1] - 1][1]] if span[1] > span[0] else ""
    )


def _boundary(enc: ChatEncoding, x: int) -> tuple[int, int | None]:
    """(number of tokens ending at or before character ``x``, index of a token straddling it).

    Offsets of a rendered chat increase monotonically, so a binary search finds the boundary.
    """
    n = bisect.bisect_right(enc.offsets, x, key=lambda o: o[1])
    if n < len(enc.offsets) and enc.offsets[n][0] < x < enc.offsets[n][1]:
        return n, n
    return n, None


def check_pair(
    tokenizer: Any,
    pair: MatchedPair,
    system: str | None = None,
    encodings: dict[str, ChatEncoding] | None = None,
) -> PairCheck:
    """Validate one pair under ``tokenizer``'s chat template (see the module docstring)."""
    a, b = pair.a, pair.b
    verdict = PairCheck(
        pair.key, a.item_id, a.condition, a.template, pair.kind, ok=False, reason=""
    )
    problem = _text_problem(pair)
    if problem:
        return replace(verdict, reason=problem)
    cache = encodings if encodings is not None else {}
    for p in (a, b):
        if p.prompt_id not in cache:
            cache[p.prompt_id] = encode_chat(tokenizer, as_messages(p.user, system=system))
    ea, eb = cache[a.prompt_id], cache[b.prompt_id]
    spans: list[tuple[int, int]] = []
    for p, enc, (lo, hi) in zip((a, b), (ea, eb), _windows(pair), strict=True):
        start = enc.span_of("user").char_start
        t0, bad0 = _boundary(enc, start + lo)
        t1, bad1 = _boundary(enc, start + hi)
        bad = bad0 if bad0 is not None else bad1
        if bad is not None:
            return replace(
                verdict,
                reason=(
                    f"in {p.prompt_id} the token {_decode(enc, (bad, bad + 1))!r} straddles the "
                    "boundary "
                    "of the inserted segment: the tokenizer merged across it (use a separator it "
                    "cannot "
                    "merge across)"
                ),
            )
        spans.append((t0, t1))
    (a0, a1), (b0, b1) = spans
    verdict = replace(
        verdict,
        a_tokens=(a0, a1),
        b_tokens=(b0, b1),
        a_diff=_decode(ea, (a0, a1)),
        b_diff=_decode(eb, (b0, b1)),
    )
    if ea.input_ids[:a0] != eb.input_ids[:b0]:
        return replace(verdict, reason="the tokens before the inserted segment differ")
    if ea.input_ids[a1:] != eb.input_ids[b1:]:
        q_start = ea.span_of("user").char_start + a.spans["question"][0]
        at_question = a1 < len(ea.offsets) and ea.offsets[a1][0] <= q_start
        where = (
            "the question's tokens differ"
            if at_question
            else "the tokens after the inserted segment differ"
        )
        rest_a, rest_b = _decode(ea, (a1, len(ea.input_ids))), _decode(eb, (b1, len(eb.input_ids)))
        return replace(verdict, reason=f"{where}: {rest_a!r} vs {rest_b!r}")
    if ea.input_ids[a0:a1] == eb.input_ids[b0:b1]:
        return replace(verdict, reason="the two prompts tokenize identically")
    return replace(verdict, ok=True)


def validate_pairs(
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    pairs: Sequence[MatchedPair] | None = None,
    system: str | None = None,
    strict: bool = True,
) -> PairReport:
    """Check every matched pair of ``prompts`` (or the given ``pairs``) under ``tokenizer``.

    Each prompt is rendered once. With ``strict`` a failure raises :class:`PairMisalignedError`
    naming the items and why; otherwise the report lists them.
    """
    pairs = matched_pairs(prompts) if pairs is None else pairs
    cache: dict[str, ChatEncoding] = {}
    checks = [check_pair(tokenizer, pair, system, cache) for pair in pairs]
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    report = PairReport(name, checks)
    if strict and not report.ok:
        raise PairMisalignedError(report.summary())
    return report
