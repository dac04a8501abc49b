from django.db.models import Count, Q
from django.shortcuts import render

from evalsite.roles import ANALYST, LEAD, REVIEWER, role_required

from . import access
from .models import Assignment


@role_required(REVIEWER)
def queue(request):
    """The reviewer's landing page: their campaigns with progress."""
    rows = (
        Assignment.objects.queue_for(request.user)
        .values("campaign__name", "campaign__slug", "campaign__status")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(status="done")),
            skipped=Count("id", filter=Q(status="skipped")),
        )
        .order_by("campaign__name")
    )
    return render(request, "reviews/queue.html", {"campaigns": list(rows)})


@role_required(LEAD)
def campaigns(request):
    """The lead's landing page: every campaign with its systems and progress."""
    rows = access.campaigns_for_lead(request.user).annotate(
        n_assignments=Count("assignments", distinct=True),
        n_done=Count("assignments", filter=Q(assignments__status="done"), distinct=True),
    )
    return render(request, "reviews/campaigns.html", {"campaigns": rows})


@role_required(LEAD, ANALYST)
def reports(request):
    """The analyst's landing page: campaigns with a report to read."""
    rows = access.campaigns_for_reports(request.user).annotate(n_reports=Count("reports"))
    return render(request, "reviews/reports.html", {"campaigns": rows})
