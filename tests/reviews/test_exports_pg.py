"""The PostgreSQL export path (reviews/exports/sql.py) writes byte for byte what the Python path
writes, for hostile text, every value type and every filter."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews.exports import services as exports
from reviews.exports import sql as export_sql
from reviews.exports import writing
from reviews.models import CampaignItem, ExportLog, Judgment
from tests import factories
from tests.reviews.exporting import judge

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.reviews.export_urls"),
    pytest.mark.usefixtures("postgres_only"),
]

HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "@SUM(A1:A9)",
    "+1",
    "-1",
    "\tpadded",
    "\rreturn",
    'He said "no", then left',
    "one, two",
    "line one\nline two\r\nline three",
    "naïve — 日本語 🎉",
    "C:\\new\\table\\\\x \\n \\\\",
    "",
    "'already quoted",
]
METADATA = [
    {"category": "=cmd|' /C calc'!A0", "tier": 2, "score": 1.5, "ok": True},
    {"category": "billing", "tier": -1, "score": 2.50, "ok": False, "note": None},
    {},
    {"category": "one, two", "tier": 10**20, "score": 1e-7, "tags": ["a", "b, c"]},
    {"category": "line\nbreak", "tier": 0, "score": 3.0, "nested": {"k": 'v\t"x"', "n": [1]}},
    {"category": "billing", "tier": "2", "score": 1e16},
]
# The responses' metadata (latency, tokens, a judge's verdicts), baseline and candidate per item.
RESPONSE_METADATA = [
    (
        {"latency_ms": 812, "tokens": 120, "auto_preference": "=candidate"},
        {"latency_ms": 1500.5, "tokens": 98, "auto_correctness": 4},
    ),
    ({"latency_ms": 0.1, "note": 'one, "two"'}, {}),
    ({}, {"auto_preference": "-tie", "cost_usd": 1e-7, "flags": ["a", "b, c"]}),
    ({"tokens": None, "auto_ok": True}, {"tokens": 10**20, "auto_ok": False}),
    ({"latency_ms": 1e16, "trace": {"id": 'x\t"y"', "n": [1]}}, {"latency_ms": "line\nbreak"}),
    ({"latency_ms": 3.0}, {"latency_ms": -0.0}),
]
SCORES = [
    {"correctness": {"baseline": 4, "candidate": 2}, "refusal_ok": {"baseline": 0, "candidate": 1},
     "overall": {"pair": 7}, "tone": {"baseline": True, "candidate": False}},
    {"correctness": {"baseline": 1}, "overall": {"pair": None}},
    {},
    {"correctness": {"baseline": 3.0, "candidate": 4.5}, "tone": {"baseline": "-1"}},
    {"correctness": {"baseline": -1, "candidate": 0.1}, "refusal_ok": {"baseline": 1}},
    {"overall": {"pair": "=2+3"}, "correctness": None},
]  # fmt: skip
DURATIONS = [42.5, 20.0, None, 0.30000000000000004, 1234567890123456.5, 1e15, 1e16, 1e-05,
             float("nan"), float("inf"), -0.0, 7.0]  # fmt: skip
TONE = {"name": "tone", "label": "Tone", "kind": "binary", "per": "response"}


@pytest.fixture
def hostile(build_campaign, make_reviewers):
    """A campaign whose every text is hostile; revisions, an imported judgment, two batches."""
    rubric = factories.RubricFactory()
    rubric.criteria = [*rubric.criteria, TONE]
    rubric.save(update_fields=["criteria"])
    campaign = build_campaign(
        n_items=len(METADATA),
        rubric=rubric,
        name="=Support, eval",
        baseline_name='=base,"1"',
        candidate_name="-next\nmodel",
    )
    items = list(CampaignItem.objects.filter(campaign=campaign).order_by("pk"))
    for n, (ci, metadata) in enumerate(zip(items, METADATA, strict=True)):
        ci.item.external_id = HOSTILE[n]
        ci.item.prompt = HOSTILE[(n + 1) % len(HOSTILE)] + " " + HOSTILE[-3]
        ci.item.metadata = metadata
        ci.item.save(update_fields=["external_id", "prompt", "metadata"])
        ci.baseline_response.text = HOSTILE[(n + 2) % len(HOSTILE)]
        ci.baseline_response.metadata = RESPONSE_METADATA[n][0]
        ci.baseline_response.save(update_fields=["text", "metadata"])
        ci.candidate_response.text = HOSTILE[(n + 3) % len(HOSTILE)] + HOSTILE[-3]
        ci.candidate_response.metadata = RESPONSE_METADATA[n][1]
        ci.candidate_response.save(update_fields=["text", "metadata"])
    reviewers = make_reviewers(3)
    odd = factories.UserFactory(username="-odd,one", email="")
    reviewers.append(odd)
    batches = [factories.BatchFactory(campaign=campaign, number=k) for k in (1, 2)]
    base = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    n = 0
    for ci in items:
        for reviewer in reviewers[: 2 + n % 3]:
            judgment = judge(
                campaign,
                reviewer,
                ci,
                candidate_left=n % 2 == 0,
                preference=["candidate", "baseline", "tie", "both_bad"][n % 4],
                scores=SCORES[n % len(SCORES)],
                rationale=HOSTILE[n % len(HOSTILE)],
                batch=batches[n % 3] if n % 3 < 2 else None,
                submitted_at=base + timedelta(days=n % 4, microseconds=(n % 2) * 123456),
                seconds=30.5 + n,
            )
            duration = DURATIONS[n % len(DURATIONS)]
            Judgment.objects.filter(pk=judgment.pk).update(duration_seconds=duration)
            n += 1
    # A revision: only the current judgment is exported.
    first = Judgment.objects.filter(campaign=campaign).order_by("pk").first()
    Judgment.objects.filter(pk=first.pk).update(is_current=False)
    Judgment.objects.create(
        assignment=first.assignment,
        campaign=campaign,
        item_id=first.item_id,
        reviewer=first.reviewer,
        candidate_left=first.candidate_left,
        preference="tie",
        scores={"overall": {"pair": 2}},
        rationale="revised, -2",
        submitted_at=base + timedelta(days=9),
        revision=2,
        submission_key="revision-2",
    )
    # An imported judgment: no start, no duration.
    importer = factories.UserFactory(username="imported@example.org")
    imported = judge(campaign, importer, items[-1], rationale="@imported")
    Judgment.objects.filter(pk=imported.pk).update(
        source="imported", started_at=None, duration_seconds=None
    )
    return campaign


def python_text(campaign, kind, filters, pseudonymise):
    pieces = writing.python_pieces(campaign, kind=kind, filters=filters, pseudonymise=pseudonymise)
    return "".join(text for text, _ in pieces)


def sql_text(campaign, kind, filters, pseudonymise, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the PostgreSQL path fell back to Python")

    with monkeypatch.context() as patch:
        patch.setattr(exports, "python_pieces", refuse)
        pieces = exports.export_pieces(
            campaign, kind=kind, filters=filters, pseudonymise=pseudonymise
        )
        return "".join(text for text, _ in pieces)


def filter_cases(campaign):
    reviewer = Judgment.objects.filter(campaign=campaign).order_by("pk").first().reviewer
    return [
        {},
        {"batch": 1},
        {"batch": 2},
        {"reviewer": reviewer.email},
        {"reviewer": "-odd,one"},
        {"reviewer": writing.reviewer_pseudonym(reviewer.pk)},
        {"submitted_from": "2025-03-05"},
        {"submitted_to": "2025-03-05"},
        {"submitted_from": "2025-03-05", "submitted_to": "2025-03-06"},
        {"metadata": {"category": "billing"}},
        {"metadata": {"tier": "2"}},
        {"metadata": {"category": "=cmd|' /C calc'!A0"}},
        {"metadata": {"category": "billing"}, "batch": 1},
        {"reviewer": "nobody"},
    ]


@pytest.mark.parametrize("kind", ["csv", "tidy", "jsonl"])
@pytest.mark.parametrize("pseudonymise", [False, True])
def test_sql_path_writes_the_python_bytes_for_every_filter(
    hostile, kind, pseudonymise, monkeypatch
):
    campaign = exports.campaign_for_export(hostile.slug)
    for filters in filter_cases(campaign):
        expected = python_text(campaign, kind, filters, pseudonymise)
        got = sql_text(campaign, kind, filters, pseudonymise, monkeypatch)
        assert got.encode() == expected.encode(), filters
    whole = python_text(campaign, kind, {}, pseudonymise)
    assert whole.count("\n") > 15  # the comparison was not between two empty files


def test_hostile_campaign_covers_the_awkward_values(hostile):
    text = python_text(exports.campaign_for_export(hostile.slug), "csv", {}, False)
    for fragment in ("1234567890123456.5", "1e+16", "1000000000000000.0", "1e-05", "nan",
                     "inf", "1e-07", "100000000000000000000", "True", "'=2+3",
                     "'-1", '"\'=base,""1"""', "'-odd,one", "\\\\x", "'=candidate",
                     "'-tie", "1500.5"):  # fmt: skip
        assert fragment in text, fragment
    header = text.splitlines()[0].split(",")
    keys = sorted({key for pair in RESPONSE_METADATA for side in pair for key in side})
    first = header.index("baseline_meta." + keys[0])
    assert header[first - 1].startswith("meta.")  # after the item metadata, nothing moved
    assert header[first:] == [f"{side}_meta.{key}" for side in ("baseline", "candidate")
                              for key in keys]  # fmt: skip


def test_no_metadata_and_no_criteria(build_campaign, reviewer, monkeypatch):
    campaign = build_campaign(n_items=2, categories=(), rubric=factories.RubricFactory(criteria=[]))
    for ci in CampaignItem.objects.filter(campaign=campaign):
        judge(campaign, reviewer, ci, rationale="-")
    campaign = exports.campaign_for_export(campaign.slug)
    for kind in ("csv", "tidy", "jsonl"):
        expected = python_text(campaign, kind, {}, True)
        assert sql_text(campaign, kind, {}, True, monkeypatch) == expected


def test_counts_rows_like_the_python_path(hostile):
    campaign = exports.campaign_for_export(hostile.slug)
    for kind in ("csv", "tidy", "jsonl"):
        fast = sum(rows for _, rows in exports.export_pieces(
            campaign, kind=kind, filters={}, pseudonymise=True))  # fmt: skip
        slow = sum(rows for _, rows in writing.python_pieces(
            campaign, kind=kind, filters={}, pseudonymise=True))  # fmt: skip
        assert fast == slow > 0


def test_decimals_nested_in_metadata_fall_back_to_python(hostile, monkeypatch):
    ci = CampaignItem.objects.filter(campaign=hostile).select_related("item").first()
    ci.item.metadata = {"limits": {"max": 2.50}}
    ci.item.save(update_fields=["metadata"])
    campaign = exports.campaign_for_export(hostile.slug)
    expected = python_text(campaign, "csv", {}, False)

    def refuse(*args, **kwargs):
        raise AssertionError("COPY used for metadata it cannot write exactly")

    monkeypatch.setattr(export_sql, "_copy_pieces", refuse)
    pieces = exports.export_pieces(campaign, kind="csv", filters={}, pseudonymise=False)
    assert "".join(text for text, _ in pieces) == expected
    assert '"{""max"": 2.5}"' in expected


def test_streamed_download_matches_and_logs(hostile, lead, client, monkeypatch):
    monkeypatch.setattr(export_sql, "PIECE_BYTES", 1)  # one row a piece: really streamed
    campaign = exports.campaign_for_export(hostile.slug)
    client.force_login(lead)
    for kind, params in (("csv", {}), ("tidy", {}), ("jsonl", {}), ("csv", {"batch": "1"})):
        response = client.get(
            reverse("exports:download", args=[campaign.slug]), {"kind": kind, **params}
        )
        assert response.streaming
        body = b"".join(response.streaming_content)
        filters = {"batch": 1} if params else {}
        assert body == python_text(campaign, kind, filters, False).encode()
        pieces = writing.python_pieces(campaign, kind=kind, filters=filters, pseudonymise=False)
        assert ExportLog.objects.latest("pk").row_count == sum(rows for _, rows in pieces)


def test_an_export_abandoned_mid_stream_frees_the_connection(hostile, monkeypatch):
    # A server closes the response's iterator when the client goes away (WSGI close()).
    monkeypatch.setattr(export_sql, "PIECE_BYTES", 1)
    campaign = exports.campaign_for_export(hostile.slug)
    log, lines = exports.start_export(campaign=campaign, kind="csv", filters={}, pseudonymise=True)
    next(lines)  # the header
    next(lines)  # one row: the COPY is now in progress
    lines.close()
    assert ExportLog.objects.get(pk=log.pk).row_count == 1
    assert connection.is_usable()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_command_output_is_the_python_output(hostile, tmp_path):
    path = tmp_path / "out.csv"
    call_command("export_judgments", hostile.slug, "-o", str(path), stderr=io.StringIO())
    campaign = exports.campaign_for_export(hostile.slug)
    assert path.read_bytes() == python_text(campaign, "csv", {}, False).encode()


def test_decimals_nested_in_response_metadata_fall_back_to_python(hostile, monkeypatch):
    ci = CampaignItem.objects.filter(campaign=hostile).select_related("candidate_response").first()
    ci.candidate_response.metadata = {"judge": {"confidence": 0.50}}
    ci.candidate_response.save(update_fields=["metadata"])
    campaign = exports.campaign_for_export(hostile.slug)
    expected = python_text(campaign, "jsonl", {}, False)

    def refuse(*args, **kwargs):
        raise AssertionError("COPY used for metadata it cannot write exactly")

    monkeypatch.setattr(export_sql, "_copy_pieces", refuse)
    pieces = exports.export_pieces(campaign, kind="jsonl", filters={}, pseudonymise=False)
    assert "".join(text for text, _ in pieces) == expected
    assert '"candidate_meta.judge": "{\\"confidence\\": 0.5}"' in expected


def test_a_cache_kept_before_response_keys_is_worked_out_again(hostile, monkeypatch):
    campaign = exports.campaign_for_export(hostile.slug)
    campaign.export_metadata = {"keys": writing.metadata_keys(campaign), "exact": True}
    campaign.save(update_fields=["export_metadata"])
    got = sql_text(campaign, "csv", {}, False, monkeypatch)
    assert got == python_text(campaign, "csv", {}, False)
    assert "candidate_meta.latency_ms" in got.splitlines()[0]
    kept = exports.campaign_for_export(hostile.slug).export_metadata
    assert kept["response_keys"] == writing.export_keys(campaign)[1]


def test_the_items_metadata_keys_are_read_once_and_kept(hostile, monkeypatch):
    campaign = exports.campaign_for_export(hostile.slug)
    assert campaign.export_metadata is None
    first = sql_text(campaign, "csv", {}, True, monkeypatch)
    kept = exports.campaign_for_export(hostile.slug)
    keys, response_keys = writing.export_keys(kept)
    assert response_keys
    assert kept.export_metadata == {"keys": keys, "response_keys": response_keys, "exact": True}
    with CaptureQueriesContext(connection) as queries:
        again = sql_text(kept, "csv", {}, True, monkeypatch)
    assert again == first == python_text(kept, "csv", {}, True)
    assert not any("jsonb_each" in query["sql"] for query in queries.captured_queries)
