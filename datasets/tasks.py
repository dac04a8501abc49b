"""Celery tasks: thin interfaces onto the import jobs and the response metrics, on the "imports"
queue (see settings). Services queue them by name through evalsite.queue."""

from celery import shared_task

from datasets import dataset_stats
from datasets.importing import jobs as import_jobs


@shared_task(name="datasets.run_import")
def run_import(job_id: int) -> None:
    """Run a confirmed import job; a second delivery of the same job does nothing."""
    import_jobs.run_import_job(job_id=job_id)


@shared_task(name="datasets.compute_metrics")
def compute_metrics(dataset_id: int) -> None:
    """Fill in the automatic metrics of a dataset's responses that have none yet."""
    dataset_stats.compute_metrics(dataset_id=dataset_id, chunk_size=dataset_stats.METRICS_CHUNK)
