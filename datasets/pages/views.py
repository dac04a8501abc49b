from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from datasets import access
from datasets.importing import jobs as import_jobs
from datasets.importing.forms import SystemsForm, UploadForm
from datasets.pages import reads as pages
from evalsite.roles import LEAD, role_required

ITEMS_PER_PAGE = 20


@require_GET
@role_required(LEAD)
def dataset_list(request):
    datasets = access.datasets_for_lead(request.user).annotate(n_items=Count("items"))
    jobs = access.import_jobs_for_lead(request.user)[:10]
    return render(request, "datasets/dataset_list.html", {"datasets": datasets, "jobs": jobs})


@require_http_methods(["GET", "POST"])
@role_required(LEAD)
def upload(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = import_jobs.create_import_job(
            upload=form.cleaned_data["file"],
            dataset_name=form.cleaned_data["dataset"],
            redact_pii=form.cleaned_data["redact_pii"],
            user=request.user,
        )
        return redirect("datasets:job", pk=job.pk)
    names = access.datasets_for_lead(request.user).values_list("name", flat=True)
    return render(request, "datasets/upload.html", {"form": form, "dataset_names": names})


@require_http_methods(["GET", "POST"])
@role_required(LEAD)
def job(request, pk: int):
    """The preview of an uploaded file and its Confirm button; then the job's progress."""
    job = import_jobs.expire_stale_job(job=access.import_job_for_lead(request.user, pk))
    if request.method == "POST":
        if request.POST.get("action") == "retry":
            import_jobs.retry_import(job=job)
        else:
            import_jobs.confirm_import(job=job)
        if request.htmx:
            return render(request, "datasets/job.html#job-status", {"job": job})
        return redirect("datasets:job", pk=job.pk)
    context = {"job": job, **pages.job_preview_context(job=job)}
    return render(request, "datasets/job.html", context)


@require_GET
@role_required(LEAD)
def job_status(request, pk: int):
    """The polled progress fragment; tells htmx to stop polling once the job has finished."""
    job = import_jobs.expire_stale_job(job=access.import_job_for_lead(request.user, pk))
    html = render_to_string("datasets/job.html#job-status", {"job": job}, request=request)
    return HttpResponseStopPolling(html) if job.is_finished else HttpResponse(html)


@require_GET
@role_required(LEAD)
def dataset_detail(request, slug: str):
    """Systems, counts, item metadata and the metrics per system side by side."""
    dataset = access.dataset_for_lead(request.user, slug)
    context = pages.dataset_overview(dataset=dataset)
    if request.htmx and request.htmx.target == "metrics":
        html = render_to_string("datasets/dataset_detail.html#metrics", context, request=request)
        return HttpResponse(html) if context["metrics_pending"] else HttpResponseStopPolling(html)
    jobs = access.import_jobs_for_lead(request.user).filter(dataset=dataset)[:5]
    return render(request, "datasets/dataset_detail.html", {**context, "jobs": jobs})


@require_GET
@role_required(LEAD)
def dataset_items(request, slug: str):
    """Items page by page, with two systems' responses side by side (Markdown, sanitized)."""
    dataset = access.dataset_for_lead(request.user, slug)
    systems = pages.dataset_systems(dataset=dataset)
    asked = request.GET if {"a", "b"} & set(request.GET) else None
    form = SystemsForm(asked, systems=systems)
    chosen = form.cleaned_data if form.is_valid() else {}
    shown = pages.choose_systems(systems, chosen.get("a"), chosen.get("b"))
    if not form.is_bound:
        form = SystemsForm(initial=dict(zip("ab", shown, strict=False)), systems=systems)
    page = Paginator(dataset.items.order_by("pk"), ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "dataset": dataset,
        "form": form,
        "shown": shown,
        "page": page,
        "rows": pages.item_rows(items=page.object_list, systems=shown),
    }
    template = "datasets/dataset_items.html"
    return render(request, template + "#item-list" if request.htmx else template, context)
