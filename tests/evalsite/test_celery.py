import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection

from evalsite.models import WorkerHeartbeat
from evalsite.queue import send_safely
from evalsite.tasks import heartbeat
from tests.conftest import redis_reachable, require_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker(transactional_db):
    """A real ``celery -A evalsite worker`` against Redis and this test's database."""
    require_service("REDIS_URL is not set or Redis is not reachable", redis_reachable())
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": database_url(db), "DEBUG": "0"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evalsite",
            "worker",
            "--pool=solo",
            "-Q",
            "default,imports,reports",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def database_url(db) -> str:
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return (
        f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def test_a_real_worker_runs_a_task_and_its_result_lands_in_the_database(celery_worker):
    if connection.vendor == "sqlite" and ":memory:" in str(connection.settings_dict["NAME"]):
        pytest.skip("an in-memory SQLite test database is invisible to a worker process")
    assert send_safely(heartbeat, "from the test")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = WorkerHeartbeat.objects.filter(note="from the test").first()
        if row:
            break
        assert celery_worker.poll() is None, celery_worker.stdout.read()
        time.sleep(0.25)
    else:
        pytest.fail("the worker did not run the task within 60 s")
    assert row.hostname


def test_a_broker_outage_is_logged_not_raised(caplog):
    with mock.patch.object(heartbeat, "apply_async", side_effect=ConnectionError("down")):
        assert send_safely(heartbeat, "x") is False
    assert "Could not send evalsite.heartbeat" in caplog.text


def test_beat_resends_stranded_work_every_minute(settings):
    from evalsite import tasks
    from evalsite.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["resend-stranded-work"]
    assert entry["task"] == tasks.resend_stranded_work.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 60
    assert settings.QUEUE_RESEND_AFTER_SECONDS >= 60  # above a normal wait for a free worker


def test_beat_runs_a_registered_aggregation_task_every_night(settings):
    from celery.schedules import crontab

    from evalsite.celery import app
    from reviews import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["aggregate-active-campaigns-nightly"]
    assert entry["task"] == tasks.aggregate_active_campaigns.name
    assert entry["task"] in app.tasks
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {2}
