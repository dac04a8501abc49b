"""Personas and shared fixtures. Services a test needs are checked by ``require_service``."""

import os
import socket
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import Group

from tests import factories

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PASSWORD = "correct-horse-battery-staple"


def require_service(reason: str, available: bool) -> None:
    """Skip when a service is missing, except under REQUIRE_SERVICES=1 (CI), where it fails."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def redis_reachable() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def on_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def make_user(email: str, *roles: str, **extra):
    user = factories.UserFactory(email=email, username=email, **extra)
    for role in roles:
        # get_or_create: transactional tests flush the rows the roles migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def reviewer(db):
    return make_user("rita.reviewer@example.org", "reviewer")


@pytest.fixture
def other_reviewer(db):
    return make_user("omar.reviewer@example.org", "reviewer")


@pytest.fixture
def lead(db):
    return make_user("lena.lead@example.org", "lead")


@pytest.fixture
def analyst(db):
    return make_user("ana.analyst@example.org", "analyst")


@pytest.fixture
def outsider(db):
    """Logged in, but in no role."""
    return make_user("oscar.outsider@example.org")


@pytest.fixture
def client_for(client):
    """``client_for(user)`` returns the test client logged in as ``user``."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def htmx_headers():
    return {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2 at production strength costs ~0.3 s per persona; tests do not need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tasks_run_at_once():
    """Tasks sent during the test run at once in this process, as a worker would run them, even
    where REDIS_URL names a broker (for tests of what a user sees once the work is done)."""
    from evalsite.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved
