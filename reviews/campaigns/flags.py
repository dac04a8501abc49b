"""What reviewers raised in a campaign: their flags (with notes) and skips (with reasons)."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q

from reviews.exports.writing import CHUNK_SIZE, reviewer_pseudonym
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


CSV_COLUMNS = ["campaign", "item_id", "reviewer", "kind", "reason", "note", "at"]


def flag_rows(*, campaign: Campaign, pseudonymise: bool) -> Iterator[list[Any]]:
    """The header, then one row per flag and per skip of the campaign, oldest assignment first
    (an item both flagged and skipped gives both): ``kind`` "flag" (its ``note`` and when it was
    flagged) or "skip" (its ``reason`` code, as SKIP_REASONS names it, and when). Reviewers are
    named as the judgments export names them: ``reviewer_pseudonym`` when ``pseudonymise``."""
    yield CSV_COLUMNS
    reviewer_fields = () if pseudonymise else ("reviewer__email", "reviewer__username")
    rows = (
        Assignment.objects.filter(KINDS["flags"] | KINDS["skips"], campaign=campaign)
        .order_by("pk")
        .values_list(
            "reviewer_id",
            "item__external_id",
            "flagged",
            "flag_note",
            "flagged_at",
            "status",
            "skip_reason",
            "completed_at",
            *reviewer_fields,
        )
    )
    names: dict[int, str] = {}
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        reviewer_id, item_id, flagged, note, flagged_at, status, reason, completed_at = row[:8]
        name = names.get(reviewer_id)
        if name is None:
            name = names[reviewer_id] = (
                reviewer_pseudonym(reviewer_id) if pseudonymise else (row[8] or row[9])
            )
        if flagged:
            yield [campaign.slug, item_id, name, "flag", None, note, _iso(flagged_at)]
        if status == Assignment.Status.SKIPPED:
            yield [campaign.slug, item_id, name, "skip", reason, None, _iso(completed_at)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
