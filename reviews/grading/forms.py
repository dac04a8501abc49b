"""The grading form, built from the campaign's rubric. Field names carry no system identity."""

from django import forms
from django.utils.html import format_html_join

from reviews.grading.services import LEFT, PREFERENCE_CHOICES, RIGHT, SKIP_REASONS

SIDES = ((LEFT, "Response 1"), (RIGHT, "Response 2"))


def field_name(criterion: dict, side: str) -> str:
    return f"{criterion['name']}__{side}"


def criterion_field(criterion: dict, *, label: str) -> forms.Field:
    required = criterion.get("required", True)
    if criterion["kind"] == "binary":
        return forms.TypedChoiceField(
            label=label,
            choices=[(1, "Yes"), (0, "No")],
            coerce=int,
            widget=forms.RadioSelect,
            required=required,
        )
    low, high = criterion["min"], criterion["max"]
    anchors = {str(k): v for k, v in (criterion.get("anchors") or {}).items()}
    if criterion.get("per") == "pair":
        # A pair scale's anchors are written facing the candidate ("7: candidate much better");
        # shown to a reviewer they would name the systems and point the wrong way half the
        # time. The reviewer sees the scale in Response 1 / Response 2 terms only.
        anchors = {str(low): "Response 1 much better", str(high): "Response 2 much better"}
        if (low + high) % 2 == 0:
            anchors[str((low + high) // 2)] = "About the same"
    choices = [
        (v, f"{v} · {anchors[str(v)]}" if str(v) in anchors else str(v))
        for v in range(low, high + 1)
    ]
    return forms.TypedChoiceField(
        label=label,
        choices=choices,
        coerce=int,
        widget=forms.RadioSelect,
        required=required,
        error_messages={"invalid_choice": f"Choose a value from {low} to {high}."},
    )


class JudgmentForm(forms.Form):
    preference = forms.ChoiceField(
        label="Which response is better?",
        choices=PREFERENCE_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose which response is better (or tie / both bad)."},
    )
    rationale = forms.CharField(
        label="Why? (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=5000,
    )
    ticket = forms.CharField(widget=forms.HiddenInput)
    active_ms = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args, criteria: list[dict], require_rationale: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        if require_rationale:
            self.fields["rationale"].required = True
            self.fields["rationale"].label = "Why? (required)"
        for criterion in criteria:
            if criterion.get("per") == "pair":
                self.fields[field_name(criterion, "pair")] = criterion_field(
                    criterion, label=criterion["label"]
                )
            else:
                for side, side_label in SIDES:
                    self.fields[field_name(criterion, side)] = criterion_field(
                        criterion, label=f"{criterion['label']} ({side_label})"
                    )
        # The rationale box comes last, after every question.
        self.order_fields([*(f for f in self.fields if f != "rationale"), "rationale"])

    def questions(self) -> list[dict]:
        """Every radio question as plain data for the template, preference first.

        The template loops over these instead of rendering each radio through the form
        renderer: on the grading page that cut ~17 ms of ~60 ms (measured with cProfile).
        """
        rows = [self._question("preference", kind="preference", criterion={})]
        for criterion in self.criteria:
            sides = ("pair",) if criterion.get("per") == "pair" else (LEFT, RIGHT)
            rows.extend(
                self._question(
                    field_name(criterion, side), kind=criterion["kind"], criterion=criterion
                )
                for side in sides
            )
        return rows

    def _question(self, name: str, *, kind: str, criterion: dict) -> dict:
        bound = self[name]
        value = bound.value()
        current = "" if value is None else str(value)
        required = " required" if bound.field.required else ""
        # Built here rather than looped over in the template: ~45 radios a page, and the
        # template loop cost several milliseconds of a ~30 ms page (measured).
        options = format_html_join(
            "",
            '<label class="choice" for="{0}"><input type="radio" name="{1}" value="{2}" '
            'id="{0}"{3}{4}> {5}</label>',
            (
                (f"id_{name}_{i}", name, v, required, " checked" if str(v) == current else "",
                 label)
                for i, (v, label) in enumerate(bound.field.choices)
            ),
        )  # fmt: skip
        return {
            "name": name,
            "label": bound.label,
            "kind": kind,
            "criterion": criterion,
            "required": bound.field.required,
            "errors": bound.errors,
            "options_html": options,
        }

    def scores(self) -> dict[str, dict]:
        data = self.cleaned_data
        out: dict[str, dict] = {}
        for criterion in self.criteria:
            sides = ("pair",) if criterion.get("per") == "pair" else (LEFT, RIGHT)
            given = {s: data.get(field_name(criterion, s)) for s in sides}
            out[criterion["name"]] = {s: v for s, v in given.items() if v not in (None, "")}
        return out


class SkipForm(forms.Form):
    reason = forms.ChoiceField(choices=SKIP_REASONS, widget=forms.RadioSelect)


class FlagForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="What should the lead look at?",
    )
