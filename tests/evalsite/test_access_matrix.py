"""Every URL × every persona → the expected status. A new URL must be added to MATRIX."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

R, L, A = "reviewer", "lead", "analyst"
PERSONAS = ["anonymous", "outsider", R, L, A]


def allowed(*roles, ok=200):
    """Anonymous → 302 to login; a role in ``roles`` → ``ok``; any other role → 403."""
    return {"anonymous": 302, "outsider": 403, **{p: ok if p in roles else 403 for p in (R, L, A)}}


# name → (kwargs builder over the `world` fixture, expected status per persona)
MATRIX = {
    "home": (None, {"anonymous": 302, "outsider": 403, R: 302, L: 302, A: 302}),
    "reviews:queue": (None, allowed(R)),
    "reviews:campaigns": (None, allowed(L)),
    "reviews:reports": (None, allowed(L, A)),
    "datasets:list": (None, allowed(L)),
}
# Not ours to test here: allauth and the admin have their own access rules.
EXEMPT_PREFIXES = ("account_", "admin:")


def app_url_names():
    names = []

    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, ns)
            elif isinstance(p, URLPattern) and p.name:
                names.append(f"{namespace}{p.name}")

    walk(get_resolver().url_patterns)
    return [n for n in names if (not n.startswith(EXEMPT_PREFIXES) and ":" in n) or n == "home"]


def test_every_url_is_in_the_matrix():
    missing = sorted(set(app_url_names()) - set(MATRIX))
    assert not missing, f"add these URLs to MATRIX with their expected statuses: {missing}"


@pytest.fixture
def world(db):
    """Objects that URL kwargs point at (filled in as pages with arguments arrive)."""
    return {}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_url_answers_each_persona_as_expected(request, client, world, name, persona):
    kwargs_for, expected = MATRIX[name]
    url = reverse(name, kwargs=kwargs_for(world) if kwargs_for else None)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = client.get(url)
    assert response.status_code == expected[persona], f"{persona} GET {url}"
    if expected[persona] == 302 and persona == "anonymous":
        assert response.url.startswith(reverse("account_login"))
