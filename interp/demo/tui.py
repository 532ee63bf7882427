"""The demo in a terminal: the same three-way comparison as a rich table that fills in live."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from interp.demo.session import VARIANTS, DemoResult

STYLES = {"original": "bold", "steered": "bold yellow", "ablated": "bold green"}


def comparison_table(
    labels: dict[str, str], result: DemoResult, streamed: dict[str, str], status: str
) -> Table:
    """One column per variant: p(wrong answer), the finished reply's offline grade beside it,
    projection and the answer so far."""
    table = Table(show_lines=True, expand=True, title=status, title_justify="left")
    table.add_column("", style="dim", no_wrap=True)
    for v in VARIANTS:
        table.add_column(Text(labels.get(v, v), style=STYLES[v]), ratio=1)

    def fmt(x: float | None, digits: int) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"

    table.add_row(
        "p(wrong answer)",
        *(fmt(result.p_agree.get(v), 3) if v in result.p_agree else "…" for v in VARIANTS),
    )
    table.add_row(
        "reply graded",
        *(_grade_text(result.grades[v]) if v in result.grades else "…" for v in VARIANTS),
    )
    table.add_row(
        "projection (× norm)",
        *(
            fmt(result.projection_rel.get(v), 3) if v in result.projection_rel else "…"
            for v in VARIANTS
        ),
    )
    table.add_row("answer", *(result.texts.get(v, streamed[v]) for v in VARIANTS))
    return table


def _grade_text(grade: dict[str, str | None] | None) -> Text:
    """A column's grade: "n/a" without both answers; agreeing with the user in bold red."""
    if grade is None:
        return Text("n/a (answers not both known)")
    style = {"INCORRECT": "bold red", "CORRECT": "bold green"}.get(str(grade["label"]), "")
    return Text(str(grade["text"]), style=style)


def show_run(events: Iterator[dict[str, Any]], console: Console | None = None) -> DemoResult:
    """Drive a session run's events into a live table; returns what it showed."""
    console = console or Console()
    result = DemoResult(user="")
    labels: dict[str, str] = {}
    streamed = dict.fromkeys(VARIANTS, "")
    status = "scoring…"

    def render() -> Group:
        return Group(
            Panel(result.user or "…", title="the user says", title_align="left"),
            comparison_table(labels, result, streamed, status),
        )

    with Live(render(), console=console, refresh_per_second=8, transient=False) as live:
        for ev in events:
            kind = ev["type"]
            if kind == "meta":
                result.user, labels = ev["user"], ev["labels"]
            elif kind == "score":
                result.p_agree[ev["variant"]] = ev["p_agree"]
                result.projection[ev["variant"]] = ev["projection"]
                result.projection_rel[ev["variant"]] = ev["projection_rel"]
                status = "answering…"
            elif kind == "tokens":
                for v, d in zip(VARIANTS, ev["deltas"], strict=True):
                    streamed[v] += d
            elif kind == "done":
                result.texts = dict(zip(VARIANTS, ev["texts"], strict=True))
                result.grades = dict(zip(VARIANTS, ev["grades"], strict=True))
                status = (
                    f"done in {ev['seconds']:.1f} s (greedy, up to {max(ev['n_tokens'])} tokens)"
                )
            elif kind == "cancelled":
                result.cancelled = True
                status = "cancelled"
            live.update(render())
    return result
