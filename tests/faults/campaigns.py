"""A campaign with tens of thousands of judgments, built inside PostgreSQL in a few seconds.

Real rows, not a slowed-down aggregation: items, both systems' responses (with an automated
verdict to calibrate), campaign items, k = 3 assignments per item and one current judgment per
assignment with scores for every criterion of the default rubric.
"""

from contextlib import suppress

from django.db import DatabaseError, connection

from reviews.models import Campaign
from tests import factories

OVERLAP = 3
N_REVIEWERS = 30


def big_campaign(n_items: int, *, seed: float = 0.42) -> Campaign:
    campaign = factories.CampaignFactory(overlap=OVERLAP, seed=7)
    reviewers = [
        factories.UserFactory(username=f"fault-rev{i}@example.org").pk for i in range(N_REVIEWERS)
    ]
    params = {
        "dataset": campaign.dataset_id,
        "campaign": campaign.pk,
        "baseline": campaign.baseline_id,
        "candidate": campaign.candidate_id,
        "n_items": n_items,
        "reviewers": reviewers,
        "overlap": OVERLAP,
    }
    with connection.cursor() as cursor:
        # The rows are consistent by construction: skipping the foreign-key triggers for these
        # few statements makes the build three times faster (test database only; it needs a
        # superuser, and without one the build is merely slower).
        with suppress(DatabaseError):
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute("SELECT setseed(%s)", [seed])
            for statement in BUILD:
                cursor.execute(statement, params)
        finally:
            with suppress(DatabaseError):
                cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE reviews_assignment, reviews_judgment")
    return campaign


BUILD = [
    """
    INSERT INTO datasets_item
        (dataset_id, external_id, prompt, context, reference, auto_preference, metadata)
    SELECT %(dataset)s, 'F-' || g, 'Question ' || g || ': where is my parcel?', '', '', '',
           jsonb_build_object('category', (ARRAY['billing', 'shipping', 'account'])[g %% 3 + 1])
    FROM generate_series(1, %(n_items)s) g
    """,
    """
    INSERT INTO datasets_response (item_id, system_id, text, metadata)
    SELECT i.id, s.system, repeat('answer ', (10 + (i.id * s.k) %% 90)::int),
           jsonb_build_object('auto_refusal_ok', CASE WHEN random() < 0.8 THEN 'pass'
                                                     ELSE 'fail' END)
    FROM datasets_item i
    CROSS JOIN (VALUES (%(baseline)s, 7), (%(candidate)s, 13)) AS s (system, k)
    WHERE i.dataset_id = %(dataset)s
    """,
    """
    INSERT INTO reviews_campaignitem
        (campaign_id, item_id, baseline_response_id, candidate_response_id, slots_taken,
         random_key)
    SELECT %(campaign)s, i.id, b.id, c.id, %(overlap)s, floor(random() * 2147483647)::int
    FROM datasets_item i
    JOIN datasets_response b ON b.item_id = i.id AND b.system_id = %(baseline)s
    JOIN datasets_response c ON c.item_id = i.id AND c.system_id = %(candidate)s
    WHERE i.dataset_id = %(dataset)s
    """,
    """
    INSERT INTO reviews_assignment
        (token, campaign_id, campaign_item_id, item_id, reviewer_id, candidate_left, position,
         rubric_version, instructions_version, status, source, skip_reason, flagged, flag_note,
         created_at, completed_at)
    SELECT substr(md5(ci.id || '/' || slot || random()), 1, 22), %(campaign)s, ci.id,
           ci.item_id,
           r.ids[1 + (ci.id * 7 + slot) %% cardinality(r.ids)],
           random() < 0.5, ci.id * %(overlap)s + slot, 1, 1, 'done', 'grading', '', false, '',
           now(), now()
    FROM reviews_campaignitem ci
    CROSS JOIN generate_series(0, %(overlap)s - 1) slot
    CROSS JOIN (SELECT %(reviewers)s::bigint[] AS ids) r
    WHERE ci.campaign_id = %(campaign)s
    """,
    """
    INSERT INTO reviews_judgment
        (assignment_id, campaign_id, item_id, reviewer_id, candidate_left, preference, scores,
         rationale, submitted_at, duration_seconds, revision, is_current, source, submission_key)
    SELECT a.id, a.campaign_id, a.item_id, a.reviewer_id, a.candidate_left,
           (ARRAY['candidate', 'candidate', 'baseline', 'tie', 'both_bad'])
             [1 + floor(random() * 5)],
           jsonb_build_object(
             'correctness', jsonb_build_object('baseline', 1 + floor(random() * 5)::int,
                                               'candidate', 1 + floor(random() * 5)::int),
             'refusal_ok', jsonb_build_object('baseline', (random() < 0.85)::int,
                                              'candidate', (random() < 0.85)::int),
             'overall', jsonb_build_object('pair', 1 + floor(random() * 7)::int)),
           '', now(), 5 + random() * 120, 1, true, 'grading', 'fault-' || a.id
    FROM reviews_assignment a
    WHERE a.campaign_id = %(campaign)s
    """,
]
