"""Fault injection against real services: a Redis of our own (stopped and started at will),
the PostgreSQL test database, and real ``celery worker`` subprocesses that can be SIGKILLed.

The shared Redis named by REDIS_URL is never touched: every test here starts its own
``redis-server`` on a free port and points both the web process and its workers at it.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import on_postgres, require_service

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


class RedisServer:
    """A throwaway redis-server: no persistence, so stopping it loses what it held."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.reachable, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        assert not self.reachable()

    def reachable(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False


@pytest.fixture
def postgres():
    require_service("this fault test needs PostgreSQL (set DATABASE_URL)", on_postgres())


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    require_service(
        f"this fault test starts its own Redis and needs {REDIS_SERVER}",
        Path(REDIS_SERVER).exists(),
    )
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _reset_broker_pools(app) -> None:
    # Drop the app's references only: kombu keeps its pools in a registry keyed by broker URL,
    # so closing one here would leave the test run's own broker with a closed pool for every
    # later test ("Acquire on closed pool").
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(redis_server) -> Iterator[RedisServer]:
    """Point this process's Celery app (what views and services send with) at our Redis."""
    from evalsite.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_server.url, task_always_eager=False)
    _reset_broker_pools(app)
    yield redis_server
    app.conf.update(saved)
    _reset_broker_pools(app)


class Workers:
    """Start ``celery worker`` subprocesses on our Redis and the test database; kill them."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.started: list[subprocess.Popen] = []

    def start(self, *, visibility_timeout: float | None = None) -> subprocess.Popen:
        from django.conf import settings

        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # where import jobs' files are stored
            "DEBUG": "0",
        }
        if visibility_timeout is not None:
            env["FAULTS_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), "worker", "--pool=solo", "-Q", "default,imports,reports",
             "--loglevel=WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.started.append(worker)
        return worker

    @staticmethod
    def kill(worker: subprocess.Popen) -> None:
        """SIGKILL: no cleanup, no acknowledgement, no rollback from the worker's side."""
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_all(self) -> None:
        # Killed, not stopped: a warm shutdown would first finish whatever follow-up task the
        # test queued (response metrics after an import, say), and the test is over.
        for worker in self.started:
            if worker.poll() is None:
                self.kill(worker)
        # Their sessions may outlive them by a moment, holding locks the flush would wait for.
        with side_connection() as other:
            other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND pid <> %s",
                [connection.connection.info.backend_pid if connection.connection else 0],
            )


@pytest.fixture
def workers(transactional_db, postgres, broker) -> Iterator[Workers]:
    """Workers see only committed rows, hence ``transactional_db``."""
    pool = Workers(broker.url)
    yield pool
    pool.stop_all()


@contextmanager
def side_connection():
    """A second connection to the test database (autocommit), as another process would have."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or "postgres",
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        autocommit=True,
    ) as conn:
        yield conn


def ticket_of(html: str) -> str:
    return re.search(r'name="ticket" value="([^"]+)"', html).group(1)


def grading_answers(ticket: str, preference: str = "1") -> dict[str, str]:
    """A complete answer to the default rubric, as the grading form posts it."""
    return {
        "ticket": ticket,
        "preference": preference,
        "correctness__1": "4",
        "correctness__2": "2",
        "refusal_ok__1": "1",
        "refusal_ok__2": "1",
        "overall__pair": "3",
    }
