"""Every reviews object a user reaches goes through here. Out of scope: 404; wrong role: 403."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404

from evalsite.roles import ANALYST, LEAD, REVIEWER, has_role

from .models import Assignment, Campaign, Rubric


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


def campaign_for_roster_member(user, slug: str) -> Campaign:
    """A campaign the reviewer is on the roster of, or has work in; anyone else gets a 404."""
    on_roster = Campaign.roster.through.objects.filter(campaign=OuterRef("pk"), user=user)
    has_work = Assignment.objects.filter(campaign=OuterRef("pk"), reviewer=user)
    in_scope = Campaign.objects.filter(Exists(on_roster) | Exists(has_work))
    return get_object_or_404(in_scope.select_related("rubric"), slug=slug)


def rubrics_for_lead(user):
    return Rubric.objects.all()


def rubric_for_lead(user, pk: int) -> Rubric:
    return get_object_or_404(rubrics_for_lead(user), pk=pk)


def reviewers_for_lead(user):
    """Who a lead can put on a roster or assign work to: active members of the reviewer group."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=REVIEWER)
        .order_by("email", "username")
        .distinct()
    )


def campaign_for_reviewer(user, public_id: str) -> Campaign:
    """A campaign the reviewer works on (assigned items, or on a pull campaign's roster)."""
    from django.db.models import Q

    return get_object_or_404(
        Campaign.objects.filter(
            Q(assignments__reviewer=user) | Q(roster=user, mode=Campaign.Mode.PULL)
        ).distinct(),
        public_id=public_id,
    )
