"""The study's presets: which steps run, on which model, at what size.

``embedded``: SmolLM2-135M-Instruct on the CPU, the whole study in at most 30 minutes on 2 cores
(the README's main command). ``tiny``: the same steps on a 4-layer random model with the
embedded tokenizer, for the CI smoke test (numbers meaningless, every artifact real).
``embedded-full-verdict``: the embedded study with the verdict protocol (step 17) on the whole
evaluation split (the other steps are the embedded preset's, reused when it has run).
``paper``: the paper's models and hyperparameters; only its plan is printed here
(:mod:`interp.study.paper_plan`), since it needs GPUs and the weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from interp import paths
from interp.commands.registry import config_class
from interp.finetune.presets import WARM_SYSTEM_PROMPT
from interp.models import EMBEDDED, adapter_folder
from interp.study.steps import Resolver, Step
from interp.tiny_models import tiny_model_folder

PresetName = Literal["embedded", "embedded-full-verdict", "tiny", "paper"]


@dataclass(frozen=True)
class StudySize:
    """The knobs that differ between presets."""

    model: str
    finetune_warm: str
    finetune_cold: str
    per_task: int
    eval_conditions: tuple[str, ...] = ("unmodified", "emotion:sad")
    eval_templates: tuple[str, ...] = ("no_belief", "preface", "incorrect", "doubt")
    n_boot: int = 1000
    direction_per_task: int = 12
    mid_layer: int = 15
    causal_per_task: int = 4
    n_random: int = 10
    n_requests: int = 8
    sae_preset: str = "embedded"
    patch_layers: tuple[int, ...] = ()
    sweep_directions: tuple[str, ...] = ("finetune", "persona", "sycophancy")
    # the verdict protocol (step 17): items per task on each side of the split, its null
    protocol_derivation_per_task: int = 12
    protocol_evaluation_per_task: int = 38
    protocol_random: int = 20
    protocol_targets: tuple[str, ...] = ("finetune", "persona")


def size_of(preset: PresetName) -> StudySize:
    """The size of a preset (the tiny model folder is made on first use)."""
    if preset == "embedded-full-verdict":
        return dataclasses.replace(size_of("embedded"), protocol_evaluation_per_task=0)
    if preset == "embedded":
        # sized to the 30-minute budget on 2 cores (measured 35.6 min with 40 items per task in
        # the evaluations, 16 verdict items and all 30 patched layers)
        return StudySize(
            EMBEDDED,
            "embedded-warm",
            "embedded-cold",
            per_task=20,
            patch_layers=(*range(0, 30, 3), 29),
            # the verdict protocol: 152 evaluation items, one target; its 20-direction null runs
            # on every item only in cells with a gap to explain (protocol.null_items)
            protocol_evaluation_per_task=38,
            protocol_targets=("finetune",),
        )
    if preset == "tiny":
        return StudySize(
            tiny_model_folder(),
            "tiny-warm",
            "tiny-cold",
            per_task=6,
            n_boot=200,
            direction_per_task=4,
            mid_layer=2,
            causal_per_task=2,
            n_random=10,
            n_requests=2,
            sae_preset="tiny",
            protocol_derivation_per_task=3,
            protocol_evaluation_per_task=3,
        )
    raise ValueError(f"preset {preset!r} has no runnable steps here; use --dry-run")


def _finetune_step(step_id: str, variant: str, size: StudySize, run_name: str) -> Step:
    def build(resolve: Resolver):  # type: ignore[no-untyped-def]
        FinetuneConfig = config_class(("finetune",))
        if size.model == EMBEDDED:
            return FinetuneConfig(preset=f"embedded-{variant}")
        # the tiny smoke preset: the embedded recipe on the tiny model, a fraction of an epoch
        return FinetuneConfig(
            preset=f"embedded-{variant}",
            run_name=run_name,
            model=size.model,
            epochs=0.5,
            checkpoint_epochs=(0.25, 0.5),
            n_requests=4,
            max_new_tokens=8,
            sociot="none",
        )

    def folder(config) -> Path:  # type: ignore[no-untyped-def]
        return paths.artifact_dir("finetune", config.run_name or config.preset)

    return Step(
        step_id,
        f"Fine-tune the {variant} model (LoRA) and measure warmth per checkpoint",
        ("finetune",),
        build,
        ("warmth_by_epoch.csv", "warmth_vs_original.csv"),
        figures=("warmth_by_epoch", "paper_warmth"),
        folder=folder,
    )


def _eval_step(
    step_id: str, title: str, size: StudySize, adapter_of: str | None, system: bool
) -> Step:
    def build(resolve: Resolver):  # type: ignore[no-untyped-def]
        EvalConfig = config_class(("eval",))
        adapter = None
        if adapter_of is not None:
            adapter = (
                str(adapter_folder(resolve(adapter_of).name))
                if resolve(adapter_of).exists()
                else f"{resolve(adapter_of).name}"
            )
        warm_system = WARM_SYSTEM_PROMPT if system else None
        return EvalConfig(
            model=size.model,
            adapter=adapter,
            system=warm_system,
            per_task=size.per_task,
            conditions=size.eval_conditions,
            templates=size.eval_templates,
            n_boot=size.n_boot,
        )

    return Step(
        step_id,
        title,
        ("eval",),
        build,
        ("results.csv", "summary.csv"),
        needs=(adapter_of,) if adapter_of else (),
    )


EVAL_VARIANTS = {
    "original": "03-eval-original",
    "warm": "04-eval-warm",
    "cold": "05-eval-cold",
    "warm-sysprompt": "06-eval-warm-sysprompt",
}


def study_steps(preset: PresetName, paper_data: str | None = None) -> list[Step]:
    """Every step of a runnable preset, in order."""
    size = size_of(preset)
    steps = [
        _finetune_step("01-finetune-warm", "warm", size, size.finetune_warm),
        _finetune_step("02-finetune-cold", "cold", size, size.finetune_cold),
        _eval_step("03-eval-original", "Evaluate the original model", size, None, False),
        _eval_step("04-eval-warm", "Evaluate the warm fine-tune", size, "01-finetune-warm", False),
        _eval_step("05-eval-cold", "Evaluate the cold fine-tune", size, "02-finetune-cold", False),
        _eval_step(
            "06-eval-warm-sysprompt",
            "Evaluate the original model under a warm system prompt",
            size,
            None,
            True,
        ),
    ]

    def reliability(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("reliability",))(
            runs=tuple(f"{v}={resolve(s)}" for v, s in EVAL_VARIANTS.items()), n_boot=size.n_boot
        )

    steps.append(
        Step(
            "07-reliability",
            "Error and sycophancy by variant, task and condition",
            ("reliability",),
            reliability,
            (
                "error_by_task.csv",
                "variant_contrasts.csv",
                "regressions.csv",
                "marginal_effects.csv",
            ),
            figures=(
                "error_by_task",
                "marginal_effects",
                "agreement_by_task",
                "sycophancy_scatter",
                "paper_reliability_*",
            ),
            needs=tuple(EVAL_VARIANTS.values()),
        )
    )
    steps.extend(_mechanism_steps(size))
    steps.append(_report_step(steps, paper_data))
    return steps


def _warm_adapter(resolve: Resolver, step: str = "01-finetune-warm") -> str:
    """A fine-tune run's final checkpoint folder (the run name before it has run, in plans)."""
    run = resolve(step)
    return str(adapter_folder(run.name)) if run.exists() else run.name


def _mechanism_steps(size: StudySize) -> list[Step]:
    """Directions, probes, trajectory, steering, the verdict, patching and the SAE view."""

    def directions(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("directions",))(
            model=size.model, adapter=_warm_adapter(resolve), per_task=size.direction_per_task
        )

    def probes(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("probes",))(
            model=size.model,
            adapter=_warm_adapter(resolve),
            per_task=size.direction_per_task,
            directions=str(resolve("08-directions")),
        )

    def trajectory(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("trajectory",))(
            run=str(resolve("01-finetune-warm")), model=size.model, per_task=size.direction_per_task
        )

    def causal(kind: str):  # type: ignore[no-untyped-def]
        def build(resolve: Resolver):  # type: ignore[no-untyped-def]
            folder = resolve("08-directions")
            common = dict(
                model=size.model,
                warm=_warm_adapter(resolve),
                directions=(str(folder),),
                per_task=size.causal_per_task,
                n_random=size.n_random,
                n_requests=size.n_requests,
                n_boot=size.n_boot,
            )
            if kind == "sweep":
                common["directions"] = tuple(str(folder / name) for name in size.sweep_directions)
                return config_class(("sweep",))(**common, layers=(size.mid_layer,))
            return config_class(("patch",))(**common, layers=size.patch_layers)

        return build

    def sae_train(resolve: Resolver):  # type: ignore[no-untyped-def]
        SaeTrainConfig = config_class(("sae", "train"))
        folders = (str(resolve("08-directions")),)
        if (
            size.sae_preset == "tiny"
        ):  # a few thousand tokens: the smoke test checks the plumbing, not the SAE
            return SaeTrainConfig(
                model=size.model,
                directions=folders,
                d_sae=128,
                k=8,
                n_samples=4096,
                max_total_tokens=2000,
            )
        # d_sae 1152 (2x d_model): at 2304 latents 72% died on the ~21k training tokens
        return SaeTrainConfig(model=size.model, directions=folders, d_sae=1152)

    def sae_decompose(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("sae", "decompose"))(
            sae=str(resolve("14-sae-train")),
            directions=(str(resolve("08-directions")),),
            model=size.model,
            adapter=_warm_adapter(resolve),
        )

    def sae_intervene(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("sae", "intervene"))(
            decomposition=str(resolve("15-sae-decompose")),
            model=size.model,
            adapter=_warm_adapter(resolve),
            per_task=size.causal_per_task,
            n_warmth=size.n_requests,
            n_boot=size.n_boot,
        )

    def verdict(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("verdict",))(
            model=size.model,
            warm=_warm_adapter(resolve),
            cold=_warm_adapter(resolve, "02-finetune-cold"),
            directions=(str(resolve("08-directions")),),
            targets=size.protocol_targets,
            per_task_derivation=size.protocol_derivation_per_task,
            per_task_evaluation=size.protocol_evaluation_per_task,
            n_random=size.protocol_random,
            n_requests=size.n_requests,
            n_boot=size.n_boot,
        )

    warm = ("01-finetune-warm",)
    return [
        Step(
            "08-directions",
            "Warmth, sad-context and sycophancy directions per layer",
            ("directions",),
            directions,
            ("direction_cosines.csv", "direction_stability.csv"),
            figures=("direction_cosines", "direction_stability"),
            needs=warm,
        ),
        Step(
            "09-probes",
            "Probes for upcoming sycophancy and for warm vs original activations",
            ("probes",),
            probes,
            ("probe_auroc.csv",),
            figures=("probe_auroc",),
            needs=(*warm, "08-directions"),
        ),
        Step(
            "10-trajectory",
            "The fine-tune direction over checkpoint epochs",
            ("trajectory",),
            trajectory,
            ("trajectory.csv",),
            needs=warm,
        ),
        Step(
            "11-sweep",
            "Steering dose-response with a random-direction band",
            ("sweep",),
            causal("sweep"),
            ("steering_sweep.csv",),
            figures=("steering_dose_response",),
            needs=(*warm, "08-directions"),
        ),
        Step(
            "13-patch",
            "Activation patching between the original and warm models",
            ("patch",),
            causal("patch"),
            ("patching.csv",),
            figures=("patching",),
            needs=(*warm, "08-directions"),
        ),
        Step(
            "14-sae-train",
            "A TopK sparse autoencoder where the warmth directions are strongest",
            ("sae", "train"),
            sae_train,
            (),
            needs=("08-directions",),
        ),
        Step(
            "15-sae-decompose",
            "Warmth and sycophancy directions as SAE latents",
            ("sae", "decompose"),
            sae_decompose,
            ("sae_decomposition.csv", "latent_overlap.csv"),
            figures=("sae_decomposition",),
            needs=(*warm, "08-directions", "14-sae-train"),
        ),
        Step(
            "16-sae-intervene",
            "Ablating and clamping the top warmth latents",
            ("sae", "intervene"),
            sae_intervene,
            ("sae_interventions.csv",),
            figures=("sae_interventions",),
            needs=(*warm, "15-sae-decompose"),
        ),
        Step(
            "17-verdict",
            "The verdict protocol: gap first, shift removal against a matched null",
            ("verdict",),
            verdict,
            (
                "verdict_gap.csv",
                "verdict_arms.csv",
                "verdict_null.csv",
                "verdict_damage.csv",
                "verdict.md",
            ),
            figures=("verdict_gap", "verdict_null", "verdict_damage"),
            needs=(*warm, "02-finetune-cold", "08-directions"),
        ),
    ]


def _report_step(earlier: list[Step], paper_data: str | None) -> Step:
    table_steps = [s.id for s in earlier if not s.id.split("-", 1)[1].startswith("eval")]

    def build(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("report",))(
            results=tuple(str(resolve(s)) for s in table_steps), paper_data=paper_data
        )

    return Step(
        "99-report",
        "Every figure and table, and the report",
        ("report",),
        build,
        ("report.html", "report.md"),
        needs=tuple(table_steps),
    )
