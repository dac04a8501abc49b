"""The datasets app's services, as views, commands and tasks call them.

Each lives in a module named for what it does: ``importing`` (a pairs file into a dataset),
``import_jobs`` (uploads waiting for confirmation, the Celery task's job), ``dataset_stats``
(response metrics and the per-system summary) and ``pages`` (what the dataset pages show).
"""

from .dataset_stats import METRICS_CHUNK, compute_metrics, refresh_dataset_stats, summarise_dataset
from .import_errors import ImportFailed
from .import_jobs import (
    confirm_import,
    create_import_job,
    expire_stale_job,
    preview_job,
    retry_import,
    run_import_job,
)
from .importing import import_pairs
from .pages import (
    METRIC_LABELS,
    choose_systems,
    dataset_overview,
    dataset_systems,
    item_rows,
    job_preview_context,
)

__all__ = [
    "METRICS_CHUNK",
    "METRIC_LABELS",
    "ImportFailed",
    "choose_systems",
    "compute_metrics",
    "confirm_import",
    "create_import_job",
    "dataset_overview",
    "dataset_systems",
    "expire_stale_job",
    "import_pairs",
    "item_rows",
    "job_preview_context",
    "preview_job",
    "refresh_dataset_stats",
    "retry_import",
    "run_import_job",
    "summarise_dataset",
]
