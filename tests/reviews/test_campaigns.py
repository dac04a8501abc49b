import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from datasets.models import Response
from reviews.campaigns import masking, rubrics, services
from reviews.campaigns.batches import create_batches_and_assign
from reviews.campaigns.progress import campaign_progress
from reviews.grading import pull
from reviews.models import Assignment, AuditEvent, Batch, Campaign, CampaignItem
from tests import factories

# ----------------------------------------------------------------------------- masking


def test_default_patterns_mask_system_names_and_vendor_phrases():
    patterns = masking.default_mask_patterns(["helpdesk-gpt-4o", "acme bot (v2)"])
    text = (
        "As an AI language model developed by OpenAI, I think helpdesk-gpt-4o and Acme Bot (v2) "
        "agree. ChatGPT, Claude, Gemini, GPT-4 and Llama too; gpt-4o-mini is GPT-4o's cousin."
    )
    masked = masking.mask_text(text, patterns)
    for name in ("OpenAI", "helpdesk", "Acme", "ChatGPT", "Claude", "Gemini", "GPT-4", "Llama"):
        assert name.lower() not in masked.lower(), masked
    assert masked.startswith("[masked], I think [masked] and [masked] agree.")


def test_masking_leaves_other_words_and_the_original_alone():
    patterns = masking.default_mask_patterns(["llama"])
    text = "Googleplex? No: a llamas farm. Ask Google."
    assert masking.mask_text(text, patterns) == "Googleplex? No: a llamas farm. Ask [masked]."
    assert masking.mask_text("", patterns) == ""
    assert masking.mask_text("OpenAI", []) == "OpenAI"


def test_overlapping_matches_merge_into_one_mask():
    assert masking.mask_text("x GPT-4 Turbo y", [r"GPT-4", r"4 Turbo"]) == "x [masked] y"


def test_patterns_are_validated():
    assert masking.validate_patterns([" a+ ", "", "a+"]) == ["a+"]
    with pytest.raises(ValidationError) as excinfo:
        masking.validate_patterns(["(unclosed", "x*", "fine"])
    assert len(excinfo.value.messages) == 2
    assert "not a valid regular expression" in excinfo.value.messages[0]
    assert "matches empty text" in excinfo.value.messages[1]


# ----------------------------------------------------------------------------- create


@pytest.mark.django_db
def test_a_campaign_holds_only_items_answered_by_both_systems(lead, add_dataset_items):
    dataset = factories.DatasetFactory()
    base, cand, other = (factories.SystemFactory(name=n) for n in ("base-x", "cand-y", "z"))
    both = add_dataset_items(dataset, [base, cand], 3)
    only_base = add_dataset_items(dataset, [base, other], 2, start=100)

    campaign = services.create_campaign(
        name="Base vs cand", dataset=dataset, baseline=base, candidate=cand,
        rubric=factories.RubricFactory(), actor=lead,
    )  # fmt: skip

    rows = CampaignItem.objects.filter(campaign=campaign).select_related(
        "baseline_response", "candidate_response"
    )
    assert {r.item_id for r in rows} == {i.pk for i in both}
    assert not {i.pk for i in only_base} & {r.item_id for r in rows}
    assert all(r.baseline_response.system_id == base.pk for r in rows)
    assert all(r.candidate_response.system_id == cand.pk for r in rows)
    assert all(r.slots_taken == 0 for r in rows)
    assert (campaign.overlap, campaign.margin, campaign.status) == (1, 0.05, "active")
    assert campaign.slug == "base-vs-cand"
    assert 0 <= campaign.seed < 2**31
    assert masking.system_name_pattern("base-x") in campaign.mask_patterns
    assert any("OpenAI" in p for p in campaign.mask_patterns)
    event = AuditEvent.objects.get(verb="campaign.created")
    assert (event.actor, event.campaign, event.details["items"]) == (lead, campaign, 3)


@pytest.mark.django_db
def test_campaign_rules(build_campaign):
    campaign = build_campaign(2, name="New")
    assert campaign.slug == "new-2"  # "new" would shadow campaigns/new/
    assert build_campaign(2, name="New").slug == "new-3"
    dataset, system = campaign.dataset, campaign.baseline
    base = {"name": "x", "dataset": dataset, "rubric": campaign.rubric}
    with pytest.raises(ValidationError, match="different systems"):
        services.create_campaign(**base, baseline=system, candidate=system)
    with pytest.raises(ValidationError, match="No item of"):
        services.create_campaign(
            **base, baseline=system, candidate=factories.SystemFactory(name="absent")
        )
    with pytest.raises(ValidationError, match="overlap"):
        services.create_campaign(**base, baseline=system, candidate=campaign.candidate, overlap=0)
    with pytest.raises(ValidationError, match="regular expression"):
        services.create_campaign(
            **base, baseline=system, candidate=campaign.candidate, mask_patterns=["(oops"]
        )


@pytest.mark.django_db
def test_editing_instructions_bumps_their_version(build_campaign, make_reviewers, lead):
    campaign = build_campaign(4)
    services.update_campaign(campaign=campaign, name="Renamed", actor=lead)
    assert campaign.instructions_version == 1
    services.update_campaign(campaign=campaign, instructions="Read **both**.", actor=lead)
    assert campaign.instructions_version == 2
    services.update_campaign(campaign=campaign, instructions="Read **both**.", actor=lead)
    assert campaign.instructions_version == 2
    create_batches_and_assign(campaign=campaign, reviewers=make_reviewers(1))
    assert set(Assignment.objects.values_list("instructions_version", flat=True)) == {2}
    assert AuditEvent.objects.filter(verb="campaign.changed").count() == 2


@pytest.mark.django_db
def test_pause_resume_close(build_campaign, lead):
    campaign = build_campaign(2)
    services.set_status(campaign=campaign, status="paused", actor=lead)
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert "paused" in services.reviewer_notice(campaign)
    services.set_status(campaign=campaign, status="active", actor=lead)
    assert services.reviewer_notice(campaign) is None
    services.set_status(campaign=campaign, status="closed", actor=lead)
    assert "closed" in services.reviewer_notice(campaign)
    with pytest.raises(ValidationError, match="closed campaign cannot be resumed"):
        services.set_status(campaign=campaign, status="active")
    verbs = list(AuditEvent.objects.order_by("pk").values_list("verb", flat=True))
    assert verbs[-3:] == ["campaign.paused", "campaign.resumed", "campaign.closed"]


# ----------------------------------------------------------------------------- views


def test_lead_creates_a_campaign_in_the_browser(
    client_for, lead, make_reviewers, add_dataset_items
):
    dataset = factories.DatasetFactory()
    base, cand = factories.SystemFactory(name="sys-a"), factories.SystemFactory(name="sys-b")
    add_dataset_items(dataset, [base, cand], 5)
    rubric = rubrics.get_or_create_default_rubric()
    client = client_for(lead)

    page = client.get(reverse("reviews:campaign-create"))
    assert page.status_code == 200
    count = client.get(
        reverse("reviews:campaign-create"),
        {"dataset": dataset.pk, "baseline": base.pk, "candidate": cand.pk},
        headers={"HX-Request": "true"},
    )
    assert "<html" not in count.text
    assert "5 items have responses from both systems" in count.text

    reviewer = make_reviewers(1)[0]
    form = {
        "name": "A vs B", "dataset": dataset.pk, "baseline": base.pk, "candidate": cand.pk,
        "rubric": rubric.pk, "overlap": "1", "margin": "0.05", "mode": "pull",
        "roster": [reviewer.pk], "instructions": "Pick the *better* answer.",
        "use_default_masks": "on", "extra_mask_patterns": "Acme Corp", "seed": "42",
    }  # fmt: skip
    response = client.post(reverse("reviews:campaign-create"), form)
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("reviews:campaign-detail", args=[campaign.slug])
    assert (campaign.seed, campaign.mode, list(campaign.roster.all())) == (42, "pull", [reviewer])
    assert campaign.mask_patterns[-1] == "Acme Corp"
    assert masking.system_name_pattern("sys-a") in campaign.mask_patterns

    invalid = client.post(reverse("reviews:campaign-create"), {**form, "candidate": base.pk})
    assert invalid.status_code == 200
    assert "must be a different system" in invalid.text


def test_edit_page_saves_and_bumps_instructions(client_for, lead, build_campaign):
    campaign = build_campaign(2)
    url = reverse("reviews:campaign-edit", args=[campaign.slug])
    client = client_for(lead)
    assert client.get(url).status_code == 200
    data = {"name": campaign.name, "instructions": "New text", "mask_patterns": "foo\nbar",
            "margin": "0.1", "mode": "push"}  # fmt: skip
    assert client.post(url, data).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.instructions_version, campaign.mask_patterns) == (2, ["foo", "bar"])
    invalid = client.post(url, {**data, "mask_patterns": "(bad"})
    assert invalid.status_code == 200
    assert "not a valid regular expression" in invalid.text


def test_status_buttons(client_for, lead, build_campaign):
    campaign = build_campaign(2)
    client = client_for(lead)
    detail = reverse("reviews:campaign-detail", args=[campaign.slug])
    assert client.get(reverse("reviews:campaign-pause", args=[campaign.slug])).status_code == 405
    response = client.post(reverse("reviews:campaign-pause", args=[campaign.slug]), follow=True)
    assert response.redirect_chain == [(detail, 302)]
    assert "Paused: reviewers" in response.text
    client.post(reverse("reviews:campaign-close", args=[campaign.slug]))
    again = client.post(reverse("reviews:campaign-resume", args=[campaign.slug]), follow=True)
    assert "cannot be resumed" in again.text
    assert Campaign.objects.get().status == "closed"


@pytest.fixture
def campaign_pages(build_campaign):
    campaign = build_campaign(2)
    rubric = campaign.rubric
    slug = campaign.slug
    return [
        ("get", reverse("reviews:campaigns")),
        ("get", reverse("reviews:campaign-create")),
        ("get", reverse("reviews:campaign-detail", args=[slug])),
        ("get", reverse("reviews:campaign-progress", args=[slug])),
        ("get", reverse("reviews:campaign-edit", args=[slug])),
        ("get", reverse("reviews:batch-create", args=[slug])),
        ("post", reverse("reviews:campaign-pause", args=[slug])),
        ("post", reverse("reviews:unassign", args=[slug])),
        ("post", reverse("reviews:reassign", args=[slug])),
        ("get", reverse("reviews:rubrics")),
        ("get", reverse("reviews:rubric-create")),
        ("get", reverse("reviews:rubric-import")),
        ("get", reverse("reviews:rubric-edit", args=[rubric.pk])),
        ("get", reverse("reviews:rubric-export", args=[rubric.pk])),
        ("post", reverse("reviews:rubric-copy", args=[rubric.pk])),
    ]


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("lead", True), ("reviewer", False), ("analyst", False), ("outsider", False), (None, False)],
)
def test_only_leads_reach_campaign_and_rubric_pages(
    request, client, campaign_pages, persona, allowed, htmx_headers
):
    if persona:
        client.force_login(request.getfixturevalue(persona))
    for method, url in campaign_pages:
        response = getattr(client, method)(url, headers=htmx_headers)
        if allowed:
            assert response.status_code in (200, 302), url
            if response.status_code == 302:
                assert "/accounts/login/" not in response.url, url
        elif persona:
            assert response.status_code == 403, url
        else:
            assert response.status_code == 302, url
            assert "/accounts/login/" in response.url, url


def test_unknown_campaigns_and_rubrics_are_404(client_for, lead, db):
    client = client_for(lead)
    assert client.get(reverse("reviews:campaign-detail", args=["nope"])).status_code == 404
    assert client.get(reverse("reviews:rubric-edit", args=[999999])).status_code == 404


def test_lead_sees_the_system_names(client_for, lead, build_campaign):
    campaign = build_campaign(2, baseline_name="acme-base", candidate_name="acme-next")
    detail = client_for(lead).get(reverse("reviews:campaign-detail", args=[campaign.slug]))
    assert "acme-base" in detail.text
    assert "acme-next" in detail.text
    listing = client_for(lead).get(reverse("reviews:campaigns"))
    assert "acme-next" in listing.text


# ----------------------------------------------------------------------------- progress


def grade_some(campaign, complete_assignment, seconds=20.0):
    """Judge every third assignment, skip every fifth."""
    for n, assignment in enumerate(Assignment.objects.filter(campaign=campaign).order_by("pk")):
        if n % 3 == 0:
            complete_assignment(assignment, seconds=seconds + n)
        elif n % 5 == 0:
            Assignment.objects.filter(pk=assignment.pk).update(status="skipped")


def make_progress_data(build_campaign, make_reviewers, complete_assignment, *, batches, reviewers):
    campaign = build_campaign(batches * 2, overlap=2)
    create_batches_and_assign(
        campaign=campaign,
        reviewers=make_reviewers(reviewers),
        batch_size=2,
        due_date=datetime.date(2000, 1, 1),
    )
    grade_some(campaign, complete_assignment)
    return campaign


def test_progress_per_batch_and_reviewer(build_campaign, make_reviewers, complete_assignment):
    campaign = build_campaign(6, overlap=2)
    a, b = make_reviewers(2)
    create_batches_and_assign(
        campaign=campaign, reviewers=[a, b], batch_size=3, due_date=datetime.date(2000, 1, 1)
    )
    mine = list(Assignment.objects.filter(reviewer=a).order_by("position"))
    for seconds, assignment in zip((10, 20, 60), mine, strict=False):
        complete_assignment(assignment, seconds=seconds)
    Assignment.objects.filter(pk=mine[3].pk).update(status="skipped")
    for assignment in Assignment.objects.filter(reviewer=b, batch__number=1):
        complete_assignment(assignment, seconds=5)

    progress = campaign_progress(campaign=campaign, today=datetime.date(2000, 1, 2))

    assert (progress.items, progress.slots, progress.open_slots) == (6, 12, 0)
    assert (progress.totals.done, progress.totals.pending, progress.totals.skipped) == (6, 5, 1)
    by_reviewer = {row.label: row for row in progress.reviewers}
    row_a = by_reviewer[a.email]
    assert (row_a.done, row_a.pending, row_a.skipped, row_a.total) == (3, 2, 1, 6)
    assert row_a.median_seconds == 20
    assert by_reviewer[b.email].median_seconds == 5
    first, second = progress.batches
    assert first.label == "Batch 1"
    assert first.total == 6
    assert second.overdue
    assert second.pending
    assert first.overdue == bool(first.pending)
    assert progress.overdue_batches >= 1


def test_pulled_work_shows_as_its_own_row(build_campaign, make_reviewers):
    reviewer = make_reviewers(1)[0]
    campaign = build_campaign(3, mode="pull", roster=[reviewer])
    pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
    progress = campaign_progress(campaign=campaign)
    assert [(row.label, row.pending) for row in progress.batches] == [("Pulled (no batch)", 1)]
    assert progress.open_slots == 2


def test_progress_fragment_is_polled_with_htmx(client_for, lead, build_campaign, htmx_headers):
    campaign = build_campaign(2)
    client = client_for(lead)
    url = reverse("reviews:campaign-progress", args=[campaign.slug])
    detail = client.get(reverse("reviews:campaign-detail", args=[campaign.slug]))
    assert f'hx-get="{url}" hx-trigger="every 5s"' in detail.text
    fragment = client.get(url, headers=htmx_headers)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="progress"')
    assert client.get(url).status_code == 302  # without htmx: the whole page

    services.set_status(campaign=campaign, status="closed")
    assert "hx-trigger" not in client.get(url, headers=htmx_headers).text  # polling stops


def test_overdue_batches_are_highlighted(
    client_for, lead, build_campaign, make_reviewers, complete_assignment
):
    campaign = make_progress_data(
        build_campaign, make_reviewers, complete_assignment, batches=2, reviewers=2
    )
    Batch.objects.filter(campaign=campaign, number=2).update(due_date=datetime.date(2999, 1, 1))
    html = client_for(lead).get(reverse("reviews:campaign-detail", args=[campaign.slug])).text
    assert html.count('class="overdue"') == 1
    assert "(overdue)" in html


def count_queries(client, url, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(queries)


def test_campaign_page_query_count_does_not_grow(
    client_for, lead, build_campaign, make_reviewers, complete_assignment, htmx_headers,
    django_assert_max_num_queries,
):  # fmt: skip
    client = client_for(lead)
    small = make_progress_data(
        build_campaign, make_reviewers, complete_assignment, batches=3, reviewers=3
    )
    large = make_progress_data(
        build_campaign, make_reviewers, complete_assignment, batches=6, reviewers=6
    )
    counts = {}
    for campaign in (small, large):
        detail = reverse("reviews:campaign-detail", args=[campaign.slug])
        progress = reverse("reviews:campaign-progress", args=[campaign.slug])
        # Session, user, roles; campaign; progress (4, or 6 with PostgreSQL's medians); choices;
        # flag and skip counts; reviewer quality (gold, pauses, repeats).
        with django_assert_max_num_queries(16):
            counts[campaign.pk, "detail"] = count_queries(client, detail)
        with django_assert_max_num_queries(10):
            counts[campaign.pk, "progress"] = count_queries(client, progress, headers=htmx_headers)
    assert counts[small.pk, "detail"] == counts[large.pk, "detail"]
    assert counts[small.pk, "progress"] == counts[large.pk, "progress"]
    html = client.get(reverse("reviews:campaign-detail", args=[large.slug])).text
    assert html.count("Batch ") >= 6


def test_campaign_list_query_count(client_for, lead, build_campaign, django_assert_num_queries):
    for _ in range(4):
        build_campaign(2)
    client = client_for(lead)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("reviews:campaigns"))
    for _ in range(4):
        build_campaign(2)
    with django_assert_num_queries(len(few)):
        response = client.get(reverse("reviews:campaigns"))
    assert response.text.count("/campaigns/support-eval") >= 8


def test_dataset_responses_are_untouched_by_masking(build_campaign):
    campaign = build_campaign(1, baseline_name="acme-base")
    text = Response.objects.get(system=campaign.baseline).text
    assert "acme-base" in text


def test_edit_page_sets_operational_gates_and_a_segment_key(client_for, lead, build_campaign):
    campaign = build_campaign(2)
    url = reverse("reviews:campaign-edit", args=[campaign.slug])
    client = client_for(lead)
    data = {"name": campaign.name, "margin": "0.05", "mode": "push", "segment_key": " region ",
            "operational_gates": "p90 latency_ms <= 1500\nmean cost_usd <= baseline\n"}  # fmt: skip
    assert client.post(url, data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.segment_key == "region"
    assert campaign.operational_gates == [
        {"measure": "latency_ms", "statistic": "p90", "op": "<=", "limit": 1500.0},
        {"measure": "cost_usd", "statistic": "mean", "op": "<=", "limit": "baseline"},
    ]
    assert "p90 latency_ms &lt;= 1500" in client.get(url).text  # shown back as typed
    invalid = client.post(url, {**data, "operational_gates": "p90 latency_ms <= 1500\nfast please"})
    assert invalid.status_code == 200
    assert "Line 2: &#x27;fast please&#x27; is not a rule" in invalid.text
    campaign.refresh_from_db()
    assert len(campaign.operational_gates) == 2
