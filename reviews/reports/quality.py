"""Reviewer quality (issue #16): gold accuracy, self-consistency on flipped repeats, position
habit, speed, and the rules that flag a reviewer. Pure functions, no Django.

Preferences are de-blinded ("candidate", "baseline", "tie", "both_bad").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reviews.reports.stats import binomial_p_value, holm, wilson_interval

PREFERENCES = ("candidate", "baseline", "tie", "both_bad")
# An answer faster than this many seconds cannot have come from reading both responses.
FAST_SECONDS = 5.0
# The rules that flag a reviewer, as the lead reads them: (code, text).
MIN_GOLD = 5
MIN_GOLD_ACCURACY = 0.7
MIN_REPEATS = 4
MIN_CONSISTENCY = 0.6
MIN_POSITION_N = 10
POSITION_P = 0.01
MAX_FAST_SHARE = 0.2
RULES = (
    ("gold", f"Gold accuracy below {MIN_GOLD_ACCURACY:.0%} (or the campaign's minimum accuracy) "
             f"over at least {MIN_GOLD} gold items"),
    ("self_consistency", f"Fewer than {MIN_CONSISTENCY:.0%} of at least {MIN_REPEATS} flipped "
                         "repeats answered the same way as the first time"),
    ("position_bias", f"Chooses one side more than chance explains (two-sided binomial test, "
                      f"Holm-adjusted over the campaign's reviewers p < {POSITION_P}, at least "
                      f"{MIN_POSITION_N} decisive answers)"),
    ("fast", f"More than {MAX_FAST_SHARE:.0%} of answers given in under {FAST_SECONDS:g} seconds"),
)  # fmt: skip
RULE_TEXT = dict(RULES)


def resolve_gold(gold: str, *, baseline: str, candidate: str) -> str | None:
    """A gold answer as a de-blinded preference, or None when it names neither system of the pair
    (DESIGN.md "Pairs file": gold is baseline, candidate, tie, both_bad or a system's name)."""
    if gold in PREFERENCES:
        return gold
    if gold == candidate:
        return "candidate"
    if gold == baseline:
        return "baseline"
    return None


def gold_accuracy(correct: int, n: int) -> dict[str, Any]:
    """Share of gold items answered as expected, with its Wilson score 95% interval (Wilson 1927;
    Brown, Cai & DasGupta 2001 recommend it for small n)."""
    interval = wilson_interval(correct, n)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "ci95": list(interval) if interval else None,
    }


def self_consistency(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Of (first answer, answer on the flipped repeat) pairs, how many agree once de-blinded. A
    reviewer with a side habit answers flipped repeats inconsistently."""
    pairs = list(pairs)
    consistent = sum(1 for first, again in pairs if first == again)
    return {
        "n": len(pairs),
        "consistent": consistent,
        "rate": consistent / len(pairs) if pairs else None,
    }


def position_habit(left: int, n: int) -> dict[str, Any]:
    """Share of decisive answers for the left side, with a two-sided exact binomial test against
    0.5 (Zheng et al. 2023, "Judging LLM-as-a-Judge", position bias)."""
    return {
        "left_rate": left / n if n else None,
        "n": n,
        "p_value": binomial_p_value(left, n) if n else None,
    }


def flags(
    *,
    gold: Mapping[str, Any],
    consistency: Mapping[str, Any],
    position: Mapping[str, Any],
    fast_share: float | None,
    min_accuracy: float | None = None,
    position_p_adjusted: float | None = None,
) -> list[str]:
    """The codes of RULES a reviewer breaks. `position_p_adjusted`: the position p-value after
    Holm's correction over all reviewers (defaults to the raw one, for a single reviewer)."""
    out = []
    threshold = MIN_GOLD_ACCURACY if min_accuracy is None else min_accuracy
    if gold["n"] >= MIN_GOLD and gold["accuracy"] < threshold:
        out.append("gold")
    if consistency["n"] >= MIN_REPEATS and consistency["rate"] < MIN_CONSISTENCY:
        out.append("self_consistency")
    p = position["p_value"] if position_p_adjusted is None else position_p_adjusted
    if position["n"] >= MIN_POSITION_N and p < POSITION_P:
        out.append("position_bias")
    if fast_share is not None and fast_share > MAX_FAST_SHARE:
        out.append("fast")
    return out


def reviewer_quality(
    *,
    gold_answers: Iterable[tuple[Any, str, str]],
    repeat_pairs: Iterable[tuple[Any, str, str]],
    sides: Mapping[Any, tuple[int, int]],
    timing: Mapping[Any, tuple[int, int]],
    baseline: str,
    candidate: str,
    min_accuracy: float | None = None,
) -> dict[Any, dict[str, Any]]:
    """Per reviewer: gold, self_consistency, position_bias, fast_share, flagged and flags.

    `gold_answers`: (reviewer, preference, the item's gold as written); `repeat_pairs`: (reviewer,
    first answer, answer on the flipped repeat); `sides`: reviewer -> (decisive answers for the
    left side, decisive answers); `timing`: reviewer -> (answers under FAST_SECONDS, timed answers).
    """
    gold: dict[Any, list[int]] = {}
    for reviewer, preference, written in gold_answers:
        expected = resolve_gold(written, baseline=baseline, candidate=candidate)
        if expected is not None:
            counts = gold.setdefault(reviewer, [0, 0])
            counts[0] += preference == expected
            counts[1] += 1
    repeats: dict[Any, list[tuple[str, str]]] = {}
    for reviewer, first, again in repeat_pairs:
        repeats.setdefault(reviewer, []).append((first, again))
    reviewers = sorted({*gold, *repeats, *sides, *timing}, key=str)
    positions = {r: position_habit(*sides.get(r, (0, 0))) for r in reviewers}
    # Testing every reviewer at p < 0.01 would flag one in a hundred honest ones: Holm (1979)
    # keeps the chance of any false flag in the campaign at that level.
    tested = [r for r in reviewers if positions[r]["n"] >= MIN_POSITION_N]
    adjusted = dict(zip(tested, holm([positions[r]["p_value"] for r in tested]), strict=True))
    out = {}
    for reviewer in reviewers:
        accuracy = gold_accuracy(*gold.get(reviewer, (0, 0)))
        consistency = self_consistency(repeats.get(reviewer, []))
        position = positions[reviewer]
        fast, timed = timing.get(reviewer, (0, 0))
        fast_share = fast / timed if timed else None
        found = flags(
            gold=accuracy,
            consistency=consistency,
            position=position,
            fast_share=fast_share,
            min_accuracy=min_accuracy,
            position_p_adjusted=adjusted.get(reviewer),
        )
        out[reviewer] = {
            "gold": accuracy,
            "self_consistency": consistency,
            "position_bias": position,
            "fast_share": fast_share,
            "flagged": bool(found),
            "flags": found,
        }
    return out
