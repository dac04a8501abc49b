"""The migration page (issue #8): the decision in a sentence, calibrated criteria, operational
figures, and the lead's "next batch from the most informative items"."""

import random
import threading

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.template.defaultfilters import floatformat
from django.urls import reverse

from datasets.dataset_stats import refresh_dataset_stats
from datasets.models import Response
from reviews.campaigns import batches, services
from reviews.models import Assignment, AuditEvent, Batch, CampaignItem, Judgment, Report
from reviews.reports import aggregation, calibration, migration
from tests import factories
from tests.reviews.conftest import add_items, complete

pytestmark = pytest.mark.django_db

RUBRIC = [
    {
        "name": "correctness",
        "label": "Is it correct?",
        "kind": "scale",
        "min": 1,
        "max": 5,
        "per": "response",
        "pass_threshold": 4,
        "critical": True,
    },
    {"name": "refusal_ok", "label": "Refuses only when it should", "kind": "binary"},
]


def build_scenario(*, lead, reviewers, n_items, n_labelled, baseline_pass, candidate_pass, seed=3):
    """A campaign (acme-base against acme-next) with a computed report.

    Every response carries the judge's verdict on correctness (right 85% of the time) and a
    latency; the reviewers label a sample of n_labelled items with the true verdicts (5 or 2).
    """
    rng = random.Random(seed)
    dataset = factories.DatasetFactory()
    systems = [factories.SystemFactory(name=name) for name in ("acme-base", "acme-next")]
    add_items(dataset, systems, n_items)
    campaign = services.create_campaign(
        name=f"Migration {dataset.slug}",
        dataset=dataset,
        baseline=systems[0],
        candidate=systems[1],
        rubric=factories.RubricFactory(criteria=RUBRIC),
        seed=7,
        actor=lead,
    )
    truth, responses = {}, []
    for ci in campaign.campaign_items.select_related("baseline_response", "candidate_response"):
        for system, p in (("baseline", baseline_pass), ("candidate", candidate_pass)):
            response = getattr(ci, f"{system}_response")
            human = rng.random() < p
            judge = human if rng.random() < 0.85 else not human
            truth[ci.item_id, system] = human
            response.metadata = {
                "auto_correctness": "pass" if judge else "fail",
                "latency_ms": 400 + 100 * (system == "candidate"),
            }
            responses.append(response)
    Response.objects.bulk_update(responses, ["metadata"])
    refresh_dataset_stats(dataset_id=dataset.pk)
    batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, selection="sample", n=n_labelled, actor=lead
    )
    for a in Assignment.objects.filter(campaign=campaign):
        scores = {s: 5 if truth[a.item_id, s] else 2 for s in ("baseline", "candidate")}
        judgment = complete(a, preference="candidate" if a.pk % 3 else "baseline")
        Judgment.objects.filter(pk=judgment.pk).update(scores={"correctness": scores})
    aggregation.run_aggregation(campaign_id=campaign.pk)
    return campaign


@pytest.fixture
def scenario(make_reviewers, lead):
    """scenario(n_items, n_labelled, baseline_pass, candidate_pass) -> campaign with a report."""

    def build(n_items, n_labelled, baseline_pass, candidate_pass):
        return build_scenario(
            lead=lead,
            reviewers=make_reviewers(2),
            n_items=n_items,
            n_labelled=n_labelled,
            baseline_pass=baseline_pass,
            candidate_pass=candidate_pass,
        )

    return build


@pytest.fixture
def undecided(scenario):
    return scenario(300, 20, 0.8, 0.8)


def page_url(campaign):
    return reverse("report:migration", args=[campaign.slug])


def batch_url(campaign):
    return reverse("report:next-batch", args=[campaign.slug])


def report_of(campaign):
    return migration.latest_report(campaign)


def test_undecided_page_says_how_many_more_labels_and_shows_each_figure(
    client_for, analyst, undecided
):
    r = report_of(undecided).result
    assert r["decision"]["verdict"] == "need_more_labels"  # the scenario is what it claims
    html = client_for(analyst).get(page_url(undecided)).content.decode()

    more = r["decision"]["more_labels_needed"]
    p = r["calibration"]["correctness"]["difference"]["p_non_inferior"]
    assert (
        f"Need more human labels: about {more} more human-labelled items should settle it "
        f"(undecided: correctness at P(non-inferior) {p:.3f}; 0.95 is needed)." in html
    )
    # One set of numbers: the table prints the probability the sentence does.
    assert html.count(f">{p:.3f}</td>") == 1
    assert "This batch: " not in html  # analysts get no batch button or its figures
    candidate = r["calibration"]["correctness"]["candidate"]
    n = candidate["tp"] + candidate["fn"] + candidate["fp"] + candidate["tn"]
    rate = (candidate["tp"] + candidate["fn"]) / n
    assert f"{floatformat(rate, 3)} (" in html
    assert f"n={n}" in html
    assert floatformat(candidate["posterior_mean"], 3) in html  # calibrated
    assert floatformat(candidate["sensitivity"], 2) in html
    assert "critical" in html
    assert "undecided" in html
    assert "<strong>no better than chance</strong>" not in html
    assert "refusal_ok" not in html  # no judge verdicts on it, so not calibrated
    # Operational figures per system, and the pairwise preference.
    assert "latency_ms" in html
    assert "auto_correctness" not in html
    assert ">400<" in html
    assert ">500<" in html
    assert "acme-base" in html
    assert "acme-next" in html
    assert floatformat(r["preference"]["win_rate"], 3) in html
    assert floatformat(r["preference"]["p_candidate_better"], 3) in html
    # Analysts read; only leads get the button.
    assert "Create the next batch" not in html


def test_decided_pages_say_migrate_or_do_not_migrate(client_for, lead, scenario):
    good = scenario(120, 100, 0.8, 0.85)
    bad = scenario(120, 100, 0.85, 0.4)

    good_html = client_for(lead).get(page_url(good)).content.decode()
    bad_html = client_for(lead).get(page_url(bad)).content.decode()

    good_result = report_of(good).result
    p = good_result["calibration"]["correctness"]["difference"]["p_non_inferior"]
    shown = "> 0.999" if p > 0.9995 else f"{p:.3f}"
    assert (
        "Migrate: every critical criterion is non-inferior with probability ≥ 0.95 "
        f"(lowest: {shown} on correctness)." in good_html.replace("&gt;", ">")
    )
    assert good_result["decision"]["basis"] == "calibrated"
    assert good_result["decision"]["probability"] == p
    # Never "1.00" in the headline against "0.999" in the table: both say the same.
    assert good_html.replace("&gt;", ">").count(f">{shown}</td>") == 1
    assert (
        "Do not migrate: the candidate is worse than the baseline by more than the 5-point "
        "margin on correctness (P(non-inferior) &lt; 0.001)." in bad_html
    )
    assert "Create the next batch" not in good_html + bad_html


def test_page_without_a_report_says_what_to_do(client_for, lead):
    campaign = factories.CampaignFactory()
    response = client_for(lead).get(page_url(campaign))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No report yet: compute one on the report page" in html
    assert "auto_refusal_ok" in html  # the default rubric's binary criterion


def test_report_without_calibration_explains_columns_and_pass_threshold(client_for, analyst):
    scales_only = [{"name": "correctness", "label": "C", "kind": "scale", "min": 1, "max": 5}]
    campaign = factories.CampaignFactory(rubric=factories.RubricFactory(criteria=scales_only))
    factories.JudgmentFactory(assignment__campaign_item__campaign=campaign)
    aggregation.run_aggregation(campaign_id=campaign.pk)

    html = client_for(analyst).get(page_url(campaign)).content.decode()

    # No judge: the reviewers' labels decide, and the page says what a judge would need.
    assert "From the reviewers' own labels" in html
    assert 'id="human-decision"' in html
    assert "Need more human labels" in html
    assert "pass_threshold" in html
    assert "auto_&lt;criterion&gt;_a" in html
    assert "1/0, true/false or pass/fail" in html


def test_more_labels_than_the_campaign_has_left_says_so(client_for, lead, undecided):
    report = report_of(undecided)
    report.result["decision"]["more_labels_needed"] = 640
    Report.objects.filter(pk=report.pk).update(result=report.result)
    left = CampaignItem.objects.filter(campaign=undecided, slots_taken=0).count()

    html = client_for(lead).get(page_url(undecided)).content.decode()

    assert (
        f"about 640 more human-labelled items should settle it, more than the {left} items of "
        "this campaign nobody has reviewed yet: import more pairs to settle it" in html
    )
    # The batch states its own size as part of that one figure.
    assert f"This batch: {min(200, left)} of the 640 items the decision needs" in html
    assert html.count("640") == 2


def test_the_page_does_not_ask_for_judge_columns_the_file_has(client_for, lead, make_reviewers):
    campaign = build_scenario(
        lead=lead,
        reviewers=make_reviewers(1),
        n_items=10,
        n_labelled=2,
        baseline_pass=0.8,
        candidate_pass=0.8,
    )
    Report.objects.filter(campaign=campaign).delete()

    html = client_for(lead).get(page_url(campaign)).content.decode()

    assert "The pairs file has the judge&#x27;s verdicts (auto_correctness)" in html
    assert "needs the judge&#x27;s verdicts" not in html


def test_a_judge_no_better_than_chance_is_called_so(client_for, analyst, undecided):
    report = report_of(undecided)
    chance = {"tp": 5, "fn": 5, "fp": 5, "tn": 5, "n_judge_only": 80, "k_judge_positive": 40}
    entry = calibration.calibrate_criterion(chance, chance, margin=0.05, critical=True)
    report.result["calibration"]["correctness"] = entry
    Report.objects.filter(pk=report.pk).update(result=report.result)

    html = client_for(analyst).get(page_url(undecided)).content.decode()

    assert html.count("<strong>no better than chance</strong>") == 2  # both systems' rows


def test_page_query_count_is_bounded(client_for, lead, undecided, django_assert_max_num_queries):
    client = client_for(lead)
    client.get(page_url(undecided))  # sessions and roles warm
    with django_assert_max_num_queries(9):
        response = client.get(page_url(undecided))
    assert "Create the next batch" in response.content.decode()


def test_report_page_links_to_the_migration_page(client_for, analyst, undecided):
    html = client_for(analyst).get(reverse("report:page", args=[undecided.slug])).content.decode()
    assert f'href="{page_url(undecided)}"' in html


# ----------------------------------------------------------------------------- the next batch


def test_lead_creates_the_next_batch_from_unlabelled_items_stratified_on_the_judge(
    client_for, lead, undecided
):
    report = report_of(undecided)
    unassigned = set(
        CampaignItem.objects.filter(campaign=undecided, slots_taken=0).values_list("pk", flat=True)
    )
    roster = {u.email for u in undecided.roster.all()}
    plan = migration.plan_next_batch(undecided, report)  # seeded: the button makes the same
    client = client_for(lead)

    response = client.post(batch_url(undecided), {"report": report.pk}, follow=True)

    batch = Batch.objects.get(campaign=undecided, number=2)
    chosen = list(Assignment.objects.filter(batch=batch).values_list("campaign_item_id", flat=True))
    assert sorted(chosen) == sorted(plan.campaign_items)
    assert set(chosen) <= unassigned  # nobody had labelled or been given them
    expected = min(report.result["decision"]["more_labels_needed"], migration.NEXT_BATCH_MAX)
    assert len(chosen) == expected < len(unassigned)
    verdicts = dict(
        CampaignItem.objects.filter(pk__in=chosen).values_list(
            "pk", f"{plan.system}_response__metadata__auto_correctness"
        )
    )
    assert sum(v == "pass" for v in verdicts.values()) == plan.judge_positive
    assert sum(v == "fail" for v in verdicts.values()) == plan.judge_negative
    assert plan.judge_positive > 0
    assert plan.judge_negative > 0
    assert {a.reviewer.email for a in Assignment.objects.filter(batch=batch)} == roster
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"Batch 2: {len(chosen)} items chosen on correctness")
    assert all(email in message for email in roster)
    event = AuditEvent.objects.get(verb="migration.next_batch")
    assert (event.actor, event.target) == (lead, f"report:{report.pk}")
    assert event.details["batches"] == [2]
    # The page now says it was done rather than offering the button again.
    html = response.content.decode()
    assert "The next batch for this report was created" in html
    assert "Create the next batch" not in html


def test_the_next_batch_reads_the_refusal_metric_when_it_is_the_judge(
    undecided, client_for, analyst
):
    """The same verdicts given as refusals (a refusal is a fail) to a criterion whose judge is
    the refusal metric: the plan stratifies on the metric, as it did on auto_correctness."""
    rubric = undecided.rubric
    rubric.criteria = [{**RUBRIC[0], "judge": "refusal_metric"}, RUBRIC[1]]
    rubric.save(update_fields=["criteria"])
    responses = list(Response.objects.filter(item__dataset=undecided.dataset))
    for response in responses:
        passed = response.metadata.pop("auto_correctness") == "pass"
        response.metrics = {"refusal": not passed}
    Response.objects.bulk_update(responses, ["metadata", "metrics"])
    Report.objects.filter(campaign=undecided).delete()  # same judgments: else the old is reused
    report = aggregation.run_aggregation(campaign_id=undecided.pk)
    assert report.result["calibration"]["correctness"]["judge"] == "refusal_metric"
    assert report.result["decision"]["verdict"] == "need_more_labels"
    html = client_for(analyst).get(page_url(undecided)).content.decode()
    assert "judge: the built-in refusal metric" in html

    plan = migration.plan_next_batch(undecided, report)

    refused = dict(
        CampaignItem.objects.filter(pk__in=plan.campaign_items).values_list(
            "pk", f"{plan.system}_response__metrics__refusal"
        )
    )
    assert sum(v is False for v in refused.values()) == plan.judge_positive > 0
    assert sum(v is True for v in refused.values()) == plan.judge_negative > 0


def test_a_double_submit_creates_one_batch(client_for, lead, undecided):
    report = report_of(undecided)
    client = client_for(lead)
    client.post(batch_url(undecided), {"report": report.pk})
    n_assignments = Assignment.objects.filter(campaign=undecided).count()

    response = client.post(batch_url(undecided), {"report": report.pk}, follow=True)

    assert Batch.objects.filter(campaign=undecided).count() == 2
    assert Assignment.objects.filter(campaign=undecided).count() == n_assignments
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages[-1] == "The next batch for this report was already created (batch 2)."


def test_a_stale_report_creates_nothing(client_for, lead, undecided):
    report = report_of(undecided)
    response = client_for(lead).post(batch_url(undecided), {"report": report.pk + 1}, follow=True)
    assert Batch.objects.filter(campaign=undecided).count() == 1
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "The report has changed since this page was shown" in message


def test_no_button_work_once_decided(client_for, lead, scenario):
    decided = scenario(60, 50, 0.85, 0.4)
    report = report_of(decided)
    response = client_for(lead).post(batch_url(decided), {"report": report.pk}, follow=True)
    assert Batch.objects.filter(campaign=decided).count() == 1
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == "The decision is made: no more labels are needed."


@pytest.mark.parametrize("persona", ["analyst", "reviewer"])
def test_only_leads_may_create_the_batch(request, client_for, undecided, persona):
    client = client_for(request.getfixturevalue(persona))
    response = client.post(batch_url(undecided), {"report": report_of(undecided).pk})
    assert response.status_code == 403
    assert Batch.objects.filter(campaign=undecided).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_create_one_batch(postgres_only, lead, make_reviewers):
    campaign = build_scenario(
        lead=lead,
        reviewers=make_reviewers(2),
        n_items=300,
        n_labelled=20,
        baseline_pass=0.8,
        candidate_pass=0.8,
    )
    report = report_of(campaign)
    start = threading.Barrier(2)
    outcomes = []

    def submit():
        try:
            start.wait()
            migration.create_next_batch(campaign=campaign, report_id=report.pk, actor=lead)
            outcomes.append("created")
        except ValidationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["already_created", "created"]
    assert Batch.objects.filter(campaign=campaign).count() == 2


def test_no_button_when_every_item_already_has_reviewers(client_for, lead, scenario):
    campaign = scenario(24, 24, 0.6, 0.65)
    assert report_of(campaign).result["decision"]["verdict"] == "need_more_labels"
    html = client_for(lead).get(page_url(campaign)).content.decode()
    assert "Every item of this campaign already has reviewers" in html
    assert batch_url(campaign) not in html


def test_gates_and_segments_are_shown_and_named_in_the_decision(client_for, analyst, undecided):
    report = report_of(undecided)
    decision = report.result["decision"]
    decision["verdict"] = "do_not_migrate"
    decision["gates"] = {
        "p90 latency_ms <= 1500": {
            "estimate": 2003.0, "ci95": [1990.0, 2010.0], "probability": 0.0, "verdict": "fail",
            "n": 300,
        }
    }  # fmt: skip
    decision["segment_key"] = "region"
    decision["segments"] = {
        "eu": {"verdict": "need_more_labels", "probability": 0.9, "n_items": 150,
               "basis": "calibrated", "more_labels_needed": 40},
        "us": {"verdict": "do_not_migrate", "probability": 0.01, "n_items": 150,
               "basis": "calibrated", "more_labels_needed": None},
    }  # fmt: skip
    Report.objects.filter(pk=report.pk).update(result=report.result)

    html = client_for(analyst).get(page_url(undecided)).content.decode()

    assert (
        "Do not migrate: p90 latency_ms &lt;= 1500 is not met (probability &lt; 0.001) and "
        "region us says do not migrate." in html
    )
    gates_table = html[html.index('id="gates"') :]
    assert "2003.0 (1990.0 to 2010.0)" in gates_table[: gates_table.index("</table>")]
    segments = html[html.index('id="segments"') :]
    segments = segments[: segments.index("</table>")]
    assert "need more labels" in segments
    assert "do not migrate" in segments
    assert ">0.900<" in segments


def test_the_criteria_differences_are_drawn_against_the_margin(client_for, analyst, undecided):
    page = client_for(analyst).get(page_url(undecided)).content.decode()
    chart = page[page.index("Pass-rate difference per criterion") - 200 :]
    assert "<svg" in chart
    assert ">correctness<" in chart  # one row per calibrated criterion, labelled by name
    assert "style=" not in chart  # CSP: no inline styles
