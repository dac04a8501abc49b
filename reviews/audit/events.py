"""Recording an audit event: every service that creates, changes or unblinds something calls
``record_audit`` in its own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reviews.campaigns.helpers import _user_or_none
from reviews.models import AuditEvent, Campaign

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def record_audit(
    actor: User | None,
    verb: str,
    *,
    campaign: Campaign | None = None,
    campaign_id: int | None = None,
    target: str = "",
    **details: Any,
) -> None:
    """One AuditEvent (the lead's audit page reads them); an anonymous actor is stored as none."""
    AuditEvent.objects.create(
        actor=_user_or_none(actor),
        verb=verb,
        campaign_id=campaign.pk if campaign is not None else campaign_id,
        target=target,
        details=details,
    )
