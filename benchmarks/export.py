"""Time the judgments export (reviews.exports.services.export_pieces: what the download and the
command stream; on PostgreSQL, CSV and tidy lines built by the server, see reviews/exports/sql.py).

    createdb:  psql -h 127.0.0.1 -U postgres -c 'create database evalsite_export'
    migrate:   DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_export \\
                   .venv/bin/python manage.py migrate
    run:       DATABASE_URL=... .venv/bin/python benchmarks/export.py [N_JUDGMENTS]   (100,000)
                   [--format csv|jsonl|tidy] [--python] [--runs 3]

Builds (once per N, reused afterwards: ~11 minutes for 1,000,000) a campaign with N current
judgments (overlap 3, 60 reviewers, the default rubric, two item metadata keys, three per
response: six baseline_meta / candidate_meta columns), exports it to
/dev/null and prints the seconds, the seconds to the first row, and the process's peak RSS
before and after the export. ``--python`` times the row-by-row Python path instead (what SQLite
uses). Run it again after a build: the build's own memory counts in that run's peak.

Beside it, in the same run (alternating, ``--runs`` times each, min / median): the machine's
limit, a ``COPY (SELECT …) TO STDOUT`` of the same rows with the same joins (the judgment's
columns, the item's id, prompt and metadata, both responses' texts and metadata), as plain
columns for CSV and tidy, through ``row_to_json`` for JSONL, planned as PostgreSQL likes.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalsite_export")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from datasets.models import Dataset, Item, Response, System  # noqa: E402
from reviews.exports import services as exports  # noqa: E402
from reviews.exports import sql as export_sql  # noqa: E402
from reviews.exports import writing  # noqa: E402
from reviews.models import Assignment, Campaign, CampaignItem, Judgment, Rubric  # noqa: E402

OVERLAP = 3
N_REVIEWERS = 60
BATCH = 5000
CRITERIA = [
    {"name": "correctness", "kind": "scale", "min": 1, "max": 5, "per": "response"},
    {"name": "refusal_ok", "kind": "binary", "per": "response"},
    {"name": "overall", "kind": "scale", "min": 1, "max": 7, "per": "pair"},
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(n: int) -> Campaign:
    slug = f"bench-export-{n}"
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is not None:
        return campaign
    started = time.perf_counter()
    n_items = -(-n // OVERLAP)
    with transaction.atomic():
        dataset = Dataset.objects.create(name=slug, slug=slug)
        base, _ = System.objects.get_or_create(name="bench-base")
        cand, _ = System.objects.get_or_create(name="bench-next")
        rubric, _ = Rubric.objects.get_or_create(
            name="bench-export", defaults={"criteria": CRITERIA}
        )
        campaign = Campaign.objects.create(
            name=slug, slug=slug, dataset=dataset, baseline=base, candidate=cand, rubric=rubric
        )
        User = get_user_model()
        reviewers = [
            User.objects.get_or_create(
                username=f"bench{r}@example.org", email=f"bench{r}@example.org"
            )[0]
            for r in range(N_REVIEWERS)
        ]
        for start in range(0, n_items, BATCH):
            stop = min(n_items, start + BATCH)
            items = Item.objects.bulk_create(
                Item(
                    dataset=dataset,
                    external_id=f"T-{i:07d}",
                    prompt=f"Question {i}: my parcel has not arrived, order #{i}. What now?",
                    metadata={"category": ("billing", "shipping", "account")[i % 3], "tier": i % 4},
                )
                for i in range(start, stop)
            )
            responses = Response.objects.bulk_create(
                Response(
                    item=item,
                    system=system,
                    text=f"{system.name} answers {item.external_id}: " * 8,
                    metadata={
                        "latency_ms": 400 + item.pk % 900,
                        "tokens": 80 + item.pk % 50,
                        "auto_preference": ("a", "b", "tie")[item.pk % 3],
                    },
                )
                for item in items
                for system in (base, cand)
            )
            cis = CampaignItem.objects.bulk_create(
                CampaignItem(
                    campaign=campaign,
                    item=item,
                    baseline_response=responses[2 * k],
                    candidate_response=responses[2 * k + 1],
                    slots_taken=OVERLAP,
                )
                for k, item in enumerate(items)
            )
            assignments = Assignment.objects.bulk_create(
                Assignment(
                    campaign=campaign,
                    campaign_item=ci,
                    item_id=ci.item_id,
                    reviewer=reviewers[(start + k + j * 7) % N_REVIEWERS],
                    candidate_left=(k + j) % 2 == 0,
                    status="done",
                )
                for k, ci in enumerate(cis)
                for j in range(OVERLAP)
                if (start + k) * OVERLAP + j < n
            )
            now = timezone.now()
            Judgment.objects.bulk_create(
                Judgment(
                    assignment=a,
                    campaign=campaign,
                    item_id=a.item_id,
                    reviewer=a.reviewer,
                    candidate_left=a.candidate_left,
                    preference=("candidate", "baseline", "tie", "both_bad")[a.pk % 4],
                    scores={
                        "correctness": {"baseline": 1 + a.pk % 5, "candidate": 1 + a.pk % 3},
                        "refusal_ok": {"baseline": a.pk % 2, "candidate": 1},
                        "overall": {"pair": 1 + a.pk % 7},
                    },
                    rationale="Clearer steps." if a.pk % 5 else "",
                    submitted_at=now,
                    duration_seconds=20.0 + a.pk % 40,
                    submission_key=f"bench-{a.pk}",
                )
                for a in assignments
            )
    print(f"built {n} judgments in {time.perf_counter() - started:.1f} s")
    return campaign


def export_once(campaign: Campaign, kind: str, python: bool) -> tuple[float, float, int]:
    """(seconds, seconds to the first row, rows) of one export to /dev/null."""
    export = writing.python_pieces if python else exports.export_pieces
    started = time.perf_counter()
    first_row = None
    rows = 0
    pieces = export(campaign, kind=kind, filters={}, pseudonymise=True)
    with open(os.devnull, "w", encoding="utf-8", newline="") as out:
        for text, n in pieces:
            out.write(text)
            if n and first_row is None:
                first_row = time.perf_counter() - started
            rows += n
    return time.perf_counter() - started, first_row or 0.0, rows


def copy_limit(campaign: Campaign, kind: str) -> tuple[float, float]:
    """(seconds, seconds to the first row) of a COPY of the same rows and joins."""
    columns = (
        "j.id, j.reviewer_id, j.preference, j.candidate_left, j.scores, j.rationale,"
        " j.started_at, j.submitted_at, j.duration_seconds, i.external_id, i.prompt,"
        " i.metadata, b.text AS baseline_text, c.text AS candidate_text,"
        " b.metadata AS baseline_meta, c.metadata AS candidate_meta"
    )
    query = (
        f"SELECT {columns} FROM reviews_judgment j"  # noqa: S608 - fixed SQL
        " JOIN datasets_item i ON i.id = j.item_id"
        " JOIN reviews_assignment a ON a.id = j.assignment_id"
        " JOIN reviews_campaignitem ci ON ci.id = a.campaign_item_id"
        " JOIN datasets_response b ON b.id = ci.baseline_response_id"
        " JOIN datasets_response c ON c.id = ci.candidate_response_id"
        f" WHERE j.campaign_id = {int(campaign.pk)} AND j.is_current"
    )
    if kind == "jsonl":
        query = f"SELECT row_to_json(r) FROM ({query}) r"  # noqa: S608 - fixed SQL
    started = time.perf_counter()
    first_row = None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
            for _ in copy:
                if first_row is None:
                    first_row = time.perf_counter() - started
    return time.perf_counter() - started, first_row or 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--format", choices=exports.KINDS, default="csv")
    parser.add_argument("--python", action="store_true", help="the row-by-row Python path")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    campaign = exports.campaign_for_export(build(args.n).slug)
    before = peak_rss_mb()
    ours, limits = [], []
    for _ in range(args.runs):
        ours.append(export_once(campaign, args.format, args.python))
        limits.append(copy_limit(campaign, args.format))
    rows = ours[0][2]
    path = "sql" if export_sql.usable(args.format) and not args.python else "python"
    totals = sorted(seconds for seconds, _, _ in ours)
    firsts = sorted(first for _, first, _ in ours)
    copies = sorted(seconds for seconds, _ in limits)
    print(
        f"{connection.vendor} ({path} path, {args.format}): exported {rows} rows of {args.n} "
        f"judgments in {totals[0]:.2f} / {median(totals):.2f} s (min / median of {args.runs}; "
        f"first row after {firsts[0]:.2f} / {median(firsts):.2f} s); peak RSS {before:.0f} MB "
        f"before, {peak_rss_mb():.0f} MB after"
    )
    print(
        f"limit, same run: COPY of the same rows and joins {copies[0]:.2f} / "
        f"{median(copies):.2f} s; ratio {totals[0] / copies[0]:.2f} / "
        f"{median(totals) / median(copies):.2f}"
    )


if __name__ == "__main__":
    main()
