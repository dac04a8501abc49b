import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reviews.campaigns import rubrics
from reviews.campaigns.forms import criteria_initial
from reviews.models import AuditEvent, Rubric
from tests import factories

DESIGN_RUBRIC = {
    "name": "support-default",
    "criteria": [
        {"name": "correctness", "label": "Is it correct?", "kind": "scale", "min": 1, "max": 5,
         "per": "response"},
        {"name": "refusal_ok", "label": "Refuses only when it should", "kind": "binary",
         "per": "response"},
        {"name": "overall", "label": "Which is better overall?", "kind": "scale", "min": 1,
         "max": 7, "per": "pair"},
    ],
}  # fmt: skip


def test_the_design_rubric_is_valid_and_normalised():
    clean = rubrics.validate_rubric_json(DESIGN_RUBRIC)
    assert [c["name"] for c in clean["criteria"]] == ["correctness", "refusal_ok", "overall"]
    correctness, refusal_ok, _ = clean["criteria"]
    assert correctness == {
        "name": "correctness", "label": "Is it correct?", "kind": "scale", "per": "response",
        "min": 1, "max": 5, "anchors": {}, "required": True, "critical": False,
        "direction": "higher_is_better",
    }  # fmt: skip
    assert "min" not in refusal_ok
    assert refusal_ok["required"] is True
    optional = {"direction": "lower_is_better", "critical": True, "pass_threshold": 4,
                "anchors": {"5": "Fully correct", "1": "Wrong"}, "required": False}  # fmt: skip
    clean = rubrics.validate_rubric_json(
        {"name": "x", "criteria": [{**DESIGN_RUBRIC["criteria"][0], **optional}]}
    )
    assert clean["criteria"][0]["anchors"] == {"1": "Wrong", "5": "Fully correct"}
    assert clean["criteria"][0]["pass_threshold"] == 4


def test_a_refusal_criterion_may_name_the_refusal_metric_as_its_judge():
    criterion = {"name": "refusal_ok", "kind": "binary", "judge": "refusal_metric"}
    clean = rubrics.validate_rubric_json({"name": "r", "criteria": [criterion]})
    assert clean["criteria"][0]["judge"] == "refusal_metric"
    plain = rubrics.validate_rubric_json(
        {"name": "r", "criteria": [{"name": "c", "kind": "binary"}]}
    )
    assert "judge" not in plain["criteria"][0]


@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ({"name": "c", "kind": "stars", "per": "response"}, "kind: one of scale, binary"),
        ({"name": "c", "kind": "scale", "min": 5, "max": 5}, "max must be greater than min"),
        ({"name": "c", "kind": "scale", "min": 1}, "whole numbers are required"),
        ({"name": "c", "kind": "binary", "min": 0, "max": 1}, "min: only a scale has it"),
        ({"name": "c", "kind": "scale", "min": 1, "max": 5, "anchors": {"9": "?"}}, "'9'"),
        ({"name": "c", "kind": "scale", "min": 1, "max": 5, "pass_threshold": 7}, "pass_threshold"),
        ({"name": "c", "kind": "binary", "per": "item"}, "per: one of response, pair"),
        ({"name": "has.dot", "kind": "binary"}, "name: letters"),
        ({"name": "c", "kind": "binary", "colour": "red"}, "unknown field(s) colour"),
        ({"name": "c", "kind": "binary", "required": "yes"}, "required: true or false"),
        ({"name": "c", "kind": "binary", "judge": "gpt-4"}, "judge: one of refusal_metric"),
        ({"name": "c", "kind": "binary", "per": "pair", "judge": "refusal_metric"}, "judge: only"),
        (
            {"name": "c", "kind": "scale", "min": 1, "max": 5, "judge": "refusal_metric"},
            "judge: only",
        ),
    ],
)
def test_invalid_criteria_are_reported_with_their_place(criterion, message):
    with pytest.raises(ValidationError) as excinfo:
        rubrics.validate_rubric_json({"name": "r", "criteria": [criterion]})
    assert any(m.startswith("criteria[0]") and message in m for m in excinfo.value.messages), (
        excinfo.value.messages
    )


def test_duplicate_names_and_bad_shapes_are_refused():
    twice = {"name": "c", "kind": "binary", "per": "pair"}
    with pytest.raises(ValidationError, match="used twice"):
        rubrics.validate_rubric_json({"name": "r", "criteria": [twice, twice]})
    for data in ([], {"criteria": []}, {"name": "r", "criteria": {}}):
        with pytest.raises(ValidationError):
            rubrics.validate_rubric_json(data)


@pytest.mark.django_db
def test_every_change_bumps_the_version_and_a_no_op_does_not(lead):
    rubric = rubrics.create_rubric(name="r", criteria=DESIGN_RUBRIC["criteria"], actor=lead)
    assert rubric.version == 1
    same = rubrics.update_rubric(rubric=rubric, criteria=DESIGN_RUBRIC["criteria"])
    assert same.version == 1
    reordered = list(reversed(DESIGN_RUBRIC["criteria"]))
    assert rubrics.update_rubric(rubric=rubric, criteria=reordered).version == 2
    assert rubrics.update_rubric(rubric=rubric, criteria=reordered, name="r2").version == 3
    assert AuditEvent.objects.filter(verb="rubric.changed").count() == 2
    with pytest.raises(ValidationError) as stale:
        rubrics.update_rubric(rubric=rubric, criteria=[], expected_version=1)
    assert stale.value.code == "stale"


@pytest.mark.django_db
def test_a_rubric_with_judgments_refuses_invalidating_changes_but_allows_others():
    judgment = factories.JudgmentFactory()
    rubric = judgment.campaign.rubric
    criteria = [dict(c) for c in rubric.criteria]

    for change in (
        criteria[1:],  # removes a criterion
        [{**criteria[0], "max": 10}, *criteria[1:]],
        [{**criteria[0], "per": "pair"}, *criteria[1:]],
        [criteria[0], {**criteria[1], "kind": "scale", "min": 0, "max": 1}, criteria[2]],
    ):
        with pytest.raises(ValidationError) as refused:
            rubrics.update_rubric(rubric=rubric, criteria=change)
        assert refused.value.code == "invalidates_judgments"
        assert "copy" in refused.value.messages[0]
    assert Rubric.objects.get(pk=rubric.pk).version == 1

    allowed = [
        {**criteria[2], "label": "Overall, which is better?", "required": False},
        {**criteria[0], "anchors": {"1": "Wrong"}},
        criteria[1],
        {"name": "tone", "kind": "scale", "min": 1, "max": 3, "per": "response"},
    ]
    assert rubrics.update_rubric(rubric=rubric, criteria=allowed).version == 2


@pytest.mark.django_db
def test_copy_gets_a_free_name_and_version_one():
    rubric = factories.RubricFactory(name="support", version=4)
    first = rubrics.copy_rubric(rubric=rubric)
    second = rubrics.copy_rubric(rubric=rubric)
    assert (first.name, second.name) == ("support (copy)", "support (copy) 2")
    assert first.version == 1
    assert first.criteria == rubrics.validate_rubric_json(rubric.as_json())["criteria"]


@pytest.mark.django_db
def test_import_reuses_an_identical_rubric_and_refuses_a_different_one():
    first = rubrics.import_rubric(data=DESIGN_RUBRIC)
    assert rubrics.import_rubric(data=json.loads(json.dumps(DESIGN_RUBRIC))) == first
    different = {**DESIGN_RUBRIC, "criteria": DESIGN_RUBRIC["criteria"][:1]}
    with pytest.raises(ValidationError) as taken:
        rubrics.import_rubric(data=different)
    assert taken.value.code == "name_taken"
    assert rubrics.import_rubric(data=different, name="short").name == "short"


@pytest.mark.django_db
def test_default_rubric_is_created_once():
    first = rubrics.get_or_create_default_rubric()
    assert rubrics.get_or_create_default_rubric() == first
    assert first.name == "support-default"
    kinds = {c["name"]: (c["kind"], c["per"], c.get("min"), c.get("max")) for c in first.criteria}
    assert kinds == {
        "correctness": ("scale", "response", 1, 5),
        "refusal_ok": ("binary", "response", None, None),
        "overall": ("scale", "pair", 1, 7),
    }


# ----------------------------------------------------------------------------- views


def formset_data(criteria, *, name="new-rubric", version=""):
    data = {
        "name": name,
        "version": version,
        "criteria-TOTAL_FORMS": str(len(criteria)),
        "criteria-INITIAL_FORMS": "0",
        "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
    }
    for i, c in enumerate(criteria):
        for key, value in c.items():
            if value is not None and value is not False:
                data[f"criteria-{i}-{key}"] = "on" if value is True else str(value)
    return data


BLANK = {"kind": "scale", "per": "response", "min": 1, "max": 5, "direction": "higher_is_better"}


def test_lead_builds_a_rubric_with_ordered_criteria(client_for, lead):
    client = client_for(lead)
    data = formset_data(
        [
            {**BLANK, "name": "overall", "label": "Better overall?", "per": "pair", "max": 7,
             "anchors": "1 = Baseline much better\n7: Candidate much better", "ORDER": "2"},
            {"kind": "binary", "per": "response", "direction": "higher_is_better",
             "name": "refusal_ok", "optional": True, "refusal_judge": True, "ORDER": "1"},
            {**BLANK},  # the untouched blank row is not a criterion
        ]
    )  # fmt: skip
    response = client.post(reverse("reviews:rubric-create"), data)
    assert response.status_code == 302
    rubric = Rubric.objects.get(name="new-rubric")
    assert response.url == reverse("reviews:rubric-edit", args=[rubric.pk])
    assert [c["name"] for c in rubric.criteria] == ["refusal_ok", "overall"]
    refusal_ok, overall = rubric.criteria
    assert refusal_ok["required"] is False
    assert refusal_ok["judge"] == "refusal_metric"
    assert "judge" not in overall
    assert [row["refusal_judge"] for row in criteria_initial(rubric.criteria)] == [True, False]
    assert overall["anchors"] == {"1": "Baseline much better", "7": "Candidate much better"}

    page = client.get(response.url)
    assert page.status_code == 200
    assert "Candidate much better" in page.text


def test_add_criterion_returns_the_form_fragment_with_one_more_row(client_for, lead, htmx_headers):
    data = formset_data([{**BLANK, "name": "accuracy"}]) | {"add-criterion": "1"}
    response = client_for(lead).post(reverse("reviews:rubric-create"), data, headers=htmx_headers)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'name="criteria-TOTAL_FORMS" value="2"' in response.text
    assert 'value="accuracy"' in response.text
    assert not Rubric.objects.exists()


def test_invalid_rubric_form_rerenders_with_200(client_for, lead):
    data = formset_data([{**BLANK, "name": "accuracy", "min": 5, "max": 2}])
    response = client_for(lead).post(reverse("reviews:rubric-create"), data)
    assert response.status_code == 200
    assert "max must be greater than min" in response.text


def test_refused_edit_offers_a_copy(client_for, lead):
    judgment = factories.JudgmentFactory()
    rubric = judgment.campaign.rubric
    kept = criteria_initial(rubric.criteria)[:2]  # drops "overall"
    data = formset_data(kept, name=rubric.name, version=rubric.version)
    response = client_for(lead).post(reverse("reviews:rubric-edit", args=[rubric.pk]), data)
    assert response.status_code == 200
    assert "removes the criterion &#x27;overall&#x27;" in response.text
    assert reverse("reviews:rubric-copy", args=[rubric.pk]) in response.text

    copied = client_for(lead).post(reverse("reviews:rubric-copy", args=[rubric.pk]))
    copy = Rubric.objects.get(name=f"{rubric.name} (copy)")
    assert copied.url == reverse("reviews:rubric-edit", args=[copy.pk])


def test_export_and_import_round_trip(client_for, lead):
    rubric = rubrics.create_rubric(name="round-trip", criteria=DESIGN_RUBRIC["criteria"])
    client = client_for(lead)
    exported = client.get(reverse("reviews:rubric-export", args=[rubric.pk]))
    assert exported["Content-Type"].startswith("application/json")
    assert 'filename="round-trip.json"' in exported["Content-Disposition"]
    data = json.loads(exported.content)
    assert data == {"name": "round-trip", "criteria": rubric.criteria}

    upload = SimpleUploadedFile("r.json", exported.content, content_type="application/json")
    response = client.post(reverse("reviews:rubric-import"), {"file": upload, "name": "again"})
    assert response.status_code == 302
    assert Rubric.objects.get(name="again").criteria == rubric.criteria

    bad = client.post(reverse("reviews:rubric-import"), {"text": '{"name": "x", "criteria": ['})
    assert bad.status_code == 200
    assert "Not valid JSON" in bad.text


def test_rubric_list(client_for, lead, django_assert_max_num_queries):
    for n in range(5):
        factories.RubricFactory(name=f"r{n}")
    client = client_for(lead)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("reviews:rubrics"))
    assert response.status_code == 200
    assert "r4" in response.text


def test_editing_shows_the_rubric_criteria_only_in_the_leads_words(client_for, lead):
    rubric = rubrics.get_or_create_default_rubric()
    page = client_for(lead).get(reverse("reviews:rubric-edit", args=[rubric.pk])).text
    assert page.count('class="card criterion"') == len(rubric.criteria)  # no permanent blank row
    assert "Position" in page
    assert "Remove this criterion" in page
    assert ">Order:<" not in page
    assert ">Delete:<" not in page
