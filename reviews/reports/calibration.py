"""Calibrating an automated judge (LLM-as-judge) against human labels.

Pure statistics (numpy / scipy only, no Django). Conventions: *positive* means "pass"; confusion
counts have human truth as rows, so TP = human pass & judge pass, FN = human pass & judge fail,
FP = human fail & judge pass, TN = human fail & judge fail.

Model (Bayesian latent-class model with a partially verified test, cf. Joseph, Gyorkos & Coupal
1995, Am J Epidemiol 141:263-272): the human pass rate theta, judge sensitivity Se and specificity
Sp have independent Beta(1, 1) priors. Items with both verdicts contribute
``theta^(TP+FN) (1-theta)^(FP+TN) Se^TP (1-Se)^FN Sp^TN (1-Sp)^FP`` and the N judge-only items, k of
them judged positive, contribute ``pi^k (1-pi)^(N-k)`` with ``pi = theta Se + (1-theta)(1-Sp)``.
The posterior is computed exactly on a grid (midpoint rule, log space), no sampling.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

COUNT_KEYS = ("tp", "fn", "fp", "tn", "n_judge_only", "k_judge_positive")
_TAIL = 1e-7  # nuisance axes span the Beta quantiles [_TAIL, 1 - _TAIL] of the labelled data


# --------------------------------------------------------------------------- lattice helpers
def _edges_cum(values: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and CDF at the edges, reading the pmf as a histogram (uniform within a cell)."""
    h = float(values[1] - values[0])
    edges = np.concatenate([[values[0] - h / 2], values + h / 2])
    cum = np.concatenate([[0.0], np.cumsum(probs)])
    cum /= cum[-1]
    return edges, cum


def _cdf(values: np.ndarray, probs: np.ndarray, x: float) -> float:
    edges, cum = _edges_cum(values, probs)
    return float(np.interp(x, edges, cum))


def _quantile(values: np.ndarray, probs: np.ndarray, q: float) -> float:
    edges, cum = _edges_cum(values, probs)
    q = min(max(q, 1e-12), 1.0)
    i = int(np.searchsorted(cum, q, side="left"))
    i = min(max(i, 1), len(cum) - 1)
    frac = (q - cum[i - 1]) / (cum[i] - cum[i - 1])
    return float(edges[i - 1] + frac * (edges[i] - edges[i - 1]))


def _ci95(values: np.ndarray, probs: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    a, b = _quantile(values, probs, 0.025), _quantile(values, probs, 0.975)
    return (min(max(a, lo), hi), min(max(b, lo), hi))


@dataclass(frozen=True, eq=False)
class Posterior:
    """Marginal posterior of theta as a pmf on an evenly spaced grid of cell midpoints.

    Quantiles and the CDF read the pmf as a histogram (each grid cell uniformly filled).
    ``se_mean``/``se_var``/``sp_mean``/``sp_var`` are posterior moments of the judge's
    sensitivity and specificity (NaN when the posterior was built from a bare pmf).
    """

    grid: np.ndarray
    probs: np.ndarray
    se_mean: float = math.nan
    se_var: float = math.nan
    sp_mean: float = math.nan
    sp_var: float = math.nan

    def __post_init__(self) -> None:
        grid = np.asarray(self.grid, dtype=float)
        probs = np.asarray(self.probs, dtype=float)
        if grid.ndim != 1 or grid.shape != probs.shape or len(grid) < 2 or probs.sum() <= 0:
            raise ValueError("grid and probs must be 1-d, of the same length >= 2, with mass")
        if not np.allclose(np.diff(grid), grid[1] - grid[0]) or (probs < 0).any():
            raise ValueError("grid must be evenly spaced and probs non-negative")
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "probs", probs / probs.sum())

    @property
    def mean(self) -> float:
        return float(self.grid @ self.probs)

    @property
    def var(self) -> float:
        return float(((self.grid - self.mean) ** 2) @ self.probs)

    @property
    def ci95(self) -> tuple[float, float]:
        """95% equal-tailed credible interval."""
        return _ci95(self.grid, self.probs, 0.0, 1.0)

    def cdf(self, x: float) -> float:
        return _cdf(self.grid, self.probs, x)

    def quantile(self, q: float) -> float:
        return _quantile(self.grid, self.probs, q)

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draws from the histogram density: a cell by its mass, then uniformly inside it."""
        h = self.grid[1] - self.grid[0]
        cells = rng.choice(len(self.grid), size=size, p=self.probs)
        return self.grid[cells] + rng.uniform(-h / 2, h / 2, size=size)


# --------------------------------------------------------------------------- basic estimators
def confusion_counts(human: Sequence[bool], judge: Sequence[bool]) -> dict[str, int]:
    """Confusion counts of judge verdicts against human verdicts (rows = human truth).

    Returns ``{"tp", "fn", "fp", "tn"}`` with positive = pass.
    """
    h = np.asarray(human, dtype=bool)
    j = np.asarray(judge, dtype=bool)
    if h.shape != j.shape or h.ndim != 1:
        raise ValueError("human and judge must be 1-d sequences of the same length")
    return {
        "tp": int(np.sum(h & j)),
        "fn": int(np.sum(h & ~j)),
        "fp": int(np.sum(~h & j)),
        "tn": int(np.sum(~h & ~j)),
    }


def rogan_gladen(p_obs: float, se: float, sp: float) -> float | None:
    """Rogan-Gladen true prevalence ``(p_obs + Sp - 1) / (Se + Sp - 1)``, clipped to [0, 1].

    Rogan WJ, Gladen B (1978). Estimating prevalence from the results of a screening test.
    Am J Epidemiol 107:71-76. Returns None when ``Se + Sp <= 1`` (the test is no better than chance
    and the estimator is undefined or inverts the ordering).
    """
    for name, v in (("p_obs", p_obs), ("se", se), ("sp", sp)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    denom = se + sp - 1.0
    if denom <= 0:
        return None
    return float(min(max((p_obs + sp - 1.0) / denom, 0.0), 1.0))


def ppi_mean_estimate(
    y_labeled: Sequence[float],
    f_labeled: Sequence[float],
    f_unlabeled: Sequence[float],
    *,
    alpha: float = 0.05,
) -> dict[str, float | tuple[float, float]]:
    """Prediction-powered mean estimate with its CLT interval.

    Angelopoulos AN, Bates S, Fannjiang C, Jordan MI, Zrnic T (2023). Prediction-powered
    inference. Science 382:669-674. ``theta_PP = mean(f(X~)) - mean(f(X) - Y)`` and
    ``theta_PP +/- z_{1-alpha/2} sqrt(var(f(X~))/N + var(f(X) - Y)/n)`` (variances with ddof=0, as
    in the authors' ``ppi_py.ppi_mean_ci`` with ``lam=1``). Returns ``{"estimate", "se", "ci"}``.
    """
    y = np.asarray(y_labeled, dtype=float)
    f = np.asarray(f_labeled, dtype=float)
    fu = np.asarray(f_unlabeled, dtype=float)
    if y.shape != f.shape or len(y) == 0 or len(fu) == 0:
        raise ValueError("need labelled pairs of equal length and at least one unlabelled item")
    rectifier = f - y
    est = float(fu.mean() - rectifier.mean())
    se = float(np.sqrt(fu.var() / len(fu) + rectifier.var() / len(y)))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return {"estimate": est, "se": se, "ci": (est - z * se, est + z * se)}


# --------------------------------------------------------------------------- grid posterior
def _check_counts(tp: int, fn: int, fp: int, tn: int, n_judge_only: int, k: int) -> None:
    if min(tp, fn, fp, tn, n_judge_only, k) < 0:
        raise ValueError("counts must be non-negative")
    if k > n_judge_only:
        raise ValueError("k_judge_positive cannot exceed n_judge_only")


def _midpoints(lo: float, hi: float, m: int) -> np.ndarray:
    return lo + (np.arange(m) + 0.5) * (hi - lo) / m


def _beta_axis(a: int, b: int, m: int, full: bool) -> np.ndarray:
    if full:
        return _midpoints(0.0, 1.0, m)
    lo, hi = stats.beta.ppf([_TAIL, 1 - _TAIL], a + 1, b + 1)
    pad = 0.5 * (hi - lo)  # room for the judge-only data to move Se / Sp
    return _midpoints(max(float(lo - pad), 0.0), min(float(hi + pad), 1.0), m)


def theta_posterior(
    *,
    tp: int,
    fn: int,
    fp: int,
    tn: int,
    n_judge_only: int,
    k_judge_positive: int,
    grid: int = 201,
    nuisance_grid: int = 101,
) -> Posterior:
    """Exact grid posterior of the human-level pass rate theta (latent-class model, module doc).

    theta uses ``grid`` cell midpoints on [0, 1] (shared by every posterior, so differences are
    exact convolutions); Se and Sp use ``nuisance_grid`` midpoints spanning the central
    ``1 - 2e-7`` of their labelled-data Beta posteriors padded by half its width on each side,
    widened to [0, 1] if the judge-only data still pushes mass against an inner edge. Priors
    Beta(1, 1); evaluated in log space (Joseph et al. 1995). Returns a :class:`Posterior`.
    """
    k, n = k_judge_positive, n_judge_only
    _check_counts(tp, fn, fp, tn, n, k)
    if grid < 2 or nuisance_grid < 2:
        raise ValueError("grids need at least 2 points")
    th = _midpoints(0.0, 1.0, grid)
    log_th = ((tp + fn) * np.log(th) + (fp + tn) * np.log1p(-th))[:, None, None]
    for full in (False, True):
        se = _beta_axis(tp, fn, nuisance_grid, full)
        sp = _beta_axis(tn, fp, nuisance_grid, full)
        lp = np.zeros((grid, nuisance_grid, nuisance_grid))
        if n:
            pi = th[:, None, None] * se[None, :, None] + (1 - th)[:, None, None] * (1 - sp)
            lp += k * np.log(pi) + (n - k) * np.log1p(-pi)
        lp += log_th
        lp += (tp * np.log(se) + fn * np.log1p(-se))[None, :, None]
        lp += (tn * np.log(sp) + fp * np.log1p(-sp))[None, None, :]
        lp -= lp.max()
        np.exp(lp, out=lp)
        lp /= lp.sum()
        m_se, m_sp = lp.sum(axis=(0, 2)), lp.sum(axis=(0, 1))
        # Retry on [0, 1] if mass piles up against an axis end that is not 0 or 1.
        tol = 1e-4 * max(m_se.max(), m_sp.max())
        half = (se[1] - se[0]) / 2, (sp[1] - sp[0]) / 2
        cut = (
            (se[0] - half[0] > 1e-9 and m_se[0] > tol)
            or (se[-1] + half[0] < 1 - 1e-9 and m_se[-1] > tol)
            or (sp[0] - half[1] > 1e-9 and m_sp[0] > tol)
            or (sp[-1] + half[1] < 1 - 1e-9 and m_sp[-1] > tol)
        )
        if not cut:
            break
    se_mean, sp_mean = float(se @ m_se), float(sp @ m_sp)
    return Posterior(
        grid=th,
        probs=lp.sum(axis=(1, 2)),
        se_mean=se_mean,
        se_var=float(((se - se_mean) ** 2) @ m_se),
        sp_mean=sp_mean,
        sp_var=float(((sp - sp_mean) ** 2) @ m_sp),
    )


def calibrate_system(
    *,
    tp: int,
    fn: int,
    fp: int,
    tn: int,
    n_judge_only: int,
    k_judge_positive: int,
    posterior: Posterior | None = None,
) -> dict:
    """Report entry ``calibration.<criterion>.<baseline|candidate>`` for one system.

    sensitivity / specificity are the point estimates TP/(TP+FN) and TN/(TN+FP) (None when
    undefined); rogan_gladen uses the judge's pass rate over *all* items (labelled and judge-only)
    as p_obs (Rogan & Gladen 1978); posterior_mean / ci95 come from :func:`theta_posterior` (pass
    ``posterior`` to reuse one). judge_no_better_than_chance: see :func:`no_better_than_chance`.
    """
    k, n = k_judge_positive, n_judge_only
    _check_counts(tp, fn, fp, tn, n, k)
    sens = tp / (tp + fn) if tp + fn else None
    spec = tn / (tn + fp) if tn + fp else None
    total = tp + fn + fp + tn + n
    rg = None
    if sens is not None and spec is not None and total:
        rg = rogan_gladen((tp + fp + k) / total, sens, spec)
    if posterior is None:
        posterior = theta_posterior(tp=tp, fn=fn, fp=fp, tn=tn, n_judge_only=n, k_judge_positive=k)
    return {
        **dict(zip(COUNT_KEYS, (tp, fn, fp, tn, n, k), strict=True)),
        "sensitivity": sens,
        "specificity": spec,
        "rogan_gladen": rg,
        "posterior_mean": posterior.mean,
        "ci95": list(posterior.ci95),
        "judge_no_better_than_chance": no_better_than_chance(sens, spec),
    }


def no_better_than_chance(sensitivity: float | None, specificity: float | None) -> bool:
    """Se + Sp <= 1: the judge's verdict tells nothing about the human one (Youden's J <= 0).
    A judge that never passes a human pass (Se = 0) or never fails a human fail (Sp = 0) is
    flagged even when the other figure is undefined: J <= 0 whatever it is."""
    if sensitivity == 0 or specificity == 0:
        return True
    return sensitivity is not None and specificity is not None and sensitivity + specificity <= 1


# --------------------------------------------------------------------------- comparison
def difference(
    baseline: Posterior, candidate: Posterior, *, margin: float, lower_is_better: bool = False
) -> dict:
    """Posterior of D = theta_candidate - theta_baseline for independent posteriors.

    The pmf of D is the exact discrete convolution of the two grid pmfs (shared grid); its CDF and
    interval read it as a histogram. ``posterior_mean`` and ``ci95`` always describe
    candidate - baseline. The probabilities describe the candidate being *better*: by default
    ``p_non_inferior = P(D > -margin)`` and ``p_superior = P(D > 0)``; with ``lower_is_better``
    (theta is a rate of something bad) the sign flips, i.e. they are computed on baseline -
    candidate: ``P(-D > -margin) = P(D < margin)`` and ``P(D < 0)``.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    if baseline.grid.shape != candidate.grid.shape or not np.allclose(
        baseline.grid, candidate.grid
    ):
        raise ValueError("posteriors must share the same theta grid")
    g = len(candidate.grid)
    h = float(candidate.grid[1] - candidate.grid[0])
    pmf = np.convolve(candidate.probs, baseline.probs[::-1])
    values = (np.arange(2 * g - 1) - (g - 1)) * h
    if lower_is_better:
        p_ni, p_sup = _cdf(values, pmf, margin), _cdf(values, pmf, 0.0)
    else:
        p_ni, p_sup = 1 - _cdf(values, pmf, -margin), 1 - _cdf(values, pmf, 0.0)
    return {
        "posterior_mean": float(values @ pmf),
        "ci95": list(_ci95(values, pmf, -1.0, 1.0)),
        "p_non_inferior": float(p_ni),
        "p_superior": float(p_sup),
    }


def criterion_verdict(p_non_inferior: float, *, threshold: float = 0.95) -> str:
    """Verdict from P(non-inferior): "pass" when >= threshold, "fail" when <= 1 - threshold
    (confidently worse by more than the margin), else "uncertain"."""
    if not 0.5 < threshold < 1:
        raise ValueError("threshold must be in (0.5, 1)")
    eps = 1e-12  # so that e.g. 0.1 counts as <= 1 - 0.9 despite binary floating point
    if p_non_inferior >= threshold - eps:
        return "pass"
    if p_non_inferior <= 1 - threshold + eps:
        return "fail"
    return "uncertain"


def calibrate_criterion(
    baseline: Mapping[str, int],
    candidate: Mapping[str, int],
    *,
    margin: float,
    lower_is_better: bool = False,
    critical: bool = False,
    threshold: float = 0.95,
    grid: int = 201,
    nuisance_grid: int = 101,
) -> dict:
    """Report entry ``calibration.<criterion>``: both systems, their difference and a verdict.

    ``baseline`` / ``candidate`` map tp, fn, fp, tn, n_judge_only, k_judge_positive to counts.
    """
    out: dict = {}
    posts = {}
    for name, counts in (("baseline", baseline), ("candidate", candidate)):
        c = {key: int(counts[key]) for key in COUNT_KEYS}
        posts[name] = theta_posterior(**c, grid=grid, nuisance_grid=nuisance_grid)
        out[name] = calibrate_system(**c, posterior=posts[name])
    diff = difference(
        posts["baseline"], posts["candidate"], margin=margin, lower_is_better=lower_is_better
    )
    out["difference"] = diff
    out["critical"] = bool(critical)
    out["verdict"] = criterion_verdict(diff["p_non_inferior"], threshold=threshold)
    return out


# --------------------------------------------------------------------------- decision
def _overall(verdicts: Collection[str]) -> str:
    if "fail" in verdicts:
        return "do_not_migrate"
    if verdicts and all(v == "pass" for v in verdicts):
        return "migrate"
    return "need_more_labels"


def _simulated_counts(counts: Mapping, max_labels: int, rng: np.random.Generator) -> np.ndarray:
    """Cumulative counts (rows tp, fn, fp, tn, judge-only positives used) of new human labels.

    New labels go first to judge-only items in random order (their judge verdicts are the real
    ones), then to fresh items drawn from the model. Human verdicts given the judge's are drawn at
    the current point estimates (PPV, false-omission rate).
    """
    theta = float(counts["posterior_mean"])
    se = (counts["tp"] + 1) / (counts["tp"] + counts["fn"] + 2)  # Beta(1, 1) posterior means
    sp = (counts["tn"] + 1) / (counts["tn"] + counts["fp"] + 2)
    pi = theta * se + (1 - theta) * (1 - sp)
    ppv, fo = theta * se / pi, theta * (1 - se) / (1 - pi)
    n, k = int(counts["n_judge_only"]), int(counts["k_judge_positive"])
    from_pool = min(n, max_labels)
    judge = rng.random(max_labels) < pi  # fresh items beyond the judge-only pool
    if from_pool:
        judge[:from_pool] = rng.choice(n, size=from_pool, replace=False) < k
    human = rng.random(max_labels) < np.where(judge, ppv, fo)
    pool_pos = judge & (np.arange(max_labels) < from_pool)
    rows = np.stack([judge & human, ~judge & human, judge & ~human, ~judge & ~human, pool_pos])
    return np.cumsum(rows, axis=1)


def _posterior_after(base: Mapping, cum: np.ndarray, n: int) -> Posterior:
    """Coarse posterior after adding n simulated labels (cumulative counts ``cum``) to base."""
    labelled = {key: int(base[key] + add) for key, add in zip(COUNT_KEYS[:4], cum, strict=False)}
    pool = int(base["n_judge_only"])
    return theta_posterior(
        **labelled,
        n_judge_only=pool - min(n, pool),
        k_judge_positive=int(base["k_judge_positive"] - cum[4]),
        grid=101,
        nuisance_grid=41,
    )


def _more_labels_needed(
    results: Mapping[str, Mapping],
    *,
    threshold: float,
    margin: float,
    lower_is_better_criteria: Collection[str],
    max_labels: int,
    n_sims: int,
    seed: int,
) -> int | None:
    """Preposterior simulation (Raiffa & Schlaifer 1961, Applied Statistical Decision Theory):
    smallest n on a doubling search (10, 20, 40, ... capped at max_labels) such that in at least
    half of ``n_sims`` seeded simulations, adding n human-labelled items (each gives a label for
    both systems) makes the decision migrate or do_not_migrate. Coarse grid (101 x 41 x 41)."""
    rng = np.random.default_rng(seed)
    systems = ("baseline", "candidate")
    sims = [
        {
            c: {s: _simulated_counts(results[c][s], max_labels, rng) for s in systems}
            for c in results
        }
        for _ in range(n_sims)
    ]
    n = 10
    while True:
        n = min(n, max_labels)
        decided = undecided = 0
        for sim in sims:
            verdicts = []
            for c, sim_c in sim.items():
                posts = [_posterior_after(results[c][s], sim_c[s][:, n - 1], n) for s in systems]
                d = difference(*posts, margin=margin, lower_is_better=c in lower_is_better_criteria)
                verdicts.append(criterion_verdict(d["p_non_inferior"], threshold=threshold))
            if _overall(verdicts) == "need_more_labels":
                undecided += 1
            else:
                decided += 1
            if 2 * decided >= n_sims or 2 * undecided > n_sims:
                break
        if 2 * decided >= n_sims:
            return n
        if n >= max_labels:
            return None
        n *= 2


def decision(
    criteria_results: Mapping[str, Mapping],
    *,
    threshold: float = 0.95,
    margin: float = 0.05,
    lower_is_better_criteria: Collection[str] = (),
    max_labels: int = 20_000,
    n_sims: int = 10,
    seed: int = 0,
) -> dict:
    """Report entry ``decision``: {verdict, threshold, more_labels_needed}.

    ``criteria_results`` maps criterion names to :func:`calibrate_criterion` outputs. Gating
    criteria are the critical ones (all criteria when none is critical). Each is re-judged with
    :func:`criterion_verdict` at ``threshold``: "do_not_migrate" if any fails, "migrate" if all
    pass, else "need_more_labels" with ``more_labels_needed`` = estimated number of further
    human-labelled items (see ``_more_labels_needed``; ``margin`` and
    ``lower_is_better_criteria`` (names) must match those used for the results). It is None when
    decided, when there is nothing to judge, or when max_labels would not be enough.
    """
    names = [c for c, r in criteria_results.items() if r.get("critical")] or list(criteria_results)
    verdicts = {
        c: criterion_verdict(
            criteria_results[c]["difference"]["p_non_inferior"], threshold=threshold
        )
        for c in names
    }
    verdict = _overall(list(verdicts.values()))
    more = None
    if verdict == "need_more_labels" and names:
        more = _more_labels_needed(
            {c: criteria_results[c] for c in names if verdicts[c] == "uncertain"},
            threshold=threshold,
            margin=margin,
            lower_is_better_criteria=lower_is_better_criteria,
            max_labels=max_labels,
            n_sims=n_sims,
            seed=seed,
        )
    return {"verdict": verdict, "threshold": threshold, "more_labels_needed": more}


def labels_to_request(
    judge_verdicts: Sequence[bool], n: int, *, posterior: Posterior, seed: int = 0
) -> dict:
    """Which judge-only items to send to humans next: stratified on the judge's verdict.

    Neyman-like allocation (Neyman 1934; Cochran 1977, Sampling Techniques, sec. 5.5): by the delta
    method on the Rogan-Gladen estimator, Se and Sp uncertainty add theta*sd(Se) and
    (1-theta)*sd(Sp) (posterior sds, common factor 1/(Se+Sp-1)) to the error of theta. New labels
    should be human-positive (informing Se) in share t = theta sd(Se) / (theta sd(Se) + (1-theta)
    sd(Sp)). A label from the judge-positive stratum is human-positive with probability PPV, from
    the judge-negative one with the false-omission rate FO, so the judge-positive share is
    f = (t - FO) / (PPV - FO), clipped to [0, 1] and to the stratum sizes. Returns
    ``{"judge_positive": count, "judge_negative": count, "indices": sorted positions}`` (seeded).
    """
    j = np.asarray(judge_verdicts, dtype=bool)
    n = min(int(n), len(j))
    if n < 0:
        raise ValueError("n must be >= 0")
    theta, se, sp = posterior.mean, posterior.se_mean, posterior.sp_mean
    if math.isnan(se) or math.isnan(sp):
        raise ValueError("posterior must carry Se / Sp moments (use theta_posterior)")
    w_se, w_sp = theta * math.sqrt(posterior.se_var), (1 - theta) * math.sqrt(posterior.sp_var)
    target = w_se / (w_se + w_sp) if w_se + w_sp > 0 else 0.5
    pi = theta * se + (1 - theta) * (1 - sp)
    ppv, fo = theta * se / pi, theta * (1 - se) / (1 - pi)
    f = (target - fo) / (ppv - fo) if abs(ppv - fo) > 1e-12 else 0.5
    pos, neg = np.flatnonzero(j), np.flatnonzero(~j)
    n_pos = min(round(min(max(f, 0.0), 1.0) * n), len(pos))
    n_neg = min(n - n_pos, len(neg))
    n_pos = n - n_neg
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]
    )
    return {
        "judge_positive": int(n_pos),
        "judge_negative": int(n_neg),
        "indices": sorted(int(i) for i in chosen),
    }


# --------------------------------------------------------------------------- pairwise judge
PREFERENCES = ("candidate", "baseline", "tie", "both_bad")


def calibrate_preference(
    human: Mapping[object, str], judge: Mapping[object, str], *, margin: float
) -> dict | None:
    """Report entry ``calibration.preference``: a pairwise judge (``auto_preference``) against
    the reviewers' majority preference per item.

    ``human`` maps items to the reviewers' majority preference (items without a strict majority
    left out by the caller), ``judge`` items to the judge's verdict. ``confusion`` counts items
    as {human: {judge: n}}; ``judge_accuracy`` is the share of items where the two agree, with a
    Wilson interval (one verdict per item, so items are the independent units). ``win_rate``
    is the share of items the reviewers' majority would give the candidate among items with a
    decisive majority, estimated over every item the judge decided (labelled and judge-only) by
    the latent-class model of this module (Joseph et al. 1995) with "candidate" as the positive
    verdict; ``p_non_inferior`` is its posterior P(win rate > 0.5 - margin). None without any
    item judged by both."""
    both = [item for item in judge if item in human]
    if not both:
        return None
    confusion = {h: dict.fromkeys(PREFERENCES, 0) for h in PREFERENCES}
    for item in both:
        if human[item] in confusion and judge[item] in confusion:
            confusion[human[item]][judge[item]] += 1
    n = sum(sum(row.values()) for row in confusion.values())
    agree = sum(confusion[p][p] for p in PREFERENCES)
    decisive = ("candidate", "baseline")
    counts = {
        "tp": confusion["candidate"]["candidate"],
        "fn": confusion["candidate"]["baseline"],
        "fp": confusion["baseline"]["candidate"],
        "tn": confusion["baseline"]["baseline"],
    }
    only = [judge[item] for item in judge if item not in human and judge[item] in decisive]
    counts |= {"n_judge_only": len(only), "k_judge_positive": only.count("candidate")}
    out = {
        "confusion": confusion,
        "judge_accuracy": agree / n if n else None,
        "judge_accuracy_ci95": _wilson(agree, n),
        "win_rate": None,
        "win_rate_ci95": None,
        "p_non_inferior": None,
        "n_judge_only": counts["n_judge_only"],
    }
    if counts["tp"] + counts["fn"] + counts["fp"] + counts["tn"] == 0:
        return out
    posterior = theta_posterior(**counts)
    out |= {
        "win_rate": posterior.mean,
        "win_rate_ci95": list(posterior.ci95),
        "p_non_inferior": 1 - posterior.cdf(0.5 - margin),
    }
    return out


def _wilson(successes: int, n: int) -> list[float] | None:
    """Wilson score interval (Wilson 1927), via statsmodels; None without trials."""
    if n <= 0:
        return None
    return [float(v) for v in proportion_confint(successes, n, alpha=0.05, method="wilson")]
