"""What the dataset pages show: a job's preview, the item browser, the dataset overview."""

from itertools import islice

from django.db.models import Exists, OuterRef, Q

from datasets.dataset_stats import system_counts
from datasets.importing.jobs import preview_job
from datasets.importing.parsing import Preview
from datasets.markdown import render_markdown
from datasets.models import Dataset, ImportJob, Response, System
from datasets.pages.charts import box_plot

# Rows shown per kind of metadata (a file holds at most IMPORT_MAX_METADATA_KEYS; a dataset
# imported before the limit may hold any number, and its pages must stay fast).
SHOWN_METADATA_KEYS = 100
SHOWN_ITEM_METADATA = 20

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
    target = Dataset.objects.filter(name=job.dataset_name).defer("stats").first()
    return {"preview": file_preview, "target": target}


def dataset_systems(*, dataset: Dataset) -> list[str]:
    """The systems that answered the dataset's items: stored by its last import or metrics run
    (the query below took over a second on a 500,000-item dataset)."""
    counted = (dataset.stats or {}).get("systems")
    if counted is not None:
        return sorted(counted)
    answered = Response.objects.filter(system=OuterRef("pk"), item__dataset=dataset)
    return list(System.objects.filter(Exists(answered)).values_list("name", flat=True))


def choose_systems(systems: list[str], a: str | None, b: str | None) -> list[str]:
    """The (up to) two systems shown side by side: the ones asked for, else the first two."""
    first = a if a in systems else (systems[0] if systems else None)
    others = [name for name in systems if name != first]
    second = b if b in others else (others[0] if others else None)
    return [name for name in (first, second) if name]


def search_items(*, items, query: str):
    """Items whose id, prompt or context contains the text (case-insensitive); all without."""
    if not query:
        return items
    return items.filter(
        Q(external_id__icontains=query) | Q(prompt__icontains=query) | Q(context__icontains=query)
    )


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
            "metadata": list(islice((item.metadata or {}).items(), SHOWN_ITEM_METADATA)),
            "more_metadata": max(0, len(item.metadata or {}) - SHOWN_ITEM_METADATA),
            "responses": [
                (name, render_markdown(texts[item.pk, name]) if (item.pk, name) in texts else None)
                for name in systems
            ],
        }
        for item in items
    ]


def dataset_overview(*, dataset: Dataset) -> dict:
    """Everything the dataset page shows, in a fixed handful of queries; the counts stored by
    the last import or metrics refresh (counting them here scanned every response)."""
    counted = (dataset.stats or {}).get("systems")
    if counted is None:  # a dataset whose counts were never stored
        counted = system_counts(dataset_id=dataset.pk)
    systems = [{"system__name": name, **counts} for name, counts in sorted(counted.items())]
    names = [row["system__name"] for row in systems]
    stats = dataset.stats or {}

    def side_by_side(table: dict, key: str) -> list:
        return [table.get(key, {}).get(name) for name in names]

    metrics = stats.get("metrics", {})
    metric_rows = [
        {"label": label, "rate": rate, "cells": formatted(side_by_side(metrics, key), rate=rate)}
        for key, label, rate in METRIC_LABELS
        if key in metrics
    ]
    metadata = stats.get("metadata", {})
    metadata_rows = [
        {"label": key, "rate": False, "cells": formatted(side_by_side(metadata, key), rate=False)}
        for key in islice(metadata, SHOWN_METADATA_KEYS)
    ]
    item_metadata = stats.get("item_metadata", {})
    charts = [
        box_plot(title="Length (characters)", unit="", by_system=metrics.get("characters", {})),
        *(
            box_plot(title=f"Latency ({key})", unit=" ms" if key.endswith("_ms") else "",
                     by_system=metadata[key])
            for key in metadata
            if "latency" in key
        ),
    ]  # fmt: skip
    n_responses = sum(row["responses"] for row in systems)
    with_metrics = sum(row["with_metrics"] for row in systems)
    return {
        "dataset": dataset,
        "systems": systems,
        "system_names": names,
        "table_columns": 1 + 3 * len(names),
        "n_items": dataset.n_items or dataset.items.count(),
        "n_responses": n_responses,
        "with_metrics": with_metrics,
        "metrics_pending": with_metrics < n_responses,
        "metric_rows": metric_rows,
        "metadata_rows": metadata_rows,
        "item_metadata": dict(islice(item_metadata.items(), SHOWN_METADATA_KEYS)),
        "more_metadata_keys": max(0, len(metadata) - SHOWN_METADATA_KEYS)
        + max(0, len(item_metadata) - SHOWN_METADATA_KEYS),
        "charts": [chart for chart in charts if chart],
    }


def decimals(values: list[float]) -> int:
    """One precision per measure, from its largest value: 2,221 / 49.2 / 0.62 / 0.004."""
    largest = max((abs(v) for v in values), default=0)
    if largest == 0 or largest >= 100:
        return 0
    return 1 if largest >= 10 else 2 if largest >= 1 else 3


def formatted(cells: list[dict | None], *, rate: bool) -> list[dict | None]:
    """Each system's mean, median and p90 as text with the row's one precision; a rate (a share
    of responses) as a percentage in the mean column, its median and p90 left out."""
    if rate:
        return [
            {"n": c["n"], "mean": f"{100 * c['mean']:.0f}%", "median": "", "p90": ""}
            if c and c.get("n") else None
            for c in cells
        ]  # fmt: skip
    keys = ("mean", "median", "p90")
    places = decimals([c[k] for c in cells if c and c.get("n") for k in keys if c[k] is not None])
    return [
        {"n": c["n"], **{k: "" if c[k] is None else f"{c[k]:,.{places}f}" for k in keys}}
        if c and c.get("n") else None
        for c in cells
    ]  # fmt: skip
