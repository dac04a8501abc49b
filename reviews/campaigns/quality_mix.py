"""Mixing gold items and flipped repeats into reviewers' new queues (push mode).

The plan (reviews.campaigns.planning) gives each reviewer live items in queue order; here each
reviewer's share of the campaign's gold items and repeats of their own live items are put in
(planning.mix_quality_items) and the queue is renumbered. A gold or repeat assignment is an
ordinary assignment with its own token, side draw and place: nothing a reviewer receives tells
it apart (tests/reviews/test_blinding.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from reviews.campaigns import planning
from reviews.campaigns.helpers import _derived_seed
from reviews.models import Assignment, Campaign, CampaignItem


@dataclass(frozen=True, slots=True)
class MixedAssignment:
    item_id: int  # the campaign item
    reviewer: int
    candidate_left: bool
    position: int
    batch_index: int
    kind: str


def mix_into_queues(
    campaign: Campaign,
    plan: Sequence[planning.PlannedAssignment],
    *,
    started: Collection[int],
    seed: int,
) -> list[MixedAssignment]:
    """The plan with gold and repeats mixed into each reviewer's part, positions renumbered from
    the reviewer's first planned position. Reviewers not in `started` (no work in the campaign
    yet) begin with the campaign's qualification items."""
    live_only = [
        MixedAssignment(p.item_id, p.reviewer, p.candidate_left, p.position, p.batch_index, "live")
        for p in plan
    ]
    wants_gold = campaign.gold_rate > 0 or campaign.qualify_items > 0
    if not plan or not (wants_gold or campaign.repeat_rate > 0):
        return live_only
    by_reviewer: dict[int, list[planning.PlannedAssignment]] = defaultdict(list)
    for p in plan:
        by_reviewer[p.reviewer].append(p)
    gold = _gold_pools(campaign, list(by_reviewer)) if wants_gold else {}
    last_kind = _last_kinds(campaign, list(by_reviewer))
    out: list[MixedAssignment] = []
    for reviewer, planned in by_reviewer.items():
        planned.sort(key=lambda p: p.position)
        entries = planning.mix_quality_items(
            [p.item_id for p in planned],
            gold=gold.get(reviewer, []),
            gold_rate=campaign.gold_rate,
            repeat_rate=campaign.repeat_rate,
            qualify=0 if reviewer in started else campaign.qualify_items,
            after_gold=last_kind.get(reviewer) == Assignment.Kind.GOLD,
            seed=_derived_seed(seed, "quality", reviewer),
        )
        out.extend(_placed(entries, planned, reviewer, seed))
    return out


def _placed(
    entries: list[planning.QueueEntry],
    planned: list[planning.PlannedAssignment],
    reviewer: int,
    seed: int,
) -> list[MixedAssignment]:
    live = {p.item_id: p for p in planned}
    first = planned[0].position
    # Gold sides alternate from a seeded start, so each reviewer sees the candidate's answer on
    # the left on about half their gold items too.
    gold_left = _derived_seed(seed, "gold-side", reviewer) % 2 == 0
    batch_index = planned[0].batch_index
    rows = []
    for offset, entry in enumerate(entries):
        if entry.kind == "live":
            p = live[entry.item_id]
            batch_index, left = p.batch_index, p.candidate_left
        elif entry.kind == "repeat":
            left = not live[entry.item_id].candidate_left  # the sides swapped
        else:
            left, gold_left = gold_left, not gold_left
        rows.append(
            MixedAssignment(entry.item_id, reviewer, left, first + offset, batch_index, entry.kind)
        )
    return rows


def _gold_pools(campaign: Campaign, reviewers: list[int]) -> dict[int, list[int]]:
    """Per reviewer, the campaign's gold items they have not been given yet."""
    gold = list(
        CampaignItem.objects.filter(campaign=campaign, is_gold=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not gold:
        return {}
    had: dict[int, set[int]] = defaultdict(set)
    for reviewer, ci in Assignment.objects.filter(
        campaign=campaign, reviewer_id__in=reviewers, kind=Assignment.Kind.GOLD
    ).values_list("reviewer_id", "campaign_item_id"):
        had[reviewer].add(ci)
    return {r: [ci for ci in gold if ci not in had[r]] for r in reviewers}


def _last_kinds(campaign: Campaign, reviewers: list[int]) -> dict[int, str]:
    """The kind of each reviewer's last queued assignment (so two gold never touch)."""
    top = (
        Assignment.objects.filter(campaign=campaign, reviewer_id=OuterRef("reviewer_id"))
        .order_by("-position", "-pk")
        .values("pk")[:1]
    )
    return dict(
        Assignment.objects.filter(
            campaign=campaign, reviewer_id__in=reviewers, pk=Subquery(top)
        ).values_list("reviewer_id", "kind")
    )
