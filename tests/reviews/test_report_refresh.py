"""After a recompute the report page shows the new figures by itself; before the first report it
says when that report will appear."""

import re
from unittest import mock

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils.html import strip_tags

from reviews import tasks
from reviews.models import Campaign, Report
from reviews.reports import aggregation
from tests import factories
from tests.reviews.test_report_page import campaign_with_judgments

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reviews.report_test_urls")]


def url(campaign, name):
    return reverse(f"report:{name}", args=[campaign.slug])


def test_status_reloads_the_page_once_a_newer_report_is_done(client_for, analyst, htmx_headers):
    campaign = campaign_with_judgments(4)
    client = client_for(analyst)
    with mock.patch.object(tasks.aggregate_campaign, "apply_async"):
        client.post(url(campaign, "recompute"), {"shown": "0"}, headers=htmx_headers)
    polling = client.get(url(campaign, "status"), {"shown": "0"}, headers=htmx_headers)
    assert polling.status_code == 200
    assert "shown=0" in polling.text  # the next poll still knows what the page shows

    aggregation.run_aggregation(campaign_id=campaign.pk)
    done = client.get(url(campaign, "status"), {"shown": "0"}, headers=htmx_headers)
    assert done["HX-Refresh"] == "true"

    new = Report.objects.get(campaign=campaign, status="done")
    same = client.get(url(campaign, "status"), {"shown": str(new.pk)}, headers=htmx_headers)
    assert same.status_code == 286
    assert "HX-Refresh" not in same


def test_a_later_recompute_replaces_the_figures_too(client_for, lead, htmx_headers):
    campaign = campaign_with_judgments(4)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    first = Report.objects.get(campaign=campaign, status="done")
    page = client_for(lead).get(url(campaign, "page")).text
    assert f"shown={first.pk}" in page or f'name="shown" value="{first.pk}"' in page
    factories.JudgmentFactory(assignment__campaign_item__campaign=campaign)
    client = client_for(lead)
    with mock.patch.object(tasks.aggregate_campaign, "apply_async"):
        client.post(url(campaign, "recompute"), {"shown": str(first.pk)}, headers=htmx_headers)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    done = client.get(url(campaign, "status"), {"shown": str(first.pk)}, headers=htmx_headers)
    assert done["HX-Refresh"] == "true"


@override_settings(AGGREGATE_EVERY_N_JUDGMENTS=50)
def test_before_the_first_report_the_page_says_when_it_will_appear(client_for, lead):
    campaign = campaign_with_judgments(3)
    Campaign.objects.filter(pk=campaign.pk).update(judgments_since_report=12)
    text = " ".join(strip_tags(client_for(lead).get(url(campaign, "page")).text).split())
    assert "The first one appears by itself after 38 more judgments" in text


def test_chart_labels_are_readable(client_for, analyst):
    campaign = campaign_with_judgments(6)
    aggregation.run_aggregation(campaign_id=campaign.pk)
    page = client_for(analyst).get(url(campaign, "page")).text
    sizes = [int(size) for size in re.findall(r'font-size="(\d+)"', page)]
    assert sizes
    assert min(sizes) >= 13
