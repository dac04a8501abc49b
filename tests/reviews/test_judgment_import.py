import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from reviews.campaigns import services
from reviews.exports import services as exports
from reviews.exports.judgment_import import JudgmentImportError, import_judgments
from reviews.models import Assignment, AuditEvent, CampaignItem, Judgment
from tests import factories
from tests.reviews.exporting import judge, judge_all

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reviews.export_urls")]

HEADER = (
    "item_id,reviewer,preference,rationale,submitted_at,"
    "score.correctness.baseline,score.correctness.candidate,score.overall\n"
)


@pytest.fixture
def campaign(build_campaign):
    return build_campaign(n_items=3)


def write(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(campaign, path):
    campaign = exports.campaign_for_export(campaign.slug)
    return import_judgments(path=path, filename=path.name, campaign=campaign)


def test_imports_rows_as_done_imported_assignments(campaign, tmp_path, reviewer):
    path = write(
        tmp_path,
        HEADER + "T-00000,rita.reviewer@example.org,candidate,Clearer,2025-03-01T10:00:00Z,2,4,6\n"
        "T-00001,new.person@vendor.example,acme-base,,2025-03-02,,,\n"
        "T-00002,R-0a1b2c3d4e,TIE,,,,,\n",
    )
    summary = run(campaign, path)
    assert (summary.rows, summary.created, summary.already_imported) == (3, 3, 0)
    assert sorted(summary.new_reviewers) == ["R-0a1b2c3d4e", "new.person@vendor.example"]
    judgments = {j.item.external_id: j for j in Judgment.objects.select_related("item", "reviewer")}
    first = judgments["T-00000"]
    assert first.reviewer == reviewer
    assert first.preference == "candidate"
    assert first.scores == {"correctness": {"baseline": 2, "candidate": 4}, "overall": {"pair": 6}}
    assert first.rationale == "Clearer"
    assert first.submitted_at.isoformat() == "2025-03-01T10:00:00+00:00"
    assert first.source == "imported"
    assert not first.candidate_left
    assert not first.placement_known  # no left_system column: out of the position-bias check
    assert first.is_current
    assert first.submission_key == f"import:{summary.sha256[:40]}:2"
    assert judgments["T-00001"].preference == "baseline"
    assert judgments["T-00002"].preference == "tie"
    assignments = Assignment.objects.all()
    assert {(a.status, a.source, a.candidate_left) for a in assignments} == {
        ("done", "imported", False)
    }
    assert all(a.campaign_item.item_id == a.item_id for a in assignments)
    new = get_user_model().objects.get(username="new.person@vendor.example")
    assert not new.has_usable_password()
    assert new.email == "new.person@vendor.example"
    assert list(new.groups.values_list("name", flat=True)) == ["reviewer"]
    assert AuditEvent.objects.filter(verb="judgments.imported").count() == 1
    assert sorted(CampaignItem.objects.values_list("slots_taken", flat=True)) == [1, 1, 1]


def test_every_error_is_reported_with_file_and_line(campaign, tmp_path, reviewer):
    judge(campaign, reviewer, CampaignItem.objects.get(item__external_id="T-00002"))
    path = write(
        tmp_path,
        HEADER + "T-00000,a@example.org,candidate,,,1,5,7\n"  # line 2: fine
        "T-99999,a@example.org,candidate,,,,,\n"  # 3: unknown item
        "T-00001,a@example.org,gpt-5,,,,,\n"  # 4: system not in the campaign
        "T-00001,b@example.org,baseline,,yesterday,,,\n"  # 5: bad submitted_at
        "T-00001,c@example.org,tie,,,0,6,8\n"  # 6: out of range twice
        "T-00000,A@example.org,tie,,,,,\n"  # 7: judged twice (line 2)
        "T-00002,rita.reviewer@example.org,tie,,,,,\n"  # 8: already in the campaign
        "T-00001,,tie,,,,,\n",  # 9: no reviewer
    )
    with pytest.raises(JudgmentImportError) as caught:
        run(campaign, path)
    errors = caught.value.errors
    assert errors[0] == "labels.csv:3: item_id: unknown item 'T-99999' in this campaign."
    assert errors[1].startswith("labels.csv:4: preference: 'gpt-5' is not baseline, candidate")
    assert errors[2] == "labels.csv:5: submitted_at: 'yesterday' is not an ISO 8601 date or time."
    assert (
        errors[3]
        == "labels.csv:6: score.correctness.baseline: 0 is outside the rubric's range 1–5."
    )
    assert (
        errors[4]
        == "labels.csv:6: score.correctness.candidate: 6 is outside the rubric's range 1–5."
    )
    assert errors[5] == "labels.csv:6: score.overall: 8 is outside the rubric's range 1–7."
    assert errors[6] == "labels.csv:7: reviewer: A@example.org already judged this item on line 2."
    assert errors[7] == (
        "labels.csv:8: reviewer: rita.reviewer@example.org already has this item in the campaign."
    )
    assert errors[8] == "labels.csv:9: reviewer: a reviewer is required."
    assert len(errors) == 9


def test_header_errors(campaign, tmp_path):
    path = write(
        tmp_path, "item_id,preference,score.tone,score.overall.baseline\nT-00000,tie,1,2\n"
    )
    with pytest.raises(JudgmentImportError) as caught:
        run(campaign, path)
    assert caught.value.errors == [
        "labels.csv:1: reviewer: required column is missing.",
        "labels.csv:1: score.tone: unknown criterion (the rubric has correctness, refusal_ok, "
        "overall).",
        "labels.csv:1: score.overall.baseline: unknown criterion column; overall is scored as "
        "score.overall.",
    ]


def test_a_multiline_cell_keeps_later_line_numbers_right(campaign, tmp_path):
    path = write(
        tmp_path,
        HEADER + 'T-00000,a@example.org,tie,"two\nlines",,,,\nT-00001,a@example.org,nope,,,,,\n',
    )
    with pytest.raises(JudgmentImportError) as caught:
        run(campaign, path)
    assert caught.value.errors[0].startswith("labels.csv:4: preference:")


def test_all_or_nothing(campaign, tmp_path):
    users_before = get_user_model().objects.count()
    path = write(
        tmp_path,
        HEADER + "T-00000,a@example.org,candidate,,,,,\n"
        "T-00001,b@example.org,candidate,,,,,\n"
        "T-00002,c@example.org,candidate,,,,,9\n",
    )
    with pytest.raises(JudgmentImportError):
        run(campaign, path)
    assert not Judgment.objects.exists()
    assert not Assignment.objects.exists()
    assert get_user_model().objects.count() == users_before
    assert not AuditEvent.objects.filter(verb="judgments.imported").exists()


def test_reimporting_the_same_file_is_a_no_op(campaign, tmp_path):
    path = write(
        tmp_path,
        "\ufeff"
        + HEADER
        + "T-00000,a@example.org,candidate,,,,,\nT-00001,a@example.org,tie,,,,,\n",
    )
    assert run(campaign, path).created == 2
    again = run(campaign, path)
    assert (again.created, again.already_imported, again.new_reviewers) == (0, 2, [])
    assert Judgment.objects.count() == 2
    assert Assignment.objects.count() == 2
    assert AuditEvent.objects.filter(verb="judgments.imported").count() == 1


def test_command(campaign, tmp_path):
    good = write(tmp_path, HEADER + "T-00000,a@example.org,candidate,,,,,\n", name="good.csv")
    out = io.StringIO()
    call_command("import_judgments", str(good), "--campaign", campaign.slug, stdout=out)
    assert "Imported 1 judgments" in out.getvalue()
    bad = write(tmp_path, HEADER + "T-404,a@example.org,candidate,,,,,\n", name="bad.csv")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 error"):
        call_command("import_judgments", str(bad), "--campaign", campaign.slug, stderr=err)
    assert f"{bad}:2: item_id: unknown item 'T-404'" in err.getvalue()
    with pytest.raises(CommandError, match="No campaign"):
        call_command("import_judgments", str(good), "--campaign", "nope")


def test_upload_view(campaign, lead, client):
    client.force_login(lead)
    url = reverse("exports:import", args=[campaign.slug])
    bad = SimpleUploadedFile("mine.csv", (HEADER + "T-404,a@x.org,tie,,,,,\n").encode())
    response = client.post(url, {"file": bad})
    assert response.status_code == 200
    assert b"mine.csv:2: item_id: unknown item" in response.content
    good = SimpleUploadedFile("mine.csv", (HEADER + "T-00000,a@x.org,tie,,,,,\n").encode())
    response = client.post(url, {"file": good})
    assert response.status_code == 302
    assert Judgment.objects.get().preference == "tie"


@pytest.mark.parametrize("pseudonymise", [False, True])
def test_export_then_import_reproduces_the_counts(
    build_campaign, make_reviewers, tmp_path, lead, pseudonymise
):
    source = build_campaign(n_items=6)
    judge_all(source, make_reviewers(3))
    path = tmp_path / "export.csv"
    path.write_text(
        "".join(
            exports.start_export(
                campaign=exports.campaign_for_export(source.slug),
                kind="csv",
                filters={},
                pseudonymise=pseudonymise,
            )[1]
        ),
        encoding="utf-8",
    )
    fresh = services.create_campaign(
        name="Re-run",
        dataset=source.dataset,
        baseline=source.baseline,
        candidate=source.candidate,
        rubric=source.rubric,
        seed=source.seed,  # the item bootstrap is seeded from the campaign
        actor=lead,
    )
    assert run(fresh, path).created == 18

    def counts(campaign):
        return Counter(
            Judgment.objects.filter(campaign=campaign).values_list("preference", flat=True)
        )

    def scores(campaign):
        return sorted(
            (item, str(s))
            for item, s in Judgment.objects.filter(campaign=campaign).values_list(
                "item__external_id", "scores"
            )
        )

    assert counts(fresh) == counts(source)
    assert scores(fresh) == scores(source)
    try:
        from reviews.reports.aggregation import aggregate
    except ImportError:
        return
    before, after = aggregate(source), aggregate(fresh)
    before = getattr(before, "result", before)
    after = getattr(after, "result", after)
    assert after["preference"] == before["preference"]
    assert after["criteria"] == before["criteria"]
    assert after["agreement"] == before["agreement"]
    for key in ("n_items", "n_judgments", "n_reviewers"):
        assert after[key] == before[key], key
    # The export's left_system column round-trips: the imported judgments keep their sides, so
    # the position-bias check runs on them and gives the same figures.
    assert after["position_bias"] == before["position_bias"]
    assert after["position_bias"]["n"] > 0
    assert Judgment.objects.filter(campaign=fresh, placement_known=False).count() == 0


def test_left_system_names_the_side_shown_on_the_left(campaign, tmp_path):
    path = write(
        tmp_path,
        "item_id,reviewer,preference,left_system\n"
        "T-00000,a@example.org,candidate,acme-next\n"
        "T-00001,a@example.org,candidate,ACME-BASE\n"
        "T-00002,a@example.org,candidate,\n",
    )
    run(campaign, path)
    sides = {
        j.item.external_id: (j.candidate_left, j.placement_known)
        for j in Judgment.objects.select_related("item")
    }
    assert sides == {
        "T-00000": (True, True),
        "T-00001": (False, True),
        "T-00002": (False, False),
    }


def test_an_unknown_left_system_is_an_error_naming_the_line(campaign, tmp_path):
    path = write(
        tmp_path,
        "item_id,reviewer,preference,left_system\nT-00000,a@example.org,candidate,gpt-9\n",
    )
    with pytest.raises(JudgmentImportError) as caught:
        run(campaign, path)
    assert caught.value.errors == [
        "labels.csv:2: left_system: 'gpt-9' is neither acme-base nor acme-next."
    ]
    assert not Judgment.objects.exists()


def test_export_of_hostile_item_ids_imports_back(build_campaign, tmp_path, lead, reviewer):
    source = build_campaign(n_items=1)
    ci = CampaignItem.objects.select_related("item").get(campaign=source)
    ci.item.external_id = "=1+1"
    ci.item.save(update_fields=["external_id"])
    judge(source, reviewer, ci, preference="baseline")
    path = tmp_path / "export.csv"
    campaign = exports.campaign_for_export(source.slug)
    text = "".join(
        exports.start_export(campaign=campaign, kind="csv", filters={}, pseudonymise=False)[1]
    )
    assert "'=1+1" in text
    path.write_text(text, encoding="utf-8")
    fresh = factories.CampaignFactory(
        dataset=source.dataset,
        baseline=source.baseline,
        candidate=source.candidate,
        rubric=source.rubric,
    )
    factories.CampaignItemFactory(
        campaign=fresh,
        item=ci.item,
        baseline_response=ci.baseline_response,
        candidate_response=ci.candidate_response,
    )
    assert run(fresh, path).created == 1
