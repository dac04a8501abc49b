"""A report made due by a submission is sent after the response, not inside the request."""

import threading
from unittest import mock

import pytest

from evalsite import queue
from evalsite.celery import app
from reviews.grading import services as grading
from reviews.models import Campaign
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_mode():
    # As in production: a broker, not eager tasks (no broker is touched: the send is faked).
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager


def test_the_request_does_not_wait_for_the_broker(
    broker_mode, settings, django_capture_on_commit_callbacks
):
    settings.AGGREGATE_EVERY_N_JUDGMENTS = 1
    campaign = CampaignFactory(judgments_since_report=1)
    release, sent = threading.Event(), []

    def slow_send(task, *args, **kwargs):
        release.wait(timeout=10)  # a broker that takes its time
        sent.append((task, args))
        return True

    with mock.patch.object(queue, "send_safely", side_effect=slow_send):
        with django_capture_on_commit_callbacks(execute=True):
            grading.after_judgment_saved(campaign)
        # The request's work (the commit and its callbacks) is over; the send is still waiting.
        assert sent == []
        release.set()
        # Still patched: the background thread looks send_safely up when it gets to run.
        queue.wait_for_sends()
    assert sent == [("reviews.aggregate_campaign", (campaign.pk,))]


@pytest.mark.django_db(transaction=True)  # the background thread reads what the test wrote
def test_a_broker_outage_gives_the_count_back_from_the_background(
    broker_mode, settings, django_capture_on_commit_callbacks
):
    settings.AGGREGATE_EVERY_N_JUDGMENTS = 4
    campaign = CampaignFactory(judgments_since_report=4)
    with (
        mock.patch.object(queue, "send_safely", return_value=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        grading.after_judgment_saved(campaign)
        queue.wait_for_sends()
    assert Campaign.objects.get(pk=campaign.pk).judgments_since_report == 4
