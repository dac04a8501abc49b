"""Import of judgments gathered elsewhere (the design's "Judgments file"): every row is validated
first, then one atomic bulk write. Re-importing the same file changes nothing."""

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from evalsite.analyze import analyze_after_commit
from evalsite.roles import REVIEWER
from reviews.audit.events import record_audit
from reviews.exports.writing import undefuse
from reviews.models import Assignment, Campaign, CampaignItem, Judgment

REQUIRED = ("item_id", "reviewer", "preference")
CHOICES = tuple(Judgment.Preference.values)
BATCH_SIZE = 1000


class JudgmentImportError(ValidationError):
    """The file was rejected; ``errors`` lists every problem as "FILE:LINE: column: message"."""

    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.errors = errors


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    already_imported: int = 0
    new_reviewers: list[str] = field(default_factory=list)
    sha256: str = ""


@dataclass
class _Row:
    line: int
    campaign_item: int
    item: int
    reviewer: str
    preference: str
    scores: dict[str, dict[str, Any]]
    rationale: str
    started_at: datetime | None
    submitted_at: datetime | None
    duration: float | None
    # True / False when the file's left_system column named the system shown on the left.
    candidate_left: bool | None = None


def import_judgments(
    *,
    path: str | Path,
    filename: str,
    campaign: Campaign,
    actor: AbstractBaseUser | None = None,
) -> ImportSummary:
    """Validate every row of the judgments CSV at ``path`` (errors named ``filename:LINE``),
    then create the reviewers, assignments (source imported, done) and judgments in one
    transaction. Raises JudgmentImportError, having written nothing, on any error."""
    data = Path(path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    # submission_key holds 64 characters: "import:" + 40 hex digits + ":" + line.
    key_prefix = f"import:{sha[:40]}:"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JudgmentImportError([f"{filename}:1: the file is not UTF-8 ({exc.reason})."]) from exc
    already = set(
        Judgment.objects.filter(
            campaign=campaign, submission_key__startswith=key_prefix
        ).values_list("submission_key", flat=True)
    )
    rows, errors, n_rows = _validate(text, filename, campaign, key_prefix, already)
    if errors:
        raise JudgmentImportError(errors)
    summary = ImportSummary(rows=n_rows, already_imported=len(already), sha256=sha)
    if rows:
        _write(rows, campaign, key_prefix, summary)
        record_audit(
            actor,
            "judgments.imported",
            campaign=campaign,
            target=f"campaign:{campaign.slug}",
            filename=filename,
            sha256=sha,
            created=summary.created,
            new_reviewers=len(summary.new_reviewers),
        )
        from reviews.grading.services import after_judgment_saved

        after_judgment_saved(campaign)
    return summary


def _validate(
    text: str, filename: str, campaign: Campaign, key_prefix: str, already: set[str]
) -> tuple[list[_Row], list[str], int]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    errors: list[str] = []

    def error(line: int, column: str, message: str) -> None:
        errors.append(f"{filename}:{line}: {column}: {message}")

    for name in REQUIRED:
        if name not in header:
            error(1, name, "required column is missing.")
    for name, count in Counter(header).items():
        if count > 1 and name:
            error(1, name, "column appears more than once.")
    criteria = {c["name"]: c for c in campaign.rubric.criteria}
    score_columns: list[tuple[int, str, str, str]] = []  # index, column, criterion, target
    for index, name in enumerate(header):
        if not name.startswith("score."):
            continue
        parts = name.split(".")
        criterion = criteria.get(parts[1]) if len(parts) in (2, 3) else None
        per_pair = criterion is not None and criterion.get("per") == "pair"
        if criterion is None:
            error(1, name, f"unknown criterion (the rubric has {', '.join(criteria) or 'none'}).")
        elif len(parts) == 2 and per_pair:
            score_columns.append((index, name, parts[1], "pair"))
        elif len(parts) == 3 and not per_pair and parts[2] in ("baseline", "candidate"):
            score_columns.append((index, name, parts[1], parts[2]))
        else:
            expected = f"score.{parts[1]}" if per_pair else f"score.{parts[1]}.baseline/.candidate"
            error(1, name, f"unknown criterion column; {parts[1]} is scored as {expected}.")
    if errors:
        return [], errors, 0

    col = {name: index for index, name in enumerate(header)}
    items = dict(
        CampaignItem.objects.filter(campaign=campaign).values_list("item__external_id", "pk")
    )
    item_ids = dict(CampaignItem.objects.filter(campaign=campaign).values_list("pk", "item_id"))
    existing = _existing_pairs(campaign)
    systems = {
        campaign.baseline.name.casefold(): "baseline",
        campaign.candidate.name.casefold(): "candidate",
        **{choice: choice for choice in CHOICES},
    }
    rows: list[_Row] = []
    seen: dict[tuple[str, int], int] = {}
    n_rows = 0
    line = 1
    for record in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        n_rows += 1
        if len(record) != len(header):
            error(start, "-", f"{len(record)} cells, but the header has {len(header)}.")
            continue

        def cell(name: str, record: list[str] = record) -> str:
            return undefuse(record[col[name]].strip()) if name in col else ""

        n_before = len(errors)
        ci = items.get(cell("item_id"))
        if ci is None:
            error(start, "item_id", f"unknown item {cell('item_id')!r} in this campaign.")
        reviewer = cell("reviewer")
        if not reviewer:
            error(start, "reviewer", "a reviewer is required.")
        preference = systems.get(cell("preference").casefold())
        if preference is None:
            error(
                start,
                "preference",
                f"{cell('preference')!r} is not baseline, candidate, tie, both_bad, "
                f"{campaign.baseline.name} or {campaign.candidate.name}.",
            )
        scores: dict[str, dict[str, Any]] = {}
        for index, name, criterion, target in score_columns:
            raw = undefuse(record[index].strip())
            if raw == "":
                continue
            value, problem = _score(raw, criteria[criterion])
            if problem:
                error(start, name, problem)
            else:
                scores.setdefault(criterion, {})[target] = value
        candidate_left = None
        if cell("left_system"):
            # The export's column: which system was shown on the left (position-bias check).
            candidate_left = {"candidate": True, "baseline": False}.get(
                systems.get(cell("left_system").casefold(), "")
            )
            if candidate_left is None:
                error(
                    start,
                    "left_system",
                    f"{cell('left_system')!r} is neither {campaign.baseline.name} nor "
                    f"{campaign.candidate.name}.",
                )
        submitted_at = _when(cell("submitted_at"), start, "submitted_at", error)
        started_at = _when(cell("started_at"), start, "started_at", error)
        duration = None
        if cell("duration_seconds"):
            try:
                duration = float(cell("duration_seconds"))
            except ValueError:
                error(start, "duration_seconds", f"{cell('duration_seconds')!r} is not a number.")
        key = f"{key_prefix}{start}"
        if ci is not None and reviewer and key not in already:
            pair = (reviewer.casefold(), ci)
            if pair in seen:
                error(
                    start, "reviewer", f"{reviewer} already judged this item on line {seen[pair]}."
                )
            elif pair in existing:
                error(start, "reviewer", f"{reviewer} already has this item in the campaign.")
            seen[pair] = start
        if len(errors) == n_before and key not in already and ci is not None:
            rows.append(
                _Row(
                    start,
                    ci,
                    item_ids[ci],
                    reviewer,
                    preference or "",
                    scores,
                    cell("rationale"),
                    started_at,
                    submitted_at,
                    duration,
                    candidate_left,
                )
            )
    if n_rows == 0 and not errors:
        error(1, "-", "the file has no judgments.")
    return rows, errors, n_rows


def _existing_pairs(campaign: Campaign) -> set[tuple[str, int]]:
    """(reviewer name, campaign item) for every assignment already in the campaign, under each
    name an import may use for the reviewer (email and username)."""
    pairs = set()
    for email, username, ci in Assignment.objects.filter(campaign=campaign).values_list(
        "reviewer__email", "reviewer__username", "campaign_item_id"
    ):
        for name in (email, username):
            if name:
                pairs.add((name.casefold(), ci))
    return pairs


def _score(raw: str, criterion: dict[str, Any]) -> tuple[int | None, str]:
    if criterion.get("kind") == "binary":
        value = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1}.get(raw.casefold())
        return (value, "") if value is not None else (None, f"{raw!r} is not 0 or 1.")
    try:
        number = float(raw)
    except ValueError:
        return None, f"{raw!r} is not a number."
    lo, hi = criterion.get("min", 1), criterion.get("max", 5)
    if number != int(number) or not lo <= number <= hi:
        return None, f"{raw} is outside the rubric's range {lo}–{hi}."
    return int(number), ""


def _when(raw: str, line: int, column: str, error) -> datetime | None:
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime.combine(day, time())
    except ValueError:
        value = None
    if value is None:
        error(line, column, f"{raw!r} is not an ISO 8601 date or time.")
        return None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _write(rows: list[_Row], campaign: Campaign, key_prefix: str, summary: ImportSummary) -> None:
    now = timezone.now()
    with transaction.atomic():
        users = _reviewers({row.reviewer for row in rows}, summary)
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(
                    campaign=campaign,
                    campaign_item_id=row.campaign_item,
                    item_id=row.item,
                    reviewer=users[row.reviewer.casefold()],
                    candidate_left=bool(row.candidate_left),
                    rubric_version=campaign.rubric.version,
                    instructions_version=campaign.instructions_version,
                    status=Assignment.Status.DONE,
                    source=Assignment.Source.IMPORTED,
                    completed_at=row.submitted_at or now,
                )
                for row in rows
            ],
            batch_size=BATCH_SIZE,
        )
        Judgment.objects.bulk_create(
            [
                Judgment(
                    assignment=assignment,
                    campaign=campaign,
                    item_id=row.item,
                    reviewer=assignment.reviewer,
                    candidate_left=bool(row.candidate_left),
                    placement_known=row.candidate_left is not None,
                    preference=row.preference,
                    scores=row.scores,
                    rationale=row.rationale,
                    started_at=row.started_at,
                    submitted_at=row.submitted_at or now,
                    duration_seconds=row.duration,
                    source=Assignment.Source.IMPORTED,
                    submission_key=f"{key_prefix}{row.line}",
                )
                for row, assignment in zip(rows, assignments, strict=True)
            ],
            batch_size=BATCH_SIZE,
        )
        from reviews.campaigns.batches import add_slots

        add_slots(Counter(row.campaign_item for row in rows))
        Campaign.objects.filter(pk=campaign.pk).update(
            judgments_since_report=F("judgments_since_report") + len(rows)
        )
        analyze_after_commit(
            ["reviews_assignment", "reviews_judgment", "reviews_campaignitem"], rows=len(rows)
        )
    summary.created = len(rows)


def _reviewers(names: set[str], summary: ImportSummary) -> dict[str, Any]:
    """{casefolded name: user}, creating accounts that cannot log in for unknown names."""
    User = get_user_model()
    folded = {name.casefold(): name for name in names}
    found: dict[str, Any] = {}
    by_email = User.objects.annotate(_email=Lower("email")).filter(_email__in=list(folded))
    for user in by_email.order_by("pk"):
        found.setdefault(user.email.casefold(), user)
    missing = [key for key in folded if key not in found]
    if missing:
        by_username = User.objects.annotate(_name=Lower("username")).filter(_name__in=missing)
        for user in by_username.order_by("pk"):
            found.setdefault(user.username.casefold(), user)
    new = []
    for key, name in sorted(folded.items()):
        if key in found:
            continue
        user = User(username=name, email=name if "@" in name else "")
        user.set_unusable_password()
        new.append(user)
    if new:
        created = User.objects.bulk_create(new)
        Group.objects.get_or_create(name=REVIEWER)[0].user_set.add(*created)
        for user in created:
            found[user.username.casefold()] = user
        summary.new_reviewers = [user.username for user in created]
    return found
