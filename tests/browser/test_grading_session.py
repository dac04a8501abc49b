"""A whole grading session in Chromium: no console error (CSP included), notes typed in the skip
and flag boxes stay notes, and the screenshots of the reviewer's pages."""

import pytest

from reviews.models import Judgment
from tests.browser.conftest import log_in, shoot
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHECKED_PREFERENCE = "document.querySelector('input[name=preference]:checked')"


@pytest.fixture
def batch(reviewer):
    campaign = CampaignFactory(instructions="Pick the answer you would send.")
    return [
        AssignmentFactory(
            campaign_item=CampaignItemFactory(campaign=campaign),
            reviewer=reviewer,
            position=n,
            candidate_left=n % 2 == 0,
        )
        for n in range(4)
    ]


def start(page, live_server, reviewer):
    log_in(page, live_server, reviewer.email)
    page.wait_for_url(f"{live_server.url}/queue/")
    shoot(page, "reviewer-queue")
    page.get_by_role("link", name="Start").click()
    page.wait_for_selector("#judgment-form")
    # grading.js has run once the heading holds the focus; keys before that are the browser's.
    page.wait_for_function("() => document.activeElement.id === 'item-heading'")


def test_flag_key_focuses_the_note_and_typing_stays_in_it(page, live_server, reviewer, batch):
    start(page, live_server, reviewer)
    page.keyboard.press("f")
    assert page.evaluate("document.activeElement.id") == "flag-note"
    page.keyboard.type("j1k s2 y")
    assert page.locator("#flag-note").input_value() == "j1k s2 y"
    assert page.evaluate(CHECKED_PREFERENCE) is None
    assert page.locator("#skip-box").evaluate("el => el.open") is False
    shoot(page, "grade-flag-box")
    page.keyboard.press("Escape")
    assert page.locator("#flag-box").evaluate("el => el.open") is False


def test_skip_key_focuses_a_reason_and_digits_do_not_answer(page, live_server, reviewer, batch):
    start(page, live_server, reviewer)
    page.keyboard.press("s")
    assert page.evaluate("document.activeElement.name") == "reason"
    page.keyboard.press("1")
    page.keyboard.press("y")
    assert page.evaluate(CHECKED_PREFERENCE) is None


def test_grading_session_has_no_console_error(page, live_server, reviewer, batch, console_errors):
    start(page, live_server, reviewer)
    heading = page.locator("#item-heading")
    assert heading.evaluate("el => el === document.activeElement")
    assert heading.evaluate("el => getComputedStyle(el).outlineStyle") == "none"
    for n in range(len(batch)):
        # A screenshot tool (or a browser extension) writes style="" on inputs; htmx must not
        # copy such attributes across the swap, which the CSP refuses.
        shoot(page, "grade" if n == 0 else f"grade-item-{n + 1}")
        page.keyboard.press("h")
        page.keyboard.press("?")
        page.keyboard.press("Escape")
        for key in ["1", "5", "3", "y", "n", "2"]:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        if n < len(batch) - 1:
            page.wait_for_function(
                "n => document.querySelector('#item-heading').textContent.includes('item ' + n)",
                arg=n + 2,
            )
    page.wait_for_selector("text=Nothing left to grade here")
    shoot(page, "grade-finished")
    assert Judgment.objects.count() == len(batch)
    assert console_errors == []


def test_pausing_mid_session_says_paused_once(page, live_server, reviewer, batch, console_errors):
    from reviews.models import Campaign

    start(page, live_server, reviewer)
    Campaign.objects.filter(pk=batch[0].campaign_id).update(status="paused")
    for key in ["1", "5", "3", "y", "n", "2"]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No more items for now")
    text = page.locator("#grading").inner_text()
    assert text.count("paused") == 1, text
    assert "3 items left" in text
    assert "answered every item" not in text
    shoot(page, "grade-paused")
    assert console_errors == []
