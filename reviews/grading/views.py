"""The reviewer's pages: their queue and the blind grading page with its htmx fragments."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import push_url

from evalsite.roles import REVIEWER, role_required
from reviews import access
from reviews.grading import pull, qualification
from reviews.grading import services as grading
from reviews.grading.forms import FlagForm, JudgmentForm, SkipForm
from reviews.grading.queue import grading_context, pending_count, queue_rows
from reviews.models import Assignment

PANEL = "reviews/grade.html#grading-panel"


@role_required(REVIEWER)
def queue(request):
    """The reviewer's landing page: campaigns and batches with progress and a start button."""
    return render(request, "reviews/queue.html", {"rows": queue_rows(request.user)})


@role_required(REVIEWER)
def start(request, public_id):
    """Open the reviewer's next item in a campaign (claiming one in pull mode)."""
    campaign = access.campaign_for_reviewer(request.user, public_id)
    return redirect_to_next(request, campaign)


@role_required(REVIEWER)
def grade(request, token):
    assignment = access.assignment_for_reviewer(request.user, token)
    if assignment.status == Assignment.Status.EXPIRED:
        # A pull-mode claim left past its timeout went back to the pool: on to the next item.
        messages.info(request, grading.CLAIM_RAN_OUT)
        return redirect_to_next(request, assignment.campaign)
    if assignment.reviewer_paused and assignment.status == Assignment.Status.PENDING:
        messages.info(request, qualification.PAUSED_MESSAGE)
        return redirect("reviews:queue")
    return render_item(request, assignment)


@require_POST
@role_required(REVIEWER)
def submit(request, token):
    assignment = access.assignment_for_reviewer(request.user, token)
    form = JudgmentForm(
        request.POST,
        criteria=grading.reviewer_criteria(assignment.campaign),
        require_rationale=assignment.campaign.require_rationale,
    )
    if not form.is_valid():
        return render_item(request, assignment, form=form)
    try:
        ticket = grading.read_ticket(form.cleaned_data["ticket"], assignment)
        result = grading.submit_judgment(
            assignment=assignment,
            ticket=ticket,
            preference=form.cleaned_data["preference"],
            scores=form.scores(),
            rationale=form.cleaned_data["rationale"],
            active_seconds=_seconds(form.cleaned_data.get("active_ms")),
        )
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
        return redirect_to_next(request, assignment.campaign)
    if result.notice and result.notice != grading.SAVED_WHILE_PAUSED:
        # The paused notice is the panel that comes next; said here too, it showed twice.
        messages.info(request, result.notice)
    else:
        messages.success(request, "Saved.")
    return redirect_to_next(request, assignment.campaign)


@require_POST
@role_required(REVIEWER)
def skip(request, token):
    assignment = access.assignment_for_reviewer(request.user, token)
    form = SkipForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "Choose why you are skipping this item.")
        return render_item(request, assignment)
    if grading.skip_assignment(assignment=assignment, reason=form.cleaned_data["reason"]):
        messages.info(request, "Skipped. The lead will see the reason.")
    return redirect_to_next(request, assignment.campaign)


@require_POST
@role_required(REVIEWER)
def flag(request, token):
    assignment = access.assignment_for_reviewer(request.user, token)
    form = FlagForm(request.POST)
    if form.is_valid():
        grading.flag_assignment(assignment=assignment, note=form.cleaned_data["note"])
        messages.info(request, "Flagged for the lead. You can still grade this item.")
    else:
        messages.warning(request, "Say in a few words what the lead should look at.")
    return render_item(request, assignment)


def redirect_to_next(request, campaign):
    """The next item: swapped in as a fragment (htmx, with its URL pushed) or redirected to."""
    stopped = ""
    try:
        assignment = pull.pull_next_assignment(campaign=campaign, reviewer=request.user)
    except (ValidationError, PermissionDenied) as exc:
        stopped = " ".join(getattr(exc, "messages", [str(exc)]))
        assignment = None
    if assignment is None:
        if not request.htmx:
            if stopped:
                messages.info(request, stopped)
            return redirect("reviews:queue")
        context = {
            "queue_url": reverse("reviews:queue"),
            "stopped": stopped,
            "left": pending_count(campaign=campaign, reviewer=request.user) if stopped else 0,
        }
        response = render(request, "reviews/grade.html#finished-panel", context)
        return push_url(response, reverse("reviews:queue"))
    url = reverse("grading:grade", args=[assignment.token])
    if not request.htmx:
        return redirect(url)
    return push_url(render_item(request, assignment), url)


def render_item(request, assignment: Assignment, *, form: JudgmentForm | None = None):
    context = grading_context(assignment, form=form)
    fragment = request.htmx and not request.htmx.history_restore_request
    return render(request, PANEL if fragment else "reviews/grade.html", context)


def _seconds(active_ms):
    return None if active_ms is None else active_ms / 1000
