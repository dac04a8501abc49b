import logging
import socket
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from datasets.dataset_stats import resend_stalled_metrics
from datasets.importing.jobs import resend_stranded_imports
from evalsite.models import WorkerHeartbeat
from reviews.reports.queueing import resend_stranded_reports

logger = logging.getLogger(__name__)


@shared_task(name="evalsite.heartbeat")
def heartbeat(note: str = "") -> int:
    """Record which worker ran this; returns the new row's id. Used to check the task path."""
    return WorkerHeartbeat.objects.create(hostname=socket.gethostname(), note=note[:255]).pk


@shared_task(name="evalsite.resend_stranded_work")
def resend_stranded_work() -> int:
    """Beat, every minute, and each worker as it starts: send again the import jobs, reports
    and metrics jobs that were queued but never started (or whose worker died, for the
    metrics); returns how many were sent. Idempotent."""
    older_than = timedelta(seconds=settings.QUEUE_RESEND_AFTER_SECONDS)
    return (
        resend_stranded_imports(older_than=older_than)
        + resend_stranded_reports(older_than=older_than)
        + resend_stalled_metrics(older_than=older_than)
    )


@worker_ready.connect
def resend_when_a_worker_starts(**_kwargs) -> None:
    # A worker starting is often the broker or the workers coming back after an outage: pick
    # up what it stranded now rather than at the next beat tick (which may not run, as in a
    # demo without beat). Never let this stop the worker from starting.
    try:
        resend_stranded_work()
    except Exception:
        logger.exception("Could not resend stranded work at worker start")
