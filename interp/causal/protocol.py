"""The verdict protocol: is there a gap, and does removing a direction close it beyond a null?

Run on two disjoint item splits (:mod:`interp.data.split`):

1. **Gap first.** Forced-choice error of the original, warm and cold models in every cell (no
   belief, sad, wrong belief, sad + wrong belief), per task and pooled, paired by item, on both
   splits. The *headline cells* are fixed on the derivation split by a rule stated before the
   evaluation split is read (:func:`headline_cells`); the evaluation split then says whether a
   gap exists there (:func:`gaps`).
2. **Removal.** On the evaluation split, the fine-tune's shift along each direction is removed
   from the warm model at one layer (:func:`interp.causal.removal.shift_edits`: every token moves
   so that the warm model's mean projection there equals the original's, both measured on the
   derivation prompts; the layer chosen on the derivation split by
   :func:`interp.causal.removal.removal_layer` unless ``ProtocolSettings.removal_layer`` fixes
   it), and by zero-ablation at the same layer as a secondary arm; the same shift added to the
   original model is a control.
3. **A comparable null.** ``n_random`` directions matched to each target in the variance of the
   activations along them (:func:`interp.causal.removal.matched_random_directions`), each with
   the same operator as the target in its own arm (the fine-tune's own mean shift along it
   removed at the same layer), on the headline cells (all cells when there is none): on every
   item where the evaluation split shows a gap, on a fixed subset of items elsewhere
   (:func:`null_items`). The question it answers: does this direction carry the fine-tune's
   effect more than directions along which the activations vary as much?
4. **Damage.** Every arm's KL to its unedited model over the unedited continuation, and its
   held-out loss increase on neutral text (:mod:`interp.causal.damage`); an arm whose held-out
   loss increase exceeds every null arm's is marked damaged (the KL is reported, not used for
   the mark: an edit that restores the answer has to move the answer's distribution).

Engines: arms that edit one residual site are scored from one clean prefix per model
(:mod:`interp.causal.suffix_arms`), and the unedited original and warm models ride on it as an
identity edit, so the evaluation split costs one forward below the edited layer per model; the
hooked forward scores the first ``engine_check_items_per_task`` items per task again, and
``engine_check`` says how far the two are apart there. What needs no direction (the derivation
split's forced choice, the cold model on the evaluation split, the unedited models' generation
measure: :func:`unedited_rows`) can be measured before, while the directions are derived, and
handed to :func:`run_protocol`.

Tables: :func:`arm_table` (every arm x cell x measure, per task and pooled, with paired
differences from the unedited warm model, exact McNemar p and Benjamini-Hochberg q),
:func:`null_table` (where each target falls in its null and the paired per-item contrast target
minus the null mean) and the damage table. :mod:`interp.causal.verdict_text` writes the sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp.causal.arms import (
    CONDITIONS,
    Arm,
    EditSet,
    WarmthScorer,
    condition_of,
    score_generation,
    score_prompts,
    score_warmth,
)
from interp.causal.damage import DamageUnits, damage_rows
from interp.causal.moments import residual_moments
from interp.causal.removal import (
    matched_random_directions,
    removal_layer,
    removed_variance,
    shift_amounts,
    shift_edits,
    standardized_shifts,
    zero_ablation_edits,
)
from interp.causal.suffix_arms import (
    SCORE_COLUMNS,
    CleanResiduals,
    engine_agreement,
    identity_edit,
    runner_for,
    score_arms_at_site,
    shared_site,
    suffix_pays,
)
from interp.data.prompt_sets import Prompt
from interp.directions import Direction
from interp.evaluate import conversation
from interp.sites import Site
from interp.stats.bootstrap import group_means, paired_difference
from interp.stats.paired import fdr_bh, paired_p_value
from interp.warmth.stats import mean_ci

REFERENCE = "warm/none"
PRIMARY = "remove-shift"  # the primary removal's arm label prefix (removal.shift_edits)
SECONDARY = "zero-ablate"
MEASURES = ("error", "agrees_with_user")
# the generation measure's columns (arms.score_generation) -> measure names in the tables
GENERATION_MEASURES = {
    "gen_error": "gen_error",
    "unsure": "gen_unsure",
    "gen_agrees_with_user": "gen_agrees_with_user",
}
HEADLINE_RULE = (
    "a cell carries the headline when, on the derivation split, the warm model's "
    "error exceeds the original's (pooled over tasks, point estimate > {threshold:g} pp)"
)
ALL_TASKS = "all"
# what marks an arm damaged: held-out loss above every null arm's. KL over the continuation is
# reported beside it but does not mark damage: an edit that restores the answer must move it.
DAMAGE_MEASURES = ("heldout_loss_increase",)


@dataclass(frozen=True)
class ProtocolSettings:
    """The protocol's sizes: random directions per target, bootstrap, seed, headline rule."""

    n_random: int = 20
    n_boot: int = 1000
    seed: int = 0
    headline_threshold_pp: float = 0.0
    batch_size: int = 16
    max_new_tokens: int = 32
    n_components: int = 32
    tolerance: float = 0.1
    removal_layer: int | None = None  # None: removal.removal_layer's rule on the derivation split
    # the null's items outside the cells with a gap to explain (where no claim can be made)
    null_items_per_task: int = 10
    # the generation measure (greedy replies graded offline) beside forced choice, on a subset
    generation_items_per_task: int = 5
    generation_tokens: int = 48
    # score arms that edit one residual site, and their damage, from a shared clean prefix
    # (suffix_arms, damage.damage_rows_at_site); False: every arm through the hooked forward
    # (the reference engine)
    suffix_engine: bool = True
    # where the suffix engine scores a model's target arms, the model's unedited rows ride along
    # (an identity edit on the same clean prefix); the hooked forward scores these items per
    # task of the evaluation split again, and the run records how far the two engines are apart
    engine_check_items_per_task: int = 2


LONG_COLUMNS = (
    "model",
    "intervention",
    "condition",
    "task",
    "measure",
    "item_id",
    "prompt_id",
    "value",
    "arm",
)


def long_rows(per_prompt: pd.DataFrame, tasks: Mapping[str, str]) -> pd.DataFrame:
    """Per-prompt forced-choice rows -> long rows ``arm, model, intervention, condition, task,
    measure, item_id, prompt_id, value`` (agreement only where a belief is stated)."""
    fc = per_prompt.dropna(subset=["condition"]).copy()
    fc["task"] = fc["prompt_id"].map(tasks)
    parts = [fc.assign(measure="error", value=fc["error"])]
    agree = fc.dropna(subset=["agrees_with_user"])
    parts.append(agree.assign(measure="agrees_with_user", value=agree["agrees_with_user"]))
    out = pd.concat([p[list(LONG_COLUMNS[:-1])] for p in parts], ignore_index=True)
    out["arm"] = out["model"] + "/" + out["intervention"]
    return out


def _with_pooled(long: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([long, long.assign(task=ALL_TASKS)], ignore_index=True)


def _paired_p(sub: pd.DataFrame, arm: str, ref: str) -> float:
    a = sub[sub.arm == arm].groupby("prompt_id")["value"].mean()
    b = sub[sub.arm == ref].groupby("prompt_id")["value"].mean()
    both = a.index.intersection(b.index)
    if len(both) == 0:
        return float("nan")
    return paired_p_value(a.loc[both].to_numpy(), b.loc[both].to_numpy())


def contrast_table(
    long: pd.DataFrame,
    ref: str,
    arms: Sequence[str],
    *,
    n_boot: int,
    seed: int,
    by: Sequence[str] = ("condition", "task", "measure"),
) -> pd.DataFrame:
    """Per arm and group: mean, CI, paired difference from ``ref`` (CI, exact McNemar or
    Wilcoxon p) and BH q-values over every pooled row (``task == "all"``) and, separately, over
    the per-task rows."""
    means = group_means(long, "value", "item_id", by=["arm", *by], seed=seed, n_boot=n_boot)
    means = means[["arm", *by, "n_items", "mean", "ci_low", "ci_high"]]
    diffs = []
    for arm in arms:
        if arm == ref:
            continue
        sub = long[long.arm.isin([arm, ref])]
        keys = sub.groupby(list(by)).filter(lambda g: g.arm.nunique() == 2)
        if keys.empty:
            continue
        d = paired_difference(
            keys, "value", "item_id", "arm", ref, arm, by=list(by), seed=seed, n_boot=n_boot
        )
        d = d.rename(columns={"diff": "diff_vs_ref", "ci_low": "diff_low", "ci_high": "diff_high"})
        d["arm"] = arm
        d["p_value"] = [
            _paired_p(keys[np.logical_and.reduce([keys[c] == r[c] for c in by])], arm, ref)
            for _, r in d.iterrows()
        ]
        diffs.append(d[["arm", *by, "diff_vs_ref", "diff_low", "diff_high", "p_value"]])
    out = (
        means.merge(pd.concat(diffs, ignore_index=True), on=["arm", *by], how="left")
        if diffs
        else means
    )
    out["q_value"] = np.nan
    if "p_value" in out:
        for pooled in (True, False):
            mask = (
                (out["task"] == ALL_TASKS) == pooled if "task" in out else np.full(len(out), pooled)
            )
            out.loc[mask, "q_value"] = fdr_bh(out.loc[mask, "p_value"].to_numpy())
    return out


def gap_table(
    per_prompt: pd.DataFrame, tasks: Mapping[str, str], *, split: str, n_boot: int, seed: int
) -> pd.DataFrame:
    """Warm minus original and cold minus original, per cell x task (and pooled), paired by item."""
    long = _with_pooled(long_rows(per_prompt, tasks))
    long = long[long.intervention == "none"].assign(arm=lambda d: d["model"])
    arms = [a for a in ("warm", "cold") if (long.arm == a).any()]
    table = contrast_table(long, "original", arms, n_boot=n_boot, seed=seed)
    table = table[table.arm != "original"].rename(
        columns={"diff_vs_ref": "gap", "diff_low": "gap_low", "diff_high": "gap_high"}
    )
    table.insert(0, "split", split)
    table.insert(1, "contrast", table.pop("arm") + " - original")
    return table.reset_index(drop=True)


def headline_cells(derivation_gap: pd.DataFrame, threshold_pp: float = 0.0) -> list[str]:
    """The cells where, on the derivation split, warm minus original error (pooled) exceeds
    ``threshold_pp`` percentage points: fixed before the evaluation split is read."""
    rows = derivation_gap[
        (derivation_gap.contrast == "warm - original")
        & (derivation_gap.task == ALL_TASKS)
        & (derivation_gap.measure == "error")
    ]
    return [c for c in CONDITIONS if (rows[rows.condition == c]["gap"] * 100 > threshold_pp).any()]


def first_items(prompts: Sequence[Prompt], per_task: int) -> set[str]:
    """The ids of the first ``per_task`` items of each task, in the prompts' order."""
    first: dict[str, list[str]] = {}
    for p in prompts:
        ids = first.setdefault(p.task, [])
        if p.item_id not in ids and len(ids) < per_task:
            ids.append(p.item_id)
    return {i for ids in first.values() for i in ids}


def null_items(
    evaluation: Sequence[Prompt],
    cells: Sequence[str],
    gap_cells: Sequence[str],
    per_task: int,
) -> list[Prompt]:
    """The prompts the null arms are scored on: in ``cells``, every item of the cells with a
    gap to explain (the only cells where the rules can claim restoration), and elsewhere the
    first ``per_task`` items per task of the evaluation split (:func:`first_items`), the same
    items in every such cell. The target arms are scored on every item; null comparisons use
    the items both have."""
    subset = first_items(evaluation, per_task)
    return [
        p
        for p in evaluation
        if condition_of(p) in cells and (condition_of(p) in gap_cells or p.item_id in subset)
    ]


def gaps(evaluation_gap: pd.DataFrame, cells: Sequence[str]) -> list[str]:
    """The headline cells where the evaluation split shows a gap: warm minus original error
    (pooled) with its CI above zero and BH q < 0.05."""
    rows = evaluation_gap[
        (evaluation_gap.contrast == "warm - original")
        & (evaluation_gap.task == ALL_TASKS)
        & (evaluation_gap.measure == "error")
        & evaluation_gap.condition.isin(cells)
    ]
    return [str(r.condition) for r in rows.itertuples() if r.gap_low > 0 and r.q_value < 0.05]


@dataclass
class ProtocolResult:
    """Every table of one verdict run (see the module doc), and what was decided on the way."""

    gap: pd.DataFrame
    headline: list[str]
    gap_cells: list[str]
    arms: pd.DataFrame
    null: pd.DataFrame
    damage: pd.DataFrame
    null_match: dict[str, dict[str, list[float]]]
    per_prompt: pd.DataFrame
    warmth: pd.DataFrame
    generation: pd.DataFrame
    # the suffix engine against the hooked one on the unedited warm model (suffix_arms)
    engine_check: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Models:
    """The three unedited arms (cold may be absent) the protocol compares."""

    original: Arm
    warm: Arm
    cold: Arm | None = None


def _arm_maker(unedited: Arm) -> Callable[[str, EditSet], Arm]:
    """Arms of ``unedited``'s model (backend, system prompt) with one edit set each."""
    return lambda label, edits: Arm(
        unedited.model, label, unedited.backend, unedited.system, (edits,)
    )


def _score(
    arms: Sequence[Arm], prompts: Sequence[Prompt], batch_size: int, progress: Callable[[str], None]
) -> pd.DataFrame:
    frames = []
    for arm in arms:
        progress(f"forced choice: {arm.model}/{arm.label} on {len(prompts)} prompts")
        frames.append(score_prompts(arm, prompts, batch_size))
    return pd.concat(frames, ignore_index=True)


def generation_prompts(evaluation: Sequence[Prompt], per_task: int) -> list[Prompt]:
    """The generation measure's prompts: the four cells of the first ``per_task`` items per task
    of the evaluation split (:func:`first_items`)."""
    items = first_items(evaluation, per_task)
    return [p for p in evaluation if condition_of(p) in CONDITIONS and p.item_id in items]


@dataclass
class UneditedRows:
    """What the protocol measures on the unedited models alone, before any direction exists
    (:func:`unedited_rows`), so that a study can measure it beside the directions step:

    - ``derivation``: forced choice of the original, warm and cold models on the derivation
      split (the headline rule's input), rows as :func:`interp.causal.arms.score_prompts`;
    - ``cold_evaluation``: the cold model's forced choice on the evaluation split (empty without
      a cold model; the original and warm models' ride on the target arms' pass);
    - ``generation``: the unedited models' generation measure on :func:`generation_prompts`.
    """

    derivation: pd.DataFrame
    cold_evaluation: pd.DataFrame
    generation: pd.DataFrame

    def check(
        self,
        models: Models,
        derivation: Sequence[Prompt],
        evaluation: Sequence[Prompt],
        settings: ProtocolSettings,
    ) -> None:
        """Raise ValueError, naming the table, where these rows are not the ones this protocol
        run would measure (other models, prompts or generation subset)."""
        base = [m.model for m in (models.original, models.warm, models.cold) if m is not None]
        gen = generation_prompts(evaluation, settings.generation_items_per_task)
        cold = [models.cold.model] if models.cold is not None else []
        expected = {
            "derivation": (base, derivation),
            "cold_evaluation": (cold, evaluation if cold else []),
            "generation": (base, gen),
        }
        for name, (names, prompts) in expected.items():
            table = getattr(self, name)
            want = {(m, p.prompt_id) for m in names for p in prompts}
            found = (
                set(zip(table["model"], table["prompt_id"].astype(str), strict=True))
                if len(table)
                else set()
            )
            if found != want:
                raise ValueError(
                    f"{name}: expected {len(want)} rows (models {', '.join(names) or 'none'} x "
                    f"{len(prompts)} prompts), found {len(found)} of which "
                    f"{len(found - want)} are not this run's"
                )


def unedited_rows(
    models: Models,
    derivation: Sequence[Prompt],
    evaluation: Sequence[Prompt],
    settings: ProtocolSettings = ProtocolSettings(),
    progress: Callable[[str], None] = lambda s: None,
) -> UneditedRows:
    """The protocol's direction-free measurements (:class:`UneditedRows`)."""
    s = settings
    base = [m for m in (models.original, models.warm, models.cold) if m is not None]
    deriv_pp = _score(base, derivation, s.batch_size, progress)
    cold_pp = (
        _score([models.cold], evaluation, s.batch_size, progress)
        if models.cold is not None
        else deriv_pp.iloc[:0]
    )
    gen_prompts = generation_prompts(evaluation, s.generation_items_per_task)
    progress(f"generation measure: greedy replies to {len(gen_prompts)} prompts, unedited models")
    generation = score_generation(base, gen_prompts, max_new_tokens=s.generation_tokens)
    return UneditedRows(deriv_pp, cold_pp, generation)


ENGINE_CHECK = "engine-check"  # an identity edit scored by the suffix engine beside the arms


def _score_edited(
    models: Models,
    arms: Sequence[Arm],
    prompts: Sequence[Prompt],
    settings: ProtocolSettings,
    progress: Callable[[str], None],
    identity: str | None = ENGINE_CHECK,
    clean: dict[tuple[str, Site], CleanResiduals] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forced choice of edited arms: per model and edited site, through
    :mod:`interp.causal.suffix_arms` for arms that edit one residual site where that engine is
    the cheaper one (:func:`~interp.causal.suffix_arms.suffix_pays`; when the settings allow
    it), else hooked.

    Each group the suffix engine scores carries an identity edit at its site (it shares the
    clean prefix, so it costs only the layers above the site), labelled ``identity``:
    :data:`ENGINE_CHECK` (the default) to compare with the hooked engine's unedited rows
    (:func:`_engine_check`); ``"none"`` to stand for the model's unedited rows (the first group
    of each model only), so that the unedited model costs no forward of its own; None for no
    identity edit. ``clean``: stores of clean residuals by (model, site) (:class:`~interp.causal.
    suffix_arms.CleanResiduals`): a group whose key is in it starts from the residuals stored
    there where they cover its prompts and stores those it computes. Returns the arms' rows and
    the identity rows."""
    frames, checks = [], []
    unedited = {"original": models.original, "warm": models.warm}
    groups: dict[tuple[str, Site | None], list[Arm]] = {}
    for arm in arms:  # each target's arms edit its own layer: one group per model and site
        site = shared_site([arm]) if settings.suffix_engine else None
        groups.setdefault((arm.model, site), []).append(arm)
    riding: set[str] = set()  # models whose unedited rows rode in a group
    for (model, site), group in groups.items():
        runner = runner_for(unedited[model]) if site is not None else None
        # a riding unedited model saves its own forward: the suffix engine is then compared
        # with one more hooked pass (suffix_pays counts one identity arm besides the group)
        rides = identity == "none" and model not in riding
        if (
            site is None
            or runner is None
            or not suffix_pays(len(group) + int(rides), site, runner.n_layers, runner.can_pack)
        ):
            frames.append(_score(group, prompts, settings.batch_size, progress))
            continue
        base = unedited[model]
        extra = []
        if identity is not None and (identity != "none" or rides):
            extra = [Arm(model, identity, base.backend, base.system, ({site: identity_edit},))]
            riding.add(model)
        store = clean.get((model, site)) if clean is not None else None
        prefix = (
            "the clean residuals kept from an earlier pass"
            if store is not None and store.rows
            else "clean prefix once"
        )
        progress(
            f"forced choice: {len(group)} {model} arms"
            + (" and the unedited model" if rides else "")
            + f" on {len(prompts)} prompts ({prefix}, then the layers above {site})"
        )
        rows = score_arms_at_site(
            base, [*group, *extra], prompts, site, settings.batch_size, runner=runner, clean=store
        )
        frames.append(rows[rows.intervention != identity])
        checks.append(rows[rows.intervention == identity])
    empty = pd.DataFrame(columns=["model", "intervention", "prompt_id"])
    return (
        pd.concat(frames, ignore_index=True) if frames else empty,
        pd.concat(checks, ignore_index=True) if checks else empty,
    )


def _score_evaluation(
    models: Models,
    arms: Sequence[Arm],
    prompts: Sequence[Prompt],
    settings: ProtocolSettings,
    progress: Callable[[str], None],
    clean: dict[tuple[str, Site], CleanResiduals] | None = None,
    scored: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """The unedited models' and the target arms' forced choice on the evaluation split:
    ``(unedited rows, arm rows, engine check)``. A model whose arms the suffix engine scores has
    its unedited rows scored in the same pass (an identity edit on the shared clean prefix:
    :func:`_score_edited` with ``identity="none"``); the others (the cold model, and every model
    when the suffix engine is off or does not pay) by the hooked forward. The hooked forward
    then scores the riding models again on the first ``engine_check_items_per_task`` items per
    task, and :func:`_engine_check` says how far the two engines are apart there. ``clean``:
    as :func:`_score_edited`'s. ``scored``: unedited rows measured before (the cold model's, by
    :func:`unedited_rows`): their models are not scored again."""
    edited, riding = _score_edited(
        models, arms, prompts, settings, progress, identity="none", clean=clean
    )
    rode = set(riding["model"]) if not riding.empty else set()
    base = [m for m in (models.original, models.warm, models.cold) if m is not None]
    before = riding.iloc[:0] if scored is None else scored[~scored.model.isin(rode)]
    done = set(before["model"])
    todo = [m for m in base if m.model not in rode | done]
    hooked = _score(todo, prompts, settings.batch_size, progress) if todo else riding.iloc[:0]
    by_model = pd.concat([riding, hooked, before], ignore_index=True)
    unedited = pd.concat([by_model[by_model.model == m.model] for m in base], ignore_index=True)[
        list(SCORE_COLUMNS)
    ]
    engine: dict[str, float] = {}
    if rode and settings.engine_check_items_per_task > 0:
        items = first_items(prompts, settings.engine_check_items_per_task)
        subset = [p for p in prompts if p.item_id in items]
        again = _score([m for m in base if m.model in rode], subset, settings.batch_size, progress)
        checked = riding[riding.prompt_id.isin({p.prompt_id for p in subset})]
        engine = _engine_check(checked, again)
    return unedited, edited, engine


def _engine_check(checks: pd.DataFrame, base_pp: pd.DataFrame) -> dict[str, float]:
    """The suffix engine's identity-edit rows against the hooked engine's unedited rows of the
    same models and prompts (:func:`interp.causal.suffix_arms.engine_agreement`, models
    pooled); empty when the suffix engine was not used."""
    if checks.empty:
        return {}
    hooked = base_pp[base_pp.intervention == "none"]

    def keyed(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(prompt_id=df["model"] + "/" + df["prompt_id"])

    return engine_agreement(keyed(checks), keyed(hooked))


def run_protocol(
    models: Models,
    targets: Sequence[Direction],
    layers: Sequence[int],
    derivation: Sequence[Prompt],
    evaluation: Sequence[Prompt],
    requests: Sequence[tuple[str, str]],
    warmth: WarmthScorer,
    damage_units: Mapping[str, tuple[DamageUnits, DamageUnits]],
    settings: ProtocolSettings = ProtocolSettings(),
    progress: Callable[[str], None] = lambda s: None,
    unedited: UneditedRows | None = None,
) -> ProtocolResult:
    """The whole protocol (module doc). ``targets``: the directions to remove (each gets its own
    matched null); ``layers``: the candidate layers (the residual moments are taken there and
    :func:`interp.causal.removal.removal_layer` picks one, unless the settings fix it);
    ``damage_units``: per model (``original``, ``warm``) the continuation and held-out units
    damage is measured on; ``unedited``: the direction-free rows measured before
    (:func:`unedited_rows` with these models, prompts and settings; checked), else measured
    here first."""
    s = settings
    tasks = {p.prompt_id: p.task for p in (*derivation, *evaluation)}
    base = [m for m in (models.original, models.warm, models.cold) if m is not None]
    if unedited is None:
        unedited = unedited_rows(models, derivation, evaluation, s, progress)
    else:
        unedited.check(models, derivation, evaluation, s)
    deriv_pp = unedited.derivation
    gap_d = gap_table(deriv_pp, tasks, split="derivation", n_boot=s.n_boot, seed=s.seed)
    headline = headline_cells(gap_d, s.headline_threshold_pp)

    convs = [conversation(p) for p in derivation]
    warm_convs = [conversation(p, models.warm.system) for p in derivation]
    m_orig, m_warm = {}, {}  # per site kind of the targets (resid_post for the study's)
    for kind in sorted({d.site_kind for d in targets}):
        progress(f"moments of {kind} on the derivation prompts (original, warm)")
        # the original's mean projections are all the removal reads of it (the null is matched
        # in the warm model's variance)
        m_orig[kind] = residual_moments(
            models.original.backend, convs, layers, site_kind=kind, second=False
        )
        m_warm[kind] = residual_moments(models.warm.backend, warm_convs, layers, site_kind=kind)
    arms: list[Arm] = []
    null_arms: dict[str, list[Arm]] = {}
    match: dict[str, dict[str, list[float]]] = {}
    for d in targets:
        d_orig, d_warm = m_orig[d.site_kind], m_warm[d.site_kind]
        layer = (
            s.removal_layer
            if s.removal_layer is not None
            else removal_layer(d, layers, d_warm, d_orig)
        )
        shift = shift_amounts(d, [layer], d_warm, d_orig)[layer]
        progress(f"removing {d.name}: layer {layer}, shift {shift:+.3g} along its unit vector")
        warm_arm = _arm_maker(models.warm)
        arms.append(warm_arm(f"{PRIMARY}:{d.name}", shift_edits(d, layer, shift)))
        arms.append(warm_arm(f"{SECONDARY}:{d.name}", zero_ablation_edits(d, [layer])))
        arms.append(
            _arm_maker(models.original)(f"{PRIMARY}:{d.name}", shift_edits(d, layer, shift))
        )
        randoms, ratios = matched_random_directions(
            d,
            [layer],
            d_warm,
            s.n_random,
            seed=s.seed,
            n_components=s.n_components,
            tolerance=s.tolerance,
        )
        # the null removes the fine-tune's own shift along each random direction (the same
        # operator as the target's), not a push as long as the target's: on the embedded model a
        # random push of the planted shift's length (half the residual norm) moved the answers as
        # much as undoing the plant did, so such a null could not recognise an exact restoration
        null_shifts = [shift_amounts(r, [layer], d_warm, d_orig)[layer] for r in randoms]
        match[d.name] = {
            "layer": [float(layer)],
            "shift": [shift],
            "null_shift": null_shifts,
            **ratios,
            f"variance@{layer}": [removed_variance(d, [layer], d_warm)[layer]],
            **{
                f"standardized_shift@{k}": [v]
                for k, v in standardized_shifts(d, layers, d_warm, d_orig).items()
            },
        }
        null_arms[d.name] = [
            warm_arm(f"null:{d.name}:{i}", shift_edits(r, layer, c))
            for i, (r, c) in enumerate(zip(randoms, null_shifts, strict=True))
        ]
    # the unedited models and the target arms on the evaluation split (the unedited rows ride
    # with the arms where the suffix engine scores them), then the gap, which decides the
    # null's prompts
    # the null's arms edit the warm model at its targets' sites: the warm model's clean
    # residuals there are kept from the target arms' pass over the evaluation prompts (the
    # null's prompts are some of them), so the null pass runs only the layers above the sites
    clean = {
        ("warm", site): CleanResiduals(site, models.warm.backend, models.warm.system)
        for site in {shared_site([a]) for v in null_arms.values() for a in v}
        if site is not None
    }
    base_pp, edited_pp, engine = _score_evaluation(
        models, arms, evaluation, s, progress, clean=clean, scored=unedited.cold_evaluation
    )
    gap_e = gap_table(base_pp, tasks, split="evaluation", n_boot=s.n_boot, seed=s.seed)
    gap_cells = gaps(gap_e, headline)
    null_cells = headline or list(CONDITIONS)
    null_prompts = null_items(evaluation, null_cells, gap_cells, s.null_items_per_task)
    progress(
        f"null: {len(null_prompts)} prompts "
        + (
            f"(every item in {', '.join(gap_cells)}; {s.null_items_per_task} per task elsewhere)"
            if gap_cells
            else f"(no cell has a gap: {s.null_items_per_task} items per task in each cell)"
        )
    )
    null_pp, _ = _score_edited(
        models,
        [a for v in null_arms.values() for a in v],
        null_prompts,
        s,
        progress,
        identity=None,
        clean=clean,
    )
    clean.clear()  # about prompts x tokens x d_model values per target
    per_prompt = pd.concat([base_pp, edited_pp, null_pp], ignore_index=True)

    # the generation measure stands beside forced choice where the verdict reads it: the
    # unedited models (the gap, in the unedited rows) and the primary removal from the warm
    # model (the restoration)
    gen_prompts = generation_prompts(evaluation, s.generation_items_per_task)
    gen_arms = [a for a in arms if a.model == "warm" and a.label.startswith(PRIMARY)]
    progress(
        f"generation measure: greedy replies to {len(gen_prompts)} prompts, the warm model's "
        "primary removal"
    )
    edited_gen = (
        [score_generation(gen_arms, gen_prompts, max_new_tokens=s.generation_tokens)]
        if gen_arms
        else []
    )
    generation = pd.concat([unedited.generation, *edited_gen], ignore_index=True)
    progress(f"warmth of greedy replies to {len(requests)} held-out requests, every arm")
    everyone = [*base, *arms, *(a for v in null_arms.values() for a in v)]
    warm_rows = score_warmth(everyone, requests, warmth, max_new_tokens=s.max_new_tokens)
    progress("damage: KL over the unedited continuation and held-out loss, every edited arm")
    dmg = []
    for model_name, model in (("warm", models.warm), ("original", models.original)):
        sets = {
            a.label: a.edit_sets for a in everyone if a.model == model_name and a.label != "none"
        }
        if sets:
            cont, held = damage_units[model_name]
            rows = damage_rows(model.backend, sets, cont, held, suffix=s.suffix_engine)
            dmg.append(rows.assign(model=model_name))
    damage_long = pd.concat(dmg, ignore_index=True)

    long = _with_pooled(long_rows(per_prompt, tasks))
    w = warm_rows.assign(
        arm=warm_rows["model"] + "/" + warm_rows["intervention"],
        measure="warmth",
        value=warm_rows["warmth"],
        task=ALL_TASKS,
    )
    long = pd.concat(
        [long, w[long.columns], _generation_long(generation, tasks)], ignore_index=True
    )
    arm_names = [f"{a.model}/{a.label}" for a in everyone]
    table = contrast_table(
        long[~long.arm.str.contains("/null:")],
        REFERENCE,
        [n for n in arm_names if "/null:" not in n],
        n_boot=s.n_boot,
        seed=s.seed,
    )
    damage = damage_table(damage_long, null_arms, n_boot=s.n_boot, seed=s.seed)
    null = null_table(
        long, damage_long, targets, null_arms, null_cells, n_boot=s.n_boot, seed=s.seed
    )
    return ProtocolResult(
        pd.concat([gap_d, gap_e], ignore_index=True),
        headline,
        gap_cells,
        table,
        null,
        damage,
        match,
        per_prompt,
        warm_rows,
        generation,
        engine,
    )


def _generation_long(generation: pd.DataFrame, tasks: Mapping[str, str]) -> pd.DataFrame:
    """Generation rows -> the long rows of :func:`long_rows` (per task and pooled), one measure
    per column of :data:`GENERATION_MEASURES`, NaN values (dropped replies) left out."""
    g = generation.assign(
        task=generation["prompt_id"].map(tasks),
        arm=generation["model"] + "/" + generation["intervention"],
    )
    parts = [
        g.assign(measure=name, value=g[column]).dropna(subset=["value"])
        for column, name in GENERATION_MEASURES.items()
    ]
    return _with_pooled(pd.concat(parts, ignore_index=True)[list(LONG_COLUMNS)])


def damage_table(
    damage_long: pd.DataFrame, null_arms: Mapping[str, Sequence[Arm]], *, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per edited arm and damage measure: mean over units (replicates pooled) with CI, the range
    of the matching null's arm means, and ``damaged`` (above every null arm)."""
    df = damage_long.groupby(["model", "label", "measure", "unit_id"], as_index=False)[
        "value"
    ].mean()
    df["arm"] = df["model"] + "/" + df["label"]
    means = group_means(df, "value", "unit_id", by=["arm", "measure"], seed=seed, n_boot=n_boot)
    means = means[["arm", "measure", "n_items", "mean", "ci_low", "ci_high"]]
    arm_mean = means.set_index(["arm", "measure"])["mean"]
    null_lo, null_hi, damaged = [], [], []
    for r in means.itertuples():
        target = _target_of(str(r.arm), null_arms)
        if target is None:
            null_lo.append(np.nan)
            null_hi.append(np.nan)
            damaged.append(False)
            continue
        vals = [arm_mean.get((f"warm/{a.label}", r.measure), np.nan) for a in null_arms[target]]
        lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
        null_lo.append(lo)
        null_hi.append(hi)
        damaged.append(
            bool(r.measure in DAMAGE_MEASURES and "/null:" not in str(r.arm) and r.mean > hi)
        )
    return means.assign(null_min=null_lo, null_max=null_hi, damaged=damaged)


def _target_of(arm: str, null_arms: Mapping[str, Sequence[Arm]]) -> str | None:
    for name in null_arms:
        if arm.endswith(f":{name}") or f"/null:{name}:" in arm:
            return name
    return None


def null_table(
    long: pd.DataFrame,
    damage_long: pd.DataFrame,
    targets: Sequence[Direction],
    null_arms: Mapping[str, Sequence[Arm]],
    cells: Sequence[str],
    *,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Per target, cell (pooled over tasks) and measure: the target arm's change from the
    unedited warm model, the null arms' changes (min, median, max), the target's percentile
    among them (share of null arms with a change at or below the target's), and the paired
    per-item contrast target minus the null mean with its CI."""
    rows = []
    pooled = long[long.task == ALL_TASKS]
    dmg = damage_long.assign(
        arm=damage_long["model"] + "/" + damage_long["label"],
        condition="any",
        item_id=damage_long["unit_id"],
        prompt_id=damage_long["unit_id"],
    )
    for d in targets:
        target = f"warm/{PRIMARY}:{d.name}"
        nulls = [f"warm/{a.label}" for a in null_arms[d.name]]
        for measure in (*MEASURES, "warmth", "kl_continuation", "heldout_loss_increase"):
            src = dmg if measure in ("kl_continuation", "heldout_loss_increase") else pooled
            for cell in (
                ("any",) if src is dmg else (("neutral",) if measure == "warmth" else cells)
            ):
                sub = src[(src.measure == measure) & (src.condition == cell)]
                per_item = sub.groupby(["arm", "item_id"])["value"].mean().unstack(0)
                if target not in per_item or not set(nulls) <= set(per_item.columns):
                    continue
                per_item = per_item.dropna(subset=[target, *nulls])  # the items both have
                ref = per_item.get(REFERENCE, 0.0)
                change = per_item.sub(ref, axis=0).mean()
                null_changes = change[nulls].to_numpy()
                contrast = (per_item[target] - per_item[nulls].mean(axis=1)).dropna()
                est = mean_ci(contrast.to_numpy(), n_boot=n_boot, seed=seed)
                lo, hi = est.lo, est.hi
                rows.append(
                    {
                        "target": d.name,
                        "condition": cell,
                        "measure": measure,
                        "target_change": float(change[target]),
                        "null_min": float(null_changes.min()),
                        "null_median": float(np.median(null_changes)),
                        "null_max": float(null_changes.max()),
                        "percentile": float((null_changes <= change[target]).mean() * 100),
                        "n_null": len(nulls),
                        "contrast": float(contrast.mean()),
                        "contrast_low": lo,
                        "contrast_high": hi,
                        "n_items": len(contrast),
                    }
                )
    return pd.DataFrame(rows)
