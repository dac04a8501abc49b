"""Pull mode: gold items and flipped repeats served in place of a live claim (issue #16).

Push mode mixes them into a queue when it is planned (reviews.campaigns.quality_mix); in pull
mode the queue grows one item at a time, so before each claim this decides whether the next item
is gold (while qualifying, or at the gold rate, never straight after gold) or a repeat of an item
the reviewer answered at least REPEAT_MIN_GAP items ago (at the repeat rate). The draw comes from
the campaign seed, the reviewer and the queue place, so it is reproducible.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Exists, F, IntegerField, Max, OuterRef, Q
from django.db.models.functions import Mod

from reviews.campaigns.helpers import _derived_seed, _least_used_side
from reviews.campaigns.planning import REPEAT_MIN_GAP
from reviews.models import Assignment, Campaign, CampaignItem

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_DRAWS = 1_000_000
_PRIME = 2_147_483_647


def next_quality_item(
    *, campaign: Campaign, reviewer: User, fresh: dict[str, Any]
) -> Assignment | None:
    """A new gold or repeat assignment for the reviewer's next pull, or None for a live claim.
    `fresh` holds the campaign's seed, gold_items, gold_rate, repeat_rate, qualify_items and
    versions as just read."""
    if not fresh["gold_items"] and not fresh["repeat_rate"]:
        return None
    queue = Assignment.objects.filter(campaign_id=campaign.pk, reviewer=reviewer)
    mine = queue.aggregate(
        n=Count("pk"),
        n_gold=Count("pk", filter=Q(kind=Assignment.Kind.GOLD)),
        n_left=Count("pk", filter=Q(candidate_left=True)),
        top=Max("position"),
    )
    qualifying = mine["n_gold"] < fresh["qualify_items"] and mine["n"] == mine["n_gold"]
    draw = _derived_seed(fresh["seed"], "pull-quality", reviewer.pk, mine["n"]) % _DRAWS / _DRAWS
    if fresh["gold_items"] and (qualifying or draw < fresh["gold_rate"]):
        last = queue.order_by("-position", "-pk").values_list("kind", flat=True).first()
        if qualifying or last != Assignment.Kind.GOLD:  # never two gold in a row
            return _gold(campaign, reviewer, fresh, mine)
        return None
    repeat_draw = fresh["gold_rate"] <= draw < fresh["gold_rate"] + fresh["repeat_rate"]
    if mine["top"] is not None and repeat_draw:
        return _repeat(campaign, reviewer, fresh, mine)
    return None


def _gold(campaign: Campaign, reviewer: User, fresh: dict, mine: dict) -> Assignment | None:
    # A seeded order of the gold items per reviewer, so reviewers do not meet them in one order.
    mix = _derived_seed(fresh["seed"], "pull-gold", reviewer.pk)
    multiplier, offset = 1 + mix % (_PRIME - 1), (mix >> 31) % _PRIME
    order = Mod(Mod(F("pk"), _PRIME) * multiplier + offset, _PRIME, output_field=IntegerField())
    item = (
        CampaignItem.objects.filter(campaign_id=campaign.pk, is_gold=True)
        .exclude(Exists(Assignment.objects.filter(campaign_item=OuterRef("pk"), reviewer=reviewer)))
        .order_by(order, "pk")
        .values_list("pk", "item_id")
        .first()
    )
    if item is None:
        return None
    left = _least_used_side(Counter({True: mine["n_left"], False: mine["n"] - mine["n_left"]}))
    if left is None:
        left = _derived_seed(fresh["seed"], "side", item[0], reviewer.pk) % 2 == 0
    return _create(campaign, reviewer, fresh, mine, item, left, Assignment.Kind.GOLD)


def _repeat(campaign: Campaign, reviewer: User, fresh: dict, mine: dict) -> Assignment | None:
    repeated = Assignment.objects.filter(
        campaign_id=campaign.pk,
        reviewer=reviewer,
        kind=Assignment.Kind.REPEAT,
        campaign_item=OuterRef("campaign_item"),
    )
    original = (
        Assignment.objects.filter(
            campaign_id=campaign.pk,
            reviewer=reviewer,
            kind=Assignment.Kind.LIVE,
            status=Assignment.Status.DONE,
            position__lte=mine["top"] - REPEAT_MIN_GAP,
        )
        .exclude(Exists(repeated))
        .order_by("position")
        .values_list("campaign_item_id", "item_id", "candidate_left")
        .first()
    )
    if original is None:
        return None
    ci, item_id, left = original
    return _create(campaign, reviewer, fresh, mine, (ci, item_id), not left, Assignment.Kind.REPEAT)


def _create(campaign, reviewer, fresh, mine, item, left, kind) -> Assignment:
    return Assignment.objects.create(
        campaign_id=campaign.pk,
        campaign_item_id=item[0],
        item_id=item[1],
        reviewer=reviewer,
        candidate_left=left,
        position=(mine["top"] + 1) if mine["top"] is not None else 0,
        rubric_version=fresh["rubric_version"],
        instructions_version=fresh["instructions_version"],
        kind=kind,
    )
