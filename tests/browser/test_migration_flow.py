"""A lead reads the migration decision and asks for the most informative labels, in Chromium."""

import re

import pytest
from django.contrib.auth.models import Group

from reviews.models import Assignment, Batch
from tests import factories
from tests.browser.conftest import log_in
from tests.reviews.test_migration_page import build_scenario

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def undecided(lead):
    group, _ = Group.objects.get_or_create(name="reviewer")
    reviewers = [factories.UserFactory(username=f"grader{i}@example.org") for i in range(2)]
    group.user_set.add(*reviewers)
    return build_scenario(
        lead=lead,
        reviewers=reviewers,
        n_items=300,
        n_labelled=20,
        baseline_pass=0.8,
        candidate_pass=0.8,
    )


def test_lead_reads_the_decision_and_creates_the_next_batch(
    page, live_server, lead, undecided, csp_violations
):
    log_in(page, live_server, lead.email)
    page.wait_for_url(f"{live_server.url}/campaigns/")
    page.goto(f"{live_server.url}/reports/{undecided.slug}/")
    page.get_by_role("link", name="Migration decision").click()
    page.wait_for_url(f"{live_server.url}/reports/{undecided.slug}/migration/")

    sentence = page.locator("#migration-decision").text_content()
    match = re.match(r"Need more human labels: about (\d+) more human-labelled items", sentence)
    assert match, sentence
    assert "correctness at P(non-inferior)" in sentence

    page.get_by_role("button", name="Create the next batch from the most informative items").click()
    message = page.get_by_role("status").text_content()
    assert re.search(r"Batch 2: \d+ items chosen on correctness", message)
    assert "grader0@example.org" in message
    assert "grader1@example.org" in message
    assert page.get_by_text("The next batch for this report was created").is_visible()
    assert page.get_by_role("button", name="Create the next batch").count() == 0

    batch = Batch.objects.get(campaign=undecided, number=2)
    assert Assignment.objects.filter(batch=batch).count() == min(int(match[1]), 200)
    assert csp_violations == []
