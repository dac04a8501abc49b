import json
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from datasets.models import Response
from evalsite.queue import wait_for_sends
from reviews import tasks
from reviews.grading import services as grading
from reviews.models import Campaign, Judgment, Report
from reviews.reports import aggregation
from tests import factories

pytestmark = pytest.mark.django_db

REPORT_KEYS = {
    "campaign",
    "baseline",
    "candidate",
    "n_items",
    "n_judgments",
    "n_reviewers",
    "preference",
    "agreement",
    "criteria",
    "position_bias",
    "reviewers",
    "slices",
    "calibration",
    "decision",
    "quality",
}

DECISION_KEYS = {
    "verdict",
    "threshold",
    "basis",
    "probability",
    "criteria",
    "preference",
    "more_labels_needed",
}

# item -> (reviewer 1's preference, reviewer 2's preference)
KNOWN = [("candidate", "candidate"), ("candidate", "baseline"), ("tie", "both_bad")]


def judge(campaign_item, reviewer, preference, **extra):
    return factories.JudgmentFactory(
        assignment__campaign_item=campaign_item,
        assignment__reviewer=reviewer,
        preference=preference,
        duration_seconds=20.0,
        **extra,
    )


def scores(correctness=(4, 3), refusal_ok=(1, 1), overall=5):
    return {
        "correctness": {"baseline": correctness[0], "candidate": correctness[1]},
        "refusal_ok": {"baseline": refusal_ok[0], "candidate": refusal_ok[1]},
        "overall": {"pair": overall},
    }


@pytest.fixture
def known_campaign(db):
    """3 items × 2 reviewers: candidate 3, baseline 1, tie 1, both bad 1; one stale revision."""
    campaign = factories.CampaignFactory(slug="known")
    reviewers = [factories.UserFactory(username=f"judge{i}@example.org") for i in (1, 2)]
    for n, prefs in enumerate(KNOWN):
        item = factories.CampaignItemFactory(campaign=campaign, item__metadata={"region": "eu"})
        for reviewer, preference in zip(reviewers, prefs, strict=True):
            judge(item, reviewer, preference, scores=scores(overall=4 + n))
    stale = Judgment.objects.filter(campaign=campaign).first()
    Judgment.objects.create(
        assignment=stale.assignment,
        campaign=campaign,
        item=stale.item,
        reviewer=stale.reviewer,
        candidate_left=stale.candidate_left,
        preference="baseline",
        submitted_at=stale.submitted_at,
        is_current=False,
        submission_key="stale-revision",
    )
    return campaign


def test_known_campaign_gives_expected_counts_and_win_rate(known_campaign):
    report = aggregation.run_aggregation(campaign_id=known_campaign.pk)

    assert report.status == Report.Status.DONE
    result = report.result
    assert set(result) == REPORT_KEYS
    assert result["campaign"] == "known"
    assert (result["baseline"], result["candidate"]) == ("baseline-model", "candidate-model")
    assert (result["n_items"], result["n_judgments"], result["n_reviewers"]) == (3, 6, 2)
    assert result["preference"]["counts"] == {
        "candidate": 3,
        "baseline": 1,
        "tie": 1,
        "both_bad": 1,
    }
    assert result["preference"]["win_rate"] == pytest.approx(0.75)
    assert result["criteria"]["correctness"]["baseline_mean"] == pytest.approx(4)
    assert result["criteria"]["overall"]["mean"] == pytest.approx(5)
    assert set(result["slices"]["region"]) == {"eu"}
    assert report.n_judgments == 6
    assert report.seconds is not None
    assert report.finished_at is not None
    # No judge columns: no calibration, and the decision rests on the reviewers' own labels.
    assert result["calibration"] == {}
    assert set(result["decision"]) == DECISION_KEYS
    assert result["decision"]["basis"] == "human"


def test_reviewers_appear_only_as_pseudonyms(known_campaign):
    result = aggregation.run_aggregation(campaign_id=known_campaign.pk).result
    names = {row["reviewer"] for row in result["reviewers"]}
    assert len(names) == 2
    assert all(name.startswith("R-") for name in names)
    assert "@" not in json.dumps(result)


def test_build_frames_has_the_stats_columns_and_length_difference(known_campaign):
    item = known_campaign.campaign_items.first()
    Response.objects.filter(pk=item.candidate_response_id).update(text="x" * 50)
    Response.objects.filter(pk=item.baseline_response_id).update(text="x" * 20)

    prefs, scores_frame, item_meta = aggregation.build_frames(known_campaign)

    assert list(prefs.columns) == aggregation.PREFS_COLUMNS
    assert list(scores_frame.columns) == aggregation.SCORES_COLUMNS
    assert list(item_meta.columns) == aggregation.META_COLUMNS
    assert len(prefs) == 6
    assert len(scores_frame) == 6 * 5  # two per-response criteria × 2 systems + one per-pair
    assert set(prefs.loc[prefs["item_id"] == item.item_id, "len_diff"]) == {30.0}
    assert set(item_meta["key"]) == {"region"}


def test_running_twice_stores_one_done_report(known_campaign):
    first = aggregation.run_aggregation(campaign_id=known_campaign.pk)
    second = aggregation.run_aggregation(campaign_id=known_campaign.pk)

    assert first.pk == second.pk
    assert Report.objects.filter(campaign=known_campaign).count() == 1


def test_a_new_judgment_makes_a_new_report(known_campaign):
    first = aggregation.run_aggregation(campaign_id=known_campaign.pk)
    judge(known_campaign.campaign_items.first(), factories.UserFactory(), "candidate")
    second = aggregation.run_aggregation(campaign_id=known_campaign.pk)

    assert second.pk != first.pk
    assert second.result["n_judgments"] == 7
    assert Report.objects.filter(campaign=known_campaign, status="done").count() == 2


def test_a_queued_report_is_claimed_by_the_run(known_campaign):
    queued = Report.objects.create(campaign=known_campaign, status=Report.Status.QUEUED)
    report = aggregation.run_aggregation(campaign_id=known_campaign.pk)
    assert report.pk == queued.pk
    assert report.status == Report.Status.DONE


def test_a_run_whose_worker_died_is_closed_by_the_next_one(known_campaign):
    """A killed worker leaves its report "running"; past Celery's hard time limit it cannot be,
    so the next completed run marks it failed. A recent running report is left alone."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    dead = Report.objects.create(
        campaign=known_campaign, status=Report.Status.RUNNING, started_at=long_ago
    )
    alive = Report.objects.create(
        campaign=known_campaign, status=Report.Status.RUNNING, started_at=timezone.now()
    )
    done = aggregation.run_aggregation(campaign_id=known_campaign.pk)

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert done.status == Report.Status.DONE
    assert dead.status == Report.Status.FAILED
    assert "worker stopped" in dead.error
    assert alive.status == Report.Status.RUNNING


def test_losing_a_concurrent_run_returns_the_winner(known_campaign):
    winner = Report.objects.create(
        campaign=known_campaign,
        status=Report.Status.DONE,
        state_key=aggregation.state_key(known_campaign.pk),
        result={"winner": True},
    )
    # The other run stored its report between our idempotency check and our save.
    with mock.patch.object(aggregation, "_done", side_effect=[None, winner]):
        report = aggregation.run_aggregation(campaign_id=known_campaign.pk)

    assert report.pk == winner.pk
    assert list(Report.objects.filter(campaign=known_campaign)) == [winner]


def test_a_failure_is_recorded_on_the_report(known_campaign):
    with (
        mock.patch.object(aggregation.stats, "compute_report", side_effect=ValueError("boom")),
        pytest.raises(ValueError, match="boom"),
    ):
        aggregation.run_aggregation(campaign_id=known_campaign.pk)

    report = Report.objects.get(campaign=known_campaign)
    assert report.status == Report.Status.FAILED
    assert report.error == "ValueError: boom"


def test_empty_campaign_reports_zeroes(db):
    campaign = factories.CampaignFactory()
    factories.CampaignItemFactory(campaign=campaign)
    result = aggregation.run_aggregation(campaign_id=campaign.pk).result
    assert (result["n_items"], result["n_judgments"], result["n_reviewers"]) == (0, 0, 0)
    assert result["preference"]["win_rate"] is None
    # Nothing to go on: the prior's P(non-inferior) is not reported as a finding.
    assert result["preference"]["p_non_inferior"] is None
    assert result["decision"]["verdict"] == "need_more_labels"
    assert result["decision"]["probability"] is None
    assert result["decision"]["preference"] == {"p_non_inferior": None, "verdict": "uncertain"}


def _human_campaign(candidate_wins: int, n_items: int = 40):
    rubric = factories.RubricFactory(
        criteria=[
            {"name": "correct", "label": "C", "kind": "binary", "per": "response", "critical": True}
        ]
    )
    campaign = factories.CampaignFactory(rubric=rubric, margin=0.1)
    reviewers = [factories.UserFactory() for _ in range(2)]
    for n in range(n_items):
        ci = factories.CampaignItemFactory(campaign=campaign)
        preference = "candidate" if n < candidate_wins else "baseline"
        for reviewer in reviewers:
            judge(ci, reviewer, preference, scores={"correct": {"baseline": 1, "candidate": 1}})
    return campaign


def test_a_campaign_without_judge_columns_gets_a_verdict_from_its_reviewers(db):
    result = aggregation.run_aggregation(campaign_id=_human_campaign(36).pk).result
    decision = result["decision"]
    assert set(decision) == DECISION_KEYS
    assert decision["basis"] == "human"
    assert decision["verdict"] == "migrate"
    assert set(decision["criteria"]) == {"correct"}
    assert decision["criteria"]["correct"]["verdict"] == "pass"
    assert decision["preference"]["p_non_inferior"] == result["preference"]["p_non_inferior"]
    assert decision["probability"] == min(
        decision["preference"]["p_non_inferior"], decision["criteria"]["correct"]["p_non_inferior"]
    )
    assert decision["more_labels_needed"] is None


def test_a_losing_candidate_is_not_migrated_on_human_labels(db):
    result = aggregation.run_aggregation(campaign_id=_human_campaign(4).pk).result
    assert result["decision"]["verdict"] == "do_not_migrate"
    assert result["decision"]["preference"]["verdict"] == "fail"


def test_an_undecided_human_campaign_says_how_many_more_items(db):
    result = aggregation.run_aggregation(campaign_id=_human_campaign(9, n_items=20).pk).result
    decision = result["decision"]
    assert decision["verdict"] == "need_more_labels"
    assert decision["more_labels_needed"] > 0


def test_a_pairwise_judge_is_calibrated_against_the_reviewers_majority(db):
    campaign = _human_campaign(30, n_items=40)
    cis = list(campaign.campaign_items.select_related("item").order_by("pk"))
    for n, ci in enumerate(cis):
        # Right on every labelled item but two, which it calls a tie.
        verdict = campaign.candidate.name if n < 30 else campaign.baseline.name
        ci.item.auto_preference = "tie" if n in (0, 35) else verdict
        ci.item.save(update_fields=["auto_preference"])
    extra = factories.CampaignItemFactory(campaign=campaign)  # judged by the judge only
    extra.item.auto_preference = campaign.candidate.name
    extra.item.save(update_fields=["auto_preference"])

    result = aggregation.run_aggregation(campaign_id=campaign.pk).result

    judged = result["calibration"]["preference"]
    assert {
        "confusion",
        "judge_accuracy",
        "judge_accuracy_ci95",
        "win_rate",
        "win_rate_ci95",
    } <= set(judged)
    assert judged["confusion"]["candidate"]["candidate"] == 29
    assert judged["confusion"]["candidate"]["tie"] == 1
    assert judged["confusion"]["baseline"]["baseline"] == 9
    assert judged["judge_accuracy"] == pytest.approx(38 / 40)
    lo, hi = judged["judge_accuracy_ci95"]
    assert lo < 38 / 40 < hi
    assert judged["n_judge_only"] == 1
    assert judged["win_rate_ci95"][0] < judged["win_rate"] < judged["win_rate_ci95"][1]
    assert result["decision"]["basis"] == "calibrated"
    assert result["decision"]["preference"]["p_non_inferior"] == judged["p_non_inferior"]


def _set_latency(campaign, candidate_ms, baseline_ms=800):
    for ci in campaign.campaign_items.all():
        Response.objects.filter(pk=ci.baseline_response_id).update(
            metadata={"latency_ms": baseline_ms}
        )
        Response.objects.filter(pk=ci.candidate_response_id).update(
            metadata={"latency_ms": candidate_ms + ci.pk % 7}
        )


def test_an_operational_gate_can_stop_a_migration_that_quality_allows(db):
    campaign = _human_campaign(36)
    _set_latency(campaign, candidate_ms=2000)
    campaign.operational_gates = [
        {"measure": "latency_ms", "statistic": "p90", "op": "<=", "limit": 1500.0},
        {"measure": "latency_ms", "statistic": "mean", "op": "<=", "limit": "baseline"},
    ]
    campaign.save(update_fields=["operational_gates"])

    decision = aggregation.run_aggregation(campaign_id=campaign.pk).result["decision"]

    assert decision["criteria"]["correct"]["verdict"] == "pass"  # quality alone would migrate
    p90 = decision["gates"]["p90 latency_ms <= 1500"]
    assert p90["verdict"] == "fail"
    assert p90["probability"] == 0.0
    assert 2000 <= p90["estimate"] <= 2006
    assert p90["ci95"][0] <= p90["estimate"] <= p90["ci95"][1]
    versus = decision["gates"]["mean latency_ms <= baseline"]
    assert versus["estimate"] == pytest.approx(1200, abs=7)
    assert decision["verdict"] == "do_not_migrate"

    _set_latency(campaign, candidate_ms=700)
    decision = aggregation.aggregate(campaign)["decision"]
    assert {g["verdict"] for g in decision["gates"].values()} == {"pass"}
    assert decision["verdict"] == "migrate"


def test_a_segment_that_loses_makes_the_whole_decision_strictest(db):
    rubric = factories.RubricFactory(criteria=[])
    campaign = factories.CampaignFactory(rubric=rubric, margin=0.1, segment_key="region")
    reviewers = [factories.UserFactory() for _ in range(2)]
    for n in range(80):
        region = "eu" if n < 40 else "us"
        ci = factories.CampaignItemFactory(campaign=campaign, item__metadata={"region": region})
        wins = n < 40 or n % 10 == 0  # eu: all for the candidate; us: mostly for the baseline
        for reviewer in reviewers:
            judge(ci, reviewer, "candidate" if wins else "baseline")

    decision = aggregation.run_aggregation(campaign_id=campaign.pk).result["decision"]

    assert decision["segment_key"] == "region"
    assert set(decision["segments"]) == {"eu", "us"}
    assert decision["segments"]["eu"]["verdict"] == "migrate"
    assert decision["segments"]["us"]["verdict"] == "do_not_migrate"
    assert decision["segments"]["eu"]["n_items"] == 40
    assert decision["verdict"] == "do_not_migrate"


def test_automated_verdicts_are_calibrated_against_human_majority(db):
    rubric = factories.RubricFactory(
        criteria=[
            {"name": "refusal_ok", "label": "R", "kind": "binary", "per": "response"},
            {
                "name": "correctness",
                "label": "C",
                "kind": "scale",
                "min": 1,
                "max": 5,
                "per": "response",
                "pass_threshold": 4,
                "critical": True,
            },
        ]
    )
    campaign = factories.CampaignFactory(rubric=rubric)
    reviewer = factories.UserFactory()
    items = [factories.CampaignItemFactory(campaign=campaign) for _ in range(6)]
    for ci in items[:4]:  # human labels on 4 items: every response passes refusal_ok
        judge(ci, reviewer, "candidate", scores={"refusal_ok": {"baseline": 1, "candidate": 1}})
    verdicts = ["pass", "1", "true", "fail", "pass", "0"]
    for ci, verdict in zip(items, verdicts, strict=True):
        for pk in (ci.baseline_response_id, ci.candidate_response_id):
            Response.objects.filter(pk=pk).update(metadata={"auto_refusal_ok": verdict})

    result = aggregation.run_aggregation(campaign_id=campaign.pk).result

    assert set(result["calibration"]) == {"refusal_ok"}  # correctness has no auto_ verdicts
    assert result["calibration"]["refusal_ok"]["judge"] == "auto_refusal_ok"
    counts = result["calibration"]["refusal_ok"]["candidate"]
    assert (counts["tp"], counts["fn"], counts["fp"], counts["tn"]) == (3, 1, 0, 0)
    assert (counts["n_judge_only"], counts["k_judge_positive"]) == (2, 1)
    assert result["calibration"]["refusal_ok"]["verdict"] in {"pass", "fail", "uncertain"}
    assert result["decision"]["verdict"] in {"migrate", "do_not_migrate", "need_more_labels"}


def _refusal_campaign(direction="higher_is_better", stand_in="refusal_metric"):
    """8 items, one reviewer. Candidate responses 0-3 refuse (metric), 4-7 do not; the reviewer
    labels refusal_ok on items 0-5: the refusals of items 0-2 were unwarranted (0), item 3's was
    due (1), items 4-5 answered well (1). Items 6-7 are judge-only."""
    criterion = {"name": "refusal_ok", "label": "R", "kind": "binary", "per": "response"}
    criterion |= {"direction": direction, "critical": True}
    if stand_in:
        criterion["judge"] = stand_in
    campaign = factories.CampaignFactory(rubric=factories.RubricFactory(criteria=[criterion]))
    reviewer = factories.UserFactory()
    items = [factories.CampaignItemFactory(campaign=campaign) for _ in range(8)]
    human = [0, 0, 0, 1, 1, 1]
    for n, ci in enumerate(items):
        Response.objects.filter(pk=ci.baseline_response_id).update(metrics={"refusal": False})
        Response.objects.filter(pk=ci.candidate_response_id).update(metrics={"refusal": n < 4})
        if n < len(human):
            label = {"baseline": 1, "candidate": human[n]}
            judge(ci, reviewer, "baseline", scores={"refusal_ok": label})
    return campaign, items


def test_the_refusal_metric_stands_in_as_the_judge_of_a_refusal_criterion(db):
    campaign, _ = _refusal_campaign()

    result = aggregation.run_aggregation(campaign_id=campaign.pk).result

    entry = result["calibration"]["refusal_ok"]
    assert entry["judge"] == "refusal_metric"
    # A detected refusal reads as "fail": human fail & refused = tn (3), the due refusal = fn (1),
    # the answered items = tp (2); items 6-7 answered, judge-only, read as passes.
    c = entry["candidate"]
    assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (2, 1, 0, 3)
    assert (c["n_judge_only"], c["k_judge_positive"]) == (2, 2)
    assert c["sensitivity"] == pytest.approx(2 / 3)
    assert c["specificity"] == pytest.approx(1.0)
    b = entry["baseline"]
    assert (b["tp"], b["fn"], b["fp"], b["tn"], b["n_judge_only"]) == (6, 0, 0, 0, 2)
    assert result["decision"]["basis"] == "calibrated"
    assert set(result["decision"]["criteria"]) == {"refusal_ok"}


def test_a_lower_is_better_refusal_criterion_reads_a_refusal_as_its_positive_label(db):
    campaign, _ = _refusal_campaign(direction="lower_is_better")

    result = aggregation.run_aggregation(campaign_id=campaign.pk).result

    c = result["calibration"]["refusal_ok"]["candidate"]
    # Labels of 1 now mean "refused where none was due": refused items are judge positives.
    assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (1, 2, 3, 0)
    assert (c["n_judge_only"], c["k_judge_positive"]) == (2, 0)


def test_the_pairs_files_own_verdicts_win_over_the_refusal_metric(db):
    campaign, items = _refusal_campaign()
    for ci in items:
        for pk in (ci.baseline_response_id, ci.candidate_response_id):
            Response.objects.filter(pk=pk).update(metadata={"auto_refusal_ok": "pass"})

    entry = aggregation.aggregate(campaign)["calibration"]["refusal_ok"]

    assert entry["judge"] == "auto_refusal_ok"
    assert entry["candidate"]["k_judge_positive"] == 2


def test_without_the_rubric_key_the_refusal_metric_is_no_judge(db):
    campaign, _ = _refusal_campaign(stand_in=None)

    result = aggregation.aggregate(campaign)

    assert result["calibration"] == {}
    assert result["decision"]["basis"] == "human"


# ----------------------------------------------------------------------------- tasks


def test_task_is_a_thin_call_into_the_service(known_campaign):
    report_id = tasks.aggregate_campaign.run(known_campaign.pk)
    assert Report.objects.get(pk=report_id).status == Report.Status.DONE
    assert tasks.aggregate_campaign.name == "reviews.aggregate_campaign"


def test_grading_enqueues_the_aggregation_on_commit(
    known_campaign, settings, django_capture_on_commit_callbacks
):
    settings.AGGREGATE_EVERY_N_JUDGMENTS = 1
    Campaign.objects.filter(pk=known_campaign.pk).update(judgments_since_report=1)
    with (
        mock.patch.object(tasks.aggregate_campaign, "apply_async") as send,
        django_capture_on_commit_callbacks() as callbacks,
    ):
        grading.after_judgment_saved(known_campaign)
        send.assert_not_called()  # not before the commit
    assert len(callbacks) == 1
    with mock.patch.object(tasks.aggregate_campaign, "apply_async") as send:
        callbacks[0]()
        wait_for_sends()  # with a broker the send leaves from a background thread
    send.assert_called_once_with(args=(known_campaign.pk,), kwargs={}, retry=False)


def test_nightly_task_queues_every_active_campaign(known_campaign):
    factories.CampaignFactory(status=Campaign.Status.CLOSED)
    with mock.patch.object(tasks.aggregate_campaign, "apply_async") as send:
        assert tasks.aggregate_active_campaigns.run() == 1
    send.assert_called_once_with(args=(known_campaign.pk,), kwargs={}, retry=False)


def test_a_conflict_without_a_visible_winner_fails_the_report(known_campaign):
    key = aggregation.state_key(known_campaign.pk)
    Report.objects.create(campaign=known_campaign, status=Report.Status.DONE, state_key=key)
    with (
        mock.patch.object(aggregation, "_done", return_value=None),
        pytest.raises(IntegrityError),
    ):
        aggregation.run_aggregation(campaign_id=known_campaign.pk)
    failed = Report.objects.get(campaign=known_campaign, status=Report.Status.FAILED)
    assert "IntegrityError" in failed.error


# ----------------------------------------------------------------------------- command


def test_command_prints_the_report_json(known_campaign, capsys):
    call_command("aggregate", "known", "--json")
    result = json.loads(capsys.readouterr().out)
    assert set(result) == REPORT_KEYS
    assert result["n_judgments"] == 6
    assert Report.objects.filter(campaign=known_campaign, status="done").count() == 1


def test_command_prints_a_summary(known_campaign, capsys):
    call_command("aggregate", "known")
    out = capsys.readouterr().out
    assert "6 judgments on 3 items by 2 reviewers" in out
    assert "win rate: 0.750" in out


def test_command_rejects_an_unknown_slug(db):
    with pytest.raises(CommandError, match="No campaign"):
        call_command("aggregate", "nope")


def test_postgres_copy_path_reads_the_same_frames_as_the_orm_path(known_campaign):
    from django.db import connection

    from tests.conftest import require_service

    require_service(
        "this test compares the PostgreSQL COPY path", connection.vendor == "postgresql"
    )
    rubric = known_campaign.rubric.criteria
    fast = aggregation._judgment_frames_copy(known_campaign.pk, rubric)
    slow = aggregation._judgment_frames_orm(known_campaign.pk)
    assert fast[2] == slow[2]  # same state key
    columns = ["item_id", "reviewer_id", "preference", "candidate_left", "duration_seconds"]
    assert (
        fast[0][columns]
        .reset_index(drop=True)
        .astype(str)
        .equals(slow[0][columns].reset_index(drop=True).astype(str))
    )

    def tidy(flat):
        return sorted(
            zip(
                flat["row"],
                flat["criterion"].astype(str),
                flat["target"].astype(str),
                flat["value"],
                strict=True,
            )
        )

    assert tidy(fast[1]) == tidy(slow[1])


def test_imported_judgments_stay_out_of_the_position_bias(known_campaign):
    graded = aggregation.aggregate(known_campaign)["position_bias"]["n"]
    assert graded > 0
    Judgment.objects.filter(campaign=known_campaign).update(
        source="imported", placement_known=False
    )
    assert aggregation.aggregate(known_campaign)["position_bias"] == {
        "left_rate": None,
        "n": 0,
        "p_value": None,
    }


def test_postgres_copy_path_reads_the_same_items_as_the_orm_path(known_campaign):
    from django.db import connection

    from tests.conftest import require_service

    require_service(
        "this test compares the PostgreSQL COPY path", connection.vendor == "postgresql"
    )
    criteria = [
        {"name": "refusal_ok", "kind": "binary", "per": "response", "judge": "refusal_metric"}
    ]
    Response.objects.filter(item__in=known_campaign.campaign_items.values("item")).update(
        metadata={"auto_refusal_ok": "pass"}, metrics={"refusal": True}
    )
    fast_items, fast_meta = aggregation._item_frames_copy(known_campaign.pk, criteria)
    slow_items = aggregation._item_rows(known_campaign, criteria)
    slow_meta = aggregation._item_meta(slow_items)
    columns = ["item_id", "len_diff", "b0", "c0", "rb0", "rc0"]
    for frame in (fast_items, slow_items):
        frame["len_diff"] = frame["len_diff"].astype(float)
    assert sorted(map(tuple, fast_items[columns].astype(str).to_numpy())) == sorted(
        map(tuple, slow_items[columns].astype(str).to_numpy())
    )
    assert sorted(map(tuple, fast_meta.astype(str).to_numpy())) == sorted(
        map(tuple, slow_meta.astype(str).to_numpy())
    )


def test_report_names_reviewers_with_the_same_pseudonyms_as_the_exports(known_campaign):
    from reviews.exports.writing import reviewer_pseudonym

    named = {row["reviewer"] for row in aggregation.aggregate(known_campaign)["reviewers"]}
    ids = Judgment.objects.filter(campaign=known_campaign).values_list("reviewer_id", flat=True)
    assert named == {reviewer_pseudonym(pk) for pk in ids}


def test_the_report_from_the_copy_path_is_the_report_from_the_orm_path(known_campaign):
    """The frames' loading on PostgreSQL (COPY, arrays of their final size) against the
    row-by-row ORM loading on the same data: the same report, value for value."""
    from django.db import connection

    from tests.conftest import require_service

    require_service("this test compares the COPY loading", connection.vendor == "postgresql")
    loaded_by_copy = aggregation.aggregate(known_campaign)
    with mock.patch.object(
        aggregation,
        "_judgment_frames",
        lambda campaign_id, rubric: aggregation._judgment_frames_orm(campaign_id),
    ):
        loaded_by_orm = aggregation.aggregate(known_campaign)
    assert json.dumps(loaded_by_copy, sort_keys=True) == json.dumps(loaded_by_orm, sort_keys=True)
