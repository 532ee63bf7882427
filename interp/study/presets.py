"""The study's presets: which steps run, on which model, at what size.

``embedded``: SmolLM2-135M-Instruct on the CPU, the whole study on 2 cores (the README's main
command; how long each step takes is recorded in the study's ``state.json`` and in RESULTS.md).
``tiny``: the same steps on a 4-layer random model with the embedded tokenizer, for the CI smoke
test (numbers meaningless, every artifact real).
``embedded-full-verdict``: the embedded study with the verdict protocol (step 17) on the whole
evaluation split, run in the embedded preset's folder so that the other steps are the embedded
preset's, reused when it has run (its own run is recorded in ``state-embedded-full-verdict.json``).
``paper``: the paper's recipe on a model given with ``--model`` (a registry name, Hugging Face
id in the local cache, or local folder): the ``paper-warm`` / ``paper-cold`` fine-tunes (10 epochs,
"warm" is the epoch-2 checkpoint), every embedded item of the 28-prompt grid, the mechanism steps at
paper size, every step loading the model with the study's dtype, device, device map and 4-bit
setting (:class:`interp.models.LoadOptions`). Fine-tune run names carry the model, so two models
never share a run. ``--dry-run`` prints the steps and the GPU-hour estimate
(:mod:`interp.study.paper_plan`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from interp import paths
from interp.commands.registry import config_class
from interp.config import ConfigError
from interp.finetune.presets import WARM_SYSTEM_PROMPT
from interp.models import EMBEDDED, LoadOptions, adapter_folder
from interp.study.steps import Resolver, Step
from interp.tiny_models import REAL_SHAPES, tiny_model_folder

PresetName = Literal["embedded", "embedded-full-verdict", "tiny", "paper"]


@dataclass(frozen=True)
class StudySize:
    """The knobs that differ between presets."""

    model: str
    finetune_warm: str  # run names under <artifacts>/finetune
    finetune_cold: str
    per_task: int | None  # evaluation items per task (None: every embedded item)
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
    # the steering sweep's alphas, the alphas its random-direction null is measured at (empty:
    # every alpha; the figure draws the band only where it was measured) and how many random
    # directions get a warmth null (each costs one generation per null alpha)
    sweep_alphas: tuple[float, ...] = (-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0)
    sweep_null_alphas: tuple[float, ...] = ()
    sweep_warmth_random: int = 3
    # the verdict protocol (step 17): items per task on each side of the split, its null
    protocol_derivation_per_task: int = 12
    protocol_evaluation_per_task: int = 38
    protocol_random: int = 20
    protocol_targets: tuple[str, ...] = ("finetune", "persona")
    # where every step loads its model; None: each command's defaults (CPU, float32)
    load: LoadOptions | None = None
    # the fine-tune recipe: "embedded" (the embedded presets, or their tiny smoke version off
    # the embedded model) or "paper" (paper-warm / paper-cold on ``model``)
    recipe: Literal["embedded", "paper"] = "embedded"
    # the checkpoint that is "the warm model" (None: the run's final one)
    warm_epoch: float | None = None
    sae_d_sae: int | None = None  # None: the SAE preset's

    def load_kwargs(self) -> dict[str, Any]:
        """Config fields for the model-loading commands (empty: their defaults)."""
        return {} if self.load is None else self.load.load_kwargs()


def model_shape(model: str) -> tuple[int, int]:
    """(layers, d_model) of a model from its config alone (no weights): the real shapes of the
    paper's registry names, else the folder's or the local Hugging Face cache's config.json."""
    if model in REAL_SHAPES:
        _, layers, d_model, *_ = REAL_SHAPES[model]
        return layers, d_model
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"model: no config.json for {model!r} in a local folder or the Hugging Face cache "
            f"({exc}); the paper preset reads the model's shape before anything runs"
        ) from None
    cfg = getattr(cfg, "text_config", cfg)
    return int(cfg.num_hidden_layers), int(cfg.hidden_size)


def run_slug(model: str) -> str:
    """A run-name-safe form of a model id or folder (``meta-llama/Llama-3.1-8B`` ->
    ``meta-llama--llama-3.1-8b``; a folder is named by its last part)."""
    path = Path(model).expanduser()
    name = path.name if path.is_dir() or model.startswith((".", "/", "~")) else model
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower().replace("/", "--")).strip("-.")
    return slug or "model"


def paper_size(model: str, load: LoadOptions) -> StudySize:
    """The paper preset on ``model``: paper-sized item counts, layers from the model's shape."""
    n_layers, d_model = model_shape(model)
    slug = run_slug(model)
    return StudySize(
        model,
        f"paper-warm-{slug}",
        f"paper-cold-{slug}",
        per_task=None,  # every embedded item (about 158 per task) x the 28-prompt grid
        eval_conditions=(),
        eval_templates=(),
        n_boot=2000,
        direction_per_task=48,
        mid_layer=n_layers // 2,
        causal_per_task=20,
        n_random=20,
        n_requests=48,  # every held-out warmth request
        sae_preset="large",
        sae_d_sae=8 * d_model,
        patch_layers=(*range(0, n_layers, 4), n_layers - 1),
        protocol_derivation_per_task=48,
        protocol_evaluation_per_task=0,  # the whole evaluation split
        protocol_random=20,
        protocol_targets=("finetune", "persona"),
        load=load,
        recipe="paper",
        warm_epoch=2.0,  # the paper's "warm" model
    )


def size_of(
    preset: PresetName, model: str | None = None, load: LoadOptions | None = None
) -> StudySize:
    """The size of a preset (the tiny model folder is made on first use).

    ``model``: the paper preset's model (required there; the other presets fix theirs);
    ``load``: where every step loads its model (the paper preset's default: bfloat16 on cuda).
    """
    if preset == "paper":
        if model is None:
            raise ConfigError("the paper preset needs --model (a registry name, HF id or folder)")
        return paper_size(
            model, load or LoadOptions(device="cuda", dtype="bfloat16", merge_adapters=False)
        )
    if model is not None:
        raise ConfigError(f"--model is for the paper preset; preset {preset} fixes its model")
    if preset == "embedded-full-verdict":
        return dataclasses.replace(size_of("embedded", load=load), protocol_evaluation_per_task=0)
    if preset == "embedded":
        # sized for 2 cores: 14 items per task in the evaluations, 7 patched layers, the
        # sweep's null at 2 alphas, a 152-item verdict (its time per step is in RESULTS.md)
        return StudySize(
            EMBEDDED,
            "embedded-warm",
            "embedded-cold",
            per_task=14,
            patch_layers=(0, 5, 10, 15, 20, 25, 29),
            # the sweep was 27 of 112 minutes with 8 alphas and the null at each, then 11 of 57
            # with 6 alphas and the null at 4: 4 alphas, the null (and the warmth null, 2
            # random directions) at the 2 largest
            sweep_alphas=(-1.0, -0.5, 0.5, 1.0),
            sweep_null_alphas=(-1.0, 1.0),
            sweep_warmth_random=2,
            # the verdict protocol: 152 evaluation items, one target; its 20-direction null runs
            # on every item only in cells with a gap to explain (protocol.null_items)
            protocol_evaluation_per_task=38,
            protocol_targets=("finetune",),
            load=load,
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
            load=load,
        )
    raise ConfigError(f"unknown study preset {preset!r}")


def _finetune_step(step_id: str, variant: str, size: StudySize, run_name: str) -> Step:
    def build(resolve: Resolver):  # type: ignore[no-untyped-def]
        FinetuneConfig = config_class(("finetune",))
        load = size.load_kwargs()
        if size.recipe == "paper":
            return FinetuneConfig(
                preset=f"paper-{variant}", run_name=run_name, model=size.model, **load
            )
        if size.model == EMBEDDED:
            return FinetuneConfig(preset=f"embedded-{variant}", **load)
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
            **load,
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
        adapter = None if adapter_of is None else _warm_adapter(resolve, size, adapter_of)
        warm_system = WARM_SYSTEM_PROMPT if system else None
        return EvalConfig(
            model=size.model,
            adapter=adapter,
            system=warm_system,
            per_task=size.per_task,
            conditions=size.eval_conditions,
            templates=size.eval_templates,
            n_boot=size.n_boot,
            **size.load_kwargs(),
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


def study_steps(
    preset: PresetName,
    paper_data: str | None = None,
    *,
    model: str | None = None,
    load: LoadOptions | None = None,
) -> list[Step]:
    """Every step of a preset, in order (``model`` and ``load``: see :func:`size_of`)."""
    size = size_of(preset, model, load)
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
    return [dataclasses.replace(s, cost=STEP_COST.get(s.id[:2], 1.0)) for s in steps]


STEP_COST = {
    "01": 5.6, "02": 4.3, "03": 1.0, "04": 1.3, "05": 1.4, "06": 1.2, "07": 0.1, "08": 3.9,
    "09": 1.1, "10": 1.9, "11": 6.0, "12": 5.8, "13": 2.3, "14": 2.0, "15": 0.2, "16": 3.3,
    "17": 10.8, "99": 0.3,
}  # fmt: skip
"""Minutes each step took alone on 2 CPU cores in the embedded study (its ``state.json``; the
sweep's after it was resized; the verdict's 16.6 split between 12 and 17 by the share of its
phases that moved to 12). Only the order in which a study that runs several steps at once
starts its ready steps depends on these (:func:`interp.study.parallel.priorities`): the
verdict, the longest, starts as soon as what it needs has finished."""


def _warm_adapter(resolve: Resolver, size: StudySize, step: str = "01-finetune-warm") -> str:
    """A fine-tune run's checkpoint folder: the preset's warm epoch, else the final one (the run
    reference, ``name`` or ``name@epoch``, before it has run, in plans)."""
    run = resolve(step)
    ref = run.name if size.warm_epoch is None else f"{run.name}@{size.warm_epoch!r}"
    return str(adapter_folder(ref)) if run.exists() else ref


def _mechanism_steps(size: StudySize) -> list[Step]:
    """Directions, probes, trajectory, steering, the verdict, patching and the SAE view."""

    def directions(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("directions",))(
            model=size.model,
            adapter=_warm_adapter(resolve, size),
            per_task=size.direction_per_task,
            **size.load_kwargs(),
        )

    def probes(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("probes",))(
            model=size.model,
            adapter=_warm_adapter(resolve, size),
            per_task=size.direction_per_task,
            directions=str(resolve("08-directions")),
            **size.load_kwargs(),
        )

    def trajectory(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("trajectory",))(
            run=str(resolve("01-finetune-warm")),
            model=size.model,
            per_task=size.direction_per_task,
            **size.load_kwargs(),
        )

    def causal(kind: str):  # type: ignore[no-untyped-def]
        def build(resolve: Resolver):  # type: ignore[no-untyped-def]
            folder = resolve("08-directions")
            common = dict(
                model=size.model,
                warm=_warm_adapter(resolve, size),
                directions=(str(folder),),
                per_task=size.causal_per_task,
                n_random=size.n_random,
                n_requests=size.n_requests,
                n_boot=size.n_boot,
                **size.load_kwargs(),
            )
            if kind == "sweep":
                common["directions"] = tuple(str(folder / name) for name in size.sweep_directions)
                return config_class(("sweep",))(
                    **common,
                    layers=(size.mid_layer,),
                    alphas=size.sweep_alphas,
                    null_alphas=size.sweep_null_alphas,
                    warmth_random=size.sweep_warmth_random,
                )
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
                **size.load_kwargs(),
            )
        if size.sae_preset == "large":
            return SaeTrainConfig(
                preset="large",
                model=size.model,
                directions=folders,
                d_sae=size.sae_d_sae,
                **size.load_kwargs(),
            )
        # d_sae 1152 (2x d_model): at 2304 latents 72% died on the ~21k training tokens
        return SaeTrainConfig(
            model=size.model, directions=folders, d_sae=1152, **size.load_kwargs()
        )

    def sae_decompose(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("sae", "decompose"))(
            sae=str(resolve("14-sae-train")),
            directions=(str(resolve("08-directions")),),
            model=size.model,
            adapter=_warm_adapter(resolve, size),
            **size.load_kwargs(),
        )

    def sae_intervene(resolve: Resolver):  # type: ignore[no-untyped-def]
        return config_class(("sae", "intervene"))(
            decomposition=str(resolve("15-sae-decompose")),
            model=size.model,
            adapter=_warm_adapter(resolve, size),
            per_task=size.causal_per_task,
            n_warmth=size.n_requests,
            n_boot=size.n_boot,
            **size.load_kwargs(),
        )

    def verdict_unedited(resolve: Resolver):  # type: ignore[no-untyped-def]
        return verdict(resolve, with_directions=False).unedited_config()

    def verdict(resolve: Resolver, with_directions: bool = True):  # type: ignore[no-untyped-def]
        return config_class(("verdict",))(
            model=size.model,
            warm=_warm_adapter(resolve, size),
            cold=_warm_adapter(resolve, size, "02-finetune-cold"),
            directions=(str(resolve("08-directions")),) if with_directions else (),
            targets=size.protocol_targets,
            per_task_derivation=size.protocol_derivation_per_task,
            per_task_evaluation=size.protocol_evaluation_per_task,
            n_random=size.protocol_random,
            n_requests=size.n_requests,
            n_boot=size.n_boot,
            unedited=str(resolve("12-verdict-unedited")) if with_directions else None,
            **size.load_kwargs(),
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
            # it reads the base model's activation cache the directions write: beside them (two
            # steps at once), the second to ask waits for the first (interp.cache.building)
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
            "12-verdict-unedited",
            "The verdict's unedited models: derivation split, cold model, generation measure",
            ("verdict-unedited",),
            verdict_unedited,
            ("unedited_derivation.csv", "unedited_cold_evaluation.csv", "unedited_generation.csv"),
            # needs no direction: it runs while the directions are derived
            needs=(*warm, "02-finetune-cold"),
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
            needs=(*warm, "02-finetune-cold", "08-directions", "12-verdict-unedited"),
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
