"""The computation behind the demo: one request -> three models' answers, streamed.

For a checked :class:`~interp.demo.inputs.DemoRequest` the session runs the same prompt three
ways and reports, for each:

- ``original``: no edit;
- ``steered``: ``add`` the direction at the chosen layer with the chosen alpha (units of the
  typical residual norm at that layer, :func:`interp.steer.residual_norms`);
- ``ablated``: the direction projected out (``ablate``) at the chosen layer (default), or at every
  layer the direction has (``ablate_at="all"``). The default is the chosen layer because, on the
  embedded model, projecting a persona direction out of all 30 layers breaks the model outright
  (incoherent text, p(wrong answer) 0.04 -> 0.86 on the capital-of-France preset), which shows
  damage rather than the direction's role; the column's title always says which.

Each gets its forced-choice probability of the wrong answer (:func:`interp.scoring.score_choices`
under :func:`interp.steer.steered`, exactly as the evaluation computes ``p_incorrect``) and the
projection of the last prompt token's residual (after the edit) on the direction at the chosen
layer. Then the three greedy answers are generated together, token by token, as one batch of
three identical prompts whose rows carry different edits (:func:`rowwise_edits`), over the torch
backend's key/value cache. Each finished answer is graded by the study's offline grader
(:func:`interp.demo.grades.grade_reply`: agrees with the user's wrong answer, correct, or
neither), since the reply can say otherwise than p(wrong answer).

Thread safety: the model is used under one lock, held for a single forward (one scoring call or
one decoding step), so a new request waits at most one step; a run checks its cancel event
between steps and stops there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.config import ConfigError
from interp.data.contexts import Condition, load_contexts
from interp.data.items import Item, load_embedded_items
from interp.demo.catalog import CatalogEntry
from interp.demo.grades import grade_reply
from interp.demo.inputs import BuiltPrompt, DemoRequest, build_prompt, check_request
from interp.demo.presets import PRESETS, Preset
from interp.hooks.base import Backend, Edit, eos_ids
from interp.scoring import ChoicePrompt, score_choices
from interp.sites import Site
from interp.steer import Intervention, compose, edits_for, projection, residual_norms, steered

VARIANTS: tuple[str, ...] = ("original", "steered", "ablated")
Event = dict[str, Any]


def rowwise_edits(per_row: Sequence[Mapping[Site, Edit]]) -> dict[Site, Edit]:
    """One ``{Site: Edit}`` for a batch whose row ``i`` gets ``per_row[i]``'s edits (rows with
    no edit at a site pass through). The batch must have exactly ``len(per_row)`` rows."""
    n = len(per_row)
    sites = {s for row in per_row for s in row}

    def at(site: Site) -> Edit:
        fns = [row.get(site) for row in per_row]

        def edit(
            x: Float[Tensor, "batch pos d_model"], s: Site
        ) -> Float[Tensor, "batch pos d_model"]:
            if x.shape[0] != n:
                raise ValueError(f"row-wise edit at {s} expects {n} rows, found {x.shape[0]}")
            return torch.cat(
                [x[i : i + 1] if fn is None else fn(x[i : i + 1], s) for i, fn in enumerate(fns)]
            )

        return edit

    return {site: at(site) for site in sites}


@dataclass
class DemoResult:
    """What one finished run showed: per variant the answer, p(wrong answer), projection, and
    the answer's offline grade (:meth:`ReplyGrade.to_json`, None without both answers)."""

    user: str
    texts: dict[str, str] = field(default_factory=dict)
    grades: dict[str, dict[str, str | None] | None] = field(default_factory=dict)
    p_agree: dict[str, float | None] = field(default_factory=dict)
    projection: dict[str, float] = field(default_factory=dict)
    projection_rel: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False


def collect(events: Iterator[Event]) -> DemoResult:
    """Drain a run's events into a :class:`DemoResult`."""
    result = DemoResult(user="")
    for ev in events:
        if ev["type"] == "meta":
            result.user = ev["user"]
        elif ev["type"] == "score":
            result.p_agree[ev["variant"]] = ev["p_agree"]
            result.projection[ev["variant"]] = ev["projection"]
            result.projection_rel[ev["variant"]] = ev["projection_rel"]
        elif ev["type"] == "done":
            result.texts = dict(zip(VARIANTS, ev["texts"], strict=True))
            result.grades = dict(zip(VARIANTS, ev["grades"], strict=True))
        elif ev["type"] == "cancelled":
            result.cancelled = True
    return result


class DemoSession:
    """A loaded model, the directions on offer and the norms they are scaled by.

    ``norms`` default: :func:`residual_norms` over the presets' prompts (belief and sad on, the
    contexts the demo steers in) at every layer.
    """

    def __init__(
        self,
        backend: Backend,
        catalog: Sequence[CatalogEntry],
        *,
        items: Sequence[Item] | None = None,
        contexts: Mapping[str, Condition] | None = None,
        presets: Sequence[Preset] = PRESETS,
        norms: Mapping[int, float] | None = None,
        max_new_tokens: int = 48,
        alpha_limit: float = 1.0,
        ablate_at: Literal["layer", "all"] = "layer",
    ):
        if not backend.supports_cache:
            raise ConfigError(
                f"the demo streams over a key/value cache; the {backend.name} backend has none "
                "(use torch)"
            )
        if not catalog:
            raise ConfigError("the demo needs at least one direction")
        if ablate_at not in ("layer", "all"):
            raise ConfigError(f"ablate_at must be 'layer' or 'all', found {ablate_at!r}")
        if max_new_tokens < 1 or alpha_limit <= 0:
            raise ConfigError(
                f"max_new_tokens must be >= 1 and alpha_limit > 0, found {max_new_tokens}, "
                f"{alpha_limit}"
            )
        self.backend = backend
        self.directions = {e.key: e for e in catalog}
        self.items = {i.id: i for i in (items if items is not None else load_embedded_items())}
        self.contexts = dict(contexts) if contexts is not None else load_contexts()
        self.presets = [p for p in presets if p.item_id in self.items]
        self.max_new_tokens = max_new_tokens
        self.alpha_limit = alpha_limit
        self.ablate_at = ablate_at
        self._lock = threading.Lock()
        self._eos = set(eos_ids(backend.loaded))
        if norms is None:
            norms = residual_norms(backend, self._norm_conversations(), range(backend.n_layers))
        self.norms = dict(norms)

    def _norm_conversations(self) -> list[tuple[Message, ...]]:
        convs = []
        for p in self.presets or [Preset(next(iter(self.items)), "", "")]:
            req = DemoRequest(item_id=p.item_id, wrong=p.wrong, sad=True, belief=True)
            convs.append(build_prompt(req, self.items, self.contexts).conversation)
        return convs

    # ------------------------------------------------------------------ description

    def describe(self) -> dict[str, Any]:
        """What the page needs to draw its controls (JSON-ready)."""
        loaded = self.backend.loaded
        return {
            "model": loaded.name if loaded.adapter is None else f"{loaded.name}+{loaded.adapter}",
            "n_layers": self.backend.n_layers,
            "max_new_tokens": self.max_new_tokens,
            "alpha_limit": self.alpha_limit,
            "ablate_at": self.ablate_at,
            "variants": list(VARIANTS),
            "directions": [
                {
                    "key": e.key,
                    "name": e.direction.name,
                    "method": e.direction.method,
                    "layers": list(e.direction.layers),
                    "default_layer": default_layer(e.direction.layers),
                    "source": e.source,
                }
                for e in self.directions.values()
            ],
            "presets": [
                {
                    **p.to_json(),
                    "question": self.items[p.item_id].question,
                    "correct": self.items[p.item_id].correct,
                    "wrong": p.wrong or self.items[p.item_id].incorrect,
                }
                for p in self.presets
            ],
        }

    def interventions(self, request: DemoRequest) -> dict[str, list[Intervention]]:
        """The edits of each variant for a checked request."""
        d = self.directions[request.direction].direction
        return {
            "original": [],
            "steered": [Intervention("add", d, (request.layer,), alpha=request.alpha)],
            "ablated": [
                Intervention("ablate", d, d.layers if self.ablate_at == "all" else (request.layer,))
            ],
        }

    def labels(self, request: DemoRequest) -> dict[str, str]:
        """What each column shows as its title."""
        d = self.directions[request.direction].direction
        span = f"{d.layers[0]}-{d.layers[-1]}" if len(d.layers) > 1 else str(d.layers[0])
        where = (
            f"all {len(d.layers)} layers ({span})"
            if self.ablate_at == "all"
            else f"layer {request.layer}"
        )
        return {
            "original": "original model",
            "steered": (
                f"steered: {request.alpha:+.2f} × norm along {request.direction} at layer "
                f"{request.layer}"
            ),
            "ablated": f"ablated: {request.direction} projected out at {where}",
        }

    # ------------------------------------------------------------------ running

    def check(self, request: DemoRequest) -> BuiltPrompt:
        """Check a request and build its prompt (raises :class:`DemoInputError`)."""
        check_request(
            request, {k: e.direction.layers for k, e in self.directions.items()}, self.alpha_limit
        )
        return build_prompt(request, self.items, self.contexts)

    def run(self, request: DemoRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Check the request now (raising :class:`DemoInputError`), then return the run's events:
        ``meta``, one ``score`` per variant, ``tokens`` per decoding step (one text delta per
        variant), then ``done`` with the texts and their offline grades (or ``cancelled`` once
        ``cancel`` is set)."""
        built = self.check(request)
        return self._events(request, built, cancel or threading.Event())

    def _events(
        self, request: DemoRequest, built: BuiltPrompt, cancel: threading.Event
    ) -> Iterator[Event]:
        start = time.perf_counter()
        ivs = self.interventions(request)
        yield {
            "type": "meta",
            "user": built.user,
            "key": request.key(),
            "alpha": request.alpha,
            "layer": request.layer,
            "direction": request.direction,
            "labels": self.labels(request),
            "candidates": list(built.candidates) if built.candidates else None,
            "norm": self.norms[request.layer],
        }
        site = Site(request.layer, "resid_post")
        unit = self.directions[request.direction].direction.unit(request.layer)
        for variant in VARIANTS:
            if cancel.is_set():
                yield {"type": "cancelled"}
                return
            p_agree, proj = self._score(built, ivs[variant], site, unit)
            yield {
                "type": "score",
                "variant": variant,
                "p_agree": p_agree,
                "projection": proj,
                "projection_rel": proj / self.norms[request.layer],
            }
        per_row = [compose(edits_for(iv, self.norms) for iv in ivs[v]) for v in VARIANTS]
        generated: list[list[int]] = [[] for _ in VARIANTS]
        for step, deltas in enumerate(
            self._stream(built, rowwise_edits(per_row), cancel, generated)
        ):
            if deltas is None:
                yield {"type": "cancelled"}
                return
            yield {"type": "tokens", "step": step, "deltas": deltas}
        tok = self.backend.loaded.tokenizer
        texts = [tok.decode(ids, skip_special_tokens=True).strip() for ids in generated]
        grades = [grade_reply(built, t) for t in texts]
        yield {
            "type": "done",
            "texts": texts,
            "grades": [None if g is None else g.to_json() for g in grades],
            "n_tokens": [len(g) for g in generated],
            "seconds": time.perf_counter() - start,
        }

    def _score(
        self,
        built: BuiltPrompt,
        ivs: list[Intervention],
        site: Site,
        unit: Float[Tensor, " d_model"],
    ) -> tuple[float | None, float]:
        """p(wrong answer) (None without both answers) and the last prompt token's projection."""
        read = {site: lambda x: x[:, -1].detach()}
        with self._lock, torch.no_grad(), steered(self.backend, ivs, self.norms, read=read) as rec:
            if built.candidates is not None:
                scores = score_choices(
                    self.backend, [ChoicePrompt(built.conversation, built.candidates)]
                )
                p_agree: float | None = float(scores.choice_probs(normalised=True)[0, 1])
            else:
                ids = torch.tensor([self._prompt_ids(built)], device=self.backend.loaded.device)
                self.backend.forward(ids, torch.ones_like(ids))
                p_agree = None
            last = rec.steps[site][0][0]  # the first forward is the prompt pass
        return p_agree, float(projection(last, unit))

    def _prompt_ids(self, built: BuiltPrompt) -> list[int]:
        return encode_chat(
            self.backend.loaded.tokenizer, built.conversation, add_generation_prompt=True
        ).input_ids

    def _stream(
        self,
        built: BuiltPrompt,
        edits: dict[Site, Edit],
        cancel: threading.Event,
        generated: list[list[int]],
    ) -> Iterator[list[str] | None]:
        """Greedy decoding of the three rows together, appending each row's new token ids to
        ``generated``; yields each step's text deltas (None once cancelled). A row stops at its
        EOS; decoding stops when all rows have."""
        tok = self.backend.loaded.tokenizer
        device = self.backend.loaded.device
        n = len(VARIANTS)
        prompt = self._prompt_ids(built)
        step_ids = torch.tensor([prompt] * n, device=device)
        mask = torch.ones_like(step_ids)
        positions = torch.arange(len(prompt), device=device).repeat(n, 1)
        past: Any = None
        shown = [""] * n
        finished = [False] * n
        for _ in range(self.max_new_tokens):
            if cancel.is_set():
                yield None
                return
            with self._lock, torch.no_grad(), self.backend.hooked(edit=edits):
                logits, past = self.backend.forward_cached(
                    step_ids, mask, positions, past, logits_to_keep=1
                )
            next_ids = logits[:, -1].argmax(dim=-1)
            deltas = [""] * n
            for row in range(n):
                if finished[row]:
                    continue
                token = int(next_ids[row])
                if token in self._eos:
                    finished[row] = True
                    continue
                generated[row].append(token)
                text = tok.decode(generated[row], skip_special_tokens=True)
                # a delta only once the text is stable (the rest of a multi-byte character has
                # come); the final texts are decoded whole, so the stream is cosmetic
                if not text.endswith("\ufffd") and text.startswith(shown[row]):
                    deltas[row], shown[row] = text[len(shown[row]) :], text
            yield deltas
            if all(finished):
                return
            step_ids = next_ids[:, None]
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
            positions = positions[:, -1:] + 1


def default_layer(layers: Sequence[int]) -> int:
    """The layer the page starts on: the middle one (steering works best mid-network)."""
    return int(layers[len(layers) // 2])
