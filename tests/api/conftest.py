"""Tokens for the personas and a bearer-token client for /api/v1/."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from evalsite import tokens
from reviews.models import Report

PAIRS_CSV = (
    "item_id,prompt,system_a,response_a,system_b,response_b,category\n"
    "T-1,Where is my parcel?,acme-base,Check the tracking page.,acme-next,"
    "Here is how to track it.,shipping\n"
    "T-2,Can I get a refund?,acme-base,Yes within 30 days.,acme-next,Yes: within 30 days.,billing\n"
    "T-3,How do I reset my password?,acme-base,Use the link.,acme-next,"
    "Click Forgot password.,account\n"
)


class Api:
    """The test client, sending ``Authorization: Bearer <token>`` on every request."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path, **params):
        return self.client.get(path, params, headers=self.headers)

    def post_json(self, path, data=None):
        body = "" if data is None else json.dumps(data)
        return self.client.post(path, body, content_type="application/json", headers=self.headers)

    def post_file(self, path, body: str | bytes, content_type="text/csv"):
        return self.client.generic(
            "POST", path, body, content_type=content_type, headers=self.headers
        )


@pytest.fixture
def token_for(db):
    def make(user, name="ci"):
        return tokens.create_api_token(user=user, name=name)[1]

    return make


@pytest.fixture
def api_as(token_for):
    """``api_as(user)``: a client acting with a new token of ``user`` (None: no token)."""

    def make(user):
        return Api(token_for(user) if user is not None else None)

    return make


def store_report(campaign, decision: dict, **extra) -> Report:
    """A DONE report whose result carries ``decision`` (the shape under test)."""
    result = {"campaign": campaign.slug, "n_judgments": 10, "decision": decision, **extra}
    return Report.objects.create(
        campaign=campaign,
        status=Report.Status.DONE,
        result=result,
        state_key=f"test-{Report.objects.count()}",
        finished_at=timezone.now(),
    )


@pytest.fixture(autouse=True)
def tasks_in_process():
    """Queued work (an import, a report, a webhook) runs in the test's process, as without
    REDIS_URL, even when REDIS_URL is set: no worker runs beside these tests."""
    from evalsite.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved
