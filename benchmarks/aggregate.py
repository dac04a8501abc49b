"""Time `reviews.reports.aggregation.run_aggregation` on a synthetic campaign in the configured
database.

    DATABASE_URL=postgres://... python benchmarks/aggregate.py [N_JUDGMENTS]   (default 100,000)

Builds a fresh campaign (overlap 3, 60 reviewers, a rubric of 4 criteria, automated verdicts on
one binary criterion) with bulk_create, and COPY on PostgreSQL for assignments and judgments; then
times building the frames alone and the whole aggregation (frames, statistics, calibration,
storing the Report). Prints the seconds of each step and the peak RSS of the process.
"""

import json
import os
import resource
import secrets
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "benchmark")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from datasets.models import Dataset, Item, Response, System  # noqa: E402
from reviews.models import Assignment, Campaign, CampaignItem, Judgment, Rubric  # noqa: E402
from reviews.reports import aggregation  # noqa: E402

OVERLAP = 3
N_REVIEWERS = 60
BATCH = 5_000
CATEGORIES = ("billing", "shipping", "account", "returns", "other")
PREFERENCES = np.array(["candidate", "baseline", "tie", "both_bad"])
RUBRIC = [
    {
        "name": "correctness",
        "label": "Correct?",
        "kind": "scale",
        "min": 1,
        "max": 5,
        "per": "response",
        "pass_threshold": 4,
    },
    {
        "name": "helpfulness",
        "label": "Helpful?",
        "kind": "scale",
        "min": 1,
        "max": 5,
        "per": "response",
    },
    {
        "name": "refusal_ok",
        "label": "Refuses only when due",
        "kind": "binary",
        "per": "response",
        "critical": True,
    },
    {
        "name": "overall",
        "label": "Better overall?",
        "kind": "scale",
        "min": 1,
        "max": 7,
        "per": "pair",
    },
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_rows(model, columns: list[str], rows) -> None:
    """COPY on PostgreSQL, bulk_create elsewhere; `columns` are database column names."""
    if connection.vendor == "postgresql":
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    objs = (model(**{attnames[c]: v for c, v in zip(columns, row, strict=True)}) for row in rows)
    batch = []
    for obj in objs:
        batch.append(obj)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            batch.clear()
    model.objects.bulk_create(batch)


def build(n_judgments: int, seed: int = 1) -> Campaign:
    rng = np.random.default_rng(seed)
    n_items = -(-n_judgments // OVERLAP)
    tag = f"{int(time.time())}-{secrets.token_hex(3)}"
    now = timezone.now()
    users = get_user_model()
    reviewers = [
        users.objects.get_or_create(
            username=f"bench{r}@example.org", email=f"bench{r}@example.org"
        )[0].pk
        for r in range(N_REVIEWERS)
    ]
    with transaction.atomic():
        dataset = Dataset.objects.create(name=f"bench {tag}", slug=f"bench-{tag}")
        baseline = System.objects.get_or_create(name="bench-baseline")[0]
        candidate = System.objects.get_or_create(name="bench-candidate")[0]
        rubric = Rubric.objects.create(name=f"bench {tag}", criteria=RUBRIC)
        campaign = Campaign.objects.create(
            name=f"Bench {tag}",
            slug=f"bench-{tag}",
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=rubric,
            overlap=OVERLAP,
            seed=seed,
        )
        items = []
        for start in range(0, n_items, BATCH):
            items += Item.objects.bulk_create(
                Item(
                    dataset=dataset,
                    external_id=f"I-{i:07d}",
                    prompt=f"Question {i}: where is my parcel?",
                    metadata={"category": CATEGORIES[i % len(CATEGORIES)]},
                )
                for i in range(start, min(start + BATCH, n_items))
            )
        judge = rng.random((n_items, 2)) < 0.8
        length = rng.integers(50, 800, (n_items, 2))
        responses = {}
        for system, side in ((baseline, 0), (candidate, 1)):
            made = []
            for start in range(0, n_items, BATCH):
                made += Response.objects.bulk_create(
                    Response(
                        item=items[i],
                        system=system,
                        text="x" * int(length[i, side]),
                        metadata={"auto_refusal_ok": "pass" if judge[i, side] else "fail"},
                    )
                    for i in range(start, min(start + BATCH, n_items))
                )
            responses[side] = made
        campaign_items = []
        for start in range(0, n_items, BATCH):
            campaign_items += CampaignItem.objects.bulk_create(
                CampaignItem(
                    campaign=campaign,
                    item=items[i],
                    baseline_response=responses[0][i],
                    candidate_response=responses[1][i],
                    slots_taken=OVERLAP,
                )
                for i in range(start, min(start + BATCH, n_items))
            )
        item_of = np.repeat(np.arange(n_items), OVERLAP)[:n_judgments]
        slot = np.tile(np.arange(OVERLAP), n_items)[:n_judgments]
        reviewer_of = (item_of * 7 + slot) % N_REVIEWERS
        left = rng.random(n_judgments) < 0.5
        copy_rows(
            Assignment,
            [
                "token",
                "campaign_id",
                "campaign_item_id",
                "item_id",
                "reviewer_id",
                "candidate_left",
                "position",
                "rubric_version",
                "instructions_version",
                "status",
                "source",
                "skip_reason",
                "flagged",
                "flag_note",
                "created_at",
                "completed_at",
            ],
            (
                (
                    secrets.token_urlsafe(16),
                    campaign.pk,
                    campaign_items[i].pk,
                    items[i].pk,
                    reviewers[reviewer_of[j]],
                    bool(left[j]),
                    j,
                    1,
                    1,
                    "done",
                    "grading",
                    "",
                    False,
                    "",
                    now,
                    now,
                )
                for j, i in enumerate(item_of.tolist())
            ),
        )
        assignment_ids = {
            (item, reviewer): pk
            for pk, item, reviewer in Assignment.objects.filter(campaign=campaign).values_list(
                "pk", "item_id", "reviewer_id"
            )
        }
        quality = rng.normal(0.1, 1.0, n_items)[item_of]
        draw = rng.random(n_judgments)
        wins = rng.random(n_judgments) < 1 / (1 + np.exp(-quality))
        preference = PREFERENCES[
            np.where(draw < 0.15, 2, np.where(draw < 0.2, 3, np.where(wins, 0, 1)))
        ]
        score = rng.integers(1, 6, (n_judgments, 4))
        refusal = rng.random((n_judgments, 2)) < 0.85
        overall = np.clip(np.round(4 + quality + rng.normal(0, 1, n_judgments)), 1, 7).astype(int)
        seconds = rng.gamma(2.0, 30.0, n_judgments)
        copy_rows(
            Judgment,
            [
                "assignment_id",
                "campaign_id",
                "item_id",
                "reviewer_id",
                "candidate_left",
                "preference",
                "scores",
                "rationale",
                "submitted_at",
                "duration_seconds",
                "revision",
                "is_current",
                "source",
                "submission_key",
            ],
            (
                (
                    assignment_ids[(items[i].pk, reviewers[reviewer_of[j]])],
                    campaign.pk,
                    items[i].pk,
                    reviewers[reviewer_of[j]],
                    bool(left[j]),
                    str(preference[j]),
                    json.dumps(
                        {
                            "correctness": {
                                "baseline": int(score[j, 0]),
                                "candidate": int(score[j, 1]),
                            },
                            "helpfulness": {
                                "baseline": int(score[j, 2]),
                                "candidate": int(score[j, 3]),
                            },
                            "refusal_ok": {
                                "baseline": int(refusal[j, 0]),
                                "candidate": int(refusal[j, 1]),
                            },
                            "overall": {"pair": int(overall[j])},
                        }
                    ),
                    "",
                    now,
                    float(seconds[j]),
                    1,
                    True,
                    "grading",
                    f"bench-{tag}-{j}",
                )
                for j, i in enumerate(item_of.tolist())
            ),
        )
    return campaign


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    started = time.perf_counter()
    # --reuse: time an earlier run's campaign of that size instead of building another one.
    reused = "--reuse" in sys.argv and next(
        (
            c
            for c in Campaign.objects.order_by("-pk")
            if Judgment.objects.filter(campaign=c, is_current=True).count() == n
        ),
        None,
    )
    campaign = reused or build(n)
    built = time.perf_counter()
    print(f"database: {connection.vendor}; {n:,} judgments, overlap {OVERLAP}, 4 criteria")
    print(f"build campaign: {built - started:.1f} s (rss {peak_rss_mb():.0f} MB)")

    prefs, scores, item_meta = aggregation.build_frames(campaign)
    framed = time.perf_counter()
    print(
        f"build_frames: {framed - built:.2f} s ({len(prefs):,} prefs, {len(scores):,} scores, "
        f"{len(item_meta):,} item_meta rows; peak rss {peak_rss_mb():.0f} MB)"
    )
    del prefs, scores, item_meta

    report = aggregation.run_aggregation(campaign_id=campaign.pk)
    done = time.perf_counter()
    result = report.result
    print(
        f"run_aggregation: {done - framed:.2f} s (report {report.pk} {report.status}, "
        f"win rate {result['preference']['win_rate']:.4f}, decision "
        f"{result['decision']['verdict']}; peak rss {peak_rss_mb():.0f} MB)"
    )
    again = time.perf_counter()
    aggregation.run_aggregation(campaign_id=campaign.pk)
    print(f"second run (idempotent, unchanged state): {time.perf_counter() - again:.3f} s")


if __name__ == "__main__":
    main()
