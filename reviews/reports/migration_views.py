"""The migration page (leads and analysts) and its "next batch" button (leads)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.roles import ANALYST, LEAD, has_role, role_required
from reviews import access
from reviews.reports import migration
from reviews.reports.views import forest


@role_required(LEAD, ANALYST)
def migration_page(request, slug):
    campaign = access.campaign_for_reports(request.user, slug)
    context = migration.page_context(campaign, can_create_batch=has_role(request.user, LEAD))
    context["difference_plot"] = difference_plot(context)
    return render(request, "reviews/migration.html", context)


def difference_plot(context: dict) -> dict | None:
    """Each calibrated criterion's pass-rate difference (candidate minus baseline) with its 95%
    interval, against the non-inferiority margin: the picture behind the criteria table."""
    rows = context.get("rows") or []
    if not rows:
        return None
    margin = context["preference"]["margin"]
    plot_rows = [
        {
            "label": row["name"],
            "estimate": row["difference"]["posterior_mean"],
            "ci": row["difference"]["ci95"],
            "value": f"{row['difference']['posterior_mean']:+.2f}",
            "significant": row["critical"],
        }
        for row in rows
    ]
    ends = [v for row in plot_rows for v in (row["ci"] or [])]
    lo = max(-1.0, min([-0.5, -margin - 0.1, *ends]))
    hi = min(1.0, max([0.5, *ends]))
    return forest(plot_rows, round(lo, 1), round(hi, 1), -margin)


@require_POST
@role_required(LEAD)
def next_batch(request, slug):
    """Create the next batch from the most informative items, once per report."""
    campaign = access.campaign_for_lead(request.user, slug)
    report = request.POST.get("report", "")
    try:
        created = migration.create_next_batch(
            campaign=campaign,
            report_id=int(report) if report.isdigit() else None,
            actor=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, created.message)
    return redirect("report:migration", slug=campaign.slug)
