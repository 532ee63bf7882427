"""RESULTS.md's mechanism blocks (steps 08-16) from the committed tables of an ``interp study``.

Directions (their split-half stability and overlap), probes, the fine-tune trajectory, the
steering sweep, activation patching and the sparse autoencoder: each function reads the tables
under ``results/<preset>/tables/<step>/`` and returns the block's Markdown. The registry is
:data:`interp.report.study_blocks.STUDY_BLOCKS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from interp.figures.tables import SCHEMAS, TableError
from interp.report.study_format import (
    cell_measure,
    ci_of,
    layer_list,
    plain_ci,
    pp_ci,
    rate_ci,
    read_table,
    sig,
    signed_ci,
    table,
)

REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "directions": (
        "08-directions/direction_stability.csv",
        "08-directions/direction_cosines.csv",
        "08-directions/direction_null.csv",
        "09-probes/probe_auroc.csv",
        "09-probes/probe_direction_cosines.csv",
        "10-trajectory/trajectory.csv",
        "10-trajectory/trajectory_warmth.csv",
    ),
    "steering": ("11-sweep/steering_sweep.csv",),
    "patching": ("13-patch/patching.csv",),
    "sae": (
        "14-sae-train/sae_quality.csv",
        "15-sae-decompose/sae_decomposition.csv",
        "15-sae-decompose/latent_overlap.csv",
        "16-sae-intervene/sae_interventions.csv",
    ),
}
"""Block key -> the files (under the tables folder) its block is written from."""


def _layers(part: pd.DataFrame, mask: pd.Series, total: int) -> str:
    """``k of n`` layers where ``mask`` holds, with the layers named when some but not all."""
    hit = part.loc[mask, "layer"].tolist()
    named = f" ({layer_list(hit)})" if 0 < len(hit) < total else ""
    return f"{len(hit)} of {total}{named}"


def _stability(stability: pd.DataFrame) -> str:
    rows = []
    for name, part in stability.groupby("direction", sort=False):
        top = part.loc[part["relative_norm"].idxmax()]
        rows.append(
            {
                "direction": str(name),
                "split-half cosine over layers": (
                    f"{part['cosine'].min():.2f} to {part['cosine'].max():.2f}"
                ),
                "layers with the CI above the null": _layers(
                    part, part["ci_low"] > part["null_high"], len(part)
                ),
                "largest norm / residual norm (layer)": (
                    f"{top['relative_norm']:.3f} ({int(top['layer'])})"
                ),
            }
        )
    return table(rows)


def _cosines(cosines: pd.DataFrame, band: float) -> str:
    rows = []
    for (a, b), part in cosines.groupby(["a", "b"], sort=False):
        top = part.loc[part["cosine"].abs().idxmax()]
        rows.append(
            {
                "a": str(a),
                "b": str(b),
                "cosine over layers": f"{part['cosine'].min():+.2f} to {part['cosine'].max():+.2f}",
                "layers outside the random band": _layers(
                    part, part["cosine"].abs() > band, len(part)
                ),
                "largest abs(cosine) (layer)": f"{top['cosine']:+.2f} ({int(top['layer'])})",
            }
        )
    return table(rows)


def _probes(auroc: pd.DataFrame, cosines: pd.DataFrame) -> str:
    rows, cos_rows = [], []
    for (probe, site), part in auroc.groupby(["probe", "site"], sort=False):
        best = part.loc[part["auroc"].idxmax()]
        first = part.loc[part["layer"].idxmin()]
        rows.append(
            {
                "probe": str(probe),
                "site": str(site),
                "best layer": str(int(best["layer"])),
                "AUROC [95% CI]": plain_ci(best["auroc"], best["auroc_low"], best["auroc_high"]),
                "shuffled-label AUROC": f"{best['shuffled_auroc']:.2f}",
                "layers with the CI above 0.5": _layers(part, part["auroc_low"] > 0.5, len(part)),
                "AUROC at the first layer": f"{first['auroc']:.2f} (layer {int(first['layer'])})",
                "rows": str(int(best["n"])),
            }
        )
    for (probe, name), part in cosines.groupby(["probe", "direction"], sort=False):
        cos_rows.append(
            {
                "probe": str(probe),
                "direction": str(name),
                "cosine of the probe's weights over layers": (
                    f"{part['cosine'].min():+.2f} to {part['cosine'].max():+.2f}"
                ),
            }
        )
    return f"{table(rows)}\n\n{table(cos_rows)}"


def _trajectory(traj: pd.DataFrame, corr: pd.DataFrame) -> str:
    rows = []
    for epoch, part in traj.groupby("epoch", sort=True):
        rows.append(
            {
                "epoch": f"{float(epoch):g}",
                "shift / residual norm, mean over layers (min to max)": (
                    f"{part['shift'].mean():.3f} ({part['shift'].min():.3f} to "
                    f"{part['shift'].max():.3f})"
                ),
                "cosine to the final direction (min to max)": (
                    f"{part['cosine_to_final'].min():.2f} to {part['cosine_to_final'].max():.2f}"
                ),
            }
        )
    layers = traj.sort_values("epoch").groupby("layer")["shift"]
    rising = sum(bool(np.all(np.diff(s.to_numpy(float)) > 0)) for _, s in layers)
    parts = []
    for measure, part in corr.groupby("measure", sort=False):
        r = part["r"].to_numpy(float)
        n = int(part["n_epochs"].max())
        if np.isfinite(r).any():
            parts.append(
                f"{measure} mean {np.nanmean(r):.2f} ({np.nanmin(r):.2f} to {np.nanmax(r):.2f} "
                f"over layers; {n} epochs)"
            )
        else:
            parts.append(f"{measure} not computable ({n} epochs)")
    return (
        f"{table(rows)}\n\nThe shift rises from each checkpoint to the next (epochs "
        f"{', '.join(f'{float(e):g}' for e in sorted(traj['epoch'].unique()))}) at {rising} of "
        f"{layers.ngroups} layers. Pearson r of the shift with warmth per epoch: "
        + "; ".join(parts)
        + "."
    )


def directions(folder: Path) -> str:
    """Steps 08-10: split-half stability of each direction, cosines between definitions against
    the random band, the probes, and the fine-tune direction over checkpoints."""
    stability = read_table(folder, "08-directions", "direction_stability",
                           SCHEMAS["direction_stability"])  # fmt: skip
    cosines = read_table(folder, "08-directions", "direction_cosines", SCHEMAS["direction_cosines"])
    null = read_table(folder, "08-directions", "direction_null", ("mean_abs", "q95_abs"))
    auroc = read_table(folder, "09-probes", "probe_auroc", SCHEMAS["probe_auroc"])
    probe_cos = read_table(folder, "09-probes", "probe_direction_cosines",
                           ("probe", "layer", "direction", "cosine"))  # fmt: skip
    traj = read_table(folder, "10-trajectory", "trajectory",
                      ("epoch", "layer", "cosine_to_final", "shift"))  # fmt: skip
    corr = read_table(folder, "10-trajectory", "trajectory_warmth",
                      ("layer", "measure", "n_epochs", "r"))  # fmt: skip
    band = float(null["q95_abs"].iat[0])
    return (
        "Split-half stability: mean cosine between the directions of two random halves of the "
        "items; above the null where the 2.5th percentile over splits exceeds the 97.5th of the "
        "null (sides centred, then swapped or permuted at random):\n\n"
        f"{_stability(stability)}\n\nCosines between definitions (random band: abs(cosine) "
        f"below {band:.3f}, the 95th percentile between random directions):\n\n"
        f"{_cosines(cosines, band)}\n\nProbes (out of fold, folds grouped by item; the "
        f"cosines compare the probe's weights with each direction at the same layer):\n\n"
        f"{_probes(auroc, probe_cos)}\n\nThe fine-tune direction over checkpoints:\n\n"
        f"{_trajectory(traj, corr)}"
    )


SWEEP_METRICS = {
    "warmth": ("warmth, P(warm)", lambda m, lo, hi: plain_ci(m, lo, hi, 2)),
    "p_agree": ("P(user's wrong answer), belief prompts", rate_ci),
    "error": ("chose the wrong answer, no-belief prompts", rate_ci),
    "kl_continuation": ("KL to unsteered (nats/token)", lambda m, lo, hi: plain_ci(m, lo, hi, 3)),
    "heldout_loss": ("held-out loss (nats/token)", lambda m, lo, hi: plain_ci(m, lo, hi, 2)),
}
"""Sweep metric -> (column title, formatter), in the order of the columns."""


def _outside(r: pd.Series) -> bool:
    lo, hi = r["null_low"], r["null_high"]
    return bool(np.isfinite(lo) and np.isfinite(hi) and not lo <= r["mean"] <= hi)


def steering(folder: Path) -> str:
    """Step 11: every sweep setting's readings (mean [95% CI]; * outside the random-direction
    band at that layer and alpha), and the settings outside the band on the forced-choice
    measures."""
    sweep = read_table(folder, "11-sweep", "steering_sweep", SCHEMAS["steering_sweep"])
    metrics = [m for m in SWEEP_METRICS if m in set(sweep["metric"])]
    rows, outside = [], []
    for (name, layer, alpha), part in sweep.groupby(["direction", "layer", "alpha"], sort=False):
        unsteered = name == "none"
        row = {
            "direction": "unsteered" if unsteered else str(name),
            "layer": "" if unsteered else str(int(layer)),
            "alpha": "" if unsteered else f"{float(alpha):+g}",
        }
        at = part.set_index("metric")
        for m in metrics:
            title, fmt = SWEEP_METRICS[m]
            if m not in at.index:
                row[title] = ""
                continue
            r = at.loc[m]
            star = _outside(r)
            row[title] = fmt(r["mean"], r["ci_low"], r["ci_high"]) + (" *" if star else "")
            if star and m in ("p_agree", "error"):
                outside.append(
                    f"{name} at layer {int(layer)}, alpha {float(alpha):+g}: {title} "
                    f"{100 * r['mean']:.1f}% (band {100 * r['null_low']:.1f} to "
                    f"{100 * r['null_high']:.1f})"
                )
        rows.append(row)
    said = "; ".join(outside) if outside else "none"
    steered = sweep[sweep["direction"] != "none"]
    banded = steered[np.isfinite(steered["null_low"]) & np.isfinite(steered["null_high"])]
    measured = sorted(set(banded["alpha"].astype(float)))
    unbanded = sorted(set(steered["alpha"].astype(float)) - set(measured))
    where = (
        f" The band was measured at alpha {', '.join(f'{a:+g}' for a in measured)} only; at "
        f"{', '.join(f'{a:+g}' for a in unbanded)} no setting can be marked."
        if unbanded and measured
        else ""
    )
    return (
        f"Each setting's readings, mean [95% CI]:\n\n{table(rows)}\n\nMarked *: outside the band "
        "of random directions of the same norm (2.5th to 97.5th percentile of their means) at "
        f"that layer and alpha.{where} Settings outside the band on the forced-choice measures: "
        f"{said}."
    )


def patching(folder: Path) -> str:
    """Step 13: the fraction of the gap recovered per layer, patch direction and positions."""
    patch = read_table(folder, "13-patch", "patching", SCHEMAS["patching"])
    columns = list(dict.fromkeys(zip(patch["patch"], patch["positions"], strict=True)))
    rows = []
    for layer, part in patch.groupby("layer", sort=True):
        row = {"layer": str(int(layer))}
        for p, pos in columns:
            hit = part[(part["patch"] == p) & (part["positions"] == pos)]
            row[f"{p}, {pos} positions"] = (
                "" if hit.empty else signed_ci(*ci_of(hit.iloc[0], "recovered"), digits=2)
            )
        rows.append(row)
    return (
        f"Fraction of the gap recovered [95% CI], n = {int(patch['n_items'].max())} items:\n\n"
        f"{table(rows)}\n\nAcross layers the CIs span {patch['ci_low'].min():+.1f} to "
        f"{patch['ci_high'].max():+.1f}."
    )


def _quality(q: pd.DataFrame, path: str) -> str:
    values = dict(zip(q["measure"].astype(str), q["value"], strict=True))

    def get(key: str) -> str:
        if key not in values:
            raise TableError(f"{path}: no row with measure {key!r}")
        return str(values[key])

    def num(key: str) -> float:
        return float(get(key))

    chosen = get("quality.layer_choice.chosen")
    return (
        f"SAE at {get('quality.site')} (the layer where the warmth directions are largest "
        f"relative to the residual: {get('quality.layer_choice.strongest')}; chosen: {chosen}): "
        f"{get('spec.architecture')}, k {get('spec.k')}, {get('spec.d_sae')} latents, "
        f"{int(num('n_tokens'))} training tokens. On held-out rows: explained variance "
        f"{num('quality.held_out.explained_variance'):.2f}, L0 {num('quality.held_out.l0'):.1f}, "
        f"{int(num('quality.held_out.dead_latents'))} dead latents "
        f"({100 * num('quality.held_out.dead_fraction'):.0f}%); next-token loss "
        f"{num('quality.spliced.ce_clean'):.3f} clean, {num('quality.spliced.ce_sae'):.3f} with "
        f"the SAE spliced in ({100 * num('quality.spliced.loss_recovered'):.0f}% of the loss "
        f"recovered against mean ablation, {num('quality.spliced.ce_mean_ablated'):.3f}), "
        f"{num('quality.spliced.ce_sae_plus_error'):.4f} with the error term added back."
    )


def _example(text: object, width: int = 50) -> str:
    first = str(text).split(" | ")[0] if isinstance(text, str) else ""
    first = " ".join(first.split()).replace("<", "‹").replace(">", "›")
    return first if len(first) <= width else first[: width - 1] + "…"


def _interventions(t: pd.DataFrame) -> tuple[str, str]:
    conditions = list(dict.fromkeys(t.loc[t["measure"] == "error", "condition"]))
    rows, moved = [], []
    for (model, iv), part in t.groupby(["model", "intervention"], sort=False):
        arm = f"{model} / {iv}"
        ref = (model, iv) == ("warm", "none")
        row = {"arm": arm}
        warmth = part[part["measure"] == "warmth"]
        cells = [("warmth", warmth)] + [
            (c, part[(part["measure"] == "error") & (part["condition"] == c)]) for c in conditions
        ]
        for label, hit in cells:
            title = label if label == "warmth" else f"{label}: {cell_measure(label)} (pp)"
            if hit.empty:
                row[title] = ""
                continue
            r = hit.iloc[0]
            pct = label != "warmth"
            if ref or not np.isfinite(r["diff_vs_warm"]):
                row[title] = (
                    rate_ci(r["mean"], r["ci_low"], r["ci_high"])
                    if pct
                    else plain_ci(r["mean"], r["ci_low"], r["ci_high"], 2)
                )
                continue
            diff = (pp_ci if pct else lambda d, lo, hi: signed_ci(d, lo, hi, 2))(
                r["diff_vs_warm"], r["diff_low"], r["diff_high"]
            )
            row[title] = f"{diff}, p {sig(r['p_value'])}"
            if pct and (r["diff_low"] > 0 or r["diff_high"] < 0):
                moved.append(
                    f"{arm}, {label} {pp_ci(r['diff_vs_warm'], r['diff_low'], r['diff_high'])} pp"
                )
        rows.append(row)
    return table(rows), ("; ".join(moved) if moved else "none")


def sae(folder: Path) -> str:
    """Steps 14-16: the SAE's quality, the top latents of each direction, the overlap of the
    warmth and sycophancy latent sets against their nulls, and the latent interventions."""
    quality = read_table(folder, "14-sae-train", "sae_quality", ("measure", "value"))
    decomp = read_table(folder, "15-sae-decompose", "sae_decomposition",
                        SCHEMAS["sae_decomposition"])  # fmt: skip
    overlap = read_table(folder, "15-sae-decompose", "latent_overlap",
                         ("a", "b", "k", "overlap", "null", "null_mean", "null_low", "null_high",
                          "p_value"))  # fmt: skip
    iv = read_table(folder, "16-sae-intervene", "sae_interventions", SCHEMAS["sae_interventions"])
    top = [
        {
            "direction": str(r.direction),
            "rank": str(int(r.rank)),
            "latent": str(int(r.latent)),
            "decoder cosine": f"{r.cosine:+.3f}",
            "attribution (warm - original)": f"{r.attribution:+.4f}",
            "top example": _example(r.top_examples),
        }
        for r in decomp[decomp["rank"] <= 3].itertuples()
    ]
    shared = [
        {
            "warmth direction": str(r.a),
            "sycophancy direction": str(r.b),
            "top-k": str(int(r.k)),
            "shared latents": str(int(r.overlap)),
            "null": str(r.null),
            "null mean [2.5%, 97.5%]": f"{r.null_mean:.2f} [{r.null_low:.0f}, {r.null_high:.0f}]",
            "p": sig(r.p_value),
        }
        for r in overlap.itertuples()
    ]
    iv_table, moved = _interventions(iv)
    n = int(iv.loc[iv["measure"] == "error", "n_items"].max())
    return (
        f"{_quality(quality, str(folder / '14-sae-train' / 'sae_quality.csv'))}\n\n"
        f"Top latents per direction (cosine of the decoder vector with the direction):\n\n"
        f"{table(top)}\n\nOverlap of the top-latent sets:\n\n{table(shared)}\n\n"
        f"Latent interventions on the warm model, n = {n} items (the warm row: its own level; "
        f"the others: arm minus warm, paired within item, 95% CI, uncorrected p):\n\n{iv_table}"
        f"\n\nError CIs that exclude zero: {moved}."
    )
