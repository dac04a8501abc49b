"""The ``/api/v1/`` endpoints (DESIGN.md "HTTP API"): thin, like the pages' views. Each checks
its role through ``TokenAuth``, fetches through the same ``access`` functions as the pages and
calls the same services, which record the same audit events."""

from typing import Annotated, Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, StreamingHttpResponse
from django.urls import reverse
from ninja import NinjaAPI, Path, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestInvalid

from datasets import access as dataset_access
from datasets.importing import jobs as import_jobs
from evalsite.roles import ANALYST, LEAD, has_role
from reviews import access
from reviews.api import schemas, services, uploads
from reviews.api.auth import TokenAuth
from reviews.api.errors import ApiError, errors
from reviews.campaigns import batches
from reviews.campaigns.progress import campaign_progress
from reviews.exports import services as exports
from reviews.exports.judgment_import import JudgmentImportError, import_judgments
from reviews.reports import aggregation, gate
from reviews.reports.migration import latest_report

api = NinjaAPI(
    title="evalsite API",
    version="1",
    description="Blind side-by-side evaluation for pipelines: import pairs, run a campaign, "
    "gate a release on the human verdict. Send `Authorization: Bearer <token>`.",
    urls_namespace="api",
    docs_url=None,  # the interactive docs load scripts from a CDN, which the CSP forbids
    openapi_url="/openapi.json",
)

LEADS = TokenAuth(LEAD)
READERS = TokenAuth(LEAD, ANALYST)
PAIRS_TYPES = {"text/csv": ".csv", "application/x-ndjson": ".jsonl"}
CSV_TYPES = {"text/csv": ".csv"}
# What the URL patterns accept, so the schema says it (a slug; a dataset name without "/").
Slug = Annotated[str, Path(pattern=r"^[-a-zA-Z0-9_]+$", max_length=200)]
DatasetName = Annotated[str, Path(pattern=r"^[^/]+$", max_length=200)]


def _file_body(*types: str) -> dict[str, Any]:
    content = {t: {"schema": {"type": "string"}} for t in types}
    return {"requestBody": {"required": True, "content": content}}


def _campaign(lookup, request, slug: str):
    try:
        return lookup(request.user, slug)
    except Http404:
        raise ApiError(404, f"No campaign with the slug {slug!r}.") from None


# --------------------------------------------------------------------------------- imports


@api.post(
    "/datasets/{name}/imports",
    auth=LEADS,
    response={202: schemas.ImportStarted, **errors(400, 403, 413, 415)},
    openapi_extra=_file_body(*PAIRS_TYPES),
    url_name="import-create",
    summary="Import a pairs file into a dataset (created if new)",
)
def create_import(request, name: DatasetName, redact_pii: bool = False, filename: str = "pairs"):
    with uploads.body_file(request, filename=filename, accepted=PAIRS_TYPES) as path:
        job = services.start_import(
            path=path, filename=path.name, dataset_name=name, redact_pii=redact_pii,
            user=request.user,
        )  # fmt: skip
    url = reverse("api:import-status", kwargs={"job_id": job.pk})
    return Status(202, {"id": job.pk, "status": job.status, "url": url})


@api.get(
    "/imports/{job_id}",
    auth=LEADS,
    response={200: schemas.ImportStatus, **errors(403, 404)},
    url_name="import-status",
    summary="An import job's status, progress and errors",
)
def import_status(request, job_id: int):
    try:
        job = dataset_access.import_job_for_lead(request.user, job_id)
    except Http404:
        raise ApiError(404, f"No import job {job_id}.") from None
    job = import_jobs.expire_stale_job(job=job)
    return {
        "id": job.pk,
        "dataset": job.dataset_name,
        "filename": job.filename,
        "status": job.status,
        "progress": job.percent,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "errors": [str(e) for e in job.errors or []],
        "summary": job.summary or {},
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


# ------------------------------------------------------------------------------- campaigns


@api.post(
    "/campaigns",
    auth=LEADS,
    response={201: schemas.CampaignCreated, **errors(400, 403, 413)},
    url_name="campaign-create",
    summary="Create a campaign",
)
def create_campaign(request, body: schemas.CampaignIn):
    campaign = services.create_campaign_from_spec(**body.dict(), actor=request.user)
    url = reverse("api:campaign", kwargs={"slug": campaign.slug})
    return Status(201, {"slug": campaign.slug, "url": url})


@api.get(
    "/campaigns/{slug}",
    auth=LEADS,
    response={200: schemas.CampaignOut, **errors(403, 404)},
    url_name="campaign",
    summary="A campaign's settings and progress",
)
def campaign_detail(request, slug: Slug):
    campaign = _campaign(access.campaign_for_lead, request, slug)
    progress = campaign_progress(campaign=campaign)
    totals = progress.totals
    return {
        "slug": campaign.slug,
        "name": campaign.name,
        "status": campaign.status,
        "mode": campaign.mode,
        "dataset": campaign.dataset.name,
        "baseline": campaign.baseline.name,
        "candidate": campaign.candidate.name,
        "rubric": campaign.rubric.name,
        "rubric_version": campaign.rubric.version,
        "overlap": campaign.overlap,
        "margin": campaign.margin,
        "decision_threshold": campaign.decision_threshold,
        "seed": campaign.seed,
        "webhook": bool(campaign.webhook_url),
        "created_at": campaign.created_at,
        "progress": {
            "items": progress.items,
            "slots": progress.slots,
            "open_slots": progress.open_slots,
            "assigned": totals.total,
            "done": totals.done,
            "pending": totals.pending,
            "skipped": totals.skipped,
            "percent": totals.percent,
        },
    }


@api.post(
    "/campaigns/{slug}/assignments",
    auth=LEADS,
    response={201: schemas.Assigned, **errors(400, 403, 404, 413)},
    url_name="assignments",
    summary="Cut the unassigned items into batches and assign them to reviewers",
)
def assign(request, slug: Slug, body: schemas.AssignIn):
    campaign = _campaign(access.campaign_for_lead, request, slug)
    reviewers = services.reviewers_by_email(body.reviewers)
    result = batches.create_batches_and_assign(
        campaign=campaign, reviewers=reviewers, batch_size=body.batch_size, actor=request.user
    )
    return Status(
        201,
        {
            "batches": [batch.number for batch in result.batches],
            "items": result.n_items,
            "assignments": result.n_assignments,
            "refilled": result.n_refilled,
            "left_open": result.n_left_open,
        },
    )


@api.post(
    "/campaigns/{slug}/judgments",
    auth=LEADS,
    response={201: schemas.JudgmentsImported, **errors(400, 403, 404, 413, 415)},
    openapi_extra=_file_body(*CSV_TYPES),
    url_name="judgments-import",
    summary="Import judgments gathered elsewhere (a judgments CSV)",
)
def judgments_import(request, slug: Slug, filename: str = "judgments"):
    campaign = _campaign(access.campaign_for_lead, request, slug)
    with uploads.body_file(request, filename=filename, accepted=CSV_TYPES) as path:
        try:
            summary = import_judgments(
                path=path, filename=path.name, campaign=campaign, actor=request.user
            )
        except JudgmentImportError as exc:
            raise ApiError(400, "The judgments file was not imported.", exc.errors) from exc
    return Status(
        201,
        {
            "rows": summary.rows,
            "created": summary.created,
            "already_imported": summary.already_imported,
            "new_reviewers": len(summary.new_reviewers),
        },
    )


# --------------------------------------------------------------------------------- reports


@api.get(
    "/campaigns/{slug}/report",
    auth=READERS,
    response={200: dict[str, Any], **errors(403, 404)},
    url_name="report",
    summary="The latest report, as `manage.py aggregate --json` prints it",
)
def report(request, slug: Slug):
    campaign = _campaign(access.campaign_for_reports, request, slug)
    latest = latest_report(campaign)
    if latest is None:
        raise ApiError(404, "No report has been computed yet: POST to this URL to compute one.")
    return latest.result


@api.post(
    "/campaigns/{slug}/report",
    auth=READERS,
    response={202: schemas.ReportQueued, **errors(403, 404)},
    url_name="report-recompute",
    summary="Queue a recomputation of the report",
)
def recompute(request, slug: Slug):
    campaign = _campaign(access.campaign_for_reports, request, slug)
    queued = aggregation.request_report(campaign=campaign)
    url = reverse("api:report", kwargs={"slug": campaign.slug})
    return Status(202, {"id": queued.pk, "status": queued.status, "url": url})


@api.get(
    "/campaigns/{slug}/decision",
    auth=READERS,
    response={200: schemas.Decision, **errors(403, 404)},
    url_name="decision",
    summary="The migration decision: the release gate",
)
def decision(request, slug: Slug):
    campaign = _campaign(access.campaign_for_reports, request, slug)
    return gate.campaign_decision(campaign=campaign)


@api.get(
    "/campaigns/{slug}/judgments.csv",
    auth=READERS,
    response={**errors(403, 404)},
    openapi_extra={
        "responses": {
            200: {
                "description": "The export CSV (DESIGN.md), streamed.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
    url_name="judgments-export",
    summary="The judgments export CSV, streamed (analysts get reviewers' pseudonyms)",
)
def judgments_export(request, slug: Slug):
    campaign = _campaign(access.campaign_for_reports, request, slug)
    _, lines = exports.start_export(
        campaign=campaign,
        kind="csv",
        filters={},
        pseudonymise=not has_role(request.user, LEAD),
        user=request.user,
    )
    response = StreamingHttpResponse(lines, content_type=exports.CONTENT_TYPES["csv"])
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-judgments.csv"'
    return response


# ---------------------------------------------------------------------------------- errors


def _error(request, status: int, error: str, details: list[str] | None = None):
    return api.create_response(
        request, {"error": error, "details": list(details or [])}, status=status
    )


@api.exception_handler(ApiError)
def on_api_error(request, exc: ApiError):
    return _error(request, exc.status, exc.error, exc.details)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    # django-ninja's own refusals, such as a body that is not JSON.
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(AuthenticationError)
def on_no_token(request, exc):
    return _error(request, 401, "Send a token: Authorization: Bearer <token>.")


@api.exception_handler(RequestInvalid)
def on_invalid_request(request, exc: RequestInvalid):
    details = [f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors]
    return _error(request, 400, "The request is not valid.", details)


def _where(loc) -> str:
    """A field's name as the caller wrote it: ("body", "body", "overlap") is "overlap"."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        parts = parts[2:] or ["body"]
    elif parts[:1] in (["query"], ["path"]):
        parts = parts[1:]
    return ".".join(parts) or "request"


@api.exception_handler(ValidationError)
def on_refused(request, exc: ValidationError):
    return _error(request, 400, exc.messages[0] if len(exc.messages) == 1 else
                  "The request was refused; nothing was saved.", exc.messages)  # fmt: skip


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    return _error(request, 413, "The request body is larger than the limit for JSON bodies.")


@api.exception_handler(PermissionDenied)
def on_denied(request, exc):
    return _error(request, 403, str(exc) or "Not allowed.")


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "Not found.")
