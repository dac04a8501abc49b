"""The /api/v1/ endpoints end to end, as a pipeline drives them: same services, same audit
events, same FILE:LINE messages as the command line; bad input is a 4xx and saves nothing."""

import csv
import io

import pytest
from django.contrib.auth.models import Group

from datasets.models import Dataset, ImportJob, Item
from reviews.models import Assignment, AuditEvent, Campaign, ExportLog, Judgment, Report, Rubric
from tests.api.conftest import PAIRS_CSV, store_report
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

RUBRIC = {
    "name": "pipeline-rubric",
    "criteria": [
        {"name": "correctness", "label": "Correct?", "kind": "scale", "min": 1, "max": 5,
         "per": "response"},
    ],
}  # fmt: skip


@pytest.fixture
def lead_api(api_as, lead):
    return api_as(lead)


def import_pairs(api, capture, body=PAIRS_CSV, dataset="support-golden"):
    with capture(execute=True):
        return api.post_file(f"/api/v1/datasets/{dataset}/imports?filename=golden.csv", body)


@pytest.fixture
def imported(lead_api, django_capture_on_commit_callbacks):
    response = import_pairs(lead_api, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    return response.json()


@pytest.fixture
def campaign_slug(lead_api, imported):
    body = {"name": "Next model", "dataset": "support-golden", "baseline": "acme-base",
            "candidate": "acme-next", "overlap": 1, "seed": 7}  # fmt: skip
    response = lead_api.post_json("/api/v1/campaigns", body)
    assert response.status_code == 201, response.content
    return response.json()["slug"]


def test_import_answers_202_with_the_job_and_the_job_reports_its_progress(lead_api, imported):
    assert imported["url"] == f"/api/v1/imports/{imported['id']}"
    status = lead_api.get(imported["url"])
    assert status.status_code == 200
    body = status.json()
    assert (body["status"], body["progress"], body["errors"]) == ("done", 100, [])
    assert (body["dataset"], body["filename"]) == ("support-golden", "golden.csv")
    assert Item.objects.filter(dataset__name="support-golden").count() == 3


def test_import_of_ndjson_with_pii_redaction(lead_api, django_capture_on_commit_callbacks):
    line = ('{"item_id": "J-1", "prompt": "Mail me at ann@example.org", "system_a": "a", '
            '"response_a": "ok", "system_b": "b", "response_b": "fine"}\n')  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_api.post_file(
            "/api/v1/datasets/mail/imports?redact_pii=1", line, "application/x-ndjson"
        )
    assert response.status_code == 202
    assert ImportJob.objects.get().redact_pii
    assert "ann@example.org" not in Item.objects.get(external_id="J-1").prompt


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "golden.csv: this is a PNG image"),
        (b"item_id,prompt\nT-1,hello\n", "golden.csv:1:"),
        ("item_id,prompt,system_a,response_a,system_b,response_b\n\xff".encode("latin-1"),
         "golden.csv:2: not UTF-8"),
    ],
)  # fmt: skip
def test_a_broken_pairs_file_is_a_400_naming_file_and_line_and_nothing_is_stored(
    lead_api, django_capture_on_commit_callbacks, body, expected
):
    response = import_pairs(lead_api, django_capture_on_commit_callbacks, body=body)
    assert response.status_code == 400
    assert any(d.startswith(expected) for d in response.json()["details"]), response.json()
    assert not ImportJob.objects.exists()
    assert not Dataset.objects.exists()


def test_row_errors_past_the_first_rows_show_on_the_job_as_on_the_command_line(
    lead_api, django_capture_on_commit_callbacks
):
    rows = "".join(f"T-{i},Q{i},a,x,b,y\n" for i in range(10))
    body = "item_id,prompt,system_a,response_a,system_b,response_b\n" + rows + "T-99,,a,x,b,y\n"
    response = import_pairs(lead_api, django_capture_on_commit_callbacks, body=body)
    assert response.status_code == 202
    job = lead_api.get(response.json()["url"]).json()
    assert job["status"] == "failed"
    assert job["errors"][0].startswith("golden.csv:12: prompt:")
    assert not Item.objects.exists()


def test_a_body_over_the_upload_limit_is_a_413(lead_api, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    response = lead_api.post_file("/api/v1/datasets/d/imports", PAIRS_CSV)
    assert response.status_code == 413
    assert "upload limit of 100" in response.json()["error"]
    assert not ImportJob.objects.exists()


def test_a_body_of_another_media_type_is_a_415(lead_api):
    response = lead_api.post_file("/api/v1/datasets/d/imports", PAIRS_CSV, "application/pdf")
    assert response.status_code == 415
    assert "text/csv" in response.json()["error"]


def test_create_campaign_answers_201_with_the_slug_and_is_audited(lead_api, lead, imported):
    body = {"name": "Next model", "dataset": "support-golden", "baseline": "acme-base",
            "candidate": "acme-next", "rubric": RUBRIC, "overlap": 2, "margin": 0.1,
            "seed": 3}  # fmt: skip
    response = lead_api.post_json("/api/v1/campaigns", body)
    assert response.status_code == 201
    slug = response.json()["slug"]
    assert response.json()["url"] == f"/api/v1/campaigns/{slug}"
    campaign = Campaign.objects.get(slug=slug)
    assert (campaign.overlap, campaign.margin, campaign.seed) == (2, 0.1, 3)
    assert campaign.rubric.name == "pipeline-rubric"
    assert AuditEvent.objects.filter(verb="campaign.created", actor=lead, campaign=campaign)
    detail = lead_api.get(f"/api/v1/campaigns/{slug}").json()
    assert detail["candidate"] == "acme-next"
    assert detail["progress"] == {"items": 3, "slots": 6, "open_slots": 6, "assigned": 0,
                                  "done": 0, "pending": 0, "skipped": 0, "percent": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"candidate": "acme-nope"}, "No system named 'acme-nope'"),
        ({"dataset": "nope"}, "No dataset named 'nope'"),
        ({"rubric": {"name": "bad", "criteria": [{"name": "x", "kind": "stars"}]}}, "rubric: "),
        ({"overlap": 0}, "overlap: Input should be greater than or equal to 1"),
        ({"baseline": "acme-next"}, "must be different systems"),
    ],
)
def test_a_refused_campaign_is_a_400_naming_the_problem_and_saves_nothing(
    lead_api, imported, change, expected
):
    rubrics_before = Rubric.objects.count()
    body = {"name": "Next", "dataset": "support-golden", "baseline": "acme-base",
            "candidate": "acme-next", "rubric": RUBRIC} | change  # fmt: skip
    response = lead_api.post_json("/api/v1/campaigns", body)
    assert response.status_code == 400
    answer = response.json()
    assert any(expected in text for text in [answer["error"], *answer["details"]]), answer
    assert not Campaign.objects.exists()
    assert Rubric.objects.count() == rubrics_before


def test_assign_judge_report_decide_and_export(
    lead_api, api_as, analyst, lead, campaign_slug, django_capture_on_commit_callbacks
):
    group = Group.objects.get_or_create(name="reviewer")[0]
    for email in ("r1@example.org", "r2@example.org"):
        make_user(email).groups.add(group)
    base = f"/api/v1/campaigns/{campaign_slug}"
    response = lead_api.post_json(
        f"{base}/assignments", {"reviewers": ["R1@example.org", "r2@example.org"]}
    )
    assert response.status_code == 201, response.content
    assert response.json() | {"batches": []} == {
        "batches": [], "items": 3, "assignments": 3, "refilled": 0, "left_open": 0
    }  # fmt: skip
    assert AuditEvent.objects.filter(verb="batches.created", actor=lead).exists()
    labels = ("item_id,reviewer,preference\nT-1,r1@example.org,candidate\n"
              "T-2,r2@example.org,acme-next\nT-3,r1@example.org,tie\n")  # fmt: skip
    response = lead_api.post_file(f"{base}/judgments", labels)
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 3
    assert AuditEvent.objects.filter(verb="judgments.imported", actor=lead).exists()

    analyst_api = api_as(analyst)
    assert analyst_api.get(f"{base}/report").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        queued = analyst_api.post_json(f"{base}/report")
    assert queued.status_code == 202
    report = analyst_api.get(f"{base}/report")
    assert report.status_code == 200
    stored = Report.objects.get(status="done")
    assert report.json() == stored.result
    assert report.json()["preference"]["counts"]["candidate"] == 2

    decision = analyst_api.get(f"{base}/decision").json()
    assert set(decision) == {"verdict", "probability", "threshold", "reasons", "report_at"}
    assert decision["verdict"] in ("migrate", "do_not_migrate", "need_more_labels")

    export = analyst_api.get(f"{base}/judgments.csv")
    assert export.status_code == 200
    assert export.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 3
    # An analyst reads reviewers' pseudonyms, as on the export page; the lead reads emails.
    assert not any("@" in row["reviewer"] for row in rows)
    assert ExportLog.objects.filter(user=analyst, kind="csv").exists()
    lead_rows = b"".join(lead_api.get(f"{base}/judgments.csv").streaming_content).decode()
    assert "r1@example.org" in lead_rows


def test_a_broken_judgments_file_is_a_400_with_file_line_messages_and_saves_nothing(
    lead_api, campaign_slug
):
    labels = "item_id,reviewer,preference\nT-1,r1@example.org,candidate\nT-9,r1@example.org,meh\n"
    response = lead_api.post_file(
        f"/api/v1/campaigns/{campaign_slug}/judgments?filename=labels.csv", labels
    )
    assert response.status_code == 400
    details = response.json()["details"]
    assert details
    assert all(d.startswith("labels.csv:3:") for d in details), details
    assert not Judgment.objects.exists()


@pytest.mark.parametrize("name", ["bad%00name.csv", "..%2F..%2Fetc%2Fpasswd", "%2F"])
def test_a_hostile_file_name_is_made_safe_not_a_500(lead_api, campaign_slug, name):
    labels = "item_id,reviewer,preference\nT-9,r1@example.org,meh\n"
    response = lead_api.post_file(
        f"/api/v1/campaigns/{campaign_slug}/judgments?filename={name}", labels
    )
    assert response.status_code == 400
    detail = response.json()["details"][0]
    assert "/" not in detail.split(":")[0]
    assert "\x00" not in detail


def test_assigning_to_an_unknown_email_is_a_400_naming_it(lead_api, campaign_slug, reviewer):
    response = lead_api.post_json(
        f"/api/v1/campaigns/{campaign_slug}/assignments",
        {"reviewers": [reviewer.email, "ghost@example.org"]},
    )
    assert response.status_code == 400
    assert "ghost@example.org" in response.json()["error"]
    assert not Assignment.objects.exists()


def test_decision_reads_the_reworked_report_shape(api_as, analyst, campaign_slug):
    campaign = Campaign.objects.get(slug=campaign_slug)
    store_report(campaign, {
        "verdict": "migrate", "threshold": 0.95, "basis": "human", "probability": 0.981,
        "criteria": {"correctness": {"p_non_inferior": 0.97, "verdict": "pass"}},
        "preference": {"p_non_inferior": 0.981, "verdict": "pass"}, "more_labels_needed": None,
    })  # fmt: skip
    decision = api_as(analyst).get(f"/api/v1/campaigns/{campaign_slug}/decision").json()
    assert (decision["verdict"], decision["probability"], decision["threshold"]) == (
        "migrate", 0.981, 0.95
    )  # fmt: skip
    assert any("preference" in r and "0.981" in r for r in decision["reasons"])
    assert any("correctness" in r for r in decision["reasons"])


def test_decision_reads_an_older_report_without_a_verdict_as_need_more_labels(
    api_as, analyst, campaign_slug
):
    campaign = Campaign.objects.get(slug=campaign_slug)
    store_report(campaign, {"verdict": None, "threshold": 0.95, "more_labels_needed": None})
    decision = api_as(analyst).get(f"/api/v1/campaigns/{campaign_slug}/decision").json()
    assert decision["verdict"] == "need_more_labels"
    assert decision["reasons"][0] == "The report holds no migration decision."


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post_file", "/api/v1/datasets/x/imports"),
        ("get", "/api/v1/imports/1"),
        ("post_json", "/api/v1/campaigns"),
        ("get", "/api/v1/campaigns/{slug}"),
        ("post_json", "/api/v1/campaigns/{slug}/assignments"),
        ("post_file", "/api/v1/campaigns/{slug}/judgments"),
        ("get", "/api/v1/campaigns/{slug}/report"),
        ("post_json", "/api/v1/campaigns/{slug}/report"),
        ("get", "/api/v1/campaigns/{slug}/decision"),
        ("get", "/api/v1/campaigns/{slug}/judgments.csv"),
    ],
)
def test_a_reviewer_token_reaches_nothing_and_is_told_its_role(
    api_as, reviewer, campaign_slug, method, path
):
    api = api_as(reviewer)
    args = (path.format(slug=campaign_slug),)
    response = (
        getattr(api, method)(*args, PAIRS_CSV)
        if method == "post_file"
        else getattr(api, method)(*args)
    )
    assert response.status_code == 403
    assert "the token's account has reviewer" in response.json()["error"]
    assert not Judgment.objects.exists()
    assert ExportLog.objects.count() == 0


def test_an_unknown_campaign_is_a_404_in_json(lead_api, imported):
    response = lead_api.get("/api/v1/campaigns/nope/decision")
    assert response.status_code == 404
    assert response.json() == {"error": "No campaign with the slug 'nope'.", "details": []}


def test_a_json_body_over_the_request_limit_is_a_413(lead_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = lead_api.post_json("/api/v1/campaigns", {"name": "x" * 2000})
    assert response.status_code == 413
    assert set(response.json()) == {"error", "details"}


def test_reads_take_a_bounded_number_of_queries(
    api_as, lead, analyst, imported, campaign_slug, django_assert_max_num_queries
):
    campaign = Campaign.objects.get(slug=campaign_slug)
    for _ in range(3):
        store_report(campaign, {"verdict": "migrate", "threshold": 0.95, "probability": 0.99})
    lead_api, analyst_api = api_as(lead), api_as(analyst)
    # Token, user with roles, last-used stamp (at most once a minute), then the endpoint's own.
    with django_assert_max_num_queries(5):
        assert analyst_api.get(f"/api/v1/campaigns/{campaign_slug}/decision").status_code == 200
    with django_assert_max_num_queries(5):
        assert analyst_api.get(f"/api/v1/campaigns/{campaign_slug}/report").status_code == 200
    with django_assert_max_num_queries(4):
        assert lead_api.get(imported["url"]).status_code == 200
    with django_assert_max_num_queries(10):
        assert lead_api.get(f"/api/v1/campaigns/{campaign_slug}").status_code == 200
