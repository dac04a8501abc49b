import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_every_page_sends_a_csp_that_forbids_inline_script(client):
    response = client.get(reverse("account_login"))
    csp = response.headers["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    assert "'self'" in script_src
    assert "default-src 'self'" in csp


@pytest.mark.django_db
def test_htmx_is_served_from_our_own_static_files(client, reviewer, client_for):
    html = client_for(reviewer).get(reverse("reviews:queue")).text
    assert "/static/django_htmx/htmx-2" in html
    assert "https://" not in html.split("<body")[0]


@pytest.mark.django_db
def test_signup_is_closed_by_default(client):
    response = client.get("/accounts/signup/")
    assert "closed" in response.text.lower()


@pytest.mark.django_db
def test_login_with_email_and_password_lands_on_the_role_home(client, reviewer):
    response = client.post(
        reverse("account_login"),
        {"login": reviewer.email, "password": "correct-horse-battery-staple"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("reviews:queue")
    assert "My queue" in response.text


@pytest.mark.django_db
def test_wrong_password_shows_a_clear_message(client, reviewer):
    response = client.post(reverse("account_login"), {"login": reviewer.email, "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.text


@pytest.mark.django_db
def test_password_reset_mail_is_sent(client, reviewer, mailoutbox):
    client.post(reverse("account_reset_password"), {"email": reviewer.email})
    assert len(mailoutbox) == 1
    assert reviewer.email in mailoutbox[0].to
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "landing"),
    [("reviewer", "reviews:queue"), ("lead", "reviews:campaigns"), ("analyst", "reviews:reports")],
)
def test_each_role_lands_on_its_own_home(request, client_for, persona, landing):
    user = request.getfixturevalue(persona)
    response = client_for(user).get(reverse("home"))
    assert response.status_code == 302
    assert response.url == reverse(landing)


@pytest.mark.django_db
def test_a_user_without_a_role_is_told_so(client_for, outsider):
    response = client_for(outsider).get(reverse("home"))
    assert response.status_code == 403
    assert "no role yet" in response.text


def test_roles_are_read_afresh_on_every_request(client, reviewer):
    """Roles come with the user (one query); taking a role away still takes effect at once."""
    from django.contrib.auth.models import Group

    client.post(
        reverse("account_login"),
        {"login": reviewer.email, "password": "correct-horse-battery-staple"},
    )
    assert client.get(reverse("reviews:queue")).status_code == 200
    reviewer.groups.remove(Group.objects.get(name="reviewer"))
    assert client.get(reverse("reviews:queue")).status_code == 403
    reviewer.groups.add(Group.objects.get(name="lead"))
    assert client.get(reverse("reviews:campaigns")).status_code == 200
