"""The campaign form offers only the systems of the chosen dataset; the judgment-import help reads
as written."""

import html

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from reviews.campaigns import rubrics
from reviews.models import Campaign
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_datasets(add_dataset_items):
    support, legal = factories.DatasetFactory(), factories.DatasetFactory()
    a, b = factories.SystemFactory(name="support-a"), factories.SystemFactory(name="support-b")
    c, d = factories.SystemFactory(name="legal-c"), factories.SystemFactory(name="legal-d")
    add_dataset_items(support, [a, b], 3)
    add_dataset_items(legal, [c, d], 2, start=100)
    return support, legal, (a, b, c, d)


def test_choosing_a_dataset_swaps_in_its_systems_only(client_for, lead, two_datasets):
    _support, legal, _ = two_datasets
    response = client_for(lead).get(
        reverse("reviews:campaign-create"),
        {"dataset": legal.pk},
        headers={"HX-Request": "true", "HX-Target": "system-fields"},
    )
    assert "<html" not in response.text
    assert 'id="system-fields"' in response.text
    assert "legal-c" in response.text
    assert "legal-d" in response.text
    assert "support-a" not in response.text


def test_without_javascript_a_system_outside_the_dataset_is_refused_clearly(
    client_for, lead, two_datasets
):
    support, _, (a, _, c, _) = two_datasets
    form = {
        "name": "Mixed", "dataset": support.pk, "baseline": a.pk, "candidate": c.pk,
        "rubric": rubrics.get_or_create_default_rubric().pk, "overlap": "1", "margin": "0.05",
        "mode": "push",
    }  # fmt: skip
    response = client_for(lead).post(reverse("reviews:campaign-create"), form)
    assert response.status_code == 200
    assert not Campaign.objects.exists()
    text = strip_tags(response.text)
    assert f"This system has no responses in the dataset “{support.name}”." in text
    assert "legal-d" not in response.text  # the re-rendered form lists the dataset's systems


def test_judgment_import_help_text_is_not_garbled(client_for, lead):
    campaign = factories.CampaignFactory()
    page = client_for(lead).get(reverse("exports:import", args=[campaign.slug])).text
    text = html.unescape(" ".join(strip_tags(page).split()))
    assert "score.<criterion> / score.<criterion>.baseline / score.<criterion>.candidate" in text
    assert "score. / score..baseline" not in text
