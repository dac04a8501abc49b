"""The lead's People page: everyone with a role, and invitations by email."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.roles import ALL_ROLES, LEAD, role_required
from reviews import access
from reviews.campaigns import people
from reviews.campaigns.forms import InviteForm


@role_required(LEAD)
def people_list(request):
    return render(request, "reviews/people.html", _context(InviteForm()))


def _context(form):
    groups = Prefetch("groups", queryset=Group.objects.filter(name__in=ALL_ROLES))
    users = (
        get_user_model()
        .objects.filter(groups__name__in=ALL_ROLES)
        .distinct()
        .prefetch_related(groups)
        .order_by("email", "username")
    )
    return {"users": users, "form": form}


@require_POST
@role_required(LEAD)
def invite(request):
    """Invite from the People page or a campaign page (reviewers join its roster)."""
    form = InviteForm(request.POST)
    campaign = None
    if form.is_valid() and form.cleaned_data["campaign"]:
        campaign = access.campaign_for_lead(request.user, form.cleaned_data["campaign"])
    if form.is_valid():
        try:
            result = people.invite_people(
                emails=form.cleaned_data["emails"],
                role=form.cleaned_data["role"],
                actor=request.user,
                base_url=request.build_absolute_uri("/"),
                campaign=campaign,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _say(request, result)
            if campaign is not None:
                return redirect("reviews:campaign-detail", slug=campaign.slug)
            return redirect("reviews:people")
    return render(request, "reviews/people.html", _context(form))


def _say(request, result: people.Invitations) -> None:
    if result.invited:
        messages.success(
            request, f"Invitation emailed to {', '.join(result.invited)}: a link to set a password."
        )
    if result.existing:
        messages.info(request, f"Already set up, role given: {', '.join(result.existing)}.")
