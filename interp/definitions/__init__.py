"""The study's direction definitions: which activations make each one, and what comes out.

- :mod:`.contrasts`: row sets (prompts read at a position) and positive/negative contrasts;
- :mod:`.sources`: the five definitions (finetune, persona, sad_context, sycophancy,
  sycophancy_ab) as contrasts over the project's prompts and reply triples;
- :mod:`.activations`: caches per (model, row set, site kind) and forced-choice labels, reused;
- :mod:`.inputs`: the shared command options and :func:`prepare`;
- :mod:`.stability`: split halves over items with a sign-flip / permutation null;
- :mod:`.compute`: directions, stability table and cosines between definitions;
- :mod:`.store`: finding a saved direction by label;
- :mod:`.fallback`: quick persona and sycophancy directions (only behind ``--fallback-directions``).
"""

from interp.definitions.compute import definition_cosines, definition_directions, label_of
from interp.definitions.contrasts import Contrast, ContrastError, Ref, RowSet, gather
from interp.definitions.inputs import DEFINITIONS, DefinitionInputs, Prepared, prepare
from interp.definitions.stability import grouped_split_half
from interp.definitions.store import resolve_direction

__all__ = [
    "DEFINITIONS",
    "Contrast",
    "ContrastError",
    "DefinitionInputs",
    "Prepared",
    "Ref",
    "RowSet",
    "definition_cosines",
    "definition_directions",
    "gather",
    "grouped_split_half",
    "label_of",
    "prepare",
    "resolve_direction",
]
