"""Drive N concurrent simulated reviewers through log-in, grade, submit against gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_load \
        python benchmarks/grading_load.py --reviewers 10 --rounds 20 [--pad-judgments 1000000]

    # issue #9: 100 reviewers pulling from one pool (k = 3) for five minutes, 5 % of the
    # submissions sent twice (a network retry), a Celery worker running the aggregations
    REDIS_URL=redis://127.0.0.1:6379/13 DATABASE_URL=... python benchmarks/grading_load.py \
        --reviewers 100 --mode pull --overlap 3 --items 3000 --duration 300 --retry 0.05 --worker

Sets up its own campaign in that database (migrating it first), pads the judgments table if
asked (to measure at size), starts gunicorn on 127.0.0.1 (and a Celery worker with --worker),
and prints latency percentiles of the grading page and of submit-and-next, requests per second,
and the integrity checks afterwards: every answer the server confirmed is stored exactly once,
retried submissions stored nothing more, no item has more than k judgments, no errors.
Responses are ~1 KB of Markdown, as in the import benchmark.
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


RESPONSE = (
    "Thanks for reaching out about order **#{n}**. Here is what you can do:\n\n"
    "1. Open *My orders* and check the tracking link.\n"
    "2. If the parcel shows as delivered, look around your door and with your neighbours.\n"
    "3. Still nothing after 48 hours? Reply here and we will send a replacement.\n\n"
    "| Step | When |\n|---|---|\n| Tracking | now |\n| Replacement | after 48 h |\n\n"
    "We are sorry for the trouble. Refunds go back to the original payment method within "
    "5 to 10 working days; see [our refund policy](https://example.org/refunds) for details. "
    "If you paid by gift card, the amount returns to the card at once. "
) * 2


def setup(
    n_reviewers: int, rounds: int, pad: int, *, mode: str = "push", overlap: int = 1, items: int = 0
) -> tuple[str, list[str]]:
    """A campaign for the simulated reviewers. Push: ``rounds`` items assigned to each reviewer.
    Pull: ``items`` items with ``overlap`` slots each, all reviewers on the roster."""
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from reviews.models import Campaign
    from tests import factories

    call_command("migrate", verbosity=0)
    # Factory sequences restart in every process: start them past earlier runs' rows.
    offset = int(time.time() * 1000) % 10**9
    for name in dir(factories):
        cls = getattr(factories, name)
        if isinstance(cls, type) and issubclass(cls, factories.factory.django.DjangoModelFactory):
            cls.reset_sequence(offset, force=True)
    group, _ = Group.objects.get_or_create(name="reviewer")
    campaign = factories.CampaignFactory(
        overlap=overlap, mode=Campaign.Mode.PULL if mode == "pull" else Campaign.Mode.PUSH
    )
    users = []
    for r in range(n_reviewers):
        user = factories.UserFactory(
            username=f"load{r}-{campaign.pk}@example.org", password=PASSWORD
        )
        user.groups.add(group)
        users.append(user)

    def campaign_item(n: int):
        return factories.CampaignItemFactory(
            campaign=campaign,
            baseline_response__text=RESPONSE.format(n=n),
            candidate_response__text=RESPONSE.format(n=n + 1).replace("Thanks", "Thank you"),
        )

    if mode == "pull":
        campaign.roster.add(*users)
        for n in range(items):
            campaign_item(n)
    else:
        for r, user in enumerate(users):
            for n in range(rounds):
                factories.AssignmentFactory(
                    campaign_item=campaign_item(n),
                    reviewer=user,
                    position=n,
                    candidate_left=(n + r) % 2 == 0,
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


def reviewer_session(base: str, email: str, public_id: str, plan: dict, out: dict) -> None:
    """Log in, then grade until the rounds or the time run out (or nothing is left)."""
    import random

    rng = random.Random(email)
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
    # Logging in hashes a password (~1 s of CPU by design): the clock starts when all are in.
    plan["ready"].wait()
    t = time.perf_counter()
    r = s.get(f"{base}/grade/start/{public_id}/")
    out["page"].append(time.perf_counter() - t)
    for _ in range(plan["rounds"]):
        if time.monotonic() > plan["until"] or (r.status_code == 200 and "Nothing left" in r.text):
            return
        if r.status_code != 200 or 'name="ticket"' not in r.text:
            out["errors"].append(f"{email}: {r.status_code} {r.url}")
            return
        action = re.search(r'id="judgment-form"[^>]*action="([^"]+)"', r.text).group(1)
        ticket = re.search(r'name="ticket" value="([^"]+)"', r.text).group(1)
        csrf = s.cookies.get("csrftoken")
        data = {"ticket": ticket, **ANSWERS}
        headers = {"HX-Request": "true", "X-CSRFToken": csrf}
        t = time.perf_counter()
        r = s.post(f"{base}{action}", data=data, headers=headers)
        out["submit"].append(time.perf_counter() - t)
        if r.status_code != 200 or "HX-Push-Url" not in r.headers:
            out["errors"].append(f"{email}: submit {r.status_code}")
            return
        out["submitted"] += 1
        if rng.random() < plan["retry"]:
            # The same POST again, as a retrying proxy or a double click would send it.
            again = s.post(f"{base}{action}", data=data, headers=headers)
            out["retried"] += 1
            if again.status_code != 200:
                out["errors"].append(f"{email}: retry {again.status_code}")
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
    parser.add_argument("--rounds", type=int, default=20, help="items per reviewer (push)")
    parser.add_argument("--mode", choices=["push", "pull"], default="push")
    parser.add_argument("--overlap", type=int, default=1, help="k judgments per item")
    parser.add_argument("--items", type=int, default=0, help="items in the pool (pull)")
    parser.add_argument("--duration", type=float, default=0, help="seconds; 0: until done")
    parser.add_argument("--retry", type=float, default=0, help="share of POSTs sent twice")
    parser.add_argument("--pad-judgments", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help="run a Celery worker too")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.mode == "pull" and not args.items:
        args.items = args.reviewers * args.rounds
    public_id, emails = setup(
        args.reviewers,
        args.rounds,
        args.pad_judgments,
        mode=args.mode,
        overlap=args.overlap,
        items=args.items,
    )
    rounds = 10**9 if args.duration else args.rounds
    processes = [
        subprocess.Popen(
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
    ]
    if args.worker:
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "evalsite",
                    "worker",
                    "-Q",
                    "default,imports,reports",
                    "-c",
                    "1",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=os.environ.copy(),
            )
        )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/accounts/login/", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        out = {"page": [], "submit": [], "errors": [], "submitted": 0, "retried": 0}
        plan = {"rounds": rounds, "retry": args.retry}

        def go() -> None:  # runs once, when every reviewer has logged in
            plan["start"] = time.perf_counter()
            plan["until"] = time.monotonic() + (args.duration or 10**9)

        plan["ready"] = threading.Barrier(len(emails) + 1, action=go)
        threads = [
            threading.Thread(target=reviewer_session, args=(base, e, public_id, plan, out))
            for e in emails
        ]
        for t in threads:
            t.start()
        plan["ready"].wait()
        for t in threads:
            t.join()
        wall = time.perf_counter() - plan["start"]
        if args.worker:
            time.sleep(5)  # let the last queued aggregation finish
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
    report(args, public_id, out, wall)


def report(args, public_id: str, out: dict, wall: float) -> None:
    from django.db.models import Count

    from reviews.models import Assignment, Campaign, Judgment, Report

    campaign = Campaign.objects.get(public_id=public_id)
    stored = Judgment.objects.filter(campaign=campaign).count()
    duplicated_keys = (
        Judgment.objects.filter(campaign=campaign)
        .values("submission_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    over_k = (
        Assignment.objects.filter(campaign=campaign)
        .values("campaign_item")
        .annotate(n=Count("id"))
        .filter(n__gt=campaign.overlap)
        .count()
    )
    reports = Report.objects.filter(campaign=campaign, status=Report.Status.DONE).count()
    n_requests = len(out["page"]) + len(out["submit"]) + out["retried"]
    print(
        f"reviewers={args.reviewers} mode={args.mode} k={args.overlap} "
        f"padded_judgments={args.pad_judgments} gunicorn_workers={args.workers}"
    )
    for name in ("page", "submit"):
        v = out[name]
        if not v:
            print(f"{name:>7}: n=0")
            continue
        print(
            f"{name:>7}: n={len(v)} p50={pct(v, 50):.1f} ms p95={pct(v, 95):.1f} ms "
            f"p99={pct(v, 99):.1f} ms mean={statistics.mean(v) * 1000:.1f} ms"
        )
    errors = len(out["errors"])
    print(
        f"requests={n_requests} requests/s={n_requests / wall:.1f} wall={wall:.1f}s "
        f"errors={errors} error_rate={errors / max(1, n_requests):.4f}"
    )
    print(
        f"confirmed={out['submitted']} retried={out['retried']} stored={stored} "
        f"stored_twice={duplicated_keys} items_over_k={over_k} reports_done={reports}"
    )
    ok = stored == out["submitted"] and not duplicated_keys and not over_k and not errors
    print("integrity: " + ("every confirmed answer stored exactly once" if ok else "FAILED"))
    if out["errors"]:
        print("\n".join(out["errors"][:5]))


if __name__ == "__main__":
    main()
