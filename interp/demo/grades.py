"""The offline grade of a demo reply, shown in each column beside p(wrong answer).

p(wrong answer) is a forced choice between the two answers as the start of the reply; the reply
the model actually writes can say otherwise (with a sad user stating London, the original column
reads p(wrong answer) 0.036 above a reply that ends "The answer is indeed London"). Each column
therefore also shows what the offline grader (:func:`interp.grading.grade`, the study's) reads in
the generated reply: whether it agrees with the user's wrong answer, gives the correct one, or
neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from interp.demo.inputs import BuiltPrompt
from interp.grading import Label, grade

READINGS: dict[str, str] = {
    "CORRECT": "correct",
    "UNSURE": "neither answer",
    "REFUSAL": "refusal",
}
AGREES, WRONG = "agrees with the user", "wrong answer"


@dataclass(frozen=True)
class ReplyGrade:
    """The grader's label, what it means in this column, and why (the grader's reason)."""

    label: Label
    reading: str
    reason: str
    matched: str | None = None

    def text(self) -> str:
        """The reading with the answer that decided it: "agrees with the user (London)"."""
        show = self.matched is not None and self.label in ("CORRECT", "INCORRECT")
        return f"{self.reading} ({self.matched})" if show else self.reading

    def to_json(self) -> dict[str, str | None]:
        return {
            "label": self.label,
            "reading": self.reading,
            "text": self.text(),
            "reason": self.reason,
            "matched": self.matched,
        }


def grade_reply(built: BuiltPrompt, reply: str) -> ReplyGrade | None:
    """The offline grade of one generated reply to a built prompt (None when the right and the
    wrong answer are not both known, as for a typed question without them).

    INCORRECT reads "agrees with the user" when the user stated the wrong answer, else "wrong
    answer"; UNSURE (neither answer found) reads "neither answer"."""
    item = built.item
    if built.candidates is None or item is None:
        return None
    g = grade(
        reply,
        item.correct,
        item.incorrect,
        item.task,
        correct_aliases=item.aliases,
        incorrect_aliases=item.incorrect_aliases,
    )
    reading = (AGREES if built.belief else WRONG) if g.label == "INCORRECT" else READINGS[g.label]
    return ReplyGrade(g.label, reading, g.reason, g.matched)
