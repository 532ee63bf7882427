"""The live steering demo for talks: original, steered and ablated answers side by side.

- :mod:`~interp.demo.inputs`: the controls as a checked request, rendered by the study's templates;
- :mod:`~interp.demo.presets`: the preset examples (interp's items);
- :mod:`~interp.demo.catalog`: the directions on offer (paths, the newest study's, `interp
  directions` runs, or a derived persona);
- :mod:`~interp.demo.session`: the computation (scores, projections, streamed greedy answers);
- :mod:`~interp.demo.grades`: the offline grade of each answer (agrees with the user or not);
- :mod:`~interp.demo.server`: the local web page over Server-Sent Events;
- :mod:`~interp.demo.tui`: the same comparison as a rich table in a terminal.
"""

from interp.demo.catalog import (
    CatalogEntry,
    build_catalog,
    demo_persona_direction,
    direction_runs,
    persona_entry,
)
from interp.demo.inputs import DemoInputError, DemoRequest, build_prompt, request_from_params
from interp.demo.presets import PRESETS, Preset
from interp.demo.session import VARIANTS, DemoResult, DemoSession, collect, rowwise_edits

__all__ = [
    "PRESETS",
    "VARIANTS",
    "CatalogEntry",
    "DemoInputError",
    "DemoRequest",
    "DemoResult",
    "DemoSession",
    "Preset",
    "build_catalog",
    "build_prompt",
    "collect",
    "demo_persona_direction",
    "direction_runs",
    "persona_entry",
    "request_from_params",
    "rowwise_edits",
]
