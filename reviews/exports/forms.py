"""Forms of the export page and the judgments upload."""

import re

from django import forms
from django.utils.html import escape

from reviews.models import Campaign

METADATA_LINE = re.compile(r"^\s*([^=\s][^=]*?)\s*=\s*(.*?)\s*$")


class ExportForm(forms.Form):
    kind = forms.ChoiceField(
        label="Format",
        choices=[
            ("csv", "CSV, one row per judgment"),
            ("jsonl", "JSONL, one object per judgment"),
            ("tidy", "Tidy CSV, one row per judgment × criterion × response"),
        ],
        initial="csv",
    )
    batch = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    reviewer = forms.ChoiceField(required=False)
    submitted_from = forms.DateField(required=False, label="Submitted on or after")
    submitted_to = forms.DateField(required=False, label="Submitted on or before")
    metadata = forms.CharField(
        required=False,
        label="Item metadata",
        help_text="One key=value per line, e.g. category=billing.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, campaign: Campaign, batches: list[int], reviewers: list[str], **kw):
        super().__init__(*args, **kw)
        self.campaign = campaign
        self.fields["batch"].choices = [("", "All batches")] + [(n, f"Batch {n}") for n in batches]
        self.fields["reviewer"].choices = [("", "All reviewers")] + [(r, r) for r in reviewers]

    def clean_metadata(self) -> dict[str, str]:
        pairs = {}
        for line in self.cleaned_data["metadata"].splitlines():
            if not line.strip():
                continue
            match = METADATA_LINE.match(line)
            if match is None:
                raise forms.ValidationError(f"“{line.strip()}” is not key=value.")
            pairs[match[1]] = match[2]
        return pairs

    def clean(self):
        data = super().clean()
        start, end = data.get("submitted_from"), data.get("submitted_to")
        if start and end and start > end:
            self.add_error("submitted_to", "The range ends before it starts.")
        return data

    def filters(self) -> dict:
        """The filters as JSON-safe values (they are stored on the ExportLog)."""
        data = self.cleaned_data
        filters = {
            "batch": data["batch"],
            "reviewer": data["reviewer"] or None,
            "submitted_from": data["submitted_from"] and data["submitted_from"].isoformat(),
            "submitted_to": data["submitted_to"] and data["submitted_to"].isoformat(),
            "metadata": data["metadata"] or None,
        }
        return {key: value for key, value in filters.items() if value not in (None, "")}


class JudgmentImportForm(forms.Form):
    file = forms.FileField(
        label="Judgments CSV",
        # Django renders help_text as HTML: escaped, or "<criterion>" is read as a tag.
        help_text=escape(
            "Columns item_id, reviewer, preference; optional rationale, submitted_at and "
            "score.<criterion> / score.<criterion>.baseline / score.<criterion>.candidate."
        ),
    )
