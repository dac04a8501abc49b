"""Reports requested but never started: sent again (the broker was down, or lost the message)."""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from evalsite.queue import send_safely
from reviews.models import Report


def resend_stranded_reports(*, older_than: timedelta, limit: int = 200) -> int:
    """Send the aggregation again for every campaign whose QUEUED report no worker has started
    within ``older_than``; returns how many were sent.

    A queued report's ``started_at`` records the last resend (the run overwrites it when it
    claims the report): the conditional UPDATE of it is the claim, so sweeps running at once
    send each report once, and a second delivery is answered by the stored report
    (``run_aggregation`` is idempotent per state of the judgments).
    """
    cutoff = timezone.now() - older_than
    waiting = (
        Report.objects.filter(status=Report.Status.QUEUED, created_at__lt=cutoff)
        .filter(Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
        .order_by("created_at")
        .values_list("pk", "campaign_id", "started_at")[:limit]
    )
    sent, campaigns = 0, set()
    for pk, campaign_id, last_sent in waiting:
        claimed = Report.objects.filter(
            pk=pk, status=Report.Status.QUEUED, started_at=last_sent
        ).update(started_at=timezone.now())
        if claimed and campaign_id not in campaigns:
            campaigns.add(campaign_id)
            sent += send_safely("reviews.aggregate_campaign", campaign_id)
    return sent
