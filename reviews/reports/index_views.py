from django.db.models import Count
from django.shortcuts import render

from evalsite.roles import ANALYST, LEAD, role_required
from reviews import access


@role_required(LEAD, ANALYST)
def reports(request):
    """The analyst's landing page: campaigns with a report to read."""
    rows = access.campaigns_for_reports(request.user).annotate(n_reports=Count("reports"))
    return render(request, "reviews/reports.html", {"campaigns": rows})
