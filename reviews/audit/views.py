"""The leads' audit page: who did what to which object and when, newest first."""

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from evalsite.roles import LEAD, role_required
from reviews.audit import trail as audit
from reviews.models import Campaign

PAGE = "reviews/audit.html"


class AuditFilterForm(forms.Form):
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="All campaigns",
    )
    action = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "All actions"), *audit.action_choices()]


@require_GET
@role_required(LEAD)
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    chosen = form.cleaned_data if form.is_valid() else {}
    events = audit.audit_events(campaign=chosen.get("campaign"), action=chosen.get("action", ""))
    page = Paginator(events, audit.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"event": e, "action": audit.action_label(e.verb), "details": audit.detail_items(e.details)}
        for e in page.object_list
    ]
    context = {"form": form, "page": page, "rows": rows}
    return render(request, f"{PAGE}#audit-table" if request.htmx else PAGE, context)
