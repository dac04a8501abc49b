import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


# The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE must not leak into a "production" check.
TEST_ONLY = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def production_env(**env):
    return {**{k: v for k, v in os.environ.items() if k not in TEST_ONLY}, **env}


def run_check(**env):
    clean = production_env()
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = run_check(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_starts_with_a_real_secret_key():
    result = run_check(DEBUG="0", SECRET_KEY="a-long-random-production-secret-key-0123456789")
    assert result.returncode == 0, result.stderr


def test_debug_mode_allows_the_development_key():
    assert run_check(DEBUG="1").returncode == 0


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("", "django.db.backends.sqlite3"),
        ("postgres://u@127.0.0.1:5432/x", "django.db.backends.postgresql"),
    ],
)
def test_database_comes_from_database_url(url, engine):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "evalsite.settings",
        },
    )
    assert out.stdout.strip() == engine, out.stderr


@pytest.mark.parametrize(("threshold", "expected"), [(None, "5"), ("", "None"), ("2", "2")])
def test_postgresql_statements_are_prepared_unless_a_pooler_says_otherwise(threshold, expected):
    code = (
        "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS'];"
        " print(o['server_side_binding'], o['prepare_threshold'])"
    )
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
        "DJANGO_SETTINGS_MODULE": "evalsite.settings",
    }
    env.pop("DB_PREPARE_THRESHOLD", None)
    if threshold is not None:
        env["DB_PREPARE_THRESHOLD"] = threshold
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.stdout.split() == ["True", expected], out.stderr


def test_production_settings_pass_the_deploy_check():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=production_env(
            DEBUG="0",
            SECRET_KEY="p" * 20 + "a-long-random-production-secret-key-0123456789-xyz",
            SECURE_SSL_REDIRECT="1",
            SECURE_HSTS_SECONDS="31536000",
            SMTP_HOST="smtp.example.org",
        ),
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Login rate limits (allauth ACCOUNT_RATE_LIMITS: "10/m/ip,5/5m/key") ----------------------------


@pytest.fixture
def empty_rate_limits():
    from django.core.cache import cache

    cache.clear()  # allauth counts attempts in the cache, which outlives a test
    yield
    cache.clear()


def failed_login(client, email: str):
    return client.post(reverse("account_login"), {"login": email, "password": "not-the-password"})


@pytest.mark.django_db
@pytest.mark.usefixtures("empty_rate_limits")
def test_five_failed_logins_lock_the_account_out_even_with_the_right_password(client):
    from tests.conftest import PASSWORD, make_user

    make_user("lena.lead@example.org", "lead", password=PASSWORD)
    for _ in range(5):
        assert "are not correct" in failed_login(client, "lena.lead@example.org").text
    assert "Too many failed login attempts" in failed_login(client, "lena.lead@example.org").text

    right = client.post(
        reverse("account_login"), {"login": "lena.lead@example.org", "password": PASSWORD}
    )
    assert right.status_code == 200  # no redirect: not logged in
    assert "Too many failed login attempts" in right.text
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@pytest.mark.usefixtures("empty_rate_limits")
def test_ten_failed_logins_a_minute_from_one_address_are_refused_whatever_the_account(client):
    for i in range(10):
        assert "are not correct" in failed_login(client, f"guess{i}@example.org").text
    assert "Too many failed login attempts" in failed_login(client, "guess10@example.org").text


# Cookies in production -------------------------------------------------------------------------

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghij",
    "ALLOWED_HOSTS": "testserver",
}
COOKIES_SCRIPT = """
import django
django.setup()
from django.test import Client
response = Client().get("/accounts/login/", secure=True)
for name, morsel in response.cookies.items():
    print(name, "secure" if morsel["secure"] else "plain", "httponly" if morsel["httponly"] else "")
"""


def cookies_set(**env) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", COOKIES_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=production_env(DJANGO_SETTINGS_MODULE="evalsite.settings", **env),
    )
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines()}


def test_production_sends_the_csrf_cookie_only_over_https():
    assert cookies_set(**PRODUCTION)["csrftoken"].split()[1] == "secure"


def test_production_marks_the_session_cookie_secure_and_http_only():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)"
    )
    production = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=production_env(DJANGO_SETTINGS_MODULE="evalsite.settings", **PRODUCTION),
    )
    assert production.stdout.split() == ["True", "True", "True"], production.stderr


def test_development_cookies_work_over_plain_http():
    assert cookies_set(DEBUG="1", ALLOWED_HOSTS="testserver")["csrftoken"].split()[1] == "plain"


@pytest.mark.django_db
def test_rate_limit_counters_live_in_the_shared_database_cache(settings):
    """allauth's login and reset limits count in the default cache: a per-process cache let
    each gunicorn worker allow its own five (tests/evalsite/test_login_limits_across_processes)."""
    from django.core.cache import cache
    from django.db import connection

    backend = settings.CACHES["default"]["BACKEND"]
    assert backend == "django.core.cache.backends.db.DatabaseCache"
    assert settings.CACHES["default"]["LOCATION"] in connection.introspection.table_names()
    cache.set("probe", 1)
    assert cache.get("probe") == 1


def settings_in_a_fresh_process(code: str, **env) -> str:
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "evalsite.settings", **env},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_limits_come_from_the_environment_with_defaults():
    code = (
        "from datasets.importing.columns import Limits; l = Limits.from_settings();"
        " print(l.columns, l.metadata_keys, l.cell_bytes, l.line_bytes)"
    )
    assert settings_in_a_fresh_process(code) == f"200 100 {1024**2} {16 * 1024**2}"
    set_ = {"IMPORT_MAX_COLUMNS": "50", "IMPORT_MAX_METADATA_KEYS": "7",
            "IMPORT_MAX_CELL_BYTES": "4096", "IMPORT_MAX_LINE_BYTES": "65536"}  # fmt: skip
    assert settings_in_a_fresh_process(code, **set_) == "50 7 4096 65536"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"REDIS_URL": "", "TASK_QUEUE_DIR": ""}, "memory:// True"),
        ({"REDIS_URL": "", "TASK_QUEUE_DIR": "QUEUE"}, "filesystem://localhost/ False"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/9", "TASK_QUEUE_DIR": "QUEUE"},
         "redis://127.0.0.1:6379/9 False"),
    ],
)  # fmt: skip
def test_the_demo_s_folder_queue_is_used_only_without_redis(tmp_path, env, expected):
    env = {k: v.replace("QUEUE", str(tmp_path / "q")) for k, v in env.items()}
    code = (
        "from django.conf import settings;"
        " print(settings.CELERY_BROKER_URL, settings.CELERY_TASK_ALWAYS_EAGER)"
    )
    assert settings_in_a_fresh_process(code, **env) == expected
