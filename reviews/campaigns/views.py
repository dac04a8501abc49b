"""The evaluation lead's pages: campaigns, their progress, batches and assignment, and rubrics."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.roles import LEAD, role_required
from reviews import access
from reviews.campaigns import batches, flags, progress, reviewer_quality, services
from reviews.campaigns.forms import (
    BatchForm,
    CampaignEditForm,
    CampaignForm,
    InviteForm,
    ReassignForm,
    UnassignForm,
)
from reviews.models import CampaignItem

# ---------------------------------------------------------------------------------------------
# Campaigns


@role_required(LEAD)
def campaign_list(request):
    """Every campaign with its systems and progress."""
    rows = access.campaigns_for_lead(request.user).annotate(
        n_assignments=Count("assignments", filter=~Q(assignments__status="expired"), distinct=True),
        n_done=Count("assignments", filter=Q(assignments__status="done"), distinct=True),
    )
    return render(request, "reviews/campaign_list.html", {"campaigns": rows})


@role_required(LEAD)
def campaign_create(request):
    reviewers = access.reviewers_for_lead(request.user)
    if request.method == "GET" and request.htmx and request.htmx.target == "system-fields":
        form = CampaignForm(initial={"dataset": request.GET.get("dataset")}, reviewers=reviewers)
        return render(request, "reviews/campaign_form.html#system-fields", {"form": form})
    if request.method == "GET" and request.htmx and "dataset" in request.GET:
        return _item_count(request, CampaignForm(request.GET, reviewers=reviewers))
    form = CampaignForm(request.POST or None, reviewers=reviewers)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.create_campaign(**form.service_kwargs(), actor=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Campaign “{campaign.name}” created.")
            return redirect("reviews:campaign-detail", slug=campaign.slug)
    return render(request, "reviews/campaign_form.html", {"form": form})


def _item_count(request, form):
    """How many items the chosen dataset and systems would put in the campaign (htmx fragment)."""
    form.is_valid()
    data = form.cleaned_data
    count = None
    if data.get("dataset") and data.get("baseline") and data.get("candidate"):
        count = services.count_campaign_items(
            dataset=data["dataset"], baseline=data["baseline"], candidate=data["candidate"]
        )
    return render(request, "reviews/campaign_form.html#item-count", {"item_count": count})


@role_required(LEAD)
def campaign_detail(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    return render(request, "reviews/campaign_detail.html", _detail_context(request, campaign))


def _detail_context(request, campaign, **forms):
    worked, candidates = _reviewer_choices(request, campaign)
    return {
        "campaign": campaign,
        "progress": progress.campaign_progress(campaign=campaign),
        "raised": flags.counts(campaign=campaign),
        "invite_form": InviteForm(initial={"campaign": campaign.slug}),
        "reviewer_quality": reviewer_quality.quality_context(campaign),
        "unassign_form": forms.get("unassign_form")
        or UnassignForm(campaign=campaign, reviewers=worked),
        "reassign_form": forms.get("reassign_form")
        or ReassignForm(campaign=campaign, reviewers=worked, candidates=candidates),
    }


@require_POST
@role_required(LEAD)
def reinstate(request, slug):
    """Let a paused reviewer grade again."""
    campaign = access.campaign_for_lead(request.user, slug)
    try:
        reviewer = reviewer_quality.paused_reviewer(campaign, request.POST.get("reviewer", ""))
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
    else:
        if reviewer_quality.reinstate_reviewer(
            campaign=campaign, reviewer=reviewer, actor=request.user
        ):
            messages.success(request, f"{reviewer.email or reviewer.username} can grade again.")
    return redirect("reviews:campaign-detail", slug=slug)


def _reviewer_choices(request, campaign):
    """(reviewers with work in or on the roster of the campaign, every reviewer)."""
    everyone = access.reviewers_for_lead(request.user)
    worked = everyone.filter(
        Q(assignments__campaign=campaign) | Q(pk__in=campaign.roster.values("pk"))
    )
    return worked, everyone


@role_required(LEAD)
def campaign_flags(request, slug):
    """Reviewers' flags and skip reasons for the campaign, filterable, paginated."""
    campaign = access.campaign_for_lead(request.user, slug)
    kind = request.GET.get("kind", "")
    context = {
        "campaign": campaign,
        "kind": kind if kind in flags.KINDS else "",
        "page": flags.flags_and_skips(campaign=campaign, kind=kind, page=request.GET.get("page")),
    }
    template = "reviews/campaign_flags.html"
    return render(request, f"{template}#flag-table" if request.htmx else template, context)


@role_required(LEAD)
def campaign_progress(request, slug):
    """The polled progress fragment (the whole page without htmx)."""
    campaign = access.campaign_for_lead(request.user, slug)
    if not request.htmx:
        return redirect("reviews:campaign-detail", slug=slug)
    context = {"campaign": campaign, "progress": progress.campaign_progress(campaign=campaign)}
    return render(request, "reviews/campaign_detail.html#progress", context)


@role_required(LEAD)
def campaign_edit(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    reviewers = access.reviewers_for_lead(request.user)
    form = CampaignEditForm(request.POST or None, campaign=campaign, reviewers=reviewers)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_campaign(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Campaign saved.")
            return redirect("reviews:campaign-detail", slug=campaign.slug)
    return render(request, "reviews/campaign_edit.html", {"campaign": campaign, "form": form})


STATUS_ACTIONS = {"pause": "paused", "resume": "active", "close": "closed"}


@require_POST
@role_required(LEAD)
def campaign_set_status(request, slug, action):
    campaign = access.campaign_for_lead(request.user, slug)
    try:
        services.set_status(campaign=campaign, status=STATUS_ACTIONS[action], actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Campaign {campaign.get_status_display().lower()}.")
    return redirect("reviews:campaign-detail", slug=campaign.slug)


@role_required(LEAD)
def batch_create(request, slug):
    """Pick items, cut them into batches and assign them to reviewers."""
    campaign = access.campaign_for_lead(request.user, slug)
    form = BatchForm(request.POST or None, reviewers=access.reviewers_for_lead(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = batches.create_batches_and_assign(
                campaign=campaign,
                reviewers=list(data["reviewers"]),
                selection=data["selection"],
                n=data["n"],
                key=data["key"] or None,
                batch_size=data["batch_size"],
                due_date=data["due_date"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"{len(result.batches)} batch(es), {result.n_assignments} assignments "
                f"for {result.n_items} items.",
            )
            return redirect("reviews:campaign-detail", slug=campaign.slug)
    context = {
        "campaign": campaign,
        "form": form,
        "unassigned": CampaignItem.objects.filter(campaign=campaign, slots_taken=0).count(),
        "metadata_keys": _metadata_keys(campaign),
    }
    return render(request, "reviews/campaign_batch_form.html", context)


def _metadata_keys(campaign, sample: int = 200) -> list[str]:
    keys: set[str] = set()
    for metadata in CampaignItem.objects.filter(campaign=campaign).values_list(
        "item__metadata", flat=True
    )[:sample]:
        keys.update(metadata or {})
    return sorted(keys)


@require_POST
@role_required(LEAD)
def unassign(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    worked, _ = _reviewer_choices(request, campaign)
    form = UnassignForm(request.POST, campaign=campaign, reviewers=worked)
    if not form.is_valid():
        context = _detail_context(request, campaign, unassign_form=form)
        return render(request, "reviews/campaign_detail.html", context)
    removed = batches.unassign(
        campaign=campaign,
        reviewer=form.cleaned_data["reviewer"],
        batch=form.cleaned_data["batch"],
        actor=request.user,
    )
    messages.success(request, f"Removed {removed} pending assignment(s); done work stays.")
    return redirect("reviews:campaign-detail", slug=campaign.slug)


@require_POST
@role_required(LEAD)
def reassign(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    worked, everyone = _reviewer_choices(request, campaign)
    form = ReassignForm(request.POST, campaign=campaign, reviewers=worked, candidates=everyone)
    if form.is_valid():
        try:
            moved = batches.reassign(
                campaign=campaign,
                from_reviewer=form.cleaned_data["from_reviewer"],
                to_reviewers=list(form.cleaned_data["to_reviewers"]),
                batch=form.cleaned_data["batch"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            summary = ", ".join(f"{n} to {email}" for email, n in moved.items()) or "nothing"
            messages.success(request, f"Moved pending work: {summary}.")
            return redirect("reviews:campaign-detail", slug=campaign.slug)
    context = _detail_context(request, campaign, reassign_form=form)
    return render(request, "reviews/campaign_detail.html", context)


# ---------------------------------------------------------------------------------------------
# Rubrics
