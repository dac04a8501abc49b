from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from datasets import access
from datasets.importing.forms import SystemsForm
from datasets.pages import reads as pages
from evalsite.roles import LEAD, role_required

ITEMS_PER_PAGE = 20


@require_GET
@role_required(LEAD)
def dataset_list(request):
    # The stored count: counting items here scanned every dataset's items on each visit.
    datasets = access.datasets_for_lead(request.user).defer("stats", "description")
    jobs = access.import_jobs_for_lead(request.user)[:10]
    return render(request, "datasets/dataset_list.html", {"datasets": datasets, "jobs": jobs})


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
    query = request.GET.get("q", "").strip()[:200]
    items = pages.search_items(items=dataset.items.order_by("pk"), query=query)
    paginator = Paginator(items, ITEMS_PER_PAGE)
    if dataset.n_items and not query:  # stored by imports: a COUNT took 0.25 s on 500,000 items
        paginator.count = dataset.n_items
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "dataset": dataset,
        "query": query,
        "form": form,
        "shown": shown,
        "page": page,
        "rows": pages.item_rows(items=page.object_list, systems=shown),
    }
    template = "datasets/dataset_items.html"
    return render(request, template + "#item-list" if request.htmx else template, context)
