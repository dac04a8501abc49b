"""Adjudication: the items reviewers disagree on, every answer with the systems named (an
unblinding, audited), and the lead's final label, which the report takes as the item's truth.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from evalsite.queue import enqueue_on_commit
from reviews.audit.trail import record_unblinding
from reviews.models import Adjudication, Assignment, Campaign, CampaignItem, Judgment

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_ITEMS = 200


@dataclass
class Disputed:
    campaign_item: int
    external_id: str
    prompt: str
    baseline_text: str
    candidate_text: str
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # reviewer, answer, why
    label: str = ""
    note: str = ""


def disputed_items(*, campaign: Campaign, actor: User) -> list[Disputed]:
    """Live items whose current judgments disagree (at most MAX_ITEMS), with every answer named
    by system. Records the opening as an unblinding."""
    rows = (
        Judgment.objects.filter(
            campaign=campaign, is_current=True, assignment__kind=Assignment.Kind.LIVE
        )
        .exclude(assignment__campaign_item__is_gold=True)
        .order_by("assignment__campaign_item_id", "reviewer__email")
        .values_list(
            "assignment__campaign_item_id", "reviewer__email", "reviewer__username",
            "preference", "rationale",
        )
    )  # fmt: skip
    answers: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for ci, email, username, preference, rationale in rows.iterator(chunk_size=2000):
        answers[ci].append((email or username, preference, rationale))
    disputed = [ci for ci, given in answers.items() if len({p for _, p, _ in given}) > 1]
    disputed = disputed[:MAX_ITEMS]
    items = CampaignItem.objects.filter(pk__in=disputed).select_related(
        "item", "baseline_response", "candidate_response"
    )
    labels = {
        a.campaign_item_id: a for a in Adjudication.objects.filter(campaign_item__in=disputed)
    }
    names = {"baseline": campaign.baseline.name, "candidate": campaign.candidate.name}
    out = []
    for ci in sorted(items, key=lambda ci: ci.item.external_id):
        label = labels.get(ci.pk)
        out.append(
            Disputed(
                campaign_item=ci.pk,
                external_id=ci.item.external_id,
                prompt=ci.item.prompt,
                baseline_text=ci.baseline_response.text,
                candidate_text=ci.candidate_response.text,
                answers=[(who, names.get(p, p), why) for who, p, why in answers[ci.pk]],
                label=label.label if label else "",
                note=label.note if label else "",
            )
        )
    record_unblinding(
        actor=actor,
        target=f"campaign:{campaign.slug}:adjudication",
        campaign_id=campaign.pk,
        page="adjudication",
        items=len(out),
    )
    return out


def record_adjudication(
    *, campaign: Campaign, campaign_item_id: int, label: str, note: str = "", actor: User
) -> Adjudication:
    """Set (or change) the final label of a campaign item; the report is recomputed."""
    if label not in Judgment.Preference.values:
        raise ValidationError(f"Unknown label {label!r}.")
    ci = CampaignItem.objects.filter(campaign=campaign, pk=campaign_item_id, is_gold=False).first()
    if ci is None:
        raise ValidationError("No such item in this campaign.")
    with transaction.atomic():
        adjudication, _ = Adjudication.objects.update_or_create(
            campaign_item=ci,
            defaults={"campaign": campaign, "label": label, "note": note[:2000],
                      "decided_by": actor},
        )  # fmt: skip
        record_unblinding(
            actor=actor,
            target=f"campaign:{campaign.slug}:adjudication",
            campaign_id=campaign.pk,
            item=ci.item.external_id,
            label=label,
        )
        enqueue_on_commit("reviews.aggregate_campaign", campaign.pk)
    return adjudication
