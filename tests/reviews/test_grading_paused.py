"""A paused campaign tells a reviewer with items left that it is paused, once."""

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from reviews.models import Campaign
from tests.reviews.test_grading import answers, assign, ticket_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign():
    from tests.factories import CampaignFactory

    return CampaignFactory()


def test_submitting_in_a_paused_campaign_says_paused_not_finished(client_for, reviewer, campaign):
    first, *_ = assign(campaign, reviewer, candidate_left=True, n=10)
    client = client_for(reviewer)
    ticket = ticket_of(client.get(reverse("grading:grade", args=[first.token])).text)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    response = client.post(reverse("grading:submit", args=[first.token]), answers(ticket), **HTMX)
    text = " ".join(strip_tags(response.text).split())
    assert "answered every item" not in text
    assert "Nothing left" not in text
    assert "9 items left" in text
    assert text.count("paused") == 1, text


def test_opening_a_paused_campaign_says_paused_once(client_for, reviewer, campaign):
    assign(campaign, reviewer, candidate_left=True, n=3)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    client = client_for(reviewer)
    response = client.get(reverse("grading:start", args=[campaign.public_id]), follow=True)
    text = " ".join(strip_tags(response.text).split())
    assert text.count("is paused") == 1, text
