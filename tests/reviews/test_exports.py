import csv
import io
import json
from datetime import timedelta

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.exports import services as exports
from reviews.exports import sql as export_sql
from reviews.exports import writing
from reviews.models import AuditEvent, CampaignItem, ExportLog, Judgment
from tests import factories
from tests.reviews.exporting import judge, judge_all

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reviews.export_urls")]

COLUMNS = [
    "campaign",
    "item_id",
    "reviewer",
    "preference",
    "preferred_system",
    "left_system",
    "baseline",
    "candidate",
    "prompt",
    "baseline_response",
    "candidate_response",
    "score.correctness.baseline",
    "score.correctness.candidate",
    "score.refusal_ok.baseline",
    "score.refusal_ok.candidate",
    "score.overall",
    "rationale",
    "started_at",
    "submitted_at",
    "duration_seconds",
    "meta.category",
]


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text, newline="")))


def export_text(campaign, *, kind="csv", filters=None, pseudonymise=False):
    campaign = exports.campaign_for_export(campaign.slug)
    _, lines = exports.start_export(
        campaign=campaign, kind=kind, filters=filters or {}, pseudonymise=pseudonymise
    )
    return "".join(lines)


def download(client, campaign, **params):
    response = client.get(reverse("exports:download", args=[campaign.slug]), params)
    assert response.status_code == 200, response.content[:500]
    return response, b"".join(response.streaming_content).decode()


@pytest.fixture
def campaign(build_campaign):
    return build_campaign(n_items=4)


# ---------------------------------------------------------------------------------------------
# Rows and columns


def test_columns_and_deblinding(campaign, reviewer):
    first, second = CampaignItem.objects.filter(campaign=campaign).order_by("pk")[:2]
    judge(campaign, reviewer, first, candidate_left=True, preference="candidate")
    judge(
        campaign,
        reviewer,
        second,
        candidate_left=False,
        preference="baseline",
        scores={"correctness": {"baseline": 4, "candidate": 2}, "overall": {"pair": 3}},
    )
    text = export_text(campaign)
    assert text.splitlines()[0].split(",") == COLUMNS
    by_item = {row["item_id"]: row for row in rows_of(text)}
    flipped, plain = by_item[first.item.external_id], by_item[second.item.external_id]
    assert flipped["preferred_system"] == "acme-next"
    assert flipped["left_system"] == "acme-next"
    assert plain["preferred_system"] == "acme-base"
    assert plain["left_system"] == "acme-base"
    assert plain["baseline"] == "acme-base"
    assert plain["candidate"] == "acme-next"
    assert plain["baseline_response"] == second.baseline_response.text
    assert plain["candidate_response"] == second.candidate_response.text
    assert plain["prompt"] == second.item.prompt
    assert plain["score.correctness.baseline"] == "4"
    assert plain["score.correctness.candidate"] == "2"
    assert plain["score.overall"] == "3"
    assert plain["score.refusal_ok.baseline"] == ""
    assert plain["meta.category"] == second.item.metadata["category"]
    assert plain["reviewer"] == reviewer.email
    assert plain["campaign"] == campaign.slug


def test_response_metadata_follows_the_item_metadata(campaign, reviewer):
    first, second = CampaignItem.objects.filter(campaign=campaign).order_by("pk")[:2]
    first.baseline_response.metadata = {"latency_ms": 812, "auto_preference": "=candidate"}
    first.baseline_response.save(update_fields=["metadata"])
    first.candidate_response.metadata = {"latency_ms": 1500.5, "tokens": 98}
    first.candidate_response.save(update_fields=["metadata"])
    judge(campaign, reviewer, first, candidate_left=True)
    judge(campaign, reviewer, second)
    text = export_text(campaign)
    keys = ["auto_preference", "latency_ms", "tokens"]
    assert text.splitlines()[0].split(",") == [
        *COLUMNS,
        *(f"baseline_meta.{key}" for key in keys),
        *(f"candidate_meta.{key}" for key in keys),
    ]
    by_item = {row["item_id"]: row for row in rows_of(text)}
    row = by_item[first.item.external_id]
    assert row["baseline_meta.auto_preference"] == "'=candidate"  # defused
    assert row["baseline_meta.latency_ms"] == "812"
    assert row["baseline_meta.tokens"] == ""
    assert row["candidate_meta.latency_ms"] == "1500.5"
    assert row["candidate_meta.tokens"] == "98"
    assert row["candidate_meta.auto_preference"] == ""
    assert all(value == "" for key, value in by_item[second.item.external_id].items()
               if "_meta." in key)  # fmt: skip
    objects = [json.loads(line) for line in export_text(campaign, kind="jsonl").splitlines()]
    flipped = next(o for o in objects if o["item_id"] == first.item.external_id)
    assert flipped["candidate_meta.latency_ms"] == 1500.5
    assert flipped["baseline_meta.tokens"] is None


def test_only_current_judgments_of_the_campaign(campaign, build_campaign, reviewer):
    ci = CampaignItem.objects.filter(campaign=campaign).first()
    old = judge(campaign, reviewer, ci, preference="baseline")
    Judgment.objects.filter(pk=old.pk).update(is_current=False)
    judge(campaign, factories.UserFactory(), ci, preference="tie")
    other = build_campaign(n_items=1)
    judge(other, reviewer, CampaignItem.objects.get(campaign=other))
    assert [row["preference"] for row in rows_of(export_text(campaign))] == ["tie"]


def test_pseudonyms_are_stable_and_hide_the_email(campaign, reviewer):
    judge_all(campaign, [reviewer])
    rows = rows_of(export_text(campaign, pseudonymise=True))
    assert {row["reviewer"] for row in rows} == {writing.reviewer_pseudonym(reviewer.pk)}
    assert writing.reviewer_pseudonym(reviewer.pk).startswith("R-")
    assert writing.reviewer_pseudonym(reviewer.pk) != writing.reviewer_pseudonym(reviewer.pk + 1)
    assert reviewer.email not in export_text(campaign, pseudonymise=True)


def test_analysts_get_pseudonyms_and_leads_get_emails(campaign, reviewer, analyst, lead, client):
    judge_all(campaign, [reviewer])
    client.force_login(analyst)
    _, text = download(client, campaign)
    assert reviewer.email not in text
    assert {r["reviewer"] for r in rows_of(text)} == {writing.reviewer_pseudonym(reviewer.pk)}
    client.force_login(lead)
    _, text = download(client, campaign)
    assert {r["reviewer"] for r in rows_of(text)} == {reviewer.email}


# ---------------------------------------------------------------------------------------------
# Formula defusing


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("\tpadded", "'\tpadded"),
        ("\rreturn", "'\rreturn"),
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("", ""),
        (-1, -1),
        (-2.5, -2.5),
        (None, None),
    ],
)
def test_defuse(cell, expected):
    assert writing.defuse(cell) == expected
    if isinstance(cell, str):
        assert writing.undefuse(writing.defuse(cell)) == cell


def test_hostile_cells_are_defused_in_the_csv(build_campaign, reviewer):
    campaign = build_campaign(n_items=1)
    ci = CampaignItem.objects.select_related("item").get(campaign=campaign)
    ci.item.prompt = '=HYPERLINK("http://evil.example","click")'
    ci.item.metadata = {"category": "@SUM(A1)", "rank": -1}
    ci.item.save(update_fields=["prompt", "metadata"])
    ci.baseline_response.text = "+1"
    ci.baseline_response.save(update_fields=["text"])
    ci.candidate_response.text = "\tcmd|' /C calc'!A0"
    ci.candidate_response.save(update_fields=["text"])
    judge(campaign, reviewer, ci, rationale="-1 point for tone")
    [row] = rows_of(export_text(campaign))
    assert row["prompt"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["baseline_response"] == "'+1"
    assert row["candidate_response"] == "'\tcmd|' /C calc'!A0"
    assert row["rationale"] == "'-1 point for tone"
    assert row["meta.category"] == "'@SUM(A1)"
    assert row["meta.rank"] == "-1"  # a number stays a number


# ---------------------------------------------------------------------------------------------
# pandas


def test_pandas_reads_the_csv_with_the_right_types(campaign, reviewer, other_reviewer):
    judge_all(campaign, [reviewer, other_reviewer])
    frame = pd.read_csv(io.StringIO(export_text(campaign)))
    assert list(frame.columns) == COLUMNS
    assert len(frame) == Judgment.objects.filter(campaign=campaign).count()
    for column in COLUMNS[11:16]:
        assert frame[column].dtype == "int64", column
    assert frame["duration_seconds"].dtype == "float64"
    for column in ("item_id", "reviewer", "preference", "prompt", "rationale", "meta.category"):
        assert pd.api.types.is_string_dtype(frame[column]), column
    assert pd.to_datetime(frame["submitted_at"]).dt.tz is not None

    db = {
        (j.item.external_id, j.reviewer.email): j
        for j in Judgment.objects.filter(campaign=campaign).select_related("item", "reviewer")
    }
    for row in frame.to_dict("records"):
        judgment = db[(row["item_id"], row["reviewer"])]
        assert row["preference"] == judgment.preference
        assert row["score.correctness.baseline"] == judgment.scores["correctness"]["baseline"]
        assert row["score.refusal_ok.baseline"] == judgment.scores["refusal_ok"]["baseline"]
        assert row["score.overall"] == judgment.scores["overall"]["pair"]
        assert row["duration_seconds"] == judgment.duration_seconds
        assert row["rationale"] == judgment.rationale
        assert pd.Timestamp(row["submitted_at"]) == pd.Timestamp(judgment.submitted_at)
        assert row["meta.category"] == judgment.item.metadata["category"]


def test_missing_scores_read_as_nan(campaign, reviewer):
    first, second = CampaignItem.objects.filter(campaign=campaign)[:2]
    judge(campaign, reviewer, first, scores={"overall": {"pair": 5}})
    judge(campaign, reviewer, second, scores={})
    frame = pd.read_csv(io.StringIO(export_text(campaign)))
    assert frame["score.overall"].isna().sum() == 1
    assert frame["score.overall"].dtype == "float64"


# ---------------------------------------------------------------------------------------------
# JSONL, tidy and filters


def test_jsonl_keeps_types(campaign, reviewer):
    judgments = judge_all(campaign, [reviewer])
    objects = [json.loads(line) for line in export_text(campaign, kind="jsonl").splitlines()]
    assert len(objects) == len(judgments)
    assert list(objects[0]) == COLUMNS
    assert isinstance(objects[0]["score.overall"], int)
    assert isinstance(objects[0]["duration_seconds"], float)


def test_tidy_has_one_row_per_judgment_criterion_and_target(campaign, reviewer):
    judgments = judge_all(campaign, [reviewer])
    frame = pd.read_csv(io.StringIO(export_text(campaign, kind="tidy")))
    assert list(frame.columns) == [
        "campaign",
        "item_id",
        "reviewer",
        "criterion",
        "target",
        "value",
    ]
    assert len(frame) == 5 * len(judgments)  # 2 per-response criteria × 2 + 1 per-pair
    assert frame["value"].dtype == "int64"
    overall = frame[frame["criterion"] == "overall"]
    assert set(overall["target"]) == {"pair"}
    correctness = frame[frame["criterion"] == "correctness"]
    assert set(correctness["target"]) == {"baseline", "candidate"}


def test_filters(campaign, reviewer, other_reviewer):
    batch = factories.BatchFactory(campaign=campaign, number=1)
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("item"))
    for ci, category in zip(items, ["billing", "shipping", "billing", "account"], strict=True):
        ci.item.metadata = {"category": category, "tier": 2 if category == "billing" else 1}
        ci.item.save(update_fields=["metadata"])
    long_ago = timezone.now() - timedelta(days=30)
    judge(campaign, reviewer, items[0], batch=batch)
    judge(campaign, reviewer, items[1], submitted_at=long_ago)
    judge(campaign, other_reviewer, items[2])
    judge(campaign, other_reviewer, items[3], batch=batch)

    def ids(**filters):
        return sorted(row["item_id"] for row in rows_of(export_text(campaign, filters=filters)))

    ext = [ci.item.external_id for ci in items]
    assert ids(batch=1) == sorted([ext[0], ext[3]])
    assert ids(reviewer=other_reviewer.email) == sorted([ext[2], ext[3]])
    assert ids(reviewer=writing.reviewer_pseudonym(reviewer.pk)) == sorted(ext[:2])
    today = timezone.localdate().isoformat()
    assert ids(submitted_from=today) == sorted([ext[0], ext[2], ext[3]])
    assert ids(submitted_to=(long_ago + timedelta(days=1)).date().isoformat()) == [ext[1]]
    assert ids(metadata={"category": "billing"}) == sorted([ext[0], ext[2]])
    assert ids(metadata={"tier": "2", "category": "billing"}) == sorted([ext[0], ext[2]])
    assert ids(metadata={"category": "billing"}, batch=1) == [ext[0]]


def test_download_applies_the_form_filters(campaign, reviewer, lead, client):
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("item"))
    items[0].item.metadata = {"category": "billing"}
    items[0].item.save(update_fields=["metadata"])
    items[1].item.metadata = {"category": "shipping"}
    items[1].item.save(update_fields=["metadata"])
    judge(campaign, reviewer, items[0])
    judge(campaign, reviewer, items[1])
    client.force_login(lead)
    _, text = download(client, campaign, metadata="category = billing", kind="csv")
    assert [row["item_id"] for row in rows_of(text)] == [items[0].item.external_id]
    log = ExportLog.objects.get()
    assert log.filters == {"metadata": {"category": "billing"}}
    assert log.row_count == 1


def test_invalid_filters_rerender_the_form(campaign, analyst, client):
    client.force_login(analyst)
    url = reverse("exports:download", args=[campaign.slug])
    response = client.get(url, {"kind": "xlsx", "metadata": "no equals sign"})
    assert response.status_code == 200
    assert not response.streaming
    assert b"not key=value" in response.content
    assert not ExportLog.objects.exists()


# ---------------------------------------------------------------------------------------------
# The download


def test_download_streams_and_logs(campaign, reviewer, analyst, client):
    judgments = judge_all(campaign, [reviewer])
    client.force_login(analyst)
    response = client.get(reverse("exports:download", args=[campaign.slug]), {"kind": "csv"})
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"] == f'attachment; filename="{campaign.slug}-judgments.csv"'
    )
    log = ExportLog.objects.get()
    assert (log.user, log.campaign, log.kind, log.row_count) == (analyst, campaign, "csv", 0)
    body = b"".join(response.streaming_content).decode()
    assert len(rows_of(body)) == len(judgments)
    log.refresh_from_db()
    assert log.row_count == len(judgments)
    event = AuditEvent.objects.get(verb="export")
    assert (event.actor, event.campaign) == (analyst, campaign)
    assert event.details["pseudonymised"] is True


@pytest.mark.parametrize("kind", ["csv", "jsonl", "tidy"])
def test_download_query_count_does_not_grow_with_rows(
    build_campaign, make_reviewers, analyst, client, kind
):
    client.force_login(analyst)
    counts = []
    for n_items, n_reviewers in ((2, 1), (12, 4)):
        campaign = build_campaign(n_items=n_items)
        judge_all(campaign, make_reviewers(n_reviewers))
        with CaptureQueriesContext(connection) as queries:
            _, text = download(client, campaign, kind=kind)
        assert text
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[1] <= 12


@pytest.mark.parametrize(
    ("persona", "form", "log", "upload"),
    [
        ("reviewer", 403, 403, 403),
        ("outsider", 403, 403, 403),
        ("analyst", 200, 403, 403),
        ("lead", 200, 200, 200),
    ],
)
def test_url_permission_matrix(request, campaign, client, persona, form, log, upload):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("exports:form", args=[campaign.slug])).status_code == form
    assert client.get(reverse("exports:download", args=[campaign.slug])).status_code == form
    assert client.get(reverse("exports:log")).status_code == log
    assert client.get(reverse("exports:import", args=[campaign.slug])).status_code == upload


def test_anonymous_is_sent_to_log_in(campaign, client):
    response = client.get(reverse("exports:download", args=[campaign.slug]))
    assert response.status_code == 302
    assert not ExportLog.objects.exists()


def test_unknown_campaign_is_404(analyst, client):
    client.force_login(analyst)
    assert client.get(reverse("exports:download", args=["nope"])).status_code == 404


def test_export_form_offers_pseudonyms_to_analysts(campaign, reviewer, analyst, client):
    judge_all(campaign, [reviewer])
    client.force_login(analyst)
    response = client.get(reverse("exports:form", args=[campaign.slug]))
    assert writing.reviewer_pseudonym(reviewer.pk).encode() in response.content
    assert reviewer.email.encode() not in response.content


def test_export_log_page(campaign, reviewer, lead, analyst, client):
    judge_all(campaign, [reviewer])
    client.force_login(analyst)
    download(client, campaign)
    client.force_login(lead)
    response = client.get(reverse("exports:log"))
    assert analyst.email.encode() in response.content
    assert campaign.name.encode() in response.content


# ---------------------------------------------------------------------------------------------
# The command


def test_command_writes_stdout_and_files(campaign, reviewer, tmp_path):
    judgments = judge_all(campaign, [reviewer])
    out = io.StringIO()
    call_command("export_judgments", campaign.slug, stdout=out)
    assert len(rows_of(out.getvalue())) == len(judgments)
    path = tmp_path / "out.csv"
    call_command("export_judgments", campaign.slug, "-o", str(path), stderr=io.StringIO())
    assert path.read_bytes().decode() == out.getvalue()
    assert list(ExportLog.objects.values_list("row_count", "user")) == [(len(judgments), None)] * 2


def test_command_errors(tmp_path):
    with pytest.raises(CommandError, match="No campaign"):
        call_command("export_judgments", "missing")


def test_report_downloads_as_one_row_per_figure(client_for, analyst):
    import io

    import pandas as pd

    from reviews.reports import aggregation

    campaign = factories.CampaignFactory(slug="figures")
    item = factories.CampaignItemFactory(campaign=campaign)
    factories.JudgmentFactory(assignment__campaign_item=item, preference="candidate")
    aggregation.run_aggregation(campaign_id=campaign.pk)
    response = client_for(analyst).get(reverse("exports:report-csv", args=[campaign.slug]))
    assert response.status_code == 200
    frame = pd.read_csv(io.StringIO(b"".join(response.streaming_content).decode()))
    assert list(frame.columns) == ["campaign", "section", "figure", "value"]
    figures = dict(zip(frame["section"] + ":" + frame["figure"], frame["value"], strict=True))
    assert figures["preference:counts.candidate"] == "1"
    assert figures["summary:n_judgments"] == "1"
    assert "preference:win_rate_ci95.lo" in figures
    assert ExportLog.objects.get(kind="report").row_count == len(frame)
    assert AuditEvent.objects.filter(verb="export", details__kind="report").exists()


@pytest.mark.parametrize(
    "data",
    [b"plain\n", b"a\\\\b\n", b"a\\nb\\r\\tc\n", b"\\\\n\n", b"\\\\\\n\n", b"x\\b\\f\\v\n"],
)
def test_copy_text_rows_are_unescaped(data):
    expected = {
        b"plain\n": "plain\r\n",
        b"a\\\\b\n": "a\\b\r\n",
        b"a\\nb\\r\\tc\n": "a\nb\r\tc\r\n",
        b"\\\\n\n": "\\n\r\n",
        b"\\\\\\n\n": "\\\n\r\n",
        b"x\\b\\f\\v\n": "x\b\f\v\r\n",
    }[data]
    assert export_sql._unescape(data) == expected
