"""Campaign webhooks: when a report completes, POST its decision to the campaign's URL, signed
with HMAC-SHA256 of the body under the campaign's secret (``X-Evalsite-Signature-256:
sha256=<hex>``, as GitHub signs its webhooks). Sent by the ``reviews.send_webhook`` task, queued
by the aggregation after it stores a report: never from a request, so never on the grading path.
Every attempt is logged on a ``WebhookDelivery`` row (one per report)."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from reviews.audit.events import record_audit
from reviews.models import Campaign, Report, WebhookDelivery
from reviews.reports import gate

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SIGNATURE_HEADER = "X-Evalsite-Signature-256"
TIMEOUT_SECONDS = 10
MIN_SECRET_LENGTH = 16


class WebhookFailed(Exception):
    """An attempt failed in a way worth retrying (no answer, or not a 2xx)."""


def set_webhook(
    *, campaign: Campaign, url: str, secret: str | None, actor: User | None = None
) -> Campaign:
    """Set (or, with an empty ``url``, remove) the campaign's webhook. ``secret`` None keeps the
    current one; a URL needs a secret of at least 16 characters to sign with."""
    url = url.strip()
    secret = campaign.webhook_secret if secret is None else secret.strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ValidationError(f"{url!r} is not an http(s) URL.") from None
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValidationError(
                f"A webhook needs a secret of at least {MIN_SECRET_LENGTH} characters."
            )
    else:
        secret = ""
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(webhook_url=url, webhook_secret=secret)
        record_audit(
            actor,
            "campaign.webhook_set" if url else "campaign.webhook_removed",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            url=url,
        )
    campaign.webhook_url, campaign.webhook_secret = url, secret
    return campaign


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload_for(report: Report) -> tuple[str, dict[str, Any]]:
    """The event and the JSON sent for a completed report: its decision (as ``/decision``
    answers it), the campaign, and whether the verdict changed since the previous report."""
    campaign = report.campaign
    decision = gate.decision_of_report(report, threshold=campaign.decision_threshold)
    previous = (
        campaign.reports.filter(status=Report.Status.DONE, result__isnull=False)
        .exclude(pk=report.pk)
        .filter(finished_at__lte=report.finished_at)
        .order_by("-finished_at", "-pk")
        .first()
    )
    before = (
        gate.decision_of_report(previous, threshold=campaign.decision_threshold)["verdict"]
        if previous
        else None
    )
    event = "decision.changed" if before != decision["verdict"] else "report.completed"
    body = {
        "event": event,
        "campaign": campaign.slug,
        "report_id": report.pk,
        "previous_verdict": before,
        **decision,
    }
    return event, body


def deliver_report_webhook(*, report_id: int, last_attempt: bool) -> WebhookDelivery | None:
    """Send (or send again) the webhook of a completed report; idempotent once delivered.
    Raises WebhookFailed when the attempt failed and more are to come; on the last attempt
    the delivery is marked failed instead."""
    report = Report.objects.select_related("campaign").filter(pk=report_id).first()
    if report is None or report.status != Report.Status.DONE or not report.campaign.webhook_url:
        return None
    campaign = report.campaign
    event, body = payload_for(report)
    delivery, _ = WebhookDelivery.objects.get_or_create(
        report=report,
        defaults={
            "campaign": campaign,
            "event": event,
            "url": campaign.webhook_url,
            "payload": body,
        },
    )
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        return delivery
    data = json.dumps(delivery.payload, sort_keys=True, allow_nan=False).encode()
    status, error = _post(campaign.webhook_url, data, campaign.webhook_secret, delivery)
    ok = status is not None and 200 <= status < 300
    now = timezone.now()
    if ok:
        outcome = WebhookDelivery.Status.DELIVERED
    else:
        outcome = WebhookDelivery.Status.FAILED if last_attempt else WebhookDelivery.Status.PENDING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts + 1,
        response_status=status,
        error=error[:2000],
        last_attempt_at=now,
        delivered_at=now if ok else None,
        status=outcome,
        url=campaign.webhook_url,
    )
    delivery.refresh_from_db()
    if not ok and not last_attempt:
        raise WebhookFailed(error or f"HTTP {status}")
    return delivery


def _post(url: str, data: bytes, secret: str, delivery: WebhookDelivery) -> tuple[int | None, str]:
    request = urllib.request.Request(  # noqa: S310 (the URL is checked to be http(s) when set)
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "evalsite-webhook/1",
            "X-Evalsite-Event": delivery.event,
            "X-Evalsite-Delivery": str(delivery.pk),
            SIGNATURE_HEADER: sign(secret, data),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, a bad URL
        return None, f"{type(exc).__name__}: {exc}"


def backoff_seconds(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 30 s, 1, 2, 4, 8, 16 minutes; with the
    task's six retries, about half an hour of trying."""
    return min(30 * 2**retries, 16 * 60)


def deliveries_of(campaign: Campaign, limit: int = 50):
    return WebhookDelivery.objects.filter(campaign=campaign).order_by("-created_at")[:limit]
