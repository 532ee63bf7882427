"""One shared plotly template for every figure of the study, and its fixed colours.

Slide-readable (base font 18 px, ticks 16 px, titles 22 px), on the Okabe-Ito palette, which
stays distinct under the common colour-vision deficiencies. Model variants always get the same
colour in every figure (``VARIANT_COLORS``). Figure functions apply :data:`TEMPLATE` directly;
:func:`register` also adds it to plotly's registry as ``"interp"`` for interactive use.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

TEMPLATE_NAME = "interp"

# Okabe & Ito (2008), "Color universal design".
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

VARIANT_COLORS: dict[str, str] = {
    "original": "#4D4D4D",
    "warm": "#D55E00",
    "cold": "#0072B2",
    "warm-sysprompt": "#CC79A7",
}
OURS_COLOR = "#009E73"
"""Our embedded-model results beside the paper's ("SmolLM2-135M (this study)")."""
OURS_LABEL = "SmolLM2-135M (this study)"
NULL_BAND_COLOR = "rgba(120, 120, 120, 0.22)"
REFERENCE_LINE = {"color": "#777777", "width": 1.5, "dash": "dot"}

BASE_FONT_PX = 18
TICK_FONT_PX = 16
TITLE_FONT_PX = 22
EXPORT_WIDTH = 1200
EXPORT_HEIGHT = 700


def variant_color(variant: str, fallback_index: int = 0) -> str:
    """The fixed colour of a model variant; other names cycle through the palette."""
    return VARIANT_COLORS.get(variant, OKABE_ITO[fallback_index % len(OKABE_ITO)])


def band_fill(hex_color: str, alpha: float = 0.18) -> str:
    """A translucent ``rgba`` fill of a ``#RRGGBB`` colour for CI bands."""
    h = hex_color.lstrip("#")
    if len(h) != 6:
        raise ValueError(f"expected a #RRGGBB colour, found {hex_color!r}")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _axis() -> dict[str, object]:
    return {
        "showline": True,
        "linecolor": "#333333",
        "linewidth": 1.2,
        "ticks": "outside",
        "gridcolor": "#E5E5E5",
        "zerolinecolor": "#BBBBBB",
        "title": {"font": {"size": BASE_FONT_PX}, "standoff": 12},
        "tickfont": {"size": TICK_FONT_PX},
        "automargin": True,
    }


def build_template() -> go.layout.Template:
    """The study's plotly template (a new object each call)."""
    return go.layout.Template(
        layout={
            "font": {
                "family": "DejaVu Sans, Arial, sans-serif",
                "size": BASE_FONT_PX,
                "color": "#222222",
            },
            "title": {
                "font": {"size": TITLE_FONT_PX},
                "x": 0.0,
                "xanchor": "left",
                "xref": "paper",
            },
            "colorway": list(OKABE_ITO),
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "xaxis": _axis(),
            "yaxis": _axis(),
            "legend": {
                "font": {"size": TICK_FONT_PX},
                "bgcolor": "rgba(255,255,255,0.85)",
                "title": {"font": {"size": TICK_FONT_PX}},
            },
            "margin": {"l": 90, "r": 40, "t": 90, "b": 80},
            "hoverlabel": {"font": {"size": TICK_FONT_PX}},
            "colorscale": {"diverging": [[0.0, "#0072B2"], [0.5, "#F7F7F7"], [1.0, "#D55E00"]]},
            "annotationdefaults": {"font": {"size": TICK_FONT_PX}},
        },
        data={
            "scatter": [go.Scatter(line={"width": 3}, marker={"size": 10})],
            "bar": [go.Bar(marker={"line": {"width": 0}})],
        },
    )


TEMPLATE = build_template()


def register() -> str:
    """Add the template to plotly's registry under ``"interp"``; returns the name."""
    pio.templates[TEMPLATE_NAME] = build_template()
    return TEMPLATE_NAME


def apply(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    """Give a figure the study template, a title and (optionally) a height; returns it."""
    fig.update_layout(template=TEMPLATE, title={"text": title})
    # shaded bands (CI, null) go under every line and marker
    fig.data = tuple(sorted(fig.data, key=lambda t: getattr(t, "fill", None) != "toself"))
    if height is not None:
        fig.update_layout(height=height)
    return fig
