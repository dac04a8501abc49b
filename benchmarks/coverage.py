"""Coverage and decision error rates of the report's statistics, by simulation with a known truth.

    python benchmarks/coverage.py --reps N [--items 200] [--seed 0]

Campaigns are simulated with reviewers sharing items (each item graded by k of a panel of 10
reviewers of varying quality, 85-100% attentive; ties; items that differ in how much they favour
the candidate) and run through `reviews.reports.stats.compute_report` and the decision
(`reviews.reports.decision.human_decision`). Prints one row per figure: the nominal rate, the rate
measured over N replications with its Monte Carlo standard error, and, for comparison, what the
independence formulas (Wilson, Student t, exact binomial) give on the same data.

The truth is the panel's: the win rate (and pass-rate difference) these reviewers would give over
the population of items. Each scenario draws its own items, judgments and reviewer panel.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviews.reports import decision, stats

MARGIN = 0.05
THRESHOLD = 0.95
N_REVIEWERS = 10
REGIONS = ("eu", "us", "apac", "latam")
RUBRIC = [{"name": "correct", "kind": "binary", "per": "response", "critical": True}]
BASE_PASS = 0.5  # probit intercept of the baseline's pass probability


@dataclass(frozen=True)
class Scenario:
    win_rate: float = 0.6  # the panel's true win rate among decisive judgments
    k: int = 3  # reviewers per item
    concentration: float = 2.0  # items' Beta(mu c, (1 - mu) c): smaller is more clustered
    pass_diff: float = 0.0  # the panel's true candidate - baseline pass rate
    tie_rate: float = 0.2
    n_items: int = 200


def _probit_shift(diff: float, quality: float) -> float:
    """Candidate probit intercept giving a panel pass-rate difference `diff`: pass probability
    Phi(a + z), z ~ N(0, 1), has mean Phi(a / sqrt 2); reviewers read a pass right with
    probability q, which scales differences by (2 q - 1)."""
    base = scipy_stats.norm.cdf(BASE_PASS / math.sqrt(2))
    target = base + diff / (2 * quality - 1)
    return math.sqrt(2) * scipy_stats.norm.ppf(target)


def simulate(scenario: Scenario, rng: np.random.Generator):
    """(prefs, scores, item_meta, truth) for one simulated campaign."""
    n, k = scenario.n_items, scenario.k
    quality = rng.uniform(0.85, 1.0, N_REVIEWERS)
    q_bar = quality.mean()  # assignment is balanced: every reviewer grades n k / 10 items
    mu = 0.5 + (scenario.win_rate - 0.5) / q_bar
    c = scenario.concentration
    propensity = rng.beta(mu * c, (1 - mu) * c, n)
    reviewers = (np.arange(n)[:, None] + np.arange(k)[None, :]) % N_REVIEWERS
    q = quality[reviewers]
    p_candidate = 0.5 + q * (propensity[:, None] - 0.5)
    tie = rng.random((n, k)) < scenario.tie_rate
    candidate = rng.random((n, k)) < p_candidate
    preference = np.where(tie, "tie", np.where(candidate, "candidate", "baseline"))
    # The critical binary criterion: each response truly passes or not (shared by its reviewers),
    # and a reviewer reads it right with probability q.
    z = rng.normal(size=n)
    shift = _probit_shift(scenario.pass_diff, q_bar)
    passes = {
        "baseline": rng.random(n) < scipy_stats.norm.cdf(BASE_PASS + z),
        "candidate": rng.random(n) < scipy_stats.norm.cdf(shift + z),
    }
    item_ids = np.repeat(np.arange(n), k)
    reviewer_ids = np.array([f"r{r}" for r in reviewers.ravel()], dtype=object)
    prefs = pd.DataFrame(
        {
            "item_id": item_ids,
            "reviewer": reviewer_ids,
            "preference": preference.ravel(),
            "candidate_left": (rng.random(n * k) < 0.5).astype(float),
            "duration_seconds": 30.0,
            "len_diff": np.repeat(rng.normal(0, 50, n), k),
        }
    )
    rows = []
    for system in ("baseline", "candidate"):
        right = rng.random((n, k)) < q
        label = np.where(right, passes[system][:, None], ~passes[system][:, None])
        rows.append(
            pd.DataFrame(
                {
                    "item_id": item_ids,
                    "reviewer": reviewer_ids,
                    "criterion": "correct",
                    "target": system,
                    "value": label.ravel().astype(float),
                }
            )
        )
    scores = pd.concat(rows, ignore_index=True)
    item_meta = pd.DataFrame(
        {"item_id": np.arange(n), "key": "region", "value": np.array(REGIONS)[np.arange(n) % 4]}
    )
    truth = {"win_rate": scenario.win_rate, "pass_diff": scenario.pass_diff}
    return prefs, scores, item_meta, truth


def run_once(scenario: Scenario, rng: np.random.Generator) -> dict[str, float]:
    """One replication: the report's figures and the independence formulas' on the same data."""
    prefs, scores, item_meta, truth = simulate(scenario, rng)
    report = stats.compute_report(
        prefs, scores, item_meta, rubric=RUBRIC, margin=MARGIN, seed=int(rng.integers(2**31))
    )
    pref = report["preference"]
    rows = stats._criterion_rows(stats._prepare_scores(scores), RUBRIC[0])
    human = decision.human_decision(
        preference=pref,
        criteria={"correct": stats.criterion_non_inferiority(rows, RUBRIC[0], margin=MARGIN)},
        threshold=THRESHOLD,
        margin=MARGIN,
        n_items=scenario.n_items,
    )
    counts = pref["counts"]
    c, b = counts["candidate"], counts["baseline"]
    wilson = stats.wilson_interval(c, c + b)
    naive = stats.win_rate_summary(counts, margin=MARGIN)
    diff_ci = report["criteria"]["correct"]["mean_diff_ci95"]
    t_ci = _t_interval(rows)
    slices = report["slices"]["region"]
    p_slice_naive = [stats.binomial_p_value(*_slice_counts(prefs, item_meta, v)) for v in REGIONS]
    truth_rate, truth_diff = truth["win_rate"], truth["pass_diff"]
    return {
        "win_cover": _covers(pref["win_rate_ci95"], truth_rate),
        "win_cover_wilson": _covers(wilson, truth_rate),
        "diff_cover": _covers(diff_ci, truth_diff),
        "diff_cover_t": _covers(t_ci, truth_diff),
        "slice_cover": np.mean(
            [_covers(cell["win_rate_ci95"], truth_rate) for cell in slices.values()]
        ),
        "slice_any_holm": float(any((cell["p_holm"] or 1) < 0.05 for cell in slices.values())),
        "slice_any_holm_naive": float(min(stats.holm(p_slice_naive)) < 0.05),
        "p_better": float((pref["p_candidate_better"] or 0) >= THRESHOLD),
        "p_better_naive": float(naive["p_candidate_better"] >= THRESHOLD),
        "p_ni": float((pref["p_non_inferior"] or 0) >= THRESHOLD),
        "p_ni_naive": float(naive["p_non_inferior"] >= THRESHOLD),
        "migrate": float(human["verdict"] == "migrate"),
    }


def _covers(interval, value: float) -> float:
    return float(interval is not None and interval[0] <= value <= interval[1])


def _t_interval(rows):
    """Student t over judgments, as if independent (the report before this change)."""
    is_candidate, at, paired, candidate_rows = stats._paired(rows)
    diff = (
        rows["value"][candidate_rows[paired]]
        - rows["value"][np.flatnonzero(~is_candidate)[at[paired]]]
    )
    return stats.mean_ci95(diff)


def _slice_counts(prefs, item_meta, value):
    items = item_meta.loc[item_meta["value"] == value, "item_id"]
    sub = prefs[prefs["item_id"].isin(items)]
    won = int((sub["preference"] == "candidate").sum())
    return won, won + int((sub["preference"] == "baseline").sum())


def rates(scenario: Scenario, reps: int, seed: int) -> dict[str, tuple[float, float]]:
    """Mean of each figure over `reps` replications and its Monte Carlo standard error."""
    rng = np.random.default_rng(seed)
    runs = pd.DataFrame([run_once(scenario, rng) for _ in range(reps)])
    return {
        name: (float(col.mean()), float(col.std(ddof=1) / math.sqrt(reps)) if reps > 1 else 0.0)
        for name, col in runs.items()
    }


SCENARIOS = {
    "k3": Scenario(k=3, win_rate=0.6, pass_diff=0.05),
    "k5": Scenario(k=5, win_rate=0.6, pass_diff=0.05),
    "equal_k3": Scenario(k=3, win_rate=0.5, pass_diff=0.0),
    "equal_k5": Scenario(k=5, win_rate=0.5, pass_diff=0.0),
    "margin_k3": Scenario(k=3, win_rate=0.5 - MARGIN, pass_diff=0.1),
    "margin_agree": Scenario(k=3, win_rate=0.5 - MARGIN, pass_diff=0.1, concentration=0.3),
    "margin_criterion": Scenario(k=3, win_rate=0.6, pass_diff=-MARGIN),
    "power_k3": Scenario(k=3, win_rate=0.5, pass_diff=0.0, n_items=400),
}


def table(reps: int, n_items: int, seed: int) -> list[tuple[str, str, str, str]]:
    def at(name: str) -> dict[str, tuple[float, float]]:
        base = SCENARIOS[name]
        items = base.n_items if name.startswith("power") else n_items
        scenario = Scenario(**{**base.__dict__, "n_items": items})
        return rates(scenario, reps, seed + zlib.crc32(name.encode()) % 1000)

    def fmt(value: tuple[float, float]) -> str:
        return f"{value[0]:.3f} ± {value[1]:.3f}"

    r = {name: at(name) for name in SCENARIOS}
    return [
        (label, nominal, fmt(r[name][key]), fmt(r[name][naive]) if naive else "-")
        for label, nominal, name, key, naive in ROWS
    ]


# (figure, nominal rate, scenario, this report's figure, the independence formulas' figure)
ROWS = [
    ("win-rate 95% interval coverage, k = 3", "0.95", "k3", "win_cover", "win_cover_wilson"),
    ("win-rate 95% interval coverage, k = 5", "0.95", "k5", "win_cover", "win_cover_wilson"),
    ("criterion difference coverage, k = 3", "0.95", "k3", "diff_cover", "diff_cover_t"),
    ("criterion difference coverage, k = 5", "0.95", "k5", "diff_cover", "diff_cover_t"),
    ("slice interval coverage, k = 3", "0.95", "k3", "slice_cover", None),
    ("slice interval coverage, k = 5", "0.95", "k5", "slice_cover", None),
    ("'some slice differs' after Holm, none does, k = 3", "≤ 0.05", "equal_k3",
     "slice_any_holm", "slice_any_holm_naive"),
    ("'some slice differs' after Holm, none does, k = 5", "≤ 0.05", "equal_k5",
     "slice_any_holm", "slice_any_holm_naive"),
    ("P(better) ≥ 0.95 when equal, k = 3", "≤ 0.05", "equal_k3", "p_better", "p_better_naive"),
    ("P(better) ≥ 0.95 when equal, k = 5", "≤ 0.05", "equal_k5", "p_better", "p_better_naive"),
    ("P(non-inferior) ≥ 0.95, win rate at the margin", "≤ 0.05", "margin_k3", "p_ni",
     "p_ni_naive"),
    ("P(non-inferior) ≥ 0.95, at the margin, reviewers of an item agree", "≤ 0.05",
     "margin_agree", "p_ni", "p_ni_naive"),
    ("human decision 'migrate', win rate at the margin", "≤ 0.05", "margin_k3", "migrate", None),
    ("human decision 'migrate', criterion at the margin", "≤ 0.05", "margin_criterion",
     "migrate", None),
    ("power: 'migrate' at a true difference of 0, 400 items", "-", "power_k3", "migrate", None),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = table(args.reps, args.items, args.seed)
    width = max(len(row[0]) for row in rows)
    print(f"{'figure':<{width}}  nominal  this report      independence formulas")
    for name, nominal, measured, naive in rows:
        print(f"{name:<{width}}  {nominal:<7}  {measured:<15}  {naive}")
    print(
        f"{args.reps} replications per scenario, {args.items} items, 10 reviewers, "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
