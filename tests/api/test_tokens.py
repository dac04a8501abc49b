"""Personal API tokens: shown once, stored hashed, named, last-used time, revocable; 401s."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from evalsite.models import ApiToken
from reviews.models import AuditEvent
from tests.api.conftest import Api
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

DECISION = "/api/v1/campaigns/{}/decision"


def test_the_tokens_page_shows_a_new_token_once_and_stores_only_its_hash(client_for, analyst):
    client = client_for(analyst)
    response = client.post(reverse("tokens:list"), {"name": "deploy pipeline"})
    assert response.status_code == 200
    raw = response.context["created"]
    assert raw.startswith("evs_")
    assert raw in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    assert (token.name, token.user) == ("deploy pipeline", analyst)
    assert raw not in {token.key_hash, token.prefix, token.name}
    assert raw.startswith(token.prefix)
    # Shown once: the page lists it afterwards by name and prefix only.
    again = client.get(reverse("tokens:list")).content.decode()
    assert "deploy pipeline" in again
    assert token.prefix in again
    assert raw not in again
    assert AuditEvent.objects.filter(verb="api_token.created", actor=analyst).exists()


def test_the_user_menu_links_to_the_tokens_page(client_for, reviewer):
    page = client_for(reviewer).get(reverse("reviews:queue")).content.decode()
    assert reverse("tokens:list") in page


def test_a_token_records_when_it_was_last_used(token_for, analyst):
    campaign = CampaignFactory()
    raw = token_for(analyst)
    assert ApiToken.objects.get().last_used_at is None
    assert Api(raw).get(DECISION.format(campaign.slug)).status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


def test_a_revoked_token_gets_a_401_in_json(client_for, token_for, analyst):
    campaign = CampaignFactory()
    raw = token_for(analyst)
    token = ApiToken.objects.get()
    response = client_for(analyst).post(reverse("tokens:revoke", args=[token.pk]))
    assert response.status_code == 302
    answer = Api(raw).get(DECISION.format(campaign.slug))
    assert answer.status_code == 401
    assert answer["Content-Type"] == "application/json; charset=utf-8"
    assert answer.json() == {"error": answer.json()["error"], "details": []}
    assert "revoked" in answer.json()["error"]
    assert AuditEvent.objects.filter(verb="api_token.revoked").count() == 1


def test_nobody_revokes_someone_elses_token(client_for, token_for, analyst, lead):
    token_for(analyst)
    token = ApiToken.objects.get()
    assert client_for(lead).post(reverse("tokens:revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize(
    "header", [None, "Bearer evs_not-a-real-token", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer x"]
)
def test_a_missing_or_wrong_token_gets_a_401_in_json(analyst, header):
    campaign = CampaignFactory()
    api = Api(None)
    if header:
        api.headers = {"Authorization": header}
    response = api.get(DECISION.format(campaign.slug))
    assert response.status_code == 401
    assert set(response.json()) == {"error", "details"}


def test_a_session_cookie_alone_does_not_authenticate_the_api(client_for, lead):
    campaign = CampaignFactory()
    response = client_for(lead).get(DECISION.format(campaign.slug))
    assert response.status_code == 401


def test_an_inactive_accounts_token_stops_working(token_for, analyst):
    campaign = CampaignFactory()
    raw = token_for(analyst)
    analyst.is_active = False
    analyst.save(update_fields=["is_active"])
    assert Api(raw).get(DECISION.format(campaign.slug)).status_code == 401


def test_create_api_token_prints_a_working_token_as_its_last_line(analyst):
    campaign = CampaignFactory()
    out = io.StringIO()
    call_command("create_api_token", "ANA.analyst@example.org", "--name", "ci", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert ApiToken.objects.get().name == "ci"
    assert Api(raw).get(DECISION.format(campaign.slug)).status_code == 200


def test_create_api_token_names_an_unknown_email(db):
    with pytest.raises(CommandError, match=r"nobody@example\.org"):
        call_command("create_api_token", "nobody@example.org")
