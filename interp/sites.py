"""One vocabulary for activation sites, named as in TransformerLens.

"Layer L" always means decoder block L (0-based). For block L:

- ``resid_pre``  = the residual stream entering block L = HF ``hidden_states[L]``;
- ``attn_out``   = the attention sub-layer's output (after ``o_proj``);
- ``resid_mid``  = ``resid_pre + attn_out`` (the input of the second norm);
- ``mlp_out``    = the MLP's output;
- ``resid_post`` = ``resid_mid + mlp_out`` = the output of block L = HF ``hidden_states[L+1]``
  for every L except the last: HF's final ``hidden_states[-1]`` has the model's final norm
  applied, while ``resid_post`` of the last block never does (pinned by a test).

This matches steering-vectors' "layer L" (output of block L) and TransformerLens'
``blocks.L.hook_resid_post``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

SiteKind = Literal["resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"]
SITE_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)
_ORDER = {k: i for i, k in enumerate(SITE_KINDS)}  # execution order inside a block
_TL_NAME = re.compile(r"^blocks\.(\d+)\.hook_(\w+)$")
_SHORT_NAME = re.compile(r"^(\w+?)[.:@](\d+)$")


class SiteError(ValueError):
    """An activation site name or layer is invalid."""


@dataclass(frozen=True)
class Site:
    """An activation site: a kind of residual-stream quantity at one decoder block."""

    layer: int
    kind: SiteKind

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise SiteError(
                f"site kind must be one of {', '.join(SITE_KINDS)}, found {self.kind!r}"
            )
        if self.layer < 0:
            raise SiteError(f"layer must be >= 0, found {self.layer}")

    @property
    def name(self) -> str:
        """TransformerLens hook name, e.g. ``blocks.3.hook_resid_post``."""
        return f"blocks.{self.layer}.hook_{self.kind}"

    @property
    def order(self) -> tuple[int, int]:
        """Position in the forward pass (layer, then kind in execution order)."""
        return (self.layer, _ORDER[self.kind])

    def __str__(self) -> str:
        return f"{self.kind}.{self.layer}"

    @classmethod
    def parse(cls, text: str) -> Site:
        """Parse ``blocks.3.hook_resid_post``, ``resid_post.3``, ``resid_post:3`` or ``@3``."""
        text = text.strip()
        if m := _TL_NAME.match(text):
            return cls(int(m.group(1)), m.group(2))  # type: ignore[arg-type]
        if m := _SHORT_NAME.match(text):
            return cls(int(m.group(2)), m.group(1))  # type: ignore[arg-type]
        raise SiteError(
            f"cannot parse site {text!r}; expected e.g. resid_post.12 or blocks.12.hook_resid_post"
        )


def sites(kinds: Iterable[str], layers: Iterable[int]) -> list[Site]:
    """All (kind, layer) combinations, in forward-pass order."""
    return sorted((Site(layer, k) for k in kinds for layer in layers), key=lambda s: s.order)  # type: ignore[arg-type]


def check_layers(site_list: Iterable[Site], n_layers: int) -> None:
    """Raise :class:`SiteError` naming any site whose layer the model does not have."""
    bad = [str(s) for s in site_list if s.layer >= n_layers]
    if bad:
        raise SiteError(f"model has layers 0..{n_layers - 1}; no such layer for {', '.join(bad)}")


def sort_sites(site_list: Iterable[Site]) -> list[Site]:
    """Sites in forward-pass order, duplicates removed."""
    return sorted(set(site_list), key=lambda s: s.order)
