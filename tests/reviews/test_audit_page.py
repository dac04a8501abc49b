"""The leads' audit page: who did what to which object and when, filterable and paginated."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.campaigns import services
from reviews.models import AuditEvent
from tests import factories
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

URL = reverse("reviews:audit")


def rows_of(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def make_events(n: int, *, campaigns, actors) -> None:
    """n events, one second apart (the last one newest), spread over campaigns and actors."""
    start = timezone.now() - timedelta(hours=1)
    events = AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=actors[i % len(actors)],
            verb="campaign.changed",
            campaign=campaigns[i % len(campaigns)],
            target=f"campaign:{campaigns[i % len(campaigns)].slug}",
            details={"n": i},
        )
        for i in range(n)
    )
    for i, event in enumerate(events):  # auto_now_add: set the times afterwards
        AuditEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(seconds=i))


def test_a_lead_sees_who_did_what_to_which_campaign_newest_first(client_for, lead):
    campaign = factories.CampaignFactory(name="Support eval")
    services.update_campaign(campaign=campaign, actor=lead, instructions="Read twice.")
    services.set_status(campaign=campaign, status="paused", actor=lead)

    response = client_for(lead).get(URL)

    assert response.status_code == 200
    first, second = rows_of(response.text)
    assert "Campaign paused" in first
    assert "Campaign changed" in second
    for row in (first, second):
        assert "lena.lead@example.org" in row
        assert "campaign:" + campaign.slug in row
        assert reverse("reviews:campaign-detail", args=[campaign.slug]) in row
    assert "previous=active" in first  # the details say from which status


def test_filters_by_campaign_and_by_action(client_for, lead):
    ours, other = factories.CampaignFactory(name="Ours"), factories.CampaignFactory(name="Other")
    services.set_status(campaign=ours, status="paused", actor=lead)
    services.set_status(campaign=other, status="paused", actor=lead)
    services.set_status(campaign=ours, status="active", actor=lead)
    client = client_for(lead)

    by_campaign = rows_of(client.get(URL, {"campaign": ours.slug}).text)
    assert len(by_campaign) == 2
    assert all("Ours" in row and "Other" not in row for row in by_campaign)

    both = rows_of(client.get(URL, {"campaign": ours.slug, "action": "campaign.resumed"}).text)
    assert len(both) == 1
    assert "Campaign resumed" in both[0]

    nothing = client.get(URL, {"campaign": other.slug, "action": "campaign.resumed"}).text
    assert rows_of(nothing) == []
    assert "No events match these filters" in nothing


def test_pages_hold_fifty_events_and_keep_the_filters(client_for, lead):
    campaign, other = factories.CampaignFactory(), factories.CampaignFactory()
    make_events(120, campaigns=[campaign, other], actors=[lead])
    client = client_for(lead)

    first = client.get(URL, {"campaign": campaign.slug}).text
    assert len(rows_of(first)) == audit.PAGE_SIZE
    assert "Events 1–50 of 60" in first
    assert "n=118" in rows_of(first)[0]  # the newest of this campaign's events
    older = re.search(r'href="(\?[^"]*page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    assert f"campaign={campaign.slug}" in older

    second = client.get(URL + older).text
    assert len(rows_of(second)) == 10
    assert "n=0" in rows_of(second)[-1]


def test_the_page_costs_a_fixed_number_of_queries(client_for, lead, django_assert_max_num_queries):
    campaigns = [factories.CampaignFactory() for _ in range(5)]
    actors = [lead, *(make_user(f"lead{i}@example.org", "lead") for i in range(4)), None]
    make_events(200, campaigns=campaigns, actors=actors)
    client = client_for(lead)
    client.get(URL)  # warm the session and content types

    # Session, user, roles, the two filter choices, count, one page of events with actors
    # and campaigns: one query per row would be 50 more.
    with django_assert_max_num_queries(6):
        response = client.get(URL, {"page": 2})
    assert len(rows_of(response.text)) == audit.PAGE_SIZE
    assert "command line" in response.text  # events with no actor (the CLI) say so


def test_an_htmx_request_gets_the_table_alone(client_for, lead, htmx_headers):
    services.set_status(campaign=factories.CampaignFactory(), status="paused", actor=lead)

    response = client_for(lead).get(URL, {"action": "campaign.paused"}, headers=htmx_headers)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="audit-table"')
    assert len(rows_of(response.text)) == 1


@pytest.mark.parametrize("persona", ["reviewer", "analyst", "outsider"])
def test_only_leads_may_read_it(request, client_for, persona):
    response = client_for(request.getfixturevalue(persona)).get(URL)
    assert response.status_code == 403


def test_the_lead_navigation_links_to_it_and_nobody_elses_does(client_for, lead, analyst):
    link = f'href="{URL}"'
    assert link in client_for(lead).get(reverse("reviews:campaigns")).text
    assert link not in client_for(analyst).get(reverse("reviews:reports")).text


def test_a_de_blinded_export_shows_who_took_which_campaign_with_system_names(
    client_for, lead, analyst
):
    campaign = factories.CampaignFactory()
    client_for(analyst).get(reverse("exports:download", args=[campaign.slug]), {"kind": "csv"})

    row = rows_of(client_for(lead).get(URL, {"action": "export"}).text)
    assert len(row) == 1
    assert "ana.analyst@example.org" in row[0]
    assert "Data exported (de-blinded)" in row[0]
    assert "kind=csv" in row[0]
    assert "pseudonymised=yes" in row[0]


def test_staff_opening_the_placements_in_the_admin_is_recorded(client_for, lead):
    staff = make_user("sam.staff@example.org", is_staff=True, is_superuser=True)
    assignment = factories.AssignmentFactory()
    judgment = factories.JudgmentFactory(assignment__campaign_item__campaign=assignment.campaign)
    client = client_for(staff)
    assert client.get(reverse("admin:reviews_assignment_changelist")).status_code == 200
    change = reverse("admin:reviews_judgment_change", args=[judgment.pk])
    assert client.get(change).status_code == 200
    assert client.get(reverse("admin:reviews_rubric_changelist")).status_code == 200  # blind

    rows = rows_of(client_for(lead).get(URL, {"action": audit.UNBLINDED}).text)
    assert len(rows) == 2
    assert f"admin:judgment:{judgment.pk}" in rows[0]
    assert judgment.campaign.name in rows[0]
    assert "admin:assignment list" in rows[1]
    assert all("sam.staff@example.org" in row for row in rows)
