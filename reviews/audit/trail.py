"""The audit trail as leads read it: who did what to which object, and when, newest first.

AuditEvent rows are written where the action happens (the campaigns services, exports, judgment
imports); this module reads them, and records the one action with no service of its own: a
staff member opening the admin pages that show which system each reviewer saw on which side.
"""

from typing import Any

from django.db.models import QuerySet

from reviews.audit.events import record_audit
from reviews.models import AuditEvent, Campaign

PAGE_SIZE = 50
UNBLINDED = "unblinded.viewed"
ACTION_LABELS = {
    "rubric.created": "Rubric created",
    "rubric.changed": "Rubric changed",
    "rubric.copied": "Rubric copied",
    "campaign.created": "Campaign created",
    "campaign.changed": "Campaign changed",
    "campaign.paused": "Campaign paused",
    "campaign.resumed": "Campaign resumed",
    "campaign.closed": "Campaign closed",
    "batches.created": "Batches created",
    "assignments.unassigned": "Assignments withdrawn",
    "assignments.reassigned": "Assignments reassigned",
    "judgments.imported": "Judgments imported",
    "export": "Data exported (de-blinded)",
    "people.invited": "People invited",
    UNBLINDED: "Blinding revealed (admin)",
}


def audit_events(*, campaign: Campaign | None = None, action: str = "") -> QuerySet[AuditEvent]:
    """Events newest first, optionally of one campaign and one action (verb); actor and
    campaign come in the same query."""
    events = AuditEvent.objects.select_related("actor", "campaign").order_by("-created_at", "-pk")
    if campaign is not None:
        events = events.filter(campaign=campaign)
    if action:
        events = events.filter(verb=action)
    return events


def action_choices() -> list[tuple[str, str]]:
    """(verb, label) for every known action and any other verb already recorded."""
    recorded = AuditEvent.objects.order_by().values_list("verb", flat=True).distinct()
    verbs = sorted(set(ACTION_LABELS) | set(recorded))
    return [(verb, action_label(verb)) for verb in verbs]


def action_label(verb: str) -> str:
    return ACTION_LABELS.get(verb, verb)


def detail_items(details: dict[str, Any]) -> list[tuple[str, str]]:
    """The event's details as (key, value) text pairs, nested values flattened to JSON-ish text."""
    return [(str(key), _text(value)) for key, value in sorted((details or {}).items())]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def record_unblinding(*, actor, target: str, campaign_id: int | None = None, **details) -> None:
    """An AuditEvent for a page that shows which system a reviewer saw on which side."""
    record_audit(actor, UNBLINDED, campaign_id=campaign_id, target=target, **details)


class UnblindingAuditAdmin:
    """ModelAdmin mixin: opening the list or one row records an "unblinded.viewed" event."""

    def changelist_view(self, request, extra_context=None):
        query = request.GET.urlencode()
        record_unblinding(
            actor=request.user,
            target=f"admin:{self.model._meta.model_name} list",
            **({"query": query} if query else {}),
        )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rows = self.model.objects.filter(pk=object_id) if str(object_id).isdigit() else None
        campaign_id = (
            rows.values_list("campaign_id", flat=True).first() if rows is not None else None
        )
        record_unblinding(
            actor=request.user,
            target=f"admin:{self.model._meta.model_name}:{object_id}",
            campaign_id=campaign_id,
        )
        return super().change_view(request, object_id, form_url, extra_context)
