"""Every URL × every persona → the expected status. A new URL must be added to MATRIX."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from datasets.models import ImportJob
from evalsite import tokens
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

R, L, A = "reviewer", "lead", "analyst"
PERSONAS = ["anonymous", "outsider", R, L, A]


def allowed(*roles, ok=200):
    """Anonymous → 302 to login; a role in ``roles`` → ``ok``; any other role → 403."""
    return {"anonymous": 302, "outsider": 403, **{p: ok if p in roles else 403 for p in (R, L, A)}}


# name → (method, kwargs builder over the `world` fixture, expected status per persona)
def slug(w):
    return {"slug": w["campaign"].slug}


def token(w):
    return {"token": w["assignment"].token}


MATRIX = {
    "home": ("get", None, {"anonymous": 302, "outsider": 403, R: 302, L: 302, A: 302}),
    # Reviewer pages.
    "reviews:queue": ("get", None, allowed(R)),
    "grading:start": ("get", lambda w: {"public_id": w["campaign"].public_id}, allowed(R, ok=302)),
    "grading:grade": ("get", token, allowed(R)),
    "grading:submit": ("post", token, allowed(R)),  # an empty form re-renders with its errors
    "grading:skip": ("post", token, allowed(R)),
    "grading:flag": ("post", token, allowed(R)),
    # Lead pages.
    "reviews:campaigns": ("get", None, allowed(L)),
    "reviews:campaign-create": ("get", None, allowed(L)),
    "reviews:campaign-detail": ("get", slug, allowed(L)),
    "reviews:campaign-progress": ("get", slug, allowed(L, ok=302)),
    "reviews:campaign-edit": ("get", slug, allowed(L)),
    "reviews:campaign-flags": ("get", slug, allowed(L)),
    "reviews:campaign-pause": ("post", slug, allowed(L, ok=302)),
    "reviews:campaign-resume": ("post", slug, allowed(L, ok=302)),
    "reviews:campaign-close": ("post", slug, allowed(L, ok=302)),
    "reviews:batch-create": ("get", slug, allowed(L)),
    # An empty form re-renders the campaign page with its errors.
    "reviews:unassign": ("post", slug, allowed(L)),
    "reviews:reassign": ("post", slug, allowed(L)),
    "reviews:reinstate": ("post", slug, allowed(L, ok=302)),  # nobody paused: a message
    "reviews:adjudication": ("get", slug, allowed(L)),  # systems named: leads only
    "reviews:rubrics": ("get", None, allowed(L)),
    "reviews:rubric-create": ("get", None, allowed(L)),
    "reviews:rubric-import": ("get", None, allowed(L)),
    "reviews:rubric-edit": ("get", lambda w: {"pk": w["rubric"].pk}, allowed(L)),
    "reviews:rubric-export": ("get", lambda w: {"pk": w["rubric"].pk}, allowed(L)),
    "reviews:rubric-copy": ("post", lambda w: {"pk": w["rubric"].pk}, allowed(L, ok=302)),
    "datasets:list": ("get", None, allowed(L)),
    "datasets:upload": ("get", None, allowed(L)),
    "datasets:job": ("get", lambda w: {"pk": w["job"].pk}, allowed(L)),
    "datasets:job-status": ("get", lambda w: {"pk": w["job"].pk}, allowed(L)),
    "datasets:detail": ("get", lambda w: {"slug": w["campaign"].dataset.slug}, allowed(L)),
    "datasets:items": ("get", lambda w: {"slug": w["campaign"].dataset.slug}, allowed(L)),
    "exports:import": ("get", slug, allowed(L)),
    "exports:log": ("get", None, allowed(L)),
    "reviews:audit": ("get", None, allowed(L)),
    "reviews:people": ("get", None, allowed(L)),
    # An empty form re-renders the People page with its errors.
    "reviews:people-invite": ("post", None, allowed(L)),
    # Lead and analyst pages.
    "reviews:reports": ("get", None, allowed(L, A)),
    "report:page": ("get", slug, allowed(L, A)),
    "report:recompute": ("post", slug, allowed(L, A, ok=302)),
    "report:status": ("get", slug, allowed(L, A, ok=302)),  # a fragment: no htmx, no fragment
    "report:migration": ("get", slug, allowed(L, A)),
    "report:timeline": ("get", lambda w: {"slug": w["campaign"].dataset.slug}, allowed(L, A)),
    "report:timeline-csv": ("get", lambda w: {"slug": w["campaign"].dataset.slug}, allowed(L, A)),
    # Leads only; no report in the world: back to the migration page with a message.
    "report:next-batch": ("post", slug, allowed(L, ok=302)),
    "exports:form": ("get", slug, allowed(L, A)),
    "exports:download": ("get", slug, allowed(L, A)),
    # No report computed yet in the world: back to the report page with a message.
    "exports:report-csv": ("get", slug, allowed(L, A, ok=302)),
    "exports:flags-csv": ("get", slug, allowed(L, A)),
    "reviews:campaign-webhook": ("get", slug, allowed(L)),
    # Every signed-in user manages their own API tokens (a token acts with its owner's roles).
    "tokens:list": ("get", None, {"anonymous": 302, "outsider": 200, R: 200, L: 200, A: 200}),
    # The world's token is the lead's: anyone else's revoke is a 404.
    "tokens:revoke": (
        "post",
        lambda w: {"pk": w["token"].pk},
        {"anonymous": 302, "outsider": 404, R: 404, L: 302, A: 404},
    ),
}


def api_allowed(*roles, ok=200):
    """No or a wrong token → 401; a role in ``roles`` → ``ok``; any other role → 403."""
    return {"anonymous": 401, "outsider": 403, **{p: ok if p in roles else 403 for p in (R, L, A)}}


# The HTTP API, requested with a bearer token of each persona (anonymous: no token). Bodies are
# empty: the role is checked first, then an empty body is a 400 (JSON) or 415 (a file).
API_MATRIX = {
    "api:api-root": ("get", None, dict.fromkeys(PERSONAS, 404)),
    "api:openapi-json": ("get", None, dict.fromkeys(PERSONAS, 200)),
    "api:import-create": (
        "post", lambda w: {"name": w["campaign"].dataset.name}, api_allowed(L, ok=415)
    ),
    "api:import-status": ("get", lambda w: {"job_id": w["job"].pk}, api_allowed(L)),
    "api:campaign-create": ("post", None, api_allowed(L, ok=400)),
    "api:campaign": ("get", slug, api_allowed(L)),
    "api:assignments": ("post", slug, api_allowed(L, ok=400)),
    "api:judgments-import": ("post", slug, api_allowed(L, ok=415)),
    "api:report": ("get", slug, api_allowed(L, A, ok=404)),  # no report computed in the world
    "api:report-recompute": ("post", slug, api_allowed(L, A, ok=202)),
    "api:decision": ("get", slug, api_allowed(L, A)),
    "api:judgments-export": ("get", slug, api_allowed(L, A)),
}  # fmt: skip
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
    missing = sorted(set(app_url_names()) - set(MATRIX) - set(API_MATRIX))
    assert not missing, f"add these URLs to MATRIX with their expected statuses: {missing}"


@pytest.fixture
def world(db, reviewer, lead):
    """Objects that URL kwargs point at: a campaign with the reviewer's assignment, etc."""
    campaign = CampaignFactory()
    assignment = AssignmentFactory(
        campaign_item=CampaignItemFactory(campaign=campaign), reviewer=reviewer
    )
    job = ImportJob.objects.create(dataset_name=campaign.dataset.name, filename="pairs.csv")
    token, _ = tokens.create_api_token(user=lead, name="world")
    return {
        "campaign": campaign,
        "assignment": assignment,
        "rubric": campaign.rubric,
        "job": job,
        "token": token,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_url_answers_each_persona_as_expected(request, client, world, name, persona):
    method, kwargs_for, expected = MATRIX[name]
    url = reverse(name, kwargs=kwargs_for(world) if kwargs_for else None)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = getattr(client, method)(url)
    assert response.status_code == expected[persona], f"{persona} GET {url}"
    if expected[persona] == 302 and persona == "anonymous":
        assert response.url.startswith(reverse("account_login"))


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(API_MATRIX))
def test_api_url_answers_each_personas_token_as_expected(request, client, world, name, persona):
    method, kwargs_for, expected = API_MATRIX[name]
    url = reverse(name, kwargs=kwargs_for(world) if kwargs_for else None)
    headers = {}
    if persona != "anonymous":
        user = request.getfixturevalue(persona)
        headers["Authorization"] = f"Bearer {tokens.create_api_token(user=user)[1]}"
    response = getattr(client, method)(url, headers=headers)
    assert response.status_code == expected[persona], f"{persona} {method.upper()} {url}"
    if response.status_code in (400, 401, 403, 404, 415) and name != "api:api-root":
        assert set(response.json()) == {"error", "details"}
