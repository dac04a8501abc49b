"""An import's progress, to the caller's callback and to its ImportJob row."""

import time
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from datasets.dataset_stats import refresh_counts
from datasets.models import Dataset, ImportJob

Progress = Callable[[str, int, int], None]


class Reporter:
    """Progress to the caller's callback and, for a job, to its row (at most twice a second)."""

    def __init__(self, job: ImportJob | None, callback: Progress | None) -> None:
        self.job, self.callback = job, callback
        self.status = ""
        self.total = 0
        self.last_write = 0.0
        self.side_connection = None

    def phase(self, status: str, total: int = 0) -> None:
        self.status, self.total = status, total
        if self.callback:
            self.callback(status, 0, total)
        if self.job is not None:
            ImportJob.objects.filter(pk=self.job.pk).update(
                status=status, rows_done=0, rows_total=total
            )

    def validating(self, done: int, fraction: float) -> None:
        self._report(done, max(done, round(done / fraction)) if fraction else done)

    def written(self, done: int) -> None:
        self._report(done, self.total)

    def _report(self, done: int, total: int) -> None:
        if self.callback:
            self.callback(self.status, done, total)
        now = time.monotonic()
        if self.job is None or now - self.last_write < 0.5:
            return
        self.last_write = now
        if not connection.in_atomic_block or connection.vendor != "postgresql":
            if not connection.in_atomic_block:
                ImportJob.objects.filter(pk=self.job.pk).update(rows_done=done, rows_total=total)
            return
        # Inside the import's transaction: write through a second connection so the progress is
        # visible before the commit (SQLite has one writer at a time, so it only shows the phase).
        if self.side_connection is None:
            wrapper = connections[DEFAULT_DB_ALIAS]
            self.side_connection = type(wrapper)(dict(wrapper.settings_dict), "import-progress")
        with self.side_connection.cursor() as cursor:
            cursor.execute(
                "UPDATE datasets_importjob SET rows_done = %s, rows_total = %s WHERE id = %s",
                [done, total, self.job.pk],
            )

    def failed(self, errors: list[str]) -> None:
        self.close()
        if self.job is not None:
            ImportJob.objects.filter(pk=self.job.pk).update(
                status=ImportJob.Status.FAILED, errors=errors, finished_at=timezone.now()
            )

    def done(self, summary: dict, dataset: Dataset) -> None:
        self.close()
        if summary["responses_created"] or "systems" not in (dataset.stats or {}):
            refresh_counts(dataset_id=dataset.pk)
        if self.callback:
            self.callback(ImportJob.Status.DONE, summary["rows"], summary["rows"])
        if self.job is not None:
            ImportJob.objects.filter(pk=self.job.pk).update(
                status=ImportJob.Status.DONE,
                summary=summary,
                dataset=dataset,
                rows_done=summary["rows"],
                rows_total=summary["rows"],
                finished_at=timezone.now(),
            )

    def close(self) -> None:
        if self.side_connection is not None:
            self.side_connection.close()
            self.side_connection = None
