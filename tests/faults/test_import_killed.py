"""An import killed (SIGKILL) half-way: the dataset keeps exactly what it had, the job shows as
failed with the reason, and running the import again succeeds."""

import csv
import os
import signal
import subprocess
import sys

import pytest
from django.core.files import File
from django.urls import reverse

from datasets.importing import jobs as import_jobs
from datasets.importing import services as importing
from datasets.models import Dataset, ImportJob, Item, Response
from tests.faults.conftest import ROOT, database_url, side_connection, wait_for

pytestmark = pytest.mark.services

# Seconds of writing into an existing dataset (batches of 2,000 rows, progress on the job).
JOB_ROWS = 20_000
# A new dataset streams into one COPY: caught while that COPY is running.
COMMAND_ROWS = 8_000
ALREADY_STORED = 50


def write_pairs(path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["item_id", "prompt", "system_a", "response_a", "system_b", "response_b", "category"]
        )
        for i in range(n):
            writer.writerow(
                [f"T-{i:06d}", f"Ticket {i}: my parcel has not arrived.", "gpt-4",
                 f"Sorry about order {i}. **Step 1**: check the tracking page.", "gpt-4o",
                 f"I can help with order {i}.\n\n- Check tracking\n- Wait a day",
                 ("billing", "shipping", "account")[i % 3]]
            )  # fmt: skip


def counts(dataset_name: str) -> tuple[int, int]:
    return (
        Item.objects.filter(dataset__name=dataset_name).count(),
        Response.objects.filter(item__dataset__name=dataset_name).count(),
    )


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_an_import_job_killed_half_way_imports_nothing_shows_failed_and_runs_again(
    workers, media, tmp_path, client_for, lead
):
    small, big = tmp_path / "first.csv", tmp_path / "big.csv"
    write_pairs(small, ALREADY_STORED)
    importing.import_pairs(
        path=small, filename="first.csv", dataset_name="Support", redact_pii=False
    )
    before = counts("Support")
    assert before == (ALREADY_STORED, 2 * ALREADY_STORED)
    write_pairs(big, JOB_ROWS)  # the first 50 rows again, then new ones
    with big.open("rb") as upload:
        job = import_jobs.create_import_job(
            upload=File(upload, name="big.csv"), dataset_name="Support", redact_pii=False, user=lead
        )
    assert import_jobs.confirm_import(job=job)

    worker = workers.start()
    wait_for(
        lambda: ImportJob.objects.filter(
            pk=job.pk, status=ImportJob.Status.IMPORTING, rows_done__gt=0
        ).exists(),
        timeout=90,
        what="the worker to be writing rows",
        every=0.05,
    )
    job.refresh_from_db()
    assert job.rows_done < JOB_ROWS, "the import finished before the kill: make the file bigger"
    workers.kill(worker)

    assert counts("Support") == before
    client = client_for(lead)
    # The page polls: PostgreSQL frees the dead worker's advisory lock once it notices the
    # connection is gone, a moment after the kill.
    wait_for(
        lambda: "Nothing was imported" in client.get(reverse("datasets:job", args=[job.pk])).text,
        timeout=30,
        what="the job page to say the import stopped",
    )
    page = client.get(reverse("datasets:job", args=[job.pk])).text
    assert "stopped before finishing" in page
    assert 'value="retry"' in page
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED

    client.post(reverse("datasets:job", args=[job.pk]), {"action": "retry"})
    # Also gets back the dead worker's unacknowledged message: both deliveries name the same
    # job, and only one of them can claim it.
    workers.start(visibility_timeout=1)
    wait_for(
        lambda: ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.DONE).exists(),
        timeout=90,
        what="the import to run again and finish",
    )
    job.refresh_from_db()
    assert job.summary["items_created"] == JOB_ROWS - ALREADY_STORED
    assert job.summary["rows_unchanged"] == ALREADY_STORED
    assert counts("Support") == (JOB_ROWS, 2 * JOB_ROWS)


def test_the_import_command_killed_half_way_leaves_no_dataset_and_runs_again(
    transactional_db, postgres, redis_server, tmp_path
):
    path = tmp_path / "pairs.csv"
    write_pairs(path, COMMAND_ROWS)
    command = [sys.executable, "manage.py", "import_pairs", str(path), "--dataset", "Fresh"]
    # Our own Redis: the metrics task the command queues waits there (no worker), instead of
    # running in-process or reaching anybody else's broker.
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_server.url,
        "DEBUG": "0",
    }
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with side_connection() as other:
        # A new dataset on PostgreSQL streams its responses into one COPY while reading.
        wait_for(
            lambda: other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'active' AND query LIKE 'COPY datasets_response%%'"
            ).fetchone(),
            timeout=60,
            what="the command to be copying responses",
            every=0.05,
        )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    assert not Dataset.objects.filter(name="Fresh").exists()
    assert counts("Fresh") == (0, 0)

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{COMMAND_ROWS:,} new items" in again.stdout
    assert counts("Fresh") == (COMMAND_ROWS, 2 * COMMAND_ROWS)
