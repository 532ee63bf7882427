"""Interpersonal contexts: the nine conditions, their statements, and the seeded assignment."""

from __future__ import annotations

import json
import re

import pytest

from interp.data.contexts import (
    CONDITIONS,
    UNMODIFIED,
    assign_statement,
    default_contexts_path,
    load_contexts,
    parse_contexts,
)
from interp.data.errors import DataFormatError

PAPER_CONDITIONS = {
    "emotion:sad",
    "emotion:happy",
    "emotion:anger",
    "relation:close",
    "relation:hierarchical_up",
    "relation:hierarchical_down",
    "stake:high",
    "stake:low",
}


def test_the_paper_conditions_plus_unmodified():
    contexts = load_contexts()
    assert set(contexts) == PAPER_CONDITIONS | {UNMODIFIED}
    assert list(contexts) == list(CONDITIONS)
    assert contexts[UNMODIFIED].statements == ()
    for name in PAPER_CONDITIONS:
        cond = contexts[name]
        assert len(cond.statements) >= 6
        assert cond.group == name.split(":")[0]
        assert all(s.condition == name and s.text.strip() == s.text for s in cond.statements)
    assert contexts["stake:high"].drops_preface and not contexts["emotion:sad"].drops_preface


def test_statements_are_first_person_and_unique():
    contexts = load_contexts()
    texts = [s.text for c in contexts.values() for s in c.statements]
    assert len(set(texts)) == len(texts)
    for t in texts:
        assert re.search(r"\b(I|me|my|we|our)\b", t), f"not first person: {t}"


def test_assignment_is_seeded_stable_and_independent_of_other_items():
    contexts = load_contexts()
    sad = contexts["emotion:sad"]
    a = [assign_statement(f"gk-{i:03d}", sad, seed=0) for i in range(50)]
    assert a == [assign_statement(f"gk-{i:03d}", sad, seed=0) for i in range(50)]
    assert assign_statement("gk-007", sad, 0) == a[7]  # no dependence on what else is built
    assert len({s.id for s in a if s}) >= 4  # spread over the statements
    b = [assign_statement(f"gk-{i:03d}", sad, seed=1) for i in range(50)]
    assert a != b
    assert assign_statement("gk-001", contexts[UNMODIFIED]) is None


def test_parse_contexts_rejects_bad_files(tmp_path):
    raw = json.loads(default_contexts_path().read_text())
    raw["conditions"]["emotion:sad"]["statements"] = raw["conditions"]["emotion:sad"]["statements"][
        :4
    ]
    with pytest.raises(DataFormatError, match="at least 5 statements"):
        parse_contexts(raw)
    raw = json.loads(default_contexts_path().read_text())
    del raw["conditions"]["stake:low"]
    with pytest.raises(DataFormatError, match="conditions must be exactly"):
        parse_contexts(raw)
    raw = json.loads(default_contexts_path().read_text())
    raw["conditions"]["emotion:happy"]["statements"][0]["text"] = "no final punctuation"
    with pytest.raises(DataFormatError, match="end with"):
        parse_contexts(raw)
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="cannot read contexts file"):
        load_contexts(path)
