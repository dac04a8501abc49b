"""Campaigns: create a campaign over a dataset's paired responses, change what may change,
pause, resume or close it, and what reviewers are told when it does not accept judgments.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.text import slugify

from evalsite.analyze import analyze_after_commit
from reviews.audit.events import record_audit
from reviews.campaigns.helpers import _check_reviewers, _derived_seed, _user_or_none
from reviews.campaigns.masking import default_mask_patterns, validate_patterns
from reviews.models import Campaign, CampaignItem, Rubric

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from datasets.models import Dataset, System

MAX_CLAIM_TIMEOUT_MINUTES = 7 * 24 * 60


def create_campaign(
    *,
    name: str,
    dataset: Dataset,
    baseline: System,
    candidate: System,
    rubric: Rubric,
    overlap: int = 1,
    margin: float = 0.05,
    instructions: str = "",
    mask_patterns: Sequence[str] | None = None,
    seed: int | None = None,
    mode: str = Campaign.Mode.PUSH,
    roster: Iterable[User] = (),
    require_rationale: bool = False,
    gold_rate: float = 0.05,
    repeat_rate: float = 0.0,
    qualify_items: int = 0,
    min_accuracy: float | None = None,
    reviewer_title: str = "",
    claim_timeout_minutes: int = 30,
    actor: User | None = None,
) -> Campaign:
    """A campaign over the dataset's items that have responses from both systems.

    `mask_patterns` None means the defaults (both systems' names and vendor phrases); `seed` None
    means a random one, stored so that assignment is reproducible. Items with a gold answer become
    the campaign's gold items (mixed into queues at `gold_rate`, never counted in the figures).
    `reviewer_title` is what reviewers see instead of `name` (empty: a neutral title).
    """
    errors = quality_setting_errors(
        gold_rate=gold_rate,
        repeat_rate=repeat_rate,
        qualify_items=qualify_items,
        min_accuracy=min_accuracy,
    )
    if not name.strip():
        errors.append("A campaign needs a name.")
    if baseline.pk == candidate.pk:
        errors.append("The baseline and the candidate must be different systems.")
    if overlap < 1:
        errors.append("The overlap k (distinct reviewers per item) must be at least 1.")
    if not 0 <= margin < 0.5:
        errors.append("The non-inferiority margin must be at least 0 and below 0.5.")
    if seed is not None and not 0 <= seed < 2**63:
        errors.append("The seed must be a non-negative whole number.")
    if mode not in Campaign.Mode.values:
        errors.append(f"Unknown mode {mode!r}.")
    if not 1 <= claim_timeout_minutes <= MAX_CLAIM_TIMEOUT_MINUTES:
        errors.append(
            "The claim timeout must be between 1 and "
            f"{MAX_CLAIM_TIMEOUT_MINUTES} minutes (got {claim_timeout_minutes})."
        )
    if errors:
        raise ValidationError(errors)
    if mask_patterns is None:
        mask_patterns = default_mask_patterns([baseline.name, candidate.name])
    patterns = validate_patterns(mask_patterns)
    pairs = _response_pairs(dataset, baseline, candidate)
    if not pairs:
        raise ValidationError(
            f"No item of {dataset.name} has responses from both {baseline.name} and "
            f"{candidate.name}.",
            code="no_items",
        )
    roster = list(roster)
    _check_reviewers(roster)
    gold = set(dataset.items.exclude(gold="").order_by().values_list("pk", flat=True))
    gold &= pairs.keys()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(),
            reviewer_title=reviewer_title.strip(),
            slug=_free_campaign_slug(name),
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=rubric,
            overlap=overlap,
            margin=margin,
            instructions=instructions,
            mask_patterns=patterns,
            require_rationale=require_rationale,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            mode=mode,
            claim_timeout_minutes=claim_timeout_minutes,
            status=Campaign.Status.ACTIVE,
            gold_rate=gold_rate,
            repeat_rate=repeat_rate,
            qualify_items=qualify_items,
            min_accuracy=min_accuracy,
            gold_items=len(gold),
            created_by=_user_or_none(actor),
        )
        CampaignItem.objects.bulk_create(
            (
                CampaignItem(
                    campaign=campaign,
                    item_id=item_id,
                    baseline_response_id=b,
                    candidate_response_id=c,
                    is_gold=item_id in gold,
                    # Pull order, reproducible from the seed like the rest of the assignment.
                    random_key=_derived_seed(campaign.seed, "pull-key", item_id) % 2**31,
                )
                for item_id, (b, c) in pairs.items()
            ),
            batch_size=1000,
        )
        analyze_after_commit(["reviews_campaignitem"], rows=len(pairs))
        if roster:
            campaign.roster.add(*roster)
        record_audit(
            actor,
            "campaign.created",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            items=len(pairs),
            gold_items=len(gold),
            gold_rate=gold_rate,
            repeat_rate=repeat_rate,
            qualify_items=qualify_items,
            min_accuracy=min_accuracy,
            overlap=overlap,
            rubric=rubric.name,
            rubric_version=rubric.version,
            seed=campaign.seed,
        )
    return campaign


def quality_setting_errors(
    *, gold_rate: float, repeat_rate: float, qualify_items: int, min_accuracy: float | None
) -> list[str]:
    """What is wrong with a campaign's reviewer-quality settings (empty when nothing is)."""
    errors = []
    if not 0 <= gold_rate <= 0.5:
        errors.append("The gold rate must be between 0 and 0.5 (0.05 is 1 item in 20).")
    if not 0 <= repeat_rate <= 0.5:
        errors.append("The repeat rate must be between 0 and 0.5.")
    if qualify_items < 0:
        errors.append("The number of qualification items cannot be negative.")
    if min_accuracy is not None:
        if not 0 <= min_accuracy <= 1:
            errors.append("The minimum accuracy must be between 0 and 1.")
        if qualify_items < 1:
            errors.append("A minimum accuracy needs qualification items (--qualify N).")
    return errors


def count_campaign_items(*, dataset: Dataset, baseline: System, candidate: System) -> int:
    """How many items of the dataset have responses from both systems (a campaign's items)."""
    return (
        dataset.items.filter(responses__system=baseline)
        .filter(responses__system=candidate)
        .distinct()
        .count()
    )


def _response_pairs(dataset: Dataset, baseline: System, candidate: System) -> dict[int, tuple]:
    from datasets.models import Response

    found: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        Response.objects.filter(item__dataset=dataset, system__in=[baseline, candidate])
        .order_by("item_id")
        .values_list("item_id", "system_id", "id")
    )
    for item_id, system_id, response_id in rows.iterator(chunk_size=5000):
        found[item_id][system_id] = response_id
    return {
        item_id: (by_system[baseline.pk], by_system[candidate.pk])
        for item_id, by_system in found.items()
        if len(by_system) == 2
    }


RESERVED_SLUGS = frozenset({"new"})  # campaigns/new/ is the create page


def _free_campaign_slug(name: str) -> str:
    base = slugify(name)[:180].strip("-") or "campaign"
    taken = set(Campaign.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    taken |= RESERVED_SLUGS
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def update_campaign(
    *,
    campaign: Campaign,
    actor: User | None = None,
    name: str | None = None,
    reviewer_title: str | None = None,
    instructions: str | None = None,
    mask_patterns: Sequence[str] | None = None,
    margin: float | None = None,
    mode: str | None = None,
    require_rationale: bool | None = None,
    roster: Iterable[User] | None = None,
    operational_gates: Sequence[dict] | None = None,
    segment_key: str | None = None,
) -> Campaign:
    """Change what may change after creation. New instructions bump `instructions_version`, which
    assignments made from then on record."""
    changes: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != campaign.name:
        changes["name"] = name.strip()
    if reviewer_title is not None and reviewer_title.strip() != campaign.reviewer_title:
        changes["reviewer_title"] = reviewer_title.strip()
    if instructions is not None and instructions != campaign.instructions:
        changes["instructions"] = instructions
    if mask_patterns is not None:
        patterns = validate_patterns(mask_patterns)
        if patterns != campaign.mask_patterns:
            changes["mask_patterns"] = patterns
    if margin is not None and margin != campaign.margin:
        if not 0 <= margin < 0.5:
            raise ValidationError("The non-inferiority margin must be at least 0 and below 0.5.")
        changes["margin"] = margin
    if mode is not None and mode != campaign.mode:
        if mode not in Campaign.Mode.values:
            raise ValidationError(f"Unknown mode {mode!r}.")
        changes["mode"] = mode
    if require_rationale is not None and require_rationale != campaign.require_rationale:
        changes["require_rationale"] = require_rationale
    if operational_gates is not None and list(operational_gates) != campaign.operational_gates:
        changes["operational_gates"] = list(operational_gates)
    if segment_key is not None and segment_key.strip() != campaign.segment_key:
        changes["segment_key"] = segment_key.strip()
    roster = None if roster is None else list(roster)
    if roster is not None:
        _check_reviewers(roster)
    with transaction.atomic():
        if changes:
            update = dict(changes)
            if "instructions" in changes:
                update["instructions_version"] = F("instructions_version") + 1
            Campaign.objects.filter(pk=campaign.pk).update(**update)
        if roster is not None:
            before = set(campaign.roster.values_list("pk", flat=True))
            campaign.roster.set(roster)
            if before != {user.pk for user in roster}:
                changes["roster"] = sorted(user.email or user.username for user in roster)
        if changes:
            record_audit(
                actor,
                "campaign.changed",
                campaign=campaign,
                target=f"campaign:{campaign.slug}",
                fields=sorted(changes),
            )
    campaign.refresh_from_db()
    return campaign


STATUS_TRANSITIONS = {
    Campaign.Status.ACTIVE: (Campaign.Status.DRAFT, Campaign.Status.PAUSED),
    Campaign.Status.PAUSED: (Campaign.Status.ACTIVE,),
    Campaign.Status.CLOSED: (Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.PAUSED),
}


def set_status(*, campaign: Campaign, status: str, actor: User | None = None) -> Campaign:
    """Pause (work is kept, nothing can be submitted), resume, or close (final: no judgments)."""
    if status not in STATUS_TRANSITIONS:
        raise ValidationError(f"A campaign cannot be set to {status!r}.")
    with transaction.atomic():
        previous = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
        changed = Campaign.objects.filter(
            pk=campaign.pk, status__in=STATUS_TRANSITIONS[status]
        ).update(status=status)
        if not changed:
            if previous == status:
                return campaign
            raise ValidationError(
                f"A {Campaign.Status(previous).label.lower()} campaign cannot be "
                f"{_STATUS_VERBS[status]}.",
                code="bad_transition",
            )
        record_audit(
            actor,
            f"campaign.{_STATUS_VERBS[status]}",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            previous=previous,
        )
    campaign.status = status
    return campaign


_STATUS_VERBS = {
    Campaign.Status.ACTIVE: "resumed",
    Campaign.Status.PAUSED: "paused",
    Campaign.Status.CLOSED: "closed",
}


def reviewer_notice(campaign: Campaign) -> str | None:
    """What a reviewer is told when the campaign does not accept judgments (None when it does)."""
    if campaign.status == Campaign.Status.PAUSED:
        return (
            "This campaign is paused by the evaluation lead. Everything you submitted is saved; "
            "you can carry on where you left off once it resumes."
        )
    if campaign.status == Campaign.Status.CLOSED:
        return "This campaign is closed: it no longer accepts judgments. Thank you for your work."
    if campaign.status == Campaign.Status.DRAFT:
        return "This campaign has not started yet."
    return None
