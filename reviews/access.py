"""Every reviews object a user reaches goes through here. Out of scope: 404; wrong role: 403."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from evalsite.roles import ANALYST, LEAD, REVIEWER, has_role
from reviews.grading import hot_reads
from reviews.models import Assignment, Campaign, Rubric


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
    """The reviewer's own assignment by its opaque token; anyone else's is a 404.

    Two small queries rather than one seven-table join: PostgreSQL spends ~3 ms planning the
    latter (measured), longer than running both of these. Both are written in SQL
    (reviews.grading.hot_reads): this runs on every grading request.
    """
    assignment = hot_reads.assignment_by_token(token=token, reviewer_id=user.pk)
    if assignment is None:
        raise Http404("No such item in your queue.")
    assignment.campaign = hot_reads.campaign_with_systems(assignment.campaign_id)
    return assignment


def campaign_for_reviewer(user, public_id: str) -> Campaign:
    """A campaign the reviewer works on (assigned items, or on a pull campaign's roster), by its
    public id (never the slug, which may name the systems); anyone else gets a 404."""
    on_roster = Campaign.roster.through.objects.filter(campaign=OuterRef("pk"), user=user)
    has_work = Assignment.objects.filter(campaign=OuterRef("pk"), reviewer=user)
    in_scope = Campaign.objects.filter(
        Exists(has_work) | (Exists(on_roster) & Q(mode=Campaign.Mode.PULL))
    )
    return get_object_or_404(in_scope.select_related("rubric"), public_id=public_id)


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
