"""Leads read reviewers' flags and skip reasons per campaign."""

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from reviews.exports import writing
from reviews.grading.services import flag_assignment
from reviews.models import Assignment, AuditEvent, ExportLog
from tests.conftest import make_user
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def raised(reviewer):
    campaign = CampaignFactory()
    others = [make_user(f"r{n}@example.org", "reviewer") for n in range(6)]
    rows = []
    for n, who in enumerate([reviewer, *others] * 4):
        a = AssignmentFactory(
            campaign_item=CampaignItemFactory(campaign=campaign), reviewer=who, position=n
        )
        rows.append(a)
    for a in rows[:10]:
        Assignment.objects.filter(pk=a.pk).update(
            flagged=True, flag_note=f"Response cut off in ticket {a.item.external_id}"
        )
    for a in rows[10:22]:
        Assignment.objects.filter(pk=a.pk).update(
            status="skipped", skip_reason="pii", completed_at=timezone.now()
        )
    return campaign, rows


def test_lead_sees_every_flag_note_and_skip_reason(
    client_for, lead, raised, django_assert_max_num_queries
):
    campaign, rows = raised
    client = client_for(lead)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("reviews:campaign-flags", args=[campaign.slug]))
    text = " ".join(strip_tags(response.text).split())
    for a in rows[:10]:
        assert f"Response cut off in ticket {a.item.external_id}" in text
    assert text.count("It contains personal data") == 12
    assert "rita.reviewer@example.org" in text
    assert "1–22 of 22" in text


def test_filter_by_kind_and_htmx_fragment(client_for, lead, raised):
    campaign, _ = raised
    url = reverse("reviews:campaign-flags", args=[campaign.slug])
    response = client_for(lead).get(url, {"kind": "skips"}, HTTP_HX_REQUEST="true")
    assert "<html" not in response.text
    assert "cut off" not in response.text
    assert response.text.count("It contains personal data") == 12


def test_campaign_page_links_to_flags_and_report(client_for, lead, raised):
    campaign, _ = raised
    page = client_for(lead).get(reverse("reviews:campaign-detail", args=[campaign.slug])).text
    assert reverse("reviews:campaign-flags", args=[campaign.slug]) in page
    assert reverse("report:page", args=[campaign.slug]) in page
    assert "10 flags, 12 skips" in page


def test_empty_state(client_for, lead):
    campaign = CampaignFactory()
    page = client_for(lead).get(reverse("reviews:campaign-flags", args=[campaign.slug])).text
    assert "No reviewer has flagged or skipped an item yet" in page


# ---------------------------------------------------------------------------------------------
# The CSV download


def download_flags(client, campaign):
    response = client.get(reverse("exports:flags-csv", args=[campaign.slug]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="{campaign.slug}-flags.csv"'
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_flags_page_links_to_the_csv(client_for, lead, raised):
    campaign, _ = raised
    page = client_for(lead).get(reverse("reviews:campaign-flags", args=[campaign.slug])).text
    assert reverse("exports:flags-csv", args=[campaign.slug]) in page
    assert "Download (CSV)" in page


def test_csv_has_one_row_per_flag_and_skip_and_is_logged(
    client_for, lead, raised, django_assert_max_num_queries
):
    campaign, rows = raised
    both = rows[0]  # flagged, then skipped: two rows
    Assignment.objects.filter(pk=both.pk).update(
        status="skipped", skip_reason="broken", completed_at=timezone.now()
    )
    flagged = rows[1]
    flag_assignment(assignment=flagged, note='=HYPERLINK("http://evil.example")\nsecond line')
    client = client_for(lead)
    with django_assert_max_num_queries(12):
        got = download_flags(client, campaign)
    assert list(got[0]) == ["campaign", "item_id", "reviewer", "kind", "reason", "note", "at"]
    assert len(got) == 10 + 12 + 1
    assert {row["campaign"] for row in got} == {campaign.slug}
    kinds = [(row["item_id"], row["kind"]) for row in got]
    assert kinds.count((both.item.external_id, "flag")) == 1
    assert kinds.count((both.item.external_id, "skip")) == 1
    by_kind = {(row["item_id"], row["kind"]): row for row in got}
    skip = by_kind[(both.item.external_id, "skip")]
    assert (skip["reason"], skip["note"]) == ("broken", "")
    assert datetime.fromisoformat(skip["at"]).tzinfo is not None
    flag = by_kind[(flagged.item.external_id, "flag")]
    assert flag["note"] == '\'=HYPERLINK("http://evil.example")\nsecond line'  # defused
    assert flag["reviewer"] == flagged.reviewer.email  # leads see emails
    assert abs(datetime.fromisoformat(flag["at"]) - timezone.now()) < timedelta(minutes=1)
    assert by_kind[(rows[2].item.external_id, "flag")]["at"] == ""  # flagged before flagged_at
    log = ExportLog.objects.get(campaign=campaign)
    assert (log.kind, log.user, log.row_count) == ("flags", lead, 23)
    event = AuditEvent.objects.filter(verb="export").latest("pk")
    assert event.details["kind"] == "flags"
    assert event.details["pseudonymised"] is False


def test_analysts_get_the_exports_pseudonyms(client_for, analyst, raised, reviewer):
    campaign, _ = raised
    got = download_flags(client_for(analyst), campaign)
    names = {row["reviewer"] for row in got}
    assert writing.reviewer_pseudonym(reviewer.pk) in names
    assert not any("@" in name for name in names)
    assert AuditEvent.objects.filter(verb="export").latest("pk").details["pseudonymised"] is True


def test_csv_query_count_does_not_grow_with_rows(client_for, lead, raised):
    campaign, rows = raised
    client = client_for(lead)
    counts = []
    for extra in (0, 6):
        for a in rows[22 : 22 + extra]:
            Assignment.objects.filter(pk=a.pk).update(flagged=True, flag_note="more")
        with CaptureQueriesContext(connection) as queries:
            got = download_flags(client, campaign)
        assert len(got) == 22 + extra
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_empty_csv_has_the_header(client_for, lead):
    campaign = CampaignFactory()
    assert download_flags(client_for(lead), campaign) == []
