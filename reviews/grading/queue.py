"""Read shapes for the reviewer's pages, each a fixed number of queries whatever the size."""

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from reviews.campaigns.masking import Masker
from reviews.grading import qualification
from reviews.grading import services as grading
from reviews.grading.forms import JudgmentForm
from reviews.models import Assignment, Campaign

RECENT_DONE = 10


@dataclass
class QueueRow:
    campaign_name: str
    instructions: str
    public_id: str
    status: str
    batch_name: str
    due_date: date | None
    total: int
    done: int
    skipped: int
    next_token: str | None
    pull: bool
    paused: bool = False
    paused_message: str = qualification.PAUSED_MESSAGE

    @property
    def finished(self) -> int:
        return self.done + self.skipped

    @property
    def overdue(self) -> bool:
        return bool(
            self.due_date and self.due_date < timezone.localdate() and self.finished < self.total
        )


def queue_rows(user) -> list[QueueRow]:
    """The reviewer's campaigns × batches with progress (three queries)."""
    counts = list(
        Assignment.objects.filter(reviewer=user)
        .exclude(status=Assignment.Status.EXPIRED)  # a claim that went back is not theirs
        .values("campaign_id", "batch__name", "batch__number", "batch__due_date")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(status=Assignment.Status.DONE)),
            skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
        )
        .order_by("campaign_id", "batch__number")
    )
    next_pending = (
        Assignment.objects.filter(
            campaign=OuterRef("pk"), reviewer=user, status=Assignment.Status.PENDING
        )
        .order_by("position", "pk")
        .values("token")[:1]
    )
    campaigns = {
        c.pk: c
        for c in Campaign.objects.filter(
            Q(pk__in={row["campaign_id"] for row in counts})
            | Q(roster=user, mode=Campaign.Mode.PULL)
        )
        .exclude(status=Campaign.Status.DRAFT)
        .select_related("baseline", "candidate")
        .annotate(
            next_token=Subquery(next_pending),
            paused=Exists(qualification.active_pauses(reviewer=user)),
        )
        .distinct()
    }
    rows = []
    seen = set()
    for row in counts:
        campaign = campaigns.get(row["campaign_id"])
        if campaign is None:
            continue
        seen.add(campaign.pk)
        rows.append(_row(campaign, row))
    # Pull-mode campaigns where the reviewer has claimed nothing yet.
    empty = {"total": 0, "done": 0, "skipped": 0}
    rows.extend(_row(c, empty) for c in campaigns.values() if c.pk not in seen)
    return rows


def _row(campaign: Campaign, counts: dict) -> QueueRow:
    return QueueRow(
        campaign_name=grading.reviewer_title(campaign),
        instructions=grading.masked_markdown(
            campaign.instructions, grading.campaign_masker(campaign)
        ),
        public_id=campaign.public_id,
        status=campaign.get_status_display(),
        batch_name=grading.masked(counts["batch__name"], campaign)
        if counts.get("batch__name")
        else (
            f"Batch {counts['batch__number']}"
            if counts.get("batch__number")
            else "Items you pulled"
        ),
        due_date=counts.get("batch__due_date"),
        total=counts["total"],
        done=counts["done"],
        skipped=counts["skipped"],
        next_token=campaign.next_token,
        pull=campaign.mode == Campaign.Mode.PULL and campaign.status == Campaign.Status.ACTIVE,
        paused=campaign.paused,
    )


def with_campaign(assignment: Assignment) -> Assignment:
    """Make sure the assignment carries its campaign with systems and rubric (one query)."""
    campaign = assignment.campaign
    if not (Campaign.baseline.is_cached(campaign) and Campaign.rubric.is_cached(campaign)):
        assignment.campaign = Campaign.objects.select_related(
            "baseline", "candidate", "rubric"
        ).get(pk=assignment.campaign_id)
    return assignment


def grading_context(assignment: Assignment, *, form: JudgmentForm | None = None) -> dict:
    """Everything the grading page shows: blind texts, the form, progress and recent items."""
    assignment = with_campaign(assignment)
    campaign = assignment.campaign
    criteria = grading.reviewer_criteria(campaign)  # masked: the reviewer reads them
    # Only a finished assignment can hold a judgment: a pending one skips that query.
    current = (
        grading.current_judgment(assignment)
        if assignment.status == Assignment.Status.DONE
        else None
    )
    if form is None:
        initial = {
            "ticket": grading.issue_ticket(
                assignment, base_revision=current.revision if current else 0
            )
        }
        if current is not None:
            initial["preference"] = grading.blind_preference(
                current.preference, candidate_left=assignment.candidate_left
            )
            initial["rationale"] = current.rationale
            for name, sides in grading.blind_scores(
                current.scores, campaign.rubric.criteria, candidate_left=assignment.candidate_left
            ).items():
                initial.update({f"{name}__{side}": v for side, v in sides.items() if v is not None})
        form = JudgmentForm(
            initial=initial,
            criteria=criteria,
            require_rationale=campaign.require_rationale,
        )
    mask = grading.campaign_masker(campaign)
    progress, recent = _progress_and_recent(assignment, mask)
    blank = form.is_bound is False and current is None
    blank_questions = _blank_questions(criteria) if blank else ""
    return {
        "assignment": assignment,
        "token": assignment.token,
        "campaign_name": grading.reviewer_title(campaign),
        "instructions": grading.masked_markdown(campaign.instructions, mask),
        "notice": _notice(campaign),
        "pair": grading.blind_pair(assignment),
        "form": form,
        "blank_questions": blank_questions,
        "revising": current is not None,
        "progress": progress,
        "recent": recent,
        "skip_reasons": grading.SKIP_REASONS,
    }


def _blank_questions(criteria: list[dict]) -> str:
    """The questions of a rubric, unanswered, as HTML: the same for every new item, so rendered
    once per rubric content in a process (saves ~1 ms per grading page, measured)."""
    return _blank_questions_html(json.dumps(criteria, sort_keys=True))


@lru_cache(maxsize=64)
def _blank_questions_html(criteria_json: str) -> str:
    form = JudgmentForm(criteria=json.loads(criteria_json))
    return render_to_string("reviews/grade.html#questions", {"form": form})


def _progress_and_recent(assignment: Assignment, mask: Masker) -> tuple[dict, list[dict]]:
    """The reviewer's progress in the campaign and their latest answers, in one query.

    Window counts run over all of the reviewer's assignments before the LIMIT applies, so the
    rows that come back carry the totals; finished rows sort first, newest first. Items are
    joined to those few rows only (joining all of them cost ~1 ms with 200 assignments). Written in
    SQL because the same query built with the ORM (Window, Case, Sum) cost ~2 ms of CPU per
    grading page to compile, measured with benchmarks/grading_server_time.py; this costs ~0.3.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT x.id, x.token, x.status, i.external_id, x.total, x.finished
               FROM (SELECT a.id, a.token, a.status, a.item_id, a.completed_at,
                            CASE WHEN a.status = %s THEN 0 ELSE 1 END AS later,
                            COUNT(*) OVER () AS total,
                            SUM(CASE WHEN a.status <> %s THEN 1 ELSE 0 END) OVER () AS finished
                     FROM reviews_assignment a
                     WHERE a.campaign_id = %s AND a.reviewer_id = %s
                     ORDER BY later, a.completed_at DESC NULLS LAST, a.id
                     LIMIT %s) x
               JOIN datasets_item i ON i.id = x.item_id
               ORDER BY x.later, x.completed_at DESC NULLS LAST, x.id""",
            [
                Assignment.Status.DONE,
                Assignment.Status.PENDING,
                assignment.campaign_id,
                assignment.reviewer_id,
                RECENT_DONE + 1,
            ],
        )
        rows = cursor.fetchall()
    progress = {"total": rows[0][4] if rows else 0, "finished": rows[0][5] if rows else 0}
    # One reverse() for all the links (each costs ~0.1 ms); tokens are URL-safe as they are.
    grade_url = reverse("grading:grade", args=["-"]).removesuffix("-/")
    recent = [
        {
            "token": token,
            "url": f"{grade_url}{token}/",
            "item__external_id": mask.text(grading.strip_invisible(external_id)),
        }
        for pk, token, status, external_id, _, _ in rows
        if status == Assignment.Status.DONE and pk != assignment.pk
    ][:RECENT_DONE]
    return progress, recent


def _notice(campaign: Campaign) -> str:
    from reviews.campaigns.services import reviewer_notice

    return reviewer_notice(campaign) or ""


def pending_count(*, campaign: Campaign, reviewer) -> int:
    """How many of the reviewer's items in the campaign are still waiting for them."""
    return Assignment.objects.filter(
        campaign=campaign, reviewer=reviewer, status=Assignment.Status.PENDING
    ).count()
