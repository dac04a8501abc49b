"""Tests for reviews.reports.calibration: judge-vs-human calibration statistics (no Django)."""

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special, stats

from reviews.reports.calibration import (
    Posterior,
    calibrate_criterion,
    calibrate_preference,
    calibrate_system,
    confusion_counts,
    criterion_verdict,
    decision,
    difference,
    labels_to_request,
    ppi_mean_estimate,
    rogan_gladen,
    theta_posterior,
)

DESIGN_KEYS = {
    "tp",
    "fn",
    "fp",
    "tn",
    "n_judge_only",
    "k_judge_positive",
    "sensitivity",
    "specificity",
    "rogan_gladen",
    "posterior_mean",
    "ci95",
    "judge_no_better_than_chance",
}


def simulate(rng, *, theta, se, sp, n_labelled, n_judge_only):
    """Human verdicts ~ Bernoulli(theta); judge verdict | human from Se / Sp."""
    human = rng.random(n_labelled) < theta
    judge = np.where(human, rng.random(n_labelled) < se, rng.random(n_labelled) < 1 - sp)
    human_u = rng.random(n_judge_only) < theta
    judge_u = np.where(human_u, rng.random(n_judge_only) < se, rng.random(n_judge_only) < 1 - sp)
    return human, judge, judge_u


def exact_mixture(tp, fn, fp, tn, n, k):
    """Exact marginal posterior of theta as a finite mixture of Betas.

    Expanding pi^k (1-pi)^(n-k) binomially, with pi = theta Se + (1-theta)(1-Sp) and
    1-pi = theta (1-Se) + (1-theta) Sp, every term integrates to a product of Beta functions
    (the standard closed form for a latent-class model with a partially verified test).
    Returns (log weights, alpha, beta) of the Beta components.
    """
    m = n - k
    logw, alpha, beta = [], [], []
    for a in range(k + 1):
        for b in range(m + 1):
            logw.append(
                math.log(math.comb(k, a))
                + math.log(math.comb(m, b))
                + special.betaln(tp + a + 1, fn + b + 1)
                + special.betaln(tn + m - b + 1, fp + k - a + 1)
                + special.betaln(tp + fn + a + b + 1, fp + tn + n - a - b + 1)
            )
            alpha.append(tp + fn + a + b + 1)
            beta.append(fp + tn + n - a - b + 1)
    logw = np.array(logw)
    w = np.exp(logw - special.logsumexp(logw))
    return w, np.array(alpha, float), np.array(beta, float)


# --------------------------------------------------------------------------- counts / RG / PPI
def test_confusion_counts_rows_are_human_truth():
    human = [True, True, True, False, False, True, False]
    judge = [True, False, True, True, False, True, False]
    assert confusion_counts(human, judge) == {"tp": 3, "fn": 1, "fp": 1, "tn": 2}
    with pytest.raises(ValueError, match="same length"):
        confusion_counts([True], [True, False])


def test_rogan_gladen_classical_worked_example():
    """Rogan & Gladen (1978) Am J Epidemiol 107:71-76: TP = (AP + Sp - 1) / (Se + Sp - 1).

    Classical textbook example: apparent prevalence 0.1, Se 0.9, Sp 0.95 -> true prevalence
    0.0588. Verified by hand: (0.1 + 0.95 - 1) / (0.9 + 0.95 - 1) = 0.05 / 0.85 = 1/17
    = 0.05882353.
    """
    assert rogan_gladen(0.1, 0.9, 0.95) == pytest.approx(1 / 17, abs=1e-12)
    assert round(rogan_gladen(0.1, 0.9, 0.95), 4) == 0.0588
    # A perfect test returns the apparent prevalence unchanged.
    assert rogan_gladen(0.37, 1.0, 1.0) == pytest.approx(0.37)


def test_rogan_gladen_negative_estimate_is_clipped_and_chance_is_none():
    """The negative-estimate example of the iSIKHNAS Advanced Field Epidemiology Manual 2
    (Diagnostic Tests): Sp 0.9, 4 positives of 150 tested -> AP = 0.0267 and AP + Sp - 1 < 0 for
    any Se, so the raw formula is negative; we clip to 0. By hand with Se = 0.95:
    (0.02667 - 0.1) / 0.85 = -0.0863 -> 0. A test with Se + Sp <= 1 gives None; an estimate
    above 1 (AP 0.99, Se 0.9, Sp 0.9: 0.89 / 0.8 = 1.1125) is clipped to 1.
    """
    assert rogan_gladen(4 / 150, 0.95, 0.9) == 0.0
    assert rogan_gladen(0.99, 0.9, 0.9) == 1.0
    assert rogan_gladen(0.3, 0.5, 0.5) is None
    assert rogan_gladen(0.3, 0.4, 0.3) is None
    with pytest.raises(ValueError, match="se"):
        rogan_gladen(0.3, 1.2, 0.5)


def test_ppi_mean_worked_example_by_hand():
    """Angelopoulos et al. (2023) Science 382:669-674, prediction-powered mean:
    theta_PP = mean(f(X~)) - mean(f(X) - Y), CI theta_PP +/- z sqrt(var(f~)/N + var(f - Y)/n).

    By hand: Y = (1, 0, 1, 1), f(X) = (1, 1, 1, 1), f(X~) = (1, 0, 1, 1, 1, 0, 1, 1).
    mean f~ = 6/8 = 0.75; rectifier f - Y = (0, 1, 0, 0), mean 0.25; theta_PP = 0.5.
    var f~ = 0.75 * 0.25 = 0.1875, var(f - Y) = 0.25 * 0.75 = 0.1875 (ddof 0, as ppi_py);
    se = sqrt(0.1875/8 + 0.1875/4) = sqrt(0.0703125) = 0.2651650;
    CI = 0.5 +/- 1.959964 * 0.2651650 = 0.5 +/- 0.5197139 -> (-0.0197139, 1.0197139).
    """
    r = ppi_mean_estimate([1, 0, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1, 1, 0, 1, 1])
    assert r["estimate"] == pytest.approx(0.5)
    assert r["se"] == pytest.approx(0.2651650, abs=1e-7)
    assert r["ci"] == pytest.approx((-0.0197139, 1.0197139), abs=1e-6)


def test_posterior_mean_agrees_with_ppi_on_large_simulation():
    """PPI (Angelopoulos et al. 2023) and the latent-class posterior estimate the same human pass
    rate. On 2000 labelled + 50000 judge-only simulated items (theta 0.7, Se 0.85, Sp 0.8) the
    two point estimates must agree within one PPI standard error, and each must cover the truth.
    """
    rng = np.random.default_rng(2023)
    human, judge, judge_u = simulate(
        rng, theta=0.7, se=0.85, sp=0.8, n_labelled=2000, n_judge_only=50_000
    )
    ppi = ppi_mean_estimate(human, judge, judge_u)
    post = theta_posterior(
        **confusion_counts(human, judge),
        n_judge_only=len(judge_u),
        k_judge_positive=int(judge_u.sum()),
    )
    assert abs(post.mean - ppi["estimate"]) < ppi["se"]
    assert ppi["ci"][0] <= 0.7 <= ppi["ci"][1]
    assert post.ci95[0] <= 0.7 <= post.ci95[1]
    assert ppi["ci"][0] < post.mean < ppi["ci"][1]


# --------------------------------------------------------------------------- grid posterior
def test_grid_posterior_matches_triple_integral_on_tiny_counts():
    """Brute force with scipy.integrate.tplquad of the unnormalised posterior over [0, 1]^3."""
    tp, fn, fp, tn, n, k = 2, 1, 1, 1, 3, 2

    def density(sp, se, th, power=0):
        pi = th * se + (1 - th) * (1 - sp)
        lik = th ** (tp + fn) * (1 - th) ** (fp + tn) * se**tp * (1 - se) ** fn
        lik *= sp**tn * (1 - sp) ** fp * pi**k * (1 - pi) ** (n - k)
        return th**power * lik

    z = integrate.tplquad(density, 0, 1, 0, 1, 0, 1, epsabs=1e-12)[0]
    first = integrate.tplquad(lambda *a: density(*a, power=1), 0, 1, 0, 1, 0, 1, epsabs=1e-12)
    below = integrate.tplquad(density, 0, 0.4, 0, 1, 0, 1, epsabs=1e-12)[0]
    post = theta_posterior(tp=tp, fn=fn, fp=fp, tn=tn, n_judge_only=n, k_judge_positive=k)
    assert post.mean == pytest.approx(first[0] / z, abs=2e-4)
    assert post.cdf(0.4) == pytest.approx(below / z, abs=5e-4)


def test_grid_posterior_matches_exact_beta_mixture():
    """Exact closed form (binomial expansion into Beta functions) for moderate counts: mean,
    CDF and the 95% equal-tailed interval of the theta marginal."""
    tp, fn, fp, tn, n, k = 9, 3, 2, 6, 24, 15
    w, a, b = exact_mixture(tp, fn, fp, tn, n, k)
    exact_mean = float(w @ (a / (a + b)))

    def cdf(x):
        return float(w @ special.betainc(a, b, x))

    lo = optimize.brentq(lambda x: cdf(x) - 0.025, 1e-9, 1 - 1e-9)
    hi = optimize.brentq(lambda x: cdf(x) - 0.975, 1e-9, 1 - 1e-9)
    post = theta_posterior(tp=tp, fn=fn, fp=fp, tn=tn, n_judge_only=n, k_judge_positive=k)
    assert post.mean == pytest.approx(exact_mean, abs=2e-4)
    for x in (0.3, 0.5, 0.6, 0.8):
        assert post.cdf(x) == pytest.approx(cdf(x), abs=1e-3)
    assert post.ci95 == pytest.approx((lo, hi), abs=2e-3)
    assert sum(post.probs) == pytest.approx(1.0)


@pytest.mark.parametrize(("tp", "fn", "fp", "tn"), [(30, 10, 5, 15), (3000, 1000, 500, 1500)])
def test_no_judge_only_items_gives_the_conjugate_beta(tp, fn, fp, tn):
    """With N = 0 the theta marginal is exactly Beta(TP + FN + 1, FP + TN + 1). The large case
    (posterior sd 0.006, about one grid cell) checks the histogram reading of the interval."""
    post = theta_posterior(tp=tp, fn=fn, fp=fp, tn=tn, n_judge_only=0, k_judge_positive=0)
    beta = stats.beta(tp + fn + 1, fp + tn + 1)
    assert post.mean == pytest.approx(beta.mean(), abs=1e-4)
    assert post.ci95 == pytest.approx(beta.ppf([0.025, 0.975]), abs=1e-3)


def test_no_data_at_all_gives_the_uniform_prior():
    post = theta_posterior(tp=0, fn=0, fp=0, tn=0, n_judge_only=0, k_judge_positive=0)
    assert post.mean == pytest.approx(0.5)
    assert post.ci95 == pytest.approx((0.025, 0.975))


def test_judge_only_data_narrow_the_interval_when_the_judge_is_good():
    few = theta_posterior(tp=40, fn=2, fp=1, tn=17, n_judge_only=0, k_judge_positive=0)
    many = theta_posterior(tp=40, fn=2, fp=1, tn=17, n_judge_only=5000, k_judge_positive=3500)
    # Widths 0.227 -> 0.130: the judge's own Se / Sp uncertainty (60 labels) limits the gain.
    assert many.ci95[1] - many.ci95[0] < 0.7 * (few.ci95[1] - few.ci95[0])
    assert many.mean == pytest.approx(0.70, abs=0.02)


def test_invalid_counts_are_rejected():
    with pytest.raises(ValueError, match="exceed"):
        theta_posterior(tp=1, fn=1, fp=1, tn=1, n_judge_only=3, k_judge_positive=4)
    with pytest.raises(ValueError, match="non-negative"):
        theta_posterior(tp=-1, fn=1, fp=1, tn=1, n_judge_only=3, k_judge_positive=1)


def test_monte_carlo_coverage_of_the_95_interval():
    """Frequentist coverage of the 95% credible interval: 200 seeded datasets with theta 0.7,
    Se 0.85, Sp 0.8, 150 human-labelled and 2000 judge-only items; coverage must be in
    [0.90, 0.99] (binomial sd of the estimate at 0.95 is 0.015). Coarse grid for speed."""
    rng = np.random.default_rng(20240601)
    covered = 0
    for _ in range(200):
        human, judge, judge_u = simulate(
            rng, theta=0.7, se=0.85, sp=0.8, n_labelled=150, n_judge_only=2000
        )
        post = theta_posterior(
            **confusion_counts(human, judge),
            n_judge_only=2000,
            k_judge_positive=int(judge_u.sum()),
            grid=101,
            nuisance_grid=41,
        )
        covered += post.ci95[0] <= 0.7 <= post.ci95[1]
    assert 0.90 <= covered / 200 <= 0.99


def test_default_grid_is_fast():
    kwargs = {"tp": 900, "fn": 150, "fp": 90, "tn": 360, "n_judge_only": 100_000}
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        theta_posterior(**kwargs, k_judge_positive=65_000)
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=4, max_size=4),
    n=st.integers(0, 500),
    frac=st.floats(0, 1),
)
def test_posterior_is_a_proper_distribution(counts, n, frac):
    tp, fn, fp, tn = counts
    k = round(frac * n)
    post = theta_posterior(
        tp=tp, fn=fn, fp=fp, tn=tn, n_judge_only=n, k_judge_positive=k, grid=81, nuisance_grid=31
    )
    assert np.all(post.probs >= 0)
    assert post.probs.sum() == pytest.approx(1.0)
    lo, hi = post.ci95
    assert 0.0 <= lo <= post.mean <= hi <= 1.0
    assert 0.0 <= post.se_mean <= 1.0
    assert 0.0 <= post.sp_mean <= 1.0


# --------------------------------------------------------------------------- report entries
def test_calibrate_system_has_exactly_the_design_keys_and_is_json():
    out = calibrate_system(tp=90, fn=15, fp=9, tn=36, n_judge_only=2000, k_judge_positive=1300)
    assert set(out) == DESIGN_KEYS
    json.dumps(out)
    assert out["sensitivity"] == pytest.approx(90 / 105)
    assert out["specificity"] == pytest.approx(36 / 45)
    # p_obs over all 2150 items: (90 + 9 + 1300) / 2150.
    expected_rg = rogan_gladen(1399 / 2150, 90 / 105, 36 / 45)
    assert out["rogan_gladen"] == pytest.approx(expected_rg)
    assert out["ci95"][0] < out["posterior_mean"] < out["ci95"][1]
    assert out["posterior_mean"] == pytest.approx(out["rogan_gladen"], abs=0.03)
    assert out["judge_no_better_than_chance"] is False


def test_judge_no_better_than_chance_is_flagged():
    worse = calibrate_system(tp=5, fn=5, fp=6, tn=4, n_judge_only=50, k_judge_positive=25)
    assert worse["sensitivity"] + worse["specificity"] == pytest.approx(0.9)
    assert worse["judge_no_better_than_chance"] is True
    assert worse["rogan_gladen"] is None
    coin = calibrate_system(tp=5, fn=5, fp=5, tn=5, n_judge_only=0, k_judge_positive=0)
    assert coin["judge_no_better_than_chance"] is True
    undefined = calibrate_system(tp=0, fn=0, fp=3, tn=7, n_judge_only=10, k_judge_positive=2)
    assert undefined["sensitivity"] is None
    assert undefined["rogan_gladen"] is None
    assert undefined["judge_no_better_than_chance"] is False


def test_a_judge_that_never_passes_a_human_pass_is_no_better_than_chance():
    """Sensitivity 0 with no human fails (specificity undefined): Se + Sp <= 1 whatever Sp is."""
    never = calibrate_system(tp=0, fn=8, fp=0, tn=0, n_judge_only=20, k_judge_positive=0)
    assert never["sensitivity"] == 0
    assert never["specificity"] is None
    assert never["judge_no_better_than_chance"] is True
    always = calibrate_system(tp=0, fn=0, fp=6, tn=0, n_judge_only=0, k_judge_positive=0)
    assert always["specificity"] == 0
    assert always["judge_no_better_than_chance"] is True


def test_pairwise_judge_calibration_against_the_majority():
    human = dict.fromkeys(range(30), "candidate") | dict.fromkeys(range(30, 40), "baseline")
    human |= {40: "tie"}
    judge = dict(human)
    judge[0], judge[35], judge[40] = "baseline", "candidate", "both_bad"
    judge |= {100 + i: "candidate" for i in range(10)}  # judged only by the judge
    result = calibrate_preference(human, judge, margin=0.05)
    assert result["confusion"]["candidate"] == {
        "candidate": 29, "baseline": 1, "tie": 0, "both_bad": 0
    }  # fmt: skip
    assert result["confusion"]["tie"]["both_bad"] == 1
    assert result["judge_accuracy"] == pytest.approx(38 / 41)
    # Wilson (1927) by hand.
    z, n, p = 1.959963984540054, 41, 38 / 41
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert result["judge_accuracy_ci95"] == pytest.approx([centre - half, centre + half])
    # The win rate is the latent-class posterior with "candidate" as the positive verdict.
    expected = theta_posterior(tp=29, fn=1, fp=1, tn=9, n_judge_only=10, k_judge_positive=10)
    assert result["win_rate"] == pytest.approx(expected.mean)
    assert result["win_rate_ci95"] == pytest.approx(list(expected.ci95))
    assert result["p_non_inferior"] == pytest.approx(1 - expected.cdf(0.45))
    assert calibrate_preference(human, {999: "candidate"}, margin=0.05) is None


# --------------------------------------------------------------------------- difference
def one_hot(i, size=11):
    probs = np.zeros(size)
    probs[i] = 1.0
    return Posterior(grid=np.arange(size) / (size - 1), probs=probs)


def test_difference_of_point_masses_and_sign_flip():
    """Baseline at 0.5, candidate at 0.6: D = +0.1 (histogram cell [0.05, 0.15]).
    Higher is better: the candidate is superior. Lower is better (a bad-event rate): the
    candidate is worse; non-inferior only if the margin covers the increase."""
    base, cand = one_hot(5), one_hot(6)
    up = difference(base, cand, margin=0.05)
    assert up["posterior_mean"] == pytest.approx(0.1)
    assert up["ci95"] == pytest.approx([0.0525, 0.1475])
    assert up["p_superior"] == pytest.approx(1.0)
    assert up["p_non_inferior"] == pytest.approx(1.0)
    down = difference(base, cand, margin=0.05, lower_is_better=True)
    assert down["posterior_mean"] == pytest.approx(0.1)  # still candidate - baseline
    assert down["ci95"] == up["ci95"]
    assert down["p_superior"] == pytest.approx(0.0)
    assert down["p_non_inferior"] == pytest.approx(0.0)
    assert difference(base, cand, margin=0.2, lower_is_better=True)["p_non_inferior"] == 1.0
    assert difference(base, cand, margin=0.1, lower_is_better=True)[
        "p_non_inferior"
    ] == pytest.approx(0.5)


def test_difference_matches_monte_carlo_and_swap_symmetry():
    base = theta_posterior(tp=60, fn=10, fp=8, tn=22, n_judge_only=800, k_judge_positive=520)
    cand = theta_posterior(tp=55, fn=12, fp=10, tn=23, n_judge_only=800, k_judge_positive=500)
    d = difference(base, cand, margin=0.05)
    rng = np.random.default_rng(7)
    draws = cand.sample(400_000, rng) - base.sample(400_000, rng)
    assert d["posterior_mean"] == pytest.approx(cand.mean - base.mean, abs=1e-12)
    assert d["posterior_mean"] == pytest.approx(draws.mean(), abs=1e-3)
    assert d["p_non_inferior"] == pytest.approx(np.mean(draws > -0.05), abs=5e-3)
    assert d["p_superior"] == pytest.approx(np.mean(draws > 0), abs=5e-3)
    assert d["ci95"] == pytest.approx(np.quantile(draws, [0.025, 0.975]), abs=3e-3)
    # lower_is_better on (base, cand) == higher_is_better with the roles swapped.
    flipped = difference(base, cand, margin=0.05, lower_is_better=True)
    swapped = difference(cand, base, margin=0.05)
    assert flipped["p_non_inferior"] == pytest.approx(swapped["p_non_inferior"], abs=1e-12)
    assert flipped["p_superior"] == pytest.approx(swapped["p_superior"], abs=1e-12)
    assert flipped["p_superior"] == pytest.approx(1 - d["p_superior"], abs=1e-12)


def test_difference_requires_a_shared_grid():
    a = theta_posterior(tp=1, fn=1, fp=1, tn=1, n_judge_only=0, k_judge_positive=0, grid=101)
    b = theta_posterior(tp=1, fn=1, fp=1, tn=1, n_judge_only=0, k_judge_positive=0, grid=51)
    with pytest.raises(ValueError, match="grid"):
        difference(a, b, margin=0.05)
    with pytest.raises(ValueError, match="margin"):
        difference(a, a, margin=-0.1)


@pytest.mark.parametrize(
    ("p", "threshold", "expected"),
    [
        (0.95, 0.95, "pass"),
        (0.9499, 0.95, "uncertain"),
        (0.5, 0.95, "uncertain"),
        (0.0501, 0.95, "uncertain"),
        (0.05, 0.95, "fail"),
        (0.0, 0.95, "fail"),
        (0.9, 0.9, "pass"),
        (0.1, 0.9, "fail"),
        (0.97, 0.99, "uncertain"),
    ],
)
def test_criterion_verdict_thresholds(p, threshold, expected):
    assert criterion_verdict(p, threshold=threshold) == expected


def test_criterion_verdict_rejects_silly_thresholds():
    with pytest.raises(ValueError, match="threshold"):
        criterion_verdict(0.9, threshold=0.4)


# --------------------------------------------------------------------------- decision
def fake(p_non_inferior, critical):
    return {"difference": {"p_non_inferior": p_non_inferior}, "critical": critical}


def test_decision_logic():
    ok, bad, unsure = 0.99, 0.01, 0.5
    assert decision({"a": fake(ok, True), "b": fake(ok, True), "c": fake(bad, False)}) == {
        "verdict": "migrate",
        "threshold": 0.95,
        "more_labels_needed": None,
    }
    assert (
        decision({"a": fake(ok, True), "b": fake(bad, True), "c": fake(unsure, True)})["verdict"]
        == "do_not_migrate"
    )
    # No critical criterion: every criterion gates.
    assert decision({"a": fake(ok, False), "b": fake(bad, False)})["verdict"] == "do_not_migrate"
    assert decision({"a": fake(ok, False), "b": fake(ok, False)})["verdict"] == "migrate"
    # The threshold is applied afresh.
    assert decision({"a": fake(0.92, True)}, threshold=0.9)["verdict"] == "migrate"
    empty = decision({})
    assert empty["verdict"] == "need_more_labels"
    assert empty["more_labels_needed"] is None


def add_expected_labels(counts, n):
    """Move n judge-only items to labelled, at the generating rates (theta .8, Se .9, Sp .85)."""
    theta, se, sp = 0.8, 0.9, 0.85
    out = dict(counts)
    tp, fn = round(n * theta * se), round(n * theta * (1 - se))
    fp, tn = round(n * (1 - theta) * (1 - sp)), round(n * (1 - theta) * sp)
    out.update(tp=out["tp"] + tp, fn=out["fn"] + fn, fp=out["fp"] + fp, tn=out["tn"] + tn)
    out["n_judge_only"] -= tp + fn + fp + tn
    out["k_judge_positive"] -= tp + fp
    return out


def test_decision_estimates_more_labels_of_the_right_size():
    """Both systems at theta 0.8 (Se .9, Sp .85), 40 labels each: non-inferiority at a 0.05
    margin is uncertain (P = 0.78). The preposterior estimate n (a doubling search, so within a
    factor 2) must be reproducible; adding 2n labels at the expected rates must settle the
    criterion while n/4 must not."""
    counts = {"tp": 29, "fn": 3, "fp": 1, "tn": 7, "n_judge_only": 4000, "k_judge_positive": 2980}
    crit = calibrate_criterion(counts, counts, margin=0.05, critical=True)
    assert crit["verdict"] == "uncertain"
    out = decision({"x": crit}, margin=0.05)
    assert out["verdict"] == "need_more_labels"
    n = out["more_labels_needed"]
    assert isinstance(n, int)
    assert n >= 20
    assert decision({"x": crit}, margin=0.05) == out
    bigger = add_expected_labels(counts, 2 * n)
    assert calibrate_criterion(bigger, bigger, margin=0.05)["verdict"] == "pass"
    smaller = add_expected_labels(counts, n // 4)
    assert calibrate_criterion(smaller, smaller, margin=0.05)["verdict"] == "uncertain"
    assert decision({"x": crit}, margin=0.05, max_labels=10)["more_labels_needed"] is None


# --------------------------------------------------------------------------- labels_to_request
def test_labels_to_request_follows_the_larger_uncertainty():
    """theta 0.5, 200 labels. A judge with Se 0.7 / Sp 0.97 (judge-positive rate 0.365): Se is
    the larger error source (posterior theta sd(Se) = 0.018 vs (1-theta) sd(Sp) = 0.009), so the
    target human-positive share is 0.67; with PPV 0.95 and FO 0.24 the judge-positive share is
    (0.67 - 0.24) / (0.95 - 0.24) = 0.60, far above the proportional 0.365. The mirror-image
    judge mirrors the allocation."""
    judge = [True] * 365 + [False] * 635
    se_unsure = theta_posterior(tp=70, fn=30, fp=3, tn=97, n_judge_only=1000, k_judge_positive=365)
    pick = labels_to_request(judge, 100, posterior=se_unsure, seed=1)
    assert pick["judge_positive"] + pick["judge_negative"] == 100
    assert 55 <= pick["judge_positive"] <= 65
    assert len(set(pick["indices"])) == 100
    assert sum(judge[i] for i in pick["indices"]) == pick["judge_positive"]
    assert labels_to_request(judge, 100, posterior=se_unsure, seed=1) == pick
    judge = [True] * 635 + [False] * 365
    sp_unsure = theta_posterior(tp=97, fn=3, fp=30, tn=70, n_judge_only=1000, k_judge_positive=635)
    pick = labels_to_request(judge, 100, posterior=sp_unsure, seed=1)
    assert 55 <= pick["judge_negative"] <= 65


def test_labels_to_request_respects_stratum_sizes():
    judge = [True] * 3 + [False] * 50
    se_unsure = theta_posterior(tp=6, fn=2, fp=15, tn=180, n_judge_only=53, k_judge_positive=3)
    pick = labels_to_request(judge, 20, posterior=se_unsure)
    assert pick["judge_positive"] == 3
    assert pick["judge_negative"] == 17
    everything = labels_to_request(judge, 500, posterior=se_unsure)
    assert everything["indices"] == list(range(53))
    with pytest.raises(ValueError, match="Se / Sp"):
        labels_to_request(judge, 5, posterior=one_hot(3))


# --------------------------------------------------------------------------- the decision section
def test_decide_rests_on_the_lowest_probability_of_what_gates():
    from reviews.reports.decision import decide, probability_text

    common = {"threshold": 0.95, "more_labels_needed": 30}
    made = decide(
        basis="human", preference=0.97, preference_gates=True, criteria={"c": 0.99}, **common
    )
    assert made["verdict"] == "migrate"
    assert made["probability"] == 0.97
    assert made["more_labels_needed"] is None  # decided: no more labels
    assert made["criteria"] == {"c": {"p_non_inferior": 0.99, "verdict": "pass"}}
    worse = decide(
        basis="human", preference=0.97, preference_gates=True, criteria={"c": 0.01}, **common
    )
    assert worse["verdict"] == "do_not_migrate"
    # The preference reported but not gating (a calibrated campaign without a pairwise judge).
    calibrated = decide(
        basis="calibrated", preference=0.2, preference_gates=False, criteria={"c": 0.99}, **common
    )
    assert (calibrated["verdict"], calibrated["probability"]) == ("migrate", 0.99)
    nothing = decide(basis="human", preference=None, preference_gates=True, criteria={}, **common)
    assert nothing["verdict"] == "need_more_labels"
    assert nothing["probability"] is None
    assert nothing["more_labels_needed"] == 30
    assert [probability_text(p) for p in (0.99996, 0.9994, 0.0001, None)] == [
        "> 0.999", "0.999", "< 0.001", "n/a"
    ]  # fmt: skip
