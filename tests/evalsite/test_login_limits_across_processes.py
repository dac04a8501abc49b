"""Login and password-reset limits hold across web processes: three gunicorn servers on the same
PostgreSQL database, attempts sent to each in turn. With the counters in a per-process cache,
each server allowed its own five (15 wrong passwords before a lockout, 15 reset mails)."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.conftest import PASSWORD, make_user
from tests.faults.conftest import ROOT, database_url, free_port, wait_for

pytestmark = pytest.mark.services

SERVERS = 3


@pytest.fixture
def servers(transactional_db, tmp_path) -> Iterator[list[str]]:
    from tests.conftest import on_postgres, require_service

    require_service("this test serves the PostgreSQL test database", on_postgres())
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": "login-limits-test-key-0123456789-abcdefghijklmnop",
        "SECURE_COOKIES": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "REDIS_URL": "",
        "CONN_MAX_AGE": "0",
    }
    started, urls, logs = [], [], []
    for n in range(SERVERS):
        port = free_port()
        log = (tmp_path / f"gunicorn-{n}.log").open("w")
        logs.append(log)
        command = [sys.executable, "-m", "gunicorn", "evalsite.wsgi:application", "--bind",
                   f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"]  # fmt: skip
        started.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_for(lambda url=url: _up(url), timeout=90, what=f"gunicorn at {url}", every=0.5)
        yield urls
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=20)
        for log in logs:
            log.close()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/accounts/login/", timeout=20).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


def post_form(url: str, path: str, data: dict) -> requests.Response:
    """As a browser posts a form: a fresh session, its CSRF cookie and token, then the post."""
    session = requests.Session()
    # One site, as behind a load balancer (allauth's login key includes the host name).
    session.headers["Host"] = "127.0.0.1"
    page = session.get(url + path, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        url + path,
        data={"csrfmiddlewaretoken": token, **data},
        headers={"Referer": url + path},
        allow_redirects=False,
        timeout=10,
    )


def reviewer_the_servers_can_check():
    """The tests' fast hasher is unknown to the servers: store the password as they would."""
    user = make_user("rita.reviewer@example.org", "reviewer")
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    return user


def test_the_sixth_login_is_refused_whichever_process_serves_it(servers):
    reviewer_the_servers_can_check()
    right = {"login": "rita.reviewer@example.org", "password": PASSWORD}
    assert post_form(servers[2], "/accounts/login/", right).status_code == 302  # it can log in
    assert settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")

    for attempt in range(5):
        wrong = post_form(
            servers[attempt % SERVERS],
            "/accounts/login/",
            {"login": "rita.reviewer@example.org", "password": f"wrong-{attempt}"},
        )
        assert wrong.status_code == 200  # the form again, with its error
        assert "are not correct" in wrong.text

    # The sixth, on the server that has seen only one failure itself, with the right password.
    sixth = post_form(servers[5 % SERVERS], "/accounts/login/", right)
    assert sixth.status_code == 200
    assert "Too many failed login attempts" in sixth.text
    assert "sessionid" not in sixth.cookies


def test_the_sixth_password_reset_mail_a_minute_is_refused_across_processes(servers):
    reviewer_the_servers_can_check()
    mail = {"email": "rita.reviewer@example.org"}
    statuses = [
        post_form(servers[n % SERVERS], "/accounts/password/reset/", mail).status_code
        for n in range(6)
    ]
    assert statuses == [302] * 5 + [429]
