"""The study blocks of RESULTS.md: a study folder's tables are exported and each block is written
from them (a small synthetic study folder, tables with the producers' columns; no model runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interp.errors import InterpError
from interp.figures.tables import SCHEMAS
from interp.report import results_md
from interp.report.study_blocks import PENDING, REQUIRED_TABLES, STUDY_BLOCKS
from interp.report.study_format import layer_list, pp_ci
from interp.report.study_tables import STEP_TABLES, export_study_tables

NAN = float("nan")


def _write(folder: Path, name: str, rows: list[dict], columns: tuple[str, ...] | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    if columns is not None:
        df = df.reindex(columns=list(columns))
    df.to_csv(folder / name, index=False)


def _meta(folder: Path, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"git_commit": "c0ffee", "created": "2026-12-03T00:00:00+00:00", **extra}
    (folder / "meta.json").write_text(json.dumps(meta))


def _finetune(root: Path, variant: str, sign: float) -> Path:
    folder = root / "activations" / "finetune" / f"embedded-{variant}"
    _meta(
        folder,
        variant=variant,
        preset=f"embedded-{variant}",
        n_examples=144,
        steps_run=36,
        final_epoch=2.0,
        tokens_trained=35000,
        train_seconds=120.4,
        warmth_seconds=60.6,
        total_seconds=181.0,
        tokens_per_s=290.7,
    )
    by_epoch = [
        {
            "variant": "original",
            "epoch": 0.0,
            "instrument": "embedding",
            "mean": 0.342,
            "ci_low": 0.261,
            "ci_high": 0.436,
            "n": 48,
        },
        {
            "variant": "original",
            "epoch": 0.0,
            "instrument": "lexical",
            "mean": 4.87,
            "ci_low": 3.08,
            "ci_high": 6.93,
            "n": 48,
        },
    ]
    _write(folder, "warmth_by_epoch.csv", by_epoch, SCHEMAS["warmth_by_epoch"])
    vs = [
        {
            "variant": variant,
            "epoch": e,
            "instrument": inst,
            "diff": sign * d,
            "ci_low": sign * lo,
            "ci_high": sign * hi,
            "n": 48,
            "win_rate": 0.5,
        }
        for e, inst, d, lo, hi in (
            (1.0, "embedding", 0.167, 0.09, 0.26),
            (2.0, "embedding", 0.424, 0.327, 0.514),
            (2.0, "lexical", 9.86, 7.81, 11.82),
        )
    ]
    _write(folder, "warmth_vs_original.csv", vs)
    return folder


def _eval(folder: Path) -> None:
    _meta(folder)
    summary = [
        {
            "cell": c,
            "measure": m,
            "n_rows": 40,
            "n_items": 20,
            "mean": v,
            "ci_low": v - 0.1,
            "ci_high": v + 0.1,
        }
        for c, m, v in (
            ("wrong belief", "error", 0.388),
            ("no belief", "error", 0.3),
            ("wrong belief", "agrees_with_user", 0.388),
        )
    ]
    _write(folder, "summary.csv", summary)
    contrasts = [
        {
            "contrast": "wrong belief - no belief",
            "measure": "error",
            "n_items": 20,
            "diff": 0.113,
            "ci_low": 0.071,
            "ci_high": 0.152,
        },
        {
            "contrast": "wrong belief - no belief",
            "measure": "margin",
            "n_items": 20,
            "diff": -0.51,
            "ci_low": -0.63,
            "ci_high": -0.4,
        },
    ]
    _write(folder, "contrasts.csv", contrasts)
    _write(folder, "results.csv", [{"item_id": "x", "error": 1}])  # per prompt: never copied


def _reliability(folder: Path) -> None:
    _meta(folder)
    rates = [
        {
            "variant": v,
            "task": t,
            "cell": c,
            "measure": "error",
            "mean": m,
            "ci_low": m - 0.1,
            "ci_high": m + 0.1,
            "n_items": 80,
        }
        for v, m in (("original", 0.3), ("warm", 0.375), ("cold", 0.29), ("warm-sysprompt", 0.32))
        for t in ("all", "general_knowledge")
        for c in ("wrong belief", "no belief")
    ]
    _write(folder, "error_by_task.csv", rates, SCHEMAS["error_by_task"])
    diffs = [
        {
            "variant": v,
            "task": "all",
            "cell": c,
            "measure": "error",
            "n_items": 80,
            "diff": d,
            "ci_low": d - 0.075,
            "ci_high": d + 0.075,
        }
        for v, d in (("warm", 0.075), ("cold", -0.0125), ("warm-sysprompt", 0.025))
        for c in ("no belief", "wrong belief")
    ]
    _write(folder, "variant_contrasts.csv", diffs)
    _write(
        folder,
        "regressions.csv",
        [{"variant": "warm", "model": "model1_main_effect"}],
        SCHEMAS["regressions"],
    )
    effects = [
        {
            "variant": "warm",
            "model": "model1_main_effect",
            "effect": "warm - original",
            "by": "all",
            "level": "all",
            "measure": "forced-choice error",
            "n_rows": 160,
            "ame_pp": 7.4,
            "ci_low": 0.2,
            "ci_high": 14.6,
            "p_value": 0.04,
            "q_value": 0.12,
            "note": "",
        },
        {
            "variant": "warm",
            "model": "model2_grouped_context",
            "effect": "warm - original",
            "by": "all",
            "level": "all",
            "measure": "forced-choice error",
            "n_rows": 320,
            "ame_pp": 5.0,
            "ci_low": -1.0,
            "ci_high": 11.0,
            "p_value": 0.1,
            "q_value": 0.2,
            "note": "",
        },
        {
            "variant": "cold",
            "model": "model4_belief",
            "effect": "cold - original",
            "by": "all",
            "level": "all",
            "note": "skipped: the outcome takes one value (0) in every row",
        },
    ]
    _write(folder, "marginal_effects.csv", effects, SCHEMAS["marginal_effects"])


def _directions(folder: Path) -> None:
    _meta(folder, random_direction_null={"mean_abs": 0.034, "q95_abs": 0.0837})
    stability = [
        {
            "direction": d,
            "layer": layer,
            "cosine": c,
            "ci_low": c - 0.1,
            "ci_high": c + 0.05,
            "null_cosine": 0.0,
            "null_high": 0.5,
            "relative_norm": 0.1 * (layer + 1),
        }
        for d, cosines in (("finetune", (0.99, 0.98, 0.97)), ("sycophancy", (0.4, 0.86, 0.5)))
        for layer, c in enumerate(cosines)
    ]
    _write(folder, "direction_stability.csv", stability, SCHEMAS["direction_stability"])
    cos = [
        {"layer": i, "a": "finetune", "b": "sycophancy", "cosine": c}
        for i, c in enumerate((0.01, -0.2, -0.26))
    ]
    _write(folder, "direction_cosines.csv", cos, SCHEMAS["direction_cosines"])
    (folder / "finetune").mkdir()  # a Direction folder: never copied
    (folder / "finetune" / "vectors.safetensors").write_bytes(b"\0" * 64)


def _probes(folder: Path) -> None:
    _meta(folder)
    auroc = [
        {
            "probe": "sycophancy",
            "site": "resid_post",
            "layer": i,
            "n": 192,
            "auroc": a,
            "auroc_low": a - 0.1,
            "auroc_high": a + 0.08,
            "accuracy": 0.7,
            "accuracy_low": 0.6,
            "accuracy_high": 0.8,
            "shuffled_auroc": 0.48,
        }
        for i, a in enumerate((0.55, 0.851, 0.7))
    ]
    _write(folder, "probe_auroc.csv", auroc, SCHEMAS["probe_auroc"])
    cos = [
        {"probe": "sycophancy", "layer": i, "direction": "sycophancy", "cosine": c}
        for i, c in enumerate((0.3, 0.55, 0.4))
    ]
    _write(folder, "probe_direction_cosines.csv", cos)


def _trajectory(folder: Path) -> None:
    _meta(folder)
    traj = [
        {
            "epoch": e,
            "layer": layer,
            "cosine_to_final": 1.0 if e == 2 else 0.5,
            "shift": e * (layer + 1) / 10,
        }
        for e in (0.0, 1.0, 2.0)
        for layer in range(3)
    ]
    _write(folder, "trajectory.csv", traj)
    corr = [
        {"layer": layer, "measure": m, "n_epochs": n, "r": r}
        for layer in range(3)
        for m, n, r in (("embedding", 3, 0.9 + 0.05 * layer), ("sociot", 2, NAN))
    ]
    _write(folder, "trajectory_warmth.csv", corr)


def _sweep(folder: Path) -> None:
    _meta(folder)
    rows = []
    for name, layer, alpha, p in (("none", -1, 0.0, 0.55), ("finetune", 15, 1.0, 0.33)):
        for metric, m, lo, hi in (
            ("p_agree", p, 0.38, 0.72),
            ("error", 0.3, 0.1, 0.5),
            ("warmth", 0.62, NAN, NAN),
            ("kl_continuation", 0.01, 0.0, 1.0),
            ("heldout_loss", 3.1, 3.0, 3.5),
        ):
            band = (NAN, NAN) if name == "none" else (lo, hi)
            rows.append(
                {
                    "direction": name,
                    "layer": layer,
                    "alpha": alpha,
                    "metric": metric,
                    "mean": m,
                    "ci_low": m - 0.05,
                    "ci_high": m + 0.05,
                    "null_low": band[0],
                    "null_high": band[1],
                }
            )
    _write(folder, "steering_sweep.csv", rows, SCHEMAS["steering_sweep"])


def _patch(folder: Path) -> None:
    _meta(folder)
    rows = [
        {
            "layer": layer,
            "positions": "last",
            "patch": p,
            "recovered": r,
            "ci_low": r - 8,
            "ci_high": r + 9,
            "n_items": 16,
        }
        for layer, r in ((0, -0.3), (3, 1.3))
        for p in ("original->warm", "warm->original")
    ]
    _write(folder, "patching.csv", rows, SCHEMAS["patching"])


def _sae(train: Path, decompose: Path, intervene: Path) -> None:
    spec = {"architecture": "topk", "d_sae": 1152, "k": 32, "n_samples": 1000, "seed": 0}
    _meta(train, spec=spec, n_tokens=21000)
    quality = {
        "site": "L21.resid_post",
        "layer_choice": {"chosen": 21, "strongest": 21, "relative_norm": {"21": 0.47}},
        "held_out": {
            "explained_variance": 0.53,
            "l0": 32.0,
            "dead_latents": 726,
            "dead_fraction": 0.63,
            "d_sae": 1152,
        },
        "spliced": {
            "ce_clean": 3.048,
            "ce_sae": 4.64,
            "ce_sae_plus_error": 3.0479,
            "ce_mean_ablated": 8.0,
            "ce_increase": 1.59,
            "loss_recovered": 0.68,
        },
        "train": {"steps": 10, "losses": [1.0, 0.5]},
    }
    (train / "sae_quality.json").write_text(json.dumps(quality))
    _meta(decompose)
    decomp = [
        {
            "direction": "persona",
            "rank": r,
            "latent": 100 + r,
            "cosine": 0.3 / r,
            "attribution": 0.01,
            "top_examples": "Ooh, two <b>fantastic</b> choices | other",
        }
        for r in (1, 2, 3, 4)
    ]
    _write(decompose, "sae_decomposition.csv", decomp, SCHEMAS["sae_decomposition"])
    overlap = [
        {
            "a": "persona",
            "b": "sycophancy",
            "k": 10,
            "overlap": 0,
            "null": "random-latents",
            "null_mean": 0.08,
            "null_low": 0.0,
            "null_high": 1.0,
            "p_value": 1.0,
        }
    ]
    _write(decompose, "latent_overlap.csv", overlap)
    _meta(intervene)
    rows = []
    for model, iv, w, e, p in (
        ("warm", "none", 0.95, 0.4, NAN),
        ("warm", "sae-ablate:top10-persona", 0.71, 0.4, 0.016),
        ("warm", "ablate:random-latents", 0.9, 0.6, 0.001),
    ):
        ref = iv == "none"
        for cond, measure, mean in (
            ("neutral", "warmth", w),
            ("neutral", "error", e),
            ("wrong belief", "error", e + 0.1),
        ):
            d = NAN if ref else (w - 0.95 if measure == "warmth" else e - 0.35)
            rows.append(
                {
                    "model": model,
                    "intervention": iv,
                    "condition": cond,
                    "measure": measure,
                    "mean": mean,
                    "ci_low": mean - 0.1,
                    "ci_high": mean + 0.1,
                    "n_items": 16,
                    "diff_vs_warm": d,
                    "diff_low": d - 0.1,
                    "diff_high": d + 0.15,
                    "p_value": p,
                }
            )
    _write(intervene, "sae_interventions.csv", rows, SCHEMAS["sae_interventions"])


def make_study(root: Path) -> Path:
    """A finished `interp study` folder under ``root/activations/study/embedded`` with every
    exported step (fine-tunes outside it, as the study writes them)."""
    study = root / "activations" / "study" / "embedded"
    outs = {}
    for step, variant, sign in (
        ("01-finetune-warm", "warm", 1.0),
        ("02-finetune-cold", "cold", -1.0),
    ):
        _finetune(root, variant, sign)
        outs[step] = f"activations/finetune/embedded-{variant}"
    for step in STEP_TABLES:
        if step not in outs:
            outs[step] = f"activations/study/embedded/{step}-0123456789"
    folder = {s: root / o for s, o in outs.items()}
    for step in ("03-eval-original", "04-eval-warm", "05-eval-cold", "06-eval-warm-sysprompt"):
        _eval(folder[step])
    _reliability(folder["07-reliability"])
    _directions(folder["08-directions"])
    _probes(folder["09-probes"])
    _trajectory(folder["10-trajectory"])
    _sweep(folder["11-sweep"])
    _patch(folder["13-patch"])
    _sae(folder["14-sae-train"], folder["15-sae-decompose"], folder["16-sae-intervene"])
    state = {
        s: {
            "out": o,
            "command": f"interp {s}",
            "seconds": 1.0,
            "reused": False,
            "finished_at": "2026-12-03T00:00:00+0000",
            "meta_sha256": "x",
        }
        for s, o in outs.items()
    }
    study.mkdir(parents=True, exist_ok=True)
    (study / "state.json").write_text(json.dumps({"steps": state}))
    return study


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    study = make_study(tmp_path / "run")
    dest = tmp_path / "results" / "tables"
    export_study_tables(study, dest)
    return dest


def test_export_copies_the_summary_tables_only_with_provenance(tables: Path):
    prov = json.loads((tables / "provenance.json").read_text())
    assert set(prov["steps"]) == set(STEP_TABLES)
    warm = prov["steps"]["01-finetune-warm"]
    assert warm["out"] == "activations/finetune/embedded-warm" and warm["git_commit"] == "c0ffee"
    assert warm["created"] == "2026-12-03T00:00:00+00:00"
    copied = {p.relative_to(tables).as_posix() for p in tables.rglob("*") if p.is_file()}
    for files in REQUIRED_TABLES.values():
        assert set(files) <= copied
    assert not any(
        p.endswith(("results.csv", ".safetensors", ".json")) for p in copied - {"provenance.json"}
    )
    quality = pd.read_csv(tables / "14-sae-train" / "sae_quality.csv")
    assert "quality.held_out.explained_variance" in set(quality["measure"])
    assert not quality["measure"].str.contains("losses").any(), "lists are left out"


def test_export_names_what_is_missing(tmp_path: Path):
    with pytest.raises(InterpError, match=r"state\.json"):
        export_study_tables(tmp_path, tmp_path / "dest")
    study = make_study(tmp_path / "run")
    (tmp_path / "run/activations/study/embedded/11-sweep-0123456789/steering_sweep.csv").unlink()
    with pytest.raises(InterpError, match=r"11-sweep.*steering_sweep\.csv"):
        export_study_tables(study, tmp_path / "dest")
    state = json.loads((study / "state.json").read_text())
    del state["steps"]["13-patch"]
    (study / "state.json").write_text(json.dumps(state))
    with pytest.raises(InterpError, match="13-patch"):
        export_study_tables(study, tmp_path / "dest")


@pytest.mark.parametrize("key", sorted(STUDY_BLOCKS))
def test_missing_table_is_an_error_naming_the_file(tables: Path, key: str):
    name = REQUIRED_TABLES[key][-1]
    (tables / name).unlink()
    with pytest.raises(InterpError, match=name.split("/")[-1].replace(".", r"\.")):
        STUDY_BLOCKS[key](tables)


def test_formatting_helpers():
    assert pp_ci(0.075, 0.0, 0.15) == "+7.5 [+0.0, +15.0]"
    assert pp_ci(NAN, 0.0, 0.1) == "n/a"
    assert layer_list([14, 12, 15, 16, 26]) == "12, 14-16, 26"


def test_original_eval_block(tables: Path):
    text = STUDY_BLOCKS["original-eval"](tables)
    lines = text.splitlines()
    assert lines[4] == "| no belief | chose the wrong answer | 20 | 40 | 30.0% [20.0, 40.0] |"
    assert lines[5] == (
        "| wrong belief | chose the user's wrong answer | 20 | 40 | 38.8% [28.8, 48.8] |"
    )
    assert "| wrong belief - no belief | 20 | +11.3 [+7.1, +15.2] | -0.51 [-0.63, -0.40] |" in text


def test_finetune_block(tables: Path):
    text = STUDY_BLOCKS["finetune"](tables)
    assert "over the same 48 held-out requests" in text
    assert "embedding classifier, P(warm) 0.342 [0.261, 0.436]" in text
    assert "| warm | embedding classifier, P(warm) | +0.167 [+0.090, +0.260] | +0.424 [" in text
    assert "| cold | lexical markers per 100 words |  | -9.9 [-7.8, -11.8] |" in text
    assert "warm: 144 training examples, 36 optimizer steps to epoch 2, training 120 s " in text


def test_reliability_block(tables: Path):
    text = STUDY_BLOCKS["reliability"](tables)
    header = (
        "| cell | measure | items | original | warm - original (pp) | cold - original (pp) "
        "| warm system prompt - original (pp) |"
    )
    assert header in text
    assert (
        "| no belief | chose the wrong answer | 80 | 30.0% [20.0, 40.0] | +7.5 [+0.0, +15.0] "
        "| -1.2 [-8.8, +6.2] | +2.5 [-5.0, +10.0] |"
    ) in text
    assert "| wrong belief | chose the user's wrong answer | 80 |" in text
    assert (
        "| warm - original | model 1 (unmodified, no belief) | all | forced-choice error "
        "| +7.4 [+0.2, +14.6] | 0.12 |" in text
    )
    assert "skipped: the outcome takes one value" in text
    ame = text.split("row of")[1].split("\n\n", 1)[1]
    assert len(ame.splitlines()) == 4, "models 1 and 4 are shown; model 2 stays in the CSV"


def test_directions_block(tables: Path):
    text = STUDY_BLOCKS["directions"](tables)
    assert "| finetune | 0.97 to 0.99 | 3 of 3 | 0.300 (2) |" in text
    assert "| sycophancy | 0.40 to 0.86 | 1 of 3 (1) | 0.300 (2) |" in text
    assert "below 0.084" in text
    assert "| finetune | sycophancy | -0.26 to +0.01 | 2 of 3 (1-2) | -0.26 (2) |" in text
    assert "| sycophancy | resid_post | 1 | 0.851 [0.751, 0.931] | 0.48 | 2 of 3 (1-2) |" in text
    assert "| sycophancy | sycophancy | +0.30 to +0.55 |" in text
    assert "at 3 of 3 layers" in text
    assert "embedding mean 0.95 (0.90 to 1.00 over layers; 3 epochs)" in text
    assert "sociot not computable (2 epochs)" in text


def test_steering_block(tables: Path):
    text = STUDY_BLOCKS["steering"](tables)
    assert "| unsteered |  |  | 0.62 [0.57, 0.67] | 55.0% [50.0, 60.0] |" in text
    assert (
        "| finetune | 15 | +1 | 0.62 [0.57, 0.67] | 33.0% [28.0, 38.0] * | 30.0% [25.0, 35.0] |"
        in (text)
    )
    assert (
        "finetune at layer 15, alpha +1: P(user's wrong answer), belief prompts 33.0% "
        "(band 38.0 to 72.0)" in text
    )


def test_patching_block(tables: Path):
    text = STUDY_BLOCKS["patching"](tables)
    assert "n = 16 items" in text
    assert "| 0 | -0.30 [-8.30, +8.70] | -0.30 [-8.30, +8.70] |" in text
    assert "CIs span -8.3 to +10.3" in text


def test_sae_block(tables: Path):
    text = STUDY_BLOCKS["sae"](tables)
    assert text.startswith("SAE at L21.resid_post (")
    assert "topk, k 32, 1152 latents, 21000 training tokens" in text
    assert "explained variance 0.53" in text and "726 dead latents (63%)" in text
    assert "(68% of the loss recovered against mean ablation, 8.000), 3.0479 with" in text
    assert "| persona | 1 | 101 | +0.300 | +0.0100 | Ooh, two ‹b›fantastic‹/b› choices |" in text
    assert "| persona | 4 |" not in text
    assert "| persona | sycophancy | 10 | 0 | random-latents | 0.08 [0, 1] | 1 |" in text
    assert "| warm / none | 0.95 [0.85, 1.05] | 40.0% [30.0, 50.0] | 50.0% [40.0, 60.0] |" in text
    assert (
        "| warm / sae-ablate:top10-persona | -0.24 [-0.34, -0.09], p 0.016 | "
        "+5.0 [-5.0, +20.0], p 0.016 |" in text
    )
    assert (
        "Error CIs that exclude zero: warm / ablate:random-latents, neutral +25.0 [+15.0, "
        "+40.0] pp; warm / ablate:random-latents, wrong belief +25.0 [+15.0, +40.0] pp." in text
    )
    quality = tables / "14-sae-train" / "sae_quality.csv"
    q = pd.read_csv(quality)
    q[q["measure"] != "spec.k"].to_csv(quality, index=False)
    with pytest.raises(InterpError, match=r"sae_quality\.csv: no row with measure 'spec\.k'"):
        STUDY_BLOCKS["sae"](tables)


def test_every_block_round_trips_through_results_md(tables: Path, tmp_path: Path):
    md = "# Results\n\n" + "\n\n".join(
        f"<!-- {k}: old -->\n{PENDING.format(key=k)}\n<!-- /{k} -->" for k in STUDY_BLOCKS
    )
    path = tmp_path / "RESULTS.md"
    path.write_text(md)
    assert (
        results_md.main(
            ["--block", "study", "--dest", str(tables.parent), "--results-md", str(path)]
        )
        == 0
    )
    text = path.read_text()
    assert "pending" not in text
    for key in STUDY_BLOCKS:
        assert results_md.block(tables, tables.as_posix(), key) in text
    assert (
        results_md.replace_block(text, results_md.block(tables, "x", "sae"), "sae").count(
            "<!-- sae:"
        )
        == 1
    )


def test_cli_exports_then_writes_one_block(tmp_path: Path):
    study = make_study(tmp_path / "run")
    path = tmp_path / "RESULTS.md"
    path.write_text(f"<!-- patching: x -->\n{PENDING.format(key='patching')}\n<!-- /patching -->\n")
    dest = tmp_path / "results" / "embedded"
    argv = ["--block", "patching", "--run", str(study), "--dest", str(dest)]
    assert results_md.main([*argv, "--results-md", str(path)]) == 0
    assert (dest / "tables" / "13-patch" / "patching.csv").is_file()
    assert path.read_text().startswith(
        f"<!-- patching: written by `python -m interp.report.results_md` from the tables in "
        f"{(dest / 'tables').as_posix()} -->\nFraction of the gap recovered"
    )
    assert np.isfinite(pd.read_csv(dest / "tables" / "13-patch" / "patching.csv").recovered).all()
