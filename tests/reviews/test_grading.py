"""The reviewer's grading flow: de-blinded storage, exactly-once submits, revisions, pauses."""

import re

import pytest
from django.urls import reverse

from reviews.grading import services as grading
from reviews.models import Assignment, Campaign, Judgment
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(
        baseline__name="acme-gpt-4", candidate__name="acme-gpt-4o", mask_patterns=[r"\bAcmeAI\b"]
    )


def assign(campaign, reviewer, *, candidate_left, n=1, **kwargs):
    out = []
    for i in range(n):
        ci = CampaignItemFactory(campaign=campaign, **kwargs)
        out.append(
            AssignmentFactory(
                campaign_item=ci, reviewer=reviewer, position=i, candidate_left=candidate_left
            )
        )
    return out


def ticket_of(html: str) -> str:
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def answers(ticket, preference="1", **extra):
    data = {
        "ticket": ticket,
        "preference": preference,
        "correctness__1": "5",
        "correctness__2": "2",
        "refusal_ok__1": "1",
        "refusal_ok__2": "0",
        "overall__pair": "2",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("candidate_left", [True, False])
def test_response_1_is_stored_as_the_system_that_was_on_the_left(
    client_for, reviewer, campaign, candidate_left
):
    (a,) = assign(campaign, reviewer, candidate_left=candidate_left)
    client = client_for(reviewer)
    page = client.get(reverse("grading:grade", args=[a.token]))
    client.post(reverse("grading:submit", args=[a.token]), answers(ticket_of(page.text)))
    judgment = Judgment.objects.get(assignment=a)
    left = "candidate" if candidate_left else "baseline"
    right = "baseline" if candidate_left else "candidate"
    assert judgment.preference == left
    assert judgment.scores["correctness"] == {left: 5, right: 2}
    assert judgment.scores["refusal_ok"] == {left: 1, right: 0}
    # Shown as 1 = "Response 1 much better" … 7 = "Response 2 much better"; the answer 2
    # leans to Response 1, so stored oriented to the candidate it is 6 when the candidate
    # was on the left and 2 when it was on the right.
    assert judgment.scores["overall"] == {"pair": 6 if candidate_left else 2}
    assert judgment.candidate_left is candidate_left
    a.refresh_from_db()
    assert a.status == Assignment.Status.DONE


def test_submitting_twice_with_the_same_form_stores_one_judgment(client_for, reviewer, campaign):
    first, _second = assign(campaign, reviewer, candidate_left=True, n=2)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[first.token])).text)
    url = reverse("grading:submit", args=[first.token])
    client.post(url, answers(ticket))
    response = client.post(url, answers(ticket), follow=True)
    assert Judgment.objects.filter(assignment=first).count() == 1
    assert "already saved" in response.text


def test_a_second_tab_cannot_overwrite_the_first(client_for, reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=False)
    client = client_for(reviewer)
    url = reverse("grading:grade", args=[a.token])
    tab1, tab2 = ticket_of(client.get(url).text), ticket_of(client.get(url).text)
    client.post(reverse("grading:submit", args=[a.token]), answers(tab1, preference="1"))
    response = client.post(
        reverse("grading:submit", args=[a.token]), answers(tab2, preference="2"), follow=True
    )
    assert list(Judgment.objects.values_list("preference", flat=True)) == ["baseline"]
    assert "another tab" in response.text


def test_going_back_keeps_the_revision_and_the_latest_counts(client_for, reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    url = reverse("grading:grade", args=[a.token])
    client.post(reverse("grading:submit", args=[a.token]), answers(ticket_of(client.get(url).text)))
    revision_page = client.get(url).text
    assert "revising your answer" in revision_page
    assert 'value="1" id="id_preference_0" required checked' in revision_page
    client.post(
        reverse("grading:submit", args=[a.token]),
        answers(ticket_of(revision_page), preference="tie"),
    )
    rows = list(
        Judgment.objects.order_by("revision").values_list("revision", "is_current", "preference")
    )
    assert rows == [(1, False, "candidate"), (2, True, "tie")]


def test_a_missing_answer_re_renders_the_form_and_saves_nothing(
    client_for, reviewer, campaign, htmx_headers
):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
    data = answers(ticket)
    del data["preference"]
    response = client.post(reverse("grading:submit", args=[a.token]), data, headers=htmx_headers)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Choose which response is better" in response.text
    assert not Judgment.objects.exists()


def test_a_scale_value_out_of_range_is_refused(client_for, reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
    response = client.post(
        reverse("grading:submit", args=[a.token]), answers(ticket, correctness__1="9")
    )
    assert "Choose a value from 1 to 5" in response.text
    assert not Judgment.objects.exists()


def test_rationale_is_required_when_the_campaign_says_so(client_for, reviewer, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(require_rationale=True)
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
    client.post(reverse("grading:submit", args=[a.token]), answers(ticket))
    assert not Judgment.objects.exists()
    client.post(reverse("grading:submit", args=[a.token]), answers(ticket, rationale="Clearer."))
    assert Judgment.objects.get().rationale == "Clearer."


def test_a_submission_after_pause_is_kept_and_the_reviewer_is_told(client_for, reviewer, campaign):
    first, _ = assign(campaign, reviewer, candidate_left=True, n=2)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[first.token])).text)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    response = client.post(
        reverse("grading:submit", args=[first.token]), answers(ticket), follow=True
    )
    assert Judgment.objects.count() == 1
    assert "paused" in response.text
    assert response.redirect_chain[-1][0] == reverse("reviews:queue")


def test_a_closed_campaign_refuses_new_judgments(client_for, reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    response = client.post(reverse("grading:submit", args=[a.token]), answers(ticket), follow=True)
    assert not Judgment.objects.exists()
    assert "closed" in response.text


def test_time_on_task_excludes_time_the_tab_was_hidden(reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    ticket = grading.read_ticket(grading.issue_ticket(a, base_revision=0), a)
    ticket = grading.Ticket(
        ticket.submission_key, ticket.shown_at.replace(year=ticket.shown_at.year - 1), 0
    )
    result = grading.submit_judgment(
        assignment=a, ticket=ticket, preference="tie", scores={}, active_seconds=42.5
    )
    assert result.judgment.duration_seconds == 42.5
    assert result.judgment.started_at == ticket.shown_at


def test_a_forged_ticket_is_refused(reviewer, campaign):
    first, second = assign(campaign, reviewer, candidate_left=True, n=2)
    with pytest.raises(Exception, match="another item"):
        grading.read_ticket(grading.issue_ticket(first, base_revision=0), second)
    with pytest.raises(Exception, match="damaged"):
        grading.read_ticket("not-a-ticket", first)


def test_skip_with_a_reason_moves_on(client_for, reviewer, campaign):
    first, second = assign(campaign, reviewer, candidate_left=True, n=2)
    response = client_for(reviewer).post(
        reverse("grading:skip", args=[first.token]), {"reason": "pii"}
    )
    assert response.url == reverse("grading:grade", args=[second.token])
    first.refresh_from_db()
    assert (first.status, first.skip_reason) == ("skipped", "pii")


def test_flag_keeps_the_item_and_records_the_note(client_for, reviewer, campaign, htmx_headers):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    response = client_for(reviewer).post(
        reverse("grading:flag", args=[a.token]), {"note": "Prompt is cut off"}, headers=htmx_headers
    )
    assert "<html" not in response.text
    assert "Flagged" in response.text
    a.refresh_from_db()
    assert (a.flagged, a.flag_note, a.status) == (True, "Prompt is cut off", "pending")


def test_submit_with_htmx_swaps_in_the_next_item_and_pushes_its_url(
    client_for, reviewer, campaign, htmx_headers
):
    first, second = assign(campaign, reviewer, candidate_left=True, n=2)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[first.token])).text)
    response = client.post(
        reverse("grading:submit", args=[first.token]), answers(ticket), headers=htmx_headers
    )
    assert "<html" not in response.text
    assert response.headers["HX-Push-Url"] == reverse("grading:grade", args=[second.token])
    assert reverse("grading:submit", args=[second.token]) in response.text


def test_the_last_item_shows_the_finished_panel(client_for, reviewer, campaign, htmx_headers):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[a.token])).text)
    response = client.post(
        reverse("grading:submit", args=[a.token]), answers(ticket), headers=htmx_headers
    )
    assert "Nothing left to grade here" in response.text


def test_a_history_restore_gets_the_whole_page(client_for, reviewer, campaign):
    (a,) = assign(campaign, reviewer, candidate_left=True)
    response = client_for(reviewer).get(
        reverse("grading:grade", args=[a.token]),
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in response.text


def test_queue_shows_progress_and_a_continue_button(client_for, reviewer, campaign):
    first, _ = assign(campaign, reviewer, candidate_left=True, n=2)
    Assignment.objects.filter(pk=first.pk).update(status="done")
    html = client_for(reviewer).get(reverse("reviews:queue")).text
    assert "1 / 2" in html
    assert "Continue" in html
    assert reverse("grading:start", args=[campaign.public_id]) in html


def test_grading_page_and_submit_use_a_fixed_number_of_queries(
    client_for, reviewer, campaign, django_assert_max_num_queries, htmx_headers
):
    assignments = assign(campaign, reviewer, candidate_left=True, n=30)
    client = client_for(reviewer)
    client.get(reverse("grading:grade", args=[assignments[0].token]))
    # Session, user with roles, assignment with its texts, campaign, progress and recent answers.
    with django_assert_max_num_queries(5):
        page = client.get(reverse("grading:grade", args=[assignments[0].token]))
    # The four first above, the transaction (lock with current judgment, insert, status, counter)
    # and the next item (next assignment with its texts, progress).
    with django_assert_max_num_queries(12):
        response = client.post(
            reverse("grading:submit", args=[assignments[0].token]),
            answers(ticket_of(page.text)),
            headers=htmx_headers,
        )
    assert response.headers["HX-Push-Url"] == reverse("grading:grade", args=[assignments[1].token])
    # Going back to revise: one more query for the stored answer.
    with django_assert_max_num_queries(6):
        page = client.get(reverse("grading:grade", args=[assignments[0].token]))
    assert "revising your answer" in page.text


def test_queue_page_query_count_does_not_grow_with_campaigns(
    client_for, reviewer, django_assert_max_num_queries
):
    client = client_for(reviewer)
    for _ in range(6):
        assign(CampaignFactory(), reviewer, candidate_left=True, n=3)
    with django_assert_max_num_queries(6):
        html = client.get(reverse("reviews:queue")).text
    assert html.count("Start") == 6


def test_a_changed_rubric_shows_at_once_on_the_next_page(client_for, reviewer, campaign):
    """The unanswered questions are rendered once per rubric content; an edit is not hidden."""
    assignments = assign(campaign, reviewer, candidate_left=True, n=2)
    client = client_for(reviewer)
    first = client.get(reverse("grading:grade", args=[assignments[0].token])).text
    assert 'name="correctness__1"' in first
    rubric = campaign.rubric
    rubric.criteria = [
        {**c, "label": "Is every step right?"} if c["name"] == "correctness" else c
        for c in rubric.criteria
    ]
    rubric.save()
    second = client.get(reverse("grading:grade", args=[assignments[1].token])).text
    assert "Is every step right? (Response 1)" in second
    assert "Is every step right?" not in first
