"""Qualification: a reviewer whose gold accuracy falls below the campaign's minimum is paused
until a lead reinstates them (issue #16). Runs after a gold item's judgment only, so ordinary
submissions keep their query count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from reviews.models import Assignment, Campaign, Judgment, ReviewerPause
from reviews.reports.quality import resolve_gold

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PAUSED_MESSAGE = (
    "You are paused on this campaign: your answers to its check items did not reach the accuracy "
    "it asks for. Everything you submitted is saved. The evaluation lead has been told and can "
    "let you carry on."
)


def active_pauses(*, reviewer: User) -> QuerySet[ReviewerPause]:
    """The reviewer's pauses not yet lifted, correlated to an outer campaign query (pk)."""
    return ReviewerPause.objects.filter(
        campaign=OuterRef("pk"), reviewer=reviewer, reinstated_at__isnull=True
    )


def check_after_gold(*, campaign: Campaign, assignment: Assignment) -> bool:
    """After a judgment in a campaign with qualification: when it was on a gold item, pause the
    reviewer once they have answered at least the campaign's qualification items of gold with an
    accuracy below its minimum. A reviewer a lead reinstated is not paused again. True when this
    call paused them."""
    if campaign.min_accuracy is None or campaign.qualify_items < 1:
        return False
    # One read after every submission in such a campaign, gold or not, so that a gold item's
    # answer takes no longer to come back (timing must not tell gold apart): the reviewer's gold
    # answers, each row saying whether they were ever paused here (then a lead reinstated them,
    # and they are not paused again).
    paused_before = ReviewerPause.objects.filter(
        campaign=campaign, reviewer_id=assignment.reviewer_id
    )
    answers = list(
        Judgment.objects.filter(
            campaign=campaign,
            reviewer_id=assignment.reviewer_id,
            is_current=True,
            assignment__kind=Assignment.Kind.GOLD,
        ).values_list("preference", "item__gold", Exists(paused_before))
    )
    if answers and answers[0][2]:
        return False
    scored = [
        preference == expected
        for preference, gold, _ in answers
        if (
            expected := resolve_gold(
                gold, baseline=campaign.baseline.name, candidate=campaign.candidate.name
            )
        )
        is not None
    ]
    if assignment.kind != Assignment.Kind.GOLD or len(scored) < campaign.qualify_items:
        return False
    correct = sum(scored)
    if correct / len(scored) >= campaign.min_accuracy:
        return False
    try:
        with transaction.atomic():
            ReviewerPause.objects.create(
                campaign=campaign,
                reviewer_id=assignment.reviewer_id,
                n_gold=len(scored),
                n_correct=correct,
            )
    except IntegrityError:  # a parallel request paused them first
        return False
    return True
