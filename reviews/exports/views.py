"""Analysts' data: the export page and its streamed download, the export log, and the upload of
judgments gathered elsewhere."""

import tempfile
from pathlib import Path

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render

from evalsite.roles import ANALYST, LEAD, has_role, role_required
from reviews import access
from reviews.exports import services as exports
from reviews.exports import writing
from reviews.exports.forms import ExportForm, JudgmentImportForm
from reviews.exports.judgment_import import JudgmentImportError, import_judgments
from reviews.models import Batch, ExportLog

LOG_ROWS = 200


def _export_form(request, campaign, *, bound: bool) -> tuple[ExportForm, bool]:
    pseudonymise = not has_role(request.user, LEAD)
    reviewers = sorted(writing.reviewer_labels(campaign, pseudonymise=pseudonymise).values())
    batches = list(Batch.objects.filter(campaign=campaign).values_list("number", flat=True))
    data = None
    if bound:
        data = request.GET.copy()
        data.setdefault("kind", "csv")
    form = ExportForm(data, campaign=campaign, batches=batches, reviewers=reviewers)
    return form, pseudonymise


@role_required(LEAD, ANALYST)
def export_form(request, slug):
    """Filters and format; the form GETs the download. Analysts see reviewers' pseudonyms."""
    campaign = access.campaign_for_reports(request.user, slug)
    form, _ = _export_form(request, campaign, bound=False)
    return render(request, "reviews/export_form.html", {"campaign": campaign, "form": form})


@role_required(LEAD, ANALYST)
def download(request, slug):
    campaign = access.campaign_for_reports(request.user, slug)
    form, pseudonymise = _export_form(request, campaign, bound=True)
    if not form.is_valid():
        return render(request, "reviews/export_form.html", {"campaign": campaign, "form": form})
    kind = form.cleaned_data["kind"]
    _, lines = exports.start_export(
        campaign=campaign,
        kind=kind,
        filters=form.filters(),
        pseudonymise=pseudonymise,
        user=request.user,
    )
    response = StreamingHttpResponse(lines, content_type=exports.CONTENT_TYPES[kind])
    suffix = "-tidy" if kind == "tidy" else ""
    filename = f"{campaign.slug}-judgments{suffix}.{exports.EXTENSIONS[kind]}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@role_required(LEAD, ANALYST)
def report_csv(request, slug):
    """The latest computed report, one row per figure; logged like every export."""
    campaign = access.campaign_for_reports(request.user, slug)
    report = campaign.reports.filter(status="done").order_by("-finished_at", "-pk").first()
    if report is None:
        messages.warning(request, "This campaign has no computed report yet: recompute it first.")
        return redirect("report:page", slug=campaign.slug)
    exports.log_report_export(campaign=campaign, report=report, user=request.user)
    response = StreamingHttpResponse(
        exports.report_lines(campaign, report.result), content_type=exports.CONTENT_TYPES["csv"]
    )
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-report.csv"'
    return response


@role_required(LEAD, ANALYST)
def flags_csv(request, slug):
    """Every flag and skip of the campaign, one a row; streamed and logged like every export.
    Analysts see reviewers' pseudonyms, as in the judgments export."""
    campaign = access.campaign_for_reports(request.user, slug)
    _, lines = exports.start_flags_export(
        campaign=campaign, pseudonymise=not has_role(request.user, LEAD), user=request.user
    )
    response = StreamingHttpResponse(lines, content_type=exports.CONTENT_TYPES["csv"])
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-flags.csv"'
    return response


@role_required(LEAD)
def export_log(request):
    """Who exported what, newest first."""
    logs = ExportLog.objects.select_related("user", "campaign")[:LOG_ROWS]
    return render(request, "reviews/export_log.html", {"logs": logs})


@role_required(LEAD)
def import_upload(request, slug):
    campaign = access.campaign_for_lead(request.user, slug)
    form = JudgmentImportForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "judgments.csv"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            try:
                summary = import_judgments(
                    path=path, filename=upload.name, campaign=campaign, actor=request.user
                )
            except JudgmentImportError as exc:
                errors = exc.errors
            else:
                messages.success(
                    request,
                    f"Imported {summary.created} judgment{'s' if summary.created != 1 else ''}"
                    f" ({summary.already_imported} already imported, "
                    f"{len(summary.new_reviewers)} new reviewer account(s)).",
                )
                return redirect("exports:import", slug=campaign.slug)
    context = {"campaign": campaign, "form": form, "errors": errors}
    return render(request, "reviews/judgment_import.html", context)
