"""What an evaluation lead does: rubrics, campaigns, batches, assignment, pull, status, progress.

Plain keyword-only functions. Each owns its transaction, raises ValidationError for a broken rule
and writes an AuditEvent for what it created or changed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, FloatField, IntegerField, Max, OuterRef, Q, Sum
from django.db.models.aggregates import Aggregate
from django.db.models.functions import Mod
from django.utils import timezone
from django.utils.text import slugify

from evalsite.roles import REVIEWER, has_role

from . import assignment as planning
from .masking import default_mask_patterns, validate_patterns
from .models import (
    Assignment,
    AuditEvent,
    Batch,
    Campaign,
    CampaignItem,
    Judgment,
    Rubric,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from datasets.models import Dataset, System

# ---------------------------------------------------------------------------------------------
# Rubrics

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
    }
)
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


def _audit(
    actor: User | None,
    verb: str,
    *,
    campaign: Campaign | None = None,
    target: str = "",
    **details: Any,
) -> None:
    AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        campaign=campaign,
        target=target,
        details=details,
    )


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
        _audit(actor, "rubric.created", target=f"rubric:{rubric.name}", version=rubric.version)
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
        _audit(actor, "rubric.changed", target=f"rubric:{current.name}", version=current.version)
    rubric.name, rubric.criteria, rubric.version = current.name, current.criteria, current.version
    return current


def copy_rubric(*, rubric: Rubric, name: str | None = None, actor: User | None = None) -> Rubric:
    """A new rubric (version 1) with the same criteria, named "<name> (copy)" unless given."""
    with transaction.atomic():
        new_name = name or _free_rubric_name(f"{rubric.name} (copy)")
        copy = create_rubric(name=new_name, criteria=list(rubric.criteria), actor=actor)
        _audit(actor, "rubric.copied", target=f"rubric:{copy.name}", source=rubric.name)
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


# ---------------------------------------------------------------------------------------------
# Campaigns


def create_campaign(
    *,
    name: str,
    dataset: Dataset,
    baseline: System,
    candidate: System,
    rubric: Rubric,
    overlap: int = 1,
    margin: float = 0.05,
    instructions: str = "",
    mask_patterns: Sequence[str] | None = None,
    seed: int | None = None,
    mode: str = Campaign.Mode.PUSH,
    roster: Iterable[User] = (),
    require_rationale: bool = False,
    actor: User | None = None,
) -> Campaign:
    """A campaign over the dataset's items that have responses from both systems.

    `mask_patterns` None means the defaults (both systems' names and vendor phrases); `seed` None
    means a random one, stored so that assignment is reproducible.
    """
    errors = []
    if not name.strip():
        errors.append("A campaign needs a name.")
    if baseline.pk == candidate.pk:
        errors.append("The baseline and the candidate must be different systems.")
    if overlap < 1:
        errors.append("The overlap k (distinct reviewers per item) must be at least 1.")
    if not 0 <= margin < 0.5:
        errors.append("The non-inferiority margin must be at least 0 and below 0.5.")
    if seed is not None and not 0 <= seed < 2**63:
        errors.append("The seed must be a non-negative whole number.")
    if mode not in Campaign.Mode.values:
        errors.append(f"Unknown mode {mode!r}.")
    if errors:
        raise ValidationError(errors)
    if mask_patterns is None:
        mask_patterns = default_mask_patterns([baseline.name, candidate.name])
    patterns = validate_patterns(mask_patterns)
    pairs = _response_pairs(dataset, baseline, candidate)
    if not pairs:
        raise ValidationError(
            f"No item of {dataset.name} has responses from both {baseline.name} and "
            f"{candidate.name}.",
            code="no_items",
        )
    roster = list(roster)
    _check_reviewers(roster)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip(),
            slug=_free_campaign_slug(name),
            dataset=dataset,
            baseline=baseline,
            candidate=candidate,
            rubric=rubric,
            overlap=overlap,
            margin=margin,
            instructions=instructions,
            mask_patterns=patterns,
            require_rationale=require_rationale,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            mode=mode,
            status=Campaign.Status.ACTIVE,
            created_by=_user_or_none(actor),
        )
        CampaignItem.objects.bulk_create(
            (
                CampaignItem(
                    campaign=campaign,
                    item_id=item_id,
                    baseline_response_id=b,
                    candidate_response_id=c,
                )
                for item_id, (b, c) in pairs.items()
            ),
            batch_size=1000,
        )
        if roster:
            campaign.roster.add(*roster)
        _audit(
            actor,
            "campaign.created",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            items=len(pairs),
            overlap=overlap,
            rubric=rubric.name,
            rubric_version=rubric.version,
            seed=campaign.seed,
        )
    return campaign


def count_campaign_items(*, dataset: Dataset, baseline: System, candidate: System) -> int:
    """How many items of the dataset have responses from both systems (a campaign's items)."""
    return (
        dataset.items.filter(responses__system=baseline)
        .filter(responses__system=candidate)
        .distinct()
        .count()
    )


def _response_pairs(dataset: Dataset, baseline: System, candidate: System) -> dict[int, tuple]:
    from datasets.models import Response

    found: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        Response.objects.filter(item__dataset=dataset, system__in=[baseline, candidate])
        .order_by("item_id")
        .values_list("item_id", "system_id", "id")
    )
    for item_id, system_id, response_id in rows.iterator(chunk_size=5000):
        found[item_id][system_id] = response_id
    return {
        item_id: (by_system[baseline.pk], by_system[candidate.pk])
        for item_id, by_system in found.items()
        if len(by_system) == 2
    }


RESERVED_SLUGS = frozenset({"new"})  # campaigns/new/ is the create page


def _free_campaign_slug(name: str) -> str:
    base = slugify(name)[:180].strip("-") or "campaign"
    taken = set(Campaign.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    taken |= RESERVED_SLUGS
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def update_campaign(
    *,
    campaign: Campaign,
    actor: User | None = None,
    name: str | None = None,
    instructions: str | None = None,
    mask_patterns: Sequence[str] | None = None,
    margin: float | None = None,
    mode: str | None = None,
    require_rationale: bool | None = None,
    roster: Iterable[User] | None = None,
) -> Campaign:
    """Change what may change after creation. New instructions bump `instructions_version`, which
    assignments made from then on record."""
    changes: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != campaign.name:
        changes["name"] = name.strip()
    if instructions is not None and instructions != campaign.instructions:
        changes["instructions"] = instructions
    if mask_patterns is not None:
        patterns = validate_patterns(mask_patterns)
        if patterns != campaign.mask_patterns:
            changes["mask_patterns"] = patterns
    if margin is not None and margin != campaign.margin:
        if not 0 <= margin < 0.5:
            raise ValidationError("The non-inferiority margin must be at least 0 and below 0.5.")
        changes["margin"] = margin
    if mode is not None and mode != campaign.mode:
        if mode not in Campaign.Mode.values:
            raise ValidationError(f"Unknown mode {mode!r}.")
        changes["mode"] = mode
    if require_rationale is not None and require_rationale != campaign.require_rationale:
        changes["require_rationale"] = require_rationale
    roster = None if roster is None else list(roster)
    if roster is not None:
        _check_reviewers(roster)
    with transaction.atomic():
        if changes:
            update = dict(changes)
            if "instructions" in changes:
                update["instructions_version"] = F("instructions_version") + 1
            Campaign.objects.filter(pk=campaign.pk).update(**update)
        if roster is not None:
            before = set(campaign.roster.values_list("pk", flat=True))
            campaign.roster.set(roster)
            if before != {user.pk for user in roster}:
                changes["roster"] = sorted(user.email or user.username for user in roster)
        if changes:
            _audit(
                actor,
                "campaign.changed",
                campaign=campaign,
                target=f"campaign:{campaign.slug}",
                fields=sorted(changes),
            )
    campaign.refresh_from_db()
    return campaign


STATUS_TRANSITIONS = {
    Campaign.Status.ACTIVE: (Campaign.Status.DRAFT, Campaign.Status.PAUSED),
    Campaign.Status.PAUSED: (Campaign.Status.ACTIVE,),
    Campaign.Status.CLOSED: (Campaign.Status.DRAFT, Campaign.Status.ACTIVE, Campaign.Status.PAUSED),
}


def set_status(*, campaign: Campaign, status: str, actor: User | None = None) -> Campaign:
    """Pause (work is kept, nothing can be submitted), resume, or close (final: no judgments)."""
    if status not in STATUS_TRANSITIONS:
        raise ValidationError(f"A campaign cannot be set to {status!r}.")
    with transaction.atomic():
        previous = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
        changed = Campaign.objects.filter(
            pk=campaign.pk, status__in=STATUS_TRANSITIONS[status]
        ).update(status=status)
        if not changed:
            if previous == status:
                return campaign
            raise ValidationError(
                f"A {Campaign.Status(previous).label.lower()} campaign cannot be "
                f"{_STATUS_VERBS[status]}.",
                code="bad_transition",
            )
        _audit(
            actor,
            f"campaign.{_STATUS_VERBS[status]}",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            previous=previous,
        )
    campaign.status = status
    return campaign


_STATUS_VERBS = {
    Campaign.Status.ACTIVE: "resumed",
    Campaign.Status.PAUSED: "paused",
    Campaign.Status.CLOSED: "closed",
}


def reviewer_notice(campaign: Campaign) -> str | None:
    """What a reviewer is told when the campaign does not accept judgments (None when it does)."""
    if campaign.status == Campaign.Status.PAUSED:
        return (
            "This campaign is paused by the evaluation lead. Everything you submitted is saved; "
            "you can carry on where you left off once it resumes."
        )
    if campaign.status == Campaign.Status.CLOSED:
        return "This campaign is closed: it no longer accepts judgments. Thank you for your work."
    if campaign.status == Campaign.Status.DRAFT:
        return "This campaign has not started yet."
    return None


# ---------------------------------------------------------------------------------------------
# Batches and assignment


@dataclass(frozen=True)
class AssignResult:
    batches: list[Batch]
    n_items: int  # items that got new reviewers
    n_assignments: int
    n_refilled: int  # of those items, how many were partly covered before (after an unassign)
    n_left_open: int  # partly covered items none of these reviewers could take


def create_batches_and_assign(
    *,
    campaign: Campaign,
    reviewers: Sequence[User],
    selection: planning.SelectionMode = "all",
    n: int | None = None,
    key: str | None = None,
    batch_size: int | None = None,
    due_date: date | None = None,
    actor: User | None = None,
    campaign_items: Collection[int] | None = None,
) -> AssignResult:
    """Pick unassigned items (all, a sample of n, or n stratified by metadata `key`), cut them into
    batches of `batch_size` and give every item exactly k distinct reviewers with balanced load.
    `campaign_items` (ids), when given, limits the choice to those items.

    Items left partly covered by an unassign are topped up to k from the same reviewers, in a batch
    of their own. Sides, queue positions and the sample are reproducible from the campaign seed.
    """
    reviewers = list(dict.fromkeys(reviewers))
    if not reviewers:
        raise ValidationError("Choose at least one reviewer.")
    _check_reviewers(reviewers)
    if batch_size is not None and batch_size < 1:
        raise ValidationError("The batch size must be at least 1.")
    reviewer_ids = [r.pk for r in reviewers]
    with transaction.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == Campaign.Status.CLOSED:
            raise ValidationError("This campaign is closed: nothing more can be assigned.")
        k = campaign.overlap
        if k > len(reviewers):
            raise ValidationError(
                f"Every item needs {k} distinct reviewers: choose at least {k} reviewers."
            )
        open_rows = CampaignItem.objects.select_for_update(of=("self",)).filter(
            campaign=campaign, slots_taken__lt=k
        )
        if campaign_items is not None:
            open_rows = open_rows.filter(pk__in=list(campaign_items))
        open_items = list(
            open_rows.order_by("pk").values_list("pk", "slots_taken", "item__metadata")
        )
        fresh = [(pk, metadata) for pk, taken, metadata in open_items if taken == 0]
        partial = {pk: taken for pk, taken, _ in open_items if taken > 0}
        number = (campaign.batches.aggregate(m=Max("number"))["m"] or 0) + 1
        seed = _derived_seed(campaign.seed, "assign", number)
        try:
            chosen = planning.select_items(fresh, mode=selection, n=n, key=key, seed=seed)
        except ValueError as exc:
            raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from exc
        load, next_position = _reviewer_loads(campaign, reviewer_ids)
        plan = planning.plan_assignments(
            chosen,
            reviewer_ids,
            k=k,
            seed=seed,
            batch_size=batch_size,
            existing_load=load,
            existing_positions=next_position,
        )
        for planned in plan:
            load[planned.reviewer] = load.get(planned.reviewer, 0) + 1
            next_position[planned.reviewer] = max(
                next_position.get(planned.reviewer, 0), planned.position + 1
            )
        refills, left_open = _plan_refills(
            campaign, partial, reviewer_ids, load=load, next_position=next_position, seed=seed
        )
        if not plan and not refills:
            raise ValidationError(
                "Nothing to assign: every item of this campaign already has its reviewers"
                + (" (the open slots left need other reviewers)." if left_open else "."),
                code="nothing_to_assign",
            )
        n_plan_batches = max((p.batch_index for p in plan), default=-1) + 1
        batches = Batch.objects.bulk_create(
            Batch(
                campaign=campaign, number=number + i, name=f"Batch {number + i}", due_date=due_date
            )
            for i in range(n_plan_batches + (1 if refills else 0))
        )
        if refills:
            batches[-1].name = f"Batch {batches[-1].number} (refill)"
            Batch.objects.filter(pk=batches[-1].pk).update(name=batches[-1].name)
        item_of = dict(
            CampaignItem.objects.filter(pk__in=[*chosen, *partial]).values_list("pk", "item_id")
        )
        versions = {
            "rubric_version": campaign.rubric.version,
            "instructions_version": campaign.instructions_version,
        }
        rows = [
            Assignment(
                campaign=campaign,
                batch=batches[p.batch_index],
                campaign_item_id=p.item_id,
                item_id=item_of[p.item_id],
                reviewer_id=p.reviewer,
                candidate_left=p.candidate_left,
                position=p.position,
                **versions,
            )
            for p in plan
        ] + [
            Assignment(
                campaign=campaign,
                batch=batches[-1],
                campaign_item_id=ci,
                item_id=item_of[ci],
                reviewer_id=reviewer,
                candidate_left=left,
                position=position,
                **versions,
            )
            for ci, reviewer, left, position in refills
        ]
        Assignment.objects.bulk_create(rows, batch_size=1000)
        add_slots(Counter([p.item_id for p in plan] + [r[0] for r in refills]))
        campaign.roster.add(*reviewers)
        refilled_items = {r[0] for r in refills}
        _audit(
            actor,
            "batches.created",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            batches=[b.number for b in batches],
            items=len(chosen) + len(refilled_items),
            assignments=len(rows),
            reviewers=[r.email or r.username for r in reviewers],
            selection=selection,
            n=n,
            key=key,
            batch_size=batch_size,
            due_date=due_date.isoformat() if due_date else None,
        )
    return AssignResult(
        batches=batches,
        n_items=len(chosen) + len(refilled_items),
        n_assignments=len(rows),
        n_refilled=len(refilled_items),
        n_left_open=left_open,
    )


def _plan_refills(
    campaign: Campaign,
    partial: dict[int, int],
    reviewer_ids: list[int],
    *,
    load: dict[int, int],
    next_position: dict[int, int],
    seed: int,
) -> tuple[list[tuple[int, int, bool, int]], int]:
    """Top partly covered items up to k: rows of (campaign item, reviewer, candidate_left,
    position), and how many items these reviewers cannot cover (they all hold it already)."""
    if not partial:
        return [], 0
    holders: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for ci, reviewer, left in Assignment.objects.filter(campaign_item_id__in=partial).values_list(
        "campaign_item_id", "reviewer_id", "candidate_left"
    ):
        holders[ci].append((reviewer, left))
    k, pending, left_open = campaign.overlap, [], 0
    for ci, taken in partial.items():
        held = {reviewer for reviewer, _ in holders[ci]}
        if len(set(reviewer_ids) - held) < k - taken:
            left_open += 1
            continue
        # Placeholder "from" reviewers: one per open slot (never equal to a real reviewer id).
        pending += [(ci, f"open-slot-{j}") for j in range(k - taken)]
    taken_pairs = {(ci, r) for ci in partial for r, _ in holders[ci]}
    moves = planning.plan_reassignment(
        pending, to_reviewers=reviewer_ids, taken=taken_pairs, seed=seed, existing_load=load
    )
    sides = _SideBalancer(campaign, reviewer_ids, seed)
    for ci, pairs in holders.items():
        for _, left in pairs:
            sides.item_sides[ci][left] += 1
    rows = []
    for ci, _, reviewer in moves:
        left = sides.choose(ci, reviewer)
        rows.append((ci, reviewer, left, next_position.get(reviewer, 0)))
        next_position[reviewer] = next_position.get(reviewer, 0) + 1
    return rows, left_open


class _SideBalancer:
    """Picks the candidate's side so each reviewer, then each item, sees both sides equally."""

    def __init__(self, campaign: Campaign, reviewer_ids: list[int], seed: int) -> None:
        self.seed = seed
        self.reviewer_sides: dict[int, Counter] = defaultdict(Counter)
        for reviewer, left, count in (
            Assignment.objects.filter(campaign=campaign, reviewer_id__in=reviewer_ids)
            .values_list("reviewer_id", "candidate_left")
            .annotate(n=Count("id"))
            .order_by()
        ):
            self.reviewer_sides[reviewer][left] = count
        self.item_sides: dict[int, Counter] = defaultdict(Counter)

    def choose(self, campaign_item: int, reviewer: int) -> bool:
        left = _least_used_side(self.reviewer_sides[reviewer], self.item_sides[campaign_item])
        if left is None:
            left = _derived_seed(self.seed, "side", campaign_item, reviewer) % 2 == 0
        self.reviewer_sides[reviewer][left] += 1
        self.item_sides[campaign_item][left] += 1
        return left


def _least_used_side(*counters: Counter) -> bool | None:
    for counter in counters:
        if counter[True] != counter[False]:
            return counter[True] < counter[False]
    return None


def add_slots(per_item: Counter) -> None:
    """Add (or, with negative counts, release) slots on campaign items: {campaign item id: n}."""
    by_amount: dict[int, list[int]] = defaultdict(list)
    for ci, amount in per_item.items():
        by_amount[amount].append(ci)
    for amount, ids in by_amount.items():
        for start in range(0, len(ids), 1000):
            CampaignItem.objects.filter(pk__in=ids[start : start + 1000]).update(
                slots_taken=F("slots_taken") + amount
            )


def _reviewer_loads(campaign: Campaign, reviewer_ids: list[int]) -> tuple[dict, dict]:
    load, next_position = {}, {}
    for reviewer, count, top in (
        Assignment.objects.filter(campaign=campaign, reviewer_id__in=reviewer_ids)
        .values("reviewer_id")
        .annotate(n=Count("id"), top=Max("position"))
        .values_list("reviewer_id", "n", "top")
        .order_by()
    ):
        load[reviewer], next_position[reviewer] = count, top + 1
    return load, next_position


def unassign(
    *, campaign: Campaign, reviewer: User, batch: Batch | None = None, actor: User | None = None
) -> int:
    """Remove the reviewer's pending assignments (in `batch` if given); done and skipped work stays.
    The freed slots are open again for the next assign or pull. Returns how many were removed."""
    with transaction.atomic():
        pending = Assignment.objects.select_for_update().filter(
            campaign=campaign, reviewer=reviewer, status=Assignment.Status.PENDING
        )
        if batch is not None:
            pending = pending.filter(batch=batch)
        rows = list(pending.values_list("pk", "campaign_item_id"))
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        add_slots(Counter({ci: -1 for _, ci in rows}))
        _audit(
            actor,
            "assignments.unassigned",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            reviewer=reviewer.email or reviewer.username,
            batch=batch.number if batch else None,
            count=len(rows),
        )
    return len(rows)


def reassign(
    *,
    campaign: Campaign,
    from_reviewer: User,
    to_reviewers: Sequence[User],
    batch: Batch | None = None,
    actor: User | None = None,
) -> dict[str, int]:
    """Move the reviewer's pending assignments (in `batch` if given) to the least loaded of
    `to_reviewers` who do not already have the item; done work stays. Returns {email: count}."""
    targets = [user for user in dict.fromkeys(to_reviewers) if user.pk != from_reviewer.pk]
    if not targets:
        raise ValidationError("Choose at least one other reviewer to take the work.")
    _check_reviewers(targets)
    target_ids = [user.pk for user in targets]
    with transaction.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == Campaign.Status.CLOSED:
            raise ValidationError("This campaign is closed: nothing can be reassigned.")
        pending = Assignment.objects.select_for_update().filter(
            campaign=campaign, reviewer=from_reviewer, status=Assignment.Status.PENDING
        )
        if batch is not None:
            pending = pending.filter(batch=batch)
        moving = list(pending.order_by("position"))
        if not moving:
            return {}
        taken = set(
            Assignment.objects.filter(
                campaign_item_id__in=[a.campaign_item_id for a in moving],
                reviewer_id__in=target_ids,
            ).values_list("campaign_item_id", "reviewer_id")
        )
        load, next_position = _reviewer_loads(campaign, target_ids)
        try:
            moves = planning.plan_reassignment(
                [(a.campaign_item_id, from_reviewer.pk) for a in moving],
                to_reviewers=target_ids,
                taken=taken,
                seed=_derived_seed(campaign.seed, "reassign", moving[0].pk),
                existing_load=load,
            )
        except ValueError as exc:
            raise ValidationError(
                "Some of this work cannot move: every reviewer you chose already has one of its "
                "items. Add more reviewers."
            ) from exc
        new_rows = []
        for old, (_, _, to) in zip(moving, moves, strict=True):
            position = next_position.get(to, 0)
            next_position[to] = position + 1
            new_rows.append(
                Assignment(
                    campaign=campaign,
                    batch_id=old.batch_id,
                    campaign_item_id=old.campaign_item_id,
                    item_id=old.item_id,
                    reviewer_id=to,
                    candidate_left=old.candidate_left,
                    position=position,
                    rubric_version=campaign.rubric.version,
                    instructions_version=campaign.instructions_version,
                )
            )
        Assignment.objects.filter(pk__in=[a.pk for a in moving]).delete()
        Assignment.objects.bulk_create(new_rows, batch_size=1000)
        campaign.roster.add(*targets)
        emails = {user.pk: user.email or user.username for user in targets}
        counts = dict(Counter(emails[to] for _, _, to in moves))
        _audit(
            actor,
            "assignments.reassigned",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            from_reviewer=from_reviewer.email or from_reviewer.username,
            to=counts,
            batch=batch.number if batch else None,
            count=len(moving),
        )
    return counts


def _lock_campaign(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("rubric")
        .get(pk=campaign.pk)
    )


def _check_reviewers(users: Sequence[User]) -> None:
    not_reviewers = [u.email or u.username for u in users if not has_role(u, REVIEWER)]
    if not_reviewers:
        raise ValidationError(
            f"Not active reviewers: {', '.join(not_reviewers)}. "
            "Add them to the reviewer group first."
        )


def _user_or_none(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


def _derived_seed(seed: int, *parts: object) -> int:
    """A non-negative 63-bit seed for one purpose, reproducible from the campaign seed."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# ---------------------------------------------------------------------------------------------
# Pull mode

_PRIME = 2_147_483_647  # 2**31 - 1
PULL_ATTEMPTS = 5


def pull_next_assignment(*, campaign: Campaign, reviewer: User) -> Assignment | None:
    """The reviewer's next pending assignment in this campaign. With none pending in a pull-mode
    campaign, claim a slot on an item that still needs a judgment (never above k per item, never
    twice for one reviewer). None when there is nothing left for them.

    ValidationError (code: the campaign's status) when the campaign does not accept judgments;
    PermissionDenied when a pull-mode campaign does not have the reviewer on its roster.
    """
    # The common case in one query: a queued item, read with the campaign's current status.
    queued = _next_pending(campaign, reviewer)
    if queued is not None:
        queued.campaign = campaign
        return queued
    fresh = (
        Campaign.objects.filter(pk=campaign.pk)
        .values("status", "mode", "overlap", "seed", "instructions_version", "rubric__version")
        .get()
    )
    if fresh["status"] != Campaign.Status.ACTIVE:
        campaign.status = fresh["status"]
        raise ValidationError(reviewer_notice(campaign) or "", code=fresh["status"])
    if fresh["mode"] != Campaign.Mode.PULL:
        return None
    if not campaign.roster.filter(pk=reviewer.pk).exists():
        raise PermissionDenied("You are not on this campaign's roster.")
    for attempt in range(PULL_ATTEMPTS):
        try:
            return _claim_slot(campaign, reviewer, fresh)
        except IntegrityError:
            # The same reviewer claimed the same item in another request at the same moment
            # (one_assignment_per_reviewer_item); their next query no longer sees that item.
            if attempt == PULL_ATTEMPTS - 1:
                raise
    return None  # pragma: no cover


def _next_pending(campaign: Campaign, reviewer: User) -> Assignment | None:
    return (
        Assignment.objects.filter(
            campaign=campaign,
            reviewer=reviewer,
            status=Assignment.Status.PENDING,
            campaign__status=Campaign.Status.ACTIVE,
        )
        .select_related("campaign_item", "item")
        .order_by("position", "pk")
        .first()
    )


def _claim_slot(campaign: Campaign, reviewer: User, fresh: dict[str, Any]) -> Assignment | None:
    # A seeded permutation of ids, different per reviewer, so pulls follow neither the file order
    # nor each other; items already started come first so that they reach k judgments sooner.
    mix = _derived_seed(fresh["seed"], "pull", reviewer.pk)
    multiplier, offset = 1 + mix % (_PRIME - 1), (mix >> 31) % _PRIME
    shuffle = Mod(Mod(F("pk"), _PRIME) * multiplier + offset, _PRIME, output_field=IntegerField())
    with transaction.atomic():
        slot = (
            CampaignItem.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign.pk, slots_taken__lt=fresh["overlap"])
            .exclude(
                Exists(Assignment.objects.filter(campaign_item=OuterRef("pk"), reviewer=reviewer))
            )
            .order_by("-slots_taken", shuffle, "pk")
            .values_list("pk", "item_id")
            .first()
        )
        if slot is None:
            return None
        ci, item_id = slot
        claimed = CampaignItem.objects.filter(pk=ci, slots_taken__lt=fresh["overlap"]).update(
            slots_taken=F("slots_taken") + 1
        )
        if not claimed:  # cannot happen while we hold the row lock; belt and braces
            raise IntegrityError("slot already full")
        mine = Assignment.objects.filter(campaign_id=campaign.pk, reviewer=reviewer).aggregate(
            n_left=Count("pk", filter=Q(candidate_left=True)),
            n=Count("pk"),
            top=Max("position"),
        )
        theirs = Assignment.objects.filter(campaign_item_id=ci).aggregate(
            n_left=Count("pk", filter=Q(candidate_left=True)), n=Count("pk")
        )
        left = _least_used_side(
            Counter({True: mine["n_left"], False: mine["n"] - mine["n_left"]}),
            Counter({True: theirs["n_left"], False: theirs["n"] - theirs["n_left"]}),
        )
        if left is None:
            left = _derived_seed(fresh["seed"], "side", ci, reviewer.pk) % 2 == 0
        return Assignment.objects.create(
            campaign_id=campaign.pk,
            campaign_item_id=ci,
            item_id=item_id,
            reviewer=reviewer,
            candidate_left=left,
            position=(mine["top"] + 1) if mine["top"] is not None else 0,
            rubric_version=fresh["rubric__version"],
            instructions_version=fresh["instructions_version"],
        )


# ---------------------------------------------------------------------------------------------
# Progress


@dataclass
class ProgressRow:
    label: str
    total: int = 0
    done: int = 0
    pending: int = 0
    skipped: int = 0
    median_seconds: float | None = None
    due_date: date | None = None
    overdue: bool = False
    batch_id: int | None = None
    reviewer_id: int | None = None

    @property
    def percent(self) -> int:
        return round(100 * (self.done + self.skipped) / self.total) if self.total else 0


@dataclass
class CampaignProgress:
    items: int
    slots: int  # items × k
    open_slots: int  # slots nobody holds yet
    totals: ProgressRow
    batches: list[ProgressRow] = field(default_factory=list)
    reviewers: list[ProgressRow] = field(default_factory=list)

    @property
    def overdue_batches(self) -> int:
        return sum(1 for row in self.batches if row.overdue)


class Median(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(0.5); SQLite falls back to Python (see campaign_progress)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def campaign_progress(*, campaign: Campaign, today: date | None = None) -> CampaignProgress:
    """Done / pending / skipped and median seconds per item, per batch and per reviewer.

    A fixed number of queries whatever the number of batches and reviewers."""
    today = today or timezone.localdate()
    counts = Assignment.objects.filter(campaign=campaign).order_by()
    by_status = {
        status: Count("pk", filter=Q(status=status)) for status in Assignment.Status.values
    }
    cells = list(
        counts.values("batch_id", "reviewer_id", "reviewer__email", "reviewer__username")
        .annotate(**by_status)
        .order_by()
    )
    medians_by_batch, medians_by_reviewer = _median_seconds(campaign)
    batches: dict[int | None, ProgressRow] = {
        batch.pk: ProgressRow(label=str(batch), due_date=batch.due_date, batch_id=batch.pk)
        for batch in Batch.objects.filter(campaign=campaign).order_by("number")
    }
    reviewers: dict[int, ProgressRow] = {}
    totals = ProgressRow(label="All")
    for cell in cells:
        if cell["batch_id"] not in batches:
            batches[cell["batch_id"]] = ProgressRow(label="Pulled (no batch)")
        reviewer = reviewers.setdefault(
            cell["reviewer_id"],
            ProgressRow(
                label=cell["reviewer__email"] or cell["reviewer__username"],
                reviewer_id=cell["reviewer_id"],
            ),
        )
        for row in (batches[cell["batch_id"]], reviewer, totals):
            row.done += cell["done"]
            row.pending += cell["pending"]
            row.skipped += cell["skipped"]
            row.total += cell["done"] + cell["pending"] + cell["skipped"]
    for key, row in batches.items():
        row.median_seconds = medians_by_batch.get(key)
        row.overdue = bool(row.due_date and row.due_date < today and row.pending)
    for key, row in reviewers.items():
        row.median_seconds = medians_by_reviewer.get(key)
    totals.median_seconds = medians_by_batch.get("all")
    slots = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("pk"), taken=Sum("slots_taken")
    )
    items = slots["items"]
    return CampaignProgress(
        items=items,
        slots=items * campaign.overlap,
        open_slots=max(0, items * campaign.overlap - (slots["taken"] or 0)),
        totals=totals,
        batches=list(batches.values()),
        reviewers=sorted(reviewers.values(), key=lambda row: row.label.lower()),
    )


def _median_seconds(campaign: Campaign) -> tuple[dict, dict]:
    judgments = Judgment.objects.filter(
        campaign=campaign, is_current=True, duration_seconds__isnull=False
    ).order_by()
    if connection.vendor == "postgresql":
        by_batch = dict(
            judgments.values("assignment__batch_id")
            .annotate(m=Median("duration_seconds"))
            .values_list("assignment__batch_id", "m")
        )
        by_reviewer = dict(
            judgments.values("reviewer_id")
            .annotate(m=Median("duration_seconds"))
            .values_list("reviewer_id", "m")
        )
        overall = judgments.aggregate(m=Median("duration_seconds"))["m"]
    else:
        batch_times: dict[Any, list[float]] = defaultdict(list)
        reviewer_times: dict[int, list[float]] = defaultdict(list)
        every: list[float] = []
        for batch_id, reviewer_id, seconds in judgments.values_list(
            "assignment__batch_id", "reviewer_id", "duration_seconds"
        ).iterator(chunk_size=5000):
            batch_times[batch_id].append(seconds)
            reviewer_times[reviewer_id].append(seconds)
            every.append(seconds)
        by_batch = {key: statistics.median(values) for key, values in batch_times.items()}
        by_reviewer = {key: statistics.median(values) for key, values in reviewer_times.items()}
        overall = statistics.median(every) if every else None
    by_batch["all"] = overall
    return by_batch, by_reviewer
