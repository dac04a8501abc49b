import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_logs_in_and_sees_their_queue(page, live_server, reviewer, csp_violations):
    log_in(page, live_server, reviewer.email)
    page.wait_for_url(f"{live_server.url}/queue/")
    assert page.get_by_role("heading", name="My queue").is_visible()
    assert page.get_by_role("link", name="My queue").is_visible()
    # htmx loaded from our own static files and is running.
    assert page.evaluate("typeof window.htmx") == "object"
    assert csp_violations == []


def test_a_wrong_password_keeps_the_reviewer_on_the_login_page(page, live_server, reviewer):
    log_in(page, live_server, reviewer.email, password="wrong-password")
    assert page.get_by_role("alert").is_visible()
    assert "/accounts/login/" in page.url
