import datetime
from collections import Counter, defaultdict

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from reviews.campaigns import batches, rubrics, services
from reviews.models import Assignment, AuditEvent, Batch, Campaign, CampaignItem

pytestmark = pytest.mark.django_db


def holders_by_item(campaign):
    holders = defaultdict(list)
    for item_id, reviewer_id in Assignment.objects.filter(campaign=campaign).values_list(
        "item_id", "reviewer_id"
    ):
        holders[item_id].append(reviewer_id)
    return holders


def test_every_item_gets_exactly_k_distinct_reviewers_with_balanced_load(
    build_campaign, make_reviewers, lead
):
    campaign = build_campaign(30, overlap=2)
    reviewers = make_reviewers(4)

    result = batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, batch_size=8, actor=lead
    )

    holders = holders_by_item(campaign)
    assert len(holders) == 30
    assert all(len(r) == 2 and len(set(r)) == 2 for r in holders.values())
    load = Counter(Assignment.objects.filter(campaign=campaign).values_list("reviewer", flat=True))
    assert max(load.values()) - min(load.values()) <= 1
    assert [b.number for b in result.batches] == [1, 2, 3, 4]
    per_batch = Counter(
        Assignment.objects.filter(campaign=campaign).values_list("batch", flat=True)
    )
    assert sorted(per_batch.values()) == [12, 16, 16, 16]  # 8 items × k=2, and 6 × 2
    assert result.n_items == 30
    assert result.n_assignments == 60
    assert set(
        CampaignItem.objects.filter(campaign=campaign).values_list("slots_taken", flat=True)
    ) == {2}
    assert set(campaign.roster.all()) == set(reviewers)


def test_sides_are_counterbalanced_and_queues_are_shuffled(build_campaign, make_reviewers):
    campaign = build_campaign(40, overlap=2)
    reviewers = make_reviewers(4)
    batches.create_batches_and_assign(campaign=campaign, reviewers=reviewers)

    for reviewer in reviewers:
        rows = list(
            Assignment.objects.filter(campaign=campaign, reviewer=reviewer)
            .order_by("position")
            .values_list("position", "candidate_left", "item__external_id")
        )
        positions = [p for p, _, _ in rows]
        assert positions == list(range(len(rows)))
        lefts = sum(left for _, left, _ in rows)
        assert abs(2 * lefts - len(rows)) <= 1
        items_in_queue_order = [external_id for _, _, external_id in rows]
        assert items_in_queue_order != sorted(items_in_queue_order)


def test_assignments_record_versions_and_get_random_opaque_tokens(build_campaign, make_reviewers):
    campaign = build_campaign(6)
    services.update_campaign(campaign=campaign, instructions="Be **careful**.")
    rubrics.update_rubric(
        rubric=campaign.rubric,
        criteria=[{**c, "label": c["label"] + "?"} for c in campaign.rubric.criteria],
    )
    batches.create_batches_and_assign(campaign=campaign, reviewers=make_reviewers(2))

    rows = Assignment.objects.filter(campaign=campaign)
    assert {(a.rubric_version, a.instructions_version) for a in rows} == {(2, 2)}
    tokens = [a.token for a in rows]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) >= 20 and not t.isdigit() for t in tokens)


def plan_signature(campaign):
    return sorted(
        Assignment.objects.filter(campaign=campaign).values_list(
            "item__external_id", "reviewer__username", "candidate_left", "position", "batch__number"
        )
    )


def test_assignment_is_reproducible_from_the_campaign_seed(build_campaign, make_reviewers):
    reviewers = make_reviewers(3)
    first, second, other = (build_campaign(20, overlap=2, seed=s) for s in (11, 11, 12))
    for campaign in (first, second, other):
        batches.create_batches_and_assign(
            campaign=campaign, reviewers=reviewers, selection="sample", n=15, batch_size=5
        )
    assert plan_signature(first) == plan_signature(second)
    assert plan_signature(first) != plan_signature(other)


def test_sample_and_stratified_selection(build_campaign, make_reviewers):
    reviewers = make_reviewers(2)
    campaign = build_campaign(30, categories=("billing", "billing", "shipping"))
    batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, selection="stratified", n=6, key="category"
    )
    chosen = Counter(
        Assignment.objects.filter(campaign=campaign).values_list(
            "item__metadata__category", flat=True
        )
    )
    assert chosen == {"billing": 4, "shipping": 2}

    result = batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, selection="sample", n=5
    )
    assert result.n_items == 5
    assert CampaignItem.objects.filter(campaign=campaign, slots_taken=0).count() == 30 - 6 - 5

    with pytest.raises(ValidationError, match="Unknown metadata key"):
        batches.create_batches_and_assign(
            campaign=campaign, reviewers=reviewers, selection="stratified", n=2, key="nope"
        )


def test_assigning_again_takes_only_unassigned_items(build_campaign, make_reviewers):
    campaign = build_campaign(10)
    reviewers = make_reviewers(2)
    batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, selection="sample", n=4
    )
    result = batches.create_batches_and_assign(campaign=campaign, reviewers=reviewers)
    assert result.n_items == 6
    assert [b.number for b in result.batches] == [2]
    with pytest.raises(ValidationError, match="Nothing to assign"):
        batches.create_batches_and_assign(campaign=campaign, reviewers=reviewers)


def test_rules_are_enforced(build_campaign, make_reviewers, outsider):
    campaign = build_campaign(4, overlap=3)
    with pytest.raises(ValidationError, match="at least 3 reviewers"):
        batches.create_batches_and_assign(campaign=campaign, reviewers=make_reviewers(2))
    with pytest.raises(ValidationError, match="Not active reviewers"):
        batches.create_batches_and_assign(
            campaign=campaign, reviewers=[*make_reviewers(2), outsider]
        )
    services.set_status(campaign=campaign, status=Campaign.Status.CLOSED)
    with pytest.raises(ValidationError, match="closed"):
        batches.create_batches_and_assign(campaign=campaign, reviewers=make_reviewers(3))


def test_unassign_removes_pending_work_only_and_frees_the_slots(
    build_campaign, make_reviewers, complete_assignment, lead
):
    campaign = build_campaign(8, overlap=2)
    a, b, c = make_reviewers(3)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[a, b])
    done = Assignment.objects.filter(campaign=campaign, reviewer=a).order_by("position")[:3]
    for assignment in done:
        complete_assignment(assignment)

    removed = batches.unassign(campaign=campaign, reviewer=a, actor=lead)

    assert removed == 5
    assert Assignment.objects.filter(campaign=campaign, reviewer=a).count() == 3
    assert Assignment.objects.filter(campaign=campaign, reviewer=a, status="pending").count() == 0
    assert CampaignItem.objects.filter(campaign=campaign, slots_taken=1).count() == 5
    assert AuditEvent.objects.filter(verb="assignments.unassigned", campaign=campaign).exists()

    # Assigning again tops those items back up to k, from reviewers who do not hold them.
    result = batches.create_batches_and_assign(campaign=campaign, reviewers=[b, c])
    assert result.n_refilled == 5
    assert result.batches[-1].name.endswith("(refill)")
    holders = holders_by_item(campaign)
    assert all(len(r) == 2 and len(set(r)) == 2 for r in holders.values())
    assert Assignment.objects.filter(campaign=campaign, reviewer=c).count() == 5


def test_reassign_moves_pending_work_to_reviewers_without_the_item(
    build_campaign, make_reviewers, complete_assignment, lead
):
    campaign = build_campaign(9, overlap=2)
    a, b, c, d = make_reviewers(4)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[a, b, c], batch_size=3)
    first = Assignment.objects.filter(campaign=campaign, reviewer=a).order_by("position").first()
    complete_assignment(first)
    pending_before = Assignment.objects.filter(
        campaign=campaign, reviewer=a, status="pending"
    ).count()

    moved = batches.reassign(campaign=campaign, from_reviewer=a, to_reviewers=[c, d], actor=lead)

    assert sum(moved.values()) == pending_before
    assert list(Assignment.objects.filter(campaign=campaign, reviewer=a)) == [first]
    holders = holders_by_item(campaign)
    assert all(len(r) == 2 and len(set(r)) == 2 for r in holders.values())
    assert set(
        CampaignItem.objects.filter(campaign=campaign).values_list("slots_taken", flat=True)
    ) == {2}
    assert AuditEvent.objects.filter(verb="assignments.reassigned").get().details["count"] == (
        pending_before
    )
    assert d in campaign.roster.all()


def test_reassign_within_one_batch(build_campaign, make_reviewers):
    campaign = build_campaign(6)
    a, b = make_reviewers(2)
    result = batches.create_batches_and_assign(campaign=campaign, reviewers=[a], batch_size=3)
    first_batch = result.batches[0]
    moved = batches.reassign(
        campaign=campaign, from_reviewer=a, to_reviewers=[b], batch=first_batch
    )
    assert moved == {b.email: 3}
    assert Assignment.objects.filter(reviewer=b, batch=first_batch).count() == 3
    assert Assignment.objects.filter(reviewer=a).count() == 3


# ----------------------------------------------------------------------------- views


def test_lead_creates_batches_in_the_browser(client_for, lead, build_campaign, make_reviewers):
    campaign = build_campaign(10, overlap=2)
    reviewers = make_reviewers(3)
    client = client_for(lead)
    url = reverse("reviews:batch-create", args=[campaign.slug])

    page = client.get(url)
    assert page.status_code == 200
    assert "category" in page.text  # metadata keys are offered

    response = client.post(
        url,
        {
            "reviewers": [r.pk for r in reviewers],
            "selection": "stratified",
            "n": "6",
            "key": "category",
            "batch_size": "3",
            "due_date": "2030-01-31",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("reviews:campaign-detail", args=[campaign.slug])
    assert Batch.objects.filter(campaign=campaign).count() == 2
    assert set(Batch.objects.values_list("due_date", flat=True)) == {datetime.date(2030, 1, 31)}
    assert Assignment.objects.filter(campaign=campaign).count() == 12


def test_invalid_batch_form_rerenders_with_200(client_for, lead, build_campaign, make_reviewers):
    campaign = build_campaign(4, overlap=2)
    url = reverse("reviews:batch-create", args=[campaign.slug])
    client = client_for(lead)
    missing_n = client.post(
        url, {"reviewers": [r.pk for r in make_reviewers(2)], "selection": "sample"}
    )
    assert missing_n.status_code == 200
    assert "How many items?" in missing_n.text
    too_few = client.post(url, {"reviewers": [make_reviewers(1)[0].pk], "selection": "all"})
    assert too_few.status_code == 200
    assert "at least 2 reviewers" in too_few.text
    assert not Assignment.objects.exists()


def test_unassign_and_reassign_in_the_browser(client_for, lead, build_campaign, make_reviewers):
    campaign = build_campaign(6)
    a, b = make_reviewers(2)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[a, b])
    client = client_for(lead)

    response = client.post(
        reverse("reviews:reassign", args=[campaign.slug]),
        {"reassign-from_reviewer": a.pk, "reassign-to_reviewers": [b.pk]},
    )
    assert response.status_code == 302
    assert Assignment.objects.filter(reviewer=b).count() == 6

    response = client.post(
        reverse("reviews:unassign", args=[campaign.slug]), {"unassign-reviewer": b.pk}
    )
    assert response.status_code == 302
    assert not Assignment.objects.exists()

    invalid = client.post(reverse("reviews:unassign", args=[campaign.slug]), {})
    assert invalid.status_code == 200
    assert "This field is required" in invalid.text
