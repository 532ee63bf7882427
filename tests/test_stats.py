"""interp.stats: McNemar + BH against statsmodels, planted effects recovered by the paper's
logits and their marginal effects, and item-bootstrap intervals that cover the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.special import expit
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from interp.stats import (
    average_marginal_effects,
    cluster_bootstrap,
    fdr_bh,
    fit_logit,
    group_means,
    joint_interaction_test,
    level_effects,
    mcnemar_exact_p,
    mcnemar_table,
    model1_main_effect,
    model2_grouped_context,
    model3_detailed_context,
    model4_belief,
    pair_outcomes,
    paired_difference,
    wald_sum,
)

# ---------------------------------------------------------------- McNemar and FDR


@pytest.mark.parametrize(
    "b,c", [(0, 0), (1, 0), (0, 1), (3, 7), (10, 2), (5, 5), (0, 12), (25, 40)]
)
def test_mcnemar_exact_matches_statsmodels_and_binomial(b, c):
    p = mcnemar_exact_p(b, c)
    assert p == pytest.approx(mcnemar([[4, b], [c, 6]], exact=True).pvalue, abs=1e-12)
    if b + c:
        assert p == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, abs=1e-12)
    else:
        assert p == 1.0


def _pairs(orig: list[int], ft: list[int], **keys: str) -> pd.DataFrame:
    return pd.DataFrame({**keys, "correct_original": orig, "correct_finetuned": ft})


def test_mcnemar_table_hand_example():
    # b = 6 (original right only), c = 1, both right 3, both wrong 2
    orig = [1] * 6 + [0] + [1] * 3 + [0] * 2
    ft = [0] * 6 + [1] + [1] * 3 + [0] * 2
    same = [1, 0, 1, 0]
    pairs = pd.concat(
        [
            _pairs(orig, ft, model="m", condition="sad"),
            _pairs(same, same, model="m", condition="none"),
        ]
    )
    table = mcnemar_table(pairs, ["model", "condition"]).set_index("condition")
    sad = table.loc["sad"]
    assert (sad.n_pairs, sad.b, sad.c, sad.both_correct, sad.both_incorrect) == (12, 6, 1, 3, 2)
    assert sad.acc_original_pct == pytest.approx(100 * 9 / 12)
    assert sad.acc_finetuned_pct == pytest.approx(100 * 4 / 12)
    assert sad.diff_pp == pytest.approx(100 * (4 - 9) / 12)
    assert sad.odds_ratio == pytest.approx(6.0)
    assert sad.cohens_g == pytest.approx(6 / 7 - 0.5)
    assert sad.mcnemar_z == pytest.approx(5 / np.sqrt(7))
    assert sad.p_value == pytest.approx(mcnemar([[3, 6], [1, 2]], exact=True).pvalue)
    none = table.loc["none"]  # no discordant pairs
    assert none.p_value == 1.0 and np.isnan(none.odds_ratio) and np.isnan(none.cohens_g)
    assert not none.significant


def test_fdr_within_families_matches_multipletests():
    rng = np.random.default_rng(3)
    rows = []
    for model in ("a", "b"):
        for cond in ("none", "sad", "happy", "anger"):
            n = 60
            orig = rng.binomial(1, 0.7, n)
            flip = rng.binomial(1, {"a": 0.05, "b": 0.25}[model], n).astype(bool)
            rows.append(
                _pairs(
                    list(orig), list(np.where(flip, 1 - orig, orig)), model=model, condition=cond
                )
            )
    table = mcnemar_table(pd.concat(rows), ["model", "condition"], fdr_within=["model"])
    for _, fam in table.groupby("model"):
        expected = multipletests(fam.p_value, alpha=0.05, method="fdr_bh")
        np.testing.assert_allclose(fam.p_fdr, expected[1], atol=1e-12)
        assert (fam.significant_fdr.to_numpy() == expected[0]).all()
        assert (fam.fdr_family_size == 4).all()


def test_fdr_bh_matches_multipletests_and_keeps_nan():
    p = np.random.default_rng(0).uniform(0, 0.2, 30)
    np.testing.assert_allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1], atol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.04, 0.03])
    out = fdr_bh(with_nan)
    assert np.isnan(out[1])
    np.testing.assert_allclose(
        out[[0, 2, 3]], multipletests([0.01, 0.04, 0.03], method="fdr_bh")[1]
    )


def test_mcnemar_table_errors_name_the_problem():
    pairs = _pairs([1, 0], [0, 0], model="m", condition="sad")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['dataset'\].*found"):
        mcnemar_table(pairs, ["model", "dataset"])
    with pytest.raises(ValueError, match="fdr_within"):
        mcnemar_table(pairs, ["condition"], fdr_within=["model"])
    declared = pairs.assign(condition=pd.Categorical(["sad", "sad"], categories=["sad", "happy"]))
    with pytest.raises(ValueError, match=r"no pairs in group.*condition='happy'"):
        mcnemar_table(declared, ["model", "condition"])
    with pytest.raises(ValueError, match="only 0/1"):
        mcnemar_table(pairs.assign(correct_original=[1, 2]), ["model"])


def test_pair_outcomes_inner_joins_and_rejects_duplicates():
    long = pd.DataFrame(
        {
            "item": [1, 1, 2, 2, 3],
            "is_finetuned": [0, 1, 0, 1, 0],
            "is_correct": [1, 0, 1, 1, 0],
        }
    )
    pairs = pair_outcomes(long, ["item"])
    assert pairs.item.tolist() == [1, 2]
    assert pairs.correct_original.tolist() == [1, 1]
    assert pairs.correct_finetuned.tolist() == [0, 1]
    as_bool = pairs.assign(correct_original=pairs.correct_original == 1, item=[1, 1])
    assert mcnemar_table(as_bool, ["item"]).b.tolist() == [1]
    with pytest.raises(ValueError, match="duplicate prompt"):
        pair_outcomes(pd.concat([long, long]), ["item"])


# ---------------------------------------------------------------- regressions

BETA = {"intercept": -1.0, "ft": 0.5, "sad": 0.2, "ft:sad": 0.4, "trivia": 0.6}
CONDITIONS = ("none", "sad", "happy", "anger", "close")


def _true_logit(ft: np.ndarray, cond: np.ndarray, dataset: np.ndarray) -> np.ndarray:
    sad = cond == "sad"
    return (
        BETA["intercept"]
        + BETA["ft"] * ft
        + BETA["sad"] * sad
        + BETA["ft:sad"] * ft * sad
        + BETA["trivia"] * (dataset == "trivia")
    )


def _simulate(n_items: int, seed: int, item_sd: float = 0.0) -> pd.DataFrame:
    """Every item under every condition for both arms; one model; two datasets."""
    rng = np.random.default_rng(seed)
    k = len(CONDITIONS)
    item = np.repeat(np.arange(n_items), 2 * k)
    cond = np.tile(np.repeat(CONDITIONS, 2), n_items)
    ft = np.tile([0, 1], n_items * k)
    dataset = np.where(item % 2 == 0, "trivia", "medqa")
    eta = _true_logit(ft, cond, dataset) + rng.normal(0, item_sd, n_items)[item] * (item_sd > 0)
    return pd.DataFrame(
        {
            "is_incorrect": rng.binomial(1, expit(eta)),
            "is_finetuned": ft,
            "condition": cond,
            "dataset": dataset,
            "model": "smollm2",
            "item_id": item,
        }
    )


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return _simulate(2000, seed=11)  # 20,000 rows


@pytest.fixture(scope="module")
def fit3(planted):
    return model3_detailed_context(planted, item_col="item_id")


def _true_ame(df: pd.DataFrame) -> pd.Series:
    cond, ds = df.condition.to_numpy(), df.dataset.to_numpy()
    diff = expit(_true_logit(np.ones(len(df)), cond, ds)) - expit(
        _true_logit(np.zeros(len(df)), cond, ds)
    )
    return pd.Series(diff).groupby(cond).mean()


def test_model3_recovers_planted_coefficients(fit3):
    params = fit3.params
    assert fit3.dropped == ("model",)
    assert fit3.cov_type == "cluster(item_id)" and fit3.n_clusters == 2000
    assert fit3.levels[0] == "none" and set(fit3.levels) == set(CONDITIONS)
    assert params["is_finetuned"] == pytest.approx(BETA["ft"], abs=0.2)
    assert params[fit3.interaction_term("sad")] == pytest.approx(BETA["ft:sad"], abs=0.25)
    assert params["C(dataset)[T.trivia]"] == pytest.approx(BETA["trivia"], abs=0.12)
    for level in ("happy", "anger", "close"):
        assert params[fit3.interaction_term(level)] == pytest.approx(0.0, abs=0.25)


def test_ame_matches_true_ame(planted, fit3):
    true = _true_ame(planted)
    true_all = float(
        (
            expit(
                _true_logit(
                    np.ones(len(planted)), planted.condition.to_numpy(), planted.dataset.to_numpy()
                )
            )
            - expit(
                _true_logit(
                    np.zeros(len(planted)), planted.condition.to_numpy(), planted.dataset.to_numpy()
                )
            )
        ).mean()
    )
    ame = average_marginal_effects(fit3).set_index("level")
    assert list(ame.index) == ["all", *fit3.levels]
    assert ame.loc["all", "ame"] == pytest.approx(true_all, abs=0.02)
    for level in CONDITIONS:
        row = ame.loc[level]
        assert row.ame == pytest.approx(true[level], abs=0.04)
        assert row.ci_low < true[level] < row.ci_high
        assert row.p_finetuned - row.p_original == pytest.approx(row.ame)
    assert ame.loc["sad", "ame"] > ame.loc["none", "ame"] + 0.05
    assert (ame.se_method == "delta (cluster(item_id))").all()


def test_ame_is_the_counterfactual_prediction_difference(fit3):
    data = fit3.data
    p1 = fit3.result.predict(_design(fit3, data.assign(is_finetuned=1)))
    p0 = fit3.result.predict(_design(fit3, data.assign(is_finetuned=0)))
    ame = average_marginal_effects(fit3).set_index("level")
    assert ame.loc["all", "ame"] == pytest.approx(float(np.mean(p1 - p0)), abs=1e-12)
    sad = (data.condition == "sad").to_numpy()
    assert ame.loc["sad", "ame"] == pytest.approx(float(np.mean((p1 - p0)[sad])), abs=1e-12)


def _design(fit, frame):
    import patsy

    return patsy.build_design_matrices([fit.design_info], frame, return_type="dataframe")[0]


def test_bootstrap_ame_is_seeded_and_agrees_with_delta(fit3):
    a = average_marginal_effects(fit3, method="bootstrap", n_boot=100, seed=5)
    b = average_marginal_effects(fit3, method="bootstrap", n_boot=100, seed=5)
    pd.testing.assert_frame_equal(a, b)
    delta = average_marginal_effects(fit3)
    np.testing.assert_allclose(a.ame, delta.ame)
    ratio = a.se / delta.se
    assert ratio.between(0.7, 1.4).all(), ratio
    assert a.se_method.iloc[0].startswith("cluster bootstrap (100 reps")
    with pytest.raises(ValueError, match="seed"):
        average_marginal_effects(fit3, method="bootstrap")


def test_wald_sums_match_statsmodels_t_test(fit3):
    effects = level_effects(fit3).set_index("level")
    term = fit3.interaction_term("sad")
    contrast = np.zeros(len(fit3.params))
    contrast[[list(fit3.X.columns).index(t) for t in ("is_finetuned", term)]] = 1
    ref = fit3.result.t_test(contrast)
    assert effects.loc["sad", "estimate"] == pytest.approx(float(np.squeeze(ref.effect)))
    assert effects.loc["sad", "se"] == pytest.approx(float(np.squeeze(ref.sd)))
    assert effects.loc["sad", "p_value"] == pytest.approx(float(np.squeeze(ref.pvalue)), rel=1e-6)
    assert effects.loc["none", "estimate"] == pytest.approx(fit3.params["is_finetuned"])
    assert effects.loc["sad", "contrast"] == f"is_finetuned + {term}"
    assert wald_sum(fit3, {"is_finetuned": 1.0, term: 1.0}).estimate == pytest.approx(
        effects.loc["sad", "estimate"]
    )
    joint = joint_interaction_test(fit3)
    R = np.zeros((4, len(fit3.params)))
    for i, t in enumerate(joint.terms):
        R[i, list(fit3.X.columns).index(t)] = 1
    assert joint.chi2 == pytest.approx(float(fit3.result.wald_test(R, scalar=True).statistic))
    assert joint.df == 4 and joint.p_value < 0.01


def test_model1_main_effect_and_length(planted):
    none = planted[planted.condition == "none"].copy()
    fit = model1_main_effect(none)
    assert fit.cov_type == "nonrobust" and fit.dropped == ("model",)
    assert fit.params["is_finetuned"] == pytest.approx(BETA["ft"], abs=0.2)
    assert fit.formula == "is_incorrect ~ is_finetuned + C(dataset)"
    ame = average_marginal_effects(fit)
    assert list(ame.level) == ["all"]
    by_task = average_marginal_effects(fit, by="dataset")
    assert list(by_task.level) == ["all", "medqa", "trivia"]
    rng = np.random.default_rng(0)
    with_len = model1_main_effect(
        none.assign(response_length=rng.normal(800, 100, len(none))), include_length=True
    )
    assert "response_length" in with_len.params.index
    const_len = model1_main_effect(none.assign(response_length=500), include_length=True)
    assert const_len.dropped == ("model", "response_length")


def test_model2_grouped_context_and_model4_belief(planted):
    grouped = planted.assign(
        context_group=planted.condition.map(
            {
                "none": "none",
                "sad": "emotion",
                "happy": "emotion",
                "anger": "emotion",
                "close": "relation",
            }
        )
    )
    fit2 = model2_grouped_context(grouped, item_col=("dataset", "item_id"))
    assert fit2.levels == ("none", "emotion", "relation")
    assert fit2.cov_type == "cluster(dataset+item_id)"
    assert set(level_effects(fit2).level) == {"none", "emotion", "relation"}

    belief = planted.assign(has_belief=planted.condition == "sad")
    fit4 = model4_belief(belief.assign(is_finetuned=belief.is_finetuned == 1), item_col="item_id")
    assert fit4.levels == ("False", "True")
    ame = average_marginal_effects(fit4).set_index("level")
    true = _true_ame(planted)
    assert ame.loc["True", "ame"] == pytest.approx(true["sad"], abs=0.04)
    assert fit4.params[fit4.interaction_term("True")] == pytest.approx(BETA["ft:sad"], abs=0.25)


def test_cluster_ses_are_reported_and_widen_between_item_terms():
    df = _simulate(300, seed=2, item_sd=1.5)
    clustered = fit_logit(df, interaction="condition", item_col="item_id").coefficients()
    naive = fit_logit(df, interaction="condition").coefficients()
    assert (clustered.cov_type == "cluster(item_id)").all() and (
        naive.cov_type == "nonrobust"
    ).all()
    between = clustered.term == "C(dataset)[T.trivia]"  # varies between items only
    assert float(clustered.se[between].iloc[0]) > 1.5 * float(naive.se[between].iloc[0])


def test_fit_logit_errors(planted):
    small = planted.head(200)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['condition_x'\]"):
        fit_logit(small, interaction="condition_x")
    with pytest.raises(ValueError, match="single level"):
        fit_logit(small[small.condition == "none"], interaction="condition")
    with pytest.raises(ValueError, match="takes one value"):
        fit_logit(small[small.is_finetuned == 1])
    with pytest.raises(ValueError, match="reference 'calm' is not a level"):
        fit_logit(small, interaction="condition", reference="calm")
    with pytest.raises(ValueError, match="no reference level"):
        fit_logit(small[small.condition != "none"], interaction="condition")
    with pytest.raises(ValueError, match="needs item_col"):
        fit_logit(small, cov_type="cluster")
    with pytest.raises(ValueError, match="missing values"):
        fit_logit(small.assign(is_incorrect=np.where(small.index == 0, np.nan, small.is_incorrect)))


# ---------------------------------------------------------------- bootstrap


def _item_table(n_items: int, rows_per_item: int, seed: int, p: float = 0.3) -> pd.DataFrame:
    """0/1 outcomes with an item effect: items differ in difficulty, mean is ``p``."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(2 * p / (1 - p), 2, n_items)  # mean p
    item = np.repeat(np.arange(n_items), rows_per_item)
    return pd.DataFrame({"item": item, "y": rng.binomial(1, difficulty[item])})


def test_cluster_bootstrap_covers_truth_and_is_seeded():
    df = _item_table(300, 6, seed=1)
    stat = lambda d: float(d.y.mean())  # noqa: E731
    a = cluster_bootstrap(df, stat, "item", seed=7, n_boot=400)
    b = cluster_bootstrap(df, stat, "item", seed=7, n_boot=400)
    c = cluster_bootstrap(df, stat, "item", seed=8, n_boot=400)
    assert a == b and np.array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, c.replicates)
    assert a.ci_low < 0.3 < a.ci_high
    assert a.estimate == pytest.approx(df.y.mean()) and a.n_items == 300
    naive_se = np.sqrt(df.y.mean() * (1 - df.y.mean()) / len(df))
    assert a.se > naive_se  # items are clusters: the row-level SE is too small


def test_group_means_coverage_is_nominal():
    hits = []
    for sim in range(100):
        df = _item_table(120, 4, seed=100 + sim)
        ci = group_means(df, "y", "item", seed=sim, n_boot=300).iloc[0]
        hits.append(ci.ci_low <= 0.3 <= ci.ci_high)
    assert 0.85 <= np.mean(hits) <= 0.995


def test_group_means_and_paired_difference(planted):
    means = group_means(
        planted, "is_incorrect", "item_id", by=["condition", "is_finetuned"], seed=0, n_boot=200
    )
    expected = planted.groupby(["condition", "is_finetuned"]).is_incorrect.mean().to_numpy()
    np.testing.assert_allclose(means["mean"], expected)
    assert (means.n_items == 2000).all() and (means.ci_low < means["mean"]).all()
    diff = paired_difference(
        planted,
        "is_incorrect",
        "item_id",
        "is_finetuned",
        0,
        1,
        by=["condition"],
        seed=0,
        n_boot=300,
    ).set_index("condition")
    true = _true_ame(planted)
    for level in CONDITIONS:
        row = diff.loc[level]
        assert row["diff"] == pytest.approx(row.mean_b - row.mean_a)
        assert row.ci_low < true[level] < row.ci_high
    again = paired_difference(
        planted,
        "is_incorrect",
        "item_id",
        "is_finetuned",
        0,
        1,
        by=["condition"],
        seed=0,
        n_boot=300,
    ).set_index("condition")
    pd.testing.assert_frame_equal(diff, again)


def test_bootstrap_errors():
    df = _item_table(10, 2, seed=0)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['grp'\]"):
        group_means(df, "y", "item", by=["grp"], seed=0)
    with pytest.raises(ValueError, match="no item has both"):
        paired_difference(df.assign(arm="a"), "y", "item", "arm", "a", "b", seed=0)
    with pytest.raises(ValueError, match="n_boot"):
        cluster_bootstrap(df, lambda d: 0.0, "item", seed=0, n_boot=1)


def test_paired_p_value_picks_mcnemar_for_binary_and_wilcoxon_otherwise():
    from interp.stats.paired import mcnemar_exact_p, paired_p_value

    x, y = np.array([1, 1, 1, 0, 1, 1]), np.array([0, 0, 0, 0, 1, 0])
    assert paired_p_value(x, y) == mcnemar_exact_p(4, 0)
    from scipy.stats import wilcoxon

    assert paired_p_value(x, y, binary=False) == float(wilcoxon(x, y).pvalue)
    warm = np.array([0.9, 0.8, 0.7, 0.95])
    assert paired_p_value(warm, warm - 0.1) == float(wilcoxon(warm, warm - 0.1).pvalue)
    assert paired_p_value(np.array([0.2, 0.4]), np.array([0.2, 0.4])) == 1.0
    assert np.isnan(paired_p_value(np.array([]), np.array([])))
