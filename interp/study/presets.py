"""The study's presets: which steps run, on which model, at what size.

``embedded``: SmolLM2-135M-Instruct on the CPU, the whole study in at most 30 minutes on 2 cores
(the README's main command). ``tiny``: the same steps on a 4-layer random model with the
embedded tokenizer, for the CI smoke test (numbers meaningless, every artifact real).
``paper``: the paper's models and hyperparameters; only its plan is printed here
(:mod:`interp.study.paper_plan`), since it needs GPUs and the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interp.models import EMBEDDED
from interp.study.steps import Resolver, Step

PresetName = Literal["embedded", "tiny", "paper"]


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


def size_of(preset: PresetName) -> StudySize:
    """The size of a preset (the tiny model folder is made on first use)."""
    if preset == "embedded":
        return StudySize(EMBEDDED, "embedded-warm", "embedded-cold", per_task=40)
    if preset == "tiny":
        from interp.tiny_models import tiny_model_folder

        return StudySize(tiny_model_folder(), "tiny-warm", "tiny-cold", per_task=6, n_boot=200)
    raise ValueError(f"preset {preset!r} has no runnable steps here; use --dry-run")


def _eval_step(step_id: str, title: str, size: StudySize, adapter_of: str | None, system: bool) -> Step:
    def build(resolve: Resolver):  # type: ignore[no-untyped-def]
        from interp.commands.evaluate import EvalConfig

        adapter = None
        if adapter_of is not None:
            from interp.finetune.checkpoints import final_checkpoint

            adapter = str(final_checkpoint(resolve(adapter_of)))
        warm_system = None
        if system:
            from interp.finetune.presets import WARM_SYSTEM_PROMPT

            warm_system = WARM_SYSTEM_PROMPT
        return EvalConfig(model=size.model, adapter=adapter, system=warm_system, per_task=size.per_task,
                          conditions=size.eval_conditions, templates=size.eval_templates, n_boot=size.n_boot)

    return Step(step_id, title, ("eval",), build, "interp.commands.evaluate:run_eval",
                ("results.csv", "summary.csv"), needs=(adapter_of,) if adapter_of else ())


def study_steps(preset: PresetName) -> list[Step]:
    """Every step of a runnable preset, in order."""
    size = size_of(preset)
    steps = [
        _eval_step("03-eval-original", "Evaluate the original model", size, None, False),
        _eval_step("04-eval-warm-sysprompt", "Evaluate the original model under a warm system prompt", size, None, True),
    ]

    def reliability(resolve: Resolver):  # type: ignore[no-untyped-def]
        from interp.commands.reliability import ReliabilityConfig

        variants = {"original": "03-eval-original", "warm-sysprompt": "04-eval-warm-sysprompt"}
        return ReliabilityConfig(runs=tuple(f"{v}={resolve(s)}" for v, s in variants.items()), n_boot=size.n_boot)

    steps.append(Step("07-reliability", "Error and sycophancy by variant, task and condition", ("reliability",),
                      reliability, "interp.commands.reliability:run_reliability",
                      ("error_by_task.csv", "variant_contrasts.csv"), figures=("fig-error-by-task", "fig-sycophancy-scatter"),
                      needs=("03-eval-original", "04-eval-warm-sysprompt")))
    return steps
