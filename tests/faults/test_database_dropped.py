"""The PostgreSQL connection dropped in the middle of a submission: the reviewer gets the clean
error page, nothing is half-written, and sending the form again stores the judgment once."""

import pytest
from django.db import connection
from django.urls import reverse

from reviews.models import Assignment, Campaign, Judgment
from tests.factories import AssignmentFactory, CampaignItemFactory
from tests.faults.conftest import grading_answers, side_connection, ticket_of, wait_for

pytestmark = pytest.mark.services


class DropConnectionBefore:
    """A query wrapper: before the first statement starting with ``prefix``, another connection
    terminates this one's backend (pg_terminate_backend), so that statement meets a dead
    connection in the middle of the request's transaction."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.dropped: int | None = None
        self.in_transaction = False

    def __call__(self, execute, sql, params, many, context):
        if self.dropped is None and sql.lstrip().startswith(self.prefix):
            pid = context["connection"].connection.info.backend_pid
            self.in_transaction = context["connection"].in_atomic_block
            with side_connection() as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
                wait_for(
                    lambda: (
                        not other.execute(
                            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
                        ).fetchone()
                    ),
                    timeout=10,
                    what=f"backend {pid} to go away",
                )
            self.dropped = pid
        return execute(sql, params, many, context)


def test_a_connection_dropped_mid_submit_shows_the_error_page_and_a_retry_saves_once(
    transactional_db, postgres, client_for, reviewer
):
    assignment = AssignmentFactory(campaign_item=CampaignItemFactory(), reviewer=reviewer)
    client = client_for(reviewer)
    client.raise_request_exception = False
    page = client.get(reverse("grading:grade", args=[assignment.token]))
    form = grading_answers(ticket_of(page.text))
    url = reverse("grading:submit", args=[assignment.token])

    # The judgment row is inserted by then; the assignment update after it is what meets the
    # dead connection, so a commit of the half that was written would show here.
    drop = DropConnectionBefore('UPDATE "reviews_assignment"')
    with connection.execute_wrapper(drop):
        response = client.post(url, form)

    assert drop.dropped is not None
    assert drop.in_transaction
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html
    assert "OperationalError" not in html
    assert "terminat" not in html  # no driver message either
    assert not Judgment.objects.filter(assignment=assignment).exists()
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.PENDING
    assert assignment.completed_at is None
    assert Campaign.objects.get(pk=assignment.campaign_id).judgments_since_report == 0

    retry = client.post(url, form, follow=True)
    assert retry.status_code == 200
    assert "Saved." in retry.text
    again = client.post(url, form, follow=True)  # an impatient second click
    assert "already saved" in again.text
    judgment = Judgment.objects.get(assignment=assignment)
    assert judgment.is_current
    assert judgment.revision == 1
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.DONE
    assert Campaign.objects.get(pk=assignment.campaign_id).judgments_since_report == 1
