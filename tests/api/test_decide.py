"""manage.py decide: the release gate's exit codes, its JSON, and --wait."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from reviews.models import Report
from reviews.reports import gate
from tests.api.conftest import store_report
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def decide(*args):
    out = io.StringIO()
    try:
        call_command("decide", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize(
    ("verdict", "code"), [("migrate", 0), ("do_not_migrate", 2), ("need_more_labels", 3)]
)
def test_decide_exits_with_the_verdicts_code(verdict, code):
    campaign = CampaignFactory()
    store_report(campaign, {"verdict": verdict, "threshold": 0.9, "probability": 0.5})
    status, out = decide(campaign.slug)
    assert status == code
    assert out.startswith(f"{campaign.slug}: {verdict} (probability 0.500, threshold 0.9)")


def test_decide_json_prints_the_decision_as_the_api_answers_it():
    campaign = CampaignFactory()
    report = store_report(campaign, {"verdict": "migrate", "threshold": 0.95, "probability": 0.97})
    status, out = decide(campaign.slug, "--json")
    assert status == 0
    assert json.loads(out) == {
        "verdict": "migrate",
        "probability": 0.97,
        "threshold": 0.95,
        "reasons": [],
        "report_at": report.finished_at.isoformat(),
    }


def test_decide_without_a_report_needs_more_labels():
    campaign = CampaignFactory()
    status, out = decide(campaign.slug)
    assert status == 3
    assert "No report has been computed" in out


def test_decide_on_an_unknown_campaign_is_an_error_with_status_1():
    with pytest.raises(CommandError, match="No campaign with the slug 'nope'"):
        call_command("decide", "nope")


def test_decide_reads_an_older_report_from_its_calibrated_criteria():
    campaign = CampaignFactory()
    store_report(
        campaign,
        {"verdict": "do_not_migrate", "threshold": 0.95, "more_labels_needed": None},
        calibration={
            "correctness": {"critical": True, "verdict": "fail",
                            "difference": {"p_non_inferior": 0.02}},
            "tone": {"critical": False, "verdict": "pass", "difference": {"p_non_inferior": 0.99}},
        },
    )  # fmt: skip
    status, out = decide(campaign.slug, "--json")
    decision = json.loads(out)
    assert status == 2
    assert decision["probability"] == 0.02  # the critical criterion decides
    assert decision["reasons"] == [
        "criterion correctness: P(non-inferior) 0.020 against the threshold 0.95 (fail)."
    ]


def test_wait_polls_until_a_queued_report_is_done(monkeypatch):
    campaign = CampaignFactory()
    queued = Report.objects.create(campaign=campaign, status=Report.Status.QUEUED)
    sleeps = []

    def finish_report(seconds):
        sleeps.append(seconds)
        Report.objects.filter(pk=queued.pk).update(status=Report.Status.DONE)
        store_report(campaign, {"verdict": "migrate", "threshold": 0.95, "probability": 0.99})

    monkeypatch.setattr(gate.time, "sleep", finish_report)
    decision = gate.wait_for_decision(campaign=campaign, seconds=60, poll=2)
    assert decision["verdict"] == "migrate"
    assert sleeps == [2]


def test_wait_gives_up_after_its_seconds_with_need_more_labels(monkeypatch):
    campaign = CampaignFactory()
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(gate.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(gate.time, "sleep", lambda seconds: None)
    status, out = decide(campaign.slug, "--wait", "12")
    assert status == 3
    assert "need_more_labels" in out
