"""Time pull-mode claims (reviews.grading.pull) against the size of the pool.

    psql -h 127.0.0.1 -U postgres -c 'create database evalsite_claims'
    .venv/bin/python benchmarks/claims.py --open-items 12000 \\
        [--database-url postgres://postgres@127.0.0.1:5432/evalsite_claims]
        [--reviewers 100] [--overlap 3] [--claims 3000] [--workers 2]

Builds (once per N, reused and reset afterwards) a pull campaign of N open items with
``--overlap`` slots each and ``--reviewers`` reviewers on its roster, in SQL (1,000,000 items in
about a minute). ``--workers`` processes then share the reviewers; each reviewer in turn asks for
their next item (a claim: nothing is pending) and answers it, until ``--claims`` claims were
made (after ``--warmup`` claims that are not timed, followed by the ANALYZE that autovacuum
would have run by then: it is off on the machine measured, and plans made with statistics of an
empty assignments table scan every assignment of the campaign). Each claim is timed as the view
calls it (``pull_next_assignment``: the pending lookup, the campaign and roster read, the expiry
sweep, the claim). Beside it, the machine's limit in
the same run: one indexed lookup of a campaign item by id, from this process.
The last line is ``claim p50 X ms p95 Y ms``.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark")


def _setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def build(n: int, n_reviewers: int, overlap: int) -> int:
    """The campaign's id: made once per (N, reviewers, k), reset to no claims afterwards."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from datasets.models import Dataset, System
    from reviews.campaigns.rubrics import get_or_create_default_rubric
    from reviews.models import Assignment, Campaign, CampaignItem, Judgment

    call_command("migrate", verbosity=0)
    slug = f"bench-claims-{n}-{n_reviewers}-{overlap}"
    campaign = Campaign.objects.filter(slug=slug).first()
    started = time.perf_counter()
    if campaign is not None:
        with transaction.atomic():
            Judgment.objects.filter(campaign=campaign).delete()
            Assignment.objects.filter(campaign=campaign).delete()
            CampaignItem.objects.filter(campaign=campaign, slots_taken__gt=0).update(slots_taken=0)
        print(f"reset the campaign of {n:,} items in {time.perf_counter() - started:.1f} s")
    else:
        with transaction.atomic():
            dataset = Dataset.objects.create(name=slug, slug=slug)
            base, _ = System.objects.get_or_create(name="bench-claims-base")
            cand, _ = System.objects.get_or_create(name="bench-claims-next")
            campaign = Campaign.objects.create(
                name=slug, slug=slug, dataset=dataset, baseline=base, candidate=cand,
                rubric=get_or_create_default_rubric(), overlap=overlap, mode="pull", seed=11,
            )  # fmt: skip
            User = get_user_model()
            reviewers = [
                User.objects.get_or_create(username=f"claims{r}@example.org")[0]
                for r in range(n_reviewers)
            ]
            campaign.roster.add(*reviewers)
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO datasets_item (dataset_id, external_id, prompt, context,"
                    " reference, auto_preference, metadata) SELECT %s, 'C-' || g, 'Question ' || g,"
                    " '', '', '', '{}' FROM generate_series(1, %s) g",
                    [dataset.pk, n],
                )
                for system in (base, cand):
                    cursor.execute(
                        "INSERT INTO datasets_response (item_id, system_id, text, metadata)"
                        " SELECT i.id, %s, 'An answer to ' || i.external_id, '{}'"
                        " FROM datasets_item i WHERE i.dataset_id = %s",
                        [system.pk, dataset.pk],
                    )
                cursor.execute(
                    "INSERT INTO reviews_campaignitem (campaign_id, item_id, baseline_response_id,"
                    " candidate_response_id, slots_taken, random_key)"
                    " SELECT %s, i.id, b.id, c.id, 0, hashtext(i.id::text) & 2147483647"
                    " FROM datasets_item i"
                    " JOIN datasets_response b ON b.item_id = i.id AND b.system_id = %s"
                    " JOIN datasets_response c ON c.item_id = i.id AND c.system_id = %s"
                    " WHERE i.dataset_id = %s",
                    [campaign.pk, base.pk, cand.pk, dataset.pk],
                )
        print(f"built a pull campaign of {n:,} open items in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        for table in ("reviews_campaignitem", "reviews_assignment", "reviews_judgment"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return campaign.pk


def work(args: tuple) -> list[float]:
    """One process: its reviewers take turns claiming and answering; the claims' seconds."""
    database_url, campaign_id, reviewer_ids, n_claims = args
    _setup(database_url)
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from reviews.grading import pull
    from reviews.models import Assignment, Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    reviewers = list(get_user_model().objects.filter(pk__in=reviewer_ids))
    timings: list[float] = []
    while len(timings) < n_claims:
        for reviewer in reviewers:
            started = time.perf_counter()
            claimed = pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
            timings.append(time.perf_counter() - started)
            if claimed is None:
                return timings
            Assignment.objects.filter(pk=claimed.pk).update(
                status=Assignment.Status.DONE, completed_at=timezone.now()
            )
    return timings


def indexed_lookup_ms(campaign_id: int, runs: int = 2000) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id) FROM reviews_campaignitem WHERE campaign_id = %s",
            [campaign_id],
        )
        low, high = cursor.fetchone()
        times = []
        for i in range(runs):
            started = time.perf_counter()
            cursor.execute(
                "SELECT item_id FROM reviews_campaignitem WHERE id = %s",
                [low + (i * 7919) % (high - low + 1)],
            )
            cursor.fetchone()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open-items", type=int, required=True)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalsite_claims"
        ),
    )
    parser.add_argument("--reviewers", type=int, default=100)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    _setup(args.database_url)
    from django.db import connection

    from reviews.models import Campaign

    campaign_id = build(args.open_items, args.reviewers, args.overlap)
    reviewer_ids = list(
        Campaign.objects.get(pk=campaign_id).roster.order_by("pk").values_list("pk", flat=True)
    )
    connection.close()  # the workers open their own
    shares = [reviewer_ids[w :: args.workers] for w in range(args.workers)]
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool:
        share = -(-args.warmup // args.workers)
        pool.map(work, [(args.database_url, campaign_id, ids, share) for ids in shares])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reviews_assignment")
        cursor.execute("ANALYZE reviews_campaignitem")
    connection.close()
    per_worker = -(-args.claims // args.workers)
    started = time.perf_counter()
    with context.Pool(args.workers) as pool:
        results = pool.map(
            work, [(args.database_url, campaign_id, share, per_worker) for share in shares]
        )
    wall = time.perf_counter() - started
    timings = sorted(t * 1000 for result in results for t in result)
    p50 = statistics.median(timings)
    p95 = timings[int(0.95 * (len(timings) - 1))]
    limit = indexed_lookup_ms(campaign_id)
    print(
        f"{len(timings):,} claims by {len(reviewer_ids)} reviewers in {args.workers} processes, "
        f"{args.open_items:,} open items, k = {args.overlap}: {wall:.1f} s; "
        f"p99 {timings[int(0.99 * (len(timings) - 1))]:.2f} ms, max {timings[-1]:.1f} ms"
    )
    print(
        f"limit, same run: one indexed lookup p50 {limit:.3f} ms; "
        f"ratio p50 {p50 / limit:.0f}x, p95 {p95 / limit:.0f}x"
    )
    print(f"claim p50 {p50:.2f} ms p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
