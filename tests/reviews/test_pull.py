import threading
from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Count

from reviews.campaigns import batches, services
from reviews.grading import pull
from reviews.grading import services as grading
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


# ---------------------------------------------------------------------------------------------
# Claims that expire (issue #16) and claims in constant time (issue #20)


def _age_claim(assignment, minutes):
    from datetime import timedelta

    from django.utils import timezone

    Assignment.objects.filter(pk=assignment.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.mark.django_db
def test_a_claim_inside_its_timeout_is_kept(build_campaign, make_reviewers):
    holder, other = make_reviewers(2)
    campaign = build_campaign(1, overlap=1, mode="pull", roster=[holder, other])
    assert campaign.claim_timeout_minutes == 30
    held = pull.pull_next_assignment(campaign=campaign, reviewer=holder)
    assert held.claimed_at is not None
    _age_claim(held, 29)
    assert pull.pull_next_assignment(campaign=campaign, reviewer=other) is None
    held.refresh_from_db()
    assert held.status == Assignment.Status.PENDING
    assert CampaignItem.objects.get(pk=held.campaign_item_id).slots_taken == 1


@pytest.mark.django_db
def test_an_expired_claim_goes_back_and_the_late_reviewer_gets_the_next_item(
    build_campaign, make_reviewers, client_for
):
    from django.urls import reverse

    from tests.reviews.test_grading import answers, ticket_of

    late, other = make_reviewers(2)
    campaign = build_campaign(4, overlap=1, mode="pull", roster=[late, other])
    client = client_for(late)
    page = client.get(reverse("grading:start", args=[campaign.public_id]), follow=True)
    held = Assignment.objects.get(reviewer=late)
    ticket = ticket_of(page.text)
    _age_claim(held, 31)

    # Another reviewer's claim returns the slot to the pool; skipping puts the rest back, so
    # they pull until they hold the late reviewer's item.
    for _ in range(4):
        taken = pull.pull_next_assignment(campaign=campaign, reviewer=other)
        if taken.item_id == held.item_id:
            break
        grading.skip_assignment(assignment=taken, reason="cannot_judge")
    assert taken.item_id == held.item_id
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED

    # The late answer is not saved; the reviewer lands on another item with a message.
    response = client.post(
        reverse("grading:submit", args=[held.token]), answers(ticket), follow=True
    )
    assert response.status_code == 200
    assert "ran out" in response.text
    now_on = Assignment.objects.get(reviewer=late, status=Assignment.Status.PENDING)
    assert now_on.item_id != held.item_id
    assert response.redirect_chain[-1][0] == reverse("grading:grade", args=[now_on.token])
    assert not Judgment.objects.filter(assignment=held).exists()
    # Opening the old link again also moves on, without an error page.
    again = client.get(reverse("grading:grade", args=[held.token]), follow=True)
    assert again.redirect_chain[-1][0] == reverse("grading:grade", args=[now_on.token])
    assert "ran out" in again.text
    slots = CampaignItem.objects.get(pk=held.campaign_item_id).slots_taken
    assert slots == 1 == Assignment.objects.filter(item=held.item_id, status="pending").count()


@pytest.mark.django_db
def test_the_claim_timeout_is_set_on_the_command_line(build_campaign, capsys):
    from django.core.management import CommandError, call_command

    made = build_campaign(2)
    call_command(
        "create_campaign", "--name", "Timed", "--dataset", made.dataset.name,
        "--baseline", made.baseline.name, "--candidate", made.candidate.name,
        "--claim-timeout", "12",
    )  # fmt: skip
    slug = capsys.readouterr().out.strip().splitlines()[-1]
    assert Campaign.objects.get(slug=slug).claim_timeout_minutes == 12
    with pytest.raises(CommandError, match="claim timeout"):
        call_command(
            "create_campaign", "--name", "Untimed", "--dataset", made.dataset.name,
            "--baseline", made.baseline.name, "--candidate", made.candidate.name,
            "--claim-timeout", "0",
        )  # fmt: skip


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.django_db
def test_a_claim_reads_a_few_index_entries_not_the_pool(
    postgres_only, build_campaign, make_reviewers, complete_assignment
):
    """EXPLAIN ANALYZE of the claim's statement on a 4,000-item pool with items at every level:
    index scans that stop at the row they return, no sequential scan, no sort."""
    import json

    reviewers = make_reviewers(3)
    campaign = build_campaign(4000, overlap=3, mode="pull", roster=reviewers)
    for reviewer in reviewers[:2]:
        for _ in range(300):
            complete_assignment(pull.pull_next_assignment(campaign=campaign, reviewer=reviewer))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviews_campaignitem")
        cursor.execute("ANALYZE reviews_assignment")
        for start in (0, 2**30, 2**31 - 1):
            statement, params = pull.claim_statement(campaign.pk, reviewers[2].pk, 3, start)
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
            raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            nodes = list(_plan_nodes(plan))
            kinds = {node["Node Type"] for node in nodes}
            assert "Seq Scan" not in kinds, kinds
            assert "Sort" not in kinds, kinds
            pool = [
                n
                for n in nodes
                if n.get("Relation Name") == "reviews_campaignitem" and "Scan" in n["Node Type"]
            ]
            assert pool
            assert all("Index" in n["Node Type"] for n in pool)
            # Every scan of the pool, over all its loops, read at most the row it returned.
            assert all(n["Actual Rows"] <= 1 for n in pool), json.dumps(plan, indent=1)
            assert plan["Actual Rows"] == 1  # a slot was taken
            cursor.execute("SELECT 1")  # the slot stays taken: this test rolls back anyway


@pytest.mark.django_db(transaction=True)
def test_claims_expiring_while_reviewers_submit_never_exceed_k(
    postgres_only, make_reviewers, add_dataset_items, settings
):
    """A claim timeout of zero: every claim expires every other pending claim, while their
    holders submit through the real locking path. An answer is stored only for a claim that was
    still held; no item gets more than k answers, and the slot counts stay exact."""
    from reviews.grading import services as grading_services

    settings.AGGREGATE_EVERY_N_JUDGMENTS = 10_000
    reviewers = make_reviewers(N_THREADS)
    n_items, k = 15, 3
    dataset = factories.DatasetFactory()
    systems = [factories.SystemFactory(name=name) for name in ("base", "cand")]
    add_dataset_items(dataset, systems, n_items)
    campaign = services.create_campaign(
        name="Expiry race", dataset=dataset, baseline=systems[0], candidate=systems[1],
        rubric=factories.RubricFactory(), overlap=k, mode="pull", roster=reviewers, seed=5,
    )  # fmt: skip
    Campaign.objects.filter(pk=campaign.pk).update(claim_timeout_minutes=0)
    campaign.refresh_from_db()
    start = threading.Barrier(N_THREADS)
    errors, refused = [], []

    def work(reviewer):
        try:
            start.wait(timeout=30)
            while True:
                assignment = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
                if assignment is None:
                    return
                ticket = grading_services.read_ticket(
                    grading_services.issue_ticket(assignment, base_revision=0), assignment
                )
                try:
                    grading_services.submit_judgment(
                        assignment=assignment, ticket=ticket, preference="tie", scores={}
                    )
                except ValidationError as exc:
                    if exc.code != "expired":
                        raise
                    refused.append(assignment.pk)
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

    answers = Counter(Judgment.objects.filter(campaign=campaign).values_list("item", flat=True))
    assert answers
    assert max(answers.values()) <= k
    assert refused, "no submit met an expired claim: the race did not happen"
    expired = Assignment.objects.filter(campaign=campaign, status=Assignment.Status.EXPIRED)
    assert set(refused) <= set(expired.values_list("pk", flat=True))
    assert not Judgment.objects.filter(assignment__in=expired).exists()
    held = Counter(
        Assignment.objects.filter(campaign=campaign, status__in=["pending", "done"]).values_list(
            "campaign_item", flat=True
        )
    )
    slots = dict(CampaignItem.objects.filter(campaign=campaign).values_list("pk", "slots_taken"))
    assert {ci: n for ci, n in slots.items() if n} == dict(held)
    assert max(slots.values()) <= k


@pytest.mark.django_db
def test_an_expired_claim_leaves_the_reviewers_queue_counts(
    build_campaign, make_reviewers, complete_assignment
):
    from reviews.grading.queue import queue_rows

    late, other = make_reviewers(2)
    campaign = build_campaign(3, overlap=1, mode="pull", roster=[late, other])
    complete_assignment(pull.pull_next_assignment(campaign=campaign, reviewer=late))
    _age_claim(pull.pull_next_assignment(campaign=campaign, reviewer=late), 31)
    pull.pull_next_assignment(campaign=campaign, reviewer=other)  # expires it
    (row,) = [r for r in queue_rows(late) if r.public_id == campaign.public_id]
    assert (row.total, row.done) == (1, 1)


@pytest.mark.django_db
def test_the_lead_sets_the_claim_timeout_in_the_campaign_form(
    client_for, lead, make_reviewers, add_dataset_items
):
    from django.urls import reverse

    from reviews.campaigns import rubrics

    dataset = factories.DatasetFactory()
    base, cand = factories.SystemFactory(name="sys-a"), factories.SystemFactory(name="sys-b")
    add_dataset_items(dataset, [base, cand], 3)
    client = client_for(lead)
    assert "Claim timeout (minutes)" in client.get(reverse("reviews:campaign-create")).text
    form = {
        "name": "Timed pulls", "dataset": dataset.pk, "baseline": base.pk, "candidate": cand.pk,
        "rubric": rubrics.get_or_create_default_rubric().pk, "overlap": "2", "margin": "0.05",
        "mode": "pull", "roster": [make_reviewers(1)[0].pk], "claim_timeout_minutes": "45",
    }  # fmt: skip
    response = client.post(reverse("reviews:campaign-create"), form)
    campaign = Campaign.objects.get(name="Timed pulls")
    assert response.status_code == 302
    assert campaign.claim_timeout_minutes == 45
    detail = client.get(response.url).text
    assert "not answered within 45 minutes returns to the pool" in detail
    refused = client.post(
        reverse("reviews:campaign-create"), {**form, "claim_timeout_minutes": "0"}
    )
    assert refused.status_code == 200
    assert Campaign.objects.filter(name="Timed pulls").count() == 1
