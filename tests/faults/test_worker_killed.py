"""A Celery worker SIGKILLed in the middle of an aggregation: the task comes back to another
worker (acks_late: it was never acknowledged) and exactly one completed report is stored."""

import time

import pytest
from django.urls import reverse

from reviews.models import Judgment, Report
from reviews.reports.aggregation import state_key
from tests.faults.campaigns import big_campaign
from tests.faults.conftest import wait_for

pytestmark = pytest.mark.services

# 60,000 judgments: about two seconds of aggregation after the report is claimed.
N_ITEMS = 20_000
# Long enough for the worker to be reading and computing, well short of finishing.
INTO_THE_RUN = 0.4


def test_an_aggregation_killed_mid_way_is_redelivered_and_stored_once(workers, client_for, lead):
    campaign = big_campaign(N_ITEMS)
    n_judgments = Judgment.objects.filter(campaign=campaign, is_current=True).count()
    client = client_for(lead)
    client.post(reverse("report:recompute", args=[campaign.slug]))
    page_url = reverse("report:page", args=[campaign.slug])

    first = workers.start()
    killed = wait_for(
        lambda: Report.objects.filter(campaign=campaign, status=Report.Status.RUNNING).first(),
        timeout=60,
        what="the first worker to claim the aggregation",
        every=0.05,
    )
    time.sleep(INTO_THE_RUN)
    assert not Report.objects.filter(campaign=campaign, status=Report.Status.DONE).exists(), (
        "the aggregation finished before the worker was killed: make the campaign bigger"
    )
    workers.kill(first)
    assert "Computing a new report" in client.get(page_url).text

    # Only this worker has a short visibility timeout: it takes back the message the dead one
    # received and never acknowledged.
    workers.start(visibility_timeout=1)
    done = wait_for(
        lambda: Report.objects.filter(campaign=campaign, status=Report.Status.DONE).first(),
        timeout=90,
        what="the redelivered aggregation to finish on the second worker",
    )
    time.sleep(2)  # a second delivery, if there were one, would have finished by now

    assert Report.objects.filter(campaign=campaign, status=Report.Status.DONE).count() == 1
    assert done.state_key == state_key(campaign.pk)
    assert done.n_judgments == done.result["n_judgments"] == n_judgments
    # The killed run never finished and never wrote figures.
    killed.refresh_from_db()
    assert (killed.status, killed.result) == (Report.Status.RUNNING, None)
    page = client.get(page_url).text
    assert f"from {n_judgments:,} judgments" in page or f"from {n_judgments} judgments" in page
    assert "Computing a new report" not in page
