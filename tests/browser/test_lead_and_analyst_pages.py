"""The lead's and the analyst's pages in Chromium on the demo data: no console error (CSP
included), nothing wider than the window, the recompute that shows its figures by itself, and a
1366x900 screenshot of each page (tests/browser/screenshots/)."""

import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from reviews.models import Assignment, Campaign, Report
from tests.browser.conftest import shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "evalsite-demo"


@pytest.fixture
def demo():
    for role in ("reviewer", "lead", "analyst"):  # transactional tests flush the roles migration
        Group.objects.get_or_create(name=role)
    call_command("load_demo", verbosity=0)
    fresh = Campaign.objects.exclude(slug__startswith="pilot").get()
    pending = list(Assignment.objects.filter(campaign=fresh).order_by("pk")[:3])
    Assignment.objects.filter(pk=pending[0].pk).update(
        flagged=True, flag_note="Response 2 quotes a customer's phone number."
    )
    Assignment.objects.filter(pk__in=[a.pk for a in pending[1:]]).update(
        status="skipped", skip_reason="broken"
    )
    return {"fresh": fresh, "pilot": Campaign.objects.get(slug__startswith="pilot")}


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def visit(page, live_server, path, name):
    page.goto(f"{live_server.url}{path}")
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{path} is {width}px wide: it scrolls sideways"
    shoot(page, name)


def test_lead_pages(page, live_server, demo, console_errors):
    fresh, pilot = demo["fresh"], demo["pilot"]
    sign_in(page, live_server, "lead@example.org")
    shoot(page, "lead-campaigns")
    pages = {
        f"/campaigns/{fresh.slug}/": "lead-campaign",
        f"/campaigns/{fresh.slug}/flags/": "lead-flags",
        "/people/": "lead-people",
        f"/rubrics/{fresh.rubric_id}/": "lead-rubric",
        "/datasets/": "lead-datasets",
        f"/datasets/{fresh.dataset.slug}/": "lead-dataset",
        f"/datasets/{fresh.dataset.slug}/items/": "lead-items",
        "/audit/": "lead-audit",
        f"/reports/{pilot.slug}/migration/": "lead-migration",
        f"/exports/{pilot.slug}/import/": "lead-judgment-import",
    }
    for path, name in pages.items():
        visit(page, live_server, path, name)

    page.goto(f"{live_server.url}/campaigns/{fresh.slug}/flags/")
    assert page.get_by_text("quotes a customer's phone number").is_visible()

    page.goto(f"{live_server.url}/rubrics/{fresh.rubric_id}/")
    widths = page.locator("input[name$='-label']").evaluate_all(
        "els => els.map(e => e.clientWidth)"
    )
    assert min(widths) > 300  # question labels are not cut off

    page.goto(f"{live_server.url}/datasets/{fresh.dataset.slug}/items/")
    page.get_by_label("Search").fill("parcel")
    page.wait_for_function(
        "() => document.querySelector('#item-list').textContent.includes('matching')"
    )
    shoot(page, "lead-items-search")

    page.goto(f"{live_server.url}/campaigns/new/")
    page.get_by_label("Dataset").select_option(label=fresh.dataset.name)
    page.wait_for_function(
        "() => document.querySelectorAll('#id_baseline option').length === 3"  # blank + 2
    )
    shoot(page, "lead-campaign-form")
    assert console_errors == []


def test_recompute_shows_the_new_figures_without_a_reload(
    page, live_server, demo, console_errors, tasks_run_at_once
):
    pilot = demo["pilot"]
    Report.objects.filter(campaign=pilot).delete()
    sign_in(page, live_server, "analyst@example.org")
    visit(page, live_server, f"/reports/{pilot.slug}/", "analyst-report-empty")
    assert page.get_by_text("The first one appears by itself after").is_visible()
    page.get_by_role("button", name="Recompute now").click()
    page.wait_for_selector("#verdict-heading")
    visit(page, live_server, f"/reports/{pilot.slug}/", "analyst-report")
    # A later recompute of unchanged data keeps the page on the same, latest figures.
    page.get_by_role("button", name="Recompute now").click()
    page.wait_for_selector("text=Report computed")
    for path, name in {
        "/reports/": "analyst-reports",
        f"/reports/{pilot.slug}/migration/": "analyst-migration",
        f"/exports/{pilot.slug}/": "analyst-export",
    }.items():
        visit(page, live_server, path, name)
    assert console_errors == []


def test_lead_invites_a_reviewer_who_sets_a_password(page, live_server, demo, console_errors):
    from django.core import mail

    page.goto(f"{live_server.url}/accounts/login/")
    shoot(page, "login")
    sign_in(page, live_server, "lead@example.org")
    page.goto(f"{live_server.url}/people/")
    page.get_by_label("Emails").fill("new.reviewer@example.org")
    page.get_by_role("button", name="Send invitations").click()
    page.wait_for_selector("text=Invitation emailed to new.reviewer@example.org")
    shoot(page, "lead-people-invited")
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)

    page.get_by_role("button", name="Log out").click()
    page.goto(link)
    page.wait_for_selector("input[name=password1]")
    shoot(page, "invitation-set-password")
    page.locator("input[name=password1]").fill("a-long-new-passphrase-9")
    page.locator("input[name=password2]").fill("a-long-new-passphrase-9")
    page.locator("input[name=password2]").press("Enter")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("new.reviewer@example.org")
    page.get_by_label("Password").fill("a-long-new-passphrase-9")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/queue/")
    assert console_errors == []
