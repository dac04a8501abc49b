"""A reviewer grades a batch of five with the keyboard alone, in headless Chromium."""

from pathlib import Path

import pytest

from reviews.models import Judgment
from tests.browser.conftest import log_in
from tests.factories import AssignmentFactory, CampaignFactory, CampaignItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()


@pytest.fixture
def batch_of_five(reviewer):
    campaign = CampaignFactory(instructions="Pick the answer you would send.")
    return [
        AssignmentFactory(
            campaign_item=CampaignItemFactory(campaign=campaign),
            reviewer=reviewer,
            position=n,
            candidate_left=n % 2 == 0,
        )
        for n in range(5)
    ]


def serious_axe_violations(page):
    # evaluate() runs through the DevTools protocol, which the page's CSP does not govern.
    page.evaluate(AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]} {v['nodes'][0]['any']}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_grade_five_items_with_the_keyboard_only(
    page, live_server, reviewer, batch_of_five, csp_violations
):
    log_in(page, live_server, reviewer.email)
    page.wait_for_url(f"{live_server.url}/queue/")
    page.get_by_role("link", name="Start").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#judgment-form")
    assert serious_axe_violations(page) == []
    for n in range(5):
        heading = page.locator("#item-heading")
        assert heading.evaluate("el => el === document.activeElement")
        # preference, correctness R1, correctness R2, refusal_ok R1, R2, overall.
        for key in ["1" if n % 2 == 0 else "2", "5", "3", "y", "n", "2"]:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        if n < 4:
            page.wait_for_function(
                "n => document.querySelector('#item-heading') && "
                "document.querySelector('#item-heading').textContent.includes('item ' + (n + 2))",
                arg=n,
            )
    page.wait_for_selector("text=Nothing left to grade here")
    judgments = list(Judgment.objects.order_by("assignment__position"))
    assert len(judgments) == 5
    for n, (j, a) in enumerate(zip(judgments, batch_of_five, strict=True)):
        chose_left = n % 2 == 0
        expected = "candidate" if chose_left == a.candidate_left else "baseline"
        assert j.preference == expected
        left, right = ("candidate", "baseline") if a.candidate_left else ("baseline", "candidate")
        assert j.scores["correctness"] == {left: 5, right: 3}
        assert j.scores["refusal_ok"] == {left: 1, right: 0}
        assert j.duration_seconds is not None
    # The browser's back button lands on the previous item, rendered whole.
    page.go_back()
    page.wait_for_selector("#judgment-form")
    assert "revising your answer" in page.locator("#item-heading").text_content()
    assert csp_violations == []


def test_help_overlay_opens_with_question_mark(page, live_server, reviewer, batch_of_five):
    log_in(page, live_server, reviewer.email)
    page.goto(f"{live_server.url}/grade/{batch_of_five[0].token}/")
    page.locator("#item-heading").focus()
    page.keyboard.press("?")
    assert page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
