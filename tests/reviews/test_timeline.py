"""A dataset's timeline across campaigns: page, CSV, command, regression marking."""

import csv
import datetime
import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from reviews.models import Campaign, Report
from reviews.reports import aggregation, timeline
from tests import factories

pytestmark = pytest.mark.django_db

CRITICAL_RUBRIC = [
    {"name": "resolved", "label": "Resolves the issue", "kind": "binary", "per": "response",
     "critical": True},
    {"name": "tone", "label": "Tone", "kind": "scale", "min": 1, "max": 5, "per": "response"},
]  # fmt: skip


def campaign_with_report(dataset, baseline, candidate, *, day, rate=None, ci=None, verdict=None,
                         criteria=None, slug=None):  # fmt: skip
    campaign = factories.CampaignFactory(
        dataset=dataset,
        baseline=factories.SystemFactory(name=baseline),
        candidate=factories.SystemFactory(name=candidate),
        rubric=factories.RubricFactory(name="critical", criteria=CRITICAL_RUBRIC),
        **({"slug": slug} if slug else {}),
    )
    when = datetime.datetime(2026, 1, day, 9, tzinfo=datetime.UTC)
    Campaign.objects.filter(pk=campaign.pk).update(created_at=when)
    if rate is not None:
        Report.objects.create(
            campaign=campaign,
            status=Report.Status.DONE,
            state_key=f"k{campaign.pk}",
            finished_at=when + datetime.timedelta(days=2),
            result={
                "n_items": 60,
                "n_judgments": 180,
                "preference": {"win_rate": rate, "win_rate_ci95": ci},
                "decision": {"verdict": verdict, "probability": 0.97, "threshold": 0.95},
                "criteria": criteria or {},
            },
        )
    return campaign


@pytest.fixture
def history():
    dataset = factories.DatasetFactory(name="golden-support", slug="golden-support")
    # Oldest first whatever the creation order of the rows.
    third = campaign_with_report(dataset, "bot-v2", "bot-v3", day=20, rate=0.31, ci=[0.22, 0.44],
                                 verdict="do_not_migrate", slug="v3-trial")  # fmt: skip
    first = campaign_with_report(dataset, "bot-v1", "bot-v2", day=1, rate=0.68, ci=[0.58, 0.77],
                                 verdict="migrate", slug="v2-trial",
                                 criteria={"resolved": {"baseline_mean": 0.8,
                                                        "candidate_mean": 0.9}})  # fmt: skip
    second = campaign_with_report(dataset, "bot-v2", "bot-v2-prompt", day=10, rate=0.47,
                                  ci=[0.38, 0.56], verdict="need_more_labels",
                                  slug="prompt-trial")  # fmt: skip
    pending = campaign_with_report(dataset, "bot-v2", "bot-v4", day=25, slug="v4-trial")
    return dataset, [first, second, third, pending]


def test_rows_are_oldest_first_and_a_significantly_worse_candidate_is_a_regression(history):
    dataset, campaigns = history
    rows = timeline.timeline_rows(dataset=dataset)
    assert [r["campaign"] for r in rows] == [c.slug for c in campaigns]
    assert [r["regression"] for r in rows] == [False, False, True, False]
    # v2 entered service through the first campaign's "migrate"; later rows say so.
    assert [r["replaced_in"] for r in rows] == [None, "v2-trial", "v2-trial", "v2-trial"]
    assert rows[0]["critical"] == {"resolved": {"baseline": 0.8, "candidate": 0.9}}
    assert rows[3]["win_rate"] is None
    assert rows[3]["verdict"] is None


def test_the_latest_done_report_is_the_one_read(history):
    dataset, campaigns = history
    Report.objects.create(campaign=campaigns[2], status=Report.Status.FAILED, error="boom")
    Report.objects.create(
        campaign=campaigns[2],
        status=Report.Status.DONE,
        state_key="newer",
        finished_at=timezone.now(),
        result={"preference": {"win_rate": 0.52, "win_rate_ci95": [0.45, 0.6]}, "decision": {}},
    )
    row = timeline.timeline_rows(dataset=dataset)[2]
    assert row["win_rate"] == 0.52
    assert not row["regression"]


def test_page_shows_the_chart_the_regression_and_the_test_used(client_for, analyst, history):
    dataset, _ = history
    page = client_for(analyst).get(reverse("report:timeline", args=[dataset.slug])).text
    assert "<svg" in page
    assert "Regression" in page
    assert timeline.REGRESSION_TEST in page
    assert page.index("v2-trial") < page.index("prompt-trial") < page.index("v3-trial")
    assert "Do not migrate" in page
    assert "No verdict yet" in page


def test_page_query_count_does_not_grow_with_campaigns(
    client_for, analyst, history, django_assert_max_num_queries
):
    dataset, _ = history
    client = client_for(analyst)
    url = reverse("report:timeline", args=[dataset.slug])
    client.get(url)
    with django_assert_max_num_queries(6):
        client.get(url)
    for day in range(3, 9):
        campaign_with_report(dataset, "bot-v2", f"bot-x{day}", day=day, rate=0.5, ci=[0.4, 0.6])
    with django_assert_max_num_queries(6):
        client.get(url)


def test_csv_download_has_a_row_per_campaign_and_defuses_formulas(client_for, lead, history):
    dataset, _ = history
    dataset.name = "=HYPERLINK(1)"
    dataset.save(update_fields=["name"])
    response = client_for(lead).get(reverse("report:timeline-csv", args=[dataset.slug]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["campaign"] for r in rows] == ["v2-trial", "prompt-trial", "v3-trial", "v4-trial"]
    assert [r["regression"] for r in rows] == ["no", "no", "yes", "no"]
    assert rows[0]["dataset"] == "'=HYPERLINK(1)"
    assert rows[0]["critical_pass_rates"] == "resolved: 0.800 -> 0.900"
    assert response["Content-Disposition"].endswith('golden-support-timeline.csv"')


def test_command_prints_rows_and_json(history):
    dataset, _ = history
    text = io.StringIO()
    call_command("timeline", dataset.name, stdout=text)
    assert "v3-trial: bot-v3 vs bot-v2" in text.getvalue()
    assert "REGRESSION" in text.getvalue()
    out = io.StringIO()
    call_command("timeline", "golden-support", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert [r["regression"] for r in rows] == [False, False, True, False]
    assert rows[0]["regression_test"] == timeline.REGRESSION_TEST


def test_command_names_an_unknown_dataset():
    with pytest.raises(Exception, match="No dataset named 'nope'"):
        call_command("timeline", "nope")


def test_timeline_reads_a_real_aggregation(client_for, analyst):
    campaign = factories.CampaignFactory()
    reviewers = [factories.UserFactory() for _ in range(2)]
    for i in range(30):
        item = factories.CampaignItemFactory(campaign=campaign)
        for reviewer in reviewers:
            factories.JudgmentFactory(
                assignment__campaign_item=item,
                assignment__reviewer=reviewer,
                preference="baseline" if i % 10 else "candidate",
            )
    aggregation.run_aggregation(campaign_id=campaign.pk)
    (row,) = timeline.timeline_rows(dataset=campaign.dataset)
    assert row["win_rate"] == pytest.approx(3 / 30)
    assert row["win_rate_ci95"][1] < 0.5
    assert row["regression"]
