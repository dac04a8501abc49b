import threading
from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Count

from reviews.campaigns import batches, services
from reviews.grading import pull
from reviews.models import Assignment, Campaign, CampaignItem, Judgment
from tests import factories


@pytest.mark.django_db
def test_pull_claims_a_slot_and_returns_it_until_it_is_done(
    build_campaign, make_reviewers, complete_assignment
):
    reviewer = make_reviewers(1)[0]
    campaign = build_campaign(3, overlap=1, mode="pull", roster=[reviewer])

    first = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
    assert first is not None
    assert first.batch is None
    assert pull.pull_next_assignment(campaign=campaign, reviewer=reviewer) == first
    assert CampaignItem.objects.get(pk=first.campaign_item_id).slots_taken == 1
    assert (first.rubric_version, first.instructions_version) == (campaign.rubric.version, 1)

    seen = []
    assignment = first
    while assignment is not None:
        seen.append(assignment.item_id)
        complete_assignment(assignment)
        assignment = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
    assert len(seen) == len(set(seen)) == 3
    positions = Assignment.objects.filter(reviewer=reviewer).values_list("position", flat=True)
    assert sorted(positions) == [0, 1, 2]


@pytest.mark.django_db
def test_no_item_gets_more_than_k_reviewers_and_nobody_gets_an_item_twice(
    build_campaign, make_reviewers, complete_assignment
):
    reviewers = make_reviewers(5)
    campaign = build_campaign(4, overlap=2, mode="pull", roster=reviewers)
    for _ in range(4):
        for reviewer in reviewers:
            assignment = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
            if assignment is not None:
                complete_assignment(assignment)

    per_item = Counter(Assignment.objects.filter(campaign=campaign).values_list("item", flat=True))
    assert per_item == dict.fromkeys(per_item, 2)
    assert len(per_item) == 4
    pairs = list(Assignment.objects.values_list("item", "reviewer"))
    assert len(pairs) == len(set(pairs))
    assert all(pull.pull_next_assignment(campaign=campaign, reviewer=r) is None for r in reviewers)
    for reviewer in reviewers:  # each sees the candidate on the left half the time
        sides = list(Assignment.objects.filter(reviewer=reviewer).values_list("candidate_left"))
        assert abs(2 * sum(left for (left,) in sides) - len(sides)) <= 1


@pytest.mark.django_db
def test_pull_needs_an_active_campaign_and_the_roster(build_campaign, make_reviewers):
    on_roster, off_roster = make_reviewers(2)
    campaign = build_campaign(2, mode="pull", roster=[on_roster])
    with pytest.raises(PermissionDenied):
        pull.pull_next_assignment(campaign=campaign, reviewer=off_roster)

    services.set_status(campaign=campaign, status=Campaign.Status.PAUSED)
    with pytest.raises(ValidationError) as paused:
        pull.pull_next_assignment(campaign=campaign, reviewer=on_roster)
    assert paused.value.code == "paused"
    assert "paused" in paused.value.messages[0]

    services.set_status(campaign=campaign, status=Campaign.Status.CLOSED)
    with pytest.raises(ValidationError) as closed:
        pull.pull_next_assignment(campaign=campaign, reviewer=on_roster)
    assert closed.value.code == "closed"
    assert not Assignment.objects.exists()


@pytest.mark.django_db
def test_in_push_mode_pull_returns_the_head_of_the_queue_only(build_campaign, make_reviewers):
    reviewer, idle = make_reviewers(2)
    campaign = build_campaign(4, roster=[idle])
    batches.create_batches_and_assign(campaign=campaign, reviewers=[reviewer])
    head = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
    assert head.position == 0
    assert pull.pull_next_assignment(campaign=campaign, reviewer=idle) is None


N_THREADS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_reviewers_pulling_at_once_never_exceed_k(
    postgres_only, make_reviewers, add_dataset_items
):
    """Twenty threads, each its own reviewer and database connection, pull and judge as fast as
    they can. select_for_update(skip_locked=True) plus the unique constraint on campaign × item ×
    reviewer must keep every item at exactly k assignments and judgments."""
    reviewers = make_reviewers(N_THREADS)
    n_items, k = 15, 3
    dataset = factories.DatasetFactory()
    systems = [factories.SystemFactory(name=name) for name in ("base", "cand")]
    add_dataset_items(dataset, systems, n_items)
    campaign = services.create_campaign(
        name="Race", dataset=dataset, baseline=systems[0], candidate=systems[1],
        rubric=factories.RubricFactory(), overlap=k, mode="pull", roster=reviewers, seed=3,
    )  # fmt: skip
    start = threading.Barrier(N_THREADS)
    errors = []

    def work(reviewer):
        try:
            start.wait(timeout=30)
            while True:
                assignment = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
                if assignment is None:
                    return
                judge(assignment)
        except Exception as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    per_item = dict(
        Assignment.objects.filter(campaign=campaign)
        .values_list("campaign_item")
        .annotate(n=Count("pk"))
        .values_list("campaign_item", "n")
    )
    assert len(per_item) == n_items
    assert set(per_item.values()) == {k}
    judged = Counter(Judgment.objects.filter(campaign=campaign).values_list("item", flat=True))
    assert set(judged.values()) == {k}
    slots = dict(CampaignItem.objects.filter(campaign=campaign).values_list("pk", "slots_taken"))
    assert slots == per_item
    pairs = list(Assignment.objects.values_list("item", "reviewer"))
    assert len(pairs) == len(set(pairs))
    # The work was spread over several reviewers, so the pulls really did race.
    assert len({reviewer for _, reviewer in pairs}) > k


def judge(assignment):
    from django.utils import timezone

    Assignment.objects.filter(pk=assignment.pk, status="pending").update(status="done")
    Judgment.objects.create(
        assignment=assignment,
        campaign_id=assignment.campaign_id,
        item_id=assignment.item_id,
        reviewer_id=assignment.reviewer_id,
        candidate_left=assignment.candidate_left,
        preference="tie",
        submitted_at=timezone.now(),
        submission_key=f"pull-{assignment.pk}",
    )


@pytest.mark.django_db
def test_reviewers_reach_a_campaign_by_public_id_only_when_in_scope(build_campaign, make_reviewers):
    from django.http import Http404

    from reviews import access

    on_roster, with_work, stranger = make_reviewers(3)
    campaign = build_campaign(2, mode="pull", roster=[on_roster])
    batches.create_batches_and_assign(campaign=campaign, reviewers=[with_work])
    campaign.roster.remove(with_work)
    for user in (on_roster, with_work):
        assert access.campaign_for_reviewer(user, campaign.public_id) == campaign
    with pytest.raises(Http404):
        access.campaign_for_reviewer(stranger, campaign.public_id)
    with pytest.raises(Http404):
        access.campaign_for_reviewer(on_roster, campaign.slug)
