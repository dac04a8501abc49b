"""A dataset's timeline: every campaign that graded it, oldest first, read from each campaign's
latest done Report, with a regression marked where a candidate proved worse than its baseline.

A golden dataset is graded again at every model or prompt change; each campaign weighs a
candidate against the system in service (its baseline). A row is a *regression* when the
candidate is significantly worse than that baseline: the upper end of the 95% interval of its
win rate (the report's own interval, which accounts for reviewers sharing items) lies below 0.5,
i.e. a two-sided test of "as good as the baseline" rejects at the 5% level in the baseline's
favour. A row also names the earlier campaign whose "migrate" verdict put its baseline in
service, so a reader sees which change a regression undid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import OuterRef, Subquery

from datasets.models import Dataset
from reviews.exports.writing import csv_lines
from reviews.models import Campaign, Report

REGRESSION_TEST = "95% interval of the win rate entirely below 0.5 (two-sided, 5% level)"
COLUMNS = [
    "dataset",
    "campaign",
    "created_at",
    "report_at",
    "baseline",
    "candidate",
    "n_items",
    "n_judgments",
    "win_rate",
    "win_rate_ci95_low",
    "win_rate_ci95_high",
    "verdict",
    "probability",
    "critical_pass_rates",
    "regression",
    "replaced_in",
]


def timeline_rows(*, dataset: Dataset) -> list[dict[str, Any]]:
    """One row per campaign over ``dataset``, oldest first (two queries whatever the count)."""
    latest = (
        Report.objects.filter(campaign=OuterRef("pk"), status=Report.Status.DONE)
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )
    campaigns = list(
        Campaign.objects.filter(dataset=dataset)
        .select_related("baseline", "candidate", "rubric")
        .annotate(report_id=Subquery(latest))
        .order_by("created_at", "pk")
    )
    reports = Report.objects.in_bulk([c.report_id for c in campaigns if c.report_id])
    rows: list[dict[str, Any]] = []
    adopted: dict[str, str] = {}  # system name -> the campaign whose "migrate" adopted it
    for campaign in campaigns:
        report = reports.get(campaign.report_id)
        row = _row(campaign, report)
        row["replaced_in"] = adopted.get(row["baseline"])
        if row["verdict"] == "migrate":
            adopted[row["candidate"]] = campaign.slug
        rows.append(row)
    return rows


def _row(campaign: Campaign, report: Report | None) -> dict[str, Any]:
    result = (report.result if report else None) or {}
    preference = result.get("preference") or {}
    decision = result.get("decision") or {}
    ci = preference.get("win_rate_ci95")
    return {
        "campaign": campaign.slug,
        "name": campaign.name,
        "created_at": campaign.created_at,
        "report_at": report.finished_at if report else None,
        "baseline": campaign.baseline.name,
        "candidate": campaign.candidate.name,
        "n_items": result.get("n_items"),
        "n_judgments": result.get("n_judgments"),
        "win_rate": preference.get("win_rate"),
        "win_rate_ci95": ci,
        "verdict": decision.get("verdict"),
        "probability": decision.get("probability"),
        "critical": critical_pass_rates(
            result, campaign.rubric.criteria if campaign.rubric else []
        ),
        "regression": bool(ci) and ci[1] < 0.5,
    }


def critical_pass_rates(result: dict[str, Any], criteria: list[dict]) -> dict[str, dict]:
    """Each critical criterion's pass rate per system: the judge-calibrated estimate where the
    report has one, else the reviewers' mean of a binary criterion; None where neither exists."""
    calibration = result.get("calibration") or {}
    means = result.get("criteria") or {}
    rates = {}
    for criterion in criteria:
        if not criterion.get("critical"):
            continue
        name = criterion["name"]
        if isinstance(calibration.get(name), dict) and "baseline" in calibration[name]:
            rates[name] = {
                side: calibration[name][side].get("posterior_mean")
                for side in ("baseline", "candidate")
            }
        elif criterion.get("kind") == "binary" and name in means:
            rates[name] = {
                side: means[name].get(f"{side}_mean") for side in ("baseline", "candidate")
            }
        else:
            rates[name] = {"baseline": None, "candidate": None}
    return rates


def csv_row(dataset: Dataset, row: dict[str, Any]) -> list[Any]:
    ci = row["win_rate_ci95"] or [None, None]
    critical = "; ".join(
        f"{name}: {_rate(rates['baseline'])} -> {_rate(rates['candidate'])}"
        for name, rates in row["critical"].items()
    )
    return [
        dataset.name,
        row["campaign"],
        row["created_at"].isoformat(),
        row["report_at"].isoformat() if row["report_at"] else None,
        row["baseline"],
        row["candidate"],
        row["n_items"],
        row["n_judgments"],
        row["win_rate"],
        ci[0],
        ci[1],
        row["verdict"],
        row["probability"],
        critical,
        "yes" if row["regression"] else "no",
        row["replaced_in"],
    ]


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def timeline_csv_lines(*, dataset: Dataset) -> Iterator[str]:
    """The timeline as CSV lines, formula cells defused like every export."""
    rows = timeline_rows(dataset=dataset)
    return csv_lines([COLUMNS, *(csv_row(dataset, row) for row in rows)])


def json_rows(*, dataset: Dataset) -> list[dict[str, Any]]:
    """The timeline as plain JSON values (what ``manage.py timeline --json`` prints)."""
    return [
        {
            **row,
            "created_at": row["created_at"].isoformat(),
            "report_at": row["report_at"].isoformat() if row["report_at"] else None,
            "regression_test": REGRESSION_TEST,
        }
        for row in timeline_rows(dataset=dataset)
    ]
