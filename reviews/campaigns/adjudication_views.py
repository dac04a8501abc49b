"""The lead's adjudication page (items reviewers disagree on, systems named)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from evalsite.roles import LEAD, role_required
from reviews import access
from reviews.campaigns import adjudication as adjudicating
from reviews.models import Judgment


@role_required(LEAD)
def adjudication(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    if request.method == "POST":
        try:
            adjudicating.record_adjudication(
                campaign=campaign,
                campaign_item_id=int(request.POST.get("item") or 0),
                label=request.POST.get("label", ""),
                note=request.POST.get("note", ""),
                actor=request.user,
            )
        except (ValidationError, ValueError) as exc:
            messages.warning(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, "Final label saved; the report uses it for this item.")
        return redirect("reviews:adjudication", slug=slug)
    items = adjudicating.disputed_items(campaign=campaign, actor=request.user)
    labels = [
        (value, campaign.candidate.name if value == "candidate" else
         campaign.baseline.name if value == "baseline" else text)
        for value, text in Judgment.Preference.choices
    ]  # fmt: skip
    context = {"campaign": campaign, "items": items, "labels": labels}
    return render(request, "reviews/adjudication.html", context)
