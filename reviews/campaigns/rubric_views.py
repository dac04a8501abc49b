"""The evaluation lead's rubric pages: list, create, edit, import, export and copy."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evalsite.roles import LEAD, role_required
from reviews import access
from reviews.campaigns import rubrics
from reviews.campaigns.forms import (
    CriterionFormSet,
    EditCriterionFormSet,
    RubricForm,
    RubricImportForm,
    criteria_from_formset,
    criteria_initial,
)


@role_required(LEAD)
def rubric_list(request):
    rubrics = access.rubrics_for_lead(request.user).annotate(n_campaigns=Count("campaigns"))
    return render(request, "reviews/rubric_list.html", {"rubrics": rubrics})


@role_required(LEAD)
def rubric_create(request):
    return _rubric_form(request, rubric=None)


@role_required(LEAD)
def rubric_edit(request, pk):
    return _rubric_form(request, rubric=access.rubric_for_lead(request.user, pk))


def _rubric_form(request, *, rubric):
    """Create or edit a rubric: its name and an ordered formset of criteria."""
    initial = {"name": rubric.name, "version": rubric.version} if rubric else {}
    rows = criteria_initial(rubric.criteria) if rubric else []
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and "add-criterion" in data:
        # One more blank row, filled with the defaults so it counts as untouched.
        index = int(data.get("criteria-TOTAL_FORMS", "0") or 0)
        data["criteria-TOTAL_FORMS"] = str(index + 1)
        for name, field in CriterionFormSet.form.base_fields.items():
            if field.initial is not None:
                data[f"criteria-{index}-{name}"] = str(field.initial)
    form = RubricForm(data, initial=initial)
    formset_class = EditCriterionFormSet if rows else CriterionFormSet
    formset = formset_class(data, initial=rows, prefix="criteria")
    context = {"rubric": rubric, "form": form, "formset": formset, "offer_copy": False}
    if data is not None and "add-criterion" not in data and form.is_valid() and formset.is_valid():
        try:
            rubric = _save_rubric(request, rubric, form, formset)
        except ValidationError as exc:
            form.add_error(None, exc)
            context["offer_copy"] = any(e.code == "invalidates_judgments" for e in exc.error_list)
        else:
            messages.success(request, f"Rubric “{rubric.name}” saved (version {rubric.version}).")
            return redirect("reviews:rubric-edit", pk=rubric.pk)
    if rubric is not None:
        context["in_use"] = rubrics.rubric_has_judgments(rubric)
    template = (
        "reviews/rubric_form.html#rubric-form" if request.htmx else "reviews/rubric_form.html"
    )
    return render(request, template, context)


def _save_rubric(request, rubric, form, formset):
    criteria = criteria_from_formset(formset)
    if rubric is None:
        return rubrics.create_rubric(
            name=form.cleaned_data["name"], criteria=criteria, actor=request.user
        )
    return rubrics.update_rubric(
        rubric=rubric,
        name=form.cleaned_data["name"],
        criteria=criteria,
        expected_version=form.cleaned_data["version"],
        actor=request.user,
    )


@role_required(LEAD)
def rubric_import(request):
    form = RubricImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            rubric = rubrics.import_rubric(
                data=form.cleaned_data["data"],
                name=form.cleaned_data["name"] or None,
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Rubric “{rubric.name}” imported.")
            return redirect("reviews:rubric-edit", pk=rubric.pk)
    return render(request, "reviews/rubric_import.html", {"form": form})


@role_required(LEAD)
def rubric_export(request, pk):
    """The rubric as the design's rubric JSON, as a download."""
    rubric = access.rubric_for_lead(request.user, pk)
    response = HttpResponse(
        json.dumps(rubric.as_json(), indent=2, ensure_ascii=False) + "\n",
        content_type="application/json; charset=utf-8",
    )
    filename = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in rubric.name)
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


@require_POST
@role_required(LEAD)
def rubric_copy(request, pk):
    rubric = access.rubric_for_lead(request.user, pk)
    copy = rubrics.copy_rubric(rubric=rubric, actor=request.user)
    messages.success(request, f"Copied to “{copy.name}”: change the copy freely.")
    return redirect("reviews:rubric-edit", pk=copy.pk)
