import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews import tasks
from reviews.models import Report
from reviews.reports import aggregation
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reviews.report_test_urls")]


def campaign_with_judgments(n_items, *, slug="report-me", per_item=2):
    campaign = factories.CampaignFactory(slug=slug)
    reviewers = [factories.UserFactory() for _ in range(per_item)]
    for i in range(n_items):
        item = factories.CampaignItemFactory(
            campaign=campaign, item__metadata={"category": ("billing", "shipping")[i % 2]}
        )
        for j, reviewer in enumerate(reviewers):
            factories.JudgmentFactory(
                assignment__campaign_item=item,
                assignment__reviewer=reviewer,
                preference=("candidate", "baseline", "candidate", "tie")[(i + j) % 4],
                duration_seconds=15.0 + i,
                scores={
                    "correctness": {"baseline": 3, "candidate": 3 + (i + j) % 3},
                    "refusal_ok": {"baseline": 1, "candidate": (i + j) % 2},
                    "overall": {"pair": 1 + (i * 3 + j) % 7},
                },
            )
    return campaign


@pytest.fixture
def reported():
    campaign = campaign_with_judgments(8)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    return campaign


def page_url(campaign, name="page"):
    return reverse(f"report:{name}", args=[campaign.slug])


@pytest.mark.parametrize(
    ("persona", "status"),
    [("lead", 200), ("analyst", 200), ("reviewer", 403), ("outsider", 403)],
)
@pytest.mark.parametrize("name", ["page", "status"])
def test_report_urls_by_persona(request, client_for, htmx_headers, reported, persona, status, name):
    client = client_for(request.getfixturevalue(persona))
    response = client.get(page_url(reported, name), headers=htmx_headers)
    assert response.status_code in ({status, 286} if status == 200 else {status})


def test_anonymous_users_are_sent_to_log_in(client, reported):
    response = client.get(page_url(reported))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_unknown_campaign_is_404(client_for, analyst):
    assert client_for(analyst).get("/reports/nope/").status_code == 404


def test_page_shows_the_verdict_charts_and_tables(client_for, analyst, reported):
    response = client_for(analyst).get(page_url(reported))

    assert response.status_code == 200
    html = response.content.decode()
    assert "The candidate is" in html or "Not decided yet" in html
    assert "at a 5-point margin" in html
    assert html.count("<svg") == 3  # win-rate bar, criteria forest, slice forest
    assert "category = billing" in html
    assert "Krippendorff" in html
    assert "Position bias" in html
    assert "from 16 judgments" in html
    assert "R-" in html
    # CSP: no inline style attributes or inline scripts; reviewers only as pseudonyms.
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "@example.org</td>" not in html


def test_low_agreement_is_flagged_unreliable(client_for, lead):
    campaign = factories.CampaignFactory()
    a, b = factories.UserFactory(), factories.UserFactory()
    for i in range(6):  # the two reviewers always disagree
        item = factories.CampaignItemFactory(campaign=campaign)
        for reviewer, pref in ((a, "candidate"), (b, "baseline")):
            factories.JudgmentFactory(
                assignment__campaign_item=item,
                assignment__reviewer=reviewer,
                preference=pref if i % 2 else {"candidate": "baseline"}.get(pref, "candidate"),
            )
    aggregation.run_aggregation(campaign_id=campaign.pk)
    html = client_for(lead).get(page_url(campaign)).content.decode()
    assert "unreliable" in html


def test_headline_in_words():
    from reviews.reports.views import headline

    pref = {"p_non_inferior": 0.9712, "margin": 0.05, "win_rate": 0.6}
    assert headline(pref, 0.95) == (
        "The candidate is non-inferior to the baseline with probability 0.971 at a 5-point margin."
    )
    # Never rounded up to certainty, as the migration page's figures are not either.
    assert "probability > 0.999 at" in headline({**pref, "p_non_inferior": 0.99991}, 0.95)
    assert headline({**pref, "p_non_inferior": 0.5}, 0.95).startswith("Not decided yet")
    assert headline({**pref, "p_non_inferior": 0.01}, 0.95).startswith("The candidate is worse")


def test_page_shows_alpha_kappa_and_ac1_with_intervals_and_readings(client_for, analyst):
    campaign = campaign_with_judgments(30, slug="agree", per_item=3)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    agreement = Report.objects.get(campaign=campaign).result["agreement"]["preference"]
    html = client_for(analyst).get(page_url(campaign)).content.decode()
    table = html[html.index('id="agreement-table"') :]
    table = table[: table.index("</table>")]
    for name, label in (
        ("krippendorff_alpha", "Krippendorff's α"),
        ("fleiss_kappa", "Fleiss' κ"),
        ("gwet_ac1", "Gwet's AC1"),
    ):
        lo, hi = agreement[f"{name}_ci95"]
        row = re.search(rf"<td>{re.escape(label)}</td>.*?</tr>", table.replace("&#x27;", "'"))
        assert row, label
        assert f"{agreement[name]:.3f}" in row.group(0)
        assert f"{lo:.3f} to {hi:.3f}" in row.group(0)
        assert re.search(r"agreement|reliable|unreliable|tentative|chance", row.group(0))


def test_page_says_the_decision_and_its_basis_for_a_campaign_without_a_judge(
    client_for, analyst, reported
):
    html = client_for(analyst).get(page_url(reported)).content.decode()
    decision = html[html.index('id="report-decision"') :]
    decision = decision[: decision.index("</p>")]
    assert "rests on the reviewers&#x27; own labels" in decision
    assert "lowest P(non-inferior)" in decision


def test_probabilities_read_the_same_in_the_headline_and_the_table(client_for, analyst):
    campaign = campaign_with_judgments(30, slug="sure", per_item=3)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    p = Report.objects.get(campaign=campaign).result["preference"]["p_non_inferior"]
    assert p > 0.9995  # the campaign is as sure as the test needs
    html = client_for(analyst).get(page_url(campaign)).content.decode()
    assert "with probability &gt; 0.999 at a 5-point margin" in html
    assert '<td class="num">&gt; 0.999</td>' in html
    assert ">1.000<" not in html


def test_an_undecided_page_gives_one_more_labels_figure(client_for, analyst):
    campaign = factories.CampaignFactory(slug="undecided", margin=0.1)
    reviewers = [factories.UserFactory() for _ in range(2)]
    for i in range(20):
        item = factories.CampaignItemFactory(campaign=campaign)
        for reviewer in reviewers:
            factories.JudgmentFactory(
                assignment__campaign_item=item,
                assignment__reviewer=reviewer,
                preference="candidate" if i < 9 else "baseline",
            )
    aggregation.run_aggregation(campaign_id=campaign.pk)
    decision = Report.objects.get(campaign=campaign).result["decision"]
    assert decision["verdict"] == "need_more_labels"
    html = client_for(analyst).get(page_url(campaign)).content.decode()
    assert f"about {decision['more_labels_needed']} more human-labelled items" in html
    assert "more decisive judgments until" not in html


def test_page_without_a_report_offers_to_compute_one(client_for, lead):
    campaign = factories.CampaignFactory()
    response = client_for(lead).get(page_url(campaign))
    assert response.status_code == 200
    assert b"No report has been computed yet." in response.content
    assert b"Recompute now" in response.content


def page_queries(client, campaign):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(page_url(campaign)).status_code == 200
    return len(ctx.captured_queries)


def test_page_query_count_is_bounded_and_flat(client_for, analyst, django_assert_max_num_queries):
    client = client_for(analyst)
    small = campaign_with_judgments(3, slug="small")
    large = campaign_with_judgments(30, slug="large", per_item=3)
    for campaign in (small, large):
        aggregation.run_aggregation(campaign_id=campaign.pk)

    with django_assert_max_num_queries(8):
        client.get(page_url(large))
    assert page_queries(client, small) == page_queries(client, large)


def test_recompute_queues_a_report_and_the_task_on_commit(
    client_for, lead, reported, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(tasks.aggregate_campaign, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client_for(lead).post(page_url(reported, "recompute"))

    assert response.status_code == 302
    assert len(callbacks) == 1
    send.assert_called_once_with(args=(reported.pk,), kwargs={}, retry=False)
    assert Report.objects.filter(campaign=reported, status=Report.Status.QUEUED).count() == 1


def test_recompute_by_htmx_returns_the_polling_fragment(client_for, lead, reported, htmx_headers):
    with mock.patch.object(tasks.aggregate_campaign, "apply_async"):
        response = client_for(lead).post(page_url(reported, "recompute"), headers=htmx_headers)
        client_for(lead).post(page_url(reported, "recompute"), headers=htmx_headers)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'id="report-status"' in html
    assert 'hx-trigger="every 2s"' in html
    # Asking twice while queued does not pile up rows.
    assert Report.objects.filter(campaign=reported, status=Report.Status.QUEUED).count() == 1


def test_recompute_needs_post(client_for, lead, reported):
    assert client_for(lead).get(page_url(reported, "recompute")).status_code == 405


def test_status_fragment_polls_while_queued_and_stops_when_done(
    client_for, analyst, reported, htmx_headers
):
    client = client_for(analyst)
    queued = Report.objects.create(campaign=reported, status=Report.Status.QUEUED)

    polling = client.get(page_url(reported, "status"), headers=htmx_headers)
    assert polling.status_code == 200
    assert b"<html" not in polling.content
    assert b'hx-trigger="every 2s"' in polling.content

    aggregation.run_aggregation(campaign_id=reported.pk)  # unchanged data: the queued row goes
    assert not Report.objects.filter(pk=queued.pk).exists()
    done = client.get(page_url(reported, "status"), headers=htmx_headers)
    assert done.status_code == 286  # htmx's "stop polling"
    assert b"<html" not in done.content
    assert b"every 2s" not in done.content
    assert b"Report computed" in done.content


def test_status_without_htmx_redirects_to_the_page(client_for, analyst, reported):
    response = client_for(analyst).get(page_url(reported, "status"))
    assert response.status_code == 302
    assert response["Location"] == page_url(reported)


def test_position_bias_of_imported_judgments_without_sides_is_called_unknown():
    from reviews.reports.views import bias_reading

    unknown = {"left_rate": None, "n": 0, "p_value": None}
    assert bias_reading(unknown, decisive=12).startswith("Not known")
    assert "left_system" in bias_reading(unknown, decisive=12)
    assert bias_reading(unknown, decisive=0) == "No decisive judgments yet."
    assert bias_reading({"left_rate": 0.5, "n": 10, "p_value": 0.9}, decisive=10).startswith(
        "No sign"
    )
