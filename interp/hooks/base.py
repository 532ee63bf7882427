"""The one small interface every hook backend implements.

A backend wraps a :class:`~interp.models.LoadedModel` (sharing its weights, never copying them).
Hooks exist only inside :meth:`Backend.hooked`::

    backend = get_backend(loaded, "torch")
    site = Site(5, "resid_post")
    with backend.hooked(read={site: last_token}, edit={site: f}) as rec:
        logits = backend.forward(input_ids, attention_mask)
    rec[site]            # (batch, 1, d_model) from the last forward

``edit`` functions map the site's activation ``(batch, pos, d_model)`` to a tensor of the same
shape (they may change it in place and return it). ``read`` reducers map it to whatever should be
kept (default: the whole tensor, detached); reducing inside the hook keeps memory bounded.
Reads see the activation after that site's own edit.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.models import LoadedModel
from interp.sites import Site, check_layers, sort_sites

Edit = Callable[[Float[Tensor, "batch pos d_model"], Site], Float[Tensor, "batch pos d_model"]]
Reducer = Callable[[Float[Tensor, "batch pos d_model"]], Tensor]


class HookError(RuntimeError):
    """Hooks were misused (nested contexts, unknown sites, a backend that cannot run)."""


@dataclass
class Recording:
    """Activations read during a :meth:`Backend.hooked` context, one entry per forward call.

    During generation every decoding step is one forward call, so a site holds one tensor per
    step (the first covering the whole prompt).
    """

    steps: dict[Site, list[Tensor]] = field(default_factory=dict)

    def add(self, site: Site, value: Tensor) -> None:
        self.steps.setdefault(site, []).append(value)

    def __getitem__(self, site: Site) -> Tensor:
        """The value from the most recent forward call."""
        if site not in self.steps:
            raise KeyError(f"{site} was not read (read sites: {', '.join(map(str, self.steps))})")
        return self.steps[site][-1]

    def __contains__(self, site: object) -> bool:
        return site in self.steps

    def sites(self) -> list[Site]:
        return sort_sites(self.steps)

    def clear(self) -> None:
        self.steps.clear()


def _detach(x: Tensor) -> Tensor:
    return x.detach()


def normalise_reads(
    read: Iterable[Site] | Mapping[Site, Reducer | None] | None,
) -> dict[Site, Reducer]:
    """Reads as ``{site: reducer}`` (detaching identity where none is given)."""
    if read is None:
        return {}
    if isinstance(read, Mapping):
        return {s: (r or _detach) for s, r in read.items()}
    return dict.fromkeys(read, _detach)


class Backend(abc.ABC):
    """A way to run a loaded model with reads and edits at named sites."""

    name: ClassVar[str]
    supports_cache: ClassVar[bool] = False

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded
        self._active = False

    @property
    def n_layers(self) -> int:
        return self.loaded.n_layers

    @contextlib.contextmanager
    def hooked(
        self,
        read: Iterable[Site] | Mapping[Site, Reducer | None] | None = None,
        edit: Mapping[Site, Edit] | None = None,
    ) -> Iterator[Recording]:
        """Apply ``edit`` and record ``read`` on every forward inside the block.

        Hooks are removed when the block exits, also on exceptions. Contexts do not nest.
        """
        reads = normalise_reads(read)
        edits = dict(edit or {})
        check_layers(list(reads) + list(edits), self.n_layers)
        if self._active:
            raise HookError(f"{self.name} backend: hooked() contexts do not nest")
        recording = Recording()
        self._active = True
        try:
            with self._install(reads, edits, recording):
                yield recording
        finally:
            self._active = False

    @abc.abstractmethod
    def _install(
        self, reads: dict[Site, Reducer], edits: dict[Site, Edit], recording: Recording
    ) -> contextlib.AbstractContextManager[None]:
        """Context manager that installs the hooks and removes them on exit."""

    @abc.abstractmethod
    def forward(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch pos"] | None = None,
    ) -> Float[Tensor, "batch pos vocab"]:
        """Logits of one forward pass (with the active hooks, if inside :meth:`hooked`)."""

    def forward_for_reads(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch pos"] | None = None,
    ) -> None:
        """One forward pass run for its hooks only (reads and edits inside :meth:`hooked`): no
        logits come back, so a backend that can skips the unembedding (the native one keeps the
        last position's logits only: on the embedded model the unembedding is 28M of the 134M
        multiply-adds per token). Activations are those of :meth:`forward`."""
        self.forward(input_ids, attention_mask)

    def forward_cached(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch total"],
        position_ids: Int[Tensor, "batch pos"],
        past_key_values: Any,
        logits_to_keep: int = 0,
    ) -> tuple[Float[Tensor, "batch kept vocab"], Any]:
        """Forward that continues (and returns) a key/value cache; ``attention_mask`` covers the
        cached and the new tokens. ``logits_to_keep=n`` keeps only the last n positions' logits
        (0 keeps all). Only backends with ``supports_cache`` implement it."""
        raise HookError(f"the {self.name} backend does not expose a key/value cache")

    @abc.abstractmethod
    def generate(
        self,
        input_ids: Int[Tensor, "batch pos"],
        attention_mask: Int[Tensor, "batch pos"] | None = None,
        **generate_kwargs: Any,
    ) -> Int[Tensor, "batch new"]:
        """New token ids only (prompt removed), with the active hooks at every step.

        Rows that finish early are padded with the tokenizer's pad id after their EOS.
        """


def truncate_after_eos(new_tokens: Tensor, eos_ids: Iterable[int], pad_id: int) -> Tensor:
    """Replace everything after each row's first EOS with ``pad_id`` (the EOS itself is kept)."""
    out = new_tokens.clone()
    is_eos = torch.zeros_like(out, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= out == e
    after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    out[after] = pad_id
    return out


def eos_ids(loaded: LoadedModel) -> list[int]:
    """Every token id that ends generation for this model."""
    ids = loaded.hf_model.generation_config.eos_token_id
    if ids is None:
        ids = loaded.tokenizer.eos_token_id
    return [int(i) for i in (ids if isinstance(ids, list | tuple) else [ids]) if i is not None]
