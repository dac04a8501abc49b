"""The report's position-bias test, proven by simulation with reviewers sharing items (issue #21).

Seeded and small (300 campaigns of 40 items, each judged by 5 of a panel of 10 reviewers). Items
differ strongly in which system they favour, and each item is shown the same way round to all of
its reviewers (as an imported campaign's fixed layout would), so an item's left wins move
together: a test that counts judgments as independent finds a bias that is not there about one
time in five. The design-aware test holds its 5%, and finds a real left habit.
"""

import numpy as np
import pandas as pd

from reviews.reports import stats

REPS = 300
COLUMNS = ["item_id", "reviewer", "preference", "candidate_left", "duration_seconds", "len_diff"]


def campaign(rng, *, habit, n_items=40, panel=10, k=5):
    """With probability `habit` a reviewer picks the left-hand response whatever it says; else
    the candidate wins with the item's own probability (Beta(0.5, 0.5): most items lean hard one
    way); 10% ties."""
    favour = rng.beta(0.5, 0.5, n_items)
    rows = []
    for item in range(n_items):
        candidate_left = bool(rng.random() < 0.5)
        for reviewer in rng.choice(panel, k, replace=False):
            if rng.random() < 0.1:
                preference = "tie"
            elif rng.random() < habit:
                preference = "candidate" if candidate_left else "baseline"
            else:
                preference = "candidate" if rng.random() < favour[item] else "baseline"
            rows.append((item, f"r{reviewer}", preference, candidate_left, 30.0, 0.0))
    return pd.DataFrame(rows, columns=COLUMNS)


def rejection_rates(habit, seed):
    """(design-aware, independence binomial) shares of p < 0.05, with the first's MC error."""
    rng = np.random.default_rng(seed)
    design, plain = [], []
    for _ in range(REPS):
        result = stats.position_bias(campaign(rng, habit=habit))
        design.append(result["p_value"] < 0.05)
        left = round(result["left_rate"] * result["n"])
        plain.append(stats.binomial_p_value(left, result["n"]) < 0.05)
    rate = float(np.mean(design))
    return rate, float(np.sqrt(0.05 * 0.95 / REPS)), float(np.mean(plain))


def test_without_a_position_bias_the_test_holds_its_five_percent():
    rate, mc_error, plain = rejection_rates(habit=0.0, seed=21)
    assert rate <= 0.05 + 2.5 * mc_error, rate
    assert plain > 0.12, plain  # what the independence test did on the same campaigns


def test_a_strong_left_habit_is_found():
    """Half the time the reviewers pick the left side unread: a left rate of about 0.75."""
    rate, _, _ = rejection_rates(habit=0.5, seed=22)
    assert rate > 0.9, rate
