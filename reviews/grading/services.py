"""Grading: what a reviewer is shown (blind) and how their judgment is stored (de-blinded).

The side-to-system mapping never leaves this module towards a template: views receive the
texts for "Response 1" (left) and "Response 2" (right) and an opaque assignment token.
"""

import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.safestring import SafeString

from datasets.markdown import render_markdown
from datasets.models import Response
from reviews.campaigns.batches import add_slots
from reviews.campaigns.masking import Masker, masker, system_name_pattern
from reviews.grading import qualification
from reviews.models import Assignment, Campaign, Judgment

LEFT, RIGHT = "1", "2"
PREFERENCE_CHOICES = [
    (LEFT, "Response 1 is better"),
    (RIGHT, "Response 2 is better"),
    ("tie", "About the same"),
    ("both_bad", "Both are bad"),
]
SKIP_REASONS = [
    ("broken", "The item is broken (empty, garbled or cut off)"),
    ("pii", "It contains personal data"),
    ("cannot_judge", "I cannot judge this one"),
]
_TICKET_SALT = "evalsite.grading.ticket"
# A form older than this is still accepted; the duration is capped instead.
MAX_COUNTED_SECONDS = 60 * 60


# Zero-width and bidirectional-control characters: they can reorder what a reviewer reads
# ("Pay \u202eexe.txt") or split a system's name so that masking misses it ("Open\u200bAI").
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


ALREADY_SAVED = "This answer was already saved."
SAVED_WHILE_PAUSED = (
    "Saved. The campaign has been paused by the evaluation lead, so no new items are served."
)
CLAIM_EXPIRED = (
    "Your time on that item ran out and it went back to the pool, so this answer was not "
    "saved. Here is your next item."
)
CLAIM_RAN_OUT = (
    "Your time on that item ran out and it went back to the pool. Here is your next item."
)


@dataclass(frozen=True)
class BlindPair:
    """Everything a reviewer sees of one item, masked and rendered; no system identity."""

    prompt: SafeString
    context: SafeString
    reference: SafeString
    left: SafeString
    right: SafeString


def mask_patterns(campaign: Campaign) -> list[str]:
    """The campaign's patterns plus the two systems' names, whatever the lead configured."""
    names = [
        system_name_pattern(campaign.baseline.name),
        system_name_pattern(campaign.candidate.name),
    ]
    return list(dict.fromkeys([*filter(None, names), *campaign.mask_patterns]))


def campaign_masker(campaign: Campaign) -> Masker:
    return masker(mask_patterns(campaign))


def masked(text: str, campaign: Campaign) -> str:
    """Plain text as a reviewer may read it (escaped by the template that shows it)."""
    return campaign_masker(campaign).text(strip_invisible(text))


def masked_markdown(text: str, mask: Masker) -> SafeString:
    """Markdown rendered and sanitised, then masked as it reads (after rendering)."""
    return mask.html(render_markdown(strip_invisible(text)))


REVIEWER_TITLE = "Side-by-side review"


def reviewer_title(campaign: Campaign) -> str:
    """The campaign's name as reviewers see it: the lead's reviewer-facing title (masked too),
    never the internal name, which often names the systems."""
    return masked(campaign.reviewer_title or REVIEWER_TITLE, campaign)


def reviewer_criteria(campaign: Campaign) -> list[dict]:
    """The rubric's criteria with labels, help and anchors masked (read-only: shared)."""
    key = json.dumps(campaign.rubric.criteria, sort_keys=True)
    return _masked_criteria(key, tuple(mask_patterns(campaign)))


@lru_cache(maxsize=256)
def _masked_criteria(criteria_json: str, patterns: tuple[str, ...]) -> list[dict]:
    mask = masker(patterns)
    criteria = json.loads(criteria_json)
    for criterion in criteria:
        for key in ("label", "help"):
            if isinstance(criterion.get(key), str):
                criterion[key] = mask.text(strip_invisible(criterion[key]))
        if isinstance(criterion.get("anchors"), dict):
            criterion["anchors"] = {
                k: mask.text(strip_invisible(str(v))) for k, v in criterion["anchors"].items()
            }
    return criteria


def blind_pair(assignment: Assignment) -> BlindPair:
    campaign = assignment.campaign
    mask = campaign_masker(campaign)
    item = assignment.item
    ci = assignment.campaign_item
    texts = getattr(assignment, "pair_texts", None)  # read with the assignment (hot_reads)
    if texts is None:
        by_pk = dict(
            Response.objects.filter(pk__in=[ci.baseline_response_id, ci.candidate_response_id])
            .order_by()  # the model's ordering would join item, dataset and system
            .values_list("pk", "text")
        )
        texts = {
            "baseline": by_pk[ci.baseline_response_id],
            "candidate": by_pk[ci.candidate_response_id],
        }
    baseline, candidate = texts["baseline"], texts["candidate"]
    left, right = (candidate, baseline) if assignment.candidate_left else (baseline, candidate)

    def show(text: str) -> SafeString:
        return masked_markdown(text, mask)

    return BlindPair(
        prompt=show(item.prompt),
        context=show(item.context) if item.context else SafeString(""),
        reference=show(item.reference) if item.reference else SafeString(""),
        left=show(left),
        right=show(right),
    )


def issue_ticket(assignment: Assignment, *, base_revision: int) -> str:
    """A signed one-time ticket for the form: when it was shown, its submission key, and the
    revision it revises. A retried POST carries the same key, so it cannot be stored twice."""
    return signing.dumps(
        {
            "a": assignment.token,
            "t": time.time(),
            "k": secrets.token_urlsafe(18),
            "r": base_revision,
        },
        salt=_TICKET_SALT,
    )


@dataclass(frozen=True)
class Ticket:
    submission_key: str
    shown_at: datetime
    base_revision: int


def read_ticket(value: str, assignment: Assignment) -> Ticket:
    try:
        data = signing.loads(value, salt=_TICKET_SALT)
    except signing.BadSignature as exc:
        raise ValidationError(
            "This form was damaged or is not from evalsite; reload the page."
        ) from exc
    if data.get("a") != assignment.token:
        raise ValidationError("This form belongs to another item; reload the page.")
    return Ticket(
        submission_key=data["k"],
        shown_at=datetime.fromtimestamp(data["t"], tz=UTC),
        base_revision=int(data["r"]),
    )


def current_judgment(assignment: Assignment) -> Judgment | None:
    return assignment.judgments.filter(is_current=True).order_by().first()


def deblind_preference(choice: str, *, candidate_left: bool) -> str:
    """Map the reviewer's "1" / "2" / tie / both_bad to baseline / candidate / tie / both_bad."""
    if choice in (LEFT, RIGHT):
        chose_left = choice == LEFT
        return (
            Judgment.Preference.CANDIDATE
            if chose_left == candidate_left
            else Judgment.Preference.BASELINE
        )
    return choice


def blind_preference(preference: str, *, candidate_left: bool) -> str:
    if preference in (Judgment.Preference.CANDIDATE, Judgment.Preference.BASELINE):
        on_left = (preference == Judgment.Preference.CANDIDATE) == candidate_left
        return LEFT if on_left else RIGHT
    return preference


def deblind_scores(
    values: dict[str, dict[str, Any]], criteria: list[dict], *, candidate_left: bool
) -> dict[str, dict[str, Any]]:
    """Sides "1"/"2" become baseline/candidate; a per-pair scale shown as 1 = "Response 1 much
    better" … max = "Response 2 much better" is stored oriented to the candidate."""
    stored: dict[str, dict[str, Any]] = {}
    for criterion in criteria:
        given = values.get(criterion["name"]) or {}
        if criterion.get("per") == "pair":
            value = given.get("pair")
            if value is None:
                continue
            if candidate_left:
                value = criterion["min"] + criterion["max"] - value
            stored[criterion["name"]] = {"pair": value}
            continue
        by_side = {}
        for side, target in ((LEFT, candidate_left), (RIGHT, not candidate_left)):
            if given.get(side) is not None:
                by_side["candidate" if target else "baseline"] = given[side]
        if by_side:
            stored[criterion["name"]] = by_side
    return stored


def blind_scores(
    stored: dict[str, dict[str, Any]], criteria: list[dict], *, candidate_left: bool
) -> dict[str, dict[str, Any]]:
    """The inverse of ``deblind_scores``, to pre-fill a revision form."""
    shown: dict[str, dict[str, Any]] = {}
    for criterion in criteria:
        value = stored.get(criterion["name"]) or {}
        if criterion.get("per") == "pair":
            if value.get("pair") is not None:
                v = value["pair"]
                shown[criterion["name"]] = {
                    "pair": criterion["min"] + criterion["max"] - v if candidate_left else v
                }
            continue
        left_key, right_key = (
            ("candidate", "baseline") if candidate_left else ("baseline", "candidate")
        )
        shown[criterion["name"]] = {LEFT: value.get(left_key), RIGHT: value.get(right_key)}
    return shown


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool
    notice: str = ""


class StaleForm(ValidationError):
    """The item changed since this form was shown (another tab or window submitted it)."""


def submit_judgment(
    *,
    assignment: Assignment,
    ticket: Ticket,
    preference: str,
    scores: dict[str, dict[str, Any]],
    rationale: str = "",
    active_seconds: float | None = None,
) -> SubmitResult:
    """Store the reviewer's judgment de-blinded, exactly once per ticket.

    A resubmitted ticket returns the judgment it already stored. A ticket issued before another
    submission of the same item raises StaleForm. A closed campaign refuses (ValidationError);
    a paused one keeps what was already on its way, so nothing a reviewer did is lost.
    """
    campaign = assignment.campaign
    if campaign.status in (Campaign.Status.CLOSED, Campaign.Status.DRAFT):
        raise ValidationError(
            "This campaign is closed and no longer accepts judgments; nothing was saved.",
            code=campaign.status,
        )
    if getattr(assignment, "reviewer_paused", False):  # read with the assignment (hot_reads)
        raise ValidationError(qualification.PAUSED_MESSAGE, code="reviewer_paused")
    now = timezone.now()
    elapsed = max(0.0, (now - ticket.shown_at).total_seconds())
    duration = min(elapsed, active_seconds) if active_seconds is not None else elapsed
    criteria = campaign.rubric.criteria
    try:
        with transaction.atomic():
            current_pk, current_revision, current_key, status = _lock_with_current(assignment.pk)
            if status == Assignment.Status.EXPIRED:
                raise ValidationError(CLAIM_EXPIRED, code="expired")
            if current_key == ticket.submission_key:
                # The same ticket again (a double click, a network retry): the stored answer.
                stored = Judgment.objects.get(pk=current_pk)
                return SubmitResult(stored, created=False, notice=ALREADY_SAVED)
            if ticket.base_revision != current_revision:
                earlier = Judgment.objects.filter(submission_key=ticket.submission_key).first()
                if earlier is not None:  # saved, and revised since from another tab
                    return SubmitResult(earlier, created=False, notice=ALREADY_SAVED)
                raise StaleForm(
                    "This item was already submitted from another tab or window; that answer "
                    "is kept and this one was not saved.",
                    code="stale",
                )
            if current_pk is not None:
                Judgment.objects.filter(pk=current_pk).update(is_current=False)
            judgment = Judgment.objects.create(
                assignment=assignment,
                campaign_id=assignment.campaign_id,
                item_id=assignment.item_id,
                reviewer_id=assignment.reviewer_id,
                candidate_left=assignment.candidate_left,
                preference=deblind_preference(preference, candidate_left=assignment.candidate_left),
                scores=deblind_scores(scores, criteria, candidate_left=assignment.candidate_left),
                rationale=rationale,
                started_at=ticket.shown_at,
                submitted_at=now,
                duration_seconds=round(min(duration, MAX_COUNTED_SECONDS), 3),
                revision=current_revision + 1,
                submission_key=ticket.submission_key,
            )
            Assignment.objects.filter(pk=assignment.pk).update(
                status=Assignment.Status.DONE, completed_at=now, skip_reason=""
            )
            report_due = count_judgments(campaign.pk, 1)
    except IntegrityError:
        # A doubled request raced this one past the checks above: the unique submission key or
        # the one-current-judgment constraint kept the second row out.
        again = Judgment.objects.filter(submission_key=ticket.submission_key).first()
        if again is not None:
            return SubmitResult(again, created=False, notice=ALREADY_SAVED)
        raise StaleForm(
            "This item was just submitted from another tab or window; that answer is kept.",
            code="stale",
        ) from None
    assignment.status = Assignment.Status.DONE
    notice = ""
    if campaign.status == Campaign.Status.PAUSED:
        notice = SAVED_WHILE_PAUSED
    if report_due:
        queue_aggregation(campaign)
    if qualification.check_after_gold(campaign=campaign, assignment=assignment):
        notice = qualification.PAUSED_MESSAGE
    return SubmitResult(judgment, created=True, notice=notice)


_LOCK_WITH_CURRENT = (
    "SELECT j.id, j.revision, j.submission_key, a.status FROM reviews_assignment a"
    " LEFT JOIN reviews_judgment j ON j.assignment_id = a.id AND j.is_current"
    " WHERE a.id = %s"
)


def _lock_with_current(assignment_id: int) -> tuple[int | None, int, str | None, str]:
    """Lock the assignment's row for this transaction and read its current judgment's id,
    revision (0 without one) and submission key, and the assignment's status (under the lock: a
    claim that expired meanwhile is seen expired). One SQL statement: through the ORM, the lock and
    the lookup were two queries and ~1.5 ms of CPU per submission (measured)."""
    # SQLite has no row locks: its write transactions (IMMEDIATE) lock the whole database.
    sql = _LOCK_WITH_CURRENT
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF a"
    with connection.cursor() as cursor:
        cursor.execute(sql, [assignment_id])
        pk, revision, key, status = cursor.fetchone()
    return pk, revision or 0, key, status


def count_judgments(campaign_id: int, n: int) -> bool:
    """Add ``n`` new judgments to the campaign's counter, in one statement; True when that
    reached AGGREGATE_EVERY_N_JUDGMENTS, which restarts the counter at 0 (the caller queues a
    re-aggregation). Counting and claiming in one UPDATE … RETURNING (PostgreSQL, SQLite 3.35+)
    saves the grading request a round trip."""
    every = settings.AGGREGATE_EVERY_N_JUDGMENTS
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_campaign SET judgments_since_report = CASE"
            " WHEN judgments_since_report + %s >= %s THEN 0"
            " ELSE judgments_since_report + %s END"
            " WHERE id = %s RETURNING judgments_since_report",
            [n, every, n, campaign_id],
        )
        row = cursor.fetchone()
    return row is not None and row[0] == 0


def after_judgment_saved(campaign: Campaign) -> None:
    """Queue a re-aggregation when the counter has reached AGGREGATE_EVERY_N_JUDGMENTS (for
    callers that raised the counter themselves, such as the judgments import)."""
    claimed = Campaign.objects.filter(
        pk=campaign.pk, judgments_since_report__gte=settings.AGGREGATE_EVERY_N_JUDGMENTS
    ).update(judgments_since_report=0)
    if claimed:
        queue_aggregation(campaign)


def queue_aggregation(campaign: Campaign) -> None:
    """After commit and off the request (evalsite.queue.send_after_response); a broker outage is
    logged and gives the claimed count back, so that the next judgment tries again (and the
    nightly run catches up meanwhile)."""
    from evalsite.queue import send_after_response

    send_after_response(
        "reviews.aggregate_campaign",
        campaign.pk,
        on_failure=partial(_give_the_count_back, campaign.pk),
    )


def _give_the_count_back(campaign_id: int) -> None:
    every = settings.AGGREGATE_EVERY_N_JUDGMENTS
    Campaign.objects.filter(pk=campaign_id).update(
        judgments_since_report=F("judgments_since_report") + every
    )


def skip_assignment(*, assignment: Assignment, reason: str) -> bool:
    """Mark a pending item skipped with a reason; False when it was no longer pending.

    In a pull campaign the slot goes back, so another reviewer can pull the item and it still
    reaches k judgments (the skipping reviewer cannot pull it again: one assignment each).
    """
    if reason not in dict(SKIP_REASONS):
        raise ValidationError(f"Unknown skip reason {reason!r}.")
    with transaction.atomic():
        skipped = Assignment.objects.filter(
            pk=assignment.pk, status=Assignment.Status.PENDING
        ).update(status=Assignment.Status.SKIPPED, skip_reason=reason, completed_at=timezone.now())
        if skipped and assignment.campaign.mode == Campaign.Mode.PULL:
            add_slots(Counter({assignment.campaign_item_id: -1}))
    return bool(skipped)


def flag_assignment(*, assignment: Assignment, note: str) -> None:
    """Flag the item for the lead (it stays in the reviewer's queue)."""
    Assignment.objects.filter(pk=assignment.pk).update(
        flagged=True, flag_note=note[:2000], flagged_at=timezone.now()
    )
