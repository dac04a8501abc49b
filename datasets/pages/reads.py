"""What the dataset pages show: a job's preview, the item browser, the dataset overview."""

from django.db.models import Count, Exists, OuterRef, Q

from datasets.importing.jobs import preview_job
from datasets.importing.parsing import Preview
from datasets.markdown import render_markdown
from datasets.models import Dataset, ImportJob, Response, System
from datasets.pages.charts import box_plot

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
        {"label": label, "rate": rate, "cells": formatted(side_by_side(metrics, key), rate=rate)}
        for key, label, rate in METRIC_LABELS
        if key in metrics
    ]
    metadata = stats.get("metadata", {})
    metadata_rows = [
        {"label": key, "rate": False, "cells": formatted(side_by_side(metadata, key), rate=False)}
        for key in metadata
    ]
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
        "n_items": dataset.items.count(),
        "n_responses": n_responses,
        "with_metrics": with_metrics,
        "metrics_pending": with_metrics < n_responses,
        "metric_rows": metric_rows,
        "metadata_rows": metadata_rows,
        "item_metadata": stats.get("item_metadata", {}),
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
