"""docker-compose.yml cannot run here (no Docker engine): read it and check what it names."""

import importlib
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def command_words(service) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_compose_has_the_production_services_with_health_checks():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "healthcheck" in service, f"{name} has no health check"


def test_app_services_share_the_environment_the_settings_read():
    for name in ("web", "worker", "beat"):
        env = SERVICES[name]["environment"]
        for var in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"):
            assert var in env, f"{name} lacks {var}"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")


def test_web_serves_the_wsgi_module_that_exists_with_gunicorn():
    words = command_words(SERVICES["web"])
    target = next(w for w in " ".join(words).split() if w.endswith(":application"))
    module, attr = target.split(":")
    assert hasattr(importlib.import_module(module), attr)
    assert "gunicorn" in " ".join(words)


def test_worker_and_beat_name_the_celery_app_that_exists():
    for name, sub in (("worker", "worker"), ("beat", "beat")):
        words = command_words(SERVICES[name])
        assert words[:2] == ["celery", "-A"]
        assert sub in words
        app = importlib.import_module(words[2]).celery_app
        assert app.main == "evalsite"


def test_worker_consumes_every_queue_that_tasks_are_routed_to(settings):
    words = command_words(SERVICES["worker"])
    queues = set(words[words.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= queues


def test_app_services_wait_for_healthy_database_and_broker():
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_the_image_is_built_from_a_dockerfile_that_installs_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert SERVICES["web"]["build"] == "."
