"""Figure functions on small synthetic tidy tables: columns checked, traces, CIs, units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from interp import figures
from interp.figures.marginal_effects import marginal_effects
from interp.figures.tables import SCHEMAS, TableError

VARIANTS = ("original", "warm", "cold", "warm-sysprompt")
TASKS = ("general_knowledge", "misconceptions", "disinformation", "medical")
CELLS = ("no belief", "wrong belief", "sad, no belief", "sad + wrong belief")


def _ci(rng: np.random.Generator, mean: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    half = width * (0.5 + rng.random(mean.shape))
    return mean - half, mean + half


def synthetic_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """One small, plausible table per schema (the shapes the producers write)."""
    rng = np.random.default_rng(seed)
    t: dict[str, pd.DataFrame] = {}
    rows = []
    for v, lift in (("original", 0.0), ("warm", 1.0), ("cold", -0.3)):
        for inst, scale in (("embedding", 0.5), ("sociot", 0.02), ("lexical", 2.0)):
            for e in (0.0,) if v == "original" else (0.0, 0.5, 1.0, 1.5, 2.0, 4.0):
                m = scale * (0.4 + lift * (1 - np.exp(-e)) * 0.8 + rng.normal(0, 0.02))
                rows.append(
                    {
                        "variant": v,
                        "epoch": e,
                        "instrument": inst,
                        "mean": m,
                        "ci_low": m - 0.06 * scale,
                        "ci_high": m + 0.06 * scale,
                        "n": 48,
                    }
                )
    t["warmth_by_epoch"] = pd.DataFrame(rows)
    rows = []
    for v, lift in zip(VARIANTS, (0.0, 0.08, -0.01, 0.03), strict=True):
        for k, task in enumerate(TASKS):
            for c, cell in enumerate(CELLS):
                for measure in ("error", "agrees_with_user"):
                    if measure == "agrees_with_user" and "wrong belief" not in cell:
                        continue
                    m = float(np.clip(0.2 + 0.05 * k + 0.06 * c + lift * (1 + c / 2), 0, 1))
                    rows.append(
                        {
                            "variant": v,
                            "task": task,
                            "cell": cell,
                            "measure": measure,
                            "mean": m,
                            "ci_low": max(0.0, m - 0.05),
                            "ci_high": min(1.0, m + 0.05),
                            "n_items": 40,
                        }
                    )
    t["error_by_task"] = pd.DataFrame(rows)
    names = ("mean_diff", "pca", "probe")
    t["direction_cosines"] = pd.DataFrame(
        [
            {
                "layer": layer,
                "a": a,
                "b": b,
                "cosine": float(np.clip(0.3 + 0.05 * layer + rng.normal(0, 0.1), -1, 1)),
            }
            for layer in range(0, 30, 3)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
    )
    rows = []
    for d in ("warmth", "sycophancy"):
        for layer in range(0, 30, 2):
            m = 0.2 + 0.7 * layer / 30 + rng.normal(0, 0.03)
            rows.append(
                {
                    "direction": d,
                    "layer": layer,
                    "cosine": m,
                    "ci_low": m - 0.05,
                    "ci_high": m + 0.05,
                    "null_cosine": 0.0,
                    "null_high": 0.12,
                    "relative_norm": 0.05 + 0.01 * layer,
                }
            )
    t["direction_stability"] = pd.DataFrame(rows)
    rows = []
    for p, top in (("sycophancy", 0.8), ("warm_vs_original", 0.95)):
        for layer in range(30):
            a = 0.5 + (top - 0.5) * np.sin(np.pi * layer / 30) + rng.normal(0, 0.01)
            rows.append(
                {
                    "probe": p,
                    "site": "resid_post",
                    "layer": layer,
                    "n": 400,
                    "auroc": a,
                    "auroc_low": a - 0.04,
                    "auroc_high": min(1.0, a + 0.04),
                    "accuracy": a - 0.05,
                    "accuracy_low": a - 0.09,
                    "accuracy_high": a - 0.01,
                    "shuffled_auroc": 0.5 + rng.normal(0, 0.02),
                }
            )
    t["probe_auroc"] = pd.DataFrame(rows)
    rows = []
    for d, gain in (("warmth", 1.0), ("sycophancy", 0.4)):
        for alpha in (-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0):
            for metric, base, slope in (
                ("p_agree", 0.5, 0.03),
                ("error", 0.3, 0.015),
                ("warmth", 0.4, 0.05),
                ("kl", 0.0, 0.0),
                ("heldout_loss", 2.5, 0.0),
            ):
                m = (
                    base
                    + gain * slope * alpha
                    + (0.004 * alpha**2 if metric in ("kl", "heldout_loss") else 0.0)
                )
                m = float(np.clip(m, 0, 1)) if metric in ("p_agree", "error") else m
                rows.append(
                    {
                        "direction": d,
                        "layer": 15,
                        "alpha": alpha,
                        "metric": metric,
                        "mean": m,
                        "ci_low": m - 0.02,
                        "ci_high": m + 0.02,
                        "null_low": base - 0.03 if metric != "kl" else np.nan,
                        "null_high": base + 0.03 if metric != "kl" else np.nan,
                    }
                )
    t["steering_sweep"] = pd.DataFrame(rows)
    t["verdict"] = verdict_table(rng, "ablate:warmth")
    rows = []
    for patch, shift in (("original->warm", 0), ("warm->original", 6)):
        for pos in ("last", "all"):
            for layer in range(30):
                r = 1 / (1 + np.exp(-(layer - 14 - shift) / 3)) * (1.0 if pos == "all" else 0.7)
                rows.append(
                    {
                        "layer": layer,
                        "positions": pos,
                        "patch": patch,
                        "recovered": r,
                        "ci_low": r - 0.1,
                        "ci_high": r + 0.1,
                        "n_items": 60,
                    }
                )
    t["patching"] = pd.DataFrame(rows)
    t["sae_decomposition"] = pd.DataFrame(
        [
            {
                "direction": d,
                "rank": k + 1,
                "latent": int(rng.integers(0, 16384)),
                "cosine": 0.6 / (k + 1),
                "attribution": 0.3 / (k + 1) ** 0.5,
                "top_examples": "I'm so sorry to hear that | You've got this | hugs",
            }
            for d in ("warmth", "sycophancy")
            for k in range(8)
        ]
    )
    t["sae_interventions"] = verdict_table(rng, "sae-ablate:top8-warmth")
    # the verdict protocol's tables: one plausible row each, in the producers' column order
    for name in ("verdict_gap", "verdict_arms", "verdict_null", "verdict_damage"):
        row = {c: 0.1 for c in SCHEMAS[name]}
        row.update(
            {
                c: "x"
                for c in ("split", "contrast", "condition", "task", "measure", "arm", "target")
                if c in row
            }
        )
        if "damaged" in row:
            row["damaged"] = False
        t[name] = pd.DataFrame([row], columns=list(SCHEMAS[name]))
    t["regressions"] = pd.DataFrame(
        [["warm", "model1_main_effect", "is_finetuned", 0.4, 0.1, 0.2, 0.6, 0.001, 480, 240,
          "cluster(item_id)", ""]],
        columns=list(SCHEMAS["regressions"]),
    )  # fmt: skip
    rows = []
    for variant, shift in (("warm", 4.0), ("cold", -1.0)):
        for model, by, levels in (
            ("model1_main_effect", "all", ("all",)),
            ("model4_belief", "belief", ("all", "no belief", "belief")),
        ):
            for level in levels:
                m = shift + (2.0 if level == "belief" else 0.0)
                rows.append([variant, model, f"{variant} - original", by if level != "all"
                             else "all", level, "forced-choice error", 200, m, m - 3, m + 3,
                             0.02, 0.05, ""])  # fmt: skip
    rows.append(["warm", "model3_detailed_context", "warm - original", "all", "all", np.nan,
                 np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, "skipped: one level"])  # fmt: skip
    t["marginal_effects"] = pd.DataFrame(rows, columns=list(SCHEMAS["marginal_effects"]))
    return t


def verdict_table(rng: np.random.Generator, intervention: str) -> pd.DataFrame:
    rows = []
    arms = (
        ("original", "none", 0.20),
        ("warm", "none", 0.30),
        ("warm", intervention, 0.24),
        ("warm", "ablate:random", 0.30),
    )
    for cond, bump in (
        ("neutral", 0.0),
        ("sad", 0.02),
        ("wrong belief", 0.1),
        ("sad + wrong belief", 0.14),
    ):
        for model, inter, base in arms:
            m = base + bump + rng.normal(0, 0.005)
            diff = np.nan if (model, inter) == ("warm", "none") else m - (0.30 + bump)
            rows.append(
                {
                    "model": model,
                    "intervention": inter,
                    "condition": cond,
                    "measure": "error",
                    "mean": m,
                    "ci_low": m - 0.04,
                    "ci_high": m + 0.04,
                    "n_items": 80,
                    "diff_vs_warm": diff,
                    "diff_low": diff - 0.03,
                    "diff_high": diff + 0.03,
                    "p_value": 0.01 if np.isfinite(diff) else np.nan,
                }
            )
    return pd.DataFrame(rows)


DRAW = {
    "warmth_by_epoch": figures.warmth_by_epoch,
    "error_by_task": figures.error_by_task,
    "direction_cosines": figures.cosine_heatmap,
    "direction_stability": figures.stability,
    "probe_auroc": figures.probe_auroc,
    "steering_sweep": figures.dose_response,
    "verdict": figures.verdict_bars,
    "patching": figures.patching_recovery,
    "sae_decomposition": figures.sae_decomposition,
    "sae_interventions": figures.sae_interventions,
    "marginal_effects": marginal_effects,
}


def test_synthetic_tables_have_exactly_the_schema_columns():
    tables = synthetic_tables()
    assert set(tables) == set(SCHEMAS)
    for name, df in tables.items():
        assert tuple(df.columns) == SCHEMAS[name], name


@pytest.mark.parametrize("name", sorted(DRAW))
def test_each_figure_draws_with_titles_and_the_study_template(name):
    fig = DRAW[name](synthetic_tables()[name])
    assert isinstance(fig, go.Figure) and len(fig.data) > 0
    assert fig.layout.title.text
    assert fig.layout.template.layout.font.size >= 16
    axes = [
        getattr(fig.layout, k)
        for k in fig.layout.to_plotly_json()
        if k.startswith(("xaxis", "yaxis"))
    ]
    assert any(ax.title.text for ax in axes), "no axis title"


@pytest.mark.parametrize("name", sorted(DRAW))
def test_missing_columns_are_named_with_those_found(name):
    df = synthetic_tables()[name]
    dropped = SCHEMAS[name][1]
    with pytest.raises(TableError) as err:
        DRAW[name](df.drop(columns=[dropped]))
    assert dropped in str(err.value) and SCHEMAS[name][0] in str(err.value)


def test_error_bars_follow_the_ci_columns_in_percent():
    df = synthetic_tables()["error_by_task"]
    fig = figures.error_by_task(df)
    bar = next(t for t in fig.data if t.name == "warm" and t.xaxis in ("x", None))
    rows = df[
        (df["variant"] == "warm") & (df["task"] == "general_knowledge") & (df["measure"] == "error")
    ]
    np.testing.assert_allclose(bar.y, rows["mean"].to_numpy() * 100)
    np.testing.assert_allclose(bar.error_y.array, (rows["ci_high"] - rows["mean"]).to_numpy() * 100)
    np.testing.assert_allclose(
        bar.error_y.arrayminus, (rows["mean"] - rows["ci_low"]).to_numpy() * 100
    )
    assert "%" in fig.layout.yaxis.title.text


def test_no_error_bars_without_ci_values():
    df = synthetic_tables()["error_by_task"].assign(ci_low=np.nan, ci_high=np.nan)
    fig = figures.error_by_task(df)
    assert all(t.error_y.array is None for t in fig.data)


def test_percent_input_is_refused_for_proportion_columns():
    df = synthetic_tables()["error_by_task"]
    df = df.assign(mean=df["mean"] * 100)
    with pytest.raises(TableError, match="proportions"):
        figures.error_by_task(df)


def test_variant_colours_are_fixed_across_figures():
    tables = synthetic_tables()
    a = figures.error_by_task(tables["error_by_task"])
    b = figures.warmth_by_epoch(tables["warmth_by_epoch"])
    for fig in (a, b):
        for t in fig.data:
            if t.name in figures.VARIANT_COLORS and t.type == "bar":
                assert t.marker.color == figures.VARIANT_COLORS[t.name]
            if (
                t.name in figures.VARIANT_COLORS
                and t.type == "scatter"
                and t.mode
                and "lines" in t.mode
            ):
                assert t.line.color == figures.VARIANT_COLORS[t.name]


def test_scatter_pairs_original_and_warm_and_draws_the_diagonal():
    df = synthetic_tables()["error_by_task"]
    fig = figures.sycophancy_scatter(df)
    assert fig.data[0].name.startswith("no change")
    points = [t for t in fig.data[1:]]
    assert len(points) == 4 * 2  # tasks x belief cells (agreement exists on belief cells only)
    first = points[0]
    orig = df[(df.variant == "original") & (df.measure == "agrees_with_user")].iloc[0]
    warm = df[(df.variant == "warm") & (df.measure == "agrees_with_user")].iloc[0]
    assert first.x[0] == pytest.approx(orig["mean"] * 100) and first.y[0] == pytest.approx(
        warm["mean"] * 100
    )
    with pytest.raises(TableError, match="'original' and 'warm'"):
        figures.sycophancy_scatter(df[df.variant != "original"])


def test_heatmap_folds_mirrored_pairs_and_spans_minus_one_to_one():
    df = synthetic_tables()["direction_cosines"]
    mirrored = df.rename(columns={"a": "b", "b": "a"})
    fig = figures.cosine_heatmap(pd.concat([df, mirrored]))
    heat = fig.data[0]
    assert len(heat.y) == 3 and heat.zmin == -1 and heat.zmax == 1
    assert np.allclose(np.asarray(heat.z), figures.cosine_heatmap(df).data[0].z)


def test_steering_null_band_only_where_computed():
    fig = figures.dose_response(synthetic_tables()["steering_sweep"])
    bands = [t for t in fig.data if t.fill == "toself"]
    metrics_with_null = 4  # kl has no null in the synthetic table
    assert len(bands) == 2 * metrics_with_null
    assert any(
        "residual norm" in (ax.title.text or "")
        for k in fig.layout.to_plotly_json()
        if k.startswith("xaxis")
        for ax in [getattr(fig.layout, k)]
    )


def test_verdict_difference_panel_leaves_out_the_reference_arm():
    df = synthetic_tables()["verdict"]
    fig = figures.verdict_bars(df)
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert {t.name for t in right} == {"original", "warm, ablate:warmth", "warm, ablate:random"}
    ablate = next(t for t in right if t.name == "warm, ablate:warmth")
    rows = df[df.intervention == "ablate:warmth"]
    np.testing.assert_allclose(ablate.y, rows["diff_vs_warm"].to_numpy() * 100)


def test_unknown_measure_is_named():
    with pytest.raises(TableError, match="'warmth'"):
        figures.verdict_bars(synthetic_tables()["verdict"], measure="warmth")


def test_theme_registers_under_its_name():
    import plotly.io as pio

    assert figures.register() == "interp"
    assert pio.templates["interp"].layout.font.size >= 16


def test_scatter_has_one_point_per_model_when_the_table_names_models():
    df = synthetic_tables()["error_by_task"]
    two = pd.concat(
        [
            df.assign(model="smollm2"),
            df.assign(
                model="other",
                mean=df["mean"] * 0.5,
                ci_low=df["ci_low"] * 0.5,
                ci_high=df["ci_high"] * 0.5,
            ),
        ]
    )
    fig = figures.sycophancy_scatter(two)
    assert all(len(t.x) == 2 and set(t.text) == {"smollm2", "other"} for t in fig.data[1:])


def test_the_sweep_null_is_drawn_only_where_it_was_measured():
    import pandas as pd

    from interp.figures.steering import null_marks

    rows = pd.DataFrame(
        {
            "alpha": [-1.0, -0.5, 0.5, 1.0],
            "null_low": [0.1, None, None, 0.2],
            "null_high": [0.3, None, None, 0.4],
        }
    )
    trace = null_marks(rows, 1.0, showlegend=True)
    assert list(trace.x) == [-1.0, 1.0] and trace.fill is None  # two ranges, nothing between
    full = null_marks(rows.fillna(0.2), 1.0, showlegend=True)
    assert full.fill == "toself"


def test_the_sweep_figure_draws_the_warmth_null_and_both_kls():
    df = synthetic_tables()["steering_sweep"]
    df = df[df.metric != "kl"]
    kls = []
    for metric in ("kl_continuation", "kl_first_token"):
        part = df[df.metric == "warmth"].assign(metric=metric, mean=0.01, ci_low=0, ci_high=0.02)
        kls.append(part.assign(null_low=0.0, null_high=0.03))
    fig = figures.dose_response(pd.concat([df, *kls], ignore_index=True))
    titles = [
        getattr(fig.layout, k).title.text or ""
        for k in fig.layout.to_plotly_json()
        if k.startswith("yaxis")
    ]
    assert any("continuation" in t for t in titles) and any("first answer" in t for t in titles)
    warmth_axis = next(i for i, t in enumerate(titles) if t.startswith("warmth"))
    y = "y" if warmth_axis == 0 else f"y{warmth_axis + 1}"
    assert any(t.fill == "toself" and t.yaxis == y for t in fig.data)  # the warmth null band
