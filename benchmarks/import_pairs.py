"""Time importing N pairs, the way `manage.py import_pairs` does, and report peak memory.

    python benchmarks/import_pairs.py [N ...] [--database-url URL] [--jsonl] [--redact-pii]
                                      [--metrics-sample K]

Generates N wide-form pairs of realistic size (a ~300-character prompt, two ~1 KB Markdown
responses, item and response metadata) into a temporary file, then, in a fresh process per N,
imports it into an empty database and imports it again (the no-op re-import). Prints seconds,
pairs/second and the import process's peak RSS (resource.getrusage high-water mark, which
includes Django itself: the baseline is printed too). Optionally times the metrics job on a sample.

Databases: DATABASE_URL (or --database-url) for PostgreSQL: a database whose name contains "bench"
is dropped and created afresh for each N; any other name gets "<name>_import_bench" beside it
instead, so nothing of yours is touched. Unset: a temporary SQLite file.
"""

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
DATASET = "benchmark: import_pairs"
VOCABULARY = (
    "order refund account password reset shipping delivery invoice billing address payment card "
    "subscription plan upgrade downgrade cancel warranty return label tracking number support "
    "please check settings security verify email phone login device browser cache cookies "
    "update version install restart network connection error message screen button page link "
    "the a to of and for with your you we can will this that it is on in at by from be have"
)
WORDS = VOCABULARY.split()


def paragraph(rng: random.Random, chars: int) -> str:
    words, size = [], 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


def response(rng: random.Random, n: int) -> str:
    steps = "\n".join(f"{k}. {paragraph(rng, 90)}" for k in range(1, 5))
    return (
        f"Thanks for reaching out about ticket {n}. {paragraph(rng, 300)}\n\n{steps}\n\n"
        f"**Note:** {paragraph(rng, 200)} See https://help.example.com/articles/{n % 997}."
    )


def generate(path: Path, n: int, *, jsonl: bool, seed: int = 7) -> None:
    rng = random.Random(seed)
    columns = ["item_id", "prompt", "system_a", "response_a", "system_b", "response_b",
               "category", "region", "latency_ms_a", "latency_ms_b", "tokens_a", "tokens_b",
               "cost_a", "cost_b"]  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = None if jsonl else csv.writer(out)
        if writer:
            writer.writerow(columns)
        for i in range(n):
            row = [
                f"T-{i:07d}", f"Ticket {i}: {paragraph(rng, 290)}", "gpt-4", response(rng, i),
                "gpt-4o", response(rng, i + 1), rng.choice(["billing", "shipping", "account"]),
                rng.choice(["EU", "US", "APAC"]), rng.randint(300, 4000), rng.randint(200, 2500),
                rng.randint(150, 400), rng.randint(150, 400), round(rng.uniform(0.001, 0.03), 5),
                round(rng.uniform(0.0005, 0.01), 5),
            ]  # fmt: skip
            if writer:
                writer.writerow(row)
            else:
                out.write(json.dumps(dict(zip(columns, row, strict=True))) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_database_url(url: str | None) -> str | None:
    """A new, empty PostgreSQL database beside the given one (recreated on every run)."""
    if not url:
        return None
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        name += "_import_bench"
    import psycopg

    admin = urlunparse(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(parts._replace(path="/" + name))


def child(path: str, redact_pii: bool, metrics_sample: int) -> None:
    """Runs in a fresh process on an empty database: import twice, print JSON figures."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from datasets.importing import services as importing
    from datasets.models import Response

    baseline = peak_rss_mb()
    figures = {"baseline_rss_mb": round(baseline, 1)}
    for label in ("import", "reimport"):
        started, cpu = time.perf_counter(), time.process_time()
        summary = importing.import_pairs(
            path=path,
            filename=Path(path).name,
            dataset_name=DATASET,
            redact_pii=redact_pii,
            enqueue_metrics=False,
        )
        figures[label] = {
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "rows": summary["rows"],
            "items_created": summary["items_created"],
            "rows_unchanged": summary["rows_unchanged"],
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    from django.db import connection

    if connection.vendor == "postgresql":
        figures["copy_seconds"] = copy_limit()
    if metrics_sample:
        from datasets.metrics import response_metrics

        texts = list(
            Response.objects.filter(item__dataset__name=DATASET)
            .order_by("pk")
            .values_list("text", flat=True)[:metrics_sample]
        )
        started = time.perf_counter()
        for text in texts:
            response_metrics(text)
        figures["metrics_per_second"] = round(len(texts) / (time.perf_counter() - started))
    print(json.dumps(figures))


def copy_limit() -> float:
    """The machine's limit for the same rows, in the same run: COPY of the imported items and
    responses (read back to files first, not timed) into plain tables with primary keys, the
    unique (dataset, external id) and (item, system) constraints and the foreign key."""
    from django.db import connection

    with tempfile.TemporaryDirectory() as tmp, connection.cursor() as cursor:
        copies = {}
        for table, columns in (
            ("datasets_item", "id, dataset_id, external_id, prompt, context, reference, metadata"),
            ("datasets_response", "id, item_id, system_id, text, metadata"),
        ):
            copies[table] = (Path(tmp) / table, columns)
            with (
                copies[table][0].open("wb") as out,
                cursor.cursor.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT") as copy,  # noqa: S608
            ):
                for block in copy:
                    out.write(block)
        cursor.execute(
            "CREATE TABLE limit_item (id bigint PRIMARY KEY, dataset_id bigint, external_id text,"
            " prompt text, context text, reference text, metadata jsonb,"
            " UNIQUE (dataset_id, external_id));"
            "CREATE TABLE limit_response (id bigint PRIMARY KEY,"
            " item_id bigint REFERENCES limit_item, system_id bigint, text text, metadata jsonb,"
            " UNIQUE (item_id, system_id))"
        )
        started = time.perf_counter()
        with transaction_atomic():
            for table, target in (("datasets_item", "limit_item"),
                                  ("datasets_response", "limit_response")):  # fmt: skip
                path, columns = copies[table]
                with (
                    path.open("rb") as source,
                    cursor.cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy,
                ):
                    while block := source.read(1 << 20):
                        copy.write(block)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE limit_response, limit_item")
    return round(seconds, 2)


def transaction_atomic():
    from django.db import transaction

    return transaction.atomic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--jsonl", action="store_true")
    parser.add_argument("--redact-pii", action="store_true")
    parser.add_argument("--metrics-sample", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.redact_pii, args.metrics_sample)

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench")}
        env.pop("REDIS_URL", None)
        engine = "PostgreSQL" if args.database_url else "SQLite"
        for n in args.n:
            url = fresh_database_url(args.database_url)
            env["DATABASE_URL"] = url or f"sqlite:///{tmp}/bench-{n}.sqlite3"
            path = Path(tmp) / f"pairs-{n}.{'jsonl' if args.jsonl else 'csv'}"
            generate(path, n, jsonl=args.jsonl)
            size_mb = path.stat().st_size / 1e6
            command = [sys.executable, __file__, "--child", str(path)]
            command += ["--redact-pii"] * args.redact_pii
            command += ["--metrics-sample", str(args.metrics_sample)]
            result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
            if result.returncode:
                sys.exit(result.stderr)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            first, again = figures["import"], figures["reimport"]
            redacting = ", redacting" if args.redact_pii else ""
            print(
                f"{engine} N={n:,} ({size_mb:.0f} MB {path.suffix[1:]}{redacting}): "
                f"import {first['seconds']:.2f} s = {n / first['seconds']:,.0f} pairs/s "
                f"(Python CPU {first['cpu_seconds']:.1f} s), "
                f"re-import (no-op) {again['seconds']:.2f} s = "
                f"{n / again['seconds']:,.0f} pairs/s, peak RSS {again['peak_rss_mb']:.0f} MB "
                f"(Django alone {figures['baseline_rss_mb']:.0f} MB)"
            )
            if "copy_seconds" in figures:
                limit = figures["copy_seconds"]
                print(
                    f"  limit, same run: COPY of the same rows into plain tables {limit:.2f} s; "
                    f"import / COPY = {first['seconds'] / limit:.2f}"
                )
            if "metrics_per_second" in figures:
                print(f"  response metrics: {figures['metrics_per_second']:,} responses/s")
            path.unlink()
    return None


if __name__ == "__main__":
    main()
