"""Pull mode: a reviewer's next assignment, claiming a slot on an open item when a pull-mode
campaign has nothing queued for them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, Max, OuterRef, Q
from django.db.models.functions import Mod

from reviews.campaigns.helpers import _derived_seed, _least_used_side
from reviews.campaigns.services import reviewer_notice
from reviews.grading import hot_reads, pull_quality, qualification
from reviews.models import Assignment, Campaign, CampaignItem

if TYPE_CHECKING:
    from django.contrib.auth.models import User


_PRIME = 2_147_483_647  # 2**31 - 1
PULL_ATTEMPTS = 5


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
    fresh = (
        Campaign.objects.filter(pk=campaign.pk)
        .annotate(paused=Exists(qualification.active_pauses(reviewer=reviewer)))
        .values(
            "status",
            "mode",
            "overlap",
            "seed",
            "instructions_version",
            "rubric__version",
            "paused",
            "gold_items",
            "gold_rate",
            "repeat_rate",
            "qualify_items",
        )
        .get()
    )
    if fresh["paused"]:
        raise ValidationError(qualification.PAUSED_MESSAGE, code="reviewer_paused")
    if fresh["status"] != Campaign.Status.ACTIVE:
        campaign.status = fresh["status"]
        raise ValidationError(reviewer_notice(campaign) or "", code=fresh["status"])
    if fresh["mode"] != Campaign.Mode.PULL:
        return None
    if not campaign.roster.filter(pk=reviewer.pk).exists():
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


def _claim_slot(campaign: Campaign, reviewer: User, fresh: dict[str, Any]) -> Assignment | None:
    # A seeded permutation of ids, different per reviewer, so pulls follow neither the file order
    # nor each other; items already started come first so that they reach k judgments sooner.
    mix = _derived_seed(fresh["seed"], "pull", reviewer.pk)
    multiplier, offset = 1 + mix % (_PRIME - 1), (mix >> 31) % _PRIME
    shuffle = Mod(Mod(F("pk"), _PRIME) * multiplier + offset, _PRIME, output_field=IntegerField())
    with transaction.atomic():
        slot = (
            CampaignItem.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign.pk, slots_taken__lt=fresh["overlap"], is_gold=False)
            .exclude(
                Exists(Assignment.objects.filter(campaign_item=OuterRef("pk"), reviewer=reviewer))
            )
            .order_by("-slots_taken", shuffle, "pk")
            .values_list("pk", "item_id")
            .first()
        )
        if slot is None:
            return None
        ci, item_id = slot
        claimed = CampaignItem.objects.filter(pk=ci, slots_taken__lt=fresh["overlap"]).update(
            slots_taken=F("slots_taken") + 1
        )
        if not claimed:  # cannot happen while we hold the row lock; belt and braces
            raise IntegrityError("slot already full")
        mine = Assignment.objects.filter(campaign_id=campaign.pk, reviewer=reviewer).aggregate(
            n_left=Count("pk", filter=Q(candidate_left=True)),
            n=Count("pk"),
            top=Max("position"),
        )
        theirs = Assignment.objects.filter(campaign_item_id=ci).aggregate(
            n_left=Count("pk", filter=Q(candidate_left=True)), n=Count("pk")
        )
        left = _least_used_side(
            Counter({True: mine["n_left"], False: mine["n"] - mine["n_left"]}),
            Counter({True: theirs["n_left"], False: theirs["n"] - theirs["n_left"]}),
        )
        if left is None:
            left = _derived_seed(fresh["seed"], "side", ci, reviewer.pk) % 2 == 0
        return Assignment.objects.create(
            campaign_id=campaign.pk,
            campaign_item_id=ci,
            item_id=item_id,
            reviewer=reviewer,
            candidate_left=left,
            position=(mine["top"] + 1) if mine["top"] is not None else 0,
            rubric_version=fresh["rubric__version"],
            instructions_version=fresh["instructions_version"],
        )
