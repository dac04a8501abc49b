"""Drive N concurrent simulated reviewers through log-in, grade, submit against gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_load \
        python benchmarks/grading_load.py --reviewers 10 --rounds 20 [--pad-judgments 1000000]

Sets up its own campaign in that database (migrating it first), pads the judgments table if
asked (to measure at size), starts gunicorn on 127.0.0.1, and prints latency percentiles of the
grading page and of submit-and-next, requests per second, and the integrity checks afterwards.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghijkl")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ["SECURE_COOKIES"] = "0"
PASSWORD = "load-test-password-123"
# One answer to every question of the default rubric, as the grading form posts it.
ANSWERS = {
    "preference": "1",
    "correctness__1": "4",
    "correctness__2": "3",
    "refusal_ok__1": "1",
    "refusal_ok__2": "1",
    "overall__pair": "3",
    "active_ms": "900",
}


def setup(n_reviewers: int, rounds: int, pad: int) -> str:
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from tests import factories

    call_command("migrate", verbosity=0)
    # Factory sequences restart in every process: start them past earlier runs' rows.
    offset = int(time.time() * 1000) % 10**9
    for name in dir(factories):
        cls = getattr(factories, name)
        if isinstance(cls, type) and issubclass(cls, factories.factory.django.DjangoModelFactory):
            cls.reset_sequence(offset, force=True)
    group, _ = Group.objects.get_or_create(name="reviewer")
    campaign = factories.CampaignFactory(overlap=1)
    users = []
    for r in range(n_reviewers):
        user = factories.UserFactory(
            username=f"load{r}-{campaign.pk}@example.org", password=PASSWORD
        )
        user.groups.add(group)
        users.append(user)
    for r, user in enumerate(users):
        for n in range(rounds):
            ci = factories.CampaignItemFactory(campaign=campaign)
            factories.AssignmentFactory(
                campaign_item=ci, reviewer=user, position=n, candidate_left=(n + r) % 2 == 0
            )
    if pad and connection.vendor == "postgresql":
        # Top the table up to the asked size: reruns reuse the rows earlier runs left.
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM reviews_judgment")
            pad = max(0, pad - cur.fetchone()[0])
    if pad and connection.vendor == "postgresql":
        # Filler judgments on one extra assignment's campaign, so lookups run at table size.
        filler = factories.JudgmentFactory()
        with connection.cursor() as cur:
            cur.execute(
                """INSERT INTO reviews_judgment (assignment_id, campaign_id, item_id, reviewer_id,
                       candidate_left, preference, scores, rationale, submitted_at, revision,
                       is_current, source, submission_key)
                   SELECT %s, %s, %s, %s, true, 'tie', '{}', '', now(), g, false, 'grading',
                          'pad-' || g || '-' || %s
                   FROM generate_series(1, %s) g""",
                [
                    filler.assignment_id,
                    filler.campaign_id,
                    filler.item_id,
                    filler.reviewer_id,
                    campaign.pk,
                    pad,
                ],
            )
            cur.execute("ANALYZE reviews_judgment")
    return campaign.public_id, [u.email for u in users]


def reviewer_session(base: str, email: str, public_id: str, rounds: int, out: dict) -> None:
    s = requests.Session()
    page = s.get(f"{base}/accounts/login/")
    token = s.cookies.get("csrftoken") or re.search(
        r'csrfmiddlewaretoken" value="([^"]+)', page.text
    ).group(1)
    s.post(
        f"{base}/accounts/login/",
        data={"login": email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    t = time.perf_counter()
    r = s.get(f"{base}/grade/start/{public_id}/")
    out["page"].append(time.perf_counter() - t)
    for _ in range(rounds):
        if r.status_code != 200 or 'name="ticket"' not in r.text:
            out["errors"].append(f"{email}: {r.status_code} {r.url}")
            return
        action = re.search(r'id="judgment-form"[^>]*action="([^"]+)"', r.text).group(1)
        ticket = re.search(r'name="ticket" value="([^"]+)"', r.text).group(1)
        csrf = s.cookies.get("csrftoken")
        data = {"ticket": ticket, **ANSWERS}
        t = time.perf_counter()
        r = s.post(
            f"{base}{action}", data=data, headers={"HX-Request": "true", "X-CSRFToken": csrf}
        )
        out["submit"].append(time.perf_counter() - t)
        out["submitted"] += 1
        if "Nothing left" in r.text:
            return
        t = time.perf_counter()
        r = s.get(f"{base}{r.headers['HX-Push-Url']}")
        out["page"].append(time.perf_counter() - t)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pad-judgments", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    public_id, emails = setup(args.reviewers, args.rounds, args.pad_judgments)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "evalsite.wsgi:application",
            "-b",
            f"127.0.0.1:{args.port}",
            "-w",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/accounts/login/", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        out = {"page": [], "submit": [], "errors": [], "submitted": 0}
        threads = [
            threading.Thread(target=reviewer_session, args=(base, e, public_id, args.rounds, out))
            for e in emails
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(10)
    from django.db.models import Count

    from reviews.models import Campaign, Judgment

    campaign = Campaign.objects.get(public_id=public_id)
    stored = Judgment.objects.filter(campaign=campaign).count()
    over_k = (
        Judgment.objects.filter(campaign=campaign, is_current=True)
        .values("item")
        .annotate(n=Count("id"))
        .filter(n__gt=campaign.overlap)
        .count()
    )
    n_requests = len(out["page"]) + len(out["submit"])
    print(f"reviewers={args.reviewers} rounds={args.rounds} padded_judgments={args.pad_judgments}")
    for name in ("page", "submit"):
        v = out[name]
        print(
            f"{name:>7}: n={len(v)} p50={pct(v, 50):.1f} ms p95={pct(v, 95):.1f} ms "
            f"p99={pct(v, 99):.1f} ms mean={statistics.mean(v) * 1000:.1f} ms"
        )
    print(f"requests/s={n_requests / wall:.1f} wall={wall:.1f}s errors={len(out['errors'])}")
    print(f"submitted={out['submitted']} stored={stored} items_over_k={over_k}")
    if out["errors"]:
        print("\n".join(out["errors"][:5]))


if __name__ == "__main__":
    main()
