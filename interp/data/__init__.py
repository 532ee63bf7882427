"""Study data: items, interpersonal contexts, prompt templates, matched pairs, loaders for the
real formats, and prompt sets on disk.

The flow: items (:mod:`~interp.data.items`, or a user's file through :mod:`~interp.data.loaders`)
x conditions with their statements (:mod:`~interp.data.contexts`) x templates
(:mod:`~interp.data.templates`) -> prompts with matched-pair keys
(:mod:`~interp.data.prompt_sets`), validated against a tokenizer (:mod:`~interp.data.pairs`)
and written as a hashed prompt set (:func:`~interp.data.build.prompt_list` builds the prompts;
:mod:`interp.commands.data` is the ``interp data build`` command).
"""

from interp.data.contexts import (
    CONDITIONS,
    UNMODIFIED,
    Condition,
    Statement,
    assign_statement,
    load_contexts,
)
from interp.data.errors import DataFormatError, SkipReport, TemplateError
from interp.data.items import ALL_TASKS, PAPER_TASKS, Item, load_embedded_items, read_items_jsonl
from interp.data.loaders import FORMATS, LoadResult, load_eval_data_prompts, load_items
from interp.data.pairs import (
    MatchedPair,
    PairCheck,
    PairMisalignedError,
    PairReport,
    check_pair,
    matched_pairs,
    validate_pairs,
)
from interp.data.prompt_sets import (
    Prompt,
    PromptSet,
    build_prompts,
    count_prompts,
    read_prompt_set,
    write_prompt_set,
)
from interp.data.templates import (
    GRID,
    TEMPLATES,
    VARIANT_SETS,
    TemplateStyle,
    Variant,
    render_user,
    variant_set,
)

__all__ = [
    "ALL_TASKS",
    "CONDITIONS",
    "FORMATS",
    "GRID",
    "PAPER_TASKS",
    "TEMPLATES",
    "UNMODIFIED",
    "VARIANT_SETS",
    "Condition",
    "DataFormatError",
    "Item",
    "LoadResult",
    "MatchedPair",
    "PairCheck",
    "PairMisalignedError",
    "PairReport",
    "Prompt",
    "PromptSet",
    "SkipReport",
    "Statement",
    "TemplateError",
    "TemplateStyle",
    "Variant",
    "assign_statement",
    "build_prompts",
    "check_pair",
    "count_prompts",
    "load_contexts",
    "load_embedded_items",
    "load_eval_data_prompts",
    "load_items",
    "matched_pairs",
    "read_items_jsonl",
    "read_prompt_set",
    "render_user",
    "validate_pairs",
    "variant_set",
    "write_prompt_set",
]
