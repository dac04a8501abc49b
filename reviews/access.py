"""Every reviews object a user reaches goes through here. Out of scope: 404; wrong role: 403."""

from django.shortcuts import get_object_or_404

from evalsite.roles import ANALYST, LEAD, has_role

from .models import Assignment, Campaign


def campaigns_for_lead(user):
    return Campaign.objects.with_systems()


def campaign_for_lead(user, slug: str) -> Campaign:
    return get_object_or_404(Campaign.objects.with_systems(), slug=slug)


def campaigns_for_reports(user):
    """Campaigns whose reports the user may read (leads and analysts see all of them)."""
    if has_role(user, LEAD, ANALYST):
        return Campaign.objects.with_systems()
    return Campaign.objects.none()


def campaign_for_reports(user, slug: str) -> Campaign:
    return get_object_or_404(campaigns_for_reports(user), slug=slug)


def assignment_for_reviewer(user, token: str) -> Assignment:
    """The reviewer's own assignment by its opaque token; anyone else's is a 404."""
    return get_object_or_404(
        Assignment.objects.select_related("campaign", "campaign_item", "item", "batch"),
        token=token,
        reviewer=user,
    )
