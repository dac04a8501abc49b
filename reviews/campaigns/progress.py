"""Progress: done / pending / skipped and median seconds per item, per batch and per reviewer."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Count, FloatField, Q, Sum
from django.db.models.aggregates import Aggregate
from django.utils import timezone

from reviews.models import Assignment, Batch, Campaign, CampaignItem, Judgment


@dataclass
class ProgressRow:
    label: str
    total: int = 0
    done: int = 0
    pending: int = 0
    skipped: int = 0
    median_seconds: float | None = None
    due_date: date | None = None
    overdue: bool = False
    batch_id: int | None = None
    reviewer_id: int | None = None

    @property
    def percent(self) -> int:
        return round(100 * (self.done + self.skipped) / self.total) if self.total else 0


@dataclass
class CampaignProgress:
    items: int
    slots: int  # items × k
    open_slots: int  # slots nobody holds yet
    totals: ProgressRow
    batches: list[ProgressRow] = field(default_factory=list)
    reviewers: list[ProgressRow] = field(default_factory=list)

    @property
    def overdue_batches(self) -> int:
        return sum(1 for row in self.batches if row.overdue)


class Median(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(0.5); SQLite falls back to Python (see campaign_progress)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def campaign_progress(*, campaign: Campaign, today: date | None = None) -> CampaignProgress:
    """Done / pending / skipped and median seconds per item, per batch and per reviewer.

    A fixed number of queries whatever the number of batches and reviewers."""
    today = today or timezone.localdate()
    counts = Assignment.objects.filter(campaign=campaign).order_by()
    by_status = {
        status: Count("pk", filter=Q(status=status)) for status in Assignment.Status.values
    }
    cells = list(
        counts.values("batch_id", "reviewer_id", "reviewer__email", "reviewer__username")
        .annotate(**by_status)
        .order_by()
    )
    medians_by_batch, medians_by_reviewer = _median_seconds(campaign)
    batches: dict[int | None, ProgressRow] = {
        batch.pk: ProgressRow(label=str(batch), due_date=batch.due_date, batch_id=batch.pk)
        for batch in Batch.objects.filter(campaign=campaign).order_by("number")
    }
    reviewers: dict[int, ProgressRow] = {}
    totals = ProgressRow(label="All")
    for cell in cells:
        if cell["batch_id"] not in batches:
            batches[cell["batch_id"]] = ProgressRow(label="Pulled (no batch)")
        reviewer = reviewers.setdefault(
            cell["reviewer_id"],
            ProgressRow(
                label=cell["reviewer__email"] or cell["reviewer__username"],
                reviewer_id=cell["reviewer_id"],
            ),
        )
        for row in (batches[cell["batch_id"]], reviewer, totals):
            row.done += cell["done"]
            row.pending += cell["pending"]
            row.skipped += cell["skipped"]
            row.total += cell["done"] + cell["pending"] + cell["skipped"]
    for key, row in batches.items():
        row.median_seconds = medians_by_batch.get(key)
        row.overdue = bool(row.due_date and row.due_date < today and row.pending)
    for key, row in reviewers.items():
        row.median_seconds = medians_by_reviewer.get(key)
    totals.median_seconds = medians_by_batch.get("all")
    slots = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("pk"), taken=Sum("slots_taken")
    )
    items = slots["items"]
    return CampaignProgress(
        items=items,
        slots=items * campaign.overlap,
        open_slots=max(0, items * campaign.overlap - (slots["taken"] or 0)),
        totals=totals,
        batches=list(batches.values()),
        reviewers=sorted(reviewers.values(), key=lambda row: row.label.lower()),
    )


def _median_seconds(campaign: Campaign) -> tuple[dict, dict]:
    judgments = Judgment.objects.filter(
        campaign=campaign, is_current=True, duration_seconds__isnull=False
    ).order_by()
    if connection.vendor == "postgresql":
        by_batch = dict(
            judgments.values("assignment__batch_id")
            .annotate(m=Median("duration_seconds"))
            .values_list("assignment__batch_id", "m")
        )
        by_reviewer = dict(
            judgments.values("reviewer_id")
            .annotate(m=Median("duration_seconds"))
            .values_list("reviewer_id", "m")
        )
        overall = judgments.aggregate(m=Median("duration_seconds"))["m"]
    else:
        batch_times: dict[Any, list[float]] = defaultdict(list)
        reviewer_times: dict[int, list[float]] = defaultdict(list)
        every: list[float] = []
        for batch_id, reviewer_id, seconds in judgments.values_list(
            "assignment__batch_id", "reviewer_id", "duration_seconds"
        ).iterator(chunk_size=5000):
            batch_times[batch_id].append(seconds)
            reviewer_times[reviewer_id].append(seconds)
            every.append(seconds)
        by_batch = {key: statistics.median(values) for key, values in batch_times.items()}
        by_reviewer = {key: statistics.median(values) for key, values in reviewer_times.items()}
        overall = statistics.median(every) if every else None
    by_batch["all"] = overall
    return by_batch, by_reviewer
