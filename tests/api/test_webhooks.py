"""Campaign webhooks: a completed report's decision POSTed, signed, to a local HTTP server
(127.0.0.1 only), retried on failure, logged; set by a lead on the campaign's webhook page."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from reviews.api import webhooks
from reviews.models import AuditEvent, Campaign, WebhookDelivery
from reviews.reports.aggregation import run_aggregation
from tests.api.conftest import store_report
from tests.factories import CampaignFactory, CampaignItemFactory, JudgmentFactory

pytestmark = pytest.mark.django_db
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver():
    """A local HTTP server recording what it is sent; answers with ``receiver.status``."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(server.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.status = 204
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/evalsite"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def hooked_campaign(url):
    campaign = CampaignFactory()
    return webhooks.set_webhook(campaign=campaign, url=url, secret=SECRET)


def test_a_completed_report_posts_its_decision_signed_with_the_secret(
    receiver, django_capture_on_commit_callbacks
):
    campaign = hooked_campaign(receiver.url)
    JudgmentFactory(assignment__campaign_item=CampaignItemFactory(campaign=campaign))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = run_aggregation(campaign_id=campaign.pk)
    assert len(callbacks) == 1  # queued after the report was stored, by name
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Evalsite-Signature-256"] == expected
    payload = json.loads(body)
    assert payload["campaign"] == campaign.slug
    assert payload["report_id"] == report.pk
    assert payload["event"] == "decision.changed"  # from nothing to a first verdict
    assert {"verdict", "probability", "threshold", "reasons", "report_at"} <= set(payload)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 204)


def test_an_unchanged_verdict_is_sent_as_report_completed(receiver):
    campaign = hooked_campaign(receiver.url)
    store_report(campaign, {"verdict": "migrate", "threshold": 0.95})
    second = store_report(campaign, {"verdict": "migrate", "threshold": 0.95})
    webhooks.deliver_report_webhook(report_id=second.pk, last_attempt=True)
    assert json.loads(receiver.received[0][1])["event"] == "report.completed"


def test_a_failed_attempt_is_retried_then_logged_as_failed(receiver):
    campaign = hooked_campaign(receiver.url)
    report = store_report(campaign, {"verdict": "migrate", "threshold": 0.95})
    receiver.status = 503
    with pytest.raises(webhooks.WebhookFailed):
        webhooks.deliver_report_webhook(report_id=report.pk, last_attempt=False)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 503)
    webhooks.deliver_report_webhook(report_id=report.pk, last_attempt=True)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    receiver.status = 200
    # Delivered at a later try; then a redelivered task sends nothing more.
    WebhookDelivery.objects.update(status="pending")
    webhooks.deliver_report_webhook(report_id=report.pk, last_attempt=True)
    webhooks.deliver_report_webhook(report_id=report.pk, last_attempt=True)
    assert len(receiver.received) == 3
    assert WebhookDelivery.objects.get().status == "delivered"


def test_the_task_retries_with_back_off_on_failure(monkeypatch):
    from reviews import tasks

    calls = []

    def fail(*, report_id, last_attempt):
        calls.append(last_attempt)
        raise webhooks.WebhookFailed("HTTP 503")

    monkeypatch.setattr(webhooks, "deliver_report_webhook", fail)
    retried = []
    monkeypatch.setattr(
        tasks.send_webhook, "retry", lambda exc, countdown: retried.append(countdown) or exc
    )
    with pytest.raises(webhooks.WebhookFailed):
        tasks.send_webhook.run(1)
    assert calls == [False]
    assert retried == [30]


def test_an_unreachable_url_is_logged_not_raised_on_the_last_attempt():
    campaign = hooked_campaign("http://127.0.0.1:9/nothing-listens-here")
    report = store_report(campaign, {"verdict": "migrate", "threshold": 0.95})
    delivery = webhooks.deliver_report_webhook(report_id=report.pk, last_attempt=True)
    assert delivery.status == "failed"
    assert delivery.error


def test_no_webhook_means_nothing_is_queued(django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    JudgmentFactory(assignment__campaign_item=CampaignItemFactory(campaign=campaign))
    with django_capture_on_commit_callbacks() as callbacks:
        run_aggregation(campaign_id=campaign.pk)
    assert callbacks == []


def test_a_lead_sets_the_webhook_on_its_page_and_the_secret_is_never_shown(client_for, lead):
    campaign = CampaignFactory()
    url = reverse("reviews:campaign-webhook", args=[campaign.slug])
    client = client_for(lead)
    response = client.post(url, {"url": "https://ci.example.org/hook", "secret": SECRET})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.webhook_url, campaign.webhook_secret) == (
        "https://ci.example.org/hook",
        SECRET,
    )
    assert SECRET not in client.get(url).content.decode()
    assert AuditEvent.objects.filter(verb="campaign.webhook_set", actor=lead).exists()
    # Too short a secret, or a URL that is not http(s): refused, nothing changed.
    page = client.post(url, {"url": "ftp://ci.example.org/hook", "secret": "x"})
    assert page.status_code == 200
    assert Campaign.objects.get(pk=campaign.pk).webhook_url == "https://ci.example.org/hook"
    client.post(url, {"url": "", "secret": ""})
    assert Campaign.objects.get(pk=campaign.pk).webhook_url == ""
