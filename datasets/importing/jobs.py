"""Import jobs: an uploaded file waits for the lead's confirmation, then runs as a Celery task."""

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection
from django.utils import timezone

from datasets.importing.parsing import ImportFailed, Preview, preview
from datasets.importing.services import import_pairs
from datasets.models import ImportJob
from evalsite.queue import enqueue_on_commit


def create_import_job(
    *, upload: UploadedFile, dataset_name: str, redact_pii: bool, user
) -> ImportJob:
    """Store an uploaded file as a pending job, waiting for the lead to confirm its preview."""
    job = ImportJob(
        dataset_name=dataset_name,
        filename=Path(upload.name or "upload.csv").name[:255],
        redact_pii=redact_pii,
        created_by=user,
    )
    job.file.save(job.filename, upload, save=False)
    job.save()
    return job


def preview_job(*, job: ImportJob) -> Preview:
    return preview(job.file.path, job.filename)


def refuse_previewed_job(*, job: ImportJob, errors: list[str]) -> bool:
    """A file whose preview found problems cannot be confirmed: record it as failed (with the
    problems), so the list of imports does not show it waiting for ever."""
    refused = ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.PENDING, queued_at__isnull=True
    ).update(status=ImportJob.Status.FAILED, errors=errors, finished_at=timezone.now())
    return bool(refused)


def confirm_import(*, job: ImportJob) -> bool:
    """Queue a previewed job (once: a second confirm is a no-op). True if this call queued it."""
    queued = ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.PENDING, queued_at__isnull=True
    ).update(queued_at=timezone.now())
    if queued:
        enqueue_on_commit("datasets.run_import", job.pk)
    job.refresh_from_db()
    return bool(queued)


def retry_import(*, job: ImportJob) -> bool:
    """Queue a failed job again from its stored file."""
    queued = (
        ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.FAILED)
        .exclude(file="")
        .update(
            status=ImportJob.Status.PENDING,
            queued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            errors=[],
            summary={},
            rows_done=0,
            rows_total=0,
        )
    )
    if queued:
        enqueue_on_commit("datasets.run_import", job.pk)
    job.refresh_from_db()
    return bool(queued)


def expire_stale_job(*, job: ImportJob) -> ImportJob:
    """A job still running past the task time limit, or (PostgreSQL) whose process is gone, was
    killed: show it as failed."""
    limit = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 35 * 60))
    running = (ImportJob.Status.VALIDATING, ImportJob.Status.IMPORTING)
    if (
        job.status in running
        and job.started_at
        and (job.started_at < timezone.now() - limit or not _running_somewhere(job.pk))
    ):
        ImportJob.objects.filter(pk=job.pk, status__in=running, started_at=job.started_at).update(
            status=ImportJob.Status.FAILED,
            finished_at=timezone.now(),
            errors=[
                f"{job.filename}: the import stopped before finishing (the worker was stopped or "
                "ran out of time); nothing was imported. Run it again."
            ],
        )
        job.refresh_from_db()
    return job


def run_import_job(*, job_id: int) -> None:
    """Run a queued job (the Celery task). Claims it first, so a duplicate delivery does nothing."""
    with _running_lock(job_id) as held:
        claimed = held and ImportJob.objects.filter(
            pk=job_id, status=ImportJob.Status.PENDING, queued_at__isnull=False
        ).update(status=ImportJob.Status.VALIDATING, started_at=timezone.now())
        if not claimed:
            return
        job = ImportJob.objects.get(pk=job_id)
        with suppress(ImportFailed):  # the errors are recorded on the job
            import_pairs(
                path=job.file.path,
                filename=job.filename,
                dataset_name=job.dataset_name,
                redact_pii=job.redact_pii,
                job=job,
                user=job.created_by,
            )


# PostgreSQL: the process running a job holds this advisory lock (key RUNNING_LOCK, job id) on
# its session, and the server releases it when that process dies however it dies (SIGKILL, OOM,
# a lost machine). A running job whose lock nobody holds was abandoned.
RUNNING_LOCK = 0x696D7074


@contextmanager
def _running_lock(job_id: int) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [RUNNING_LOCK, job_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with suppress(DatabaseError), connection.cursor() as cursor:  # gone with the session
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s::int, %s::int)", [RUNNING_LOCK, job_id]
                )


def _running_somewhere(job_id: int) -> bool:
    """Whether a live process holds the job's lock; always True where that cannot be told."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND l.classid = %s::int::oid AND l.objid = %s::int::oid AND l.objsubid = 2)",
            [RUNNING_LOCK, job_id],
        )
        return cursor.fetchone()[0]
