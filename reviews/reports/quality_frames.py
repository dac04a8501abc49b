"""The aggregation's reviewer-quality hook (issue #16): keep gold and repeat judgments out of the
figures, use leads' adjudicated labels as items' truth, and add per-reviewer quality.

Reads a few set-based queries; the statistics are reviews/reports/quality.py's pure functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Count, Max, Q

from reviews.exports.writing import reviewer_pseudonym
from reviews.models import Adjudication, Assignment, Campaign, CampaignItem, Judgment
from reviews.reports import quality, stats


def live_only(
    campaign: Campaign, raw: pd.DataFrame, flat: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judgment frames without gold items' judgments and without flipped repeats (a repeat
    is the reviewer's second answer on an item, shown the other way round)."""
    gold = list(
        CampaignItem.objects.filter(campaign=campaign, is_gold=True).values_list(
            "item_id", flat=True
        )
    )
    repeats = list(
        Assignment.objects.filter(campaign=campaign, kind=Assignment.Kind.REPEAT)
        .exclude(status=Assignment.Status.PENDING)
        .values_list("item_id", "reviewer_id", "candidate_left")
    )
    if (not gold and not repeats) or raw.empty:
        return raw, flat
    drop = raw["item_id"].isin(gold).to_numpy().copy()
    if repeats:
        keys = pd.MultiIndex.from_tuples([(i, r, float(left)) for i, r, left in repeats])
        here = pd.MultiIndex.from_arrays(
            [raw["item_id"], raw["reviewer_id"], raw["candidate_left"]]
        )
        drop |= here.isin(keys)
    keep = ~drop
    new_row = np.cumsum(keep) - 1
    rows = flat["row"].to_numpy(dtype=np.int64)
    kept = keep[rows] if len(rows) else np.zeros(0, bool)
    flat = flat[kept].assign(row=new_row[rows[kept]])
    return raw[keep].reset_index(drop=True), flat.reset_index(drop=True)


def adjudication_key(campaign_id: int) -> str:
    """The part of a report's state key that leads' final labels make: empty without any."""
    state = Adjudication.objects.filter(campaign_id=campaign_id).aggregate(
        n=Count("id"), last=Max("decided_at")
    )
    return f":adj{state['n']}:{state['last'].isoformat()}" if state["n"] else ""


def adjudicated(campaign: Campaign, prefs: pd.DataFrame) -> pd.DataFrame | None:
    """The prefs frame with each adjudicated item's judgments set to the lead's final label (the
    item's truth), or None when no item was adjudicated."""
    labels = dict(
        Adjudication.objects.filter(campaign=campaign).values_list(
            "campaign_item__item_id", "label"
        )
    )
    if not labels or prefs.empty:
        return None
    label = prefs["item_id"].map(labels)
    truth = label.where(label.notna(), prefs["preference"].astype(object))
    return prefs.assign(preference=pd.Categorical(truth, categories=stats.PREFERENCES))


def add_quality(
    report: dict[str, Any],
    campaign: Campaign,
    *,
    decide_without: Callable[[list[str]], dict[str, Any]],
) -> None:
    """Add gold, self_consistency, position_bias, flagged and flags to `report["reviewers"]`
    and the top-level `quality` section (DESIGN.md "Report")."""
    current = Judgment.objects.filter(campaign=campaign, is_current=True).order_by()
    decisive = Q(source=Assignment.Source.GRADING, preference__in=["candidate", "baseline"])
    left = Q(preference="candidate", candidate_left=True) | Q(
        preference="baseline", candidate_left=False
    )
    sides, timing = {}, {}
    for row in current.values("reviewer_id").annotate(
        n=Count("id", filter=decisive),
        left=Count("id", filter=decisive & left),
        timed=Count("duration_seconds"),
        fast=Count("id", filter=Q(duration_seconds__lt=quality.FAST_SECONDS)),
    ):
        name = reviewer_pseudonym(row["reviewer_id"])
        sides[name], timing[name] = (row["left"], row["n"]), (row["fast"], row["timed"])
    # A gold item's judgment is scored whatever brought it (a queue, or a judgments file). Two
    # narrow reads: one query joining every judgment to its assignment took 0.5 s at 100,000.
    gold_items = dict(
        CampaignItem.objects.filter(campaign=campaign, is_gold=True).values_list(
            "item_id", "item__gold"
        )
    )
    gold_answers = (
        [
            (reviewer_pseudonym(r), pref, gold_items[i])
            for r, i, pref in current.filter(item_id__in=list(gold_items)).values_list(
                "reviewer_id", "item_id", "preference"
            )
        ]
        if gold_items
        else []
    )
    repeat_ids = list(
        Assignment.objects.filter(
            campaign=campaign, kind=Assignment.Kind.REPEAT, status=Assignment.Status.DONE
        ).values_list("pk", flat=True)
    )
    again = (
        {
            (r, i): pref
            for r, i, pref in current.filter(assignment_id__in=repeat_ids).values_list(
                "reviewer_id", "item_id", "preference"
            )
            if i not in gold_items
        }
        if repeat_ids
        else {}
    )
    firsts = (
        current.filter(item_id__in={i for _, i in again})
        .exclude(assignment_id__in=repeat_ids)
        .values_list("reviewer_id", "item_id", "preference")
    )
    pairs = [
        (reviewer_pseudonym(r), pref, again[(r, i)]) for r, i, pref in firsts if (r, i) in again
    ]
    per_reviewer = quality.reviewer_quality(
        gold_answers=gold_answers,
        repeat_pairs=pairs,
        sides=sides,
        timing=timing,
        baseline=campaign.baseline.name,
        candidate=campaign.candidate.name,
        min_accuracy=campaign.min_accuracy,
    )
    rows = {row["reviewer"]: row for row in report.get("reviewers", [])}
    for name in per_reviewer.keys() - rows.keys():  # graded only gold or repeats so far
        rows[name] = {"reviewer": name, "n": 0, "median_seconds": None,
                      "agreement_with_others": None}  # fmt: skip
    for name, row in rows.items():
        row.update(per_reviewer.get(name) or quality.reviewer_quality(
            gold_answers=[], repeat_pairs=[], sides={name: (0, 0)}, timing={},
            baseline="", candidate="",
        )[name])  # fmt: skip
    report["reviewers"] = sorted(rows.values(), key=lambda row: row["reviewer"])
    flagged = sorted(name for name, row in rows.items() if row["flagged"])
    verdict = (report.get("decision") or {}).get("verdict")
    report["quality"] = {
        "n_gold_judgments": len(gold_answers),
        "n_flagged_reviewers": len(flagged),
        "decision_without_flagged": decide_without(flagged).get("verdict") if flagged else verdict,
    }


def keep_raw_agreement(report: dict[str, Any], prefs: pd.DataFrame) -> None:
    """Agreement figures come from what reviewers answered, not from adjudicated labels."""
    report["agreement"]["preference"] = stats.preference_agreement(prefs)
    report["reviewers"] = stats.reviewer_summary(prefs)
