"""Fuzz every endpoint with schemathesis against the schema the API serves, through WSGI (no
network): no 500, and every response (status, media type, body) matches the schema.

Path parameters point at real objects (a campaign, an import job) so the generated bodies reach
the services rather than stopping at a 404."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from datasets.models import ImportJob
from evalsite import tokens
from evalsite.wsgi import application
from tests.api.conftest import PAIRS_CSV
from tests.factories import CampaignFactory, CampaignItemFactory, JudgmentFactory

# The raw-file bodies (a pairs file, a judgments CSV) are sent as generated text.
schemathesis.serializer.alias(["text/csv", "application/x-ndjson"], "text/plain")

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema as the API serves it (the view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def test_connection_kept():
    """Requests through WSGI close "old" database connections when they start and finish, which
    would end the test's transaction; Django's own test client disconnects that too."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(db, lead, test_connection_kept):
    campaign = CampaignFactory()
    JudgmentFactory(assignment__campaign_item=CampaignItemFactory(campaign=campaign))
    job = ImportJob.objects.create(
        dataset_name="d", filename="pairs.csv", errors=["pairs.csv:2: x"]
    )
    return {
        "slug": campaign.slug,
        "job_id": job.pk,
        "headers": {"Authorization": f"Bearer {tokens.create_api_token(user=lead)[1]}"},
    }


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_what_its_schema_says(case, fuzz_world):
    for name in ("slug", "job_id"):
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = fuzz_world[name]
    case.call_and_validate(headers=fuzz_world["headers"], checks=CHECKS)


def test_the_served_schema_lists_every_endpoint_of_the_design(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {path: sorted(ops) for path, ops in paths.items()} == {
        "/api/v1/datasets/{name}/imports": ["post"],
        "/api/v1/imports/{job_id}": ["get"],
        "/api/v1/campaigns": ["post"],
        "/api/v1/campaigns/{slug}": ["get"],
        "/api/v1/campaigns/{slug}/assignments": ["post"],
        "/api/v1/campaigns/{slug}/judgments": ["post"],
        "/api/v1/campaigns/{slug}/report": ["get", "post"],
        "/api/v1/campaigns/{slug}/decision": ["get"],
        "/api/v1/campaigns/{slug}/judgments.csv": ["get"],
    }
    imports = paths["/api/v1/datasets/{name}/imports"]["post"]
    assert set(imports["requestBody"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert set(imports["responses"]) >= {"202", "400", "401", "403", "413", "415"}
    assert PAIRS_CSV  # the same pairs the end-to-end tests import
