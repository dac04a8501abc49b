"""The dataset list's server time with a 500,000-item dataset present, beside an indexed lookup;
and that dataset's own page and item browser.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_x python benchmarks/dataset_list.py \
        [--items 500000] [--datasets 20] [--requests 40]

Creates a database of its own beside the one named ("<name>_list_bench", dropped at the end; a
temporary SQLite file when DATABASE_URL is unset), fills one dataset with N items (and, on
PostgreSQL, two responses each) by SQL and a few small ones, then times the dataset's page and
item browser, and the list page through Django's handler (in-process, one client),
an indexed lookup of one item in the same run, and the count the list used to make
(``Count("items")`` per dataset) for comparison. The last line reads
``dataset list p50 X ms p95 Y ms (Q queries); indexed lookup p50 Z ms; counting items W ms``.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghijkl")
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["SECURE_COOKIES"] = "0"
os.environ["REDIS_URL"] = ""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


def bench_database(url: str) -> tuple[str, object]:
    """A fresh PostgreSQL database beside ``url``'s, and how to drop it."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/") + "_list_bench"
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunparse(parsed._replace(path="/" + name)), drop


_COLUMNS = (
    "INSERT INTO datasets_item (dataset_id, external_id, prompt, context, reference,"
    " auto_preference, metadata)"
    " SELECT %s, 'T-' || g, 'Where is my order ' || g || '?', '', '', '', '{}'"
)
INSERT = {
    "postgresql": _COLUMNS + " FROM generate_series(1, %s) AS g",
    "sqlite": "".join(
        (
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) ",
            _COLUMNS,
            " FROM s",
        )
    ),
}


RESPONSES = {
    "postgresql": (
        "INSERT INTO datasets_response (item_id, system_id, text, metadata, metrics)"
        " SELECT i.id, s.id, 'An answer.', '{}', NULL FROM datasets_item i CROSS JOIN"
        " datasets_system s WHERE i.dataset_id = %s"
    ),
}


def fill(n_items: int, n_datasets: int) -> int:
    """One dataset of ``n_items`` items with two responses each (by SQL), and ``n_datasets``
    small ones; returns the big one's id."""
    from django.db import connection

    from datasets.dataset_stats import refresh_counts
    from datasets.models import Dataset, Item, System

    big = Dataset.objects.create(name="big", slug="big")
    small = [Dataset(name=f"small {i}", slug=f"small-{i}") for i in range(n_datasets)]
    Dataset.objects.bulk_create(small)
    Item.objects.bulk_create(
        Item(dataset=d, external_id=f"S-{k}", prompt="p")
        for d in Dataset.objects.exclude(pk=big.pk)
        for k in range(50)
    )
    with connection.cursor() as cursor:
        params = [big.pk, n_items] if connection.vendor == "postgresql" else [n_items, big.pk]
        cursor.execute(INSERT[connection.vendor], params)
        if connection.vendor == "postgresql":
            System.objects.bulk_create([System(name="nova"), System(name="orbit")])
            cursor.execute(RESPONSES["postgresql"], [big.pk])
            cursor.execute("VACUUM ANALYZE datasets_response")
            cursor.execute("VACUUM ANALYZE datasets_item")
            cursor.execute("VACUUM ANALYZE datasets_dataset")
    for pk in Dataset.objects.values_list("pk", flat=True):
        refresh_counts(dataset_id=pk)  # what an import stores when it finishes
    return big.pk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    drop = None
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"], drop = bench_database(os.environ["DATABASE_URL"])
    else:
        folder = tempfile.mkdtemp(prefix="dataset-list-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, connections
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from datasets.models import Dataset

    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        big = fill(args.items, args.datasets)
        print(f"filled {args.items:,} items in {time.perf_counter() - started:.1f} s "
              f"({connection.vendor})")  # fmt: skip
        lead = get_user_model().objects.create_user("lead", "lead@example.org", "x")
        lead.groups.add(Group.objects.get_or_create(name="lead")[0])
        client = Client()
        client.force_login(lead)

        page_times, queries = [], 0
        for _ in range(args.requests):
            with CaptureQueriesContext(connection) as captured:
                t = time.perf_counter()
                page = client.get("/datasets/")
                page_times.append(time.perf_counter() - t)
            assert page.status_code == 200, page.status_code
            assert f"{args.items:,}" in page.text, "the big dataset's count is not shown"
            queries = len(captured)
        page_times = page_times[3:]  # the first requests warm templates and connections

        detail_times = []
        for _ in range(10):
            t = time.perf_counter()
            detail = client.get("/datasets/big/")
            detail_times.append(time.perf_counter() - t)
            assert detail.status_code == 200
        items_times = []
        for page_number in (1, 2, 500, 1000):
            with CaptureQueriesContext(connection) as captured:
                t = time.perf_counter()
                assert client.get(f"/datasets/big/items/?page={page_number}").status_code == 200
                items_times.append(time.perf_counter() - t)
        if os.environ.get("SHOW_QUERIES"):
            for query in captured:
                print(query["time"], query["sql"][:300])
        print(
            f"dataset page p50 {statistics.median(detail_times) * 1000:.1f} ms; "
            f"items page p50 {statistics.median(items_times) * 1000:.1f} ms"
        )

        lookup_times = []
        with connection.cursor() as cursor:
            for k in range(1, 201):
                t = time.perf_counter()
                cursor.execute(
                    "SELECT id, prompt FROM datasets_item"
                    " WHERE dataset_id = %s AND external_id = %s",
                    [big, f"T-{k * 997 % args.items + 1}"],
                )
                cursor.fetchall()
                lookup_times.append(time.perf_counter() - t)

        t = time.perf_counter()
        list(Dataset.objects.annotate(n=Count("items")).values_list("name", "n"))
        counting = time.perf_counter() - t
        print(
            f"dataset list p50 {statistics.median(page_times) * 1000:.1f} ms "
            f"p95 {pct(page_times, 95):.1f} ms ({queries} queries); "
            f"indexed lookup p50 {statistics.median(lookup_times) * 1000:.2f} ms; "
            f"counting items {counting * 1000:.0f} ms"
        )
    finally:
        connections.close_all()
        if drop is not None and not args.keep:
            drop()


if __name__ == "__main__":
    main()
