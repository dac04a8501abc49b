import os
import subprocess
import sys
from pathlib import Path

import pytest

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
