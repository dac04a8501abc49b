"""reviews.reports.stats against published worked examples and hand computations (cited per
test)."""

import json
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy import stats as scipy_stats
from scipy.stats import beta

from reviews.reports import stats

NAN = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section D: 4 observers
# (rows) x 12 units (columns), values 1-5, missing data.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects x 5 categories, 14 raters each.
FLEISS_WIKIPEDIA = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)

# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120 (also irrCAC's
# `cac.raw4raters`): 4 raters x 12 units, categories 1-5, missing ratings. Counts per unit.
GWET_HANDBOOK_COUNTS = np.array(
    [
        [3, 0, 0, 0, 0],  # 1 1 . 1
        [0, 3, 1, 0, 0],  # 2 2 3 2
        [0, 0, 4, 0, 0],
        [0, 0, 4, 0, 0],
        [0, 4, 0, 0, 0],
        [1, 1, 1, 1, 0],  # 1 2 3 4
        [0, 0, 0, 4, 0],
        [3, 1, 0, 0, 0],  # 1 1 2 1
        [0, 4, 0, 0, 0],
        [0, 0, 0, 0, 3],  # . 5 5 5
        [2, 0, 0, 0, 0],  # . . 1 1
        [0, 0, 1, 0, 0],  # . . 3 .  (one rating: counts for pi_k only)
    ]
)

RUBRIC = [
    {"name": "correctness", "kind": "scale", "min": 1, "max": 5, "per": "response"},
    {"name": "refusal_ok", "kind": "binary", "per": "response"},
    {"name": "overall", "kind": "scale", "min": 1, "max": 7, "per": "pair"},
]


def make_prefs(rows):
    """rows: (item_id, reviewer, preference, candidate_left[, len_diff[, seconds]])."""
    records = []
    for row in rows:
        item_id, reviewer, preference, candidate_left, *rest = row
        len_diff = rest[0] if rest else 0.0
        seconds = rest[1] if len(rest) > 1 else 30.0
        records.append((item_id, reviewer, preference, candidate_left, seconds, len_diff))
    return pd.DataFrame(
        records,
        columns=[
            "item_id",
            "reviewer",
            "preference",
            "candidate_left",
            "duration_seconds",
            "len_diff",
        ],
    )


def empty_frames():
    prefs = make_prefs([])
    scores = pd.DataFrame(columns=["item_id", "reviewer", "criterion", "target", "value"])
    item_meta = pd.DataFrame(columns=["item_id", "key", "value"])
    return prefs, scores, item_meta


def simulated_campaign(n_items=300, overlap=3, seed=0):
    rng = np.random.default_rng(seed)
    prefs_rows, score_rows, meta_rows = [], [], []
    for i in range(n_items):
        quality = rng.normal(0.2, 1)
        meta_rows.append((f"i{i}", "category", ["billing", "shipping"][i % 2]))
        for r in range(overlap):
            reviewer = f"r{(i + r) % 7}"
            draw = rng.random()
            preference = (
                "tie"
                if draw < 0.1
                else "both_bad"
                if draw < 0.15
                else "candidate"
                if rng.random() < 1 / (1 + math.exp(-quality))
                else "baseline"
            )
            prefs_rows.append(
                (f"i{i}", reviewer, preference, bool(rng.random() < 0.5), rng.normal(40, 200))
            )
            for target in ("baseline", "candidate"):
                value = float(np.clip(round(3 + quality + rng.normal()), 1, 5))
                score_rows.append((f"i{i}", reviewer, "correctness", target, value))
                score_rows.append(
                    (f"i{i}", reviewer, "refusal_ok", target, float(rng.random() < 0.9))
                )
            score_rows.append((f"i{i}", reviewer, "overall", "pair", float(rng.integers(1, 8))))
    scores = pd.DataFrame(
        score_rows, columns=["item_id", "reviewer", "criterion", "target", "value"]
    )
    item_meta = pd.DataFrame(meta_rows, columns=["item_id", "key", "value"])
    return make_prefs(prefs_rows), scores, item_meta


# --- Krippendorff's alpha -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_alpha_matches_krippendorff_2011_example(level, published):
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section D (4 coders,
    12 units, missing data): alpha = 0.743 nominal, 0.815 ordinal, 0.849 interval."""
    assert stats.krippendorff_alpha(KRIPPENDORFF_2011.T, level) == pytest.approx(
        published, abs=5e-4
    )


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", range(5))
def test_krippendorff_alpha_equals_krippendorff_package(level, seed):
    """Our coincidence-matrix computation against the `krippendorff` package's on random data
    with varying numbers of raters per unit, dense and sparse."""
    rng = np.random.default_rng(seed)
    ratings = rng.integers(1, 6, size=(40, 5)).astype(float)
    ratings[rng.random(ratings.shape) < 0.35] = NAN
    expected = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement=level)
    assert stats.krippendorff_alpha(ratings, level) == pytest.approx(expected, abs=1e-12)
    domain, values = np.unique(ratings[~np.isnan(ratings)], return_inverse=True)
    units = np.nonzero(~np.isnan(ratings))[0]
    counts = sparse.csr_array((np.ones(len(units)), (units, values)), shape=(40, len(domain)))
    assert stats.krippendorff_alpha_counts(counts, domain, level) == pytest.approx(
        expected, abs=1e-12
    )


def test_krippendorff_alpha_is_none_without_pairable_units_or_variation():
    one_rating_each = np.array([[1.0, NAN], [NAN, 2.0], [3.0, NAN]])
    all_same = np.array([[2.0, 2.0], [2.0, 2.0], [2.0, NAN]])
    assert stats.krippendorff_alpha(one_rating_each, "nominal") is None
    assert stats.krippendorff_alpha(all_same, "ordinal") is None
    assert stats.krippendorff_alpha(np.empty((0, 3)), "interval") is None


# --- Fleiss, Gwet, percent agreement ----------------------------------------------------------


def test_fleiss_kappa_matches_wikipedia_example():
    """Wikipedia, "Fleiss' kappa", worked example: P = 0.378, P_e = 0.213, kappa = 0.210."""
    assert stats.fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_is_none_unless_every_unit_has_the_same_raters():
    uneven = np.array([[2, 0], [1, 2]])
    single = np.array([[1, 0], [0, 1]])
    no_variation = np.array([[3, 0], [3, 0]])
    assert stats.fleiss_kappa(uneven) is None
    assert stats.fleiss_kappa(single) is None
    assert stats.fleiss_kappa(no_variation) is None


def test_gwet_ac1_matches_gwet_handbook_example():
    """Gwet (2014), Handbook, 4th ed., p. 120 (irrCAC `raw4raters`): p_a = 0.818, p_e = 0.190,
    AC1 = 0.775. By hand: p_a = 9/11 over the 11 units with >= 2 ratings; pi = (3, 3.25, 3.5,
    1.25, 1)/12 over all 12 units; p_e = sum pi(1 - pi)/4 = 0.1903; (0.8182-0.1903)/0.8097."""
    assert stats.percent_agreement(GWET_HANDBOOK_COUNTS) == pytest.approx(9 / 11)
    assert stats.gwet_ac1(GWET_HANDBOOK_COUNTS) == pytest.approx(0.7754, abs=5e-5)


def test_gwet_ac1_two_raters_by_hand():
    """Gwet (2008) eq. for two raters on a high-agreement 2x2 table of the "kappa paradox"
    shape, 125 subjects: (+,+) 118, (+,-) 5, (-,+) 2, (-,-) 0. By hand: p_a = 118/125 = 0.944,
    pi_+ = (123 + 120)/250 = 0.972, p_e = 2 x 0.972 x 0.028 = 0.054432,
    AC1 = (0.944 - 0.054432)/(1 - 0.054432) = 0.9408 (Cohen's kappa here is -0.023)."""
    table = np.array([[2, 0]] * 118 + [[1, 1]] * 7)
    assert stats.gwet_ac1(table) == pytest.approx(0.889568 / 0.945568, abs=1e-9)


def test_agreement_is_none_for_degenerate_tables():
    single_rater = np.array([[1, 0, 0, 0], [0, 1, 0, 0]])
    all_ties = np.array([[0, 0, 3, 0], [0, 0, 3, 0]])
    assert stats.gwet_ac1(single_rater) is None
    assert stats.percent_agreement(single_rater) is None
    assert stats.gwet_ac1(all_ties) is None
    assert stats.percent_agreement(all_ties) == 1.0


def test_preference_agreement_counts_items_as_units():
    prefs = make_prefs(
        [
            ("a", "r1", "candidate", True),
            ("a", "r2", "candidate", False),
            ("b", "r1", "baseline", True),
            ("b", "r2", "tie", True),
            ("c", "r1", "baseline", True),
        ]
    )
    result = stats.preference_agreement(prefs)
    assert result["n_units"] == 2
    assert result["percent_agreement"] == 0.5
    # Item c has one judgment: it adds to the category shares (Gwet 2014, section 2.5) and does
    # not make kappa undefined. p_a = 0.5, shares (1/3, 1/2, 1/6, 0), p_e = 14/36.
    assert result["fleiss_kappa"] == pytest.approx((0.5 - 14 / 36) / (1 - 14 / 36))
    expected = krippendorff.alpha(
        reliability_data=[[0, 1, 1], [0, 2, NAN]], level_of_measurement="nominal"
    )
    assert result["krippendorff_alpha"] == pytest.approx(expected)


def test_criterion_agreement_units_are_item_and_target_for_per_response_criteria():
    scores = pd.DataFrame(
        [
            ("a", "r1", "correctness", "baseline", 2.0),
            ("a", "r2", "correctness", "baseline", 3.0),
            ("a", "r1", "correctness", "candidate", 4.0),
            ("a", "r2", "correctness", "candidate", 4.0),
            ("b", "r1", "correctness", "baseline", 1.0),
            ("b", "r2", "correctness", "baseline", 1.0),
            ("b", "r1", "correctness", "candidate", 5.0),
            ("b", "r2", "correctness", "candidate", 3.0),
            ("b", "r2", "overall", "pair", 3.0),
        ],
        columns=["item_id", "reviewer", "criterion", "target", "value"],
    )
    # units: a/baseline, a/candidate, b/baseline, b/candidate; rows are the two reviewers
    data = [[2, 4, 1, 5], [3, 4, 1, 3]]
    result = stats.criterion_agreement(scores, RUBRIC[0])
    assert result["level"] == "ordinal"
    assert result["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(data, level_of_measurement="ordinal")
    )
    assert result["krippendorff_alpha_interval"] == pytest.approx(
        krippendorff.alpha(data, level_of_measurement="interval")
    )
    assert stats.criterion_agreement(scores, RUBRIC[2])["krippendorff_alpha"] is None


# --- Proportions, posteriors, tests -----------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "lo", "hi"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_1998(successes, n, lo, hi):
    """Newcombe (1998), Stat Med 17:857-872, Table II, method 3 (Wilson score)."""
    assert stats.wilson_interval(successes, n) == pytest.approx((lo, hi), abs=5e-5)


def test_wilson_interval_is_none_without_trials():
    assert stats.wilson_interval(0, 0) is None


def test_win_rate_summary_posterior_matches_hand_computation():
    """c = 3, b = 1: posterior Beta(4, 2), CDF I_x(4, 2) = 5x^4(1 - x) + x^5, so
    P(p > 0.5) = 1 - 6/32 = 0.8125 and P(p > 0.4) = 1 - (0.0768 + 0.01024) = 0.91296."""
    counts = {"candidate": 3, "baseline": 1, "tie": 5, "both_bad": 2}
    summary = stats.win_rate_summary(counts, margin=0.1)
    assert summary["win_rate"] == 0.75
    assert summary["p_candidate_better"] == pytest.approx(0.8125)
    assert summary["p_non_inferior"] == pytest.approx(0.91296)
    assert summary["margin"] == 0.1


def test_win_rate_is_null_when_every_judgment_is_a_tie():
    counts = {"candidate": 0, "baseline": 0, "tie": 4, "both_bad": 1}
    summary = stats.win_rate_summary(counts, margin=0.05)
    assert summary["win_rate"] is None
    assert summary["win_rate_ci95"] is None


def test_holm_matches_wikipedia_example():
    """Wikipedia, "Holm-Bonferroni method", example: p = (0.01, 0.04, 0.03, 0.005); adjusted
    p = (3 x 0.01, max(2 x 0.03, 0.04), 2 x 0.03, 4 x 0.005) = (0.03, 0.06, 0.06, 0.02)."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize("seed", range(5))
def test_holm_equals_statsmodels_multipletests(seed):
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(seed).uniform(0, 0.2, 12)
    p[3] = p[7]  # ties keep their order
    assert stats.holm(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_position_bias_on_one_item_is_the_plain_binomial_test_by_hand():
    """One item: no clustered variance to estimate, so the exact binomial test over judgments.
    9 of 10 decisive judgments chose the left side: two-sided p = 2 (C(10,9) + C(10,10)) / 2^10
    = 22/1024. Ties do not count."""
    rows = [("i", f"r{k}", "candidate", True) for k in range(6)]
    rows += [("i", f"s{k}", "baseline", False) for k in range(3)]
    rows += [("i", "t1", "candidate", False), ("i", "t2", "tie", True)]
    result = stats.position_bias(make_prefs(rows))
    assert result == {"left_rate": 0.9, "n": 10, "p_value": pytest.approx(22 / 1024)}


def test_position_bias_is_design_aware_by_hand():
    """The same 9 of 10 on ten items, one judgment each: the item-clustered variance of the left
    share is 10/9 * (9 * 0.1^2 + 0.9^2) / 10^2 = 0.01, so n_eff = 0.9 * 0.1 / 0.01 = 9, times
    Korn & Graubard's (z / t_9)^2 = 6.76, rounded to 7: 6 left of 7, p = 2 (7 + 1) / 2^7."""
    rows = [(f"i{k}", "r1", "candidate", True) for k in range(6)]
    rows += [(f"j{k}", "r1", "baseline", False) for k in range(3)]
    rows += [("k", "r1", "candidate", False), ("t", "r1", "tie", True)]
    result = stats.position_bias(make_prefs(rows))
    assert result == {"left_rate": 0.9, "n": 10, "p_value": pytest.approx(16 / 128)}


def test_position_bias_is_null_without_decisive_judgments():
    prefs = make_prefs([("a", "r1", "tie", True)])
    assert stats.position_bias(prefs) == {"left_rate": None, "n": 0, "p_value": None}


# --- Criteria, reviewers, slices -------------------------------------------------------------


def test_criteria_summary_pairs_differences_by_item_and_reviewer():
    """Differences 1, 2 (item a) and 3 (item b): mean 2, clustered by item.
    The unpaired baseline score counts in the baseline mean only."""
    rows = [
        ("a", "r1", "correctness", "baseline", 2.0),
        ("a", "r1", "correctness", "candidate", 3.0),
        ("a", "r2", "correctness", "candidate", 5.0),
        ("a", "r2", "correctness", "baseline", 3.0),
        ("b", "r1", "correctness", "baseline", 1.0),
        ("b", "r1", "correctness", "candidate", 4.0),
        ("c", "r1", "correctness", "baseline", 5.0),
        ("a", "r1", "overall", "pair", 6.0),
        ("b", "r1", "overall", "pair", 4.0),
    ]
    scores = pd.DataFrame(rows, columns=["item_id", "reviewer", "criterion", "target", "value"])
    summary = stats.criteria_summary(scores, RUBRIC)
    # Design-aware: two items (a: differences 1 and 2, b: 3), residuals summed per item
    # (-1, +1), V = 2 x 2 / 3^2, t with one degree of freedom (items - 1).
    half_width = 12.706 * math.sqrt(4 / 9)
    assert summary["correctness"]["baseline_mean"] == pytest.approx(11 / 4)
    assert summary["correctness"]["candidate_mean"] == pytest.approx(4.0)
    assert summary["correctness"]["mean_diff"] == pytest.approx(2.0)
    assert summary["correctness"]["mean_diff_ci95"] == pytest.approx(
        [2 - half_width, 2 + half_width], abs=1e-3
    )
    assert summary["overall"]["mean"] == 5.0
    assert summary["refusal_ok"] == {
        "baseline_mean": None,
        "candidate_mean": None,
        "mean_diff": None,
        "mean_diff_ci95": None,
    }


def test_reviewer_summary_counts_pairwise_agreement_with_others():
    """Item a: r1, r2 candidate, r3 baseline; item b: r1 tie, r2 tie; item c: r1 alone.
    r1: matches 1 (a) + 1 (b) of 2 + 1 pairs = 2/3; r3: 0/2; r2: (1 + 1)/(2 + 1)."""
    prefs = make_prefs(
        [
            ("a", "r1", "candidate", True, 0.0, 10.0),
            ("a", "r2", "candidate", True, 0.0, 20.0),
            ("a", "r3", "baseline", True, 0.0, NAN),
            ("b", "r1", "tie", True, 0.0, 30.0),
            ("b", "r2", "tie", True, 0.0, 40.0),
            ("c", "r1", "baseline", True, 0.0, 50.0),
            ("d", "r4", "baseline", True, 0.0, 5.0),
        ]
    )
    by_reviewer = {row["reviewer"]: row for row in stats.reviewer_summary(prefs)}
    assert by_reviewer["r1"] == {
        "reviewer": "r1",
        "n": 3,
        "median_seconds": 30.0,
        "agreement_with_others": pytest.approx(2 / 3),
    }
    assert by_reviewer["r2"]["agreement_with_others"] == pytest.approx(2 / 3)
    assert by_reviewer["r3"]["agreement_with_others"] == 0.0
    assert by_reviewer["r3"]["median_seconds"] is None
    assert by_reviewer["r4"]["agreement_with_others"] is None


def _effective_p(rate, n_eff, n_items):
    """Korn & Graubard (1998) by hand: n_eff scaled by (z / t_{items-1})^2, then the exact
    binomial test on the rounded effective counts."""
    n = n_eff * (scipy_stats.norm.ppf(0.975) / scipy_stats.t.ppf(0.975, n_items - 1)) ** 2
    n = max(1, round(n))
    return scipy_stats.binomtest(round(rate * n), n, 0.5).pvalue


def test_slice_summary_tests_each_slice_and_holm_adjusts_across_keys():
    """billing: 9 wins of 10 decisive, one per item: residuals 0.1 (x9) and -0.9, V = (10/9) x
    0.9 / 10^2 = 0.01, n_eff = 0.09 / 0.01 = 9. shipping: 1 of 2, n_eff = 0.25 / 0.25 = 1. region
    eu holds both: 10 of 12, V = (12/11)(60/36) / 144, n_eff = (5/36) / V = 11. Holm over the
    three."""
    rows = [(f"b{k}", "r1", "candidate", True) for k in range(9)]
    rows += [("b9", "r1", "baseline", True), ("b9", "r2", "tie", True)]
    rows += [("s0", "r1", "candidate", True), ("s1", "r1", "baseline", True)]
    rows += [("x", "r1", "candidate", True)]  # no metadata: in no slice
    meta = [(f"b{k}", "category", "billing") for k in range(10)]
    meta += [("s0", "category", "shipping"), ("s1", "category", "shipping")]
    meta += [(item, "region", "eu") for item in [f"b{k}" for k in range(10)] + ["s0", "s1"]]
    meta += [(f"id{k}", "ticket", str(k)) for k in range(3)]  # items never judged
    item_meta = pd.DataFrame(meta, columns=["item_id", "key", "value"])
    result = stats.slice_summary(make_prefs(rows), item_meta)
    assert set(result) == {"category", "region"}
    billing, shipping = result["category"]["billing"], result["category"]["shipping"]
    eu = result["region"]["eu"]
    assert billing["n_judgments"] == 11
    assert billing["win_rate"] == 0.9
    p_billing, p_eu = _effective_p(0.9, 9, 10), _effective_p(10 / 12, 11, 12)
    assert billing["p_value"] == pytest.approx(p_billing)
    assert shipping["p_value"] == pytest.approx(1.0)
    assert eu["p_value"] == pytest.approx(p_eu)
    # Judgments that are independent (one per item) are no more sure than the binomial says.
    assert billing["p_value"] >= 22 / 1024
    low, high = sorted([p_billing, p_eu])
    assert min(billing["p_holm"], eu["p_holm"]) == pytest.approx(3 * low)
    assert max(billing["p_holm"], eu["p_holm"]) == pytest.approx(max(3 * low, 2 * high))
    assert shipping["p_holm"] == pytest.approx(1.0)


def test_slice_summary_leaves_out_keys_with_too_many_values():
    prefs = make_prefs([(f"i{k}", "r1", "candidate", True) for k in range(5)])
    item_meta = pd.DataFrame(
        [(f"i{k}", "ticket", f"T-{k}") for k in range(5)], columns=["item_id", "key", "value"]
    )
    assert stats.slice_summary(prefs, item_meta, max_values=4) == {}
    assert len(stats.slice_summary(prefs, item_meta, max_values=5)["ticket"]) == 5


# --- Length control, bootstrap, stopping -------------------------------------------------------


def test_length_controlled_win_rate_removes_a_pure_length_advantage():
    """Simulated: the candidate is usually longer and reviewers prefer longer answers, with no
    other difference (logit P(win) = 0.004 x len_diff). Raw win rate is high; at equal length
    the model recovers 0.5."""
    rng = np.random.default_rng(3)
    len_diff = rng.normal(300, 250, 4000)
    wins = rng.random(4000) < 1 / (1 + np.exp(-0.004 * len_diff))
    prefs = make_prefs(
        [
            (f"i{k}", "r1", "candidate" if won else "baseline", True, float(diff))
            for k, (won, diff) in enumerate(zip(wins, len_diff, strict=True))
        ]
    )
    raw = stats.win_rate_summary(stats.preference_counts(prefs), margin=0.05)["win_rate"]
    controlled = stats.length_controlled_win_rate(prefs)
    assert raw > 0.7
    assert controlled == pytest.approx(0.5, abs=0.04)


def test_length_controlled_win_rate_is_null_when_undefined():
    few = make_prefs([(f"i{k}", "r1", "candidate", True, float(k)) for k in range(5)])
    separated = make_prefs(
        [(f"i{k}", "r1", "candidate" if k >= 10 else "baseline", True, float(k)) for k in range(20)]
    )
    same_length = make_prefs(
        [(f"i{k}", "r1", ["candidate", "baseline"][k % 2], True, 7.0) for k in range(20)]
    )
    assert stats.length_controlled_win_rate(few) is None
    assert stats.length_controlled_win_rate(separated) is None
    assert stats.length_controlled_win_rate(same_length) is None


def _prefs_with_item_pattern(n_items, pattern):
    """pattern(i) -> list of preferences for item i, one per reviewer."""
    return make_prefs(
        [
            (f"i{i}", f"r{j}", preference, True)
            for i in range(n_items)
            for j, preference in enumerate(pattern(i))
        ]
    )


def test_item_bootstrap_is_reproducible_with_a_seed():
    prefs, _, _ = simulated_campaign(n_items=200)
    first = stats.item_bootstrap_ci(prefs, seed=7)
    assert first == stats.item_bootstrap_ci(prefs, seed=7)
    assert first != stats.item_bootstrap_ci(prefs, seed=8)
    assert first[0] < first[1]


def test_item_bootstrap_widens_when_judgments_cluster_by_item():
    """Same 60% win rate over 900 judgments: three identical verdicts per item (clustered) vs
    two or one wins of three on every item (spread). Clustered, 300 items decide alone: the
    interval is sqrt(3) times Wilson's on 900 independent judgments, and far wider than spread."""
    clustered = _prefs_with_item_pattern(
        300, lambda i: ["candidate" if i % 5 < 3 else "baseline"] * 3
    )
    spread = _prefs_with_item_pattern(
        300,
        lambda i: (
            ["candidate", "candidate", "baseline"]
            if i % 5 < 4
            else ["candidate", "baseline", "baseline"]
        ),
    )
    assert stats.preference_counts(clustered) == stats.preference_counts(spread)
    lo_c, hi_c = stats.item_bootstrap_ci(clustered)
    lo_s, hi_s = stats.item_bootstrap_ci(spread)
    wilson_lo, wilson_hi = stats.wilson_interval(540, 900)
    assert (hi_c - lo_c) / (hi_s - lo_s) > 1.5
    assert (hi_c - lo_c) == pytest.approx(math.sqrt(3) * (wilson_hi - wilson_lo), rel=0.15)


def test_item_bootstrap_equals_resampling_items_directly():
    """The multinomial-over-tallies shortcut against a plain item resampling loop."""
    prefs, _, _ = simulated_campaign(n_items=150, seed=4)
    items = prefs.groupby("item_id")["preference"]
    wins = items.apply(lambda p: (p == "candidate").sum()).to_numpy()
    decisive = items.apply(lambda p: p.isin(["candidate", "baseline"]).sum()).to_numpy()
    rng = np.random.default_rng(11)
    picks = rng.integers(0, len(wins), size=(20000, len(wins)))
    direct = np.quantile(wins[picks].sum(1) / decisive[picks].sum(1), [0.025, 0.975])
    assert stats.item_bootstrap_ci(prefs, n_boot=20000) == pytest.approx(direct, abs=0.006)


def test_item_bootstrap_is_null_without_decisive_judgments():
    assert stats.item_bootstrap_ci(make_prefs([("a", "r1", "tie", True)] * 2)) is None
    assert stats.item_bootstrap_ci(empty_frames()[0]) is None


def test_stopping_guidance_is_null_once_decided():
    assert stats.stopping_guidance({"candidate": 900, "baseline": 100}, margin=0.05) is None


def _decided(candidate, baseline, margin):
    """The three stopping rules, by hand with scipy's Beta distribution."""
    posterior = beta(1 + candidate, 1 + baseline)
    p_non_inferior = posterior.sf(0.5 - margin)
    lo, hi = posterior.ppf([0.025, 0.975])
    return p_non_inferior >= 0.95 or p_non_inferior <= 0.05 or (hi - lo) / 2 < margin


def test_stopping_guidance_finds_the_smallest_number_reaching_non_inferiority():
    """20 vs 20, margin 0.05: P(p > 0.45) reaches 0.95 when 0.05 / sqrt(0.25 / n) = 1.645,
    n = 271 in all (normal approximation), so about 229 more."""
    guidance = stats.stopping_guidance(
        {"candidate": 20, "baseline": 20, "tie": 3, "both_bad": 0}, margin=0.05
    )
    more = guidance["more_judgments_needed"]
    assert 210 < more < 250
    assert "non-inferior" in guidance["reason"]
    assert _decided(20 + more / 2, 20 + more / 2, 0.05)
    assert not _decided(20 + (more - 1) / 2, 20 + (more - 1) / 2, 0.05)


def test_stopping_guidance_stops_on_interval_width_at_the_margin():
    """At a 45% win rate with margin 0.05 the posterior sits on the boundary; the interval's
    half-width 1.96 sqrt(0.2475 / n) falls under 0.05 near n = 380 in all."""
    guidance = stats.stopping_guidance(
        {"candidate": 45, "baseline": 55, "tie": 0, "both_bad": 0}, margin=0.05
    )
    more = guidance["more_judgments_needed"]
    assert 260 < more < 300
    assert "interval" in guidance["reason"]
    assert _decided(45 + 0.45 * more, 55 + 0.55 * more, 0.05)
    assert not _decided(45 + 0.45 * (more - 1), 55 + 0.55 * (more - 1), 0.05)


def test_stopping_guidance_caps_an_undecidable_campaign():
    guidance = stats.stopping_guidance(
        {"candidate": 5, "baseline": 5, "tie": 0, "both_bad": 0}, margin=0.0
    )
    assert guidance["more_judgments_needed"] == stats.STOPPING_CAP
    assert "not decided" in guidance["reason"]


# --- The report ---------------------------------------------------------------------------------


def _assert_plain_json(value):
    """Only plain Python types, and no NaN anywhere."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            _assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain_json(item)
    else:
        assert value is None or type(value) in (bool, int, float, str)


def test_compute_report_has_the_design_sections_and_plain_json():
    prefs, scores, item_meta = simulated_campaign()
    report = stats.compute_report(prefs, scores, item_meta, rubric=RUBRIC, margin=0.05, seed=1)
    _assert_plain_json(report)
    assert list(report) == [
        "preference",
        "agreement",
        "criteria",
        "position_bias",
        "reviewers",
        "slices",
    ]
    assert list(report["preference"]) == [
        "counts",
        "win_rate",
        "win_rate_ci95",
        "win_rate_ci95_item_bootstrap",
        "p_candidate_better",
        "p_non_inferior",
        "margin",
        "design_effect",
        "length_controlled_win_rate",
        "stopping",
    ]
    assert list(report["preference"]["counts"]) == ["candidate", "baseline", "tie", "both_bad"]
    assert sum(report["preference"]["counts"].values()) == len(prefs)
    assert set(report["agreement"]) == {"preference", "correctness", "refusal_ok", "overall"}
    assert set(report["agreement"]["preference"]) == {
        "krippendorff_alpha",
        "krippendorff_alpha_ci95",
        "fleiss_kappa",
        "fleiss_kappa_ci95",
        "gwet_ac1",
        "gwet_ac1_ci95",
        "percent_agreement",
        "n_units",
    }
    agreement = report["agreement"]["preference"]
    assert agreement["fleiss_kappa"] is not None  # overlap 3 everywhere
    for name in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1"):
        lo, hi = agreement[f"{name}_ci95"]
        assert lo < agreement[name] < hi
    assert report["agreement"]["correctness"]["level"] == "ordinal"
    assert "krippendorff_alpha_interval" in report["agreement"]["overall"]
    assert report["agreement"]["refusal_ok"] == {
        "krippendorff_alpha": pytest.approx(
            report["agreement"]["refusal_ok"]["krippendorff_alpha"]
        ),
        "level": "nominal",
    }
    assert set(report["criteria"]["correctness"]) == {
        "baseline_mean",
        "candidate_mean",
        "mean_diff",
        "mean_diff_ci95",
    }
    assert set(report["criteria"]["overall"]) == {"mean", "ci95"}
    assert set(report["position_bias"]) == {"left_rate", "n", "p_value"}
    assert [row["reviewer"] for row in report["reviewers"]] == [f"r{k}" for k in range(7)]
    assert set(report["slices"]["category"]) == {"billing", "shipping"}
    assert set(report["slices"]["category"]["billing"]) == {
        "n_judgments",
        "win_rate",
        "win_rate_ci95",
        "p_value",
        "p_holm",
    }
    boot = report["preference"]["win_rate_ci95_item_bootstrap"]
    assert boot[0] < report["preference"]["win_rate"] < boot[1]


def test_compute_report_on_empty_frames_is_all_null():
    prefs, scores, item_meta = empty_frames()
    report = stats.compute_report(prefs, scores, item_meta, rubric=RUBRIC, margin=0.05)
    _assert_plain_json(report)
    preference = report["preference"]
    assert preference["counts"] == {"candidate": 0, "baseline": 0, "tie": 0, "both_bad": 0}
    for key in (
        "win_rate",
        "win_rate_ci95",
        "win_rate_ci95_item_bootstrap",
        "length_controlled_win_rate",
    ):
        assert preference[key] is None
    assert report["agreement"]["preference"] == {
        "krippendorff_alpha": None,
        "krippendorff_alpha_ci95": None,
        "fleiss_kappa": None,
        "fleiss_kappa_ci95": None,
        "gwet_ac1": None,
        "gwet_ac1_ci95": None,
        "percent_agreement": None,
        "n_units": 0,
    }
    assert report["agreement"]["correctness"]["krippendorff_alpha"] is None
    assert report["criteria"]["overall"] == {"mean": None, "ci95": None}
    assert report["position_bias"] == {"left_rate": None, "n": 0, "p_value": None}
    assert report["reviewers"] == []
    assert report["slices"] == {}


def test_compute_report_with_a_single_rater_and_only_ties():
    prefs = make_prefs([(f"i{k}", "solo", "tie", k % 2 == 0) for k in range(6)])
    scores = pd.DataFrame(
        [(f"i{k}", "solo", "overall", "pair", 4.0) for k in range(6)],
        columns=["item_id", "reviewer", "criterion", "target", "value"],
    )
    item_meta = pd.DataFrame([("i0", "category", "billing")], columns=["item_id", "key", "value"])
    report = stats.compute_report(prefs, scores, item_meta, rubric=RUBRIC, margin=0.05)
    _assert_plain_json(report)
    assert report["preference"]["win_rate"] is None
    assert report["preference"]["win_rate_ci95_item_bootstrap"] is None  # one judgment per item
    assert report["preference"]["stopping"]["more_judgments_needed"] > 0
    assert all(
        value is None
        for key, value in report["agreement"]["preference"].items()
        if key != "n_units"
    )
    assert report["agreement"]["overall"]["krippendorff_alpha"] is None
    # Six identical scores: no spread seen is not certainty; the interval is that of one item in
    # six moving by half the 1-5 scale.
    overall = report["criteria"]["overall"]
    assert overall["mean"] == 4.0
    assert overall["ci95"][0] < 4.0 < overall["ci95"][1]
    assert report["reviewers"] == [
        {"reviewer": "solo", "n": 6, "median_seconds": 30.0, "agreement_with_others": None}
    ]
    assert report["slices"]["category"]["billing"]["p_value"] is None
    assert report["slices"]["category"]["billing"]["p_holm"] is None


def _flatten(value, path=""):
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in _flatten(item, f"{path}/{key}").items()
        }
    if isinstance(value, list):
        return {
            k: v for n, item in enumerate(value) for k, v in _flatten(item, f"{path}/{n}").items()
        }
    return {path: value}


def test_compute_report_accepts_integer_and_categorical_ids():
    prefs, scores, item_meta = simulated_campaign(n_items=60)
    expected = _flatten(stats.compute_report(prefs, scores, item_meta, rubric=RUBRIC, margin=0.05))
    as_numbers = {f"i{k}": k for k in range(60)}
    prefs_int = prefs.assign(item_id=prefs["item_id"].map(as_numbers))
    scores_cat = scores.assign(
        item_id=scores["item_id"].map(as_numbers),
        criterion=scores["criterion"].astype("category"),
        reviewer=scores["reviewer"].astype("category"),
    )
    meta_int = item_meta.assign(item_id=item_meta["item_id"].map(as_numbers))
    report = stats.compute_report(prefs_int, scores_cat, meta_int, rubric=RUBRIC, margin=0.05)
    assert _flatten(report) == pytest.approx(expected)


# --- Design-aware uncertainty (reviews/reports/uncertainty.py) ---------------------------------


def test_cluster_variance_equals_statsmodels_one_and_two_way_clustering():
    """Cameron, Gelbach & Miller (2011) as statsmodels implements it: a mean's variance clustered
    by item, and by item and reviewer (each item graded once by 3 of 12 reviewers)."""
    import statsmodels.api as sm
    from statsmodels.stats.sandwich_covariance import cov_cluster, cov_cluster_2groups

    from reviews.reports import uncertainty

    rng = np.random.default_rng(0)
    items = np.repeat(np.arange(60), 3)
    reviewers = (items + np.tile(np.arange(3), 60) * 4) % 12
    y = rng.normal(size=len(items)) + items * 0.05 + reviewers * 0.1
    fit = sm.OLS(y, np.ones(len(y))).fit()
    ones = np.ones(len(y))
    by_item = uncertainty.ratio_variance(y, ones, items=items)[1]
    assert by_item == pytest.approx(cov_cluster(fit, items)[0, 0])
    two_way, _, _ = cov_cluster_2groups(fit, items, reviewers)
    _, variance, details = uncertainty.ratio_variance(y, ones, items=items, reviewers=reviewers)
    assert details["design"] == "items and reviewers"
    assert variance == pytest.approx(two_way[0, 0])


def test_few_reviewers_cluster_on_items_only():
    from reviews.reports import uncertainty

    items = np.repeat(np.arange(20), 3)
    reviewers = np.tile(np.arange(3), 20)
    y = np.random.default_rng(1).normal(size=60)
    _, variance, details = uncertainty.ratio_variance(
        y, np.ones(60), items=items, reviewers=reviewers
    )
    assert details["design"] == "items"
    assert variance == uncertainty.ratio_variance(y, np.ones(60), items=items)[1]


def test_win_rate_interval_widens_when_judgments_of_an_item_agree():
    """Three reviewers who always agree on an item carry one item's evidence, not three
    judgments': the design effect is ~3 and the interval as wide as with one judgment per item."""
    rows = []
    for i in range(40):
        choice = "candidate" if i % 5 else "baseline"
        rows += [(f"i{i}", f"r{j}", choice, True) for j in range(3)]
    clustered = stats.preference_uncertainty(make_prefs(rows), margin=0.05)
    single = stats.preference_uncertainty(make_prefs(rows[::3]), margin=0.05)
    assert clustered["rate"] == single["rate"] == 0.8
    assert clustered["design_effect"] / single["design_effect"] == pytest.approx(3)
    width = clustered["ci95"][1] - clustered["ci95"][0]
    assert width == pytest.approx(single["ci95"][1] - single["ci95"][0], rel=0.05)
    wilson = stats.wilson_interval(96, 120)
    assert width > 1.5 * (wilson[1] - wilson[0])


def test_every_judgment_for_the_candidate_is_not_certainty():
    prefs = make_prefs([(f"i{i}", f"r{j}", "candidate", True) for i in range(10) for j in range(3)])
    design = stats.preference_uncertainty(prefs, margin=0.05)
    lo, hi = design["ci95"]
    assert hi == 1.0
    assert 0.8 < lo < 1.0
    bootstrap = stats.item_bootstrap_ci(prefs)
    assert bootstrap != [1.0, 1.0]
    assert bootstrap[0] < 1.0
    assert design["p_non_inferior"] < 1.0


def test_no_decisive_judgment_gives_no_probability_not_the_prior():
    report = stats.compute_report(*empty_frames(), rubric=RUBRIC, margin=0.05)
    assert report["preference"]["p_non_inferior"] is None
    assert report["preference"]["p_candidate_better"] is None
    ties = make_prefs([("a", "r1", "tie", True), ("b", "r1", "both_bad", True)])
    assert stats.preference_uncertainty(ties, margin=0.05)["p_non_inferior"] is None


def test_one_single_reviewer_item_leaves_fleiss_kappa_defined():
    rows = [(f"i{i}", f"r{j}", ("candidate", "baseline")[(i + j) % 2 * (i % 3 == 0)], True)
            for i in range(12) for j in range(3)]  # fmt: skip
    rows.append(("lonely", "r0", "tie", True))
    agreement = stats.preference_agreement(make_prefs(rows))
    assert agreement["fleiss_kappa"] is not None
    # Without the lonely item, equal raters everywhere: Fleiss (1971) as statsmodels has it.
    equal = stats.preference_agreement(make_prefs(rows[:-1]))
    table = np.zeros((12, 4))
    for item, _, pref, _ in rows[:-1]:
        table[int(item[1:]), stats.PREFERENCES.index(pref)] += 1
    assert equal["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa(table))


def test_agreement_intervals_equal_resampling_items_directly():
    """The pooled multinomial bootstrap draws the same replicates as resampling the table's rows
    with the same counts."""
    rng = np.random.default_rng(3)
    table = np.zeros((30, 4))
    for unit in range(30):
        for _ in range(3):
            table[unit, rng.choice(4, p=[0.5, 0.3, 0.15, 0.05]) if unit % 4 else 0] += 1
    intervals = stats.agreement_intervals(table, n_boot=400, seed=9)
    patterns, sizes = stats._pooled_rows(table)
    assert {tuple(row) for row in patterns} == {tuple(row) for row in np.unique(table, axis=0)}
    draws = np.random.default_rng(9).multinomial(30, sizes / 30, size=400)
    direct = {"krippendorff_alpha": [], "fleiss_kappa": [], "gwet_ac1": []}
    for w in draws:
        resampled = np.repeat(patterns, w, axis=0)
        direct["krippendorff_alpha"].append(
            stats.krippendorff_alpha_counts(resampled, np.arange(4), "nominal")
        )
        direct["fleiss_kappa"].append(stats.fleiss_kappa_unequal(resampled))
        direct["gwet_ac1"].append(stats.gwet_ac1(resampled, n_categories=4))
    for name, values in direct.items():
        values = np.array([np.nan if v is None else v for v in values])
        expected = np.quantile(values[np.isfinite(values)], [0.025, 0.975])
        assert intervals[name] == pytest.approx(list(expected)), name
