"""Importing pairs files, computing response metrics, and summarising a dataset per system.

An import validates the whole file first (the file itself, then its rows against what the dataset
already holds) and writes nothing unless every row is valid; it then writes in one transaction,
with COPY on PostgreSQL and batched INSERTs on SQLite. Re-importing identical rows changes nothing;
a stored item or response is never overwritten (a difference is an error).
"""

import hashlib
import json
import tempfile
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import MD5
from django.utils import timezone
from django.utils.text import slugify

from evalsite.queue import enqueue_on_commit

from . import tasks
from .anonymise import Redactor
from .importers import ImportFailed, PairsFile, Preview, Row, preview
from .markdown import render_markdown
from .metrics import response_metrics, summarise
from .models import Dataset, ImportJob, Item, Response, System

__all__ = [
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

Progress = Callable[[str, int, int], None]
LOOKUP_BATCH = 500
ANALYZE_AFTER = 10_000  # responses
CHUNK_BYTES = 1024 * 1024
WRITE_BATCH = 2000
METRICS_CHUNK = 500
STATS_REFRESH_SECONDS = 20
TOP_VALUES = 20
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
RESERVED_SLUGS = {"import"}  # a dataset's page must not shadow the upload page's URL
_ITEM_COLUMNS = "id, dataset_id, external_id, prompt, context, reference, auto_preference, metadata"
ITEM_COPY = "COPY datasets_item (" + _ITEM_COLUMNS + ") FROM STDIN"
ITEM_INSERT = (
    "INSERT INTO datasets_item"
    " (id, dataset_id, external_id, prompt, context, reference, auto_preference, metadata)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)
RESPONSE_COPY = "COPY datasets_response (item_id, system_id, text, metadata) FROM STDIN"
RESPONSE_INSERT = (
    "INSERT INTO datasets_response (item_id, system_id, text, metadata) VALUES (%s, %s, %s, %s)"
)


# Jobs -------------------------------------------------------------------------------------------


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


def confirm_import(*, job: ImportJob) -> bool:
    """Queue a previewed job (once: a second confirm is a no-op). True if this call queued it."""
    queued = ImportJob.objects.filter(
        pk=job.pk, status=ImportJob.Status.PENDING, queued_at__isnull=True
    ).update(queued_at=timezone.now())
    if queued:
        enqueue_on_commit(tasks.run_import, job.pk)
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
        enqueue_on_commit(tasks.run_import, job.pk)
    job.refresh_from_db()
    return bool(queued)


def expire_stale_job(*, job: ImportJob) -> ImportJob:
    """A job still running past the task time limit was killed: show it as failed."""
    limit = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 35 * 60))
    running = (ImportJob.Status.VALIDATING, ImportJob.Status.IMPORTING)
    if job.status in running and job.started_at and job.started_at < timezone.now() - limit:
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
    claimed = ImportJob.objects.filter(
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


# Import -----------------------------------------------------------------------------------------


def import_pairs(
    *,
    path: str | Path,
    filename: str,
    dataset_name: str,
    redact_pii: bool,
    job: ImportJob | None = None,
    user=None,
    progress: Progress | None = None,
    enqueue_metrics: bool = True,
) -> dict:
    """Import a pairs file into the dataset named ``dataset_name`` (created if new), all or nothing.

    Returns the summary (items and responses created, unchanged rows, redactions); raises
    ImportFailed listing every problem as ``FILE:LINE: column: message``. With a ``job``, its
    status, progress and outcome are kept up to date.
    """
    started = time.monotonic()
    reporter = _Reporter(job, progress)
    pairs = PairsFile(Path(path), filename)
    try:
        reporter.phase(ImportJob.Status.VALIDATING)
        pairs.scan()
        if job is not None and pairs.sha256:
            ImportJob.objects.filter(pk=job.pk).update(sha256=pairs.sha256)
        dataset = Dataset.objects.filter(name=dataset_name).first()
        checker = _StoredChecker(dataset, pairs, redact_pii) if dataset else None
        for row in pairs.rows(final=False, progress=reporter.validating):
            if checker is not None:
                checker.add(row)
        if checker is not None:
            checker.flush()
        if pairs.errors:
            raise ImportFailed(pairs.errors.as_list())
        if checker is not None and checker.unchanged_rows == pairs.n_rows:
            summary = _summary(dataset, pairs, 0, 0, pairs.n_rows, redact_pii, started)
            reporter.done(summary, dataset)
            return summary  # every row is already stored as it is: nothing to write
        reporter.phase(ImportJob.Status.IMPORTING, total=pairs.n_rows)
        with transaction.atomic():
            dataset, created = _lock_or_create_dataset(dataset_name, user)
            streaming = created and connection.vendor == "postgresql"
            writer_class = _StreamingWriter if streaming else _Writer
            writer = writer_class(dataset, pairs, redact_pii, fresh=created, reporter=reporter)
            with writer:
                for row in pairs.rows(final=True):
                    writer.add(row)
                writer.flush()
            if enqueue_metrics and writer.responses_created:
                enqueue_on_commit(tasks.compute_metrics, dataset.pk)
        if writer.responses_created >= ANALYZE_AFTER and connection.vendor == "postgresql":
            # Fresh statistics, or the planner takes the grown tables for empty ones and the next
            # lookups (a re-import, the dataset pages) scan them whole. Key columns only: the
            # text columns would double the time.
            with connection.cursor() as cursor:
                cursor.execute(
                    "ANALYZE datasets_item (id, dataset_id, external_id),"
                    " datasets_response (id, item_id, system_id)"
                )
    except ImportFailed as failure:
        reporter.failed(failure.errors)
        raise
    except (IntegrityError, psycopg.IntegrityError) as error:  # psycopg's: from a COPY
        message = (
            f"{filename}: the dataset changed while this import was running (another import?); "
            "nothing was imported. Run it again."
        )
        reporter.failed([message])
        raise ImportFailed([message]) from error
    except Exception:
        reporter.failed(
            [f"{filename}: the import failed with an internal error; nothing was imported."]
        )
        raise
    finally:
        reporter.close()
        pairs.close()
    summary = _summary(
        dataset,
        pairs,
        writer.items_created,
        writer.responses_created,
        writer.rows_unchanged,
        redact_pii,
        started,
        writer.redactor,
    )
    reporter.done(summary, dataset)
    return summary


def _summary(
    dataset, pairs, items, responses, unchanged, redact_pii, started, redactor=None
) -> dict:
    return {
        "dataset": dataset.name,
        "slug": dataset.slug,
        "form": pairs.form,
        "rows": pairs.n_rows,
        "items_created": items,
        "responses_created": responses,
        "rows_unchanged": unchanged,
        "systems": sorted(pairs.systems),
        "redactions": (redactor or Redactor()).summary() if redact_pii else None,
        "seconds": round(time.monotonic() - started, 2),
    }


class _Reporter:
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


def _lock_or_create_dataset(name: str, user) -> tuple[Dataset, bool]:
    dataset = Dataset.objects.select_for_update().filter(name=name).first()
    if dataset is not None:
        return dataset, False
    base = slugify(name)[:180] or "dataset"
    slug, n = base, 1
    while slug in RESERVED_SLUGS or Dataset.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return Dataset.objects.create(name=name, slug=slug, created_by=user), True


def _same(stored, given) -> bool:
    """A stored metadata value equals one read from the file (CSV numbers arrive as text)."""
    if stored == given:
        return True
    if isinstance(given, str) and isinstance(stored, int | float) and not isinstance(stored, bool):
        try:
            return float(given) == stored
        except ValueError:
            return False
    return False


class _StoredChecker:
    """Pass 1 against the database: rows for items already stored must agree with them."""

    def __init__(self, dataset: Dataset, pairs: PairsFile, redact_pii: bool) -> None:
        self.dataset, self.pairs = dataset, pairs
        self.redactor = Redactor() if redact_pii else None
        self.batch: list[Row] = []
        self.unchanged_rows = 0
        # PostgreSQL sends a digest of each stored response rather than the whole text.
        self.digests = connection.vendor == "postgresql"

    def add(self, row: Row) -> None:
        self.batch.append(row)
        if len(self.batch) >= LOOKUP_BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        items = {
            external_id: rest
            for external_id, *rest in Item.objects.filter(
                dataset=self.dataset, external_id__in={row.item_id for row in batch}
            )
            .order_by()
            .values_list(
                "external_id", "pk", "prompt", "context", "reference", "auto_preference", "metadata"
            )
        }
        if not items:
            return
        stored_responses = Response.objects.filter(
            item_id__in=[stored[0] for stored in items.values()]
        ).order_by()
        if self.digests:
            stored_responses = stored_responses.annotate(text_digest=MD5("text"))
        responses = {
            (item_pk, system): (text, metadata)
            for item_pk, system, text, metadata in stored_responses.values_list(
                "item_id", "system__name", "text_digest" if self.digests else "text", "metadata"
            )
        }
        for row in batch:
            if row.item_id in items:
                self._compare(row, items[row.item_id], responses)

    def _compare(self, row: Row, stored: list, responses: dict) -> None:
        add = self.pairs.errors.add
        before = self.pairs.errors.count
        answered = 0
        redact = self.redactor.redact if self.redactor else str
        item_pk, *stored_fields, stored_meta = stored
        named = f"the stored item “{row.item_id}” in dataset “{self.dataset.name}”"
        names = ("prompt", "context", "reference", "auto_preference")
        given = (
            redact(row.prompt),
            redact(row.context),
            redact(row.reference),
            row.auto_preference,
        )
        for name, mine, theirs in zip(names, given, stored_fields, strict=True):
            if (mine or name == "prompt") and mine != theirs:
                add(row.line, f"differs from {named}", name)
        for key, value in row.item_metadata.items():
            if key not in stored_meta or not _same(stored_meta[key], value):
                add(row.line, f"differs from {named}", f"item metadata “{key}”")
        wide = self.pairs.form == "wide"
        for side, response in enumerate(row.responses):
            stored_response = responses.get((item_pk, response.system))
            if stored_response is None:
                continue
            answered += 1
            column = "response" + ("_" + "ab"[side] if wide else "")
            text, metadata = stored_response
            what = f"the stored response of “{response.system}” to item “{row.item_id}”"
            given_text = redact(response.text)
            if self.digests:
                given_text = hashlib.md5(given_text.encode(), usedforsecurity=False).hexdigest()
            if given_text != text:
                add(row.line, f"differs from {what}; an import never overwrites", column)
            elif set(metadata) != set(response.metadata) or not all(
                _same(metadata[key], value) for key, value in response.metadata.items()
            ):
                add(row.line, f"metadata differs from {what}", column)
        if answered == len(row.responses) and self.pairs.errors.count == before:
            self.unchanged_rows += 1


class _Writer:
    """Pass 2: writes new items and responses in batches (COPY on PostgreSQL)."""

    def __init__(
        self, dataset: Dataset, pairs: PairsFile, redact_pii: bool, *, fresh: bool, reporter
    ) -> None:
        self.dataset, self.pairs, self.reporter = dataset, pairs, reporter
        self.redactor = Redactor()
        self.redact = self.redactor.redact if redact_pii else str
        # A new dataset in wide form: every row is a new item, nothing to look up.
        self.lookups = not (fresh and pairs.form == "wide")
        self.postgres = connection.vendor == "postgresql"
        self.batch: list[Row] = []
        self.items_created = self.responses_created = self.rows_unchanged = self.rows_done = 0
        System.objects.bulk_create(
            [System(name=name) for name in sorted(pairs.systems)], ignore_conflicts=True
        )
        self.system_ids = dict(
            System.objects.filter(name__in=pairs.systems).values_list("name", "pk")
        )
        self.cursor = connection.cursor()
        if not self.postgres:
            self.cursor.execute("SELECT COALESCE(MAX(id), 0) FROM datasets_item")
            self.next_id = self.cursor.fetchone()[0] + 1

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.cursor.close()

    def add(self, row: Row) -> None:
        self.batch.append(row)
        if len(self.batch) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch:
            self._write(batch)
            self.rows_done += len(batch)
            self.reporter.written(self.rows_done)

    def _write(self, batch: list[Row]) -> None:
        item_ids = self._existing_items(batch) if self.lookups else {}
        existed = set(item_ids.values())
        new_rows = []
        for row in batch:
            if row.item_id not in item_ids:
                item_ids[row.item_id] = 0  # placeholder until ids are allocated
                new_rows.append(row)
        for row, pk in zip(new_rows, self._allocate(len(new_rows)), strict=True):
            item_ids[row.item_id] = pk
        self._insert_items(
            (
                item_ids[row.item_id], self.dataset.pk, row.item_id, self.redact(row.prompt),
                self.redact(row.context), self.redact(row.reference), row.auto_preference,
                _json(row.item_metadata),
            )
            for row in new_rows
        )  # fmt: skip
        answered = self._existing_responses(existed) if existed else set()
        responses = []
        for row in batch:
            item_pk = item_ids[row.item_id]
            before = len(responses)
            for response in row.responses:
                system_id = self.system_ids[response.system]
                if (item_pk, system_id) in answered:
                    continue
                metadata = _json(response.metadata)
                responses.append((item_pk, system_id, self.redact(response.text), metadata))
            if len(responses) == before and item_pk in existed:
                self.rows_unchanged += 1
        self._insert_responses(responses)
        self.items_created += len(new_rows)
        self.responses_created += len(responses)

    def _existing_items(self, batch: list[Row]) -> dict[str, int]:
        found: dict[str, int] = {}
        keys = list({row.item_id for row in batch})
        for start in range(0, len(keys), LOOKUP_BATCH):
            found.update(
                Item.objects.filter(
                    dataset=self.dataset, external_id__in=keys[start : start + LOOKUP_BATCH]
                )
                .order_by()
                .values_list("external_id", "pk")
            )
        return found

    def _existing_responses(self, item_pks: set[int]) -> set[tuple[int, int]]:
        pks = list(item_pks)
        found: set[tuple[int, int]] = set()
        for start in range(0, len(pks), LOOKUP_BATCH):
            found.update(
                Response.objects.filter(item_id__in=pks[start : start + LOOKUP_BATCH])
                .order_by()
                .values_list("item_id", "system_id")
            )
        return found

    def _allocate(self, n: int) -> list[int]:
        if not n:
            return []
        if self.postgres:
            self.cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('datasets_item', 'id')) "
                "FROM generate_series(1, %s)",
                [n],
            )
            return [pk for (pk,) in self.cursor.fetchall()]
        first, self.next_id = self.next_id, self.next_id + n
        return list(range(first, first + n))

    def _insert_items(self, rows) -> None:
        if self.postgres:
            with self.cursor.cursor.copy(ITEM_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.cursor.executemany(ITEM_INSERT, list(rows))

    def _insert_responses(self, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.postgres:
            with self.cursor.cursor.copy(RESPONSE_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.cursor.executemany(RESPONSE_INSERT, rows)


class _StreamingWriter(_Writer):
    """A new dataset on PostgreSQL: nothing to look up, so stream everything in two COPYs.

    Responses go straight into one COPY while the file is read (PostgreSQL inserts them on the
    other core meanwhile); items are formatted into a spool file and copied at the end. The
    foreign keys are checked at commit (Django makes them DEFERRABLE INITIALLY DEFERRED).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.item_ids: dict[str, int] = {}
        self.new_ids = iter(self._allocate(self.pairs.n_items))
        raw = self.cursor.cursor
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in flush()
        # A cursor that has run nothing: the Copy only formats rows into the spool file.
        formatter = raw.connection.cursor()
        self.items = psycopg.copy.Copy(formatter, writer=psycopg.copy.FileWriter(self.spool))
        self.responses_copy = raw.copy(RESPONSE_COPY)
        self.responses = self.responses_copy.__enter__()
        self.copying = True

    def __exit__(self, *exc_info) -> None:
        # On an error mid-stream, end the COPY (psycopg sends CopyFail) so the connection can
        # roll back; the transaction then undoes everything.
        if self.copying:
            self.copying = False
            with suppress(Exception):
                self.responses_copy.__exit__(*exc_info)
        self.spool.close()
        super().__exit__(*exc_info)

    def add(self, row: Row) -> None:
        redact = self.redact
        item_pk = self.item_ids.get(row.item_id)
        if item_pk is None:
            item_pk = next(self.new_ids)
            if self.pairs.form == "long":
                self.item_ids[row.item_id] = item_pk
            self.items.write_row(
                (
                    item_pk, self.dataset.pk, row.item_id, redact(row.prompt),
                    redact(row.context), redact(row.reference), row.auto_preference,
                    _json(row.item_metadata),
                )
            )  # fmt: skip
            self.items_created += 1
        for response in row.responses:
            system_id = self.system_ids[response.system]
            self.responses.write_row(
                (item_pk, system_id, redact(response.text), _json(response.metadata))
            )
        self.responses_created += len(row.responses)
        self.rows_done += 1
        if self.rows_done % WRITE_BATCH == 0:
            self.reporter.written(self.rows_done)

    def flush(self) -> None:
        self.copying = False
        self.responses_copy.__exit__(None, None, None)
        self.items.finish(None)
        self.spool.seek(0)
        with self.cursor.cursor.copy(ITEM_COPY) as copy:
            while chunk := self.spool.read(CHUNK_BYTES):
                copy.write(chunk)
        self.spool.close()
        self.reporter.written(self.rows_done)


# Metrics and the dataset summary -----------------------------------------------------------------


def compute_metrics(*, dataset_id: int, chunk_size: int = METRICS_CHUNK) -> int:
    """Fill in ``Response.metrics`` where missing, chunk by chunk, each chunk its own commit.

    Idempotent; refreshes the dataset's per-system summary as it goes. Returns responses computed.
    """
    refresh_dataset_stats(dataset_id=dataset_id)
    last_pk = computed = 0
    refreshed = time.monotonic()
    sql = "UPDATE datasets_response SET metrics = %s WHERE id = %s"
    if connection.vendor == "postgresql":
        sql = "UPDATE datasets_response SET metrics = %s::jsonb WHERE id = %s"
    while True:
        chunk = list(
            Response.objects.filter(
                item__dataset_id=dataset_id, metrics__isnull=True, pk__gt=last_pk
            )
            .order_by("pk")
            .values_list("pk", "text")[:chunk_size]
        )
        if not chunk:
            break
        updates = [(_json(response_metrics(text)), pk) for pk, text in chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, updates)
        computed += len(chunk)
        last_pk = chunk[-1][0]
        if time.monotonic() - refreshed > STATS_REFRESH_SECONDS:
            refresh_dataset_stats(dataset_id=dataset_id)
            refreshed = time.monotonic()
    if computed:
        refresh_dataset_stats(dataset_id=dataset_id)
    return computed


def refresh_dataset_stats(*, dataset_id: int) -> None:
    Dataset.objects.filter(pk=dataset_id).update(
        stats=summarise_dataset(dataset_id=dataset_id), stats_updated_at=timezone.now()
    )


def summarise_dataset(*, dataset_id: int) -> dict:
    """Per system: mean, median and p90 of each automatic metric and each numeric response
    metadata key; and the item metadata keys with their most common values."""
    names = dict(System.objects.values_list("pk", "name"))
    metric_values: dict = defaultdict(lambda: defaultdict(lambda: array("d")))
    metadata_values: dict = defaultdict(lambda: defaultdict(lambda: array("d")))
    rows = (
        Response.objects.filter(item__dataset_id=dataset_id)
        .order_by()
        .values_list("system_id", "metrics", "metadata")
        .iterator(chunk_size=5000)
    )
    for system_id, metrics, metadata in rows:
        for target, values in ((metric_values, metrics), (metadata_values, metadata)):
            for key, value in (values or {}).items():
                if isinstance(value, int | float):
                    target[key][system_id].append(float(value))
    item_values: dict[str, Counter] = defaultdict(Counter)
    for (metadata,) in (
        Item.objects.filter(dataset_id=dataset_id)
        .order_by()
        .values_list("metadata")
        .iterator(chunk_size=5000)
    ):
        for key, value in (metadata or {}).items():
            counter = item_values[key]
            label = value if isinstance(value, str) else json.dumps(value)
            if label in counter or len(counter) < 1000:
                counter[label] += 1

    def table(values: dict) -> dict:
        return {
            key: {names[system_id]: summarise(vals) for system_id, vals in by_system.items()}
            for key, by_system in sorted(values.items())
        }

    return {
        "metrics": table(metric_values),
        "metadata": table(metadata_values),
        "item_metadata": {
            key: {
                "distinct": len(counter),
                "top": [[value, n] for value, n in counter.most_common(TOP_VALUES)],
            }
            for key, counter in sorted(item_values.items())
        },
    }


# Pages ------------------------------------------------------------------------------------------

METRIC_LABELS = (
    ("characters", "Characters", False),
    ("words", "Words", False),
    ("urls", "URLs", False),
    ("bullets", "Bullet points", False),
    ("markdown", "Uses Markdown", True),
    ("sentiment", "Sentiment (VADER compound)", False),
    ("refusal", "Refusals", True),
)


def job_preview_context(*, job: ImportJob) -> dict:
    """For a job awaiting confirmation: the file's preview and the dataset it would go into."""
    if job.status != ImportJob.Status.PENDING or job.queued_at is not None or not job.file:
        return {}
    try:
        file_preview = preview_job(job=job)
    except OSError:
        file_preview = Preview(None, "", [], [], [f"{job.filename}: the uploaded file is missing"])
    target = Dataset.objects.filter(name=job.dataset_name).annotate(n_items=Count("items")).first()
    return {"preview": file_preview, "target": target}


def dataset_systems(*, dataset: Dataset) -> list[str]:
    answered = Response.objects.filter(system=OuterRef("pk"), item__dataset=dataset)
    return list(System.objects.filter(Exists(answered)).values_list("name", flat=True))


def choose_systems(systems: list[str], a: str | None, b: str | None) -> list[str]:
    """The (up to) two systems shown side by side: the ones asked for, else the first two."""
    first = a if a in systems else (systems[0] if systems else None)
    others = [name for name in systems if name != first]
    second = b if b in others else (others[0] if others else None)
    return [name for name in (first, second) if name]


def item_rows(*, items, systems: list[str]) -> list[dict]:
    """One page of the item browser: each item with the chosen systems' responses rendered."""
    items = list(items)
    texts = {
        (item_id, name): text
        for item_id, name, text in Response.objects.filter(item__in=items, system__name__in=systems)
        .order_by()
        .values_list("item_id", "system__name", "text")
    }
    return [
        {
            "item": item,
            "responses": [
                (name, render_markdown(texts[item.pk, name]) if (item.pk, name) in texts else None)
                for name in systems
            ],
        }
        for item in items
    ]


def dataset_overview(*, dataset: Dataset) -> dict:
    """Everything the dataset page shows, in a fixed handful of queries."""
    systems = list(
        Response.objects.filter(item__dataset=dataset)
        .values("system__name")
        .annotate(responses=Count("pk"), with_metrics=Count("metrics"))
        .order_by("system__name")
    )
    names = [row["system__name"] for row in systems]
    stats = dataset.stats or {}

    def side_by_side(table: dict, key: str) -> list:
        return [table.get(key, {}).get(name) for name in names]

    metrics = stats.get("metrics", {})
    metric_rows = [
        {"label": label, "rate": rate, "cells": side_by_side(metrics, key)}
        for key, label, rate in METRIC_LABELS
        if key in metrics
    ]
    metadata = stats.get("metadata", {})
    metadata_rows = [
        {"label": key, "rate": False, "cells": side_by_side(metadata, key)} for key in metadata
    ]
    n_responses = sum(row["responses"] for row in systems)
    with_metrics = sum(row["with_metrics"] for row in systems)
    return {
        "dataset": dataset,
        "systems": systems,
        "system_names": names,
        "table_columns": 1 + 3 * len(names),
        "n_items": dataset.items.count(),
        "n_responses": n_responses,
        "with_metrics": with_metrics,
        "metrics_pending": with_metrics < n_responses,
        "metric_rows": metric_rows,
        "metadata_rows": metadata_rows,
        "item_metadata": stats.get("item_metadata", {}),
    }
