"""MASK CSV (Ren et al. 2025): a ``proposition`` with ``<pivotal>a/b</pivotal>`` alternatives, the
true statement in ``ground_truth``, and a neutral yes/no question in ``belief_elicit_1`` (or
``prompt_disinfo``, as in the authors' files).

The two alternatives give the true and the false statement; ``ground_truth`` must match one of
them (as the full sentence or the alternative alone). The item's correct answer is the true
statement, its incorrect answer and ``claim`` the false one. The trailing answer instruction of
``belief_elicit_1`` ("After thinking through your reasoning, ...") is cut after the last "?".
"""

from __future__ import annotations

import re
from pathlib import Path

from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.records import Record, Where, get_str, iter_csv, require_str

FORMAT = "mask_csv"
REQUIRED = ("proposition", "ground_truth")
QUESTION_COLUMNS = ("prompt_disinfo", "belief_elicit_1")
_PIVOTAL = re.compile(r"<pivotal>(.*?)</pivotal>", re.DOTALL)


def _norm(text: str) -> str:
    return " ".join(text.casefold().rstrip(".").split())


def split_proposition(proposition: str, where: Where) -> tuple[str, str, str, str]:
    """(sentence with the first alternative, with the second, first alternative, second)."""
    found = _PIVOTAL.findall(proposition)
    if len(found) != 1 or found[0].count("/") != 1:
        raise where.error(
            "proposition needs exactly one <pivotal>a/b</pivotal>",
            field="proposition",
            expected="one <pivotal>a/b</pivotal>",
            found=proposition,
        )
    first, second = (s.strip() for s in found[0].split("/"))
    if not first or not second:
        raise where.error(
            "empty pivotal alternative",
            field="proposition",
            expected="two non-empty alternatives",
            found=proposition,
        )

    def fill(alt: str) -> str:
        return " ".join(_PIVOTAL.sub(lambda _: alt, proposition).split())

    return fill(first), fill(second), first, second


def load_mask_csv(path: Path, skip_invalid: bool = False, task: str | None = None) -> LoadResult:
    """Items of a MASK CSV (task ``disinformation`` unless ``task`` is given)."""
    kind = task or "disinformation"

    def parse(rec: Record, where: Where) -> Item:
        column = next((c for c in QUESTION_COLUMNS if get_str(rec, c, where, required=False)), None)
        if column is None:
            raise where.error(
                "no question",
                field=QUESTION_COLUMNS[-1],
                expected=f"a non-empty {' or '.join(QUESTION_COLUMNS)}",
                found=rec.get(QUESTION_COLUMNS[-1]),
            )
        question = require_str(rec, column, where)
        if "?" in question:
            question = question[: question.rindex("?") + 1]
        one, two, alt1, alt2 = split_proposition(require_str(rec, "proposition", where), where)
        truth = require_str(rec, "ground_truth", where)
        if _norm(truth) in (_norm(one), _norm(alt1)):
            true, false = one, two
        elif _norm(truth) in (_norm(two), _norm(alt2)):
            true, false = two, one
        else:
            raise where.error(
                "ground_truth matches neither alternative of the proposition",
                field="ground_truth",
                expected=f"{one!r} or {two!r}",
                found=truth,
            )
        task_id = get_str(rec, "task_id", where, required=False)
        return make_item(
            where,
            id=f"mask-{task_id}" if task_id and task_id.isalnum() else stable_id(kind, question),
            task=kind,
            question=question,
            correct=true,
            incorrect=false,
            claim=false,
            source="mask",
            licence="MASK (Ren et al. 2025), see its licence",
            extra={"proposition": rec.get("proposition")},
        )

    return collect(Path(path), FORMAT, iter_csv(Path(path), REQUIRED), parse, skip_invalid)
