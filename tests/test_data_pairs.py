"""Matched pairs line up token by token; the validator catches pairs that do not."""

from __future__ import annotations

import dataclasses

import pytest

from interp.data.contexts import load_contexts
from interp.data.items import Item, load_embedded_items
from interp.data.pairs import (
    MatchedPair,
    PairMisalignedError,
    check_pair,
    matched_pairs,
    validate_pairs,
)
from interp.data.prompt_sets import build_prompts
from interp.data.templates import TemplateStyle, variant_set


@pytest.fixture(scope="module")
def tiny_tok():
    from interp.tiny_models import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="module")
def contexts():
    return load_contexts()


@pytest.fixture(scope="module")
def all_prompts(contexts):
    """Every embedded item in the extended grid (the paper's 28 variants + 6 preface controls)."""
    return build_prompts(load_embedded_items(), variant_set("extended"), contexts)


def test_every_item_has_its_pairs(all_prompts):
    pairs = matched_pairs(all_prompts)
    by_item: dict[str, set[tuple[str, str, str]]] = {}
    for p in pairs:
        by_item.setdefault(p.a.item_id, set()).add((p.kind, p.a.condition, p.a.template))
    n_items = len({p.item_id for p in all_prompts})
    assert len(by_item) == n_items
    for keys in by_item.values():
        assert ("context", "emotion:sad", "no_belief") in keys  # sad vs neutral
        assert ("belief", "unmodified", "incorrect") in keys  # belief vs no belief
        assert ("belief", "unmodified", "doubt") in keys
        assert ("belief", "emotion:sad", "incorrect") in keys
        assert len(keys) == 8 * 4 - 2 + 9 * 2  # 30 context pairs + 18 belief pairs
    sad = next(p for p in pairs if p.a.condition == "emotion:sad" and p.a.template == "no_belief")
    assert (
        sad.b.condition == "unmodified"
        and sad.b.template == "no_belief"
        and sad.edit == "insertion"
    )
    stake = next(
        p
        for p in pairs
        if p.a.condition == "stake:high" and p.a.template == "incorrect" and p.kind == "context"
    )
    assert stake.edit == "replacement"


def test_pairs_pass_for_the_tiny_tokenizer(tiny_tok, all_prompts):
    report = validate_pairs(tiny_tok, all_prompts)
    assert report.ok and len(report.checks) == len(matched_pairs(all_prompts))
    check = next(c for c in report.checks if c.kind == "context" and c.condition == "emotion:sad")
    a0, a1 = check.a_tokens
    assert a1 > a0 and check.b_tokens[0] == check.b_tokens[1] == a0  # pure insertion
    assert check.a_diff.endswith("\n\n")


@pytest.mark.embedded
def test_pairs_pass_for_the_embedded_tokenizer(all_prompts):
    from interp.models import load_tokenizer

    report = validate_pairs(load_tokenizer("smollm2-135m-instruct"), all_prompts)
    assert report.ok, report.summary()


@pytest.mark.embedded
def test_validator_catches_a_space_separator_merging_into_the_question(contexts):
    from interp.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    items = load_embedded_items(["general_knowledge"])[:2]
    prompts = build_prompts(items, variant_set("grid"), contexts, style=TemplateStyle(sep=" "))
    report = validate_pairs(tok, prompts, strict=False)
    bad = [c for c in report.failures if c.template == "no_belief"]
    assert bad, "with a space separator ' What' should straddle the statement/question boundary"
    assert "straddles the boundary" in bad[0].reason and items[0].id in bad[0].describe()
    with pytest.raises(PairMisalignedError) as err:
        validate_pairs(tok, prompts)
    assert items[0].id in str(err.value) and "merged across" in str(err.value)


def _sad_pair(contexts, question_b: str | None = None, user_b: str | None = None) -> MatchedPair:
    item = Item(
        "gk-plant", "general_knowledge", "What is the capital city of France?", "Paris", "Lyon"
    )
    prompts = build_prompts(
        [item], variant_set("grid", conditions=["unmodified", "emotion:sad"]), contexts
    )
    pair = next(
        p for p in matched_pairs(prompts) if p.kind == "context" and p.a.template == "no_belief"
    )
    b = pair.b
    if question_b is not None:
        b = dataclasses.replace(b, user=question_b, spans={"question": (0, len(question_b))})
    if user_b is not None:
        b = dataclasses.replace(b, user=user_b)
    return dataclasses.replace(pair, b=b)


def test_validator_catches_planted_misaligned_pairs(tiny_tok, contexts):
    ok = check_pair(tiny_tok, _sad_pair(contexts))
    assert ok.ok, ok.reason
    other_question = check_pair(
        tiny_tok, _sad_pair(contexts, question_b="What is the capital city of Spain?")
    )
    assert not other_question.ok and "question text differs" in other_question.reason
    assert other_question.item_id == "gk-plant" and other_question.condition == "emotion:sad"


def test_validator_catches_tokens_merging_across_the_boundary(tiny_tok, contexts):
    # A question that starts with a lower-case word the tiny BPE knows with a leading space
    # (" the"): joined with a space, the space and "the" become one token across the boundary.
    item = Item(
        "gk-merge", "general_knowledge", "the capital of France is which city?", "Paris", "Lyon"
    )
    prompts = build_prompts(
        [item],
        variant_set("grid", conditions=["unmodified", "emotion:sad"]),
        contexts,
        style=TemplateStyle(sep=" "),
    )
    report = validate_pairs(tiny_tok, prompts, strict=False)
    bad = {c.template: c for c in report.failures if c.kind == "context"}
    assert "no_belief" in bad, report.summary()
    assert "' the'" in bad["no_belief"].reason and "straddles" in bad["no_belief"].reason
    assert bad["no_belief"].describe().startswith("gk-merge emotion:sad/no_belief (context pair)")
    # the same item with the default blank-line separator lines up
    assert validate_pairs(tiny_tok, build_prompts([item], variant_set("grid"), contexts)).ok


def test_validator_catches_a_change_outside_the_statement(tiny_tok, contexts):
    pair = _sad_pair(contexts)
    a = pair.a
    changed = dataclasses.replace(a, user=a.user.replace("France?", "France?!"))
    check = check_pair(tiny_tok, dataclasses.replace(pair, a=changed))
    assert not check.ok and "outside the edited segment" in check.reason
