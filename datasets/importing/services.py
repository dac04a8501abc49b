"""Importing a pairs file into a dataset, all or nothing (see DESIGN.md "Pairs file").

The file's bytes are checked first (``PairsFile.scan``). A new dataset on PostgreSQL is then
written in one pass, while its rows are read and checked (:class:`StreamingWriter`); any error
rolls the transaction back, so nothing is imported. Otherwise (SQLite, or a dataset that already
holds items) every row is checked first, against the file and against what is stored, and only a
clean file is written, in one transaction (:class:`BatchWriter`). Re-importing identical rows
changes nothing; a stored item or response is never overwritten (a difference is an error).
"""

import time
from pathlib import Path

import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from datasets.importing.anonymise import Redactor
from datasets.importing.errors import ErrorList, ImportFailed
from datasets.importing.parsing import PairsFile
from datasets.importing.progress import Progress, Reporter
from datasets.importing.stored_checks import StoredChecker
from datasets.importing.writers import BatchWriter, StreamingWriter
from datasets.models import Dataset, ImportJob
from evalsite.queue import enqueue_on_commit

ANALYZE_AFTER = 10_000  # responses
RESERVED_SLUGS = {"import"}  # a dataset's page must not shadow the upload page's URL


class _StartOver(Exception):
    """The one-pass import cannot finish (a CSV column's type changed midway, or the dataset
    appeared meanwhile): it was rolled back; import again with a validation pass first."""


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
    reporter = Reporter(job, progress)
    pairs = PairsFile(Path(path), filename)
    try:
        reporter.phase(ImportJob.Status.VALIDATING)
        pairs.scan()
        if job is not None and pairs.sha256:
            ImportJob.objects.filter(pk=job.pk).update(sha256=pairs.sha256)
        if pairs.errors:
            raise ImportFailed(pairs.errors.as_list())
        dataset = Dataset.objects.filter(name=dataset_name).first()
        seen = _already_imported(dataset, pairs.sha256, redact_pii)
        if seen is not None:
            summary = _unchanged_summary(dataset, pairs, seen, redact_pii, started)
            reporter.done(summary, dataset)
            return summary
        writer = None
        if dataset is None and connection.vendor == "postgresql":
            try:
                dataset, writer = _import_in_one_pass(pairs, dataset_name, redact_pii, user,
                                                      reporter, enqueue_metrics)  # fmt: skip
            except _StartOver:
                pairs.errors = ErrorList(filename)
                dataset = Dataset.objects.filter(name=dataset_name).first()
                reporter.phase(ImportJob.Status.VALIDATING)
        if writer is None:
            dataset, writer = _validate_then_import(
                pairs, dataset, dataset_name, redact_pii, user, reporter, enqueue_metrics
            )
        if writer is not None and writer.responses_created >= ANALYZE_AFTER:
            _analyze()
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
    if writer is None:  # every row is already stored as it is: nothing was written
        summary = _summary(dataset, pairs, 0, 0, pairs.n_rows, redact_pii, started)
    else:
        summary = _summary(dataset, pairs, writer.items_created, writer.responses_created,
                           writer.rows_unchanged, redact_pii, started, writer.redactor)  # fmt: skip
    _remember_file(dataset, pairs, redact_pii)
    reporter.done(summary, dataset)
    return summary


MAX_REMEMBERED_FILES = 100


def _file_key(sha256: str, redact_pii: bool) -> str:
    return f"{sha256}:{'redacted' if redact_pii else 'as-is'}"


def _already_imported(dataset: Dataset | None, sha256: str, redact_pii: bool) -> dict | None:
    """What an earlier import of the same bytes (same redaction) recorded, when every row of it
    is stored in the dataset: importing it again changes nothing, so no row is read (a 200 MB
    file re-imported in well under a second instead of a full validation pass, issue #20)."""
    if dataset is None or not sha256:
        return None
    return (dataset.imported_files or {}).get(_file_key(sha256, redact_pii))


def _remember_file(dataset: Dataset, pairs: PairsFile, redact_pii: bool) -> None:
    if not pairs.sha256:
        return
    with transaction.atomic():
        files = (
            Dataset.objects.select_for_update().filter(pk=dataset.pk)
            .values_list("imported_files", flat=True).get()
        ) or {}  # fmt: skip
        files[_file_key(pairs.sha256, redact_pii)] = {
            "rows": pairs.n_rows,
            "form": pairs.form,
            "systems": sorted(pairs.systems),
        }
        # Python dicts keep their order: the oldest entries go first.
        while len(files) > MAX_REMEMBERED_FILES:
            files.pop(next(iter(files)))
        Dataset.objects.filter(pk=dataset.pk).update(imported_files=files)


def _unchanged_summary(dataset, pairs, seen: dict, redact_pii: bool, started: float) -> dict:
    return {
        "dataset": dataset.name,
        "slug": dataset.slug,
        "form": seen["form"],
        "rows": seen["rows"],
        "items_created": 0,
        "responses_created": 0,
        "rows_unchanged": seen["rows"],
        "systems": seen["systems"],
        "redactions": Redactor().summary() if redact_pii else None,
        "seconds": round(time.monotonic() - started, 2),
    }


def _import_in_one_pass(pairs, dataset_name, redact_pii, user, reporter, enqueue_metrics):
    """A new dataset on PostgreSQL: check and write each row as it is read, in one transaction."""
    reporter.phase(ImportJob.Status.IMPORTING)
    with transaction.atomic():
        dataset, created = _lock_or_create_dataset(dataset_name, user)
        if not created:
            raise _StartOver
        with StreamingWriter(dataset, pairs, redact_pii, reporter=reporter) as writer:
            rows = pairs.rows(final=False, typing=True, spool=False, progress=reporter.validating)
            for row in rows:
                if pairs.retype:
                    break
                if not pairs.errors:  # after an error: only check the rest, to report it all
                    writer.add(row)
            if pairs.retype:
                raise _StartOver
            if pairs.errors:
                raise ImportFailed(pairs.errors.as_list())
            writer.flush()
        if enqueue_metrics and writer.responses_created:
            enqueue_on_commit("datasets.compute_metrics", dataset.pk)
    return dataset, writer


def _validate_then_import(pairs, dataset, dataset_name, redact_pii, user, reporter,
                          enqueue_metrics):  # fmt: skip
    """Check every row (against the file, and against what is stored), then write in one
    transaction. Returns the dataset and the writer; no writer when every row is stored already."""
    checker = StoredChecker(dataset, pairs, redact_pii) if dataset else None
    for row in pairs.rows(final=False, progress=reporter.validating):
        if checker is not None:
            checker.add(row)
    if checker is not None:
        checker.flush()
    if pairs.errors:
        raise ImportFailed(pairs.errors.as_list())
    if checker is not None and checker.unchanged_rows == pairs.n_rows:
        return dataset, None
    reporter.phase(ImportJob.Status.IMPORTING, total=pairs.n_rows)
    with transaction.atomic():
        dataset, created = _lock_or_create_dataset(dataset_name, user)
        writer = BatchWriter(dataset, pairs, redact_pii, fresh=created, reporter=reporter)
        with writer:
            for row in pairs.rows(final=True):
                writer.add(row)
            writer.flush()
        if enqueue_metrics and writer.responses_created:
            enqueue_on_commit("datasets.compute_metrics", dataset.pk)
    return dataset, writer


def _analyze() -> None:
    """Fresh statistics after a large import (PostgreSQL), or the planner takes the grown tables
    for empty ones and the next lookups (a re-import, the dataset pages) scan them whole. Key
    columns only: the text columns would double the time."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE datasets_item (id, dataset_id, external_id),"
            " datasets_response (id, item_id, system_id)"
        )


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
