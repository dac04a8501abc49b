"""The release gate: a campaign's migration decision as a pipeline reads it (the API's
``/decision``, ``manage.py decide`` and the webhook payload).

Reads the latest DONE report's ``decision`` defensively (``.get`` throughout): reports stored
before and after the decision gained ``probability``, ``basis``, ``criteria`` and ``preference``
(DESIGN.md "Report") both answer. No decision in the report means "need_more_labels": a gate
must never open on missing evidence.
"""

from __future__ import annotations

import time
from typing import Any

from reviews.models import Campaign, Report
from reviews.reports.migration import gating, latest_report

VERDICTS = ("migrate", "do_not_migrate", "need_more_labels")
EXIT_CODES = {"migrate": 0, "do_not_migrate": 2, "need_more_labels": 3}
WAIT_POLL_SECONDS = 5.0


def campaign_decision(*, campaign: Campaign) -> dict[str, Any]:
    """``{verdict, probability, threshold, reasons, report_at}`` from the latest DONE report."""
    report = latest_report(campaign)
    if report is None:
        return {
            "verdict": "need_more_labels",
            "probability": None,
            "threshold": campaign.decision_threshold,
            "reasons": ["No report has been computed for this campaign yet."],
            "report_at": None,
        }
    return decision_of_report(report, threshold=campaign.decision_threshold)


def decision_of_report(report: Report, *, threshold: float) -> dict[str, Any]:
    result = report.result or {}
    decision = result.get("decision") or {}
    verdict = decision.get("verdict")
    threshold = _number(decision.get("threshold"), threshold)
    reasons = _reasons(result, decision, threshold)
    if verdict not in VERDICTS:
        reasons.insert(0, "The report holds no migration decision.")
        verdict = "need_more_labels"
    return {
        "verdict": verdict,
        "probability": _probability(result, decision),
        "threshold": threshold,
        "reasons": reasons,
        "report_at": report.finished_at.isoformat() if report.finished_at else None,
    }


def wait_for_decision(
    *, campaign: Campaign, seconds: float, poll: float = WAIT_POLL_SECONDS
) -> dict[str, Any]:
    """The decision, polling up to ``seconds`` for it to become migrate or do_not_migrate
    (a report still queued or running is waited for too)."""
    deadline = time.monotonic() + max(seconds, 0)
    while True:
        decision = campaign_decision(campaign=campaign)
        pending = campaign.reports.filter(
            status__in=[Report.Status.QUEUED, Report.Status.RUNNING]
        ).exists()
        decided = decision["verdict"] != "need_more_labels" and not pending
        left = deadline - time.monotonic()
        if decided or left <= 0:
            return decision
        time.sleep(min(poll, left))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any, default: float) -> float:
    return value if _is_number(value) else default


def _probability(result: dict, decision: dict) -> float | None:
    p = decision.get("probability")
    if _is_number(p):
        return p
    # Reports from before the decision carried its probability: the weakest gating criterion.
    cal = result.get("calibration") or {}
    ps = [
        ((cal.get(name) or {}).get("difference") or {}).get("p_non_inferior")
        for name in gating(cal)
    ]
    ps = [p for p in ps if _is_number(p)]
    return min(ps) if ps else None


def _reasons(result: dict, decision: dict, threshold: float) -> list[str]:
    reasons = []
    if basis := decision.get("basis"):
        reasons.append(f"Decided on {basis} judgments.")
    preference = decision.get("preference") or {}
    if isinstance(preference, dict) and _is_number(preference.get("p_non_inferior")):
        reasons.append(_line("preference", preference, threshold))
    criteria = decision.get("criteria")
    if not isinstance(criteria, dict):  # an older report: the calibrated criteria decide
        cal = result.get("calibration") or {}
        criteria = {
            name: {
                "p_non_inferior": ((cal.get(name) or {}).get("difference") or {}).get(
                    "p_non_inferior"
                ),
                "verdict": (cal.get(name) or {}).get("verdict"),
            }
            for name in gating(cal)
        }
    for name, entry in criteria.items():
        if isinstance(entry, dict) and _is_number(entry.get("p_non_inferior")):
            reasons.append(_line(f"criterion {name}", entry, threshold))
    more = decision.get("more_labels_needed")
    if _is_number(more) and more > 0:
        reasons.append(f"About {more} more human-labelled items should settle it.")
    return reasons


def _line(what: str, entry: dict, threshold: float) -> str:
    p = entry["p_non_inferior"]
    verdict = entry.get("verdict")
    text = f"{what}: P(non-inferior) {p:.3f} against the threshold {threshold:g}"
    return f"{text} ({verdict})." if verdict else f"{text}."
