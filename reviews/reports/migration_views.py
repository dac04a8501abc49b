"""The migration page (leads and analysts) and its "next batch" button (leads)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.roles import ANALYST, LEAD, has_role, role_required
from reviews import access
from reviews.reports import migration


@role_required(LEAD, ANALYST)
def migration_page(request, slug):
    campaign = access.campaign_for_reports(request.user, slug)
    context = migration.page_context(campaign, can_create_batch=has_role(request.user, LEAD))
    return render(request, "reviews/migration.html", context)


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
