"""Exports of a campaign's current judgments: wide CSV (the design's "Export CSV"), JSONL and a tidy
long table. On PostgreSQL the CSV and tidy lines are built by the server and streamed by COPY
(``export_sql``); elsewhere, and for JSONL, rows come from one ``.values_list(...).iterator()``
query and are written here. Either way an export streams in constant memory whatever its size,
and both paths write the same bytes."""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.crypto import salted_hmac

from reviews.campaigns.helpers import record_audit
from reviews.exports import sql as export_sql
from reviews.models import Campaign, CampaignItem, ExportLog, Judgment

CHUNK_SIZE = 2000
KINDS = ("csv", "jsonl", "tidy")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "tidy": "text/csv; charset=utf-8",
}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "tidy": "csv"}
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


# ---------------------------------------------------------------------------------------------
# Rows


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
    keys: set[str] = set()
    rows = CampaignItem.objects.filter(campaign=campaign).values_list("item__metadata", flat=True)
    for metadata in rows.iterator(chunk_size=CHUNK_SIZE):
        if metadata:
            keys.update(metadata)
    return sorted(keys)


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


def export_columns(campaign: Campaign, meta_keys: list[str]) -> list[str]:
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
    ]


def export_rows(
    campaign: Campaign, *, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[list[Any]]:
    """The header, then one row per current judgment (the design's Export CSV columns), values
    as Python objects (numbers stay numbers, missing values are None). Reviewers are named by
    ``reviewer_pseudonym`` when ``pseudonymise``, else by email."""
    meta_keys = metadata_keys(campaign)
    scores = score_columns(campaign.rubric.criteria)
    yield export_columns(campaign, meta_keys)
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
        *reviewer_fields,
    )
    names: dict[int, str] = {}
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        reviewer_id, item_id, preference, candidate_left, prompt, b_text, c_text = row[:7]
        judgment_scores, rationale, started_at, submitted_at, duration, metadata = row[7:13]
        name = names.get(reviewer_id)
        if name is None:
            name = names[reviewer_id] = (
                reviewer_pseudonym(reviewer_id) if pseudonymise else (row[13] or row[14])
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


# ---------------------------------------------------------------------------------------------
# Writers


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


def export_pieces(
    campaign: Campaign, *, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[tuple[str, int]]:
    """The export as (text, rows) pieces: on PostgreSQL, CSV and tidy lines built by the server
    (``export_sql``, byte for byte the same), else one line of Python's each (the header counts
    as no row)."""
    pieces = export_sql.export_pieces(
        campaign, kind=kind, filters=filters, pseudonymise=pseudonymise
    )
    if pieces is not None:
        return pieces
    return python_pieces(campaign, kind=kind, filters=filters, pseudonymise=pseudonymise)


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


def export_lines(
    campaign: Campaign, *, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[str]:
    """The export's text, in pieces of whole lines."""
    pieces = export_pieces(campaign, kind=kind, filters=filters, pseudonymise=pseudonymise)
    return (text for text, _ in pieces)


def start_export(
    *,
    campaign: Campaign,
    kind: str,
    filters: dict[str, Any],
    pseudonymise: bool,
    user: AbstractBaseUser | None = None,
) -> tuple[ExportLog, Iterator[str]]:
    """Log the export (ExportLog and an "export" AuditEvent) and return the log and its text,
    in pieces of whole lines; the log's row_count is set when the text runs out (or the
    consumer stops early)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown export kind {kind!r}.")
    actor = user if user is not None and user.is_authenticated else None
    log = ExportLog.objects.create(user=actor, campaign=campaign, kind=kind, filters=filters)
    record_audit(
        actor,
        "export",
        campaign=campaign,
        target=f"campaign:{campaign.slug}",
        kind=kind,
        filters=filters,
        pseudonymised=pseudonymise,
    )
    pieces = export_pieces(campaign, kind=kind, filters=filters, pseudonymise=pseudonymise)
    return log, _counted(log, pieces)


def _counted(log: ExportLog, pieces: Iterator[tuple[str, int]]) -> Iterator[str]:
    n = 0
    try:
        for text, rows in pieces:
            n += rows
            yield text
    finally:
        # First end the export's own query (a COPY in progress holds the connection).
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
        ExportLog.objects.filter(pk=log.pk).update(row_count=n)
        log.row_count = n


def campaign_for_export(slug: str) -> Campaign:
    """The campaign with what every export reads of it (systems and rubric) in one query."""
    return Campaign.objects.select_related("baseline", "candidate", "rubric").get(slug=slug)


# ---------------------------------------------------------------------------------------------
# The aggregated report, one row per figure


REPORT_COLUMNS = ["campaign", "section", "figure", "value"]


def report_figures(result: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """Flatten a stored report into (section, figure, value): nested keys joined with ".",
    lists by position ("reviewers.0.n"), intervals as figure.lo / figure.hi."""

    def walk(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and len(value) == 2 and prefix.endswith(("ci95", "ci")):
            yield f"{prefix}.lo", value[0]
            yield f"{prefix}.hi", value[1]
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                yield from walk(f"{prefix}.{i}", inner)
        else:
            yield prefix, value

    for section, value in result.items():
        if isinstance(value, dict | list):
            for figure, inner in walk("", value):
                yield section, figure, inner
        else:
            yield "summary", section, value


def report_lines(campaign: Campaign, result: dict[str, Any]) -> Iterator[str]:
    """The report as CSV lines (formulas defused), for pandas or a spreadsheet."""
    rows = ([campaign.slug, *figure] for figure in report_figures(result))
    return csv_lines([REPORT_COLUMNS, *rows])


def log_report_export(*, campaign: Campaign, report, user: AbstractBaseUser | None) -> ExportLog:
    """Record a report download like any other export (ExportLog and an "export" AuditEvent)."""
    actor = user if user is not None and user.is_authenticated else None
    rows = sum(1 for _ in report_figures(report.result or {}))
    log = ExportLog.objects.create(
        user=actor, campaign=campaign, kind="report", filters={"report": report.pk}, row_count=rows
    )
    record_audit(
        actor, "export", campaign=campaign, target=f"campaign:{campaign.slug}", kind="report",
        report=report.pk,
    )  # fmt: skip
    return log
