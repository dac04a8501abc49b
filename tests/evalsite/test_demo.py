"""`make demo` shows an import's progress as production does, with no service installed: the
demo script starts a Celery worker on a folder queue beside the development server, so the
upload returns at once and the progress bar moves while a 40,000-row file is imported."""

import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ROWS = 40_000


@pytest.fixture
def demo(tmp_path):
    """`make demo`'s steps on a database of the test's own: migrate, load the demo, serve."""
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REDIS_URL": "",
        "PYTHON": sys.executable,
    }
    env.pop("TASK_QUEUE_DIR", None)
    for step in (["migrate", "--noinput", "-v0"], ["load_demo"]):
        subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env={**env, "TASK_QUEUE_DIR": str(tmp_path / "queue")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server and the worker
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), timeout=90, what="the demo server", every=0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()
    logged = (tmp_path / "demo.log").read_text()
    assert "Traceback" not in logged
    assert "No hostname was supplied" not in logged, logged


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/accounts/login/", timeout=10).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


def token(page: requests.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def big_file() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["item_id", "prompt", "system_a", "response_a", "system_b", "response_b"])
    for i in range(ROWS):
        answers = (f"Sorry about order {i}. Check tracking.", f"I can help, {i}.")
        writer.writerow([f"T-{i}", f"Ticket {i}?", "nova", answers[0], "orbit", answers[1]])
    return out.getvalue().encode()


def test_the_demo_imports_in_the_background_and_shows_progress(demo):
    lead = requests.Session()
    lead.headers["Referer"] = demo
    login = lead.post(
        f"{demo}/accounts/login/",
        data={"csrfmiddlewaretoken": token(lead.get(f"{demo}/accounts/login/")),
              "login": "lead@example.org", "password": "evalsite-demo"},
        allow_redirects=False,
    )  # fmt: skip
    assert login.status_code == 302
    uploaded = lead.post(
        f"{demo}/datasets/import/",
        data={"csrfmiddlewaretoken": token(lead.get(f"{demo}/datasets/import/")), "dataset": "Big"},
        files={"file": ("big.csv", big_file())},
        allow_redirects=False,
    )
    assert uploaded.status_code == 302
    job = demo + uploaded.headers["Location"]

    started = time.monotonic()
    confirmed = lead.post(
        job,
        data={"csrfmiddlewaretoken": token(lead.get(job)), "action": "confirm"},
        headers={"HX-Request": "true"},
    )
    assert time.monotonic() - started < 3, "the page waited for the import"
    assert "Imported" not in confirmed.text
    assert 'hx-trigger="every 1s"' in confirmed.text  # the page polls for progress

    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = lead.get(f"{job}status/", headers={"HX-Request": "true"})
        if status.status_code == 286:  # finished: htmx stops polling
            break
        value = re.search(r'<progress max="100" value="(\d+)"', status.text)
        seen.append(int(value.group(1)) if value else None)
        time.sleep(0.2)
    assert status.status_code == 286, seen
    assert f"{ROWS:,} new items" in status.text
    moving = [percent for percent in seen if percent]
    assert any(0 < percent < 100 for percent in moving), seen
