"""Forms for leads: campaigns, batches and assignment, pending work, rubrics and their criteria."""

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.urls import reverse

from datasets.models import Dataset, Response, System
from evalsite.roles import ANALYST, LEAD, REVIEWER
from reviews.campaigns import people
from reviews.campaigns.masking import default_mask_patterns, validate_patterns
from reviews.campaigns.rubrics import DIRECTIONS, MAX_CRITERIA
from reviews.models import Batch, Campaign, Rubric
from reviews.reports.gates import format_gates, parse_gates

MAX_RUBRIC_FILE_BYTES = 1024 * 1024


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class ReviewerChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.email or obj.username


class ReviewerField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.email or obj.username


REVIEWER_TITLE_HELP = (
    "What reviewers see as the campaign's name (the name above is for leads and analysts, and "
    "may name the systems). Empty: “Side-by-side review”."
)
PATTERNS_HELP = (
    "Regular expressions (RE2 syntax: no look-arounds or back-references), one per line, "
    "matched ignoring case against the text as reviewers read it; at most 50, of 300 "
    "characters each."
)


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    reviewer_title = forms.CharField(
        max_length=200, required=False, label="Title for reviewers", help_text=REVIEWER_TITLE_HELP
    )
    dataset = forms.ModelChoiceField(Dataset.objects.order_by("name"))
    baseline = forms.ModelChoiceField(
        System.objects.order_by("name"), help_text="The system in use."
    )
    candidate = forms.ModelChoiceField(
        System.objects.order_by("name"), help_text="The system that would replace it."
    )
    rubric = forms.ModelChoiceField(Rubric.objects.order_by("name"))
    overlap = forms.IntegerField(
        label="Overlap k",
        min_value=1,
        max_value=50,
        initial=1,
        help_text="Distinct reviewers per item.",
    )
    margin = forms.FloatField(
        label="Non-inferiority margin",
        min_value=0,
        max_value=0.49,
        initial=0.05,
        help_text="The candidate counts as no worse if its win rate is above 0.5 minus this.",
    )
    mode = forms.ChoiceField(
        choices=Campaign.Mode.choices, initial=Campaign.Mode.PUSH, widget=forms.RadioSelect
    )
    claim_timeout_minutes = forms.IntegerField(
        label="Claim timeout (minutes)",
        required=False,
        min_value=1,
        max_value=7 * 24 * 60,
        initial=30,
        help_text="Pull mode: an item a reviewer claimed and did not answer within this goes "
        "back to the pool.",
    )
    roster = ReviewerChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="In pull mode, who may pull items. Assigning a batch adds its reviewers.",
    )
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Shown to reviewers before they start (Markdown).",
    )
    use_default_masks = forms.BooleanField(
        required=False,
        initial=True,
        label="Mask both systems' names and common vendor phrases (“As an AI developed by …”)",
    )
    extra_mask_patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="More masking patterns",
        help_text=PATTERNS_HELP,
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**63 - 1,
        help_text="Leave empty for a random one; it is stored, so assignment can be reproduced.",
    )
    require_rationale = forms.BooleanField(required=False, label="Ask reviewers for a rationale")
    gold_rate = forms.FloatField(
        label="Share of gold items",
        required=False,
        min_value=0,
        max_value=0.5,
        initial=0.05,
        help_text="Known-answer items mixed into each queue (0.05 is 1 in 20; never two in a row).",
    )
    repeat_rate = forms.FloatField(
        label="Share of repeats",
        required=False,
        min_value=0,
        max_value=0.5,
        initial=0,
        help_text="Answered items shown again later with the sides swapped.",
    )
    qualify_items = forms.IntegerField(
        label="Qualification items",
        required=False,
        min_value=0,
        max_value=100,
        initial=0,
        help_text="The first N items of each queue are gold.",
    )
    min_accuracy = forms.FloatField(
        label="Minimum gold accuracy",
        min_value=0,
        max_value=1,
        required=False,
        help_text="Below it, a reviewer is paused until you reinstate them (needs N above 0).",
    )

    def __init__(self, *args: Any, reviewers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roster"].queryset = reviewers
        self.fields["dataset"].widget.attrs.update(
            {
                "hx-get": reverse("reviews:campaign-create"),
                "hx-target": "#system-fields",
                "hx-swap": "outerHTML",
                "hx-trigger": "change",
            }
        )
        dataset = self._chosen_dataset()
        if dataset is not None:
            # Only the systems that answered the chosen dataset (the page swaps these selects
            # when the dataset changes; without JavaScript a wrong pick is refused on submit).
            answered = System.objects.filter(
                Exists(Response.objects.filter(system=OuterRef("pk"), item__dataset=dataset))
            ).order_by("name")
            message = f"This system has no responses in the dataset “{dataset.name}”."
            for name in ("baseline", "candidate"):
                self.fields[name].queryset = answered
                self.fields[name].error_messages["invalid_choice"] = message

    def _chosen_dataset(self) -> Dataset | None:
        key = self.add_prefix("dataset")
        value = self.data.get(key) if self.is_bound else self.initial.get("dataset")
        if isinstance(value, Dataset):
            return value
        try:
            return Dataset.objects.filter(pk=int(value)).first() if value else None
        except (TypeError, ValueError):
            return None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("min_accuracy") is not None and not data.get("qualify_items"):
            self.add_error("qualify_items", "A minimum accuracy needs qualification items.")
        baseline, candidate = data.get("baseline"), data.get("candidate")
        if baseline and candidate and baseline == candidate:
            self.add_error("candidate", "The candidate must be a different system.")
        patterns = _lines(data.get("extra_mask_patterns", ""))
        if data.get("use_default_masks") and baseline and candidate:
            patterns = default_mask_patterns([baseline.name, candidate.name]) + patterns
        try:
            data["mask_patterns"] = validate_patterns(patterns)
        except ValidationError as exc:
            self.add_error("extra_mask_patterns", exc)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        keys = (
            "name",
            "reviewer_title",
            "dataset",
            "baseline",
            "candidate",
            "rubric",
            "overlap",
            "margin",
            "mode",
            "roster",
            "instructions",
            "mask_patterns",
            "seed",
            "require_rationale",
            "gold_rate",
            "repeat_rate",
            "qualify_items",
            "min_accuracy",
            "claim_timeout_minutes",
        )
        # Left empty: the campaign's defaults (1 gold item in 20, no repeats, no qualification,
        # claims held for 30 minutes).
        defaults = {"gold_rate": 0.05, "repeat_rate": 0.0, "qualify_items": 0}
        data = {key: self.cleaned_data[key] for key in keys}
        data["claim_timeout_minutes"] = data["claim_timeout_minutes"] or 30
        return {**data, **{k: v for k, v in defaults.items() if data[k] is None}}


class CampaignEditForm(forms.Form):
    name = forms.CharField(max_length=200)
    reviewer_title = forms.CharField(
        max_length=200, required=False, label="Title for reviewers", help_text=REVIEWER_TITLE_HELP
    )
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text="Markdown. Saving a change starts a new instructions version.",
    )
    mask_patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        label="Masking patterns",
        help_text=PATTERNS_HELP,
    )
    margin = forms.FloatField(label="Non-inferiority margin", min_value=0, max_value=0.49)
    mode = forms.ChoiceField(choices=Campaign.Mode.choices, widget=forms.RadioSelect)
    roster = ReviewerChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    require_rationale = forms.BooleanField(required=False, label="Ask reviewers for a rationale")
    operational_gates = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Operational gates",
        help_text=(
            "Checked by the migration decision beside quality, one rule a line, on a numeric "
            "column of the pairs file (per response) or an automatic metric: "
            "'p90 latency_ms <= 1500', 'mean cost_usd <= baseline', 'mean format_ok >= 0.99'. "
            "Statistics: mean, median, p90, p95, p99."
        ),
    )
    segment_key = forms.CharField(
        max_length=100,
        required=False,
        label="Decide per segment",
        help_text=(
            "An item metadata column (for example region): each value gets its own verdict, "
            "and the campaign's is the strictest of them."
        ),
    )

    def __init__(self, *args: Any, campaign: Campaign, reviewers: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "name": campaign.name,
                "reviewer_title": campaign.reviewer_title,
                "instructions": campaign.instructions,
                "mask_patterns": "\n".join(campaign.mask_patterns),
                "margin": campaign.margin,
                "mode": campaign.mode,
                "roster": campaign.roster.all(),
                "require_rationale": campaign.require_rationale,
                "operational_gates": format_gates(campaign.operational_gates or []),
                "segment_key": campaign.segment_key,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["roster"].queryset = reviewers

    def clean_mask_patterns(self) -> list[str]:
        return validate_patterns(_lines(self.cleaned_data["mask_patterns"]))

    def clean_operational_gates(self) -> list[dict]:
        rules, errors = parse_gates(self.cleaned_data["operational_gates"])
        if errors:
            raise forms.ValidationError(errors)
        return rules

    def clean_segment_key(self) -> str:
        return self.cleaned_data["segment_key"].strip()


class BatchForm(forms.Form):
    SELECTIONS = [
        ("all", "Every item not yet assigned"),
        ("sample", "A random sample of N items"),
        ("stratified", "N items stratified by a metadata key"),
    ]
    reviewers = ReviewerChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple)
    selection = forms.ChoiceField(choices=SELECTIONS, initial="all", widget=forms.RadioSelect)
    n = forms.IntegerField(label="N", min_value=1, required=False)
    key = forms.CharField(
        label="Metadata key", max_length=100, required=False, help_text="For example: category."
    )
    batch_size = forms.IntegerField(
        min_value=1, required=False, help_text="Items per batch. Empty: one batch."
    )
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, reviewers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewers

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        selection = data.get("selection")
        if selection in ("sample", "stratified") and not data.get("n"):
            self.add_error("n", "How many items?")
        if selection == "stratified" and not data.get("key"):
            self.add_error("key", "Which metadata key should the sample be stratified by?")
        if selection == "all":
            data["n"] = data["key"] = None
        return data


class UnassignForm(forms.Form):
    reviewer = ReviewerField(queryset=None)
    batch = forms.ModelChoiceField(queryset=None, required=False, empty_label="All batches")

    def __init__(self, *args: Any, campaign: Campaign, reviewers: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "unassign")
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = reviewers
        self.fields["batch"].queryset = Batch.objects.filter(campaign=campaign)


class ReassignForm(forms.Form):
    from_reviewer = ReviewerField(queryset=None, label="Move pending work of")
    to_reviewers = ReviewerChoiceField(queryset=None, label="To")
    batch = forms.ModelChoiceField(queryset=None, required=False, empty_label="All batches")

    def __init__(
        self, *args: Any, campaign: Campaign, reviewers: Any, candidates: Any, **kwargs: Any
    ) -> None:
        kwargs.setdefault("prefix", "reassign")
        super().__init__(*args, **kwargs)
        self.fields["from_reviewer"].queryset = reviewers
        self.fields["to_reviewers"].queryset = candidates
        self.fields["batch"].queryset = Batch.objects.filter(campaign=campaign)


# ---------------------------------------------------------------------------------------------
# Rubrics


class RubricForm(forms.Form):
    name = forms.CharField(max_length=200)
    # The version the lead started editing from, so a concurrent save is not silently overwritten.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


ANCHOR_LINE = re.compile(r"^\s*(-?\d+)\s*[=:]\s*(.+?)\s*$")


class CriterionForm(forms.Form):
    name = forms.CharField(
        max_length=64, help_text="An identifier such as correctness (letters, digits, _ and -)."
    )
    label = forms.CharField(max_length=300, required=False, help_text="The question reviewers see.")
    kind = forms.ChoiceField(choices=[("scale", "Scale"), ("binary", "Yes / no")], initial="scale")
    per = forms.ChoiceField(
        choices=[("response", "Each response"), ("pair", "The pair")], initial="response"
    )
    min = forms.IntegerField(required=False, initial=1)
    max = forms.IntegerField(required=False, initial=5)
    anchors = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Anchor labels",
        help_text="One per line, such as: 1 = Wrong",
    )
    optional = forms.BooleanField(required=False, label="Reviewers may leave it blank")
    critical = forms.BooleanField(required=False, label="Critical (gates the decision)")
    direction = forms.ChoiceField(
        choices=[(d, d.replace("_", " ").capitalize()) for d in DIRECTIONS],
        initial="higher_is_better",
    )
    pass_threshold = forms.IntegerField(
        required=False, help_text="Scale only: values at or above it pass."
    )
    refusal_judge = forms.BooleanField(
        required=False,
        label="Judge it by the built-in refusal metric",
        help_text="When the pairs file has no auto_ verdicts for it; a refusal counts as a fail.",
    )
    help = forms.CharField(max_length=1000, required=False, label="Help for reviewers")

    def clean_anchors(self) -> dict[str, str]:
        anchors, bad = {}, []
        for line in _lines(self.cleaned_data["anchors"]):
            match = ANCHOR_LINE.match(line)
            if match:
                anchors[str(int(match[1]))] = match[2]
            else:
                bad.append(line)
        if bad:
            raise ValidationError(f"Write each anchor as “value = label”, not: {'; '.join(bad)}")
        return anchors

    def criterion(self) -> dict[str, Any]:
        data = self.cleaned_data
        criterion = {
            "name": data["name"].strip(),
            "label": data["label"].strip() or data["name"].strip(),
            "kind": data["kind"],
            "per": data["per"],
            "required": not data["optional"],
            "critical": data["critical"],
            "direction": data["direction"],
        }
        if data["kind"] == "scale":
            criterion.update(min=data["min"], max=data["max"], anchors=data["anchors"])
            if data["pass_threshold"] is not None:
                criterion["pass_threshold"] = data["pass_threshold"]
        if data["refusal_judge"]:
            criterion["judge"] = "refusal_metric"
        if data["help"].strip():
            criterion["help"] = data["help"].strip()
        return criterion


class BaseCriterionFormSet(forms.BaseFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        # Say what Django's ORDER and DELETE fields do, in the lead's words.
        form.fields["ORDER"].label = "Position"
        form.fields["ORDER"].help_text = "Questions are asked in this order."
        form.fields["ORDER"].widget.attrs["class"] = "narrow"
        form.fields["DELETE"].label = "Remove this criterion"


CriterionFormSet = forms.formset_factory(
    CriterionForm,
    formset=BaseCriterionFormSet,
    extra=1,
    can_order=True,
    can_delete=True,
    max_num=MAX_CRITERIA,
    validate_max=True,
)
# Editing a rubric shows its criteria only: "Add a criterion" adds a row when one is wanted.
EditCriterionFormSet = forms.formset_factory(
    CriterionForm,
    formset=BaseCriterionFormSet,
    extra=0,
    can_order=True,
    can_delete=True,
    max_num=MAX_CRITERIA,
    validate_max=True,
)


def criteria_from_formset(formset: forms.BaseFormSet) -> list[dict[str, Any]]:
    """The criteria in the order the lead chose, without deleted and untouched blank rows."""
    return [form.criterion() for form in formset.ordered_forms]


def criteria_initial(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for order, c in enumerate(criteria, start=1):
        anchors = c.get("anchors") or {}
        rows.append(
            {
                "name": c.get("name", ""),
                "label": c.get("label", ""),
                "kind": c.get("kind", "scale"),
                "per": c.get("per", "response"),
                "min": c.get("min"),
                "max": c.get("max"),
                "anchors": "\n".join(f"{value} = {text}" for value, text in anchors.items()),
                "optional": not c.get("required", True),
                "critical": bool(c.get("critical", False)),
                "direction": c.get("direction", "higher_is_better"),
                "pass_threshold": c.get("pass_threshold"),
                "refusal_judge": c.get("judge") == "refusal_metric",
                "help": c.get("help", ""),
                "ORDER": order,
            }
        )
    return rows


class RubricImportForm(forms.Form):
    file = forms.FileField(required=False, label="Rubric file (JSON)")
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}), required=False, label="…or paste the JSON"
    )
    name = forms.CharField(
        max_length=200, required=False, help_text="Optional: import under this name instead."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload, text = data.get("file"), data.get("text", "").strip()
        if bool(upload) == bool(text):
            raise ValidationError("Choose a file or paste the JSON (one of the two).")
        if upload:
            if upload.size > MAX_RUBRIC_FILE_BYTES:
                raise ValidationError("That file is too large for a rubric (1 MB at most).")
            raw = upload.read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValidationError("The file is not UTF-8 text.") from exc
        try:
            data["data"] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from exc
        return data


ROLE_CHOICES = [(REVIEWER, "Reviewer"), (ANALYST, "Analyst"), (LEAD, "Evaluation lead")]


class InviteForm(forms.Form):
    emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "ana@example.org, ben@example.org"}),
        help_text="One or more addresses, separated by commas or new lines.",
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=REVIEWER)
    campaign = forms.SlugField(required=False, widget=forms.HiddenInput)

    def clean_emails(self) -> list[str]:
        return people.parse_emails(self.cleaned_data["emails"])
