"""Writing checked rows into the database, inside the import's transaction.

:class:`BatchWriter` writes after a clean validation pass, in batches, skipping what is already
stored. :class:`StreamingWriter` (a new dataset on PostgreSQL) writes while the file is being
read and checked, in one pass: PostgreSQL inserts on the other core meanwhile, and an error
anywhere rolls the whole transaction back.
"""

import json
import tempfile
from contextlib import suppress

import psycopg
from django.db import connection

from datasets.importing.anonymise import Redactor
from datasets.importing.parsing import PairsFile, Row
from datasets.models import Dataset, Item, Response, System

WRITE_BATCH = 2000
LOOKUP_BATCH = 500
CHUNK_BYTES = 1024 * 1024
FIRST_ID_BLOCK = 1000
MAX_ID_BLOCK = 32768
to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_ITEM_COLUMNS = (
    "id, dataset_id, external_id, prompt, context, reference, auto_preference, metadata,"
    " gold, gold_note"
)
ITEM_COPY = "COPY datasets_item (" + _ITEM_COLUMNS + ") FROM STDIN"
ITEM_INSERT = (
    "INSERT INTO datasets_item (" + _ITEM_COLUMNS + ")"  # noqa: S608 - fixed SQL
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
RESPONSE_COPY = "COPY datasets_response (item_id, system_id, text, metadata) FROM STDIN"
RESPONSE_INSERT = (
    "INSERT INTO datasets_response (item_id, system_id, text, metadata) VALUES (%s, %s, %s, %s)"
)


def allocate_item_ids(cursor, n: int) -> list[int]:
    """``n`` new primary keys for items, from the table's own sequence (PostgreSQL)."""
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence('datasets_item', 'id')) FROM generate_series(1, %s)",
        [n],
    )
    return [pk for (pk,) in cursor.fetchall()]


class BatchWriter:
    """After a clean validation: writes new items and responses in batches, looking up what is
    already stored (COPY on PostgreSQL, INSERT on SQLite)."""

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

    def __enter__(self) -> "BatchWriter":
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
                to_json(row.item_metadata),
                # Long form: the gold may come on a later row (checked in the first pass).
                *self.pairs.late_gold.get(row.item_id, (row.gold, row.gold_note)),
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
                metadata = to_json(response.metadata)
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
            return allocate_item_ids(self.cursor, n)
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


class StreamingWriter:
    """A new dataset on PostgreSQL: nothing to look up, so rows are written as they are read.

    Responses go into a COPY while the file is read and checked (PostgreSQL inserts them on the
    other core meanwhile); items are formatted into a spool file and copied at the end. The COPY
    pauses only to take a block of item ids from the sequence or to add a system not seen before
    (neither can wait for the commit). The foreign keys are checked at commit (Django makes them
    DEFERRABLE INITIALLY DEFERRED).
    """

    def __init__(self, dataset: Dataset, pairs: PairsFile, redact_pii: bool, *, reporter) -> None:
        self.dataset, self.pairs, self.reporter = dataset, pairs, reporter
        self.redactor = Redactor()
        self.redacting = redact_pii
        self.items_created = self.responses_created = self.rows_unchanged = self.rows_done = 0
        self.system_ids: dict[str, int] = {}
        self.item_ids: dict[str, int] = {}  # long form: an item spans rows
        self.free_ids: list[int] = []
        self.id_block = FIRST_ID_BLOCK
        self.cursor = connection.cursor()
        raw = self.cursor.cursor
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in flush() or __exit__
        # A cursor that has run nothing: this Copy only formats rows into the spool file.
        self.items = psycopg.copy.Copy(
            raw.connection.cursor(), writer=psycopg.copy.FileWriter(self.spool)
        )
        # The responses' COPY while it is open: its context manager, and the Copy it gives.
        self.copying = None
        self.copy: psycopg.copy.Copy | None = None

    def __enter__(self) -> "StreamingWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        # On an error mid-stream, end the COPY (psycopg sends CopyFail) so the connection can
        # roll back; the transaction then undoes everything.
        if self.copying is not None:
            copying, self.copying, self.copy = self.copying, None, None
            with suppress(Exception):
                copying.__exit__(*exc_info)
        self.spool.close()
        self.cursor.close()

    def add(self, row: Row) -> None:
        redact = self.redactor.redact if self.redacting else None
        item_pk = self.item_ids.get(row.item_id)
        if item_pk is None:
            item_pk = self._new_item_pk()
            if self.pairs.form == "long":
                self.item_ids[row.item_id] = item_pk
            prompt, context, reference = row.prompt, row.context, row.reference
            if redact:
                prompt, context, reference = redact(prompt), redact(context), redact(reference)
            self.items.write_row(
                (item_pk, self.dataset.pk, row.item_id, prompt, context, reference,
                 row.auto_preference, to_json(row.item_metadata), row.gold, row.gold_note)
            )  # fmt: skip
            self.items_created += 1
        for response in row.responses:
            system_id = self.system_ids.get(response.system) or self._add_system(response.system)
            text = redact(response.text) if redact else response.text
            if self.copy is None:
                self.copying = self.cursor.cursor.copy(RESPONSE_COPY)
                self.copy = self.copying.__enter__()
            self.copy.write_row((item_pk, system_id, text, to_json(response.metadata)))
        self.responses_created += len(row.responses)
        self.rows_done += 1

    def flush(self) -> None:
        """Finish: end the responses' COPY and copy the spooled items."""
        self._pause()
        self.items.finish(None)
        self.spool.seek(0)
        with self.cursor.cursor.copy(ITEM_COPY) as copy:
            while chunk := self.spool.read(CHUNK_BYTES):
                copy.write(chunk)
        self.spool.close()
        # Long form: gold answers that came on a later row than the item's first.
        if self.pairs.late_gold:
            self.cursor.executemany(
                "UPDATE datasets_item SET gold = %s, gold_note = %s WHERE id = %s",
                [(gold, note, self.item_ids[item_id])
                 for item_id, (gold, note) in self.pairs.late_gold.items()],
            )  # fmt: skip
        self.reporter.written(self.rows_done)

    def _pause(self) -> None:
        """End the open COPY, so the connection can run another statement."""
        if self.copying is not None:
            copying, self.copying, self.copy = self.copying, None, None
            copying.__exit__(None, None, None)

    def _new_item_pk(self) -> int:
        if not self.free_ids:
            self._pause()
            self.free_ids = allocate_item_ids(self.cursor, self.id_block)[::-1]
            self.id_block = min(2 * self.id_block, MAX_ID_BLOCK)
        return self.free_ids.pop()

    def _add_system(self, name: str) -> int:
        self._pause()
        System.objects.bulk_create([System(name=name)], ignore_conflicts=True)
        self.system_ids[name] = System.objects.values_list("pk", flat=True).get(name=name)
        return self.system_ids[name]
