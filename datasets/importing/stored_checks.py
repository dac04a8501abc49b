"""Checking a file's rows against what the dataset already holds (re-imports, new systems)."""

import hashlib

from django.db import connection
from django.db.models.functions import MD5

from datasets.importing.anonymise import Redactor
from datasets.importing.parsing import PairsFile, Row
from datasets.models import Dataset, Item, Response

LOOKUP_BATCH = 500


def same(stored, given) -> bool:
    """A stored metadata value equals one read from the file (CSV numbers arrive as text)."""
    if stored == given:
        return True
    if isinstance(given, str) and isinstance(stored, int | float) and not isinstance(stored, bool):
        try:
            return float(given) == stored
        except ValueError:
            return False
    return False


class StoredChecker:
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
                "external_id",
                "pk",
                "prompt",
                "context",
                "reference",
                "auto_preference",
                "gold",
                "metadata",
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
        names = ("prompt", "context", "reference", "auto_preference", "gold")
        given = (
            redact(row.prompt),
            redact(row.context),
            redact(row.reference),
            row.auto_preference,
            row.gold,
        )
        for name, mine, theirs in zip(names, given, stored_fields, strict=True):
            if (mine or name == "prompt") and mine != theirs:
                add(row.line, f"differs from {named}", name)
        for key, value in row.item_metadata.items():
            if key not in stored_meta or not same(stored_meta[key], value):
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
                same(metadata[key], value) for key, value in response.metadata.items()
            ):
                add(row.line, f"metadata differs from {what}", column)
        if answered == len(row.responses) and self.pairs.errors.count == before:
            self.unchanged_rows += 1
