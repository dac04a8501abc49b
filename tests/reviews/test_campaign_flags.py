"""Leads read reviewers' flags and skip reasons per campaign."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from reviews.models import Assignment
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
