"""Batches and assignment (push mode): cut items into batches and give each exactly k distinct
reviewers, top up partly covered items, unassign and reassign pending work.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Max

from reviews.audit.events import record_audit
from reviews.campaigns import planning, quality_mix
from reviews.campaigns.helpers import _check_reviewers, _derived_seed, _least_used_side
from reviews.models import Assignment, Batch, Campaign, CampaignItem

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class AssignResult:
    batches: list[Batch]
    n_items: int  # items that got new reviewers
    n_assignments: int
    n_refilled: int  # of those items, how many were partly covered before (after an unassign)
    n_left_open: int  # partly covered items none of these reviewers could take


def create_batches_and_assign(
    *,
    campaign: Campaign,
    reviewers: Sequence[User],
    selection: planning.SelectionMode = "all",
    n: int | None = None,
    key: str | None = None,
    batch_size: int | None = None,
    due_date: date | None = None,
    actor: User | None = None,
    campaign_items: Collection[int] | None = None,
) -> AssignResult:
    """Pick unassigned items (all, a sample of n, or n stratified by metadata `key`), cut them into
    batches of `batch_size` and give every item exactly k distinct reviewers with balanced load.
    `campaign_items` (ids), when given, limits the choice to those items.

    Items left partly covered by an unassign are topped up to k from the same reviewers, in a batch
    of their own. Sides, queue positions and the sample are reproducible from the campaign seed.
    """
    reviewers = list(dict.fromkeys(reviewers))
    if not reviewers:
        raise ValidationError("Choose at least one reviewer.")
    _check_reviewers(reviewers)
    if batch_size is not None and batch_size < 1:
        raise ValidationError("The batch size must be at least 1.")
    reviewer_ids = [r.pk for r in reviewers]
    with transaction.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == Campaign.Status.CLOSED:
            raise ValidationError("This campaign is closed: nothing more can be assigned.")
        k = campaign.overlap
        if k > len(reviewers):
            raise ValidationError(
                f"Every item needs {k} distinct reviewers: choose at least {k} reviewers."
            )
        open_rows = CampaignItem.objects.select_for_update(of=("self",)).filter(
            campaign=campaign, slots_taken__lt=k, is_gold=False
        )
        if campaign_items is not None:
            open_rows = open_rows.filter(pk__in=list(campaign_items))
        open_items = list(
            open_rows.order_by("pk").values_list("pk", "slots_taken", "item__metadata")
        )
        fresh = [(pk, metadata) for pk, taken, metadata in open_items if taken == 0]
        partial = {pk: taken for pk, taken, _ in open_items if taken > 0}
        number = (campaign.batches.aggregate(m=Max("number"))["m"] or 0) + 1
        seed = _derived_seed(campaign.seed, "assign", number)
        try:
            chosen = planning.select_items(fresh, mode=selection, n=n, key=key, seed=seed)
        except ValueError as exc:
            raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from exc
        load, next_position = _reviewer_loads(campaign, reviewer_ids)
        plan = planning.plan_assignments(
            chosen,
            reviewer_ids,
            k=k,
            seed=seed,
            batch_size=batch_size,
            existing_load=load,
            existing_positions=next_position,
        )
        started = {r for r in reviewer_ids if load.get(r)}
        plan = quality_mix.mix_into_queues(campaign, plan, started=started, seed=seed)
        for planned in plan:
            load[planned.reviewer] = load.get(planned.reviewer, 0) + 1
            next_position[planned.reviewer] = max(
                next_position.get(planned.reviewer, 0), planned.position + 1
            )
        refills, left_open = _plan_refills(
            campaign, partial, reviewer_ids, load=load, next_position=next_position, seed=seed
        )
        if not plan and not refills:
            raise ValidationError(
                "Nothing to assign: every item of this campaign already has its reviewers"
                + (" (the open slots left need other reviewers)." if left_open else "."),
                code="nothing_to_assign",
            )
        n_plan_batches = max((p.batch_index for p in plan), default=-1) + 1
        batches = Batch.objects.bulk_create(
            Batch(
                campaign=campaign, number=number + i, name=f"Batch {number + i}", due_date=due_date
            )
            for i in range(n_plan_batches + (1 if refills else 0))
        )
        if refills:
            batches[-1].name = f"Batch {batches[-1].number} (refill)"
            Batch.objects.filter(pk=batches[-1].pk).update(name=batches[-1].name)
        item_of = dict(
            CampaignItem.objects.filter(
                pk__in={*chosen, *partial, *(p.item_id for p in plan)}
            ).values_list("pk", "item_id")
        )
        versions = {
            "rubric_version": campaign.rubric.version,
            "instructions_version": campaign.instructions_version,
        }
        rows = [
            Assignment(
                campaign=campaign,
                batch=batches[p.batch_index],
                campaign_item_id=p.item_id,
                item_id=item_of[p.item_id],
                reviewer_id=p.reviewer,
                candidate_left=p.candidate_left,
                position=p.position,
                kind=p.kind,
                **versions,
            )
            for p in plan
        ] + [
            Assignment(
                campaign=campaign,
                batch=batches[-1],
                campaign_item_id=ci,
                item_id=item_of[ci],
                reviewer_id=reviewer,
                candidate_left=left,
                position=position,
                **versions,
            )
            for ci, reviewer, left, position in refills
        ]
        Assignment.objects.bulk_create(rows, batch_size=1000)
        # Gold and repeats hold no slot: a slot is one of an item's k live judgments.
        live = [p.item_id for p in plan if p.kind == Assignment.Kind.LIVE]
        add_slots(Counter(live + [r[0] for r in refills]))
        campaign.roster.add(*reviewers)
        refilled_items = {r[0] for r in refills}
        record_audit(
            actor,
            "batches.created",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            batches=[b.number for b in batches],
            items=len(chosen) + len(refilled_items),
            assignments=len(rows),
            reviewers=[r.email or r.username for r in reviewers],
            selection=selection,
            n=n,
            key=key,
            batch_size=batch_size,
            due_date=due_date.isoformat() if due_date else None,
        )
    return AssignResult(
        batches=batches,
        n_items=len(chosen) + len(refilled_items),
        n_assignments=len(rows),
        n_refilled=len(refilled_items),
        n_left_open=left_open,
    )


def _plan_refills(
    campaign: Campaign,
    partial: dict[int, int],
    reviewer_ids: list[int],
    *,
    load: dict[int, int],
    next_position: dict[int, int],
    seed: int,
) -> tuple[list[tuple[int, int, bool, int]], int]:
    """Top partly covered items up to k: rows of (campaign item, reviewer, candidate_left,
    position), and how many items these reviewers cannot cover (they all hold it already)."""
    if not partial:
        return [], 0
    holders: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for ci, reviewer, left in Assignment.objects.filter(campaign_item_id__in=partial).values_list(
        "campaign_item_id", "reviewer_id", "candidate_left"
    ):
        holders[ci].append((reviewer, left))
    k, pending, left_open = campaign.overlap, [], 0
    for ci, taken in partial.items():
        held = {reviewer for reviewer, _ in holders[ci]}
        if len(set(reviewer_ids) - held) < k - taken:
            left_open += 1
            continue
        # Placeholder "from" reviewers: one per open slot (never equal to a real reviewer id).
        pending += [(ci, f"open-slot-{j}") for j in range(k - taken)]
    taken_pairs = {(ci, r) for ci in partial for r, _ in holders[ci]}
    moves = planning.plan_reassignment(
        pending, to_reviewers=reviewer_ids, taken=taken_pairs, seed=seed, existing_load=load
    )
    sides = _SideBalancer(campaign, reviewer_ids, seed)
    for ci, pairs in holders.items():
        for _, left in pairs:
            sides.item_sides[ci][left] += 1
    rows = []
    for ci, _, reviewer in moves:
        left = sides.choose(ci, reviewer)
        rows.append((ci, reviewer, left, next_position.get(reviewer, 0)))
        next_position[reviewer] = next_position.get(reviewer, 0) + 1
    return rows, left_open


class _SideBalancer:
    """Picks the candidate's side so each reviewer, then each item, sees both sides equally."""

    def __init__(self, campaign: Campaign, reviewer_ids: list[int], seed: int) -> None:
        self.seed = seed
        self.reviewer_sides: dict[int, Counter] = defaultdict(Counter)
        for reviewer, left, count in (
            Assignment.objects.filter(campaign=campaign, reviewer_id__in=reviewer_ids)
            .values_list("reviewer_id", "candidate_left")
            .annotate(n=Count("id"))
            .order_by()
        ):
            self.reviewer_sides[reviewer][left] = count
        self.item_sides: dict[int, Counter] = defaultdict(Counter)

    def choose(self, campaign_item: int, reviewer: int) -> bool:
        left = _least_used_side(self.reviewer_sides[reviewer], self.item_sides[campaign_item])
        if left is None:
            left = _derived_seed(self.seed, "side", campaign_item, reviewer) % 2 == 0
        self.reviewer_sides[reviewer][left] += 1
        self.item_sides[campaign_item][left] += 1
        return left


def add_slots(per_item: Counter) -> None:
    """Add (or, with negative counts, release) slots on campaign items: {campaign item id: n}."""
    by_amount: dict[int, list[int]] = defaultdict(list)
    for ci, amount in per_item.items():
        by_amount[amount].append(ci)
    for amount, ids in by_amount.items():
        for start in range(0, len(ids), 1000):
            CampaignItem.objects.filter(pk__in=ids[start : start + 1000]).update(
                slots_taken=F("slots_taken") + amount
            )


def _reviewer_loads(campaign: Campaign, reviewer_ids: list[int]) -> tuple[dict, dict]:
    load, next_position = {}, {}
    for reviewer, count, top in (
        Assignment.objects.filter(campaign=campaign, reviewer_id__in=reviewer_ids)
        .values("reviewer_id")
        .annotate(n=Count("id"), top=Max("position"))
        .values_list("reviewer_id", "n", "top")
        .order_by()
    ):
        load[reviewer], next_position[reviewer] = count, top + 1
    return load, next_position


def unassign(
    *, campaign: Campaign, reviewer: User, batch: Batch | None = None, actor: User | None = None
) -> int:
    """Remove the reviewer's pending assignments (in `batch` if given); done and skipped work stays.
    The freed slots are open again for the next assign or pull. Returns how many were removed."""
    with transaction.atomic():
        pending = Assignment.objects.select_for_update().filter(
            campaign=campaign, reviewer=reviewer, status=Assignment.Status.PENDING
        )
        if batch is not None:
            pending = pending.filter(batch=batch)
        rows = list(pending.values_list("pk", "campaign_item_id"))
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        add_slots(Counter({ci: -1 for _, ci in rows}))
        record_audit(
            actor,
            "assignments.unassigned",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            reviewer=reviewer.email or reviewer.username,
            batch=batch.number if batch else None,
            count=len(rows),
        )
    return len(rows)


def reassign(
    *,
    campaign: Campaign,
    from_reviewer: User,
    to_reviewers: Sequence[User],
    batch: Batch | None = None,
    actor: User | None = None,
) -> dict[str, int]:
    """Move the reviewer's pending assignments (in `batch` if given) to the least loaded of
    `to_reviewers` who do not already have the item; done work stays. Returns {email: count}."""
    targets = [user for user in dict.fromkeys(to_reviewers) if user.pk != from_reviewer.pk]
    if not targets:
        raise ValidationError("Choose at least one other reviewer to take the work.")
    _check_reviewers(targets)
    target_ids = [user.pk for user in targets]
    with transaction.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == Campaign.Status.CLOSED:
            raise ValidationError("This campaign is closed: nothing can be reassigned.")
        pending = Assignment.objects.select_for_update().filter(
            campaign=campaign, reviewer=from_reviewer, status=Assignment.Status.PENDING
        )
        if batch is not None:
            pending = pending.filter(batch=batch)
        moving = list(pending.order_by("position"))
        if not moving:
            return {}
        taken = set(
            Assignment.objects.filter(
                campaign_item_id__in=[a.campaign_item_id for a in moving],
                reviewer_id__in=target_ids,
            ).values_list("campaign_item_id", "reviewer_id")
        )
        load, next_position = _reviewer_loads(campaign, target_ids)
        try:
            moves = planning.plan_reassignment(
                [(a.campaign_item_id, from_reviewer.pk) for a in moving],
                to_reviewers=target_ids,
                taken=taken,
                seed=_derived_seed(campaign.seed, "reassign", moving[0].pk),
                existing_load=load,
            )
        except ValueError as exc:
            raise ValidationError(
                "Some of this work cannot move: every reviewer you chose already has one of its "
                "items. Add more reviewers."
            ) from exc
        new_rows = []
        for old, (_, _, to) in zip(moving, moves, strict=True):
            position = next_position.get(to, 0)
            next_position[to] = position + 1
            new_rows.append(
                Assignment(
                    campaign=campaign,
                    batch_id=old.batch_id,
                    campaign_item_id=old.campaign_item_id,
                    item_id=old.item_id,
                    reviewer_id=to,
                    candidate_left=old.candidate_left,
                    position=position,
                    rubric_version=campaign.rubric.version,
                    instructions_version=campaign.instructions_version,
                )
            )
        Assignment.objects.filter(pk__in=[a.pk for a in moving]).delete()
        Assignment.objects.bulk_create(new_rows, batch_size=1000)
        campaign.roster.add(*targets)
        emails = {user.pk: user.email or user.username for user in targets}
        counts = dict(Counter(emails[to] for _, _, to in moves))
        record_audit(
            actor,
            "assignments.reassigned",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            from_reviewer=from_reviewer.email or from_reviewer.username,
            to=counts,
            batch=batch.number if batch else None,
            count=len(moving),
        )
    return counts


def _lock_campaign(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("rubric")
        .get(pk=campaign.pk)
    )
