"""An import confirmed and a recompute requested while Redis (the broker) is stopped: both wait,
and run exactly once when Redis and a worker are back, without anyone clicking again."""

import logging
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets import tasks as dataset_tasks
from datasets.models import ImportJob, Item
from evalsite import tasks
from evalsite.queue import send_safely
from reviews.models import Report
from tests.datasets.conftest import csv_text, wide_rows
from tests.factories import CampaignFactory
from tests.faults.conftest import wait_for

pytestmark = pytest.mark.services

RESEND_AFTER = 1  # seconds; production waits QUEUE_RESEND_AFTER_SECONDS (2 minutes)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_work_confirmed_while_the_broker_is_down_runs_once_when_it_is_back(
    workers, broker, media, client_for, lead, caplog, settings, monkeypatch
):
    settings.QUEUE_RESEND_AFTER_SECONDS = RESEND_AFTER
    monkeypatch.setenv("QUEUE_RESEND_AFTER_SECONDS", str(RESEND_AFTER))  # the workers' setting
    client = client_for(lead)
    campaign = CampaignFactory()
    response = client.post(
        reverse("datasets:upload"),
        {"file": SimpleUploadedFile("pairs.csv", csv_text(wide_rows(6)).encode()),
         "dataset": "Support"},
    )  # fmt: skip
    job = ImportJob.objects.get()
    assert response.status_code == 302

    broker.stop()
    with caplog.at_level(logging.ERROR, logger="evalsite.queue"):
        client.post(reverse("datasets:job", args=[job.pk]), {"action": "confirm"})
        recompute = client.post(reverse("report:recompute", args=[campaign.slug]))
    assert recompute.status_code == 302, recompute.status_code
    assert "Could not send datasets.run_import" in caplog.text
    page = client.get(reverse("datasets:job", args=[job.pk])).content.decode()
    assert "Waiting for a worker" in page
    assert Report.objects.get(campaign=campaign).status == Report.Status.QUEUED

    time.sleep(RESEND_AFTER + 0.5)
    broker.start()  # a fresh Redis: nothing of the outage was kept
    workers.start()  # sweeps as it starts

    wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DONE).exists(),
        timeout=60,
        what="the stranded import to run",
    )
    report = wait_for(
        lambda: Report.objects.filter(campaign=campaign, status=Report.Status.DONE).first(),
        timeout=60,
        what="the stranded recompute to run",
    )
    job.refresh_from_db()
    assert job.summary["items_created"] == 6
    assert Item.objects.filter(dataset__name="Support").count() == 6

    # Nothing runs twice: the next sweeps find nothing, and a duplicate message is a no-op.
    time.sleep(RESEND_AFTER + 0.5)
    assert tasks.resend_stranded_work() == 0
    finished = job.finished_at
    assert send_safely(dataset_tasks.run_import, job.pk)
    assert send_safely(tasks.heartbeat, "after the duplicate")  # the solo worker runs in order
    wait_for(
        lambda: tasks.WorkerHeartbeat.objects.filter(note="after the duplicate").exists(),
        timeout=30,
        what="the worker to get past the duplicate",
    )
    job.refresh_from_db()
    assert (job.status, job.finished_at) == (ImportJob.Status.DONE, finished)
    assert Report.objects.filter(campaign=campaign).count() == 1
    assert Report.objects.get(campaign=campaign).pk == report.pk
