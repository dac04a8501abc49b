"""Leads invite people by email (allauth's password-set link) from the People page or a
campaign; invited reviewers set a password and grade."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from reviews.models import AuditEvent
from tests.conftest import make_user
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
INVITE = reverse("reviews:people-invite")


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def test_lead_invites_reviewers_who_set_a_password_and_sign_in(
    client_for, lead, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(lead).post(
            INVITE,
            {"emails": "Ana@Example.org, ben@example.org\nana@example.org", "role": "reviewer"},
        )
    assert response.status_code == 302
    ana = User.objects.get(email="ana@example.org")
    assert not ana.has_usable_password()
    assert ana.groups.filter(name="reviewer").exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["ana@example.org", "ben@example.org"]
    assert AuditEvent.objects.filter(verb="people.invited").count() == 1

    message = next(m for m in mail.outbox if m.to == ["ana@example.org"])
    client.logout()
    set_password = client.get(link_in(message), follow=True)
    assert set_password.status_code == 200
    assert b'name="password1"' in set_password.content
    form_url = (
        set_password.redirect_chain[-1][0] if set_password.redirect_chain else link_in(message)
    )
    done = client.post(
        form_url, {"password1": "a-long-new-passphrase-9", "password2": "a-long-new-passphrase-9"}
    )
    assert done.status_code == 302
    client.logout()
    login = client.post(
        reverse("account_login"),
        {"login": "ana@example.org", "password": "a-long-new-passphrase-9"},
    )
    assert login.status_code == 302
    assert client.get(reverse("reviews:queue")).status_code == 200


def test_invite_from_a_campaign_puts_reviewers_on_its_roster(
    client_for, lead, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(mode="pull")
    page = client_for(lead).get(reverse("reviews:campaign-detail", args=[campaign.slug])).text
    assert INVITE in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(lead).post(
            INVITE, {"emails": "cleo@example.org", "role": "reviewer", "campaign": campaign.slug}
        )
    assert response.url == reverse("reviews:campaign-detail", args=[campaign.slug])
    assert list(campaign.roster.values_list("email", flat=True)) == ["cleo@example.org"]
    # Reviewers must not learn the systems from the lead's name for the campaign.
    assert campaign.name not in mail.outbox[0].body


def test_people_with_a_password_get_the_role_and_no_email(client_for, lead):
    existing = make_user("dora@example.org")
    client_for(lead).post(INVITE, {"emails": "dora@example.org", "role": "analyst"})
    assert existing.groups.filter(name="analyst").exists()
    assert mail.outbox == []


def test_a_bad_address_is_named_and_nothing_is_created(client_for, lead):
    response = client_for(lead).post(
        INVITE, {"emails": "ok@example.org, not-an-email", "role": "reviewer"}
    )
    assert response.status_code == 200
    assert "“not-an-email” is not an email address." in response.content.decode()
    assert not User.objects.filter(email="ok@example.org").exists()


def test_people_page_lists_everyone_with_roles_in_few_queries(
    client_for, lead, django_assert_max_num_queries
):
    for n in range(30):
        make_user(f"person{n}@example.org", "reviewer", "analyst")
    client = client_for(lead)
    with django_assert_max_num_queries(5):
        page = client.get(reverse("reviews:people")).content.decode()
    assert "person29@example.org" in page
    assert page.count("Set up") >= 30
