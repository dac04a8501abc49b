"""The lead's view of reviewer quality on the campaign page: who is paused (and reinstating
them), and each reviewer's figures and flags from the latest report (reviews.reports.quality).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from reviews.audit.events import record_audit
from reviews.exports.writing import reviewer_pseudonym
from reviews.models import Assignment, Campaign, Report, ReviewerPause
from reviews.reports.quality import RULE_TEXT, RULES

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def quality_context(campaign: Campaign) -> dict[str, Any]:
    """Paused reviewers, the latest report's per-reviewer quality (by email), and the rules."""
    # Only a campaign with a minimum accuracy pauses anyone: others skip the query.
    pauses = (
        list(
            ReviewerPause.objects.filter(campaign=campaign, reinstated_at__isnull=True)
            .select_related("reviewer")
            .order_by("created_at")
        )
        if campaign.min_accuracy is not None
        else []
    )
    latest = (
        Report.objects.filter(campaign=campaign, status=Report.Status.DONE)
        .order_by("-finished_at", "-pk")
        .values_list("result", flat=True)
        .first()
    ) or {}
    reviewers = [row for row in latest.get("reviewers") or [] if "flags" in row]
    label = {}
    if reviewers:  # the leads see emails where the report has pseudonyms
        users = get_user_model().objects.filter(
            pk__in=Assignment.objects.filter(campaign=campaign).values("reviewer_id")
        )
        label = {
            reviewer_pseudonym(u.pk): u.email or u.username for u in users.only("email", "username")
        }
    rows = [
        {**row, "label": label.get(row["reviewer"], row["reviewer"]),
         "flag_texts": [RULE_TEXT.get(code, code) for code in row.get("flags") or []]}
        for row in reviewers
    ]  # fmt: skip
    decision = (latest.get("decision") or {}).get("verdict")
    without = (latest.get("quality") or {}).get("decision_without_flagged")
    return {
        "paused": pauses,
        "rows": rows,
        "rules": RULES,
        "quality": latest.get("quality"),
        "decision_differs": bool(latest) and decision != without,
    }


def reinstate_reviewer(*, campaign: Campaign, reviewer: User, actor: User | None = None) -> bool:
    """Lift a reviewer's pause: they get items again and are not paused by the gold check again.
    False when they were not paused."""
    with transaction.atomic():
        lifted = ReviewerPause.objects.filter(
            campaign=campaign, reviewer=reviewer, reinstated_at__isnull=True
        ).update(reinstated_at=timezone.now(), reinstated_by=actor)
        if lifted:
            record_audit(
                actor,
                "reviewer.reinstated",
                campaign=campaign,
                target=f"campaign:{campaign.slug}",
                reviewer=reviewer.email or reviewer.username,
            )
    return bool(lifted)


def paused_reviewer(campaign: Campaign, reviewer_id: str) -> User:
    pause = (
        ReviewerPause.objects.filter(campaign=campaign, reviewer_id=reviewer_id)
        .select_related("reviewer")
        .first()
        if str(reviewer_id).isdigit()
        else None
    )
    if pause is None:
        raise ValidationError("That reviewer is not paused in this campaign.")
    return pause.reviewer
