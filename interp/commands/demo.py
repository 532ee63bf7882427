"""``interp demo``: the live steering demo, as a local web page or (``--tui``) a terminal table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from interp import paths
from interp.config import ConfigError, option
from interp.demo.catalog import build_catalog, direction_runs, persona_entry
from interp.demo.inputs import DemoInputError, DemoRequest
from interp.demo.server import DemoServer, is_loopback
from interp.demo.session import DemoSession, default_layer
from interp.demo.tui import show_run
from interp.directions import find_direction_folders
from interp.errors import InterpError
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig(LoadOptions):
    """Show warmth steering live: original, steered and ablated answers side by side."""

    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(
        None, help="PEFT adapter folder on top of the model (e.g. the warm fine-tune)"
    )
    direction: tuple[str, ...] = option(
        (),
        help=(
            "direction or run folder(s) to offer first (then: the newest study's directions, then "
            "`interp directions` runs, newest first)"
        ),
    )
    persona_triples: int = option(
        12, help="with no direction found: reply triples the persona direction is derived from"
    )
    host: str = option(
        "127.0.0.1",
        help=(
            "address to listen on (loopback by default; anything else exposes the model to the "
            "network)"
        ),
    )
    port: int = option(8765, help="port to listen on (0 picks a free one)")
    max_new_tokens: int = option(48, help="greedy tokens per answer")
    alpha_limit: float = option(
        1.0, help="the alpha slider's range is [-limit, limit] (units of the typical residual norm)"
    )
    ablate_at: Literal["layer", "all"] = option(
        "layer",
        help="ablated column: project the direction out at the chosen layer, or at all its layers",
    )
    tui: bool = option(False, help="no browser: show one comparison as a table in the terminal")
    preset: str | None = option(
        None, help="--tui: item id of the question (default: the first preset)"
    )
    question: str | None = option(None, help="--tui: a typed question instead of a preset")
    correct: str | None = option(None, help="--tui: right answer of a typed question")
    wrong: str | None = option(None, help="--tui: the user's wrong answer (overrides the item's)")
    sad: bool = option(True, help="--tui: prepend the sad statement")
    belief: bool = option(True, help="--tui: the user states the wrong answer")
    use: str | None = option(
        None, help="--tui: which direction (its key, e.g. persona-mean_diff; default: the first)"
    )
    layer: int | None = option(
        None, help="--tui: layer to steer (default: the direction's middle layer)"
    )
    alpha: float = option(0.5, help="--tui: steering strength")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, found {self.port}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, found {self.max_new_tokens}")
        if self.alpha_limit <= 0:
            raise ConfigError(f"alpha_limit must be > 0, found {self.alpha_limit}")
        if self.persona_triples < 2:
            raise ConfigError(f"persona_triples must be >= 2, found {self.persona_triples}")
        if self.preset is not None and self.question is not None:
            raise ConfigError("give --preset or --question, not both")


def build_session(config: DemoConfig, console: Console) -> DemoSession:
    """Check the named directions, load the model, find or derive the directions, measure the
    norms."""
    try:  # before the model loads: a wrong path is reported at once
        find_direction_folders(config.direction)
    except InterpError as exc:
        raise ConfigError(f"direction: {exc}") from None
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    backend = get_backend(loaded, "torch")
    artifacts = paths.artifacts_root()
    catalog = build_catalog(
        [Path(p) for p in config.direction],
        direction_runs(artifacts),
        loaded.d_model,
        loaded.n_layers,
    )
    if not catalog:
        console.print(
            f"no study direction found (under {artifacts / 'study'} or "
            f"{artifacts / 'directions'}); deriving a persona direction from "
            f"{config.persona_triples} warm/neutral reply triples"
        )
        catalog = [persona_entry(backend, config.persona_triples)]
    return DemoSession(
        backend,
        catalog,
        max_new_tokens=config.max_new_tokens,
        alpha_limit=config.alpha_limit,
        ablate_at=config.ablate_at,
    )


def tui_request(config: DemoConfig, session: DemoSession) -> DemoRequest:
    """The request the terminal version shows, from the command's options."""
    key = config.use or next(iter(session.directions))
    if key not in session.directions:
        raise ConfigError(f"use: unknown direction {key!r}; known: {', '.join(session.directions)}")
    layers = session.directions[key].direction.layers
    item = None
    if config.question is None:
        item = config.preset or (session.presets[0].item_id if session.presets else None)
        if item is None:
            raise ConfigError("no preset available; pass --question")
    preset = next((p for p in session.presets if p.item_id == item), None)
    wrong = config.wrong or (preset.wrong if preset else None)
    return DemoRequest(
        question=config.question or "",
        item_id=item,
        correct=config.correct,
        wrong=wrong,
        sad=config.sad,
        belief=config.belief,
        direction=key,
        layer=config.layer if config.layer is not None else default_layer(layers),
        alpha=config.alpha,
    )


def run_demo(config: DemoConfig, console: Console | None = None) -> int:
    console = console or Console()
    session = build_session(config, console)
    if config.tui:
        request = tui_request(config, session)
        try:
            show_run(session.run(request), console)
        except DemoInputError as exc:
            raise ConfigError(str(exc)) from None
        return 0
    try:
        server = DemoServer(session, config.host, config.port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port} ({exc}); pick another --port"
        ) from None
    if not is_loopback(config.host):
        log.warning(
            "listening on %s: anyone who can reach this machine can use the model", config.host
        )
    names = ", ".join(session.directions)
    console.print(f"[bold]interp demo[/bold] at {server.url}  (directions: {names}; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.server_close()
    return 0
