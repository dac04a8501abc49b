"""Reviewer quality (issue #16): gold items and flipped repeats in queues, qualification and
pausing, per-reviewer quality in the report and on the campaign page, and adjudication."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from datasets.models import Item
from reviews.campaigns import batches, planning, services
from reviews.models import Adjudication, Assignment, AuditEvent, Campaign, Judgment, ReviewerPause
from reviews.reports import aggregation, quality
from tests import factories
from tests.reviews.conftest import add_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold_campaign(lead):
    """gold_campaign(n_live, n_gold, **create_campaign kwargs): gold items expect the candidate."""

    def build(n_live=40, n_gold=10, **kw):
        dataset = factories.DatasetFactory()
        baseline = factories.SystemFactory(name="acme-base")
        candidate = factories.SystemFactory(name="acme-next")
        items = add_items(dataset, [baseline, candidate], n_live + n_gold, categories=())
        golds = ["acme-next", "candidate"]  # a system's name or a role
        for i, item in enumerate(items[n_live:]):
            item.gold, item.gold_note = golds[i % 2], "Only the candidate answers the question."
        Item.objects.bulk_update(items[n_live:], ["gold", "gold_note"])
        return services.create_campaign(
            name=kw.pop("name", "Support quality"),
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=factories.RubricFactory(criteria=[]),
            seed=kw.pop("seed", 11),
            actor=lead,
            **kw,
        )

    return build


def queue_of(campaign, reviewer):
    return list(
        Assignment.objects.filter(campaign=campaign, reviewer=reviewer)
        .order_by("position")
        .values_list("kind", "item_id", "candidate_left", "position", "token")
    )


# Planning (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_mixing_never_puts_two_gold_in_a_row_and_repeats_come_later_flipped(seed):
    live = list(range(60))
    queue = planning.mix_quality_items(
        live, gold=[f"g{i}" for i in range(30)], gold_rate=0.2, repeat_rate=0.1, seed=seed
    )
    kinds = [entry.kind for entry in queue]
    assert "gold gold" not in " ".join(kinds)
    assert kinds.count("gold") == round(60 * 0.2 / 0.8)  # 15 gold make 20% of 75 live+gold
    assert [e.item_id for e in queue if e.kind == "live"] == live  # live order kept
    where = {}
    for index, entry in enumerate(queue):
        if entry.kind == "live":
            where[entry.item_id] = index
        elif entry.kind == "repeat":
            assert index - where[entry.item_id] > planning.REPEAT_MIN_GAP
    assert kinds.count("repeat") == 6


def test_qualification_items_come_first_and_gold_is_never_reused():
    queue = planning.mix_quality_items(
        list(range(10)), gold=["g1", "g2", "g3", "g4"], gold_rate=0.3, repeat_rate=0, qualify=3,
        seed=1,
    )  # fmt: skip
    assert [e.kind for e in queue[:3]] == ["gold"] * 3
    assert queue[3].kind == "live"  # never a fourth gold straight after the qualification
    golds = [e.item_id for e in queue if e.kind == "gold"]
    assert len(golds) == len(set(golds)) == 4  # the pool ran short: 4, not round(10 * 3/7) + 3


# Commands and campaign settings ----------------------------------------------------------------


def test_create_campaign_command_takes_the_quality_settings(gold_campaign):
    campaign = gold_campaign(n_live=4, n_gold=2)  # a dataset with gold items and systems
    out = StringIO()
    call_command(
        "create_campaign", "--name", "Q", "--dataset", campaign.dataset.name,
        "--baseline", "acme-base", "--candidate", "acme-next", "--gold-rate", "0.1",
        "--repeat-rate", "0.05", "--qualify", "3", "--min-accuracy", "0.8", stdout=out,
    )  # fmt: skip
    created = Campaign.objects.get(slug=out.getvalue().splitlines()[-1])
    assert (created.gold_rate, created.repeat_rate) == (0.1, 0.05)
    assert (created.qualify_items, created.min_accuracy) == (3, 0.8)
    assert created.campaign_items.filter(is_gold=True).count() == 2
    assert "4 items and 2 gold items" in out.getvalue()
    with pytest.raises(CommandError, match="minimum accuracy needs qualification items"):
        call_command(
            "create_campaign", "--name", "Q2", "--dataset", campaign.dataset.name,
            "--baseline", "acme-base", "--candidate", "acme-next", "--min-accuracy", "0.8",
            stdout=StringIO(),
        )  # fmt: skip


# Queues ---------------------------------------------------------------------------------------


def test_assigned_queues_mix_gold_and_flipped_repeats_that_hold_no_slot(
    gold_campaign, make_reviewers
):
    campaign = gold_campaign(n_live=40, n_gold=10, gold_rate=0.1, repeat_rate=0.1, overlap=2)
    reviewers = make_reviewers(3)
    result = batches.create_batches_and_assign(campaign=campaign, reviewers=reviewers)

    assert result.n_items == 40  # gold items are never planned as live work
    for reviewer in reviewers:
        queue = queue_of(campaign, reviewer)
        kinds = [kind for kind, *_ in queue]
        assert [pos for *_, pos, _ in queue] == list(range(len(queue)))
        assert "gold gold" not in " ".join(kinds)
        n_live = kinds.count("live")
        assert kinds.count("gold") == round(n_live * 0.1 / 0.9)
        assert kinds.count("repeat") == round(n_live * 0.1)
        first = {
            item: (i, left) for i, (kind, item, left, _, _) in enumerate(queue) if kind == "live"
        }
        for i, (kind, item, left, _, _) in enumerate(queue):
            if kind == "repeat":
                assert i > first[item][0]
                assert left is not first[item][1]  # the sides swapped
    gold_items = campaign.campaign_items.filter(is_gold=True)
    assert set(gold_items.values_list("slots_taken", flat=True)) == {0}
    live_slots = campaign.campaign_items.filter(is_gold=False).values_list("slots_taken", flat=True)
    assert set(live_slots) == {2}  # k live judgments each, repeats not counted


# Grading: qualification -----------------------------------------------------------------------


def grade(client, token, preference):
    page = client.get(reverse("grading:grade", args=[token]))
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    return client.post(
        reverse("grading:submit", args=[token]),
        {"ticket": ticket, "preference": preference},
        follow=True,
    )


def wrong_answer(campaign, token) -> str:
    """The blind choice that picks the baseline (gold items here expect the candidate)."""
    left = Assignment.objects.get(token=token).candidate_left
    return "2" if left else "1"


def test_failing_qualification_pauses_the_reviewer_until_the_lead_reinstates(
    gold_campaign, reviewer, lead, client_for
):
    campaign = gold_campaign(n_live=10, n_gold=5, qualify_items=3, min_accuracy=0.7)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[reviewer])
    queue = queue_of(campaign, reviewer)
    assert [kind for kind, *_ in queue[:3]] == ["gold"] * 3
    client = client_for(reviewer)
    for _, _, _, _, token in queue[:2]:
        grade(client, token, wrong_answer(campaign, token))
    assert not ReviewerPause.objects.exists()  # not before the third qualification item
    response = grade(client, queue[2][4], wrong_answer(campaign, queue[2][4]))

    assert "You are paused on this campaign" in response.text
    assert response.redirect_chain[-1][0] == reverse("reviews:queue")
    paused_page = client.get(reverse("grading:grade", args=[queue[3][4]]), follow=True)
    assert "You are paused on this campaign" in paused_page.text
    assert not Judgment.objects.filter(assignment__token=queue[3][4]).exists()
    start = client.get(reverse("grading:start", args=[campaign.public_id]), follow=True)
    assert "You are paused" in start.text

    lead_client = client_for(lead)
    detail = lead_client.get(reverse("reviews:campaign-detail", args=[campaign.slug])).text
    assert f"{reviewer.email}</strong> is paused: 0 of 3 gold items right" in detail
    lead_client.post(reverse("reviews:reinstate", args=[campaign.slug]), {"reviewer": reviewer.pk})
    assert AuditEvent.objects.filter(verb="reviewer.reinstated").exists()
    client = client_for(reviewer)  # the same test client, logged in as the reviewer again
    resumed = client.get(reverse("grading:start", args=[campaign.public_id]), follow=True)
    assert resumed.redirect_chain[-1][0] == reverse("grading:grade", args=[queue[3][4]])
    grade(client, queue[3][4], "1")
    assert ReviewerPause.objects.get().reinstated_by == lead  # not paused again


def test_gold_submit_and_next_keeps_the_pinned_query_count(
    gold_campaign, reviewer, client_for, django_assert_max_num_queries
):
    campaign = gold_campaign(n_live=10, n_gold=5, qualify_items=2, min_accuracy=0.5)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[reviewer])
    token = queue_of(campaign, reviewer)[0][4]
    client = client_for(reviewer)
    with django_assert_max_num_queries(5):
        page = client.get(reverse("grading:grade", args=[token]))
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    # A campaign with qualification reads the reviewer's gold answers after every submission
    # (one query, gold or not, so timing cannot tell): the pinned 12 + 1.
    with django_assert_max_num_queries(13):
        client.post(
            reverse("grading:submit", args=[token]),
            {"ticket": ticket, "preference": "1"},
            HTTP_HX_REQUEST="true",
        )


# Report ----------------------------------------------------------------------------------------


def answer(assignment, preference, seconds=30.0):
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.DONE)
    return Judgment.objects.create(
        assignment=assignment, campaign_id=assignment.campaign_id, item_id=assignment.item_id,
        reviewer_id=assignment.reviewer_id, candidate_left=assignment.candidate_left,
        preference=preference, submitted_at=assignment.created_at, duration_seconds=seconds,
        submission_key=f"k-{assignment.pk}",
    )  # fmt: skip


def test_report_keeps_gold_and_repeats_out_of_the_figures_and_scores_each_reviewer(
    gold_campaign, make_reviewers
):
    campaign = gold_campaign(n_live=30, n_gold=10, gold_rate=0.2, repeat_rate=0.2, overlap=2)
    careful, careless = make_reviewers(2)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[careful, careless])
    for a in Assignment.objects.filter(campaign=campaign, reviewer=careful):
        answer(a, "candidate")  # gold right, repeats consistent, sides balanced
    for a in Assignment.objects.filter(campaign=campaign, reviewer=careless):
        # Always "Response 1", in two seconds: gold half wrong, repeats flip, a side habit.
        answer(a, "candidate" if a.candidate_left else "baseline", seconds=2.0)

    report = aggregation.aggregate(campaign)

    assert report["n_judgments"] == 60  # 30 live items × 2, no gold, no repeats
    assert report["n_items"] == 30
    by_name = {row["reviewer"]: row for row in report["reviewers"]}
    good = by_name[aggregation.reviewer_pseudonym(careful.pk)]
    bad = by_name[aggregation.reviewer_pseudonym(careless.pk)]
    n_gold = Assignment.objects.filter(reviewer=careful, kind="gold").count()
    assert good["gold"]["n"] == good["gold"]["correct"] == n_gold
    assert good["gold"]["ci95"][0] < 1.0 <= good["gold"]["ci95"][1] + 1e-9
    assert good["self_consistency"]["rate"] == 1.0
    assert good["flagged"] is False
    assert good["flags"] == []
    assert bad["position_bias"]["left_rate"] == 1.0
    assert bad["position_bias"]["p_value"] < 0.01
    assert bad["self_consistency"]["rate"] == 0.0
    assert set(bad["flags"]) >= {"position_bias", "self_consistency", "fast"}
    assert bad["flagged"] is True
    assert report["quality"]["n_gold_judgments"] == Assignment.objects.filter(kind="gold").count()
    assert report["quality"]["n_flagged_reviewers"] == 1
    assert report["quality"]["decision_without_flagged"] == report["decision"]["verdict"]


def test_gold_judgments_from_a_judgments_file_are_scored(gold_campaign, tmp_path):
    campaign = gold_campaign(n_live=3, n_gold=2)
    rows = ["item_id,reviewer,preference"]
    rows += [f"T-{i:05d},ext@example.org,baseline" for i in range(5)]  # gold T-3, T-4 wrong
    path = tmp_path / "judgments.csv"
    path.write_text("\n".join(rows) + "\n")
    call_command("import_judgments", str(path), "--campaign", campaign.slug, stdout=StringIO())

    report = aggregation.aggregate(campaign)
    assert report["n_judgments"] == 3
    (row,) = report["reviewers"]
    assert (row["gold"]["n"], row["gold"]["correct"]) == (2, 0)


def test_flag_rules_read_as_the_lead_sees_them():
    codes = [code for code, _ in quality.RULES]
    assert codes == ["gold", "self_consistency", "position_bias", "fast"]
    found = quality.flags(
        gold=quality.gold_accuracy(3, 5),
        consistency=quality.self_consistency([("tie", "tie")] * 4),
        position=quality.position_habit(5, 10),
        fast_share=0.0,
        min_accuracy=0.8,
    )
    assert found == ["gold"]  # 60% < the campaign's 80%


# Adjudication ---------------------------------------------------------------------------------


def test_lead_adjudicates_a_disagreement_and_the_report_takes_it_as_truth(
    gold_campaign, make_reviewers, lead, client_for
):
    campaign = gold_campaign(n_live=4, n_gold=0, overlap=2)
    first, second = make_reviewers(2)
    batches.create_batches_and_assign(campaign=campaign, reviewers=[first, second])
    for a in Assignment.objects.filter(campaign=campaign):
        disputed = a.item.external_id == "T-00000"
        answer(a, "baseline" if disputed and a.reviewer == second else "candidate")
    before = aggregation.run_aggregation(campaign_id=campaign.pk).result["preference"]["counts"]
    assert (before["candidate"], before["baseline"]) == (7, 1)

    client = client_for(lead)
    page = client.get(reverse("reviews:adjudication", args=[campaign.slug])).text
    assert "T-00000" in page
    assert "T-00001" not in page  # reviewers agreed
    assert "acme-base (baseline)" in page
    assert "acme-next (candidate)" in page
    assert AuditEvent.objects.filter(verb="unblinded.viewed", campaign=campaign).exists()
    ci = campaign.campaign_items.get(item__external_id="T-00000")
    client.post(
        reverse("reviews:adjudication", args=[campaign.slug]),
        {"item": ci.pk, "label": "baseline", "note": "B misreads the refund policy."},
    )
    assert Adjudication.objects.get().label == "baseline"

    # The stored report is recomputed although no judgment changed.
    after = aggregation.run_aggregation(campaign_id=campaign.pk).result
    assert (
        after["preference"]["counts"]["candidate"],
        after["preference"]["counts"]["baseline"],
    ) == (6, 2)
    assert after["agreement"]["preference"]["percent_agreement"] < 1.0  # from what was answered


def test_report_page_shows_the_decision_without_flagged_reviewers_when_it_differs(
    make_reviewers, lead, client_for
):
    from tests.reviews.test_migration_page import build_scenario

    careful, hasty = make_reviewers(2)
    campaign = build_scenario(
        lead=lead, reviewers=[careful, hasty], n_items=160, n_labelled=120,
        baseline_pass=0.8, candidate_pass=0.9,
    )  # fmt: skip
    # The hasty reviewer answers in a second and fails every candidate answer (submitted_at
    # moves on, so the report's state key sees new judgments).
    Judgment.objects.filter(campaign=campaign, reviewer=hasty).update(
        duration_seconds=1.0,
        scores={"correctness": {"baseline": 5, "candidate": 2}},
        submitted_at=timezone.now(),
    )
    report = aggregation.run_aggregation(campaign_id=campaign.pk).result
    hasty_row = next(
        r for r in report["reviewers"] if r["reviewer"] == aggregation.reviewer_pseudonym(hasty.pk)
    )
    assert hasty_row["flags"] == ["fast"]
    assert report["quality"]["n_flagged_reviewers"] == 1
    assert report["decision"]["verdict"] != "migrate"
    assert report["quality"]["decision_without_flagged"] == "migrate"

    html = client_for(lead).get(reverse("report:page", args=[campaign.slug])).text
    assert (
        "Without the 1 flagged reviewer, the decision would be: <strong>migrate to the candidate"
        in html
    )


# Statistics: a worked example and a simulation with a known truth ------------------------------


def test_gold_accuracy_interval_matches_newcombes_worked_example():
    # Newcombe (1998), Stat Med 17:857, Table I: 81 of 263, Wilson score interval 0.2553-0.3662.
    result = quality.gold_accuracy(81, 263)
    assert result["accuracy"] == pytest.approx(81 / 263)
    assert result["ci95"] == pytest.approx([0.2553, 0.3662], abs=5e-5)


@pytest.mark.parametrize("seed", range(5))
def test_simulated_campaign_flags_the_biased_and_careless_reviewers_only(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    sides, timing, gold_answers, repeat_pairs = {}, {}, [], []
    truth = {"r-left": 0.7, **{f"r-{i}": 0.5 for i in range(60)}}  # P(choose left)
    for name, p_left in truth.items():
        n = 400
        sides[name] = (int(rng.binomial(n, p_left)), n)
        timing[name] = (int(rng.binomial(n, 0.02)), n)
        careless = name == "r-7"
        for _ in range(40):  # gold items per reviewer (1 in 10 of their queue)
            right = rng.random() < (0.4 if careless else 0.9)
            gold_answers.append((name, "candidate" if right else "baseline", "candidate"))
        for _ in range(20):  # flipped repeats (1 in 20)
            first = rng.choice(["candidate", "baseline"])
            same = rng.random() < (0.3 if careless else 0.9)
            other = "baseline" if first == "candidate" else "candidate"
            repeat_pairs.append((name, first, first if same else other))
    result = quality.reviewer_quality(
        gold_answers=gold_answers, repeat_pairs=repeat_pairs, sides=sides, timing=timing,
        baseline="acme-base", candidate="acme-next",
    )  # fmt: skip
    flagged = {name: row["flags"] for name, row in result.items() if row["flagged"]}
    assert flagged.keys() == {"r-left", "r-7"}
    assert flagged["r-left"] == ["position_bias"]
    assert set(flagged["r-7"]) == {"gold", "self_consistency"}


# Pull mode ------------------------------------------------------------------------------------


def test_pull_mode_serves_qualification_gold_then_mixes_gold_and_flipped_repeats(
    gold_campaign, make_reviewers
):
    from reviews.grading import pull

    reviewers = make_reviewers(2)
    campaign = gold_campaign(
        n_live=60, n_gold=12, mode="pull", roster=reviewers, overlap=2, gold_rate=0.1,
        repeat_rate=0.1, qualify_items=2,
    )  # fmt: skip
    for reviewer in reviewers:
        while (a := pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)) is not None:
            answer(a, "candidate")
    for reviewer in reviewers:
        queue = queue_of(campaign, reviewer)
        kinds = [kind for kind, *_ in queue]
        assert kinds[:2] == ["gold", "gold"]
        assert kinds[2] != "gold"
        assert "gold gold" not in " ".join(kinds[2:])
        assert kinds.count("live") == 60
        assert kinds.count("gold") > 2
        assert kinds.count("repeat") > 0
        first = {
            item: (i, left) for i, (kind, item, left, _, _) in enumerate(queue) if kind == "live"
        }
        for i, (kind, item, left, _, _) in enumerate(queue):
            if kind == "repeat":
                assert i - first[item][0] > planning.REPEAT_MIN_GAP
                assert left is not first[item][1]
    gold_slots = campaign.campaign_items.filter(is_gold=True).values_list("slots_taken", flat=True)
    assert set(gold_slots) == {0}
    live_slots = campaign.campaign_items.filter(is_gold=False).values_list("slots_taken", flat=True)
    assert set(live_slots) == {2}
    report = aggregation.aggregate(campaign)
    assert report["n_judgments"] == 120


def test_a_paused_reviewer_pulls_nothing(gold_campaign, reviewer):
    from django.core.exceptions import ValidationError

    from reviews.grading import pull, qualification

    campaign = gold_campaign(n_live=5, n_gold=3, mode="pull", roster=[reviewer])
    ReviewerPause.objects.create(campaign=campaign, reviewer=reviewer)
    with pytest.raises(ValidationError, match="You are paused"):
        pull.pull_next_assignment(campaign=campaign, reviewer=reviewer)
    assert not Assignment.objects.exists()
    assert qualification.PAUSED_MESSAGE.startswith("You are paused")
