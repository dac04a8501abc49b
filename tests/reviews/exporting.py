"""Helpers shared by the export and judgment-import tests."""

import itertools
from datetime import timedelta

from django.utils import timezone

from reviews.models import Assignment, CampaignItem, Judgment

_keys = itertools.count()


def judge(
    campaign,
    reviewer,
    campaign_item,
    *,
    candidate_left=False,
    preference="candidate",
    scores=None,
    rationale="",
    batch=None,
    submitted_at=None,
    seconds=42.5,
):
    """A done assignment with a current judgment, as grading leaves them."""
    submitted_at = submitted_at or timezone.now()
    assignment = Assignment.objects.create(
        campaign=campaign,
        batch=batch,
        campaign_item=campaign_item,
        item_id=campaign_item.item_id,
        reviewer=reviewer,
        candidate_left=candidate_left,
        status=Assignment.Status.DONE,
        completed_at=submitted_at,
    )
    return Judgment.objects.create(
        assignment=assignment,
        campaign=campaign,
        item_id=campaign_item.item_id,
        reviewer=reviewer,
        candidate_left=candidate_left,
        preference=preference,
        scores=scores or {},
        rationale=rationale,
        started_at=submitted_at - timedelta(seconds=seconds),
        submitted_at=submitted_at,
        duration_seconds=seconds,
        submission_key=f"test-{next(_keys)}",
    )


PREFERENCES = ["candidate", "baseline", "tie", "both_bad", "candidate"]


def judge_all(campaign, reviewers, *, with_scores=True):
    """Every reviewer judges every item; sides, preferences and scores vary by position."""
    judgments = []
    items = CampaignItem.objects.filter(campaign=campaign).order_by("pk")
    for n, (ci, reviewer) in enumerate(itertools.product(items, reviewers)):
        scores = (
            {
                "correctness": {"baseline": 1 + n % 5, "candidate": 1 + (n + 2) % 5},
                "refusal_ok": {"baseline": n % 2, "candidate": 1},
                "overall": {"pair": 1 + n % 7},
            }
            if with_scores
            else {}
        )
        judgments.append(
            judge(
                campaign,
                reviewer,
                ci,
                candidate_left=n % 2 == 0,
                preference=PREFERENCES[n % len(PREFERENCES)],
                scores=scores,
                rationale=f"Reason {n}",
            )
        )
    return judgments
