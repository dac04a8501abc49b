"""Pull mode: a reviewer's next assignment, claiming a slot on an open item when a pull-mode
campaign has nothing queued for them.

A claim costs the same with a thousand or a million open items: campaign items carry a stored
random key, indexed with (campaign, slots_taken), and a claim reads that index from a random
point, one level of slots_taken at a time (items already started first, so that they reach k
sooner), taking the first row it can lock that the reviewer has not had. Shuffling the pool on
every claim instead cost 12-15 ms at 12,000 open items and grew with the pool (issue #20).
Claims not answered within the campaign's claim timeout go back to the pool on the next claim.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reviews.campaigns.batches import add_slots
from reviews.campaigns.helpers import _derived_seed, _least_used_side
from reviews.campaigns.services import reviewer_notice
from reviews.grading import hot_reads, pull_quality, qualification
from reviews.models import Assignment, Campaign

if TYPE_CHECKING:
    from django.contrib.auth.models import User


PULL_ATTEMPTS = 5
KEY_SPACE = 2**31

# The campaign's settings, whether the reviewer is on its roster, and their claims so far (for the
# side balance, the queue position and where their next read of the pool starts).
_FRESH = (
    "SELECT c.status, c.mode, c.overlap, c.seed, c.instructions_version, r.version,"
    " c.claim_timeout_minutes, EXISTS (SELECT 1 FROM {roster} cr"
    " WHERE cr.campaign_id = c.id AND cr.user_id = %s),"
    " EXISTS (SELECT 1 FROM reviews_reviewerpause p WHERE p.campaign_id = c.id"
    " AND p.reviewer_id = %s AND p.reinstated_at IS NULL),"
    " c.gold_items, c.gold_rate, c.repeat_rate, c.qualify_items, m.n, m.n_left, m.top"
    " FROM reviews_campaign c JOIN reviews_rubric r ON r.id = c.rubric_id,"
    " (SELECT count(*) AS n, coalesce(sum(CASE WHEN candidate_left THEN 1 ELSE 0 END), 0)"
    " AS n_left, max(position) AS top FROM reviews_assignment"
    " WHERE campaign_id = %s AND reviewer_id = %s) m WHERE c.id = %s"
)
# Claimed slots past the campaign's timeout go back; RETURNING names each one once, to the
# one transaction that expired it (a concurrent submit holds the row and wins, see
# grading.services._lock_with_current).
_EXPIRE = (
    "UPDATE reviews_assignment SET status = %s, completed_at = %s"
    " WHERE campaign_id = %s AND status = %s AND claimed_at < %s RETURNING campaign_item_id"
)
# The same on PostgreSQL in one statement, which also makes the claim's commit asynchronous: a
# claim lost in a crash within the last few ms is simply made again (atomicity is unchanged),
# and waiting for the WAL flush was most of a claim's time on a loaded disk.
_EXPIRE_PG = (
    "WITH gone AS (" + _EXPIRE + "),"  # noqa: S608 - fixed SQL
    " back AS (UPDATE reviews_campaignitem ci SET slots_taken = ci.slots_taken - g.n"
    " FROM (SELECT campaign_item_id, count(*) AS n FROM gone GROUP BY 1) g"
    " WHERE ci.id = g.campaign_item_id RETURNING 1)"
    " SELECT (SELECT count(*) FROM back), set_config('synchronous_commit', 'off', true)"
)
# One index range scan on (campaign, slots_taken, random_key); the NOT EXISTS is a probe of the
# assignments' campaign item index. SKIP LOCKED: a row another claim holds is passed by.
LEVEL_SQL = (
    "SELECT ci.id FROM reviews_campaignitem ci"
    " WHERE ci.campaign_id = %s AND ci.slots_taken = {level} AND ci.random_key >= {lowest}"
    " AND NOT ci.is_gold"
    " AND NOT EXISTS (SELECT 1 FROM reviews_assignment a"
    " WHERE a.campaign_item_id = ci.id AND a.reviewer_id = %s)"
    " ORDER BY ci.random_key LIMIT 1"
)
# Take the slot found, in the same statement, with the item's sides so far.
_TAKE = (
    "UPDATE reviews_campaignitem SET slots_taken = slots_taken + 1"
    " WHERE id = ({found}) AND slots_taken < %s RETURNING id, item_id,"
    " (SELECT count(*) FROM reviews_assignment t"
    " WHERE t.campaign_item_id = reviews_campaignitem.id),"
    " (SELECT count(*) FROM reviews_assignment t"
    " WHERE t.campaign_item_id = reviews_campaignitem.id AND t.candidate_left)"
)
# PostgreSQL reads every (level, starting key) in one statement: a nested loop over the steps in
# their order that stops at the first slot found (no sort: that would run, and lock, them all;
# tests/reviews/test_pull.py reads the plan). One plan instead of up to 2k: planning cost more
# than the index reads, ~0.8 ms a statement on a loaded machine.
_STEPS_PG = (
    "SELECT x.id FROM unnest(%s::int[], %s::int[]) step(level, lowest),"  # noqa: S608
    " LATERAL ("
    + LEVEL_SQL.format(level="step.level", lowest="step.lowest")
    + " FOR UPDATE OF ci SKIP LOCKED) x LIMIT 1"
)


def pull_next_assignment(*, campaign: Campaign, reviewer: User) -> Assignment | None:
    """The reviewer's next pending assignment in this campaign. With none pending in a pull-mode
    campaign, claim a slot on an item that still needs a judgment (never above k per item, never
    twice for one reviewer). None when there is nothing left for them. The assignment carries
    the given `campaign` object (the caller's, with whatever it already loaded).

    ValidationError (code: the campaign's status) when the campaign does not accept judgments;
    PermissionDenied when a pull-mode campaign does not have the reviewer on its roster.
    """
    # The common case in one query: a queued item, read with the campaign's current status.
    queued = _next_pending(campaign, reviewer)
    if queued is not None:
        queued.campaign = campaign
        return queued
    fresh = _fresh(campaign.pk, reviewer.pk)
    if fresh["paused"]:
        raise ValidationError(qualification.PAUSED_MESSAGE, code="reviewer_paused")
    if fresh["status"] != Campaign.Status.ACTIVE:
        campaign.status = fresh["status"]
        raise ValidationError(reviewer_notice(campaign) or "", code=fresh["status"])
    if fresh["mode"] != Campaign.Mode.PULL:
        return None
    if not fresh["on_roster"]:
        raise PermissionDenied("You are not on this campaign's roster.")
    # Gold items and flipped repeats take the place of a claim now and then (issue #16).
    quality_item = pull_quality.next_quality_item(campaign=campaign, reviewer=reviewer, fresh=fresh)
    if quality_item is not None:
        quality_item.campaign = campaign
        return quality_item
    for attempt in range(PULL_ATTEMPTS):
        try:
            claimed = _claim_slot(campaign, reviewer, fresh)
        except IntegrityError:
            # The same reviewer claimed the same item in another request at the same moment
            # (one_assignment_per_reviewer_item); their next query no longer sees that item.
            if attempt == PULL_ATTEMPTS - 1:
                raise
        else:
            if claimed is not None:
                claimed.campaign = campaign
            return claimed
    return None  # pragma: no cover


def _next_pending(campaign: Campaign, reviewer: User) -> Assignment | None:
    # In SQL (reviews.grading.hot_reads): it runs on every submit-and-next.
    return hot_reads.next_pending(campaign_id=campaign.pk, reviewer_id=reviewer.pk)


def _fresh(campaign_id: int, reviewer_id: int) -> dict[str, Any]:
    roster = Campaign.roster.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            _FRESH.format(roster=roster),
            [reviewer_id, reviewer_id, campaign_id, reviewer_id, campaign_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}")
    names = (
        "status", "mode", "overlap", "seed", "instructions_version", "rubric_version",
        "claim_timeout_minutes", "on_roster", "paused", "gold_items", "gold_rate", "repeat_rate",
        "qualify_items", "n_mine", "left_mine", "top",
    )  # fmt: skip
    return dict(zip(names, row, strict=True))


def expire_claims(cursor, *, campaign_id: int, timeout_minutes: int) -> None:
    """Give back the slots of claims pending longer than the timeout (inside the claim's
    transaction). The reviewer who held one and comes back gets their next item (the grading
    views); an answer they send for it is refused, so no item goes above k answers."""
    now = timezone.now()
    params = [
        Assignment.Status.EXPIRED,
        now,
        campaign_id,
        Assignment.Status.PENDING,
        now - timedelta(minutes=timeout_minutes),
    ]
    if connection.vendor == "postgresql":
        cursor.execute(_EXPIRE_PG, params)
        return
    cursor.execute(_EXPIRE, params)
    released = Counter(ci for (ci,) in cursor.fetchall())
    if released:
        add_slots(Counter({ci: -n for ci, n in released.items()}))


def _claim_slot(campaign: Campaign, reviewer: User, fresh: dict[str, Any]) -> Assignment | None:
    with transaction.atomic(), connection.cursor() as cursor:
        expire_claims(
            cursor, campaign_id=campaign.pk, timeout_minutes=fresh["claim_timeout_minutes"]
        )
        # Where this reviewer starts reading each level: reproducible from the campaign seed,
        # different per reviewer and per claim, so pulls follow neither the file order nor
        # each other.
        n_mine, left_mine = fresh["n_mine"], fresh["left_mine"]
        start = _derived_seed(fresh["seed"], "pull", reviewer.pk, n_mine) % KEY_SPACE
        slot = _take_open_slot(cursor, campaign.pk, reviewer.pk, fresh["overlap"], start)
        if slot is None:
            return None
        ci, item_id, n_theirs, left_theirs = slot
        left = _least_used_side(
            Counter({True: left_mine, False: n_mine - left_mine}),
            Counter({True: left_theirs, False: n_theirs - left_theirs}),
        )
        if left is None:
            left = _derived_seed(fresh["seed"], "side", ci, reviewer.pk) % 2 == 0
        top = fresh["top"]
        return Assignment.objects.create(
            campaign_id=campaign.pk,
            campaign_item_id=ci,
            item_id=item_id,
            reviewer=reviewer,
            candidate_left=left,
            position=(top + 1) if top is not None else 0,
            rubric_version=fresh["rubric_version"],
            instructions_version=fresh["instructions_version"],
            claimed_at=timezone.now(),
        )


def claim_statement(
    campaign_id: int, reviewer_id: int, overlap: int, start: int
) -> tuple[str, list]:
    """PostgreSQL's claim: (SQL, parameters)."""
    steps = [(level, lowest) for level in range(overlap - 1, -1, -1) for lowest in (start, 0)]
    levels, lowests = (list(column) for column in zip(*steps, strict=True))
    return _TAKE.format(found=_STEPS_PG), [levels, lowests, campaign_id, reviewer_id, overlap]


def _take_open_slot(
    cursor, campaign_id: int, reviewer_id: int, overlap: int, start: int
) -> tuple[int, int, int, int] | None:
    """Take a slot on the first item the reviewer may claim: fullest level first, each level read
    in key order from ``start`` and then from its beginning (the wrap-around). (campaign item,
    item, the item's assignments so far, how many of them had the candidate on the left)."""
    steps = [(level, lowest) for level in range(overlap - 1, -1, -1) for lowest in (start, 0)]
    if connection.vendor == "postgresql":
        cursor.execute(*claim_statement(campaign_id, reviewer_id, overlap, start))
        return cursor.fetchone()
    # SQLite has neither row locks nor LATERAL; its write transaction holds the database.
    take = _TAKE.format(found=LEVEL_SQL.format(level="%s", lowest="%s"))
    for level, lowest in steps:
        cursor.execute(take, [campaign_id, level, lowest, reviewer_id, overlap])
        row = cursor.fetchone()
        if row is not None:
            return row
    return None
