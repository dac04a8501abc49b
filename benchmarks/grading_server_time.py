"""Server time of the grading page and of submit-and-next, in-process (no network), at size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_load \
        python benchmarks/grading_server_time.py [--pad-judgments 1000000] [--items 200]
        [--report-every N]

Builds a campaign for one reviewer (and pads the judgments table to the given size on
PostgreSQL), then times N page views and N submit-and-next requests through Django's handler,
printing median / p95 / p99 and the query count per request. ``--report-every 1`` makes a report
due on every submission (the setting AGGREGATE_EVERY_N_JUDGMENTS): its task is sent after the
response, from a background thread, so it should not show in submit-and-next. REDIS_URL defaults to
redis://127.0.0.1:6379/15, where due aggregations are queued (and purged at the end).
"""

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghijkl")
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["SECURE_COOKIES"] = "0"
# As in production, a submission that makes a report due queues the aggregation on Redis (a
# worker runs it); without a broker it would run inside the request. The queue is purged at the end.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--pad-judgments", type=int, default=0)
    parser.add_argument("--report-every", type=int, default=0)
    args = parser.parse_args()
    if args.report_every:
        os.environ["AGGREGATE_EVERY_N_JUDGMENTS"] = str(args.report_every)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from benchmarks.grading_load import ANSWERS, pct, setup

    public_id, emails = setup(1, args.items, args.pad_judgments)
    from django.contrib.auth import get_user_model

    from reviews.models import Judgment

    print(f"judgments in table: {Judgment.objects.count():,}")
    client = Client()
    client.force_login(get_user_model().objects.get(email=emails[0]))
    response = client.get(f"/grade/start/{public_id}/", follow=True)
    page_times, submit_times, page_queries, submit_queries = [], [], [], []
    for n in range(args.items):
        url = response.request["PATH_INFO"] if n == 0 else response.headers["HX-Push-Url"]
        with CaptureQueriesContext(connection) as q:
            t = time.perf_counter()
            page = client.get(url)
            page_times.append(time.perf_counter() - t)
        page_queries.append(len(q))
        ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
        data = {"ticket": ticket, **ANSWERS}
        with CaptureQueriesContext(connection) as q:
            t = time.perf_counter()
            # As htmx posts a form: URL-encoded (the test client would send multipart).
            response = client.post(
                f"{url}submit/",
                urlencode(data),
                content_type="application/x-www-form-urlencoded",
                headers={"HX-Request": "true"},
            )
            submit_times.append(time.perf_counter() - t)
        submit_queries.append(len(q))
        if "HX-Push-Url" not in response.headers or "Nothing left" in response.text:
            break
    from evalsite.celery import app

    app.control.purge()
    # The first few requests warm caches (templates, regexes, connections): leave them out.
    for name, times, queries in (
        ("page", page_times[5:], page_queries),
        ("submit+next", submit_times[5:], submit_queries),
    ):
        print(
            f"{name:>12}: n={len(times)} median={statistics.median(times) * 1000:.1f} ms "
            f"p95={pct(times, 95):.1f} ms p99={pct(times, 99):.1f} ms "
            f"queries={max(queries)}"
        )


if __name__ == "__main__":
    main()
