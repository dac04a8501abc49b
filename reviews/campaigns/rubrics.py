"""Rubrics: validate the design's rubric JSON, create, change (without invalidating stored
judgments), copy and import rubrics, and the default rubric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction

from reviews.audit.events import record_audit
from reviews.campaigns.helpers import _user_or_none
from reviews.models import Judgment, Rubric

if TYPE_CHECKING:
    from django.contrib.auth.models import User


DEFAULT_RUBRIC_NAME = "support-default"
DEFAULT_CRITERIA: list[dict[str, Any]] = [
    {
        "name": "correctness",
        "label": "Is it correct?",
        "kind": "scale",
        "min": 1,
        "max": 5,
        "per": "response",
        "anchors": {"1": "Wrong", "5": "Fully correct"},
    },
    {
        "name": "refusal_ok",
        "label": "Refuses only when it should",
        "kind": "binary",
        "per": "response",
    },
    {
        "name": "overall",
        "label": "Which is better overall?",
        "kind": "scale",
        "min": 1,
        "max": 7,
        "per": "pair",
        "anchors": {"1": "Baseline much better", "4": "Same", "7": "Candidate much better"},
    },
]

KINDS = ("scale", "binary")
PERS = ("response", "pair")
DIRECTIONS = ("higher_is_better", "lower_is_better")
CRITERION_KEYS = frozenset(
    {
        "name",
        "label",
        "kind",
        "per",
        "min",
        "max",
        "anchors",
        "required",
        "direction",
        "critical",
        "pass_threshold",
        "help",
        "judge",
    }
)
# `"judge": "refusal_metric"`: the built-in refusal metric stands in as the criterion's judge
# verdict when the pairs file has no auto_<criterion> (reviews/reports/aggregation.py).
JUDGES = ("refusal_metric",)
# Changing any of these for a criterion makes stored scores mean something else.
BINDING_KEYS = ("kind", "per", "min", "max")
CRITERION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MAX_CRITERIA = 40
SCALE_SPAN_LIMIT = 100


def validate_rubric_json(data: object) -> dict[str, Any]:
    """The rubric JSON of the design, normalised (every optional field filled in), or a
    ValidationError listing every problem as "criteria[i] (name): message"."""
    if not isinstance(data, dict):
        raise ValidationError("A rubric is a JSON object with a name and a list of criteria.")
    errors: list[str] = []
    unknown = set(data) - {"name", "criteria", "version"}
    if unknown:
        errors.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append("name: a non-empty text is required")
        name = ""
    elif len(name.strip()) > 200:
        errors.append("name: at most 200 characters")
    criteria = data.get("criteria", [])
    if not isinstance(criteria, list):
        errors.append("criteria: must be a list")
        criteria = []
    if len(criteria) > MAX_CRITERIA:
        errors.append(f"criteria: at most {MAX_CRITERIA}")
    normalised, seen = [], set()
    for index, raw in enumerate(criteria):
        criterion, problems = _normalise_criterion(raw)
        where = f"criteria[{index}]"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            where += f" ({raw['name']})"
        errors.extend(f"{where}: {problem}" for problem in problems)
        if criterion:
            if criterion["name"] in seen:
                errors.append(f"{where}: the name {criterion['name']!r} is used twice")
            seen.add(criterion["name"])
            normalised.append(criterion)
    if errors:
        raise ValidationError(errors, code="invalid_rubric")
    return {"name": name.strip(), "criteria": normalised}


def _normalise_criterion(raw: object) -> tuple[dict[str, Any] | None, list[str]]:
    if not isinstance(raw, dict):
        return None, ["must be an object"]
    problems = []
    unknown = set(raw) - CRITERION_KEYS
    if unknown:
        problems.append(f"unknown field(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if not isinstance(name, str) or not CRITERION_NAME.match(name):
        problems.append(
            "name: letters, digits, '_' or '-', starting with a letter (at most 64 characters)"
        )
    label = raw.get("label", name)
    if not isinstance(label, str) or not label.strip():
        problems.append("label: a non-empty text is required")
    kind, per = raw.get("kind"), raw.get("per", "response")
    if kind not in KINDS:
        problems.append(f"kind: one of {', '.join(KINDS)}")
    if per not in PERS:
        problems.append(f"per: one of {', '.join(PERS)}")
    direction = raw.get("direction", "higher_is_better")
    if direction not in DIRECTIONS:
        problems.append(f"direction: one of {', '.join(DIRECTIONS)}")
    flags = {
        key: raw.get(key, default) for key, default in (("required", True), ("critical", False))
    }
    problems += [f"{key}: true or false" for key, value in flags.items() if type(value) is not bool]
    help_text = raw.get("help", "")
    if not isinstance(help_text, str):
        problems.append("help: must be text")
    criterion: dict[str, Any] = {
        "name": name,
        "label": label.strip() if isinstance(label, str) else label,
        "kind": kind,
        "per": per,
    }
    if kind == "scale":
        problems += _check_scale(raw, criterion)
    elif kind == "binary":
        problems += [
            f"{key}: only a scale has it"
            for key in ("min", "max", "anchors", "pass_threshold")
            if key in raw
        ]
    criterion.update(flags, direction=direction)
    if "judge" in raw:
        problems += _check_judge(raw, criterion)
    if help_text:
        criterion["help"] = help_text
    return (None if problems else criterion), problems


def _check_scale(raw: dict[str, Any], criterion: dict[str, Any]) -> list[str]:
    low, high = raw.get("min"), raw.get("max")
    if not _is_int(low) or not _is_int(high):
        return ["min and max: whole numbers are required for a scale"]
    if high <= low:
        return ["max must be greater than min"]
    if high - low > SCALE_SPAN_LIMIT:
        return [f"a scale spans at most {SCALE_SPAN_LIMIT} steps"]
    problems = []
    anchors = raw.get("anchors", {})
    if not isinstance(anchors, dict):
        problems.append('anchors: an object such as {"1": "Wrong", "5": "Fully correct"}')
        anchors = {}
    clean_anchors = {}
    for key, text in anchors.items():
        value = int(key) if isinstance(key, str) and re.fullmatch(r"-?\d+", key) else None
        if value is None or not low <= value <= high:
            problems.append(f"anchors: {key!r} is not a value between {low} and {high}")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"anchors: the label for {key} must be non-empty text")
        else:
            clean_anchors[str(value)] = text.strip()
    criterion.update(min=low, max=high, anchors=dict(sorted(clean_anchors.items(), key=_num_key)))
    if "pass_threshold" in raw:
        threshold = raw["pass_threshold"]
        if not _is_int(threshold) or not low <= threshold <= high:
            problems.append(f"pass_threshold: a whole number between {low} and {high}")
        else:
            criterion["pass_threshold"] = threshold
    return problems


def _check_judge(raw: dict[str, Any], criterion: dict[str, Any]) -> list[str]:
    """A stand-in judge reads one verdict per response, so it needs a per-response criterion with a
    pass / fail reading (binary, or a scale with pass_threshold)."""
    if raw["judge"] not in JUDGES:
        return [f"judge: one of {', '.join(JUDGES)}"]
    if criterion["per"] != "response" or (
        criterion["kind"] == "scale" and "pass_threshold" not in criterion
    ):
        return ["judge: only a per-response binary criterion, or a scale with pass_threshold"]
    criterion["judge"] = raw["judge"]
    return []


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num_key(pair: tuple[str, str]) -> int:
    return int(pair[0])


def rubric_has_judgments(rubric: Rubric) -> bool:
    return Judgment.objects.filter(campaign__rubric=rubric).exists()


def invalidating_changes(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[str]:
    """What in `new` would make judgments made under `old` invalid: removed criteria, or a changed
    kind, per, min or max. Labels, anchors, order, required and new criteria are fine."""
    new_by_name = {c["name"]: c for c in new}
    problems = []
    for criterion in old:
        name = criterion.get("name")
        if name not in new_by_name:
            problems.append(f"removes the criterion {name!r}")
            continue
        changed = [key for key in BINDING_KEYS if criterion.get(key) != new_by_name[name].get(key)]
        if changed:
            problems.append(f"changes {', '.join(changed)} of {name!r}")
    return problems


def create_rubric(
    *, name: str, criteria: list[dict[str, Any]], actor: User | None = None
) -> Rubric:
    """A new rubric (version 1) from the design's rubric JSON; ValidationError if invalid/taken."""
    data = validate_rubric_json({"name": name, "criteria": criteria})
    with transaction.atomic():
        if Rubric.objects.filter(name=data["name"]).exists():
            raise ValidationError(
                f"A rubric named {data['name']!r} already exists.", code="name_taken"
            )
        rubric = Rubric.objects.create(
            name=data["name"], criteria=data["criteria"], created_by=_user_or_none(actor)
        )
        record_audit(
            actor, "rubric.created", target=f"rubric:{rubric.name}", version=rubric.version
        )
    return rubric


def update_rubric(
    *,
    rubric: Rubric,
    criteria: list[dict[str, Any]],
    name: str | None = None,
    expected_version: int | None = None,
    actor: User | None = None,
) -> Rubric:
    """Change a rubric and bump its version (a no-op if nothing changed).

    Refused (code "invalidates_judgments") when a campaign using it has judgments and the change
    would invalidate them; copy the rubric instead. `expected_version` guards against lost updates.
    """
    data = validate_rubric_json({"name": name or rubric.name, "criteria": criteria})
    with transaction.atomic():
        current = Rubric.objects.select_for_update().get(pk=rubric.pk)
        if expected_version is not None and current.version != expected_version:
            raise ValidationError(
                f"Someone saved this rubric (now version {current.version}) since you opened it. "
                "Reload the page and make your change again.",
                code="stale",
            )
        if data["name"] == current.name and data["criteria"] == _normalised(current.criteria):
            return current  # nothing changed (filling in defaults is not a change)
        if data["name"] != current.name and Rubric.objects.filter(name=data["name"]).exists():
            raise ValidationError(
                f"A rubric named {data['name']!r} already exists.", code="name_taken"
            )
        problems = invalidating_changes(current.criteria, data["criteria"])
        if problems and rubric_has_judgments(current):
            raise ValidationError(
                f"This rubric is used by a campaign that already has judgments, and this change "
                f"{'; '.join(problems)}, which would invalidate them. Make a copy of the rubric "
                "and change the copy instead.",
                code="invalidates_judgments",
            )
        current.name, current.criteria = data["name"], data["criteria"]
        current.version += 1
        current.save(update_fields=["name", "criteria", "version", "updated_at"])
        record_audit(
            actor, "rubric.changed", target=f"rubric:{current.name}", version=current.version
        )
    rubric.name, rubric.criteria, rubric.version = current.name, current.criteria, current.version
    return current


def copy_rubric(*, rubric: Rubric, name: str | None = None, actor: User | None = None) -> Rubric:
    """A new rubric (version 1) with the same criteria, named "<name> (copy)" unless given."""
    with transaction.atomic():
        new_name = name or _free_rubric_name(f"{rubric.name} (copy)")
        copy = create_rubric(name=new_name, criteria=list(rubric.criteria), actor=actor)
        record_audit(actor, "rubric.copied", target=f"rubric:{copy.name}", source=rubric.name)
    return copy


def _free_rubric_name(base: str) -> str:
    taken = set(Rubric.objects.filter(name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    return next(f"{base} {n}" for n in range(2, len(taken) + 3) if f"{base} {n}" not in taken)


def import_rubric(*, data: object, name: str | None = None, actor: User | None = None) -> Rubric:
    """Create a rubric from the design's JSON; an existing rubric with that name is reused when its
    criteria are identical, else ValidationError (code "name_taken")."""
    if isinstance(data, dict) and name:
        data = {**data, "name": name}
    clean = validate_rubric_json(data)
    existing = Rubric.objects.filter(name=clean["name"]).first()
    if existing is not None:
        if _normalised(existing.criteria) == clean["criteria"]:
            return existing
        raise ValidationError(
            f"A rubric named {clean['name']!r} already exists with different criteria. "
            "Import it under another name, or edit the existing rubric.",
            code="name_taken",
        )
    return create_rubric(name=clean["name"], criteria=clean["criteria"], actor=actor)


def _normalised(criteria: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    try:
        return validate_rubric_json({"name": "x", "criteria": criteria})["criteria"]
    except ValidationError:
        return None


def get_or_create_default_rubric(*, actor: User | None = None) -> Rubric:
    """The "support-default" rubric: correctness 1–5 and refusal_ok per response, overall 1–7."""
    existing = Rubric.objects.filter(name=DEFAULT_RUBRIC_NAME).first()
    if existing is not None:
        return existing
    try:
        return create_rubric(name=DEFAULT_RUBRIC_NAME, criteria=DEFAULT_CRITERIA, actor=actor)
    except ValidationError:  # created concurrently
        return Rubric.objects.get(name=DEFAULT_RUBRIC_NAME)
