"""The judgments export written row by row in Python: columns, rows, defused cells, CSV and JSONL
lines. The PostgreSQL path (``sql``) reuses the columns and falls back to these rows where it
cannot match them byte for byte; ``services`` picks the path."""

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.crypto import salted_hmac

from reviews.models import Campaign, CampaignItem, Judgment

CHUNK_SIZE = 2000


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


TIDY_COLUMNS = ["campaign", "item_id", "reviewer", "criterion", "target", "value"]


def reviewer_pseudonym(user_id: int) -> str:
    """The stable pseudonym shown instead of a reviewer's email: "R-" and 10 hex digits of an
    HMAC of the user id (keyed by SECRET_KEY, so ids cannot be recovered by hashing 1, 2, 3…)."""
    digest = salted_hmac("evalsite.reviewer-pseudonym", str(user_id), algorithm="sha256")
    return "R-" + digest.hexdigest()[:10]


def defuse(cell: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading ``'``; numbers (a
    plain -1 in a score column) and every other value are returned unchanged."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def undefuse(cell: str) -> str:
    """The inverse of ``defuse`` for text read back from an exported file."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def score_columns(criteria: list[dict]) -> list[tuple[str, str, str]]:
    """(column, criterion, target) for each rubric criterion: per response two columns."""
    columns = []
    for criterion in criteria:
        name = criterion["name"]
        if criterion.get("per") == "pair":
            columns.append((f"score.{name}", name, "pair"))
        else:
            columns.append((f"score.{name}.baseline", name, "baseline"))
            columns.append((f"score.{name}.candidate", name, "candidate"))
    return columns


def metadata_keys(campaign: Campaign) -> list[str]:
    """The sorted item metadata keys of the campaign's items (one query, streamed)."""
    return export_keys(campaign)[0]


def export_keys(campaign: Campaign) -> tuple[list[str], list[str]]:
    """The sorted metadata keys of the campaign's items, and those of their two responses
    (latency, tokens, a judge's verdicts…; one set for both sides): one query, streamed."""
    keys: set[str] = set()
    response_keys: set[str] = set()
    rows = CampaignItem.objects.filter(campaign=campaign).values_list(
        "item__metadata", "baseline_response__metadata", "candidate_response__metadata"
    )
    for metadata, *responses in rows.iterator(chunk_size=CHUNK_SIZE):
        if metadata:
            keys.update(metadata)
        for response in responses:
            if isinstance(response, dict):
                response_keys.update(response)
    return sorted(keys), sorted(response_keys)


def current_judgments(campaign: Campaign, filters: dict[str, Any]) -> QuerySet[Judgment]:
    """The campaign's current judgments narrowed by ``filters``: ``batch`` (number),
    ``reviewer`` (as the export names them), ``submitted_from`` / ``submitted_to`` (dates,
    inclusive) and ``metadata`` ({key: value}, compared as text)."""
    qs = Judgment.objects.filter(campaign=campaign, is_current=True)
    if filters.get("batch") is not None:
        qs = qs.filter(assignment__batch__number=filters["batch"])
    if filters.get("reviewer"):
        qs = qs.filter(reviewer_id__in=reviewer_ids_named(campaign, filters["reviewer"]))
    if filters.get("submitted_from"):
        qs = qs.filter(submitted_at__date__gte=_as_date(filters["submitted_from"]))
    if filters.get("submitted_to"):
        qs = qs.filter(submitted_at__date__lte=_as_date(filters["submitted_to"]))
    for n, (key, value) in enumerate(sorted((filters.get("metadata") or {}).items())):
        alias = f"_meta_{n}"
        # Cast: compare as plain text (KeyTextTransform's own exact lookup compares JSON).
        as_text = Cast(KeyTextTransform(key, "item__metadata"), TextField())
        qs = qs.alias(**{alias: as_text}).filter(**{alias: str(value)})
    return qs.order_by("pk")


def reviewer_labels(campaign: Campaign, *, pseudonymise: bool) -> dict[int, str]:
    """{user id: name in the export} for everyone with a current judgment in the campaign."""
    rows = (
        Judgment.objects.filter(campaign=campaign, is_current=True)
        .order_by()  # the model's ordering would make DISTINCT return every judgment
        .values_list("reviewer_id", "reviewer__email", "reviewer__username")
        .distinct()
    )
    return {
        pk: reviewer_pseudonym(pk) if pseudonymise else (email or username)
        for pk, email, username in rows
    }


def reviewer_ids_named(campaign: Campaign, label: str) -> list[int]:
    both = reviewer_labels(campaign, pseudonymise=False).items()
    return [pk for pk, name in both if label in (name, reviewer_pseudonym(pk))]


def export_columns(
    campaign: Campaign, meta_keys: list[str], response_keys: Sequence[str] = ()
) -> list[str]:
    """The design's Export CSV columns, then (after ``meta.<key>``, so scripts that read the
    columns by position keep working) ``baseline_meta.<key>`` and ``candidate_meta.<key>``."""
    return [
        "campaign",
        "item_id",
        "reviewer",
        "preference",
        "preferred_system",
        "left_system",
        "baseline",
        "candidate",
        "prompt",
        "baseline_response",
        "candidate_response",
        *(column for column, _, _ in score_columns(campaign.rubric.criteria)),
        "rationale",
        "started_at",
        "submitted_at",
        "duration_seconds",
        *(f"meta.{key}" for key in meta_keys),
        *(f"baseline_meta.{key}" for key in response_keys),
        *(f"candidate_meta.{key}" for key in response_keys),
    ]


def export_rows(
    campaign: Campaign, *, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[list[Any]]:
    """The header, then one row per current judgment (the design's Export CSV columns), values
    as Python objects (numbers stay numbers, missing values are None). Reviewers are named by
    ``reviewer_pseudonym`` when ``pseudonymise``, else by email."""
    meta_keys, response_keys = export_keys(campaign)
    scores = score_columns(campaign.rubric.criteria)
    yield export_columns(campaign, meta_keys, response_keys)
    baseline, candidate = campaign.baseline.name, campaign.candidate.name
    preferred = {"baseline": baseline, "candidate": candidate}
    reviewer_fields = () if pseudonymise else ("reviewer__email", "reviewer__username")
    rows = current_judgments(campaign, filters).values_list(
        "reviewer_id",
        "item__external_id",
        "preference",
        "candidate_left",
        "item__prompt",
        "assignment__campaign_item__baseline_response__text",
        "assignment__campaign_item__candidate_response__text",
        "scores",
        "rationale",
        "started_at",
        "submitted_at",
        "duration_seconds",
        "item__metadata",
        "assignment__campaign_item__baseline_response__metadata",
        "assignment__campaign_item__candidate_response__metadata",
        *reviewer_fields,
    )
    names: dict[int, str] = {}
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        reviewer_id, item_id, preference, candidate_left, prompt, b_text, c_text = row[:7]
        judgment_scores, rationale, started_at, submitted_at, duration, metadata = row[7:13]
        b_meta, c_meta = (m if isinstance(m, dict) else {} for m in row[13:15])
        name = names.get(reviewer_id)
        if name is None:
            name = names[reviewer_id] = (
                reviewer_pseudonym(reviewer_id) if pseudonymise else (row[15] or row[16])
            )
        judgment_scores = judgment_scores or {}
        metadata = metadata or {}
        yield [
            campaign.slug,
            item_id,
            name,
            preference,
            preferred.get(preference),
            candidate if candidate_left else baseline,
            baseline,
            candidate,
            prompt,
            b_text,
            c_text,
            *((judgment_scores.get(c) or {}).get(target) for _, c, target in scores),
            rationale,
            _iso(started_at),
            _iso(submitted_at),
            duration,
            *(_cell(metadata.get(key)) for key in meta_keys),
            *(_cell(b_meta.get(key)) for key in response_keys),
            *(_cell(c_meta.get(key)) for key in response_keys),
        ]


def tidy_rows(
    campaign: Campaign, *, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[list[Any]]:
    """The header, then one row per judgment × criterion × target (baseline, candidate or pair)
    that has a value: campaign, item_id, reviewer, criterion, target, value."""
    yield TIDY_COLUMNS
    criteria = [(c["name"], c.get("per") == "pair") for c in campaign.rubric.criteria]
    reviewer_fields = () if pseudonymise else ("reviewer__email", "reviewer__username")
    rows = current_judgments(campaign, filters).values_list(
        "reviewer_id", "item__external_id", "scores", *reviewer_fields
    )
    names: dict[int, str] = {}
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        reviewer_id, item_id, judgment_scores = row[:3]
        name = names.get(reviewer_id)
        if name is None:
            name = names[reviewer_id] = (
                reviewer_pseudonym(reviewer_id) if pseudonymise else (row[3] or row[4])
            )
        judgment_scores = judgment_scores or {}
        for criterion, per_pair in criteria:
            values = judgment_scores.get(criterion) or {}
            for target in ("pair",) if per_pair else ("baseline", "candidate"):
                if values.get(target) is not None:
                    yield [campaign.slug, item_id, name, criterion, target, values[target]]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


class _Line:
    """A file-like object whose write() hands back what it was given (for csv.writer)."""

    def write(self, text: str) -> str:
        return text


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """CSV text, one line per row, every text cell passed through ``defuse``."""
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow([defuse(cell) for cell in row])


def jsonl_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """One JSON object per line, keyed by the header row (the first row)."""
    iterator = iter(rows)
    header = next(iterator)
    for row in iterator:
        yield json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False) + "\n"


def python_pieces(
    campaign: Campaign, *, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[tuple[str, int]]:
    """The export row by row in Python: (line, rows) pieces, the header counting as no row."""
    if kind == "tidy":
        lines = csv_lines(tidy_rows(campaign, filters=filters, pseudonymise=pseudonymise))
    else:
        rows = export_rows(campaign, filters=filters, pseudonymise=pseudonymise)
        lines = jsonl_lines(rows) if kind == "jsonl" else csv_lines(rows)
    return _rows_of(lines, header=kind != "jsonl")


def _rows_of(lines: Iterator[str], *, header: bool) -> Iterator[tuple[str, int]]:
    # csv.writer emits exactly one line per row (embedded newlines are quoted inside it).
    if header:
        yield next(lines), 0
    for line in lines:
        yield line, 1
