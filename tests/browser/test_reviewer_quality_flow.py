"""A reviewer grades a queue mixing gold items and flipped repeats with the keyboard; the lead
then reads the reviewer's flags on the campaign page (headless Chromium)."""

import pytest

from datasets.models import Item
from reviews.campaigns import batches, services
from reviews.models import Assignment, Judgment
from reviews.reports import aggregation
from tests import factories
from tests.browser.conftest import log_in
from tests.reviews.conftest import add_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mixed_queue(reviewer, lead):
    dataset = factories.DatasetFactory()
    baseline = factories.SystemFactory(name="acme-base")
    candidate = factories.SystemFactory(name="acme-next")
    items = add_items(dataset, [baseline, candidate], 18, categories=())
    for item in items[12:]:
        item.gold = "candidate"
    Item.objects.bulk_update(items[12:], ["gold"])
    campaign = services.create_campaign(
        name="Quality in the browser", dataset=dataset, baseline=baseline, candidate=candidate,
        rubric=factories.RubricFactory(criteria=[]), gold_rate=0.2, repeat_rate=0.35, seed=3,
        actor=lead,
    )  # fmt: skip
    batches.create_batches_and_assign(campaign=campaign, reviewers=[reviewer], actor=lead)
    return campaign


def test_keyboard_grading_of_gold_and_repeats_then_the_lead_reads_the_flags(
    page, live_server, reviewer, lead, mixed_queue
):
    campaign = mixed_queue
    errors = []
    page.on("console", lambda msg: errors.append(msg) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    queue = Assignment.objects.filter(campaign=campaign, reviewer=reviewer)
    n = queue.count()
    assert set(queue.values_list("kind", flat=True)) == {"live", "gold", "repeat"}

    log_in(page, live_server, reviewer.email)
    page.wait_for_url(f"{live_server.url}/queue/")
    page.get_by_role("link", name="Start").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#judgment-form")
    for done in range(n):
        # The new item has the focus (its keys are live) before the reviewer types.
        page.wait_for_function(
            "() => document.activeElement === document.querySelector('#item-heading')"
        )
        page.keyboard.press("1")  # always "Response 1": a side habit, whatever the item
        page.keyboard.press("Enter")
        if done < n - 1:
            page.wait_for_function(
                "n => document.querySelector('#item-heading') && "
                "document.querySelector('#item-heading').textContent.includes('item ' + (n + 2))",
                arg=done,
            )
    page.wait_for_selector("text=Nothing left to grade here")
    assert Judgment.objects.filter(campaign=campaign).count() == n

    aggregation.run_aggregation(campaign_id=campaign.pk)
    page.context.clear_cookies()
    log_in(page, live_server, lead.email)
    page.goto(f"{live_server.url}/campaigns/{campaign.slug}/")
    row = page.locator("table.reviewer-quality tbody tr", has_text=reviewer.email)
    assert "flagged" in (row.get_attribute("class") or "")
    flags = row.locator(".flag").all_text_contents()
    assert any("Chooses one side more than chance explains" in text for text in flags)
    assert any("flipped repeats" in text for text in flags)
    # Chromium asks every origin for /favicon.ico by itself; the app serves none (not a page's).
    assert [e for e in errors if "favicon.ico" not in str(getattr(e, "location", e))] == []
