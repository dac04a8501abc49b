"""Celery tasks: thin interfaces onto reviews.reports.aggregation (the "reports" queue, see
settings). Services queue them by name through evalsite.queue."""

from celery import shared_task
from django.db import OperationalError

from evalsite.queue import send_safely
from reviews.models import Campaign


@shared_task(
    name="reviews.aggregate_campaign",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def aggregate_campaign(campaign_id: int) -> int:
    """Aggregate the campaign's current judgments into a Report (idempotent); returns its id."""
    # Imported here: a web process loads this module to send the task and should not
    # pay for pandas and statsmodels (seconds on first import) to save a judgment.
    from reviews.reports import aggregation

    return aggregation.run_aggregation(campaign_id=campaign_id).pk


@shared_task(name="reviews.aggregate_active_campaigns")
def aggregate_active_campaigns() -> int:
    """Nightly (beat): queue an aggregation of every active campaign; returns how many were sent."""
    ids = Campaign.objects.filter(status=Campaign.Status.ACTIVE).values_list("pk", flat=True)
    return sum(send_safely(aggregate_campaign, pk) for pk in ids)


@shared_task(name="reviews.send_webhook", bind=True, acks_late=True, max_retries=6)
def send_webhook(self, report_id: int) -> str | None:
    """POST a completed report's decision to its campaign's webhook; retried with back-off."""
    from reviews.api import (
        webhooks,
    )  # the decision reads the report module (scipy) in a web process

    last = self.request.is_eager or self.request.retries >= self.max_retries
    try:
        delivery = webhooks.deliver_report_webhook(report_id=report_id, last_attempt=last)
    except webhooks.WebhookFailed as exc:
        raise self.retry(exc=exc, countdown=webhooks.backoff_seconds(self.request.retries)) from exc
    return delivery.status if delivery else None
