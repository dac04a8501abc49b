"""Response metrics (the follow-up job after an import) and a dataset's per-system summary."""

import json
import time
from array import array
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from datasets.importing.writers import to_json
from datasets.metrics import response_metrics, summarise
from datasets.models import Dataset, Item, Response, System
from evalsite.queue import send_safely

METRICS_CHUNK = 500
STATS_REFRESH_SECONDS = 20
TOP_VALUES = 20
VALUE_LABEL_LENGTH = 200


def _key_limit() -> int:
    """Metadata keys summarised per kind: as many as a file may hold, so a dataset imported
    before the limits (a million keys) still summarises in bounded time and memory."""
    return getattr(settings, "IMPORT_MAX_METADATA_KEYS", 100)


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
        updates = [(to_json(response_metrics(text)), pk) for pk, text in chunk]
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
    recount_items(dataset_id=dataset_id)


def refresh_counts(*, dataset_id: int) -> None:
    """After an import: the stored item count and the responses per system (with and without
    metrics), so that the dataset's pages never count a large dataset's rows themselves."""
    recount_items(dataset_id=dataset_id)
    with transaction.atomic():
        stats = (
            Dataset.objects.select_for_update()
            .filter(pk=dataset_id)
            .values_list("stats", flat=True)
        ).first()
        if stats is not None:
            systems = system_counts(dataset_id=dataset_id)
            stats = {**stats, "systems": systems, "metrics_pending": _pending(systems)}
            # A refresh of the summary, as far as the metrics sweep is concerned: the metrics job
            # queued by the import has QUEUE_RESEND_AFTER_SECONDS to start.
            Dataset.objects.filter(pk=dataset_id).update(
                stats=stats, stats_updated_at=timezone.now()
            )


def _pending(systems: dict) -> bool:
    return any(counts["with_metrics"] < counts["responses"] for counts in systems.values())


def resend_stalled_metrics(*, older_than: timedelta, limit: int = 100) -> int:
    """Send the metrics job again for datasets whose responses still lack metrics and whose
    summary nobody has refreshed within ``older_than`` (a running job refreshes it every
    STATS_REFRESH_SECONDS): its message was never sent, or its worker died. Claimed by a
    conditional UPDATE of ``stats_updated_at``; the job itself is idempotent."""
    now = timezone.now()
    cutoff = now - older_than
    stalled = (
        Dataset.objects.filter(stats__metrics_pending=True)
        .filter(
            Q(stats_updated_at__lt=cutoff) | Q(stats_updated_at__isnull=True, created_at__lt=cutoff)
        )
        .values_list("pk", "stats_updated_at")[:limit]
    )
    sent = 0
    for pk, updated in stalled:
        if Dataset.objects.filter(pk=pk, stats_updated_at=updated).update(stats_updated_at=now):
            sent += send_safely("datasets.compute_metrics", pk)
    return sent


def system_counts(*, dataset_id: int) -> dict:
    """{system name: {"responses": n, "with_metrics": m}} for the dataset (one GROUP BY)."""
    rows = (
        Response.objects.filter(item__dataset_id=dataset_id)
        .values("system__name")
        .annotate(responses=Count("pk"), with_metrics=Count("metrics"))
        .order_by("system__name")
    )
    return {
        row["system__name"]: {"responses": row["responses"], "with_metrics": row["with_metrics"]}
        for row in rows
    }


def recount_items(*, dataset_id: int) -> None:
    """Store the dataset's item count (``Dataset.n_items``), counted on its unique index."""
    counted = (
        Item.objects.filter(dataset=OuterRef("pk"))
        .order_by()
        .values("dataset")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Dataset.objects.filter(pk=dataset_id).update(n_items=Coalesce(Subquery(counted), 0))


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
    limit = _key_limit()
    responses: Counter = Counter()
    with_metrics: Counter = Counter()
    for system_id, metrics, metadata in rows:
        responses[system_id] += 1
        with_metrics[system_id] += metrics is not None
        for target, values in ((metric_values, metrics), (metadata_values, metadata)):
            for key, value in islice((values or {}).items(), limit):
                if isinstance(value, int | float) and (key in target or len(target) < limit):
                    target[key][system_id].append(float(value))
    item_values: dict[str, Counter] = defaultdict(Counter)
    for (metadata,) in (
        Item.objects.filter(dataset_id=dataset_id)
        .order_by()
        .values_list("metadata")
        .iterator(chunk_size=5000)
    ):
        for key, value in islice((metadata or {}).items(), limit):
            if key not in item_values and len(item_values) >= limit:
                continue
            counter = item_values[key]
            label = value if isinstance(value, str) else json.dumps(value)
            label = label[:VALUE_LABEL_LENGTH]
            if label in counter or len(counter) < 1000:
                counter[label] += 1

    def table(values: dict) -> dict:
        return {
            key: {names[system_id]: summarise(vals) for system_id, vals in by_system.items()}
            for key, by_system in sorted(values.items())
        }

    systems = {
        names[system_id]: {"responses": n, "with_metrics": with_metrics[system_id]}
        for system_id, n in sorted(responses.items(), key=lambda pair: names[pair[0]])
    }
    return {
        "systems": systems,
        "metrics_pending": _pending(systems),
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
