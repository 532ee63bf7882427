"""Steering and ablation operators, applied inside a hook context.

An :class:`Intervention` names an operator, a :class:`~interp.directions.Direction`, the layers
whose site (``resid_post`` by default) it edits, and which token positions it touches:

- ``add``        ``x + alpha * r_L * u``: ``alpha`` is in units of the typical residual norm
  ``r_L`` at that layer (:func:`residual_norms`), so values transfer between models;
- ``ablate``     ``x - (x . u) u``: the projection onto ``u`` is removed (directional ablation);
- ``ablate_add`` ``x - (x . u) u + alpha * r_L * u``: ablate, then set the projection to
  ``alpha * r_L``;
- ``clamp``      ``x - (x . u) u + value * u``: the projection is set to ``value`` (raw
  residual units).

``u`` is the direction's unit vector at the layer. Operators are pure functions of a tensor
(:data:`OPERATORS`); :func:`edits_for` turns an intervention into ``{Site: Edit}`` for
``backend.hooked``, and :func:`steered` installs several interventions at once.

Positions. ``"all"`` edits every position of every forward. ``"prompt"`` and ``"generated"``
follow one explicit rule, fixed per :func:`steered` block by ``phase``:

- ``phase="forward"``: every forward is a prompt forward (scoring, patching, plain forwards,
  including key/value-cache continuations of a scored prompt), so ``"generated"`` edits nothing;
- ``phase="generate"``: a forward covering more than one position is a prompt forward (the
  first forward of ``generate``); a one-position forward is a decode step (a generated token);
- ``phase="auto"`` (default): as ``"generate"``, except that a one-position forward whose batch
  size differs from the preceding forward's at that site counts as a prompt forward (forced-choice
  scoring continues a prompt cache repeated once per candidate; generation keeps its batch).

In a decode step the single position holds the newest generated token (the token being read,
whose residual predicts the next one), so ``"generated"`` steers exactly the generated tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.directions import Direction
from interp.generate import left_pad
from interp.hooks.base import Backend, Edit, Recording, Reducer
from interp.sites import SITE_KINDS, Site

Positions = Literal["prompt", "generated", "all"]
Operator = Literal["add", "ablate", "ablate_add", "clamp"]
Phase = Literal["auto", "forward", "generate"]
POSITIONS: tuple[str, ...] = get_args(Positions)
OPERATORS_NAMES: tuple[str, ...] = get_args(Operator)


class SteerError(ValueError):
    """An intervention cannot be applied (unknown operator, missing layer or norm, zero
    direction)."""


@dataclass(frozen=True)
class Intervention:
    """One operator with one direction at some layers and positions (see the module doc)."""

    op: Operator
    direction: Direction
    layers: tuple[int, ...]
    alpha: float = 0.0
    value: float | None = None
    positions: Positions = "all"
    site_kind: str = "resid_post"

    def __post_init__(self) -> None:
        if self.op not in OPERATORS_NAMES:
            raise SteerError(
                f"operator must be one of {', '.join(OPERATORS_NAMES)}, found {self.op!r}"
            )
        if self.positions not in POSITIONS:
            raise SteerError(
                f"positions must be one of {', '.join(POSITIONS)}, found {self.positions!r}"
            )
        if self.site_kind not in SITE_KINDS:
            raise SteerError(
                f"site_kind must be one of {', '.join(SITE_KINDS)}, found {self.site_kind!r}"
            )
        if not self.layers:
            raise SteerError("an intervention needs at least one layer")
        missing = [layer for layer in self.layers if layer not in self.direction.layers]
        if missing:
            raise SteerError(
                f"direction {self.direction.name!r} has layers {list(self.direction.layers)}; "
                f"no vector for layer(s) {missing}"
            )
        if self.op == "clamp" and self.value is None:
            raise SteerError("the clamp operator needs a target value")

    @property
    def needs_norms(self) -> bool:
        """Whether the operator scales by the typical residual norm (add, ablate_add)."""
        return self.op in ("add", "ablate_add") and self.alpha != 0.0

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``add:warmth@12(alpha=4)``."""
        layers = ",".join(map(str, self.layers))
        if self.op == "clamp":
            extra = f"(value={self.value:g})"
        else:
            extra = "" if self.op == "ablate" else f"(alpha={self.alpha:g})"
        return f"{self.op}:{self.direction.name}@{layers}{extra}"


def _unit_like(x: Tensor, unit: Tensor) -> Tensor:
    """``unit`` on ``x``'s device in float32 (the dtype the projection maths runs in)."""
    return unit.to(device=x.device, dtype=torch.float32)


def projection(x: Float[Tensor, "... d"], unit: Float[Tensor, " d"]) -> Float[Tensor, "..."]:
    """Scalar projection of every vector in ``x`` onto ``unit`` (assumed unit norm).

    Computed in float32 on ``x``'s device (a direction loaded on the CPU works on a GPU
    activation); the result is float32.
    """
    return x.float() @ _unit_like(x, unit)


def add(
    x: Float[Tensor, "... d"], unit: Float[Tensor, " d"], amount: float
) -> Float[Tensor, "... d"]:
    """``x + amount * unit`` (``amount`` in raw residual units), computed in float32 and cast
    back to ``x``'s dtype."""
    return (x.float() + amount * _unit_like(x, unit)).to(x.dtype)


def ablate(x: Float[Tensor, "... d"], unit: Float[Tensor, " d"]) -> Float[Tensor, "... d"]:
    """``x`` with its component along ``unit`` removed.

    The projection is computed and subtracted in float32, then cast back to ``x``'s dtype: in
    bfloat16 arithmetic about 0.4% of the component would be left behind.
    """
    return _ablated32(x, _unit_like(x, unit)).to(x.dtype)


def _ablated32(x: Tensor, u: Tensor) -> Tensor:
    x32 = x.float()
    return x32 - (x32 @ u).unsqueeze(-1) * u


def clamp(
    x: Float[Tensor, "... d"], unit: Float[Tensor, " d"], value: float
) -> Float[Tensor, "... d"]:
    """``x`` with its projection onto ``unit`` set to ``value`` (float32 maths, one cast back)."""
    u = _unit_like(x, unit)
    return (_ablated32(x, u) + value * u).to(x.dtype)


VectorOp = Callable[[Tensor], Tensor]


class _DeviceUnit:
    """A unit vector kept once per device in float32 (moved on first use there, not per forward)."""

    def __init__(self, unit: Tensor):
        self.unit = unit.detach()
        self._by_device: dict[torch.device, Tensor] = {}

    def on(self, x: Tensor) -> Tensor:
        u = self._by_device.get(x.device)
        if u is None:
            u = self._by_device[x.device] = _unit_like(x, self.unit)
        return u


def _vector_op(iv: Intervention, unit: Tensor, norm: float | None) -> VectorOp:
    """The operator of ``iv`` as a function of one activation tensor (any device and dtype)."""
    moved = _DeviceUnit(unit)
    if iv.op == "ablate":
        return lambda x: ablate(x, moved.on(x))
    if iv.op == "clamp":
        value = float(iv.value)  # type: ignore[arg-type]
        return lambda x: clamp(x, moved.on(x), value)
    amount = iv.alpha * (norm if norm is not None else 0.0)
    if iv.op == "add":
        if amount == 0.0 or unit.norm() == 0:
            return lambda x: x  # exactly the unsteered activation
        return lambda x: add(x, moved.on(x), amount)
    return lambda x: clamp(x, moved.on(x), amount)  # ablate_add


@dataclass
class PhaseTracker:
    """Decides, per forward at a site, whether it is a prompt forward or a decode step.

    One tracker per :func:`steered` block (it remembers the previous forward's batch size per
    site); see the module doc for the rule of each ``phase``.
    """

    phase: Phase = "auto"
    _last_batch: dict[Site, int] = field(default_factory=dict)

    def is_decode_step(self, x: Tensor, site: Site) -> bool:
        batch, pos = int(x.shape[0]), int(x.shape[1])
        previous = self._last_batch.get(site)
        self._last_batch[site] = batch
        if self.phase == "forward" or pos > 1:
            return False
        if self.phase == "generate":
            return True
        return previous is not None and previous == batch


def _positional(op: VectorOp, positions: Positions, tracker: PhaseTracker | None) -> Edit:
    if positions == "all":
        return lambda x, site: op(x)
    if tracker is None:
        raise SteerError(f"positions={positions!r} needs a PhaseTracker (use steered())")

    def edit(x: Tensor, site: Site) -> Tensor:
        decode = tracker.is_decode_step(x, site)
        wanted = decode if positions == "generated" else not decode
        return op(x) if wanted else x

    return edit


def edits_for(
    intervention: Intervention,
    norms: Mapping[int, float] | None = None,
    tracker: PhaseTracker | None = None,
) -> dict[Site, Edit]:
    """``{Site: Edit}`` applying ``intervention`` at each of its layers.

    ``norms`` (typical residual norm per layer) is required by add / ablate_add with a non-zero
    alpha. ``tracker`` is required for ``positions`` other than ``"all"``; :func:`steered` passes
    one shared by every edit of the block.
    """
    iv = intervention
    edits: dict[Site, Edit] = {}
    for layer in iv.layers:
        norm = None
        if iv.needs_norms:
            if norms is None or layer not in norms:
                raise SteerError(
                    f"{iv.label}: alpha is in units of the residual norm, but no norm was given "
                    f"for layer {layer} (pass norms=residual_norms(...))"
                )
            norm = float(norms[layer])
        raw = iv.direction.at(layer).detach()
        # adding a zero vector is the identity; every other operator needs a unit vector
        if iv.op == "add" and raw.norm() == 0:
            unit = raw
        else:
            unit = iv.direction.unit(layer).detach()  # refuses a zero vector
            if unit.dtype not in (torch.float32, torch.float64):  # normalise in fp32, not bf16
                unit = raw.float() / raw.float().norm()
        op = _vector_op(iv, unit, norm)
        site = Site(layer, iv.site_kind)  # type: ignore[arg-type]
        edits[site] = _positional(op, iv.positions, tracker)
    return edits


def compose(edits: Iterable[Mapping[Site, Edit]]) -> dict[Site, Edit]:
    """Merge several ``{Site: Edit}`` maps; edits at the same site run in the given order."""
    merged: dict[Site, list[Edit]] = {}
    for mapping in edits:
        for site, fn in mapping.items():
            merged.setdefault(site, []).append(fn)

    def chain(fns: list[Edit]) -> Edit:
        if len(fns) == 1:
            return fns[0]

        def run(x: Tensor, site: Site) -> Tensor:
            for fn in fns:
                x = fn(x, site)
            return x

        return run

    return {site: chain(fns) for site, fns in merged.items()}


@contextlib.contextmanager
def steered(
    backend: Backend,
    interventions: Sequence[Intervention],
    norms: Mapping[int, float] | None = None,
    read: Iterable[Site] | Mapping[Site, Reducer | None] | None = None,
    *,
    phase: Phase = "auto",
) -> Iterator[Recording]:
    """Install every intervention's edits (in order, composed per site) inside
    ``backend.hooked(read=read, edit=...)``; yields the recording of ``read``.

    Reads see the activation after the edits at their site. ``norms`` is required for add /
    ablate_add with a non-zero alpha. ``phase`` fixes how "prompt" / "generated" positions are
    told apart (module doc).
    """
    tracker = PhaseTracker(phase)
    edits = compose(edits_for(iv, norms, tracker) for iv in interventions)
    with backend.hooked(read=read, edit=edits) as recording:
        yield recording


def _token_norm_sums(x: Tensor, mask: Tensor, skip_first: bool) -> tuple[float, int]:
    keep = mask.bool().clone()
    if skip_first:
        first = keep.int().argmax(dim=1)  # left padding: first real token
        keep[torch.arange(keep.shape[0]), first] = False
    norms = x.float().norm(dim=-1)
    return float(norms[keep].sum()), int(keep.sum())


def residual_norms(
    backend: Backend,
    conversations: Sequence[Sequence[Message]],
    layers: Iterable[int],
    site_kind: str = "resid_post",
    *,
    batch_size: int = 8,
    skip_first: bool = True,
) -> dict[int, float]:
    """Typical residual norm per layer: the mean over tokens of the L2 norm at ``site_kind``.

    Every token of the rendered conversations counts (padding excluded), except each sequence's
    first token when ``skip_first`` (its norm is an attention-sink outlier, often 10-100x the rest).
    """
    layer_list = sorted(set(layers))
    if not conversations:
        raise SteerError("residual_norms needs at least one conversation")
    tok = backend.loaded.tokenizer
    encoded = [encode_chat(tok, c, add_generation_prompt=False).input_ids for c in conversations]
    sums = dict.fromkeys(layer_list, 0.0)
    count = 0
    sites = [Site(layer, site_kind) for layer in layer_list]  # type: ignore[arg-type]
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            ids, mask = left_pad(
                encoded[start : start + batch_size], tok.pad_token_id, backend.loaded.device
            )
            with backend.hooked(read=sites) as rec:
                backend.forward_for_reads(ids, mask)
            for site in sites:
                s, n = _token_norm_sums(rec[site], mask, skip_first)
                sums[site.layer] += s
            count += n
    if count == 0:
        raise SteerError("no tokens to measure residual norms on")
    return {layer: sums[layer] / count for layer in layer_list}


def constant_direction(
    name: str, vector: Float[Tensor, " d"], layers: Iterable[int], **meta: object
) -> Direction:
    """A :class:`Direction` holding the same vector at every given layer (random controls,
    all-layer ablation)."""
    layer_tuple = tuple(sorted(set(layers)))
    vectors = vector.detach().float().unsqueeze(0).repeat(len(layer_tuple), 1)
    return Direction(name, "constant", "resid_post", "all", layer_tuple, vectors, meta=dict(meta))


def random_directions(like: Direction, n: int, seed: int = 0) -> list[Direction]:
    """``n`` seeded random directions with ``like``'s layers and per-layer norms (null controls)."""
    if n < 1:
        raise SteerError(f"need at least one random direction, found n={n}")
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        raw = torch.randn(like.vectors.shape, generator=g, dtype=torch.float64)
        scaled = (
            raw / raw.norm(dim=1, keepdim=True) * like.vectors.double().norm(dim=1, keepdim=True)
        )
        out.append(
            Direction(
                f"random{i}",
                "random",
                like.site_kind,
                like.position,
                like.layers,
                scaled.float(),
                meta={"seed": seed, "index": i, "like": like.name},
            )
        )
    return out


def ablation_everywhere(unit: Float[Tensor, " d"], n_layers: int) -> dict[Site, Edit]:
    """Edits that keep ``unit`` out of the residual stream at every layer: ablate it from the
    embedding (``resid_pre`` of block 0) and from every ``attn_out`` and ``mlp_out``.

    This is the runtime twin of weight orthogonalisation (:mod:`interp.orthogonalize`).
    """
    moved = _DeviceUnit(unit.detach().float() / unit.float().norm())
    edit: Edit = lambda x, site: ablate(x, moved.on(x))  # noqa: E731
    edits = {Site(0, "resid_pre"): edit}
    for layer in range(n_layers):
        edits[Site(layer, "attn_out")] = edit
        edits[Site(layer, "mlp_out")] = edit
    return edits
