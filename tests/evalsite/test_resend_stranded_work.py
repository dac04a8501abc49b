"""Work confirmed while the broker was down is sent again, once: the sweep (beat, and each worker
as it starts), "Send it again" and confirming again. Broker stopped for real: tests/faults."""

from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from datasets import dataset_stats
from datasets import tasks as dataset_tasks
from datasets.importing import jobs as import_jobs
from datasets.models import Dataset, ImportJob
from evalsite import tasks
from reviews import tasks as review_tasks
from reviews.models import Report
from reviews.reports.queueing import resend_stranded_reports
from tests.datasets.conftest import csv_text, wide_rows
from tests.factories import CampaignFactory, DatasetFactory, ItemFactory, ResponseFactory

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(minutes=10)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stranded_job(lead, *, queued_ago: timedelta = LONG_AGO) -> ImportJob:
    """A job the lead confirmed whose message never reached a worker."""
    job = ImportJob(dataset_name="Support", filename="pairs.csv", created_by=lead)
    job.file.save("pairs.csv", ContentFile(csv_text(wide_rows(3)).encode()), save=False)
    job.queued_at = timezone.now() - queued_ago
    job.save()
    return job


def test_the_sweep_runs_a_stranded_import_once(lead, media, tasks_run_at_once):
    job = stranded_job(lead)
    recent = stranded_job(lead, queued_ago=timedelta(seconds=5))  # may still be in the queue

    assert tasks.resend_stranded_work() == 1

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    assert job.summary["items_created"] == 3
    recent.refresh_from_db()
    assert (recent.status, recent.started_at) == (ImportJob.Status.PENDING, None)
    assert tasks.resend_stranded_work() == 0  # done: nothing to send again
    finished = job.finished_at
    dataset_tasks.run_import(job.pk)  # a late duplicate delivery
    job.refresh_from_db()
    assert job.finished_at == finished


def test_two_sweeps_at_once_send_a_job_once(lead, media):
    job = stranded_job(lead)
    with mock.patch.object(dataset_tasks.run_import, "apply_async") as send:
        first = import_jobs._resend(job.pk, job.queued_at)
        second = import_jobs._resend(job.pk, job.queued_at)  # read the same row, claims late

    assert (first, second) == (True, False)
    send.assert_called_once_with(args=(job.pk,), kwargs={}, retry=False)
    job.refresh_from_db()
    assert job.queued_at > timezone.now() - timedelta(seconds=5)  # the claim moved it on


def test_a_worker_starting_resends_stranded_work(lead, media, tasks_run_at_once):
    job = stranded_job(lead)

    tasks.resend_when_a_worker_starts(sender=None)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE


def test_send_it_again_and_confirming_again_resend_a_waiting_job(
    client_for, lead, media, django_capture_on_commit_callbacks
):
    job = stranded_job(lead, queued_ago=timedelta(minutes=1))
    client = client_for(lead)
    page = client.get(reverse("datasets:job", args=[job.pk])).content.decode()
    assert "Waiting for a worker" in page
    assert 'value="retry"' in page

    url = reverse("datasets:job", args=[job.pk])
    with (
        mock.patch.object(dataset_tasks.run_import, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(url, {"action": "retry"})
        client.post(url, {"action": "retry"})  # a double click: sent once
        ImportJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - LONG_AGO)
        client.post(url, {"action": "confirm"})

    assert send.call_count == 2
    send.assert_called_with(args=(job.pk,), kwargs={}, retry=False)


def test_the_sweep_resends_a_queued_report_once(db):
    campaign = CampaignFactory()
    report = Report.objects.create(campaign=campaign, status=Report.Status.QUEUED)
    Report.objects.filter(pk=report.pk).update(created_at=timezone.now() - LONG_AGO)
    fresh = CampaignFactory()
    Report.objects.create(campaign=fresh, status=Report.Status.QUEUED)  # just requested

    with mock.patch.object(review_tasks.aggregate_campaign, "apply_async") as send:
        assert resend_stranded_reports(older_than=timedelta(minutes=2)) == 1
        assert resend_stranded_reports(older_than=timedelta(minutes=2)) == 0

    send.assert_called_once_with(args=(campaign.pk,), kwargs={}, retry=False)


def test_the_sweep_runs_a_stranded_recompute(db, tasks_run_at_once):
    campaign = CampaignFactory()
    report = Report.objects.create(campaign=campaign, status=Report.Status.QUEUED)
    Report.objects.filter(pk=report.pk).update(created_at=timezone.now() - LONG_AGO)

    assert tasks.resend_stranded_work() == 1

    report.refresh_from_db()
    assert report.status == Report.Status.DONE
    assert tasks.resend_stranded_work() == 0


def test_the_sweep_resends_a_metrics_job_that_stalled(db, tasks_run_at_once):
    """The import queued the metrics job but its worker died (or the broker was down): the
    dataset page would say "Computing metrics" for ever."""
    dataset = DatasetFactory()
    item = ItemFactory(dataset=dataset)
    ResponseFactory(item=item, metrics=None)
    dataset_stats.refresh_counts(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.stats["metrics_pending"] is True
    assert tasks.resend_stranded_work() == 0  # just imported: its job has time to start

    Dataset.objects.filter(pk=dataset.pk).update(stats_updated_at=timezone.now() - LONG_AGO)
    with mock.patch.object(dataset_tasks.compute_metrics, "apply_async") as send:
        assert tasks.resend_stranded_work() == 1
        assert tasks.resend_stranded_work() == 0  # claimed: not sent again meanwhile
    send.assert_called_once_with(args=(dataset.pk,), kwargs={}, retry=False)

    Dataset.objects.filter(pk=dataset.pk).update(stats_updated_at=timezone.now() - LONG_AGO)
    assert tasks.resend_stranded_work() == 1  # run at once here
    dataset.refresh_from_db()
    assert dataset.stats["metrics_pending"] is False
    assert tasks.resend_stranded_work() == 0
