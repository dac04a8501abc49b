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
from evalsite.queue import enqueue_on_commit, send_safely

# A second click on Import or "Run it again" this soon after a send is a double click, not a
# request to send again.
RESEND_AFTER_CLICK = timedelta(seconds=5)


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
    """Queue a previewed job. Confirming a job that is queued but not started sends it again
    (the broker may have been down or lost it); a double click sends once. True if sent."""
    queued = ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.PENDING, queued_at__isnull=True
    ).update(queued_at=timezone.now())
    if queued:
        enqueue_on_commit("datasets.run_import", job.pk)
    else:
        queued = _resend_if_waiting(job, older_than=RESEND_AFTER_CLICK)
    job.refresh_from_db()
    return bool(queued)


def retry_import(*, job: ImportJob) -> bool:
    """Queue a failed job again from its stored file, or send again one that no worker has
    started. True if this call sent it."""
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
    else:
        queued = _resend_if_waiting(job, older_than=RESEND_AFTER_CLICK)
    job.refresh_from_db()
    return bool(queued)


def resend_stranded_imports(*, older_than: timedelta, limit: int = 500) -> int:
    """Send again every confirmed job that no worker has started within ``older_than`` (the
    broker was down when it was confirmed, or lost the message when it restarted). Returns how
    many were sent. Safe to run anywhere at once: each resend is claimed by a conditional UPDATE
    of ``queued_at``, and a second delivery of a job does nothing (``run_import_job`` claims it)."""
    cutoff = timezone.now() - older_than
    waiting = ImportJob.objects.filter(
        status=ImportJob.Status.PENDING, queued_at__lt=cutoff
    ).order_by("queued_at")
    return sum(
        _resend(pk, queued_at) for pk, queued_at in waiting.values_list("pk", "queued_at")[:limit]
    )


def _resend_if_waiting(job: ImportJob, *, older_than: timedelta) -> bool:
    current = (
        ImportJob.objects.filter(
            pk=job.pk,
            status=ImportJob.Status.PENDING,
            queued_at__lt=timezone.now() - older_than,
        )
        .values_list("queued_at", flat=True)
        .first()
    )
    return current is not None and _resend(job.pk, current, on_commit=True)


def _resend(pk: int, queued_at, *, on_commit: bool = False) -> bool:
    """Claim the resend (whoever moves ``queued_at`` on sends), then send."""
    claimed = ImportJob.objects.filter(
        pk=pk, status=ImportJob.Status.PENDING, queued_at=queued_at
    ).update(queued_at=timezone.now())
    if not claimed:
        return False
    if on_commit:
        enqueue_on_commit("datasets.run_import", pk)
        return True
    return send_safely("datasets.run_import", pk)


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
