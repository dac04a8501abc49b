"""Exports of a campaign's current judgments: wide CSV (the design's "Export CSV"), JSONL and a tidy
long table. On PostgreSQL the CSV and tidy lines are built by the server and streamed by COPY
(``sql``); elsewhere, and for JSONL, rows come from one ``.values_list(...).iterator()``
query and are written by ``writing``. Either way an export streams in constant memory whatever
its size, and both paths write the same bytes. This module picks the path, logs the export and
writes the report's figures."""

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from reviews.audit.events import record_audit
from reviews.campaigns.flags import flag_rows
from reviews.exports import sql as export_sql
from reviews.exports.writing import csv_lines, python_pieces
from reviews.models import Campaign, ExportLog

KINDS = ("csv", "jsonl", "tidy")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "tidy": "text/csv; charset=utf-8",
}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "tidy": "csv"}


# ---------------------------------------------------------------------------------------------
# Rows


# ---------------------------------------------------------------------------------------------
# Writers


def export_pieces(
    campaign: Campaign, *, kind: str, filters: dict[str, Any], pseudonymise: bool
) -> Iterator[tuple[str, int]]:
    """The export as (text, rows) pieces: on PostgreSQL, CSV and tidy lines built by the server
    (``sql``, byte for byte the same), else one line of Python's each (the header counts
    as no row)."""
    pieces = export_sql.export_pieces(
        campaign, kind=kind, filters=filters, pseudonymise=pseudonymise
    )
    if pieces is not None:
        return pieces
    return python_pieces(campaign, kind=kind, filters=filters, pseudonymise=pseudonymise)


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


def start_flags_export(
    *, campaign: Campaign, pseudonymise: bool, user: AbstractBaseUser | None = None
) -> tuple[ExportLog, Iterator[str]]:
    """Log a download of the campaign's flags and skips like any export (ExportLog kind
    "flags" and an "export" AuditEvent) and return the log and its CSV lines, formulas
    defused; the log's row_count is set when the lines run out."""
    actor = user if user is not None and user.is_authenticated else None
    log = ExportLog.objects.create(user=actor, campaign=campaign, kind="flags")
    record_audit(
        actor, "export", campaign=campaign, target=f"campaign:{campaign.slug}", kind="flags",
        pseudonymised=pseudonymise,
    )  # fmt: skip
    return log, _counted(log, _flag_pieces(campaign, pseudonymise))


def _flag_pieces(campaign: Campaign, pseudonymise: bool) -> Iterator[tuple[str, int]]:
    lines = csv_lines(flag_rows(campaign=campaign, pseudonymise=pseudonymise))
    yield next(lines), 0  # the header counts as no row
    for line in lines:
        yield line, 1


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
