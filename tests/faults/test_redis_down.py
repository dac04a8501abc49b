"""Redis (the Celery broker) stopped while reviewers grade: grading goes on, every judgment is
stored exactly once, and the report catches up when Redis is back."""

import logging
import time

import pytest
from django.test import Client
from django.urls import reverse

from evalsite.queue import send_safely, wait_for_sends
from reviews import tasks
from reviews.models import Assignment, Judgment, Report
from tests.conftest import make_user
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory
from tests.faults.conftest import grading_answers, ticket_of, wait_for

pytestmark = pytest.mark.services

EVERY = 3  # re-aggregate after this many judgments
# Far above a normal save (tens of ms), far below a broker connection timeout with retries.
SECONDS_PER_SUBMISSION = 3


def grade(client: Client, assignment: Assignment):
    page = client.get(reverse("grading:grade", args=[assignment.token]))
    assert page.status_code == 200
    started = time.monotonic()
    response = client.post(
        reverse("grading:submit", args=[assignment.token]), grading_answers(ticket_of(page.text))
    )
    return response, time.monotonic() - started


def reviewer_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def done_reports(campaign):
    return Report.objects.filter(campaign=campaign, status=Report.Status.DONE)


def test_grading_goes_on_while_redis_is_down_and_the_report_catches_up(
    workers, broker, settings, client_for, lead, caplog
):
    settings.AGGREGATE_EVERY_N_JUDGMENTS = EVERY
    campaign = CampaignFactory()
    reviewers = [make_user(f"r{i}.reviewer@example.org", "reviewer") for i in range(2)]
    work = {
        user: [
            AssignmentFactory(campaign_item=CampaignItemFactory(campaign=campaign), reviewer=user)
            for _ in range(3)
        ]
        for user in reviewers
    }
    clients = {user: reviewer_client(user) for user in reviewers}

    broker.stop()
    with caplog.at_level(logging.ERROR, logger="evalsite.queue"):
        during_outage = [a for user in reviewers for a in work[user][:2]]
        for assignment in during_outage:
            response, seconds = grade(clients[assignment.reviewer], assignment)
            assert response.status_code == 302, response.content[:500]
            assert seconds < SECONDS_PER_SUBMISSION
        wait_for_sends()  # the due report is sent (and fails) after the response
    # The outage was real: the aggregation due after the third judgment could not be sent.
    assert "Could not send reviews.aggregate_campaign" in caplog.text
    for assignment in during_outage:
        assert Judgment.objects.filter(assignment=assignment).count() == 1
        assignment.refresh_from_db()
        assert assignment.status == Assignment.Status.DONE
    assert not Report.objects.filter(campaign=campaign).exists()

    broker.start()
    workers.start()
    # The nightly beat run picks up every active campaign.
    assert send_safely(tasks.aggregate_active_campaigns)
    first = wait_for(
        lambda: done_reports(campaign).first(), timeout=60, what="the nightly run's report"
    )
    assert first.n_judgments == 4

    # The next judgment after the outage queues the aggregation the outage swallowed.
    last = work[reviewers[0]][2]
    response, _ = grade(clients[last.reviewer], last)
    assert response.status_code == 302
    latest = wait_for(
        lambda: done_reports(campaign).filter(n_judgments=5).first(),
        timeout=60,
        what="a report of all five judgments after the next one",
    )
    assert Judgment.objects.filter(campaign=campaign).count() == 5
    assert done_reports(campaign).filter(state_key=latest.state_key).count() == 1
    page = client_for(lead).get(reverse("report:page", args=[campaign.slug])).text
    assert "from 5 judgments" in page
