"""The lead's import pages: upload a pairs file, preview and confirm it, follow its progress."""

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling

from datasets import access
from datasets.importing import jobs as import_jobs
from datasets.importing.forms import UploadForm
from datasets.pages import reads as pages
from evalsite.roles import LEAD, role_required


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
    if "preview" in context and context["preview"].errors:
        import_jobs.refuse_previewed_job(job=job, errors=context["preview"].errors)
    return render(request, "datasets/job.html", context)


@require_GET
@role_required(LEAD)
def job_status(request, pk: int):
    """The polled progress fragment; tells htmx to stop polling once the job has finished."""
    job = import_jobs.expire_stale_job(job=access.import_job_for_lead(request.user, pk))
    html = render_to_string("datasets/job.html#job-status", {"job": job}, request=request)
    return HttpResponseStopPolling(html) if job.is_finished else HttpResponse(html)
