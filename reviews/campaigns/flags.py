"""What reviewers raised in a campaign: their flags (with notes) and skips (with reasons)."""

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q

from reviews.grading.services import SKIP_REASONS
from reviews.models import Assignment, Campaign

SKIP_LABELS = dict(SKIP_REASONS)
PER_PAGE = 50
KINDS = {"flags": Q(flagged=True), "skips": Q(status=Assignment.Status.SKIPPED)}


def flags_and_skips(*, campaign: Campaign, kind: str = "", page: int | str = 1) -> Page:
    """One page of the campaign's flagged or skipped assignments (`kind` "flags", "skips" or
    both), newest first, each with its reviewer and item in the same query."""
    condition = KINDS.get(kind, KINDS["flags"] | KINDS["skips"])
    rows = (
        Assignment.objects.filter(condition, campaign=campaign)
        .select_related("reviewer", "item")
        .only(
            "status",
            "skip_reason",
            "flagged",
            "flag_note",
            "completed_at",
            "created_at",
            "reviewer__email",
            "reviewer__username",
            "item__external_id",
        )
        .order_by(F("completed_at").desc(nulls_first=True), "-pk")
    )
    shown = Paginator(rows, PER_PAGE).get_page(page)
    for row in shown.object_list:
        row.skip_label = SKIP_LABELS.get(row.skip_reason, row.skip_reason)
    return shown


def counts(*, campaign: Campaign) -> dict[str, int]:
    """How many assignments of the campaign are flagged and how many skipped (one query)."""
    return Assignment.objects.filter(campaign=campaign).aggregate(
        flags=Count("pk", filter=KINDS["flags"]), skips=Count("pk", filter=KINDS["skips"])
    )
