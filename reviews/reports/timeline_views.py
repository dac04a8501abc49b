"""A dataset's timeline across campaigns (leads and analysts), and its CSV download."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from datasets.models import Dataset
from evalsite.roles import ANALYST, LEAD, role_required
from reviews.reports import timeline
from reviews.reports.views import DECISIONS, forest


@role_required(LEAD, ANALYST)
def timeline_page(request, slug):
    dataset = get_object_or_404(Dataset, slug=slug)
    rows = timeline.timeline_rows(dataset=dataset)
    for row in rows:
        row["verdict_text"] = DECISIONS.get(row["verdict"], "no verdict yet")
    plot_rows = [
        {
            "label": row["name"],
            "estimate": row["win_rate"],
            "ci": row["win_rate_ci95"],
            "value": "n/a" if row["win_rate"] is None else f"{row['win_rate']:.2f}",
            "significant": row["regression"],
        }
        for row in rows
    ]
    context = {
        "dataset": dataset,
        "rows": rows,
        "plot": forest(plot_rows, 0.0, 1.0, 0.5),
        "regression_test": timeline.REGRESSION_TEST,
    }
    return render(request, "reviews/timeline.html", context)


@role_required(LEAD, ANALYST)
def timeline_csv(request, slug):
    dataset = get_object_or_404(Dataset, slug=slug)
    response = StreamingHttpResponse(
        timeline.timeline_csv_lines(dataset=dataset), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{dataset.slug}-timeline.csv"'
    return response
